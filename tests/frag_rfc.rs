//! Fragmentation against the RFCs' worked examples (`/work/shared/spec/rfc-examples.md`):
//!
//! - V-8724-3: bitmap compression (RFC 8724 §8.3.2.1, Figures 16–19) with the RFC 9011 uplink
//!   ACK header, and the lengths it can produce;
//! - V-8724-4: the message sequences of RFC 8724 Appendix B, Figures 27–36, replayed by our
//!   sender and receiver over a link that loses exactly the frames each figure loses;
//! - V-8724-5: the RCS;
//! - V-LW-2, V-LW-3, V-LW-4: RFC 9011's header bytes and its appendix examples;
//! - RFC 9441 compound ACKs, on the wire and in an exchange.

mod frag_harness;

use frag_harness::*;
use lpwan_schc::bits::BitWriter;
use lpwan_schc::frag::wire::{self, Ack, FragmentKind, Layout};
use lpwan_schc::frag::{rcs, Receiver, ReceiverAction, Sender, SenderAction};
use lpwan_schc::rule::{AckBehavior, BitmapFormat, FragMode, Nature, Rule, TileInAll1};

fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// V-8724-3: bitmaps and ACKs

/// The RFC 9011 uplink ACK header: Rule ID 20 (8 bits), W (2 bits), C: 11 bits.
fn rfc9011_layout() -> Layout {
    Layout::new(&rfc9011_uplink()).unwrap()
}

fn ones(n: usize) -> String {
    "1".repeat(n)
}

