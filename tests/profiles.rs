//! Sigfox (RFC 9442) and NB-IoT (RFC 9391) parameter sets through the fragmentation engine.
//!
//! The digest has no worked examples for either RFC. The Sigfox ACK vectors below are the
//! bit strings of the RFC 9442 reference implementation's own tests
//! (`schc-over-sigfox/schc-over-sigfox`, `test/Messages/test_ACK.py`): an RFC 8724 ACK, a
//! Receiver-Abort and a compound ACK, each padded with zeros to Sigfox's 64-bit downlink.

#[path = "frag_harness/mod.rs"]
mod harness;

use harness::{bits_to_bytes, run, Link, Setup};
use lpwan_schc::frag::wire::{self, Ack, FragmentKind, Layout};
use lpwan_schc::frag::{Sender, SenderAction};
use lpwan_schc::profile::nbiot;
use lpwan_schc::profile::sigfox::{self, HeaderOption};
use lpwan_schc::rule::{Nature, Rule, RuleId};

fn sigfox_rule(option: HeaderOption, value: u32) -> Rule {
    Rule {
        id: RuleId::new(value, option.rule_id_bits()),
        nature: Nature::Fragmentation(sigfox::uplink_ack_on_error(option)),
    }
}

fn pad64(bits: &str) -> Vec<u8> {
    assert_eq!(bits.len(), 64);
    bits_to_bytes(bits)
}

/// The reference implementation's ACK vectors, read with the single-byte layout (Rule ID 000).
#[test]
fn sigfox_reference_ack_vectors() {
    let l = Layout::new(&sigfox_rule(HeaderOption::SingleByte, 0)).unwrap();
    // Rule 000, W 10, C 0, bitmap 1111001, then zeros (the M-bit terminator and padding).
    let ack = pad64("0001001111001000000000000000000000000000000000000000000000000000");
    assert_eq!(
        wire::parse_ack(&l, &ack).unwrap(),
        failure(&[(2, 0b1111001)])
    );
    // Receiver-Abort: W 11, C 1, ones to the byte and one more byte of ones, zero-padded.
    let abort = pad64("0001111111111111000000000000000000000000000000000000000000000000");
    assert_eq!(
        wire::parse_ack(&l, &abort).unwrap(),
        Ack::ReceiverAbort { dtag: 0 }
    );
    // A success ACK with W 11.
    let ok = pad64("0001110000000000000000000000000000000000000000000000000000000000");
    assert_eq!(
        wire::parse_ack(&l, &ok).unwrap(),
        Ack::Success { dtag: 0, w: 3 }
    );
    // Compound ACK: windows 0, 2 and 3 with their bitmaps, then the 00 terminator.
    let compound = pad64("0000001110001101110011111111001000000000000000000000000000000000");
    assert_eq!(
        wire::parse_ack(&l, &compound).unwrap(),
        failure(&[(0, 0b1110001), (2, 0b1110011), (3, 0b1111001)])
    );
    // And we write that compound ACK with the same bits (before the 64-bit padding).
    let mut out = [0u8; 8];
    let n = wire::write_ack_failure(
        &l,
        0,
        &[(0, 0b1110001), (2, 0b1110011), (3, 0b1111001)],
        &mut out,
    )
    .unwrap();
    assert_eq!(&out[..n], &compound[..n]);
    // Our Receiver-Abort is the reference's, before its padding.
    let n = wire::write_receiver_abort(&l, 0, &mut out).unwrap();
    assert_eq!(&out[..n], &abort[..n]);
}

fn failure(w: &[(u32, u64)]) -> Ack {
    let mut windows = heapless::Vec::new();
    for x in w {
        windows.push(*x).unwrap();
    }
    Ack::Failure { dtag: 0, windows }
}

/// Header sizes of the three options: regular fragment header, and All-1 header with the
/// tile-count RCS, as in RFC 9442's table.
#[test]
fn sigfox_header_layouts() {
    for (option, value, header, all1) in [
        (HeaderOption::SingleByte, 0b010, 8, 11),
        (HeaderOption::TwoByteOpt1, 0b111_001, 12, 16),
        (HeaderOption::TwoByteOpt2, 0b1111_1110, 16, 21),
    ] {
        let l = Layout::new(&sigfox_rule(option, value)).unwrap();
        assert_eq!(l.header_bits(), header, "{option:?}");
        assert_eq!(l.header_bits() + l.rcs_bits(), all1, "{option:?}");
        // An All-1 with no tile (RCS then padding) is told from a Sender-Abort by size.
        let mut out = [0u8; 4];
        let n = wire::write_sender_abort(&l, 0, &mut out).unwrap();
        assert_eq!(
            wire::parse_fragment(&l, &out[..n]).unwrap().kind,
            FragmentKind::SenderAbort
        );
    }
}

