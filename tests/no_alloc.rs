//! The core allocates nothing per packet: a counting global allocator watches this thread while
//! our fragment sender and receiver run whole exchanges with losses (all three modes), and
//! while the codec compresses and decompresses the anchor packet with a rule set built
//! beforehand (the device's static tables, and a gateway's owned set from JSON).
//!
//! Every buffer (packet, receiver buffer, frames) is set up before counting starts. The
//! allocator (`tests/common/counting.rs`) needs `unsafe impl GlobalAlloc`; the crate's
//! `forbid(unsafe_code)` covers the library only.

#![allow(unsafe_code)]

mod common;
use common::hex;

use lpwan_schc::codec::{self, Config};
use lpwan_schc::frag::{Receiver, ReceiverAction, Sender, SenderAction};
use lpwan_schc::rule::{
    AckBehavior, BitmapFormat, Direction, FragMode, FragParams, Nature, RcsAlgorithm, Rule, RuleId,
    TileInAll1, Timer,
};

#[allow(dead_code)]
#[path = "../nostd-check/src/rules.rs"]
mod device_rules;

#[allow(dead_code)]
#[path = "static_rules/anchor.rs"]
mod full_rules;

#[path = "common/counting.rs"]
mod counting;
use counting::count;

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

#[test]
fn the_counter_counts() {
    let (v, n) = count(|| vec![1u8; 100]);
    assert_eq!(v.len(), 100);
    assert!(n >= 1);
    let (_, n) = count(|| 1 + 1);
    assert_eq!(n, 0);
}

fn rule(mode: FragMode) -> Rule {
    let (m, n, ws) = match mode {
        FragMode::NoAck => (0, 1, 1),
        FragMode::AckAlways => (1, 3, 7),
        FragMode::AckOnError => (4, 3, 7),
    };
    Rule {
        id: RuleId::new(0x55, 8),
        nature: Nature::Fragmentation(FragParams {
            mode,
            direction: Direction::Up,
            l2_word: 8,
            dtag_bits: 2,
            w_bits: m,
            fcn_bits: n,
            window_size: ws,
            rcs: RcsAlgorithm::Crc32,
            max_packet_size: 1280,
            max_interleaved: 1,
            inactivity_timer: Some(Timer {
                tick_exp: 0,
                ticks: 60_000,
            }),
            retransmission_timer: Some(Timer {
                tick_exp: 0,
                ticks: 1_000,
            }),
            max_ack_requests: 8,
            tile_size: if mode == FragMode::AckOnError { 40 } else { 0 },
            tile_in_all1: TileInAll1::SenderChoice,
            ack_behavior: AckBehavior::AfterAll0,
            bitmap_format: if mode == FragMode::AckOnError {
                BitmapFormat::CompoundAck
            } else {
                BitmapFormat::Rfc8724
            },
            last_bitmap_compression: true,
        }),
    }
}

/// What one exchange did.
#[derive(Debug, PartialEq)]
struct Outcome {
    sender: SenderAction,
    delivered: Option<usize>,
    frames: usize,
    lost: usize,
}

/// A whole exchange over a link that loses every 5th frame of the sender (No-ACK: none) and
/// every 3rd of the receiver, on the stack: the only memory is what the caller passes.
fn exchange(
    rule: &Rule,
    packet: &[u8],
    rx_buf: &mut [u8],
    out: &mut [u8],
    ack: &mut [u8],
    lossy: bool,
) -> Outcome {
    let mut s = Sender::new(rule, packet, packet.len() * 8, 2, 12).expect("sender");
    let mut r = Receiver::new(rule, rx_buf, 0).expect("receiver");
    let (mut ns, mut nr, mut lost) = (0usize, 0usize, 0usize);
    let mut now = 0u64;
    let mut delivered = None;
    let mut steps = 0;
    let end = loop {
        steps += 1;
        assert!(steps < 100_000);
        match s.poll(now, out).expect("poll") {
            SenderAction::Send(n) => {
                ns += 1;
                if lossy && ns % 5 == 0 {
                    lost += 1;
                } else {
                    r.handle_frame(&out[..n], now).expect("frame");
                }
                continue;
            }
            SenderAction::WaitUntil(t) => {
                let mut answered = false;
                loop {
                    match r.poll(now, ack).expect("rx poll") {
                        ReceiverAction::Send(n) => {
                            nr += 1;
                            if lossy && nr % 3 == 0 {
                                lost += 1;
                            } else {
                                s.handle_ack(&ack[..n], now).expect("ack");
                                answered = true;
                            }
                        }
                        ReceiverAction::Delivered { bits } => delivered = Some(bits),
                        _ => break,
                    }
                }
                if !answered {
                    now = t;
                }
            }
            a => break a,
        }
    };
    while let ReceiverAction::Send(_) | ReceiverAction::Delivered { .. } =
        r.poll(now, ack).expect("rx poll")
    {
        if let Some((_, bits)) = r.packet() {
            delivered = Some(bits);
        }
    }
    Outcome {
        sender: end,
        delivered,
        frames: ns + nr,
        lost,
    }
}

