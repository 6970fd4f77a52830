//! Technology profiles: the parameters and conventions one LPWAN fixes on top of SCHC.
//!
//! - [`lorawan`] (RFC 9011): the Rule ID travels in the FPort, the uplink ACK-on-Error and
//!   downlink ACK-Always parameter sets, the DevIID from AES-CMAC, and a sans-IO device endpoint
//!   ([`lorawan::Device`]) that runs in the `no_std` core without a heap. The network side of
//!   it is `network::Network` (feature `std`).
//! - [`sigfox`] (RFC 9442): the uplink ACK-on-Error header options (single byte, two-byte
//!   options 1 and 2) with the tile-count RCS, and the downlink ACK-Always set.
//! - [`nbiot`] (RFC 9391): the 8-bit and 16-bit F/R header layouts for SCHC over NIDD.
//!
//! Profiles are data ([`crate::rule::FragParams`] constants and constructors) plus, for
//! LoRaWAN, the glue between the link's addressing and the engines. They use the rule model,
//! the codec and the fragmentation engines, and nothing above them.

pub mod lorawan;
pub mod nbiot;
pub mod sigfox;