/// The RCS is the tile count of the last window, ((tiles − 1) mod 7) + 1 for the single-byte
/// option: 7 for a full last window, not 0. The receiver checks it and delivers.
#[test]
fn sigfox_tile_count_rcs_end_to_end() {
    let rule = sigfox_rule(HeaderOption::SingleByte, 0b001);
    // Tiles of 11 bytes; 1 byte of header: 12-byte uplinks.
    for (len, tiles, rcs) in [
        (11, 1, 1),
        (77, 7, 7),
        (78, 8, 1),
        (150, 14, 7),
        (300, 28, 7),
        (250, 23, 2),
    ] {
        let pk = harness::packet(len, len as u64);
        let s = Sender::new(&rule, &pk[..], len * 8, 0, sigfox::UPLINK_MTU).unwrap();
        assert_eq!((s.tiles(), s.rcs()), (tiles, rcs), "{len} bytes");
        let t = run(&rule, &pk, len * 8, Setup::new(sigfox::UPLINK_MTU));
        assert_eq!(t.sender, SenderAction::Done, "{len} bytes");
        assert!(t.delivered_exactly(&pk, len * 8, 8), "{len} bytes");
        assert!(t.frames(true).iter().all(|e| e.bytes.len() <= 12));
    }
    // The largest packet: 4 windows of 7 tiles of 11 bytes.
    assert!(Sender::new(&rule, &[0u8; 309][..], 309 * 8, 0, 12).is_err());
}

/// A wrong tile count in the All-1 is a failed check: the receiver does not deliver.
#[test]
fn sigfox_wrong_tile_count_is_refused() {
    let rule = sigfox_rule(HeaderOption::SingleByte, 0b001);
    let pk = harness::packet(30, 3);
    let frames = lpwan_schc::sim::lossless_frames(&rule, &pk, 0, sigfox::UPLINK_MTU).unwrap();
    let mut bad = frames.clone();
    let all1 = bad.last_mut().unwrap();
    // Rule 001, W 00, FCN 111, then the 3-bit RCS: 3 tiles, so 011. Make it 100.
    assert_eq!(all1[0], 0b0010_0111); // 001 00 111
    assert_eq!(all1[1] >> 5, 3);
    all1[1] = (all1[1] & 0x1F) | (4 << 5);
    use lpwan_schc::sim::{reassemble, Reassembled};
    assert!(matches!(
        reassemble(&rule, &frames).unwrap(),
        Reassembled::Packet(p, _) if p[..30] == pk[..]
    ));
    assert!(!matches!(
        reassemble(&rule, &bad).unwrap(),
        Reassembled::Packet(..)
    ));
}

/// The three options over a lossy link, several seeds: delivered exactly.
#[test]
fn sigfox_options_lossy() {
    for (option, value, len) in [
        (HeaderOption::SingleByte, 0b011, 300),
        (HeaderOption::TwoByteOpt1, 0b111_010, 480),
        (HeaderOption::TwoByteOpt2, 0b1111_1100, 1200),
    ] {
        let rule = sigfox_rule(option, value);
        for seed in 1..=5 {
            let pk = harness::packet(len, seed);
            let setup = Setup::new(sigfox::UPLINK_MTU).link(Link::random(15, 15, seed));
            let t = run(&rule, &pk, len * 8, setup);
            assert!(
                t.delivered_exactly(&pk, len * 8, 8),
                "{option:?} seed {seed}: {:?} {:?} {:?}",
                t.sender,
                t.receiver,
                t.rx_errors
            );
        }
    }
}

/// NB-IoT: the 8-bit and 16-bit headers are whole bytes; a packet goes through both, over a
/// lossy link, with DTags.
#[test]
fn nbiot_headers_end_to_end() {
    // The 8-bit header's 1-bit W allows 2 windows of 7 tiles: 14 × 37 bytes at most.
    for (params, id, header, len) in [
        (nbiot::HEADER_8, RuleId::new(0b101, 3), 8, 500),
        (nbiot::HEADER_16, RuleId::new(0xA5, 8), 16, 1200),
    ] {
        let rule = Rule {
            id,
            nature: Nature::Fragmentation(params),
        };
        let l = Layout::new(&rule).unwrap();
        assert_eq!(l.header_bits(), header);
        let mut out = [0u8; 8];
        // ACK REQ for window 1 with DTag 1: one header, nothing after.
        let n = wire::write_ack_req(&l, 1, 1, &mut out).unwrap();
        assert_eq!(n * 8, header);
        for seed in 1..=4 {
            let pk = harness::packet(len, seed);
            // A 304-bit transport block: 38 bytes. NIDD is a reliable link (MAX_ACK_REQUESTS
            // is 2): 5 % loss.
            let setup = Setup::new(38).link(Link::random(5, 5, seed));
            let t = run(&rule, &pk, len * 8, setup);
            assert!(
                t.delivered_exactly(&pk, len * 8, 8),
                "{id} seed {seed}: {:?}",
                t.sender
            );
        }
    }
}

/// The tile-count RCS is refused outside ACK-on-Error, and a rule set with it is written to
/// JSON with a name the reader refuses rather than reads back as CRC32.
#[test]
fn tile_count_is_ack_on_error_only_and_not_in_rfc9363() {
    let mut p = sigfox::uplink_ack_on_error(HeaderOption::SingleByte);
    p.mode = lpwan_schc::rule::FragMode::NoAck;
    p.w_bits = 0;
    let rule = Rule {
        id: RuleId::new(1, 3),
        nature: Nature::Fragmentation(p),
    };
    assert!(Layout::new(&rule).is_err());
    let mut set = lpwan_schc::rule::RuleSetBuf::new();
    set.push_fragmentation(
        RuleId::new(1, 3),
        sigfox::uplink_ack_on_error(HeaderOption::SingleByte),
    );
    let text = lpwan_schc::json::to_string_pretty(&set);
    assert!(text.contains("lpwan-schc:rcs-tile-count"));
    assert!(lpwan_schc::json::from_str(&text).is_err());
}