#[test]
fn fragmentation_allocates_nothing() {
    for mode in [FragMode::NoAck, FragMode::AckAlways, FragMode::AckOnError] {
        let rule = rule(mode);
        let packet: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut rx_buf = vec![0u8; Receiver::buffer_len(&rule, 12)];
        let mut out = vec![0u8; 12];
        let mut ack = vec![0u8; 256];
        let lossy = mode != FragMode::NoAck;
        let (o, allocs) =
            count(|| exchange(&rule, &packet, &mut rx_buf, &mut out, &mut ack, lossy));
        assert_eq!(allocs, 0, "{mode:?}: {o:?}");
        // The exchange really happened, with losses, and delivered the packet.
        assert_eq!(o.sender, SenderAction::Done, "{mode:?}");
        assert!(
            o.delivered.is_some_and(|b| (2400..2408).contains(&b)),
            "{o:?}"
        );
        assert_eq!(rx_buf[..300], packet[..]);
        assert!(o.frames > 25, "{o:?}");
        if lossy {
            assert!(o.lost > 3, "{o:?}");
        }
    }
}

/// The anchor packet (`benches/anchor.json`): IPv6/UDP/CoAP CON GET /temp.
const ANCHOR: &str = "600000000017114020010db8000a0000000000000000000320010db8000a00000000000000000020d10016330017d71e41011234abb474656d70ff01020304";
const ANCHOR_SCHC: &str = "014ab010203040";

#[test]
fn compression_allocates_nothing() {
    let packet = hex(ANCHOR);
    let schc = hex(ANCHOR_SCHC);
    let cfg = Config::default();
    let owned = lpwan_schc::json::from_str(include_str!("../rules/anchor.json")).unwrap();
    let gateway = owned.as_set();
    for (name, set) in [
        ("full static tables", &full_rules::RULE_SET),
        ("owned rule set from JSON", &gateway),
    ] {
        let mut out = [0u8; 64];
        let mut back = [0u8; 128];
        let ((c, d), allocs) = count(|| {
            let c = codec::compress(set, &packet, Direction::Up, &cfg, &mut out).unwrap();
            let d = codec::decompress(set, &schc, Direction::Up, &cfg, &mut back).unwrap();
            (c, d)
        });
        assert_eq!(allocs, 0, "{name}");
        assert_eq!(out[..c.len], schc[..], "{name}");
        assert_eq!(back[..d.len], packet[..], "{name}");
    }
    // The device's compiled-only tables, through the entry points that read them.
    let set = &device_rules::RULE_SET;
    let mut out = [0u8; 64];
    let mut back = [0u8; 128];
    let ((c, d), allocs) = count(|| {
        let c = codec::compress_compiled(set, &packet, Direction::Up, &cfg, &mut out).unwrap();
        let bits = schc.len() * 8;
        let d =
            codec::decompress_compiled(set, &schc, bits, Direction::Up, &cfg, &mut back).unwrap();
        (c, d)
    });
    assert_eq!(allocs, 0, "compiled-only device tables");
    assert_eq!(out[..c.len], schc[..]);
    assert_eq!(back[..d.len], packet[..]);
    // The interpreter's entry points find no descriptors in them, and say so.
    assert_eq!(
        codec::decompress(set, &schc, Direction::Up, &cfg, &mut back),
        Err(codec::DecompressError::NoDescriptors(RuleId::new(1, 8)))
    );
}
