//! Fragmentation: sender and receiver against each other over a scripted lossy link, and
//! against the frames other implementations produced (tests/vectors/fragmentation*/).

mod common;
use common::{hex, to_hex};
use std::path::Path;

use lpwan_schc::frag::{Receiver, ReceiverAction, Sender, SenderAction};
use lpwan_schc::json;
use lpwan_schc::rule::Rule;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
struct Frame {
    from_sender: bool,
    hex: String,
    dropped: bool,
}

#[derive(Debug)]
struct Outcome {
    frames: Vec<Frame>,
    delivered: Option<Vec<u8>>,
    sender: SenderAction,
}

/// Runs a sender and a receiver against each other. `drop_s`/`drop_r` are indices (in each
/// side's own frame count) of frames the link loses.
fn exchange(rule: &Rule, packet: &[u8], mtu: usize, drop_s: &[usize], drop_r: &[usize]) -> Outcome {
    let mut sender = Sender::new(rule, packet, packet.len() * 8, 0, mtu).unwrap();
    let mut buf = vec![0u8; Receiver::buffer_len(rule, mtu)];
    let mut receiver = Receiver::new(rule, &mut buf, 0).unwrap();
    let mut frames = Vec::new();
    let (mut ns, mut nr) = (0, 0);
    let mut now = 0u64;
    let mut delivered = None;
    let mut out = vec![0u8; mtu.max(64)];
    let mut ack = vec![0u8; 64];
    let mut sender_end = SenderAction::WaitUntil(0);
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 10_000, "no progress");
        let a = sender.poll(now, &mut out).unwrap();
        match a {
            SenderAction::Send(n) => {
                assert!(n <= mtu, "frame of {n} bytes over the MTU {mtu}");
                let dropped = drop_s.contains(&ns);
                ns += 1;
                frames.push(Frame {
                    from_sender: true,
                    hex: to_hex(&out[..n]),
                    dropped,
                });
                if !dropped {
                    receiver.handle_frame(&out[..n], now).unwrap();
                }
            }
            SenderAction::Done | SenderAction::Aborted(_) => {
                sender_end = a;
            }
            SenderAction::WaitUntil(t) => {
                // Let the receiver answer; if it has nothing, time passes.
                let mut answered = false;
                loop {
                    match receiver.poll(now, &mut ack).unwrap() {
                        ReceiverAction::Send(n) => {
                            let dropped = drop_r.contains(&nr);
                            nr += 1;
                            frames.push(Frame {
                                from_sender: false,
                                hex: to_hex(&ack[..n]),
                                dropped,
                            });
                            if !dropped {
                                sender.handle_ack(&ack[..n], now).unwrap();
                                answered = true;
                            }
                        }
                        ReceiverAction::Delivered { .. } => {
                            delivered = receiver.packet().map(|(b, bits)| b[..bits / 8].to_vec());
                        }
                        _ => break,
                    }
                }
                if !answered {
                    now = t;
                }
                continue;
            }
        }
        if matches!(a, SenderAction::Done | SenderAction::Aborted(_)) {
            break;
        }
    }
    // Drain the receiver (No-ACK delivers on the All-1).
    loop {
        match receiver.poll(now, &mut ack).unwrap() {
            ReceiverAction::Send(n) => {
                frames.push(Frame {
                    from_sender: false,
                    hex: to_hex(&ack[..n]),
                    dropped: false,
                });
            }
            ReceiverAction::Delivered { .. } => {
                delivered = receiver.packet().map(|(b, bits)| b[..bits / 8].to_vec());
            }
            _ => break,
        }
    }
    Outcome {
        frames,
        delivered,
        sender: sender_end,
    }
}