#[test]
fn v_8724_3_the_five_rows_with_the_11_bit_header() {
    let l = rfc9011_layout();
    assert_eq!(l.ack_header_bits(), 11);
    let rows = [
        (ones(63), "141f", 5),
        (format!("0{}", ones(62)), "140f", 5),
        (format!("111110{}", ones(57)), "141f7f", 13),
        (format!("{}000{}", ones(20), ones(40)), "141ffffe3f", 29),
        (format!("{}0", ones(62)), "141fffffffffffffff80", 63),
    ];
    for (bits, hex, kept) in rows {
        assert_eq!(bits.len(), 63);
        let b = bitmap(&bits);
        let mut out = [0u8; 16];
        let n = wire::write_ack_failure(&l, 0, &[(0, b)], &mut out).unwrap();
        assert_eq!(to_hex(&out[..n]), hex, "bitmap {bits}");
        // Bits kept: what follows the header, up to the whole bitmap (the last row is padded).
        assert_eq!((n * 8 - 11).min(63), kept, "bitmap {bits}");
        // The sender rebuilds the full bitmap: missing bits are 1.
        match wire::parse_ack(&l, &out[..n]).unwrap() {
            Ack::Failure { dtag: 0, windows } => assert_eq!(windows.as_slice(), &[(0, b)]),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn v_8724_3_success_acks() {
    let l = rfc9011_layout();
    let mut out = [0u8; 4];
    let n = wire::write_ack_success(&l, 0, 0, &mut out).unwrap();
    assert_eq!(to_hex(&out[..n]), "1420");
    let n = wire::write_ack_success(&l, 0, 3, &mut out).unwrap();
    assert_eq!(to_hex(&out[..n]), "14e0");
    // W = 3 is all ones, and C = 1: still a success ACK, not a Receiver-Abort (whose padding
    // is ones and is followed by a whole L2 word of ones).
    assert_eq!(
        wire::parse_ack(&l, &[0x14, 0xe0]).unwrap(),
        Ack::Success { dtag: 0, w: 3 }
    );
    assert_eq!(
        wire::parse_ack(&l, &[0x14, 0x20]).unwrap(),
        Ack::Success { dtag: 0, w: 0 }
    );
}

/// Figures 16/17: a 17-bit bitmap whose header ends 3 bits before an L2 word boundary is cut to
/// `101`, exactly at the boundary, with no padding.
#[test]
fn v_8724_3_figures_16_and_17() {
    // Rule ID `101` (3 bits), W (1 bit), C: a 5-bit header, 3 bits before the boundary.
    let rule = frag_rule(0b101, 3, params(FragMode::AckOnError, 1, 5, 17));
    let l = Layout::new(&rule).unwrap();
    assert_eq!(l.ack_header_bits(), 5);
    let b = bitmap("10111111111111111");
    let mut out = [0u8; 8];
    let n = wire::write_ack_failure(&l, 0, &[(0, b)], &mut out).unwrap();
    // 101 | 0 | 0 | 101: one byte, the last 14 bitmap bits not sent.
    assert_eq!(out[..n], bits_to_bytes("101 0 0 101")[..]);
    assert_eq!(n, 1);
    assert_eq!(
        wire::parse_ack(&l, &out[..n]).unwrap(),
        Ack::Failure {
            dtag: 0,
            windows: [(0, b)].as_slice().try_into().unwrap()
        }
    );
}

/// Figures 18 and 19: WINDOW_SIZE 7 after a header that ends one bit before a boundary. With
/// missing tiles (`1010111`) nothing can be cut and the ACK is padded; with none (C = 0 because
/// the RCS failed or was not checked) one bitmap bit is kept.
#[test]
fn v_8724_3_figures_18_and_19() {
    // Rule ID 4 bits, W 2 bits, C: 7 bits.
    let rule = frag_rule(0b1001, 4, params(FragMode::AckOnError, 2, 3, 7));
    let l = Layout::new(&rule).unwrap();
    assert_eq!(l.ack_header_bits(), 7);
    let mut out = [0u8; 8];
    let n = wire::write_ack_failure(&l, 0, &[(1, bitmap("1010111"))], &mut out).unwrap();
    assert_eq!(out[..n], bits_to_bytes("1001 01 0 1010111 00")[..]);
    let n = wire::write_ack_failure(&l, 0, &[(1, bitmap("1111111"))], &mut out).unwrap();
    assert_eq!(out[..n], bits_to_bytes("1001 01 0 1")[..]);
    assert_eq!(n, 1);
    assert_eq!(
        wire::parse_ack(&l, &out[..n]).unwrap(),
        Ack::Failure {
            dtag: 0,
            windows: [(1, bitmap("1111111"))].as_slice().try_into().unwrap()
        }
    );
}

/// For every header length and window size, and every bitmap with one or two zeros (and all
/// ones), the compressed bitmap is the smallest cut on an L2 word boundary of the message at or
/// after the bit that follows the last 0, or the whole bitmap.
#[test]
fn v_8724_3_compressed_length_is_the_smallest_aligned_cut() {
    for rule_len in 1..=24u8 {
        for ws in [1usize, 2, 7, 8, 17, 28, 63, 64] {
            let mut n = 1;
            while (1usize << n) <= ws {
                n += 1;
            }
            let rule = frag_rule(0, rule_len, params(FragMode::AckOnError, 2, n, ws as u16));
            let l = Layout::new(&rule).unwrap();
            let h = l.ack_header_bits();
            let full = wire::mask(ws);
            let mut bitmaps = vec![full];
            for a in 0..ws {
                bitmaps.push(full & !(1 << a));
                for b in 0..a {
                    bitmaps.push(full & !(1 << a) & !(1 << b));
                }
            }
            for b in bitmaps {
                let mut out = [0u8; 16];
                let len = wire::write_ack_failure(&l, 0, &[(0, b)], &mut out).unwrap();
                // Position (from the left) of the last 0, if any.
                let last0 = (0..ws).rev().find(|&i| (b >> (ws - 1 - i)) & 1 == 0);
                let cut = h + last0.map_or(0, |i| i + 1);
                let aligned = cut.div_ceil(8) * 8;
                if aligned < h + ws {
                    assert_eq!(len * 8, aligned, "h {h}, ws {ws}, bitmap {b:b}");
                } else {
                    assert_eq!(len, (h + ws).div_ceil(8), "h {h}, ws {ws}, bitmap {b:b}");
                }
                match wire::parse_ack(&l, &out[..len]).unwrap() {
                    Ack::Failure { windows, .. } => assert_eq!(windows.as_slice(), &[(0, b)]),
                    other => panic!("{other:?}"),
                }
            }
        }
    }
}

/// With the 11-bit RFC 9011 header the bitmap lengths an ACK can carry are exactly
/// {5, 13, 21, 29, 37, 45, 53, 61, 63}. RFC 9011 also lists 62, which RFC 8724's algorithm
/// cannot produce: a last 0 at bit 61 or 62 leaves the scissors past the last boundary (bit 72
/// of the message), so they run to the end of the bitmap.
#[test]
fn v_8724_3_reachable_lengths_with_the_rfc9011_header_never_62() {
    let l = rfc9011_layout();
    let full = wire::mask(63);
    let mut kept = std::collections::BTreeSet::new();
    let mut seed = Seeded::new(3);
    let singles = (0..63).map(|k| full & !(1u64 << k));
    let random = (0..5000).map(|_| seed.next() & full);
    for b in [full].into_iter().chain(singles).chain(random) {
        let mut out = [0u8; 16];
        let n = wire::write_ack_failure(&l, 0, &[(0, b)], &mut out).unwrap();
        kept.insert((n * 8 - 11).min(63));
        // Never 62: a cut message ends on a byte, an uncut one has 6 padding bits.
        assert_ne!(n * 8 - 11, 62);
        if n * 8 - 11 >= 63 {
            assert_eq!(
                n * 8 - 11 - 63,
                6,
                "an uncut bitmap is followed by 6 padding bits"
            );
        }
    }
    assert_eq!(
        kept.into_iter().collect::<Vec<_>>(),
        vec![5, 13, 21, 29, 37, 45, 53, 61, 63]
    );
}

// ---------------------------------------------------------------------------------------------
// V-8724-5: RCS

#[test]
fn v_8724_5_crc32_check_value_and_byte_order() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(rcs::rcs(b"123456789", 72), 0xCBF4_3926);
}

/// A 12-bit SCHC packet `ABC` in a No-ACK All-1 whose header leaves 4 bits of padding: the RCS is
/// computed over the bytes `AB C0` (packet, then the padding of the fragment carrying the last
/// tile), and sent most significant byte first, before the tile.
#[test]
fn v_8724_5_the_12_bit_abc_example() {
    // Rule ID 7 bits + FCN 1 bit: an 8-bit header; 8 + 32 + 12 = 52 bits, 4 of padding.
    let rule = frag_rule(0x2a, 7, params(FragMode::NoAck, 0, 1, 1));
    // The bits after the packet are not part of it: they must not reach the RCS.
    let packet = [0xab, 0xcf];
    let mut s = Sender::new(&rule, &packet, 12, 0, 16).unwrap();
    let expected = crc32(&[0xab, 0xc0]);
    assert_eq!(s.rcs(), expected);
    assert_ne!(expected, crc32(&[0xab, 0xcf]));
    let mut out = [0u8; 16];
    let SenderAction::Send(n) = s.poll(0, &mut out).unwrap() else {
        panic!("the All-1 first")
    };
    let mut frame = vec![(0x2a << 1) | 1];
    frame.extend_from_slice(&expected.to_be_bytes());
    frame.extend_from_slice(&[0xab, 0xc0]);
    assert_eq!(to_hex(&out[..n]), to_hex(&frame));
    // Our receiver takes the padding in and checks the same RCS.
    let mut buf = vec![0u8; Receiver::buffer_len(&rule, 16)];
    let mut rx = Receiver::new(&rule, &mut buf[..], 0).unwrap();
    rx.handle_frame(&out[..n], 0).unwrap();
    let mut ack = [0u8; 8];
    assert_eq!(
        rx.poll(0, &mut ack).unwrap(),
        ReceiverAction::Delivered { bits: 16 }
    );
    assert_eq!(rx.packet().unwrap().0, &[0xab, 0xc0]);
}

// ---------------------------------------------------------------------------------------------
// V-8724-4: RFC 8724 Appendix B, Figures 27–36

/// Figure 27: No-ACK, N = 1, 11 fragments. Rule ID 8 bits + FCN: a 9-bit header; with a 7-byte
/// MTU the tiles are 47 bits (fragments of 7 bytes exactly) and the All-1 (9 + 32 bits) has room
/// for a last tile of 8 to 15 bits: 10 × 47 + 10 = 480 bits.
#[test]
fn figure_27_no_ack_11_fragments() {
    let rule = frag_rule(0x81, 8, params(FragMode::NoAck, 0, 1, 1));
    let p = packet(60, 27);
    let t = run(&rule, &p, 480, Setup::new(7).interleaved());
    let mut expected = vec!["-> W=0 FCN=0"; 10];
    expected.push("-> W=0 All-1");
    assert_eq!(describe(&rule, &t.events, None), lines(&expected));
    assert!(t.events[..10].iter().all(|e| e.bytes.len() == 7));
    assert_eq!(t.sender, SenderAction::Done);
    assert!(t.delivered_exactly(&p, 480, 8), "integrity check: success");
}

/// The ACK-on-Error rule of Figures 28 and 29: N = 3, WINDOW_SIZE 7, M = 1, 40-bit tiles, the
/// last tile in the All-1. Rule ID 4 bits: an 8-bit header. With a 10-byte MTU a regular
/// fragment holds one tile (6 bytes; two would need 11) and the All-1 its RCS and the last tile
/// (10 bytes): one tile per fragment, as in the figures. 11 tiles: 440 bits.
fn aoe_rule_28(behavior: AckBehavior) -> Rule {
    let mut p = params(FragMode::AckOnError, 1, 3, 7);
    p.tile_size = 40;
    p.tile_in_all1 = TileInAll1::Yes;
    p.ack_behavior = behavior;
    frag_rule(0b1001, 4, p)
}

/// Figure 28: ACK-on-Error, 11 tiles, no loss. The receiver acknowledges only after the All-1
/// (RFC 8724 §8.4.3.2: no ACK for windows known to be complete).
#[test]
fn figure_28_ack_on_error_no_loss() {
    let rule = aoe_rule_28(AckBehavior::AfterAll1);
    let p = packet(55, 28);
    let t = run(&rule, &p, 440, Setup::new(10).interleaved());
    let expected = [
        "-> W=0 FCN=6",
        "-> W=0 FCN=5",
        "-> W=0 FCN=4",
        "-> W=0 FCN=3",
        "-> W=0 FCN=2",
        "-> W=0 FCN=1",
        "-> W=0 FCN=0",
        "-> W=1 FCN=6",
        "-> W=1 FCN=5",
        "-> W=1 FCN=4",
        "-> W=1 All-1",
        "<- ACK W=1 C=1",
    ];
    assert_eq!(describe(&rule, &t.events, Some(40)), lines(&expected));
    assert_eq!(t.sender, SenderAction::Done);
    assert!(t.delivered_exactly(&p, 440, 8));
}

/// Figure 29: ACK-on-Error, 11 tiles, three losses. The figure's receiver acknowledges window 0
/// after its All-0 because tiles are missing: RFC 8724 §8.4.3.2 lets a profile add such ACK
/// times, and our rule parameter for it is `ack-behavior` after-All-0. The sender resends the
/// two tiles as soon as the ACK arrives, then goes on with window 1 (§8.4.3.1: it "can advance to
/// next windows even before it has ascertained that all tiles belonging to previous windows have
/// been correctly received"). The bitmap of the last window ends with the All-1's tile.
#[test]
fn figure_29_ack_on_error_three_losses() {
    let rule = aoe_rule_28(AckBehavior::AfterAll0);
    let p = packet(55, 29);
    let link = Link::script(&[2, 4, 11], &[]);
    let t = run(&rule, &p, 440, Setup::new(10).interleaved().link(link));
    let expected = [
        "-> W=0 FCN=6",
        "-> W=0 FCN=5",
        "-> W=0 FCN=4 X",
        "-> W=0 FCN=3",
        "-> W=0 FCN=2 X",
        "-> W=0 FCN=1",
        "-> W=0 FCN=0",
        "<- ACK W=0 C=0 1101011",
        "-> W=0 FCN=4",
        "-> W=0 FCN=2",
        "-> W=1 FCN=6",
        "-> W=1 FCN=5",
        "-> W=1 FCN=4 X",
        "-> W=1 All-1",
        "<- ACK W=1 C=0 1100001",
        "-> W=1 FCN=4",
        "<- ACK W=1 C=1",
    ];
    assert_eq!(describe(&rule, &t.events, Some(40)), lines(&expected));
    assert_eq!(t.sender, SenderAction::Done);
    assert!(t.delivered_exactly(&p, 440, 8));
}

/// Figure 30: ACK-on-Error, 73 tiles, N = 5, WINDOW_SIZE 28, M = 2, a variable MTU. Tiles of 48
/// bits after a 16-bit header (Rule ID 9 bits): with a 26-byte MTU a fragment carries 4 tiles;
/// the MTU drops to 12 bytes before "W=2, FCN=19", leaving room for one tile per fragment, and
/// for the All-1 with its RCS and the last tile. Before retransmissions: 25 fragments, the last
/// nine smaller.
///
/// One difference, which RFC 8724 allows: after resending the tiles an ACK reports missing for a
/// window that is not the last, our sender follows them with an ACK REQ for the last window
/// (§8.4.3.1: "it MAY send a SCHC ACK REQ"), and our receiver answers it with the next window
/// that has missing tiles. The figure's receiver sends that ACK unprompted, which §8.4.3.2 leaves
/// to profiles ("Other sequences of events ... are also allowed", says the figure's note). The
/// ACKs, bitmaps and retransmitted tiles are the figure's.
#[test]
fn figure_30_ack_on_error_variable_mtu() {
    let mut p = params(FragMode::AckOnError, 2, 5, 28);
    p.tile_size = 48;
    p.tile_in_all1 = TileInAll1::Yes;
    let rule = frag_rule(0x155, 9, p);
    let pk = packet(73 * 6, 30);
    let mut setup = Setup::new(26)
        .interleaved()
        .link(Link::script(&[3, 13, 22], &[]));
    setup.mtu_changes = vec![(16, 12)];
    let t = run(&rule, &pk, 73 * 48, setup);
    let mut expected = Vec::new();
    for w in 0..2 {
        for fcn in [27, 23, 19, 15, 11, 7, 3] {
            let lost = (w, fcn) == (0, 15) || (w, fcn) == (1, 3);
            expected.push(format!(
                "-> W={w} FCN={fcn} x4{}",
                if lost { " X" } else { "" }
            ));
        }
    }
    for s in [
        "-> W=2 FCN=27 x4",
        "-> W=2 FCN=23 x4",
        "-> W=2 FCN=19",
        "-> W=2 FCN=18",
        "-> W=2 FCN=17",
        "-> W=2 FCN=16",
        "-> W=2 FCN=15",
        "-> W=2 FCN=14",
        "-> W=2 FCN=13 X",
        "-> W=2 FCN=12",
        "-> W=2 All-1",
        "<- ACK W=0 C=0 1111111111110000111111111111",
        "-> W=0 FCN=15",
        "-> W=0 FCN=14",
        "-> W=0 FCN=13",
        "-> W=0 FCN=12",
        "-> W=2 ACK REQ",
        "<- ACK W=1 C=0 1111111111111111111111110000",
        "-> W=1 FCN=3",
        "-> W=1 FCN=2",
        "-> W=1 FCN=1",
        "-> W=1 FCN=0",
        "-> W=2 ACK REQ",
        "<- ACK W=2 C=0 1111111111111101000000000001",
        "-> W=2 FCN=13",
        "<- ACK W=2 C=1",
    ] {
        expected.push(s.to_string());
    }
    assert_eq!(describe(&rule, &t.events, Some(48)), expected);
    // 25 fragments before retransmissions, the last nine smaller.
    let first: Vec<usize> = t.events[..25].iter().map(|e| e.bytes.len()).collect();
    assert!(first[..16].iter().all(|&n| n == 26), "{first:?}");
    assert!(first[16..].iter().all(|&n| n <= 12), "{first:?}");
    assert_eq!(t.sender, SenderAction::Done);
    assert!(t.delivered_exactly(&pk, 73 * 48, 8));
}

/// The ACK-Always rule of Figures 31 to 35: N = 3, WINDOW_SIZE 7, Rule ID 4 bits: an 8-bit
/// header. A 6-byte MTU gives 40-bit tiles and an All-1 with room for an 8-bit last tile.
fn ack_always_rule() -> Rule {
    frag_rule(0b1001, 4, params(FragMode::AckAlways, 1, 3, 7))
}

/// 11 tiles (10 × 40 + 8 bits) or 6 tiles (5 × 40 + 8).
const ELEVEN_TILES: usize = 408;
const SIX_TILES: usize = 208;

fn ack_always(bits: usize, lose_s: &[usize], lose_r: &[usize]) -> (Rule, Trace, Vec<u8>) {
    let rule = ack_always_rule();
    let p = packet(bits / 8, bits as u64);
    let t = run(
        &rule,
        &p,
        bits,
        Setup::new(6)
            .interleaved()
            .link(Link::script(lose_s, lose_r)),
    );
    assert_eq!(t.sender, SenderAction::Done);
    assert!(t.delivered_exactly(&p, bits, 8));
    (rule, t, p)
}

/// Figure 31: ACK-Always, 11 tiles, no loss.
#[test]
fn figure_31_ack_always_no_loss() {
    let (rule, t, _) = ack_always(ELEVEN_TILES, &[], &[]);
    let expected = [
        "-> W=0 FCN=6",
        "-> W=0 FCN=5",
        "-> W=0 FCN=4",
        "-> W=0 FCN=3",
        "-> W=0 FCN=2",
        "-> W=0 FCN=1",
        "-> W=0 FCN=0",
        "<- ACK W=0 C=0 1111111",
        "-> W=1 FCN=6",
        "-> W=1 FCN=5",
        "-> W=1 FCN=4",
        "-> W=1 All-1",
        "<- ACK W=1 C=1",
    ];
    assert_eq!(describe(&rule, &t.events, None), lines(&expected));
}

/// Figure 32: ACK-Always, 11 tiles, three losses. The RFC prints the last window's bitmap with 8
/// bits (`11000001`) although WINDOW_SIZE is 7: it is `1100001`, as in Figure 29.
#[test]
fn figure_32_ack_always_three_losses() {
    let (rule, t, _) = ack_always(ELEVEN_TILES, &[2, 4, 11], &[]);
    let expected = [
        "-> W=0 FCN=6",
        "-> W=0 FCN=5",
        "-> W=0 FCN=4 X",
        "-> W=0 FCN=3",
        "-> W=0 FCN=2 X",
        "-> W=0 FCN=1",
        "-> W=0 FCN=0",
        "<- ACK W=0 C=0 1101011",
        "-> W=0 FCN=4",
        "-> W=0 FCN=2",
        "<- ACK W=0 C=0 1111111",
        "-> W=1 FCN=6",
        "-> W=1 FCN=5",
        "-> W=1 FCN=4 X",
        "-> W=1 All-1",
        "<- ACK W=1 C=0 1100001",
        "-> W=1 FCN=4",
        "<- ACK W=1 C=1",
    ];
    assert_eq!(describe(&rule, &t.events, None), lines(&expected));
}

/// The first seven frames of Figures 33 to 35: six tiles, three lost, the bitmap `1100001`.
const SIX_TILES_START: [&str; 7] = [
    "-> W=0 FCN=6",
    "-> W=0 FCN=5",
    "-> W=0 FCN=4 X",
    "-> W=0 FCN=3 X",
    "-> W=0 FCN=2 X",
    "-> W=0 All-1",
    "<- ACK W=0 C=0 1100001",
];

/// Figure 33: ACK-Always, six tiles, three losses, one retry each. The receiver checks the RCS
/// after each resent tile but answers only the last one, when the check succeeds (RFC 8724
/// §8.4.2.2: in the last window a failed check is acknowledged only for an All-1).
#[test]
fn figure_33_ack_always_six_tiles() {
    let (rule, t, _) = ack_always(SIX_TILES, &[2, 3, 4], &[]);
    let mut expected = lines(&SIX_TILES_START);
    expected.extend(lines(&[
        "-> W=0 FCN=4",
        "-> W=0 FCN=3",
        "-> W=0 FCN=2",
        "<- ACK W=0 C=1",
    ]));
    assert_eq!(describe(&rule, &t.events, None), expected);
}

/// Figure 34: as Figure 33, with the final ACK lost: the sender's timer expires, it sends an ACK
/// REQ, and the receiver (in its clean-up phase) sends the ACK again.
#[test]
fn figure_34_ack_always_ack_lost() {
    let (rule, t, _) = ack_always(SIX_TILES, &[2, 3, 4], &[1]);
    let mut expected = lines(&SIX_TILES_START);
    expected.extend(lines(&[
        "-> W=0 FCN=4",
        "-> W=0 FCN=3",
        "-> W=0 FCN=2",
        "<- ACK W=0 C=1 X",
        "-> W=0 ACK REQ",
        "<- ACK W=0 C=1",
    ]));
    let d = describe(&rule, &t.events, None);
    assert_eq!(d, expected);
    // The ACK REQ went out when the retransmission timer expired.
    let req = d.iter().position(|l| l.ends_with("ACK REQ")).unwrap();
    assert_eq!(t.events[req - 1].at, 0);
    assert_eq!(t.events[req].at, RETRANS_US);
}

/// Figure 35: as Figure 33, the resent tile 2 lost again. The RFC prints the bitmap after the
/// ACK REQ as `1111101`; with tiles 6, 5, 4, 3 and the All-1's received it is `1111001` (tile 1
/// never existed in a six-tile packet; the rightmost bit is the All-1's tile).
#[test]
fn figure_35_ack_always_resent_tile_lost_again() {
    let (rule, t, _) = ack_always(SIX_TILES, &[2, 3, 4, 8], &[]);
    let mut expected = lines(&SIX_TILES_START);
    expected.extend(lines(&[
        "-> W=0 FCN=4",
        "-> W=0 FCN=3",
        "-> W=0 FCN=2 X",
        "-> W=0 ACK REQ",
        "<- ACK W=0 C=0 1111001",
        "-> W=0 FCN=2",
        "<- ACK W=0 C=1",
    ]));
    assert_eq!(describe(&rule, &t.events, None), expected);
}

/// Figure 36: ACK-Always, 28 tiles, N = 5, WINDOW_SIZE 24, two losses. Rule ID 2 bits: an
/// 8-bit header; a 7-byte MTU gives 48-bit tiles and room for a last tile of 8 to 16 bits.
#[test]
fn figure_36_ack_always_28_tiles() {
    let rule = frag_rule(0b10, 2, params(FragMode::AckAlways, 1, 5, 24));
    let bits = 27 * 48 + 8;
    let p = packet(bits / 8, 36);
    let link = Link::script(&[2, 13], &[]);
    let t = run(&rule, &p, bits, Setup::new(7).interleaved().link(link));
    let mut expected = Vec::new();
    for fcn in (0..24).rev() {
        let lost = fcn == 21 || fcn == 10;
        expected.push(format!("-> W=0 FCN={fcn}{}", if lost { " X" } else { "" }));
    }
    expected.extend(lines(&[
        "<- ACK W=0 C=0 110111111111101111111111",
        "-> W=0 FCN=21",
        "-> W=0 FCN=10",
        "<- ACK W=0 C=0 111111111111111111111111",
        "-> W=1 FCN=23",
        "-> W=1 FCN=22",
        "-> W=1 FCN=21",
        "-> W=1 All-1",
        "<- ACK W=1 C=1",
    ]));
    assert_eq!(describe(&rule, &t.events, None), expected);
    assert_eq!(t.sender, SenderAction::Done);
    assert!(t.delivered_exactly(&p, bits, 8));
}

// ---------------------------------------------------------------------------------------------
// RFC 9011 (LoRaWAN): V-LW-2, V-LW-3, V-LW-4

/// V-LW-2: the uplink messages of RFC 9011 (FPort 20 = Rule ID, W 2 bits, FCN 6 bits), written
/// by us and read back.
#[test]
fn v_lw_2_uplink_header_bytes() {
    let rule = rfc9011_uplink();
    let l = Layout::new(&rule).unwrap();
    let mut out = [0u8; 8];
    let n = wire::write_ack_req(&l, 0, 0, &mut out).unwrap();
    assert_eq!(to_hex(&out[..n]), "1400");
    assert_eq!(
        wire::parse_fragment(&l, &out[..n]).unwrap().kind,
        FragmentKind::AckReq
    );
    let n = wire::write_sender_abort(&l, 0, &mut out).unwrap();
    assert_eq!(to_hex(&out[..n]), "14ff");
    assert_eq!(
        wire::parse_fragment(&l, &out[..n]).unwrap().kind,
        FragmentKind::SenderAbort
    );
    let n = wire::write_receiver_abort(&l, 0, &mut out).unwrap();
    assert_eq!(to_hex(&out[..n]), "14ffff");
    assert_eq!(
        wire::parse_ack(&l, &out[..n]).unwrap(),
        Ack::ReceiverAbort { dtag: 0 }
    );
    let n = wire::write_ack_success(&l, 0, 0, &mut out).unwrap();
    assert_eq!(to_hex(&out[..n]), "1420");
    let n = wire::write_ack_success(&l, 0, 3, &mut out).unwrap();
    assert_eq!(to_hex(&out[..n]), "14e0");
    // The fragments' first bytes and the All-1 come from the V-LW-3 exchange below; here the
    // All-1 and a regular fragment are told apart from the ACK REQ and the Sender-Abort by size.
    let all1 = [0x14, 0x3f, 0xde, 0xad, 0xbe, 0xef];
    assert_eq!(
        wire::parse_fragment(&l, &all1).unwrap().kind,
        FragmentKind::All1 { rcs: 0xdead_beef }
    );
    let mut regular = vec![0x14, 0x26];
    regular.extend_from_slice(&[0x55; 10]);
    let f = wire::parse_fragment(&l, &regular).unwrap();
    assert_eq!(
        (f.w, f.fcn, f.kind, f.payload_bits),
        (0, 38, FragmentKind::Regular, 80)
    );
}

/// V-LW-3: RFC 9011's uplink example. A 2261-bit SCHC packet (Rule ID, 21 bits of residue, 279
/// bytes) in 29 tiles of 10 bytes (the last 21 bits), the last tile in a regular fragment. The
/// MTU is 11 bytes for the first frame (one tile), then 242 with 4 bytes of FOpts (23 tiles),
/// then 242 (the last 5 tiles, 42 bytes 5 bits and 3 padding bits), then the All-1 with the RCS
/// only, then the ACK. Frame sizes here count the FPort byte (our Rule ID), RFC 9011's do not.
///
/// Between the first and second frames the RFC's device has an 11-byte MTU with 2 bytes of
/// FOpts and sends no fragment (no tile fits): with a sans-IO sender that is simply not calling
/// `poll` for that uplink, so it does not appear here. The RFC prints the All-1 as 44 bytes: a
/// copy-paste slip, it is 5 (1 byte of W/FCN and the 4-byte RCS).
#[test]
fn v_lw_3_uplink_example() {
    let mut rule = rfc9011_uplink();
    if let Nature::Fragmentation(fp) = &mut rule.nature {
        fp.tile_in_all1 = TileInAll1::No;
    }
    let mut pk = packet(283, 9011);
    pk[0] = 0x01; // Rule 1, as in the example; any bits would do.
    let bits = 8 + 21 + 279 * 8;
    assert_eq!(bits, 2261);
    let sender = Sender::new(&rule, &pk, bits, 0, 12).unwrap();
    assert_eq!(sender.tiles(), 29);
    // RCS: the 2261 bits and the 3 padding bits of the fragment carrying the last tile.
    let mut padded = pk.clone();
    padded[282] &= 0xf8;
    assert_eq!(sender.rcs(), crc32(&padded));
    let mut setup = Setup::new(12).interleaved();
    setup.mtu_changes = vec![(1, 238 + 1), (2, 242 + 1)];
    let t = run_with(&rule, sender, setup);
    let payload_sizes: Vec<(bool, usize)> = t
        .events
        .iter()
        .map(|e| (e.from_sender, e.bytes.len() - 1))
        .collect();
    assert_eq!(
        payload_sizes,
        vec![(true, 11), (true, 231), (true, 44), (true, 5), (false, 1)]
    );
    let hex: Vec<String> = t.events.iter().map(|e| to_hex(&e.bytes)).collect();
    assert!(hex[0].starts_with("143e"));
    assert_eq!(hex[0][4..], to_hex(&pk[..10]));
    assert!(hex[1].starts_with("143d"));
    assert!(hex[2].starts_with("1426"));
    // The frame ends with the last tile's 21 bits and 3 zero bits.
    assert_eq!(t.events[2].bytes.last(), padded.last());
    assert_eq!(hex[3], format!("143f{:08x}", crc32(&padded)));
    assert_eq!(hex[4], "1420");
    assert_eq!(t.sender, SenderAction::Done);
    assert!(t.delivered_exactly(&pk, bits, 8));
}

/// The RFC 9011 downlink rule: FPort 21, ACK-Always, M = 1, N = 1, WINDOW_SIZE 1.
fn rfc9011_downlink() -> Rule {
    frag_rule(21, 8, params(FragMode::AckAlways, 1, 1, 1))
}

/// The V-LW-4 packet: 1045 bits (Rule ID, 21 bits of residue, 127 bytes), zero after them.
fn v_lw_4_packet() -> Vec<u8> {
    let mut pk = packet(131, 4);
    pk[130] &= 0xf8;
    pk
}

/// The V-LW-4 frames: tiles of 406 bits (W 0, FCN 0), 390 bits (W 1, FCN 0), and the All-1
/// (W 0) with the RCS and the last 249 bits, padded to a byte; and the RCS input (the packet
/// and the All-1's 5 padding bits, zero-extended).
fn v_lw_4_frames(pk: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let frame = |w: u64, fcn: u64, rcs: Option<u32>, off: usize, n: usize| {
        let mut out = [0u8; 64];
        let mut bw = BitWriter::new(&mut out);
        bw.write(21, 8).unwrap();
        bw.write(w, 1).unwrap();
        bw.write(fcn, 1).unwrap();
        if let Some(r) = rcs {
            bw.write(u64::from(r), 32).unwrap();
        }
        bw.copy_bits(pk, off, n).unwrap();
        bw.pad_to(8).unwrap();
        let len = bw.byte_len();
        out[..len].to_vec()
    };
    let mut rcs_input = pk.to_vec();
    rcs_input.push(0);
    let rcs = crc32(&rcs_input);
    let frames = vec![
        frame(0, 0, None, 0, 406),
        frame(1, 0, None, 406, 390),
        frame(0, 1, Some(rcs), 796, 249),
    ];
    (frames, rcs_input)
}

/// V-LW-4, the fragment receiver (the device): RFC 9011's downlink example. A 1045-bit SCHC
/// packet in tiles of 406 bits (W 0), 390 bits (W 1: the MTU shrank by 2 bytes of FOpts) and an
/// All-1 (W 0 again) with the RCS and the last 249 bits and 5 bits of padding. The W sequence
/// 0, 1, 0 is the window counter's LSB. RFC 8724 §8.4.2 does not require tiles of one size, so
/// our receiver learns each window's tile size.
///
/// RFC 9011 answers every window with the "RCS is correct" ACK (C = 1: `40`, `C0`, `40`). RFC
/// 8724 §8.3.2 defines C = 1 as a successful integrity check, which only the last window can
/// have, and its Figures 31, 32 and 36 answer a complete intermediate window with C = 0 and a
/// full bitmap: that is what our receiver sends (`20`, `A0`: C = 0, bitmap `1`), and the final
/// ACK is the RFC's `40`. Our sender accepts both forms (next test).
///
/// Sizes: RFC 9011 prints the frames as 51, 49 and 37 bytes; the first two leave the FPort byte
/// out, the third counts it (36 without): the test counts without it. The text says the first
/// tile holds "RuleID + 21 bits + 48 bytes 1 bit" (414 bits); a 406-bit tile holds 47 bytes
/// 1 bit after them. Neither changes the bytes.
#[test]
fn v_lw_4_downlink_example_receiver() {
    let rule = rfc9011_downlink();
    let bits = 8 + 21 + 127 * 8;
    assert_eq!(bits, 1045);
    let pk = v_lw_4_packet();
    // The RCS covers the packet and the All-1's 5 padding bits: 1050 bits, zero-extended.
    let (frames, rcs_input) = v_lw_4_frames(&pk);
    let sizes: Vec<usize> = frames.iter().map(|f| f.len() - 1).collect();
    assert_eq!(sizes, vec![51, 49, 36]);
    let mut buf = vec![0u8; Receiver::buffer_len(&rule, 64)];
    let mut rx = Receiver::new(&rule, &mut buf[..], 0).unwrap();
    let mut acks = Vec::new();
    let mut delivered = None;
    let mut out = [0u8; 8];
    for f in &frames {
        rx.handle_frame(f, 0).unwrap();
        loop {
            match rx.poll(0, &mut out).unwrap() {
                ReceiverAction::Send(n) => acks.push(to_hex(&out[..n])),
                ReceiverAction::Delivered { bits } => delivered = Some(bits),
                _ => break,
            }
        }
    }
    assert_eq!(acks, vec!["1520", "15a0", "1540"]);
    assert_eq!(delivered, Some(1045 + 5));
    assert_eq!(rx.packet().unwrap().0, &rcs_input[..]);
    // RFC 9011's other downlink ACKs: failure with the 1-bit bitmap, and the Receiver-Abort.
    let l = Layout::new(&rule).unwrap();
    let n = wire::write_ack_failure(&l, 0, &[(0, 1)], &mut out).unwrap();
    assert_eq!(to_hex(&out[..n]), "1520");
    let n = wire::write_receiver_abort(&l, 0, &mut out).unwrap();
    assert_eq!(to_hex(&out[..n]), "15ffff");
    assert_eq!(
        wire::parse_ack(&l, &[0x15, 0xc0]).unwrap(),
        Ack::Success { dtag: 0, w: 1 }
    );
}

/// V-LW-4, the fragment sender (the gateway), answered with RFC 9011's own ACKs (`40`, `C0`,
/// `40`). ACK-Always cuts each window when it starts sending it, filling the MTU then (RFC 9011:
/// "size = current MTU, varies per downlink"): 52 bytes for the first downlink gives the 406-bit
/// tile; 2 bytes of FOpts in the next downlinks leave 50, hence the 390-bit tile and an All-1
/// with the last 249 bits. The frames are the RFC's bit for bit (sizes 51, 49 and 36 bytes
/// without the FPort byte, W 0, 1, 0), and the sender ends successfully.
#[test]
fn v_lw_4_downlink_example_sender() {
    let rule = rfc9011_downlink();
    let pk = v_lw_4_packet();
    let (rfc, rcs_input) = v_lw_4_frames(&pk);
    let mut s = Sender::new(&rule, &pk, 1045, 0, 52).unwrap();
    // The plan at 52 bytes: 406, 406 and 233 bits.
    assert_eq!((s.tile_bits(), s.tiles()), (406, 3));
    let mut out = [0u8; 64];
    let mut frames = Vec::new();
    let mut tiles = Vec::new();
    let answers = [[0x15u8, 0x40], [0x15, 0xc0], [0x15, 0x40]];
    let mut next = answers.iter();
    let end = loop {
        match s.poll(0, &mut out).unwrap() {
            SenderAction::Send(n) => {
                frames.push(out[..n].to_vec());
                tiles.push(s.tile_bits());
            }
            SenderAction::WaitUntil(_) => {
                s.handle_ack(next.next().unwrap(), 0).unwrap();
                // The next downlinks carry 2 bytes of FOpts.
                s.set_mtu(50);
            }
            a => break a,
        }
    };
    assert_eq!(end, SenderAction::Done);
    assert!(next.next().is_none(), "three ACKs");
    assert_eq!(tiles[..2], [406, 390]);
    assert_eq!(s.tiles(), 3);
    assert_eq!(s.rcs(), crc32(&rcs_input));
    let l = Layout::new(&rule).unwrap();
    let parsed: Vec<_> = frames
        .iter()
        .map(|f| wire::parse_fragment(&l, f).unwrap())
        .collect();
    let wf: Vec<(u32, u32)> = parsed.iter().map(|p| (p.w, p.fcn)).collect();
    assert_eq!(wf, vec![(0, 0), (1, 0), (0, 1)]);
    // Tiles of 406 and 390 bits, then (after the RCS) the last 249 bits and 5 bits of padding.
    let payloads: Vec<usize> = parsed.iter().map(|p| p.payload_bits).collect();
    assert_eq!(payloads, vec![406, 390, 249 + 5]);
    let sizes: Vec<usize> = frames.iter().map(|f| f.len() - 1).collect();
    assert_eq!(sizes, vec![51, 49, 36]);
    let hex: Vec<String> = frames.iter().map(|f| to_hex(f)).collect();
    let rfc_hex: Vec<String> = rfc.iter().map(|f| to_hex(f)).collect();
    assert_eq!(hex, rfc_hex);
    // And against our receiver, which answers intermediate windows with C = 0 (see above).
    let mut setup = Setup::new(52).interleaved();
    setup.mtu_changes = vec![(1, 50)];
    let t = run(&rule, &pk, 1045, setup);
    assert_eq!(
        describe(&rule, &t.events, None),
        lines(&[
            "-> W=0 FCN=0",
            "<- ACK W=0 C=0 1",
            "-> W=1 FCN=0",
            "<- ACK W=1 C=0 1",
            "-> W=0 All-1",
            "<- ACK W=0 C=1",
        ])
    );
    let sent: Vec<String> = t.frames(true).iter().map(|e| to_hex(&e.bytes)).collect();
    assert_eq!(sent, rfc_hex);
    assert!(t.mtu_refusals.is_empty());
    assert_eq!(t.sender, SenderAction::Done);
    assert!(t.delivered_exactly(&pk, 1045, 8));
    // With the MTU staying at 52 bytes, the windows fill it: 406, 406, and 233 bits in the
    // All-1.
    let t = run(&rule, &pk, 1045, Setup::new(52).interleaved());
    let sizes: Vec<usize> = t.frames(true).iter().map(|e| e.bytes.len() - 1).collect();
    assert_eq!(sizes, vec![51, 51, 34]);
    assert_eq!(t.sender, SenderAction::Done);
    assert!(t.delivered_exactly(&pk, 1045, 8));
}

// ---------------------------------------------------------------------------------------------
// RFC 9441 compound ACK

fn compound_rule(lbc: bool) -> Rule {
    let mut p = params(FragMode::AckOnError, 2, 3, 7);
    p.tile_size = 40;
    p.tile_in_all1 = TileInAll1::Yes;
    p.bitmap_format = BitmapFormat::CompoundAck;
    p.last_bitmap_compression = lbc;
    frag_rule(0x14, 8, p)
}

/// A compound ACK built by hand from RFC 9441 §3.1: `Rule ID | W=w1 | C=0 | bitmap(w1) | W=w2 |
/// bitmap(w2) | ... | 0..0 (M bits) | pad`, parsed by us; and ours written bit for bit.
#[test]
fn compound_ack_by_hand() {
    let rule = compound_rule(true);
    let l = Layout::new(&rule).unwrap();
    // Windows 0 and 2: 11 + 7 + 2 + 7 = 27 bits. The last bitmap cannot be cut (its last 0 is
    // its 6th bit; the next boundary, 32, lies past its end); 5 padding bits remain, at least M,
    // so the M-bit zero terminator follows, then 3 bits of padding.
    let hand = bits_to_bytes("00010100 00 0 1101011 10 1111101 00 000");
    let windows = [(0, bitmap("1101011")), (2, bitmap("1111101"))];
    assert_eq!(
        wire::parse_ack(&l, &hand).unwrap(),
        Ack::Failure {
            dtag: 0,
            windows: windows.as_slice().try_into().unwrap()
        }
    );
    let mut out = [0u8; 16];
    let n = wire::write_ack_failure(&l, 0, &windows, &mut out).unwrap();
    assert_eq!(to_hex(&out[..n]), to_hex(&hand));
    // Windows 1 and 3, the last bitmap cut after its last 0 at the 24-bit boundary: 4 bits
    // kept, no terminator, no padding.
    let hand = bits_to_bytes("00010100 01 0 0111111 11 1011");
    let windows = [(1, bitmap("0111111")), (3, bitmap("1011111"))];
    assert_eq!(
        wire::parse_ack(&l, &hand).unwrap(),
        Ack::Failure {
            dtag: 0,
            windows: windows.as_slice().try_into().unwrap()
        }
    );
    let n = wire::write_ack_failure(&l, 0, &windows, &mut out).unwrap();
    assert_eq!(to_hex(&out[..n]), to_hex(&hand));
    // Without last-bitmap compression the same ACK is 29 bits and 3 of padding: at least M,
    // so the terminator is there.
    let plain = compound_rule(false);
    let lp = Layout::new(&plain).unwrap();
    let n = wire::write_ack_failure(&lp, 0, &windows, &mut out).unwrap();
    assert_eq!(
        to_hex(&out[..n]),
        to_hex(&bits_to_bytes("00010100 01 0 0111111 11 1011111 00 0"))
    );
    // Three windows, uncut: 11 + 7 + (2 + 7) × 2 = 36 bits, 4 padding bits: terminator, then
    // 2 bits of padding.
    let windows = [
        (0, bitmap("0111111")),
        (1, bitmap("1011111")),
        (2, bitmap("1101111")),
    ];
    let n = wire::write_ack_failure(&lp, 0, &windows, &mut out).unwrap();
    assert_eq!(
        to_hex(&out[..n]),
        to_hex(&bits_to_bytes(
            "00010100 00 0 0111111 01 1011111 10 1101111 00 00"
        ))
    );
    // Windows must come in increasing order (RFC 9441 §3.1): 2 then 1 is not a compound ACK.
    let bad = bits_to_bytes("00010100 10 0 1101011 01 1111101 00 000");
    assert!(matches!(
        wire::parse_ack(&l, &bad),
        Err(lpwan_schc::frag::FragError::Malformed { .. })
    ));
    // A rule whose header makes the message end 1 bit before a boundary: no terminator.
    let mut p = params(FragMode::AckOnError, 2, 3, 7);
    p.bitmap_format = BitmapFormat::CompoundAck;
    let odd = frag_rule(0b1010, 4, p);
    let lo = Layout::new(&odd).unwrap();
    // 4 + 2 + 1 + 7 + 2 + 7 = 23 bits: 1 padding bit, fewer than M.
    let windows = [(0, bitmap("0111111")), (1, bitmap("1011111"))];
    let n = wire::write_ack_failure(&lo, 0, &windows, &mut out).unwrap();
    let hand = bits_to_bytes("1010 00 0 0111111 01 1011111 0");
    assert_eq!(to_hex(&out[..n]), to_hex(&hand));
    assert_eq!(
        wire::parse_ack(&lo, &hand).unwrap(),
        Ack::Failure {
            dtag: 0,
            windows: windows.as_slice().try_into().unwrap()
        }
    );
}

/// An ACK-on-Error exchange with losses in windows 0 and 2: the receiver reports both in one
/// compound ACK after the All-1, and the sender resends the tiles of both windows before asking
/// again (RFC 9441 §3.2).
#[test]
fn compound_ack_exchange_two_windows() {
    let rule = compound_rule(true);
    // 18 tiles of 40 bits: windows 0 and 1 full, window 2 has 4 tiles (the last in the All-1).
    let bits = 18 * 40;
    let p = packet(bits / 8, 9441);
    // Lost: W0 FCN 4 (frame 2) and W2 FCN 5 (frame 15).
    let link = Link::script(&[2, 15], &[]);
    let t = run(&rule, &p, bits, Setup::new(11).interleaved().link(link));
    let d = describe(&rule, &t.events, Some(40));
    assert_eq!(d[14], "-> W=2 FCN=6");
    assert_eq!(d[15], "-> W=2 FCN=5 X");
    assert_eq!(
        d[17..].to_vec(),
        lines(&[
            "-> W=2 All-1",
            "<- ACK W=0 C=0 1101111 + W=2 1010001",
            "-> W=0 FCN=4",
            "-> W=2 FCN=5",
            "<- ACK W=2 C=1",
        ])
    );
    assert_eq!(t.sender, SenderAction::Done);
    assert!(t.delivered_exactly(&p, bits, 8));
    // The same losses with RFC 8724 ACKs take one ACK per window.
    let mut plain = rule;
    if let Nature::Fragmentation(fp) = &mut plain.nature {
        fp.bitmap_format = BitmapFormat::Rfc8724;
    }
    let t = run(
        &plain,
        &p,
        bits,
        Setup::new(11)
            .interleaved()
            .link(Link::script(&[2, 15], &[])),
    );
    let acks: Vec<String> = describe(&plain, &t.events, Some(40))
        .into_iter()
        .filter(|s| s.starts_with("<-"))
        .collect();
    assert_eq!(
        acks,
        lines(&[
            "<- ACK W=0 C=0 1101111",
            "<- ACK W=2 C=0 1010001",
            "<- ACK W=2 C=1"
        ])
    );
    assert!(t.delivered_exactly(&p, bits, 8));
}
