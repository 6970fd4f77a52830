//! # lpwan-schc
//!
//! Static Context Header Compression (SCHC, RFC 8724) for low-power wide-area networks:
//! bit-exact compression and decompression of IPv6, UDP and CoAP headers (RFC 8724, RFC 8824)
//! against rule sets in the RFC 9363 model.
//!
//! ## Layers
//!
//! Each layer only uses the ones above it in this list:
//!
//! 1. [`bits`]: MSB-first bit reader and writer over caller buffers, the variable-length size
//!    prefix.
//! 2. [`packet`]: zero-copy parsing of IPv6, UDP and CoAP headers into fields that are bit
//!    ranges of the caller's buffer.
//! 3. [`rule`]: the rule model, one representation for devices (static tables) and gateways
//!    (owned tables, [`rule::RuleSetBuf`]), and its validation.
//! 4. [`codec`]: the rule matcher, compression and decompression.
//! 5. `json` (feature `std`): RFC 9363 JSON rule files in and out.
//! 6. Compression studies (feature `std`): `capture` reads pcap and pcapng files as a stream,
//!    `ratio` measures what a rule set saves on them (compressing, decompressing and comparing
//!    every packet), `learn` synthesises rule sets from traffic, `convert` imports openschc and
//!    microschc rule files, and `plot` (feature `plot`) draws SVG charts.
//!
//! Beside the codec, [`frag`] fragments and reassembles SCHC packets (sans-IO, heap-free); on
//! top of it, `gateway` (feature `std`) keeps reassembly sessions for many devices and downlink
//! senders, and `sim` (feature `std`) runs a sender and a receiver over a seeded lossy link.
//!
//! [`profile`] holds technology profiles: RFC 9011 LoRaWAN with its heap-free device endpoint
//! ([`profile::lorawan::Device`]), RFC 9442 Sigfox and RFC 9391 NB-IoT parameter sets. The
//! LoRaWAN network-side endpoint, a context per DevEUI, is `network` (feature `std`), and the
//! service that runs it next to a network server is `bridge` (feature `bridge`).
//!
//! ## Guarantees
//!
//! - Without default features the crate is `#![no_std]` without `alloc`: the caller owns every
//!   buffer and nothing is allocated. CI links a binary with no global allocator to prove it.
//! - No `unsafe`. Malformed packets, SCHC packets and rule sets produce typed errors that say
//!   what is wrong and where; they never panic.
//!
//! ## Features
//!
//! - `alloc`: owned rule sets.
//! - `std` (default, implies `alloc`): RFC 9363 JSON, captures, compression studies, rule
//!   learning and conversion.
//! - `plot` (default, implies `std`): SVG charts of compression studies.
//! - `bridge` (default, implies `std`): the gateway bridge between a LoRaWAN network server's
//!   MQTT integration (ChirpStack v4, The Things Stack v3) and IPv6 (`schc gateway`).
//! - `cli` (default, implies `std`, `plot` and `bridge`): the `schc` command.
//!
//! ## Example
//!
//! ```
//! # #[cfg(feature = "std")] {
//! use lpwan_schc::{codec, json, rule::Direction};
//! let rules = json::from_str(include_str!("../rules/example.json")).unwrap();
//! let set = rules.as_set();
//! let packet = [0u8; 0]; // not IPv6: only the no-compression rule applies
//! let mut out = [0u8; 64];
//! let c = codec::compress(&set, &packet, Direction::Up, &codec::Config::default(), &mut out).unwrap();
//! let mut back = [0u8; 64];
//! let d = codec::decompress(&set, &out[..c.len], Direction::Up, &codec::Config::default(), &mut back).unwrap();
//! assert_eq!(&back[..d.len], &packet[..]);
//! # }
//! ```

#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(all(feature = "std", not(feature = "alloc")))]
compile_error!("feature `std` requires feature `alloc`");

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(test)]
extern crate std;

// Modules that read untrusted input (packets, SCHC packets, frames, ACKs, rule files,
// captures) may not index, slice, unwrap or expect: every access is checked and every failure
// is a typed error. Their unit tests may.
#[cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]
pub mod bits;
#[cfg(feature = "bridge")]
#[cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]
pub mod bridge;
#[cfg(feature = "std")]
#[cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]
pub mod capture;
#[cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]
pub mod codec;
#[cfg(feature = "std")]
#[cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]
pub mod convert;
#[cfg(feature = "std")]
pub mod export;
#[cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]
pub mod frag;
#[cfg(feature = "std")]
#[cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]
pub mod gateway;
#[cfg(feature = "std")]
#[cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]
pub mod json;
#[cfg(feature = "std")]
pub mod learn;
#[cfg(feature = "std")]
#[cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]
pub mod network;
#[cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]
pub mod packet;
#[cfg(feature = "plot")]
pub mod plot;
#[cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]
pub mod profile;
#[cfg(feature = "std")]
pub mod ratio;
#[cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]
pub mod rule;
#[cfg(feature = "std")]
pub mod sim;

pub use codec::{compress, decompress, Compressed, Config, Decompressed};
pub use rule::{Direction, RuleId, RuleSet};
