//! SCHC over LoRaWAN (RFC 9011).
//!
//! - **Rule ID = FPort.** A SCHC message is `FPort ‖ FRMPayload`: the 8-bit Rule ID travels in
//!   the LoRaWAN FPort (1 to 223), the rest in the FRMPayload. The endpoints here take and
//!   return `(fport, payload)` pairs; internally a frame is the FPort byte followed by the
//!   payload, which is exactly a SCHC message with its 8-bit Rule ID.
//! - **Fragmentation** ([`UPLINK`], [`DOWNLINK`]): uplinks use ACK-on-Error under FPort 20
//!   ([`FPORT_UP`]), downlinks ACK-Always under FPort 21 ([`FPORT_DOWN`]); 22
//!   ([`FPORT_NO_COMPRESSION`]) is the no-compression rule. ACKs and ACK REQs of a session use
//!   its FPort in the reverse direction. No DTag: one packet in flight per direction.
//! - **IID** ([`dev_iid`]): the device's IPv6 IID is the first 8 bytes of
//!   AES-128-CMAC(AppSKey, DevEUI), used by the DevIID/AppIID actions at both ends; it changes
//!   with every join.
//! - **Endpoints**: [`Device`] is the end-device side, in the `no_std` core without a heap; the
//!   network side is `network::Network` (feature `std`).
//!
//! MTUs here are FRMPayload sizes (without the FPort byte), as a LoRaWAN stack reports them:
//! 51 bytes at the slowest EU868 data rates, 242 at the fastest, less the FOpts a MAC command
//! takes.

use aes::Aes128;
use cmac::{Cmac, Mac};
use thiserror::Error;

use crate::rule::{
    AckBehavior, BitmapFormat, Direction, FragMode, FragParams, Nature, RcsAlgorithm, Rule, RuleId,
    RuleSet, TileInAll1, Timer,
};

pub mod device;

pub use device::{Buffers, Device, DeviceAction, DeviceError};

/// FPort (and Rule ID) of uplink fragmentation, RFC 9011's recommended value.
pub const FPORT_UP: u8 = 20;
/// FPort (and Rule ID) of downlink fragmentation, RFC 9011's recommended value.
pub const FPORT_DOWN: u8 = 21;
/// FPort (and Rule ID) of the no-compression rule, RFC 9011's recommended value.
pub const FPORT_NO_COMPRESSION: u8 = 22;
/// The largest LoRaWAN FRMPayload (EU868 DR7, no FOpts).
pub const MAX_PAYLOAD: usize = 242;

/// Whether `fport` may carry SCHC (1 to 223; 0 is MAC commands, 224 and up are reserved).
pub const fn is_schc_fport(fport: u8) -> bool {
    fport >= 1 && fport <= 223
}

/// The Rule ID an FPort stands for.
pub const fn rule_id(fport: u8) -> RuleId {
    RuleId::new(fport as u32, 8)
}

/// RFC 9011's uplink fragmentation (§5.6): ACK-on-Error, no DTag, W 2 bits (4 windows), FCN
/// 6 bits (windows of 63 tiles), tiles of 10 bytes, CRC32 RCS, MAX_ACK_REQUESTS 8, up to
/// 2,520 bytes, the last tile in the All-1 or in a regular fragment at the sender's choice,
/// ACK only after the All-1 (set `ack_behavior` to [`AckBehavior::AfterAll0`] for RFC 9011's
/// "ACK after each window" option, recommended for battery-powered devices; both ends must
/// agree).
///
/// Timers: the device's retransmission timer is RFC 9011's recommended 12 hours (41,199 ticks
/// of 2^20 µs). The gateway's inactivity timer is nine of them (46,349 ticks of 2^23 µs, about
/// 108 h) instead of the recommended 12 h: with equal timers one lost ACK REQ ends the session,
/// since the receiver gives up at the very instant the sender asks again. These are the values
/// of `rules/lorawan-fragmentation.json`.
pub const UPLINK: FragParams = FragParams {
    mode: FragMode::AckOnError,
    direction: Direction::Up,
    l2_word: 8,
    dtag_bits: 0,
    w_bits: 2,
    fcn_bits: 6,
    window_size: 63,
    rcs: RcsAlgorithm::Crc32,
    max_packet_size: 2520,
    max_interleaved: 1,
    inactivity_timer: Some(Timer {
        tick_exp: 23,
        ticks: 46349,
    }),
    retransmission_timer: Some(Timer {
        tick_exp: 20,
        ticks: 41199,
    }),
    max_ack_requests: 8,
    tile_size: 80,
    tile_in_all1: TileInAll1::SenderChoice,
    ack_behavior: AckBehavior::AfterAll1,
    bitmap_format: BitmapFormat::Rfc8724,
    last_bitmap_compression: true,
};