fn load(rel: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(rel);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn rule_of(v: &Value) -> Rule {
    let set = json::from_value(&v["rules"]).unwrap();
    *set.as_set().rules().first().unwrap()
}

#[test]
fn libschc_vectors_reassemble_and_our_frames_match_where_the_rfc_agrees() {
    for name in ["no-ack-66B", "ack-always-66B", "ack-on-error-66B-no-loss"] {
        let v = load(&format!("fragmentation/{name}.json"));
        let rule = rule_of(&v);
        let packet = hex(v["schc_packet_hex"].as_str().unwrap());
        let mtu = v["params"]["mtu_bytes"].as_u64().unwrap() as usize;
        // Their frames, fed to our receiver, give the packet back.
        let mut buf = vec![0u8; Receiver::buffer_len(&rule, mtu)];
        let mut rx = Receiver::new(&rule, &mut buf, 0).unwrap();
        let mut ack = [0u8; 16];
        let mut got = None;
        for f in v["frames"].as_array().unwrap() {
            if f["from"] == "sender" {
                rx.handle_frame(&hex(f["hex"].as_str().unwrap()), 0)
                    .unwrap();
            }
            while let ReceiverAction::Send(_) | ReceiverAction::Delivered { .. } =
                rx.poll(0, &mut ack).unwrap()
            {
                if let Some((b, bits)) = rx.packet() {
                    got = Some(b[..bits / 8].to_vec());
                }
            }
        }
        assert_eq!(
            got.as_deref().map(to_hex),
            Some(to_hex(&packet)),
            "{name}: libschc frames reassemble"
        );
        // Our own exchange.
        let o = exchange(&rule, &packet, mtu, &[], &[]);
        assert_eq!(
            o.delivered.as_deref().map(to_hex),
            Some(to_hex(&packet)),
            "{name}: our exchange"
        );
        let theirs: Vec<String> = v["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["hex"].as_str().unwrap().to_string())
            .collect();
        let ours: Vec<String> = o.frames.iter().map(|f| f.hex.clone()).collect();
        if name == "no-ack-66B" {
            // libschc ends with a 79-bit tile and a 6-bit last tile; RFC 8724 §8.4.1 wants every
            // tile at least one L2 word, so our tiles are 79 bits and the last 46 bits: the frames
            // differ after the first regular ones' content, by design.
            assert_ne!(ours, theirs);
        } else {
            assert_eq!(ours, theirs, "{name}: frame by frame");
        }
    }
}

/// openschc exchanges (ACK-on-Error and No-ACK, with chosen frames lost): our sender and
/// receiver deliver the identical packet under the same losses; our receiver reassembles
/// openschc's own frames; and our first transmission is byte-for-byte openschc's (No-ACK:
/// up to the penultimate fragment, which RFC 8724 §8.4.1 makes shorter so that the last tile
/// is at least one L2 word, where openschc sends a 7-bit last tile).
#[test]
fn openschc_exchanges() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/fragmentation-openschc");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert_eq!(names.len(), 11);
    for p in names {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        let rule = rule_of(&v);
        let packet = hex(v["schc_packet_hex"].as_str().unwrap());
        let mtu = v["params"]["mtu_bytes"].as_u64().unwrap() as usize;
        let list = |k: &str| -> Vec<usize> {
            v["params"][k]
                .as_array()
                .map(|a| a.iter().map(|x| x.as_u64().unwrap() as usize).collect())
                .unwrap_or_default()
        };
        let o = exchange(
            &rule,
            &packet,
            mtu,
            &list("drop_sender_frames"),
            &list("drop_receiver_frames"),
        );
        assert_eq!(o.sender, SenderAction::Done, "{name}");
        assert_eq!(
            o.delivered.as_deref().map(to_hex),
            Some(to_hex(&packet)),
            "{name}: delivered"
        );
        let theirs = v["frames"].as_array().unwrap();
        // Their sender's frames that reached the receiver, into our receiver.
        let mut buf = vec![0u8; Receiver::buffer_len(&rule, mtu)];
        let mut rx = Receiver::new(&rule, &mut buf, 0).unwrap();
        let mut ack = [0u8; 64];
        let mut got = None;
        for f in theirs
            .iter()
            .filter(|f| f["from"] == "sender" && f["dropped"] != true)
        {
            rx.handle_frame(&hex(f["hex"].as_str().unwrap()), 0)
                .unwrap();
            while let ReceiverAction::Send(_) | ReceiverAction::Delivered { .. } =
                rx.poll(0, &mut ack).unwrap()
            {
                if let Some((b, bits)) = rx.packet() {
                    got = Some(b[..bits / 8].to_vec());
                }
            }
        }
        assert_eq!(
            got.as_deref().map(to_hex),
            Some(to_hex(&packet)),
            "{name}: openschc frames reassemble"
        );
        // The first transmission, byte for byte.
        let first: Vec<&str> = theirs
            .iter()
            .take_while(|f| f["from"] == "sender")
            .map(|f| f["hex"].as_str().unwrap())
            .collect();
        let ours: Vec<&str> = o
            .frames
            .iter()
            .take(first.len())
            .map(|f| f.hex.as_str())
            .collect();
        if v["mode"] == "no-ack" {
            let n = first.len() - 2;
            assert_eq!(ours[..n], first[..n], "{name}: full regular fragments");
        } else {
            assert_eq!(ours, first, "{name}: first transmission");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Message formats, bad links, malformed frames, timers.

mod frag_harness;

use frag_harness::{
    bits_to_bytes, crc32, describe, frag_rule, packet, params, run, timer_us, Link, Seeded, Setup,
    INACTIVITY_US, RETRANS_US,
};
use lpwan_schc::frag::wire::{self, Ack, FragmentKind, Layout};
use lpwan_schc::frag::{AbortReason, FragError};
use lpwan_schc::rule::{AckBehavior, BitmapFormat, FragMode, Nature, TileInAll1};
use std::collections::VecDeque;

/// Hex digits as a bit string, for hand-built frames.
fn hex_bits(h: &str) -> String {
    hex(h).iter().map(|b| format!("{b:08b}")).collect()
}

/// An ACK-on-Error rule with every field present and of an odd width: Rule ID `10110` (5 bits),
/// DTag 3 bits, W 2 bits, FCN 4 bits (a 14-bit fragment header, an 11-bit ACK header),
/// WINDOW_SIZE 3, 32-bit tiles, the last tile in the All-1.
fn odd_rule() -> Rule {
    let mut p = params(FragMode::AckOnError, 2, 4, 3);
    p.dtag_bits = 3;
    p.tile_size = 32;
    p.tile_in_all1 = TileInAll1::Yes;
    frag_rule(0b10110, 5, p)
}

/// Every message format, bit for bit, with the field widths of the rule: fragments carrying
/// several tiles, the All-0, the All-1 with its RCS (most significant byte first) before the
/// last tile, the ACK REQ, both aborts, and both ACKs.
#[test]
fn every_message_format_bit_for_bit() {
    let rule = odd_rule();
    let l = Layout::new(&rule).unwrap();
    assert_eq!((l.header_bits(), l.ack_header_bits()), (14, 11));
    let p = hex("00112233445566778899aabbccddeeff");
    // A 10-byte MTU: two tiles per regular fragment (14 + 64 = 78 bits), and the All-1 with
    // the RCS and the last tile (14 + 32 + 32 = 78 bits).
    let mut s = Sender::new(&rule, &p, 128, 5, 10).unwrap();
    let mut out = [0u8; 16];
    let mut frames = Vec::new();
    while let SenderAction::Send(n) = s.poll(0, &mut out).unwrap() {
        frames.push(out[..n].to_vec());
    }
    // The RCS covers the packet and the All-1's 2 padding bits, zero-extended to a byte.
    let mut rcs_in = p.clone();
    rcs_in.push(0);
    let rcs = crc32(&rcs_in);
    let expected = [
        // Rule ID | DTag 5 | W 0 | FCN 2 | tiles 0 and 1 | 2 padding bits
        format!("10110 101 00 0010 {} 00", hex_bits("0011223344556677")),
        // W 0, FCN 0: the All-0 with tile 2 (6 bytes: 46 bits and 2 of padding)
        format!("10110 101 00 0000 {} 00", hex_bits("8899aabb")),
        // W 1, FCN all ones | RCS | the last tile | 2 padding bits
        format!("10110 101 01 1111 {:032b} {} 00", rcs, hex_bits("ccddeeff")),
    ];
    let expected: Vec<String> = expected.iter().map(|b| to_hex(&bits_to_bytes(b))).collect();
    let ours: Vec<String> = frames.iter().map(|f| to_hex(f)).collect();
    assert_eq!(ours, expected);
    let parsed: Vec<_> = frames
        .iter()
        .map(|f| wire::parse_fragment(&l, f).unwrap())
        .map(|f| (f.dtag, f.w, f.fcn, f.kind, f.payload_off, f.payload_bits))
        .collect();
    assert_eq!(
        parsed,
        vec![
            (5, 0, 2, FragmentKind::Regular, 14, 66),
            (5, 0, 0, FragmentKind::Regular, 14, 34),
            (5, 1, 15, FragmentKind::All1 { rcs }, 46, 34),
        ]
    );
    // The other messages, each written by us and drawn by hand.
    let mut written = Vec::new();
    let mut keep = |n: usize, out: &[u8]| written.push(out[..n].to_vec());
    keep(wire::write_ack_req(&l, 5, 1, &mut out).unwrap(), &out);
    keep(wire::write_sender_abort(&l, 5, &mut out).unwrap(), &out);
    keep(wire::write_ack_success(&l, 5, 1, &mut out).unwrap(), &out);
    keep(
        wire::write_ack_failure(&l, 5, &[(0, 0b101)], &mut out).unwrap(),
        &out,
    );
    keep(wire::write_receiver_abort(&l, 5, &mut out).unwrap(), &out);
    let drawn = [
        // ACK REQ: W 1, FCN 0, padding
        "10110 101 01 0000 00",
        // Sender-Abort: W and FCN all ones, padding
        "10110 101 11 1111 00",
        // success ACK: W 1, C 1, padding
        "10110 101 01 1 0000",
        // failure ACK: W 0, C 0, bitmap 101 (its last 0 is too close to the end to cut
        // anything: 13 bits, and the next boundary is past the bitmap), padding
        "10110 101 00 0 101 00",
        // Receiver-Abort: W all ones, C 1, ones to the boundary, then a whole byte of ones
        "10110 101 11 1 11111 11111111",
    ];
    for (bits, w) in drawn.iter().zip(&written) {
        assert_eq!(to_hex(w), to_hex(&bits_to_bytes(bits)), "{bits}");
    }
    assert_eq!(
        wire::parse_fragment(&l, &written[0]).unwrap().kind,
        FragmentKind::AckReq
    );
    assert_eq!(
        wire::parse_fragment(&l, &written[1]).unwrap().kind,
        FragmentKind::SenderAbort
    );
    assert_eq!(
        wire::parse_ack(&l, &written[2]).unwrap(),
        Ack::Success { dtag: 5, w: 1 }
    );
    assert_eq!(
        wire::parse_ack(&l, &written[3]).unwrap(),
        Ack::Failure {
            dtag: 5,
            windows: [(0, 0b101)].as_slice().try_into().unwrap()
        }
    );
    assert_eq!(
        wire::parse_ack(&l, &written[4]).unwrap(),
        Ack::ReceiverAbort { dtag: 5 }
    );
    // And our receiver takes the three fragments in and acknowledges with DTag 5.
    let mut buf = vec![0u8; Receiver::buffer_len(&rule, 10)];
    let mut rx = Receiver::new(&rule, &mut buf[..], 0).unwrap();
    for f in &frames {
        rx.handle_frame(f, 0).unwrap();
    }
    assert_eq!(rx.dtag(), Some(5));
    assert_eq!(
        rx.poll(0, &mut out).unwrap(),
        ReceiverAction::Send(2),
        "the success ACK"
    );
    assert_eq!(to_hex(&out[..2]), to_hex(&bits_to_bytes("10110 101 01 1")));
    assert_eq!(
        rx.poll(0, &mut out).unwrap(),
        ReceiverAction::Delivered { bits: 130 }
    );
    assert_eq!(rx.packet().unwrap().0, &rcs_in[..]);
}

/// Regression: with tiles that are not whole bytes, the All-1's tile (and its padding) was
/// copied in place as soon as the All-1 arrived, right after the tiles received so far, even
/// when later tiles had arrived; its padding overwrote the first bits of the next tile, and the
/// retransmitted tile never made the RCS match again (the sender then aborted). Here tile 6 (W 0,
/// FCN 13) of twelve 59-bit tiles is lost.
#[test]
fn all1_tile_is_placed_only_when_the_tiles_before_it_are_complete() {
    let mut p = params(FragMode::AckOnError, 2, 5, 20);
    p.tile_size = 59;
    p.tile_in_all1 = TileInAll1::Yes;
    let rule = frag_rule(1, 3, p);
    let pk = packet(89, 59);
    let bits = 12 * 59;
    let t = run(
        &rule,
        &pk,
        bits,
        Setup::new(14).link(Link::script(&[6], &[])),
    );
    let d = describe(&rule, &t.events, Some(59));
    assert_eq!(d[6], "-> W=0 FCN=13 X");
    assert_eq!(d[12], "<- ACK W=0 C=0 11111101111000000001");
    assert_eq!(d[13], "-> W=0 FCN=13");
    assert_eq!(d.last().unwrap(), "<- ACK W=0 C=1");
    assert_eq!(t.sender, SenderAction::Done);
    assert!(t.delivered_exactly(&pk, bits, 8));
}

/// Regression: a last tile that is a whole tile, in a regular fragment with padding (the
/// 13-bit header leaves 3 bits after each 40-bit tile). RFC 8724 §8.2.3 puts the padding of the
/// fragment carrying the last tile in the RCS input; the receiver dropped it (padding after
/// whole tiles is discarded, §8.4.3.2), its check failed forever and the session was aborted.
/// Lossless, and with the last fragment lost and resent.
#[test]
fn a_whole_last_tile_in_a_padded_regular_fragment() {
    let mut p = params(FragMode::AckOnError, 2, 3, 7);
    p.tile_size = 40;
    p.tile_in_all1 = TileInAll1::No;
    let rule = frag_rule(0x83, 8, p);
    let pk = packet(25, 40);
    for lose in [vec![], vec![4], vec![4, 5]] {
        // MTU 7: one tile per fragment (13 + 40 = 53 bits).
        let t = run(
            &rule,
            &pk,
            200,
            Setup::new(7).link(Link::script(&lose, &[])),
        );
        let d = describe(&rule, &t.events, Some(40));
        assert_eq!(
            d[4],
            format!("-> W=0 FCN=2{}", if lose.is_empty() { "" } else { " X" })
        );
        assert_eq!(t.sender, SenderAction::Done, "{d:?}");
        assert!(t.delivered_exactly(&pk, 200, 8), "{d:?}");
        // Delivered with the 3 padding bits of the fragment that carried it.
        assert_eq!(t.delivered.as_ref().unwrap().1, 203);
    }
}

/// Regression: without a tile size in the rule the receiver learns it from a fragment, so
/// every regular fragment must carry exactly one tile. With an 8-byte MTU and a 15-bit header
/// the sender settles on 17-bit tiles (the only size that leaves a last tile of 8 to 17 bits for
/// the All-1 here) and used to pack two of them per fragment: the receiver took 41 bits for a
/// tile, then placed tiles beyond the packet (`TileOutOfRange`) and never delivered.
#[test]
fn without_a_tile_size_one_tile_per_fragment() {
    let mut p = params(FragMode::AckOnError, 2, 4, 10);
    p.max_packet_size = 111;
    let rule = frag_rule(1, 9, p);
    let pk = packet(82, 41);
    let s = Sender::new(&rule, &pk, 656, 0, 8).unwrap();
    assert_eq!((s.tile_bits(), s.tiles()), (17, 39));
    let t = frag_harness::run_with(&rule, s, Setup::new(8));
    assert!(t.rx_errors.is_empty(), "{:?}", t.rx_errors);
    // 38 regular fragments of one tile (4 bytes each), the All-1, the ACK.
    let sizes: Vec<usize> = t.frames(true).iter().map(|e| e.bytes.len()).collect();
    assert_eq!(sizes.len(), 39);
    assert!(sizes[..38].iter().all(|&n| n == 4), "{sizes:?}");
    assert_eq!(t.sender, SenderAction::Done);
    assert!(t.delivered_exactly(&pk, 656, 8));
}

/// A last tile that, with the padding of its All-1, is shorter than an L2 word would read as
/// padding at the receiver (RFC 8724 §8.3.1.2, §8.4.3.2): the sender refuses the packet rather
/// than send a tile nobody can see. With enough padding bits it goes, and arrives.
#[test]
fn a_last_tile_the_receiver_cannot_see_is_refused() {
    // 78-bit tiles after a 10-bit header: 864 bits leave a 6-bit last tile; the All-1 (10 + 32
    // + 6 bits) ends on a byte: no padding, 6 bits < 8.
    let mut p = params(FragMode::AckOnError, 3, 5, 2);
    p.tile_size = 78;
    let rule = frag_rule(1, 2, p);
    let pk = packet(108, 78);
    assert!(matches!(
        Sender::new(&rule, &pk, 864, 0, 16),
        Err(FragError::BadRule { .. })
    ));
    // Any last tile of up to 6 bits ends the All-1 within its first byte of payload, padding
    // included: 42 + 6 = 48. A 7-bit one takes 7 padding bits along: 14 bits the receiver keeps
    // (the padding is part of the packet it delivers, and of the RCS).
    assert!(matches!(
        Sender::new(&rule, &pk, 862, 0, 16),
        Err(FragError::BadRule { .. })
    ));
    let pk = packet(109, 78);
    let t = run(&rule, &pk, 865, Setup::new(16));
    assert_eq!(t.sender, SenderAction::Done);
    assert!(t.delivered_exactly(&pk, 865, 8));
    assert_eq!(t.delivered.as_ref().unwrap().1, 865 + 7);
    // A packet shorter than an L2 word in No-ACK: the same.
    let rule = frag_rule(0x81, 8, params(FragMode::NoAck, 0, 1, 1));
    assert!(matches!(
        Sender::new(&rule, &[0xf0], 4, 0, 16),
        Err(FragError::BadRule { .. })
    ));
}

// --- a link that loses, duplicates and reorders

#[derive(Debug)]
struct Chaos {
    delivered: Option<(Vec<u8>, usize)>,
    sender: SenderAction,
    receiver: ReceiverAction,
    rx_errors: usize,
    steps: usize,
}

/// Runs our sender and receiver over a link that loses `loss` %, duplicates `dup` % and
/// delays (reorders) `late` % of the frames in both directions.
fn chaos(
    rule: &Rule,
    pk: &[u8],
    bits: usize,
    mtu: usize,
    seed: u64,
    pct: (u32, u32, u32),
) -> Chaos {
    let (loss, dup, late) = pct;
    let mut rng = Seeded::new(seed);
    let mut s = Sender::new(rule, pk, bits, 0, mtu).unwrap();
    let mut rx = Receiver::new(rule, vec![0u8; Receiver::buffer_len(rule, mtu)], 0).unwrap();
    let (mut to_rx, mut to_tx): (VecDeque<Vec<u8>>, VecDeque<Vec<u8>>) = Default::default();
    let mut out = vec![0u8; mtu];
    let mut ack = vec![0u8; 1100];
    let mut now = 0u64;
    let mut c = Chaos {
        delivered: None,
        sender: SenderAction::WaitUntil(0),
        receiver: ReceiverAction::Idle,
        rx_errors: 0,
        steps: 0,
    };
    let send = |q: &mut VecDeque<Vec<u8>>, f: &[u8], rng: &mut Seeded| {
        if rng.chance(loss) {
            return;
        }
        let copies = if rng.chance(dup) { 2 } else { 1 };
        for _ in 0..copies {
            if rng.chance(late) && !q.is_empty() {
                let at = rng.below(q.len());
                q.insert(at, f.to_vec());
            } else {
                q.push_back(f.to_vec());
            }
        }
    };
    let (mut s_end, mut r_end) = (None, None);
    loop {
        c.steps += 1;
        assert!(c.steps < 200_000, "no progress");
        let mut busy = false;
        let mut s_wait = None;
        if s_end.is_none() {
            match s.poll(now, &mut out).unwrap() {
                SenderAction::Send(n) => {
                    send(&mut to_rx, &out[..n], &mut rng);
                    busy = true;
                }
                SenderAction::WaitUntil(t) => s_wait = Some(t),
                a => s_end = Some(a),
            }
        }
        // Deliver a frame now and then while the sender is busy, all of them when it waits.
        if (!busy || rng.chance(30)) && !to_rx.is_empty() {
            let f = to_rx.pop_front().unwrap();
            if r_end.is_none() && rx.handle_frame(&f, now).is_err() {
                c.rx_errors += 1;
            }
            busy = true;
        }
        let mut r_wait = None;
        if r_end.is_none() {
            match rx.poll(now, &mut ack).unwrap() {
                ReceiverAction::Send(n) => {
                    send(&mut to_tx, &ack[..n], &mut rng);
                    busy = true;
                }
                ReceiverAction::Delivered { bits } => {
                    let (b, n) = rx.packet().unwrap();
                    assert_eq!(n, bits);
                    c.delivered = Some((b.to_vec(), bits));
                    busy = true;
                }
                ReceiverAction::WaitUntil(t) => r_wait = Some(t),
                ReceiverAction::Idle => {
                    if c.delivered.is_some() {
                        r_end = Some(ReceiverAction::Idle);
                    }
                }
                a @ ReceiverAction::Aborted(_) => r_end = Some(a),
            }
        }
        if let Some(f) = to_tx.pop_front() {
            if s_end.is_none() {
                let _ = s.handle_ack(&f, now);
            }
            busy = true;
        }
        if busy {
            continue;
        }
        if s_end.is_some() && (r_end.is_some() || r_wait.is_none()) {
            break;
        }
        let next = [s_wait, r_wait].into_iter().flatten().min();
        match next {
            Some(t) => now = now.max(t),
            None => break,
        }
    }
    c.sender = s_end.unwrap();
    c.receiver = match (r_end, &c.delivered) {
        (Some(ReceiverAction::Aborted(r)), _) => ReceiverAction::Aborted(r),
        (_, Some((_, bits))) => ReceiverAction::Delivered { bits: *bits },
        _ => ReceiverAction::Idle,
    };
    c
}

fn exact(d: &Option<(Vec<u8>, usize)>, pk: &[u8], bits: usize) -> bool {
    let Some((b, n)) = d else { return false };
    use lpwan_schc::bits::get_bits;
    *n >= bits
        && *n - bits < 8
        && (0..bits).all(|i| get_bits(b, i, 1) == get_bits(pk, i, 1))
        && (bits..*n).all(|i| get_bits(b, i, 1) == 0)
}

fn chaos_rules() -> Vec<(Rule, usize)> {
    let mut aoe = params(FragMode::AckOnError, 2, 3, 7);
    aoe.tile_size = 40;
    let mut aoe0 = aoe;
    aoe0.ack_behavior = AckBehavior::AfterAll0;
    aoe0.bitmap_format = BitmapFormat::CompoundAck;
    aoe0.last_bitmap_compression = true;
    vec![
        (frag_rule(0x81, 8, params(FragMode::NoAck, 0, 1, 1)), 8),
        (frag_rule(0x82, 8, params(FragMode::AckAlways, 1, 3, 7)), 10),
        (frag_rule(0x83, 8, aoe), 12),
        (frag_rule(0x84, 8, aoe0), 12),
    ]
}

/// Duplicated, reordered and lost frames in both directions: the windowed modes deliver the
/// packet or both sides abort; No-ACK (which assumes in-order delivery without duplicates,
/// RFC 8724 §8.4.1) delivers it or reports an RCS failure or inactivity. Never a wrong packet.
#[test]
fn a_bad_link_never_delivers_a_wrong_packet() {
    let mut outcomes = std::collections::BTreeMap::new();
    for (rule, mtu) in chaos_rules() {
        let Nature::Fragmentation(fp) = rule.nature else {
            unreachable!()
        };
        for seed in 0..60u64 {
            let pk = packet(40 + (seed as usize * 7) % 90, seed);
            let bits = pk.len() * 8;
            let pct = [(0, 30, 30), (20, 20, 20), (40, 10, 40)][seed as usize % 3];
            let c = chaos(&rule, &pk, bits, mtu, seed, pct);
            if c.delivered.is_some() {
                assert!(
                    exact(&c.delivered, &pk, bits),
                    "{:?} seed {seed}: wrong packet",
                    fp.mode
                );
            }
            match fp.mode {
                FragMode::NoAck => assert!(
                    matches!(
                        c.receiver,
                        ReceiverAction::Delivered { .. }
                            | ReceiverAction::Aborted(
                                AbortReason::RcsMismatch | AbortReason::Inactivity
                            )
                    ),
                    "{c:?}"
                ),
                _ => {
                    assert!(
                        matches!(c.sender, SenderAction::Done | SenderAction::Aborted(_)),
                        "{c:?}"
                    );
                    assert!(
                        matches!(
                            c.receiver,
                            ReceiverAction::Delivered { .. } | ReceiverAction::Aborted(_)
                        ),
                        "{:?} seed {seed}: the receiver did not end: {c:?}",
                        fp.mode
                    );
                    if c.sender == SenderAction::Done {
                        assert!(c.delivered.is_some());
                    }
                }
            }
            *outcomes
                .entry((format!("{:?}", fp.mode), c.delivered.is_some()))
                .or_insert(0) += 1;
        }
    }
    // The windowed modes get through most of these links.
    for mode in ["AckAlways", "AckOnError"] {
        let ok = outcomes
            .get(&(mode.to_string(), true))
            .copied()
            .unwrap_or(0);
        assert!(ok >= 40, "{mode}: {outcomes:?}");
    }
}

/// Every frame delivered twice, and each window's fragments in reverse order: ACK-on-Error (made
/// for out-of-order links) and ACK-Always deliver; No-ACK appends the duplicate and reports an
/// RCS failure.
#[test]
fn duplicates_and_reordering() {
    for (rule, mtu) in chaos_rules() {
        let Nature::Fragmentation(fp) = rule.nature else {
            unreachable!()
        };
        let pk = packet(100, 7);
        // Duplicates only.
        let c = chaos(&rule, &pk, 800, mtu, 1, (0, 100, 0));
        if fp.mode == FragMode::NoAck {
            assert_eq!(
                c.receiver,
                ReceiverAction::Aborted(AbortReason::RcsMismatch)
            );
        } else {
            assert_eq!(c.sender, SenderAction::Done, "{:?}", fp.mode);
            assert!(exact(&c.delivered, &pk, 800));
        }
    }
    // ACK-on-Error: every fragment of the first transmission delivered in reverse order.
    let (rule, mtu) = chaos_rules().remove(2);
    let pk = packet(100, 8);
    let mut s = Sender::new(&rule, &pk, 800, 0, mtu).unwrap();
    let mut out = [0u8; 16];
    let mut frames = Vec::new();
    while let SenderAction::Send(n) = s.poll(0, &mut out).unwrap() {
        frames.push(out[..n].to_vec());
    }
    let mut buf = vec![0u8; Receiver::buffer_len(&rule, mtu)];
    let mut rx = Receiver::new(&rule, &mut buf[..], 0).unwrap();
    for f in frames.iter().rev() {
        rx.handle_frame(f, 0).unwrap();
    }
    let mut ack = [0u8; 16];
    assert!(matches!(
        rx.poll(0, &mut ack).unwrap(),
        ReceiverAction::Send(_)
    ));
    s.handle_ack(&ack, 0).unwrap();
    assert_eq!(s.poll(0, &mut out).unwrap(), SenderAction::Done);
    // The last tile came in the All-1 with its 3 padding bits (13 + 32 + 40 + 3 = 88).
    assert_eq!(
        rx.poll(0, &mut ack).unwrap(),
        ReceiverAction::Delivered { bits: 803 }
    );
    assert_eq!(rx.packet().unwrap().0[..100], pk[..]);
}

/// Lost ACKs and a lost All-1 in every mode: the windowed senders ask again (ACK REQ or the
/// All-1 again) and the receivers answer again; No-ACK loses the packet to inactivity.
#[test]
fn lost_all1_and_lost_acks() {
    for (rule, mtu) in chaos_rules() {
        let Nature::Fragmentation(fp) = rule.nature else {
            unreachable!()
        };
        let pk = packet(60, 9);
        let n_frames = {
            let t = run(&rule, &pk, 480, Setup::new(mtu));
            t.frames(true).len()
        };
        // The All-1 is the sender's last frame of a lossless run.
        let all1 = n_frames - 1;
        let t = run(
            &rule,
            &pk,
            480,
            Setup::new(mtu).link(Link::script(&[all1], &[])),
        );
        let d = describe(&rule, &t.events, None);
        // Event index of the sender's frame number k.
        let ev = |k: usize| {
            t.events
                .iter()
                .enumerate()
                .filter(|(_, e)| e.from_sender)
                .nth(k)
                .map(|(i, _)| i)
        };
        let at = ev(all1).unwrap();
        assert!(d[at].ends_with("All-1 X"), "{d:?}");
        match fp.mode {
            FragMode::NoAck => {
                assert_eq!(t.receiver, ReceiverAction::Aborted(AbortReason::Inactivity));
                assert_eq!(t.now, INACTIVITY_US);
            }
            _ => {
                assert_eq!(t.sender, SenderAction::Done, "{d:?}");
                assert!(t.delivered_exactly(&pk, 480, 8));
                // The sender asked again (ACK REQ or the All-1): when its timer expired, or at
                // once if an ACK (after an All-0) had just reported the last tile missing.
                let next = ev(all1 + 1).unwrap();
                assert!(
                    d[next].ends_with("ACK REQ") || d[next].ends_with("All-1"),
                    "{d:?}"
                );
                let waited = t.events[next].at == t.events[at].at + RETRANS_US;
                let told = d[next - 1].starts_with("<- ACK") && d[next - 1].contains("C=0");
                assert!(
                    waited || (told && fp.ack_behavior == AckBehavior::AfterAll0),
                    "{d:?}"
                );
            }
        }
        if fp.mode == FragMode::NoAck {
            continue;
        }
        // Every first answer of the receiver lost, then the final ACK lost twice.
        let t = run(
            &rule,
            &pk,
            480,
            Setup::new(mtu).link(Link::script(&[], &[0, 1, 2])),
        );
        assert_eq!(t.sender, SenderAction::Done);
        assert!(t.delivered_exactly(&pk, 480, 8));
        assert_eq!(t.delivered_count, 1, "delivered once, acknowledged again");
        let d = describe(&rule, &t.events, None);
        assert!(
            d.iter().filter(|l| l.ends_with("ACK REQ")).count() >= 2,
            "{d:?}"
        );
    }
}

// --- malformed frames

/// Frames that cannot be F/R messages of the rule give typed errors and change nothing: the
/// receiver still reassembles the real packet afterwards.
#[test]
fn malformed_frames_are_errors_not_panics() {
    // ACK-on-Error, Rule ID 8 bits, W 2, FCN 3, WINDOW_SIZE 5, 16-bit tiles, 10-byte packets.
    let mut p = params(FragMode::AckOnError, 2, 3, 5);
    p.tile_size = 16;
    p.max_packet_size = 10;
    let rule = frag_rule(0xa5, 8, p);
    let mut buf = vec![0u8; Receiver::buffer_len(&rule, 16)];
    let mut rx = Receiver::new(&rule, &mut buf[..], 0).unwrap();
    let hdr = |w: u8, fcn: u8| [0xa5, (w << 6) | (fcn << 3)];
    let frame = |h: [u8; 2], tail: &[u8]| {
        let mut v = h.to_vec();
        v.extend_from_slice(tail);
        v
    };
    // Truncated: nothing, or a Rule ID alone.
    assert!(matches!(rx.handle_frame(&[], 0), Err(FragError::Bits(_))));
    assert!(matches!(
        rx.handle_frame(&[0xa5], 0),
        Err(FragError::Bits(_))
    ));
    // Another rule.
    assert!(matches!(
        rx.handle_frame(&[0xa4, 0x30, 1, 2], 0),
        Err(FragError::WrongRule(_))
    ));
    // The errors say where: W is at bit 8, the FCN at bit 10, what follows at bit 13.
    // FCN 6 and 5 with WINDOW_SIZE 5 (tiles 4..0): outside the window.
    for fcn in [5, 6] {
        assert!(matches!(
            rx.handle_frame(&frame(hdr(0, fcn), &[1, 2]), 0),
            Err(FragError::Malformed { bit: 10, .. })
        ));
    }
    // An All-1 with a byte after its header: shorter than its 32-bit RCS.
    assert!(matches!(
        rx.handle_frame(&frame(hdr(0, 7), &[0xaa]), 0),
        Err(FragError::Malformed { bit: 13, .. })
    ));
    // A Sender-Abort whose W is not all ones: RFC 8724 §8.3.4 says to ignore it.
    assert!(matches!(
        rx.handle_frame(&hdr(1, 7), 0),
        Err(FragError::Malformed { bit: 8, .. })
    ));
    // A regular fragment with no tile.
    assert!(matches!(
        rx.handle_frame(&hdr(0, 3), 0),
        Err(FragError::Malformed { bit: 13, .. })
    ));
    // A tile beyond the maximum packet size: window 3 starts at tile 15, bit 240 > 88.
    assert!(matches!(
        rx.handle_frame(&frame(hdr(3, 4), &[1, 2]), 0),
        Err(FragError::TileOutOfRange {
            window: 3,
            fcn: 4,
            ..
        })
    ));
    // An All-1 whose payload is a tile and an L2 word or more (RFC 8724 §8.4.3.2: an error),
    // after its 32-bit RCS.
    assert!(matches!(
        rx.handle_frame(&frame(hdr(0, 7), &[0, 0, 0, 0, 1, 2, 3]), 0),
        Err(FragError::Malformed { bit: 45, .. })
    ));
    // None of that changed anything: the real exchange goes through.
    let pk = packet(10, 10);
    let mut s = Sender::new(&rule, &pk, 80, 0, 16).unwrap();
    let mut out = [0u8; 16];
    let mut ack = [0u8; 16];
    loop {
        match s.poll(0, &mut out).unwrap() {
            SenderAction::Send(n) => rx.handle_frame(&out[..n], 0).unwrap(),
            SenderAction::WaitUntil(_) => {
                let ReceiverAction::Send(n) = rx.poll(0, &mut ack).unwrap() else {
                    panic!("an ACK")
                };
                s.handle_ack(&ack[..n], 0).unwrap();
            }
            a => {
                assert_eq!(a, SenderAction::Done);
                break;
            }
        }
    }
    // Four tiles, and the last in the All-1 with 3 padding bits (13 + 32 + 16 + 3 = 64).
    assert_eq!(
        rx.poll(0, &mut ack).unwrap(),
        ReceiverAction::Delivered { bits: 83 }
    );
    assert_eq!(rx.packet().unwrap().0[..10], pk[..]);
}

/// Payloads longer than the receiver's buffer: an error, never a write past it.
#[test]
fn payloads_longer_than_the_buffer() {
    // No-ACK appends tiles: with 10-byte packets the packet area is 11 bytes (88 bits). A
    // 9-byte fragment (9-bit header, 63-bit tile) fits once, not twice.
    let mut p = params(FragMode::NoAck, 0, 1, 1);
    p.max_packet_size = 10;
    let rule = frag_rule(0x81, 8, p);
    let mut buf = vec![0u8; Receiver::buffer_len(&rule, 16)];
    let mut rx = Receiver::new(&rule, &mut buf[..], 0).unwrap();
    let mut frag = vec![0x5a; 9];
    frag[0] = 0x81;
    frag[1] = 0x5a & 0x7f; // FCN 0
    rx.handle_frame(&frag, 0).unwrap();
    assert!(matches!(
        rx.handle_frame(&frag, 0),
        Err(FragError::PacketTooLarge { .. })
    ));
    let mut ack = [0u8; 8];
    assert!(matches!(
        rx.poll(0, &mut ack).unwrap(),
        ReceiverAction::Aborted(_)
    ));
    // A receiver buffer too small for the rule is refused up front.
    assert!(matches!(
        Receiver::new(&rule, vec![0u8; 11], 0),
        Err(FragError::BufferTooSmall { .. })
    ));
    // ACK-Always with a buffer that has the packet area but little room for the All-1's tile.
    let mut p = params(FragMode::AckAlways, 1, 3, 7);
    p.max_packet_size = 10;
    let rule = frag_rule(0x42, 8, p);
    let mut rx = Receiver::new(&rule, vec![0u8; 13], 0).unwrap();
    let mut all1 = vec![0x42, 0x70, 0, 0, 0, 0];
    all1.extend_from_slice(&[0x11; 8]);
    assert!(matches!(
        rx.handle_frame(&all1, 0),
        Err(FragError::BufferTooSmall { .. })
    ));
}

/// Random bytes, fed as fragments to receivers and as ACKs to senders of every mode (a new
/// session whenever one ends), give typed errors or are ignored: nothing panics.
#[test]
fn random_frames_never_panic() {
    let mut rng = Seeded::new(42);
    for (rule, mtu) in chaos_rules() {
        let new_rx =
            || Receiver::new(&rule, vec![0u8; Receiver::buffer_len(&rule, 64)], 0).unwrap();
        let pk = packet(50, 1);
        let new_tx = || Sender::new(&rule, &pk, 400, 0, mtu).unwrap();
        let (mut rx, mut s) = (new_rx(), new_tx());
        let mut out = [0u8; 1100];
        let (mut rx_errors, mut tx_errors, mut sessions) = (0, 0, 0);
        for i in 0..20_000u64 {
            let len = rng.below(24);
            let mut f: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if let Some(b) = f.first_mut() {
                // Mostly this rule's ID (8 bits), to get past the first check.
                if rng.chance(90) {
                    *b = rule.id.value as u8;
                }
            }
            rx_errors += usize::from(rx.handle_frame(&f, i).is_err());
            if let ReceiverAction::Aborted(_)
            | ReceiverAction::Delivered { .. }
            | ReceiverAction::Idle = rx.poll(i, &mut out).unwrap()
            {
                rx = new_rx();
                sessions += 1;
            }
            tx_errors += usize::from(s.handle_ack(&f, i).is_err());
            if let SenderAction::Aborted(_) | SenderAction::Done = s.poll(i, &mut out).unwrap() {
                s = new_tx();
            }
        }
        // Wrong Rule IDs and short frames alone make errors on both sides (No-ACK senders take
        // no ACK at all).
        assert!(rx_errors > 1000, "{rx_errors}");
        assert!(tx_errors > 1000 || rule.id.value == 0x81, "{tx_errors}");
        assert!(sessions > 0);
    }
}

// --- timers, aborts, attempts

/// The inactivity timer: a windowed receiver sends a Receiver-Abort and ends; a No-ACK receiver
/// just ends. Every frame of the session restarts the timer.
#[test]
fn inactivity_ends_the_receiver() {
    for (rule, mtu) in chaos_rules() {
        let Nature::Fragmentation(fp) = rule.nature else {
            unreachable!()
        };
        let l = Layout::new(&rule).unwrap();
        let pk = packet(40, 2);
        let mut s = Sender::new(&rule, &pk, 320, 0, mtu).unwrap();
        let mut out = [0u8; 16];
        let SenderAction::Send(n) = s.poll(0, &mut out).unwrap() else {
            panic!()
        };
        let mut rx = Receiver::new(&rule, vec![0u8; Receiver::buffer_len(&rule, mtu)], 0).unwrap();
        let mut ack = [0u8; 16];
        assert_eq!(
            rx.poll(0, &mut ack).unwrap(),
            ReceiverAction::WaitUntil(INACTIVITY_US)
        );
        // A frame at t = 100 moves the deadline.
        rx.handle_frame(&out[..n], 100).unwrap();
        assert_eq!(
            rx.poll(100, &mut ack).unwrap(),
            ReceiverAction::WaitUntil(INACTIVITY_US + 100)
        );
        assert_eq!(
            rx.poll(INACTIVITY_US + 99, &mut ack).unwrap(),
            ReceiverAction::WaitUntil(INACTIVITY_US + 100)
        );
        let a = rx.poll(INACTIVITY_US + 100, &mut ack).unwrap();
        if fp.mode == FragMode::NoAck {
            assert_eq!(a, ReceiverAction::Aborted(AbortReason::Inactivity));
        } else {
            let ReceiverAction::Send(n) = a else {
                panic!("{a:?}")
            };
            assert_eq!(
                wire::parse_ack(&l, &ack[..n]).unwrap(),
                Ack::ReceiverAbort { dtag: 0 }
            );
            // The sender takes it as the end.
            s.handle_ack(&ack[..n], 200).unwrap();
            assert_eq!(
                s.poll(200, &mut out).unwrap(),
                SenderAction::Aborted(AbortReason::PeerAborted)
            );
            assert_eq!(
                rx.poll(INACTIVITY_US + 100, &mut ack).unwrap(),
                ReceiverAction::Aborted(AbortReason::Inactivity)
            );
        }
        // Nothing more comes out of it.
        assert!(matches!(
            rx.poll(u64::MAX, &mut ack).unwrap(),
            ReceiverAction::Aborted(AbortReason::Inactivity)
        ));
        assert!(rx.packet().is_none());
    }
}

/// A Sender-Abort ends the receiver in every mode, silently (RFC 8724 §8.3.4: it is not
/// acknowledged), and the frames after it are ignored.
#[test]
fn sender_abort_ends_the_receiver() {
    for (rule, mtu) in chaos_rules() {
        let l = Layout::new(&rule).unwrap();
        let pk = packet(40, 3);
        let mut s = Sender::new(&rule, &pk, 320, 0, mtu).unwrap();
        let mut out = [0u8; 16];
        let SenderAction::Send(n) = s.poll(0, &mut out).unwrap() else {
            panic!()
        };
        let first = out[..n].to_vec();
        let mut rx = Receiver::new(&rule, vec![0u8; Receiver::buffer_len(&rule, mtu)], 0).unwrap();
        rx.handle_frame(&first, 0).unwrap();
        let n = wire::write_sender_abort(&l, 0, &mut out).unwrap();
        rx.handle_frame(&out[..n], 1).unwrap();
        let mut ack = [0u8; 16];
        assert_eq!(
            rx.poll(1, &mut ack).unwrap(),
            ReceiverAction::Aborted(AbortReason::PeerAborted)
        );
        rx.handle_frame(&first, 2).unwrap();
        assert_eq!(
            rx.poll(2, &mut ack).unwrap(),
            ReceiverAction::Aborted(AbortReason::PeerAborted)
        );
    }
}

/// A receiver answers MAX_ACK_REQUESTS ACK REQs (RFC 8724 §8.4.3.2: Attempts is incremented for
/// each ACK sent), then aborts.
#[test]
fn too_many_ack_requests_give_a_receiver_abort() {
    for (rule, mtu) in chaos_rules().into_iter().skip(1) {
        let Nature::Fragmentation(fp) = rule.nature else {
            unreachable!()
        };
        let l = Layout::new(&rule).unwrap();
        let pk = packet(40, 4);
        let mut s = Sender::new(&rule, &pk, 320, 0, mtu).unwrap();
        let mut out = [0u8; 16];
        let SenderAction::Send(n) = s.poll(0, &mut out).unwrap() else {
            panic!()
        };
        let mut rx = Receiver::new(&rule, vec![0u8; Receiver::buffer_len(&rule, mtu)], 0).unwrap();
        rx.handle_frame(&out[..n], 0).unwrap();
        let mut ack = [0u8; 1100];
        let mut acks = 0;
        let req = {
            let n = wire::write_ack_req(&l, 0, 0, &mut out).unwrap();
            out[..n].to_vec()
        };
        let end = loop {
            rx.handle_frame(&req, 1).unwrap();
            let ReceiverAction::Send(n) = rx.poll(1, &mut ack).unwrap() else {
                panic!("an answer")
            };
            match wire::parse_ack(&l, &ack[..n]).unwrap() {
                Ack::Failure { .. } => acks += 1,
                a => break a,
            }
            assert!(acks < 100);
        };
        assert_eq!(end, Ack::ReceiverAbort { dtag: 0 });
        assert_eq!(acks, usize::from(fp.max_ack_requests), "{:?}", fp.mode);
        assert_eq!(
            rx.poll(1, &mut ack).unwrap(),
            ReceiverAction::Aborted(AbortReason::TooManyAttempts)
        );
    }
}

/// With every ACK lost, a sender asks MAX_ACK_REQUESTS times in all (ACK-on-Error: the All-1 and
/// then ACK REQs, one per retransmission timeout; ACK-Always: an ACK REQ at each timeout after
/// the window), then sends a Sender-Abort and ends; the receiver ends on it.
#[test]
fn the_sender_gives_up_after_max_ack_requests() {
    for (rule, mtu) in chaos_rules().into_iter().skip(1) {
        let Nature::Fragmentation(fp) = rule.nature else {
            unreachable!()
        };
        let pk = packet(20, 5);
        let lose_all: Vec<usize> = (0..100).collect();
        let t = run(
            &rule,
            &pk,
            160,
            Setup::new(mtu).link(Link::script(&[], &lose_all)),
        );
        assert_eq!(
            t.sender,
            SenderAction::Aborted(AbortReason::TooManyAttempts),
            "{:?}",
            fp.mode
        );
        let d = describe(&rule, &t.events, None);
        let sent: Vec<&String> = d.iter().filter(|l| l.starts_with("->")).collect();
        let reqs = sent.iter().filter(|l| l.ends_with("ACK REQ")).count();
        let all1s = sent.iter().filter(|l| l.ends_with("All-1")).count();
        let max = usize::from(fp.max_ack_requests);
        match fp.mode {
            FragMode::AckOnError => assert_eq!((all1s, reqs), (1, max - 1), "{d:?}"),
            _ => assert_eq!(reqs, max, "{d:?}"),
        }
        assert_eq!(sent.last().unwrap().as_str(), "-> Sender-Abort");
        // One request per retransmission timer.
        let times: Vec<u64> = t
            .events
            .iter()
            .zip(&d)
            .filter(|(_, l)| l.ends_with("ACK REQ"))
            .map(|(e, _)| e.at)
            .collect();
        assert!(
            times.windows(2).all(|w| w[1] - w[0] == RETRANS_US),
            "{times:?}"
        );
        // The receiver had every tile: it delivered, and ignores the Sender-Abort of a session it
        // has finished (RFC 8724 §8.4.2.2, clean-up phase).
        assert!(t.delivered_exactly(&pk, 160, 8));
        // The same with the All-1 and the ACK REQs lost too: the Sender-Abort ends the receiver.
        let lose_s: Vec<usize> = d
            .iter()
            .filter(|l| l.starts_with("->"))
            .enumerate()
            .filter(|(_, l)| l.ends_with("All-1") || l.ends_with("ACK REQ"))
            .map(|(i, _)| i)
            .collect();
        let t = run(
            &rule,
            &pk,
            160,
            Setup::new(mtu).link(Link::script(&lose_s, &lose_all)),
        );
        assert_eq!(
            t.sender,
            SenderAction::Aborted(AbortReason::TooManyAttempts)
        );
        assert_eq!(
            t.receiver,
            ReceiverAction::Aborted(AbortReason::PeerAborted)
        );
        assert!(t.delivered.is_none());
    }
}

/// Frames of another DTag are ignored by the receiver, ACKs of another DTag by the sender
/// (RFC 8724 §8.4: every reception is for the Rule ID and DTag pair being processed).
#[test]
fn other_dtags_are_ignored() {
    let rule = odd_rule();
    let l = Layout::new(&rule).unwrap();
    let pk = hex("00112233445566778899aabbccddeeff");
    let mut s = Sender::new(&rule, &pk, 128, 5, 10).unwrap();
    let mut other = Sender::new(&rule, &pk, 128, 6, 10).unwrap();
    let mut buf = vec![0u8; Receiver::buffer_len(&rule, 10)];
    let mut rx = Receiver::new(&rule, &mut buf[..], 0).unwrap();
    let mut out = [0u8; 16];
    let mut ack = [0u8; 16];
    // The first frame fixes the session's DTag.
    let SenderAction::Send(n) = s.poll(0, &mut out).unwrap() else {
        panic!()
    };
    rx.handle_frame(&out[..n], 0).unwrap();
    // Another DTag's whole packet changes nothing, not even the inactivity timer.
    while let SenderAction::Send(n) = other.poll(0, &mut out).unwrap() {
        rx.handle_frame(&out[..n], 500).unwrap();
    }
    assert_eq!(
        rx.poll(0, &mut ack).unwrap(),
        ReceiverAction::WaitUntil(INACTIVITY_US)
    );
    // The sender ignores a Receiver-Abort and a success ACK for DTag 6.
    while let SenderAction::Send(n) = s.poll(0, &mut out).unwrap() {
        rx.handle_frame(&out[..n], 0).unwrap();
    }
    let n = wire::write_receiver_abort(&l, 6, &mut out).unwrap();
    s.handle_ack(&out[..n], 0).unwrap();
    let n = wire::write_ack_success(&l, 6, 1, &mut out).unwrap();
    s.handle_ack(&out[..n], 0).unwrap();
    assert!(matches!(
        s.poll(0, &mut out).unwrap(),
        SenderAction::WaitUntil(_)
    ));
    // Our receiver's ACK (DTag 5) ends it.
    let ReceiverAction::Send(n) = rx.poll(0, &mut ack).unwrap() else {
        panic!()
    };
    s.handle_ack(&ack[..n], 0).unwrap();
    assert_eq!(s.poll(0, &mut out).unwrap(), SenderAction::Done);
    assert_eq!(
        rx.poll(0, &mut ack).unwrap(),
        ReceiverAction::Delivered { bits: 130 }
    );
}

/// The retransmission timer comes from the rule (RFC 9363 ticks, here 777 ticks of 1 µs): the
/// sender waits exactly that long before its ACK REQ.
#[test]
fn retransmission_timer_comes_from_the_rule() {
    let mut p = params(FragMode::AckAlways, 1, 3, 7);
    p.retransmission_timer = Some(timer_us(777));
    let rule = frag_rule(0x82, 8, p);
    let pk = packet(10, 6);
    let mut s = Sender::new(&rule, &pk, 80, 0, 8).unwrap();
    let mut out = [0u8; 8];
    // The window goes out at t = 5; then the sender waits 777 µs for its ACK.
    let mut sent = 0;
    let wait = loop {
        match s.poll(5, &mut out).unwrap() {
            SenderAction::Send(_) => sent += 1,
            a => break a,
        }
    };
    assert_eq!(sent, 3);
    assert_eq!(wait, SenderAction::WaitUntil(5 + 777));
    // Not before: still waiting. At the deadline: an ACK REQ.
    assert_eq!(s.poll(781, &mut out).unwrap(), SenderAction::WaitUntil(782));
    let SenderAction::Send(n) = s.poll(782, &mut out).unwrap() else {
        panic!("an ACK REQ")
    };
    let l = Layout::new(&rule).unwrap();
    assert_eq!(
        wire::parse_fragment(&l, &out[..n]).unwrap().kind,
        FragmentKind::AckReq
    );
}

// ---------------------------------------------------------------------------------------------
// A changing MTU: ACK-Always cuts each window at the MTU when it starts; no frame ever exceeds
// the MTU current when it is sent.

/// The ACK-Always rule of these tests: Rule ID 8 bits, M = 1, N = 3, WINDOW_SIZE 7: a 12-bit
/// header, so a fragment that fills an MTU of `m` bytes carries a tile of 8·m − 12 bits.
fn ack_always_12() -> Rule {
    frag_rule(0x82, 8, params(FragMode::AckAlways, 1, 3, 7))
}

/// ACK-Always over an MTU that grows and shrinks between windows and within them. Each window's
/// tiles fill the MTU current when the window starts (12, 30, 16 and 24 bytes here) and keep
/// that size to the window's end: a window cut at 12 bytes stays at 12 when the MTU grows to 40
/// in its middle, and a window cut at 30 is refused (`MtuTooSmall`, nothing sent) when the MTU
/// drops to 20 in its middle, and goes on at 30 bytes once the MTU is larger again. The last
/// window holds the rest: one 180-bit tile and 24 bits in the All-1. The packet arrives whole.
#[test]
fn ack_always_windows_follow_the_mtu() {
    let rule = ack_always_12();
    let pk = packet(400, 77);
    let mut setup = Setup::new(12).interleaved();
    setup.mtu_changes = vec![(3, 40), (7, 30), (10, 20), (14, 16), (21, 24)];
    let t = run(&rule, &pk, 3200, setup);
    assert_eq!(t.sender, SenderAction::Done);
    assert!(t.delivered_exactly(&pk, 3200, 8));
    assert!(t.rx_errors.is_empty(), "{:?}", t.rx_errors);
    let sent = t.frames(true);
    for e in &sent {
        assert!(
            e.bytes.len() <= e.mtu,
            "{} bytes at an MTU of {}",
            e.bytes.len(),
            e.mtu
        );
    }
    let sizes: Vec<usize> = sent.iter().map(|e| e.bytes.len()).collect();
    let mut expected = [vec![12; 7], vec![30; 7], vec![16; 7]].concat();
    // The last window: one tile of 180 bits (24 bytes), the All-1 with 12 + 32 + 24 bits.
    expected.extend([24, 9]);
    assert_eq!(sizes, expected);
    assert_eq!(t.mtu_refusals, vec![20]);
    let l = Layout::new(&rule).unwrap();
    let w: Vec<u32> = sent
        .iter()
        .map(|e| wire::parse_fragment(&l, &e.bytes).unwrap().w)
        .collect();
    assert_eq!(w, [vec![0; 7], vec![1; 7], vec![0; 7], vec![1; 2]].concat());
}

/// The RFC 9011 downlink rule (ACK-Always, one tile per window) over an MTU that changes before
/// every downlink, on a lossy link: every regular fragment fills the MTU of its window's first
/// transmission (retransmissions keep its size), nothing exceeds the MTU, and the packet arrives
/// whole or both sides give up cleanly.
#[test]
fn ack_always_mtu_per_downlink_over_a_lossy_link() {
    let rule = frag_rule(21, 8, params(FragMode::AckAlways, 1, 1, 1));
    let pk = packet(600, 9011);
    let l = Layout::new(&rule).unwrap();
    let mut delivered = 0;
    for seed in 0..40u64 {
        let mut r = Seeded::new(seed);
        let mut setup = Setup::new(52).link(Link::random(20, 20, seed));
        setup.mtu_changes = (1..400).map(|i| (i, 11 + r.below(50))).collect();
        setup.interleave = seed % 2 == 0;
        let t = run(&rule, &pk, 4800, setup);
        assert!(t.rx_errors.is_empty(), "{:?}", t.rx_errors);
        let mut window_size: Option<(u32, usize)> = None;
        let mut firsts = Vec::new();
        for e in t.frames(true) {
            assert!(e.bytes.len() <= e.mtu);
            let f = wire::parse_fragment(&l, &e.bytes).unwrap();
            if f.kind == FragmentKind::Regular {
                match window_size {
                    // A retransmission of the same window keeps its size.
                    Some((w, n)) if w == f.w => assert_eq!(e.bytes.len(), n),
                    _ => {
                        window_size = Some((f.w, e.bytes.len()));
                        firsts.push((e.bytes.len(), e.mtu));
                    }
                }
            }
        }
        // A new window fills the MTU; only the one before the last may give way by whole
        // bytes, to leave the All-1 a last tile of 8 bits or more that fits.
        if let Some((_, most)) = firsts.split_last() {
            assert!(most.iter().all(|(n, m)| n == m), "seed {seed}: {firsts:?}");
        }
        match t.sender {
            SenderAction::Done => {
                assert!(t.delivered_exactly(&pk, 4800, 8));
                delivered += 1;
            }
            SenderAction::Aborted(_) => assert!(t.delivered.is_none() || t.delivered_count == 1),
            other => panic!("sender ended with {other:?}"),
        }
    }
    assert!(delivered > 20, "{delivered} of 40 delivered");
}

/// A lock-step driver for the API tests below: gives `frame` to `rx`, and its answers
/// to `tx`.
fn feed(rx: &mut Receiver<Vec<u8>>, tx: &mut Sender<&[u8]>, frame: &[u8], now: u64) {
    rx.handle_frame(frame, now).unwrap();
    let mut ack = [0u8; 64];
    loop {
        match rx.poll(now, &mut ack).unwrap() {
            ReceiverAction::Send(n) => tx.handle_ack(&ack[..n], now).unwrap(),
            ReceiverAction::Delivered { .. } => {}
            _ => break,
        }
    }
}

/// `set_mtu` below what the next frame needs: `poll` returns `MtuTooSmall` naming that MTU,
/// sends nothing and changes nothing (polling again gives the same answer); with the MTU back,
/// the sender goes on with the very frame it refused. ACK-Always: a tile of a window already
/// cut, the All-1 with its RCS and last tile, and an ACK REQ.
#[test]
fn ack_always_refuses_frames_over_the_mtu() {
    let rule = ack_always_12();
    let pk = packet(50, 50);
    let l = Layout::new(&rule).unwrap();
    let mut tx = Sender::new(&rule, &pk[..], 400, 0, 12).unwrap();
    let mut rx = Receiver::new(&rule, vec![0u8; Receiver::buffer_len(&rule, 12)], 0).unwrap();
    let mut out = [0u8; 64];
    let refused = |mtu| Err(FragError::MtuTooSmall { rule: l.rule, mtu });
    // One window: five tiles of 76 bits (11-byte fragments), then 20 bits in the All-1.
    let mut fcns = Vec::new();
    for _ in 0..2 {
        let SenderAction::Send(n) = tx.poll(0, &mut out).unwrap() else {
            panic!("a fragment")
        };
        assert_eq!(n, 11);
        fcns.push(wire::parse_fragment(&l, &out[..n]).unwrap().fcn);
        feed(&mut rx, &mut tx, &out[..n], 0);
    }
    tx.set_mtu(10);
    assert_eq!(tx.poll(0, &mut out), refused(10));
    assert_eq!(tx.poll(0, &mut out), refused(10));
    tx.set_mtu(11);
    for _ in 0..3 {
        let SenderAction::Send(n) = tx.poll(0, &mut out).unwrap() else {
            panic!("a fragment")
        };
        fcns.push(wire::parse_fragment(&l, &out[..n]).unwrap().fcn);
        feed(&mut rx, &mut tx, &out[..n], 0);
    }
    assert_eq!(fcns, vec![6, 5, 4, 3, 2]);
    // The All-1: 12 + 32 + 20 bits, 8 bytes.
    tx.set_mtu(7);
    assert_eq!(tx.poll(0, &mut out), refused(7));
    tx.set_mtu(8);
    let SenderAction::Send(n) = tx.poll(0, &mut out).unwrap() else {
        panic!("the All-1")
    };
    assert_eq!(n, 8);
    let all1 = out[..n].to_vec();
    assert!(matches!(
        wire::parse_fragment(&l, &all1).unwrap().kind,
        FragmentKind::All1 { .. }
    ));
    // Its ACK is lost: at the timer, an ACK REQ (2 bytes) is due.
    rx.handle_frame(&all1, 0).unwrap();
    let SenderAction::WaitUntil(d) = tx.poll(0, &mut out).unwrap() else {
        panic!("waiting")
    };
    tx.set_mtu(1);
    assert_eq!(tx.poll(d, &mut out), refused(1));
    tx.set_mtu(12);
    let SenderAction::Send(n) = tx.poll(d, &mut out).unwrap() else {
        panic!("the ACK REQ")
    };
    assert_eq!(
        wire::parse_fragment(&l, &out[..n]).unwrap().kind,
        FragmentKind::AckReq
    );
    feed(&mut rx, &mut tx, &out[..n], d);
    assert_eq!(tx.poll(d, &mut out).unwrap(), SenderAction::Done);
    let (got, bits) = rx.packet().unwrap();
    assert_eq!(bits, 400);
    assert_eq!(got, &pk[..]);
}

/// ACK-on-Error with the rule's tile size (80 bits, a 16-bit header): a fragment carries as many
/// whole tiles as fit the current MTU, 5 at 52 bytes, 3 at 32, 1 at 12; at 11 bytes not even one
/// fits and the sender refuses; the All-1 (16 + 32 + 80 bits) needs 16 bytes.
#[test]
fn ack_on_error_packs_tiles_to_a_shrinking_mtu() {
    let mut p = params(FragMode::AckOnError, 2, 6, 63);
    p.tile_size = 80;
    let rule = frag_rule(20, 8, p);
    let l = Layout::new(&rule).unwrap();
    let pk = packet(100, 100);
    let mut tx = Sender::new(&rule, &pk[..], 800, 0, 52).unwrap();
    let mut rx = Receiver::new(&rule, vec![0u8; Receiver::buffer_len(&rule, 52)], 0).unwrap();
    let mut out = [0u8; 64];
    let refused = |mtu| Err(FragError::MtuTooSmall { rule: l.rule, mtu });
    let mut sizes = Vec::new();
    for mtu in [52, 32, 11, 12, 12, 16] {
        tx.set_mtu(mtu);
        match tx.poll(0, &mut out) {
            Ok(SenderAction::Send(n)) => {
                assert!(n <= mtu);
                sizes.push(n);
                feed(&mut rx, &mut tx, &out[..n], 0);
            }
            r => assert_eq!(r, refused(mtu), "at {mtu}"),
        }
    }
    // 2 + 5·10, 2 + 3·10, 2 + 10, refused at 12 (the All-1), 16.
    assert_eq!(sizes, vec![52, 32, 12, 16]);
    assert_eq!(tx.poll(0, &mut out).unwrap(), SenderAction::Done);
    assert_eq!(rx.packet().unwrap().0, &pk[..]);
}

/// No-ACK keeps the tiles it cut at the start: a smaller MTU is refused, not exceeded.
#[test]
fn no_ack_refuses_frames_over_the_mtu() {
    let rule = frag_rule(3, 3, params(FragMode::NoAck, 0, 1, 1));
    let pk = packet(60, 60);
    let mut tx = Sender::new(&rule, &pk[..], 480, 0, 20).unwrap();
    let mut rx = Receiver::new(&rule, vec![0u8; Receiver::buffer_len(&rule, 20)], 0).unwrap();
    let mut out = [0u8; 64];
    let SenderAction::Send(n) = tx.poll(0, &mut out).unwrap() else {
        panic!("a fragment")
    };
    assert_eq!(n, 20);
    feed(&mut rx, &mut tx, &out[..n], 0);
    tx.set_mtu(19);
    assert!(matches!(
        tx.poll(0, &mut out),
        Err(FragError::MtuTooSmall { mtu: 19, .. })
    ));
    tx.set_mtu(20);
    loop {
        match tx.poll(0, &mut out).unwrap() {
            SenderAction::Send(n) => feed(&mut rx, &mut tx, &out[..n], 0),
            SenderAction::Done => break,
            a => panic!("{a:?}"),
        }
    }
    assert_eq!(rx.packet().unwrap().0, &pk[..]);
}

/// ACK-Always with a 12-bit header and an 8-byte MTU (fragments of 52-bit tiles, room for 8 to
/// 20 bits in the All-1): no single tile size leaves a legal last tile for packets of 98 or 143
/// bytes, which the sender used to refuse with `MtuTooSmall`. Windows of their own tile size
/// carry them: full tiles, then smaller ones for the last window.
#[test]
fn ack_always_packets_no_single_tile_size_fits() {
    for rule in [
        ack_always_12(),
        frag_rule(0x2a5, 10, params(FragMode::AckAlways, 1, 1, 1)),
    ] {
        for len in [98usize, 143] {
            let bits = len * 8;
            // Fragments of 12 + t bits, whole bytes: t = 12, 20, ..., 52.
            let one_size = (12..=52).step_by(8).any(|t| {
                let last = bits - (bits.div_ceil(t) - 1) * t;
                (8..=20).contains(&last)
            });
            assert!(!one_size, "{len} bytes");
            let pk = packet(len, len as u64);
            let s = Sender::new(&rule, &pk, bits, 0, 8).unwrap();
            assert_eq!(s.tile_bits(), 52);
            let t = frag_harness::run_with(&rule, s, Setup::new(8).interleaved());
            assert!(t.rx_errors.is_empty(), "{:?}", t.rx_errors);
            assert!(t.frames(true).iter().all(|e| e.bytes.len() <= 8));
            assert_eq!(t.sender, SenderAction::Done);
            assert!(t.delivered_exactly(&pk, bits, 8));
        }
    }
}