/// RFC 9011's downlink fragmentation (§5.6.2): ACK-Always, no DTag, W 1 bit, FCN 1 bit
/// (windows of one tile: every fragment but the last is an All-0), one tile per fragment as
/// large as the current downlink MTU allows, CRC32 RCS, MAX_ACK_REQUESTS 8, up to 1,280 bytes.
///
/// Timers for class A: inactivity 12 h (41,199 ticks of 2^20 µs) and a retransmission timer of
/// 12 h / (MAX_ACK_REQUESTS + 1) (4,578 ticks), as RFC 9011 gives. Class B uses three ping-slot
/// periods and class C 30 s for the retransmission timer: change `retransmission_timer`.
pub const DOWNLINK: FragParams = FragParams {
    mode: FragMode::AckAlways,
    direction: Direction::Down,
    l2_word: 8,
    dtag_bits: 0,
    w_bits: 1,
    fcn_bits: 1,
    window_size: 1,
    rcs: RcsAlgorithm::Crc32,
    max_packet_size: 1280,
    max_interleaved: 1,
    inactivity_timer: Some(Timer {
        tick_exp: 20,
        ticks: 41199,
    }),
    retransmission_timer: Some(Timer {
        tick_exp: 20,
        ticks: 4578,
    }),
    max_ack_requests: 8,
    tile_size: 0,
    tile_in_all1: TileInAll1::Yes,
    ack_behavior: AckBehavior::AfterAll1,
    bitmap_format: BitmapFormat::Rfc8724,
    last_bitmap_compression: true,
};

/// The uplink fragmentation rule ([`UPLINK`]) under `fport`.
pub const fn uplink_rule(fport: u8) -> Rule {
    Rule {
        id: rule_id(fport),
        nature: Nature::Fragmentation(UPLINK),
    }
}

/// The downlink fragmentation rule ([`DOWNLINK`]) under `fport`.
pub const fn downlink_rule(fport: u8) -> Rule {
    Rule {
        id: rule_id(fport),
        nature: Nature::Fragmentation(DOWNLINK),
    }
}

/// The no-compression rule under `fport`.
pub const fn no_compression_rule(fport: u8) -> Rule {
    Rule {
        id: rule_id(fport),
        nature: Nature::NoCompression,
    }
}

/// The three rules every RFC 9011 rule set has, under their recommended FPorts: uplink
/// fragmentation (20), downlink fragmentation (21), no-compression (22). A device's static rule
/// table lists them with its compression rules.
pub const RULES: [Rule; 3] = [
    uplink_rule(FPORT_UP),
    downlink_rule(FPORT_DOWN),
    no_compression_rule(FPORT_NO_COMPRESSION),
];

/// What the IID's AES-CMAC runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IidForm {
    /// The 8 DevEUI bytes, most significant first: what RFC 9011 §5.3 specifies.
    #[default]
    Binary,
    /// The DevEUI as 16 ASCII hex digits (upper case): what the RFC's printed example
    /// (`BA59F4B196C6C343`) was computed over. For interoperating with implementations that
    /// reproduce that example.
    Ascii,
}

/// The device's IPv6 IID (RFC 9011 §5.3): the first 8 bytes of AES-128-CMAC(AppSKey, DevEUI),
/// over the 8 binary DevEUI bytes, most significant first.
///
/// ```
/// use lpwan_schc::profile::lorawan::dev_iid;
/// let key = [0x00, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF, 0x00, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF, 0xAA, 0xBB];
/// let iid = dev_iid(&key, &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
/// assert_eq!(iid, [0x4E, 0x82, 0x2D, 0x97, 0x75, 0xB2, 0x64, 0x99]);
/// ```
pub fn dev_iid(app_skey: &[u8; 16], dev_eui: &[u8; 8]) -> [u8; 8] {
    iid(app_skey, dev_eui, IidForm::Binary)
}

/// The IID computed the way RFC 9011's printed example was: the CMAC over the DevEUI written as
/// 16 upper-case ASCII hex digits ([`IidForm::Ascii`]).
pub fn dev_iid_ascii(app_skey: &[u8; 16], dev_eui: &[u8; 8]) -> [u8; 8] {
    iid(app_skey, dev_eui, IidForm::Ascii)
}

/// The IID over the DevEUI in the given form.
pub fn iid(app_skey: &[u8; 16], dev_eui: &[u8; 8], form: IidForm) -> [u8; 8] {
    let tag = cmac_aes128(app_skey, dev_eui, form);
    let mut out = [0u8; 8];
    out.copy_from_slice(&tag[..8]);
    out
}

/// The whole 16-byte AES-128-CMAC of the DevEUI in the given form.
pub fn cmac_aes128(key: &[u8; 16], dev_eui: &[u8; 8], form: IidForm) -> [u8; 16] {
    // A 16-byte key is always valid for AES-128.
    let mut mac = <Cmac<Aes128> as Mac>::new(key.into());
    match form {
        IidForm::Binary => mac.update(dev_eui),
        IidForm::Ascii => {
            let digit = |n: u8| if n < 10 { b'0' + n } else { b'A' + n - 10 };
            let mut text = [0u8; 16];
            for (pair, b) in text.chunks_exact_mut(2).zip(dev_eui) {
                pair.copy_from_slice(&[digit(b >> 4), digit(b & 0xF)]);
            }
            mac.update(&text);
        }
    }
    mac.finalize().into_bytes().into()
}

/// Why a rule set cannot be used with the RFC 9011 profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ProfileError {
    /// RFC 9011 Rule IDs are the 8-bit FPort.
    #[error("rule {0}: RFC 9011 rule IDs are 8 bits (the FPort)")]
    RuleIdNotEightBits(RuleId),
    /// FPort 0 carries MAC commands and 224 to 255 are reserved.
    #[error("rule {0}: its FPort cannot carry SCHC (1 to 223)")]
    FPortNotSchc(RuleId),
    /// The rule set lacks a rule the endpoint needs, or it has the wrong nature or direction.
    #[error("rule {rule}: {what}")]
    BadRule {
        /// The rule (the FPort asked for).
        rule: RuleId,
        /// What is wrong.
        what: &'static str,
    },
}

/// The fragmentation FPorts RFC 9011 assigns that `set` has rules for: ([`FPORT_UP`] if it has
/// rule 20, [`FPORT_DOWN`] if it has rule 21), as [`check_rules`] and the endpoints take them.
pub fn default_fports(set: &RuleSet<'_>) -> (Option<u8>, Option<u8>) {
    let has = |port| set.get(rule_id(port)).map(|_| port);
    (has(FPORT_UP), has(FPORT_DOWN))
}

/// Checks that every rule of `set` has an 8-bit Rule ID that is a SCHC FPort (1 to 223), and
/// that `up` and `down` are fragmentation rules of the uplink and downlink, each with a valid
/// layout, if they are given.
pub fn check_rules(
    set: &RuleSet<'_>,
    up: Option<u8>,
    down: Option<u8>,
) -> Result<(), ProfileError> {
    for r in set.rules() {
        if r.id.length != 8 {
            return Err(ProfileError::RuleIdNotEightBits(r.id));
        }
        if r.id.value > 255 || !is_schc_fport(r.id.value as u8) {
            return Err(ProfileError::FPortNotSchc(r.id));
        }
    }
    for (port, dir) in [(up, Direction::Up), (down, Direction::Down)] {
        let Some(port) = port else { continue };
        let id = rule_id(port);
        let bad = |what| ProfileError::BadRule { rule: id, what };
        let rule = set.get(id).ok_or(bad("no such rule in the set"))?;
        match rule.nature {
            Nature::Fragmentation(p) if p.direction == dir => {
                crate::frag::wire::Layout::new(rule)
                    .map_err(|_| bad("unusable fragmentation parameters"))?;
            }
            Nature::Fragmentation(_) => return Err(bad("fragments the other direction")),
            _ => return Err(bad("not a fragmentation rule")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 16] = [
        0x00, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF, 0x00, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF, 0xAA,
        0xBB,
    ];
    const EUI: [u8; 8] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];

    fn hex16(s: &str) -> [u8; 16] {
        let mut o = [0u8; 16];
        for (i, b) in o.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        o
    }

    /// V-LW-1: the three CMACs of rfc-examples.md.
    #[test]
    fn v_lw_1_cmacs() {
        assert_eq!(
            cmac_aes128(&KEY, &EUI, IidForm::Binary),
            hex16("4E822D9775B2649928F82066AF804FEC")
        );
        assert_eq!(
            cmac_aes128(&KEY, &EUI, IidForm::Ascii),
            hex16("BA59F4B196C6C3432D9383C145AD412A")
        );
        let mut rev = EUI;
        rev.reverse();
        assert_eq!(
            cmac_aes128(&KEY, &rev, IidForm::Binary),
            hex16("5BBE01533DA5FA6C52ED8DB73A607BD2")
        );
    }

    /// RFC 4493 §4, example 2: AES-CMAC of one block, to anchor the CMAC itself.
    #[test]
    fn rfc_4493_example() {
        let key = hex16("2b7e151628aed2a6abf7158809cf4f3c");
        let msg = hex16("6bc1bee22e409f96e93d7e117393172a");
        let mut mac = <Cmac<Aes128> as Mac>::new((&key).into());
        mac.update(&msg);
        let tag: [u8; 16] = mac.finalize().into_bytes().into();
        assert_eq!(tag, hex16("070a16b46b4d4144f79bdd9dd04a287c"));
    }

    #[test]
    fn params_validate() {
        UPLINK.validate().unwrap();
        DOWNLINK.validate().unwrap();
        for r in &RULES {
            if let Nature::Fragmentation(_) = r.nature {
                crate::frag::wire::Layout::new(r).unwrap();
            }
        }
    }
}
