//! Property tests of fragmentation: random rules, packets and lossy links.
//!
//! - The ACK bitmap codec: `parse_ack(write_ack_failure(b)) == b` for every window size, header
//!   length and bitmap, and the compressed length is exactly what RFC 8724 §8.3.2.1 gives.
//! - Whole exchanges over a link losing up to 50 % of the frames in each direction (a seeded
//!   generator): ACK-Always and ACK-on-Error deliver the identical packet or both sides end
//!   with an abort; No-ACK delivers it or reports an RCS failure or inactivity. Never a wrong
//!   packet, never a panic, never an error for our own frames, and a bounded number of steps.
//!   In half the exchanges the MTU changes between frames (all modes; ACK-Always cuts each
//!   window at the MTU when it starts): no frame is ever longer than the MTU current when it was
//!   sent, a frame that would be is refused (`MtuTooSmall`), and the exchange goes on once the
//!   MTU is larger again.

mod frag_harness;

use frag_harness::*;
use lpwan_schc::frag::wire::{self, Ack, Layout};
use lpwan_schc::frag::{AbortReason, FragError, ReceiverAction, Sender, SenderAction};
use lpwan_schc::rule::{AckBehavior, BitmapFormat, FragMode, FragParams, Rule, TileInAll1};
use proptest::prelude::*;

/// What the RFC 8724 §8.3.2.1 algorithm keeps of a `ws`-bit bitmap after an `h`-bit header,
/// with L2 words of `l2` bits: the smallest cut on an L2 boundary of the message that is at or
/// after the bit following the last 0 (the header's end if there is none), or the whole bitmap.
fn expected_kept(h: usize, ws: usize, b: u64, l2: usize) -> usize {
    let last_zero = (0..ws).rev().find(|&i| (b >> (ws - 1 - i)) & 1 == 0);
    let cut = h + last_zero.map_or(0, |i| i + 1);
    let aligned = cut.div_ceil(l2) * l2;
    if aligned >= h + ws {
        ws
    } else {
        aligned - h
    }
}

/// Bitmaps that matter: all ones, a single 0 anywhere, a run of zeros, or anything.
fn bitmap_strategy(ws: usize) -> BoxedStrategy<u64> {
    let full = wire::mask(ws);
    prop_oneof![
        Just(full),
        (0..ws).prop_map(move |k| full & !(1u64 << k)),
        (0..ws, 0..ws).prop_map(move |(a, b)| {
            let (lo, hi) = (a.min(b), a.max(b));
            full & !(wire::mask(hi - lo + 1) << lo)
        }),
        any::<u64>().prop_map(move |v| v & full),
    ]
    .boxed()
}

/// The smallest N with WINDOW_SIZE < 2^N.
fn fcn_bits_for(ws: usize) -> u8 {
    let mut n = 1u8;
    while (1usize << n) <= ws {
        n += 1;
    }
    n
}

fn ack_rule(rule_len: u8, t: u8, m: u8, n: u8, ws: u16, compound: bool, lbc: bool) -> Rule {
    let mut p = params(FragMode::AckOnError, m, n, ws);
    p.dtag_bits = t;
    if compound {
        p.bitmap_format = BitmapFormat::CompoundAck;
        p.last_bitmap_compression = lbc;
    }
    // A rule ID of ones but the last bit (any value would do).
    let value = ((1u64 << rule_len) - 1 - u64::from(rule_len > 1)) as u32;
    frag_rule(value, rule_len, p)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// One window per ACK (RFC 8724): the failure ACK round-trips, its length is the one the
    /// compression algorithm gives, and a cut message ends on an L2 boundary with no padding.
    #[test]
    fn failure_ack_round_trips_and_is_compressed_exactly(
        (ws, b) in (1usize..=64).prop_flat_map(|ws| (Just(ws), bitmap_strategy(ws))),
        rule_len in 1u8..=32,
        t in 0u8..=16,
        m in 1u8..=8,
        dtag in any::<u32>(),
        w in any::<u32>(),
    ) {
        let n = fcn_bits_for(ws);
        let rule = ack_rule(rule_len, t, m, n, ws as u16, false, false);
        let l = Layout::new(&rule).unwrap();
        let dtag = dtag & ((1u64 << t) - 1) as u32;
        let w = w & ((1u64 << m) - 1) as u32;
        let mut out = [0u8; 32];
        let len = wire::write_ack_failure(&l, dtag, &[(w, b)], &mut out).unwrap();
        let h = l.ack_header_bits();
        let kept = expected_kept(h, ws, b, 8);
        if kept < ws {
            prop_assert_eq!(len * 8, h + kept, "a cut bitmap ends on the boundary");
        } else {
            prop_assert_eq!(len, (h + ws).div_ceil(8), "a whole bitmap is padded");
        }
        let back = wire::parse_ack(&l, &out[..len]).unwrap();
        let expect = Ack::Failure { dtag, windows: [(w, b)].as_slice().try_into().unwrap() };
        prop_assert_eq!(back, expect);
    }

    /// Compound ACKs (RFC 9441): several windows in increasing order round-trip, with or without
    /// compression of the last bitmap, and the M-bit terminator is there exactly when at least M
    /// padding bits would follow an uncut last bitmap.
    #[test]
    fn compound_ack_round_trips(
        ws in 1usize..=64,
        m in 1u8..=4,
        rule_len in 1u8..=16,
        picks in proptest::collection::btree_set(0u32..16, 1..6),
        seed in any::<u64>(),
        lbc in any::<bool>(),
    ) {
        let rule = ack_rule(rule_len, 0, m, fcn_bits_for(ws), ws as u16, true, lbc);
        let l = Layout::new(&rule).unwrap();
        let mut rng = Seeded::new(seed);
        let picks: std::collections::BTreeSet<u32> =
            picks.into_iter().map(|w| w % (1u32 << m)).collect();
        let windows: Vec<(u32, u64)> = picks
            .into_iter()
            .map(|w| {
                let b = match rng.below(3) {
                    0 => wire::mask(ws),
                    1 => wire::mask(ws) & !(1u64 << rng.below(ws)),
                    _ => rng.next() & wire::mask(ws),
                };
                (w, b)
            })
            .collect();
        let mut out = [0u8; 128];
        let len = wire::write_ack_failure(&l, 0, &windows, &mut out).unwrap();
        // The length: header, first bitmap, then (W, bitmap) pairs, the last possibly cut.
        let h = l.ack_header_bits();
        let mut bits = h + ws + (windows.len() - 1) * (usize::from(m) + ws);
        let last = windows.last().unwrap().1;
        let cut = lbc && expected_kept(bits - ws, ws, last, 8) < ws;
        if cut {
            bits = bits - ws + expected_kept(bits - ws, ws, last, 8);
            prop_assert_eq!(len * 8, bits);
        } else {
            let pad = (8 - bits % 8) % 8;
            prop_assert_eq!(len, bits.div_ceil(8));
            if pad >= usize::from(m) {
                // The terminator: M zero bits right after the last bitmap.
                prop_assert_eq!(lpwan_schc::bits::get_bits(&out, bits, u32::from(m)), 0);
            }
        }
        let back = wire::parse_ack(&l, &out[..len]).unwrap();
        let expect = Ack::Failure { dtag: 0, windows: windows.as_slice().try_into().unwrap() };
        prop_assert_eq!(back, expect);
    }
}

/// A generated exchange.
#[derive(Debug, Clone)]
struct Case {
    p: FragParams,
    rule_len: u8,
    dtag: u32,
    mtu: usize,
    len: usize,
    bits_short: usize,
    p_s: u32,
    p_r: u32,
    seed: u64,
    /// The receiver answers after every frame.
    interleave: bool,
    /// MTU changes (before the sender's frame `.0`, to `.1` bytes), sometimes below what the
    /// next frame needs (the sender refuses it and the harness gives it a larger MTU).
    mtu_changes: Vec<(usize, usize)>,
}

fn case_strategy(mode: FragMode) -> impl Strategy<Value = Case> {
    (
        (1u8..=12, 0u8..=3, 1u8..=3, 1u8..=7, 1u16..=64),
        (
            0u16..=96,
            0usize..3,
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        ),
        (1u8..=8, 0usize..4, 0usize..=40, 16u16..=1280, any::<u64>()),
        (0u32..=50, 0u32..=50, any::<u64>(), 0usize..8, any::<u32>()),
    )
        .prop_map(
            move |(
                (rule_len, t, m, n, ws),
                (tile, tia, after0, compound, lbc),
                (mar, inact, extra, maxp, len_pick),
                (p_s, p_r, seed, short, dtag),
            )| {
                let (m, n, ws) = match mode {
                    FragMode::NoAck => (0, n.min(3), 1),
                    FragMode::AckAlways => (1, n, ws.min((1u16 << n) - 1)),
                    FragMode::AckOnError => (m, n, ws.min((1u16 << n) - 1)),
                };
                let mut p = params(mode, m, n, ws);
                p.dtag_bits = t;
                p.max_ack_requests = mar;
                p.max_packet_size = maxp;
                p.inactivity_timer = Some(timer_us([700, 5_000, 20_000, 60_000][inact]));
                if mode == FragMode::AckOnError {
                    p.tile_in_all1 =
                        [TileInAll1::SenderChoice, TileInAll1::Yes, TileInAll1::No][tia];
                    p.tile_size = match (tile, p.tile_in_all1) {
                        (0..=7, _) => 0,
                        // A last tile in a regular fragment needs tiles of whole L2 words.
                        (_, TileInAll1::No) => tile / 8 * 8,
                        _ => tile,
                    };
                    p.ack_behavior = if after0 {
                        AckBehavior::AfterAll0
                    } else {
                        AckBehavior::AfterAll1
                    };
                    if compound {
                        p.bitmap_format = BitmapFormat::CompoundAck;
                        p.last_bitmap_compression = lbc;
                    }
                }
                let header = usize::from(rule_len + t + m + n);
                let tile_bits = usize::from(p.tile_size).max(8);
                // Room for an All-1 with its RCS and a tile, and a little more.
                let mtu = (header + 32 + tile_bits).div_ceil(8) + 1 + extra;
                // At most the rule's maximum, and what 2^M windows carry in ACK-on-Error.
                let mut max = usize::from(maxp);
                if mode == FragMode::AckOnError {
                    let tile = if p.tile_size > 0 {
                        usize::from(p.tile_size)
                    } else {
                        mtu * 8 - header - 8
                    };
                    max = max.min(((1usize << m) * usize::from(ws) * tile) / 8);
                }
                let len = 1 + (len_pick as usize) % max;
                let mut r = Seeded::new(seed ^ 0x0dd);
                let interleave = r.chance(50);
                // The MTU may change between any two frames: ACK-on-Error packs as many of the
                // rule's tiles as fit, ACK-Always cuts each window at the MTU when it starts, and
                // a frame that does not fit is refused, never sent. Mostly above what an All-1
                // with a tile needs, sometimes down to the header alone.
                let min_mtu = (header + 32 + tile_bits).div_ceil(8) + 1;
                let mtu_changes = if r.chance(50) {
                    (0..6)
                        .map(|_| {
                            let m = if r.chance(15) {
                                header.div_ceil(8) + r.below(min_mtu)
                            } else {
                                min_mtu + r.below(40)
                            };
                            (r.below(60), m)
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                Case {
                    p,
                    rule_len,
                    dtag: dtag & ((1u32 << t) - 1),
                    mtu,
                    len,
                    bits_short: short,
                    p_s,
                    p_r,
                    seed,
                    interleave,
                    mtu_changes,
                }
            },
        )
}

/// Runs one case; `Ok(false)` if the sender refused the rule/packet for a reason the RFC gives.
fn exchange(c: &Case) -> Result<bool, TestCaseError> {
    let rule = frag_rule(1, c.rule_len, c.p);
    let packet = packet(c.len, c.seed);
    // Packets need not be whole bytes: drop up to 7 bits at the end (of packets longer than
    // one byte: a packet shorter than an L2 word cannot be fragmented).
    let bits = if c.len > 1 {
        c.len * 8 - c.bits_short
    } else {
        8
    };
    let sender = match Sender::new(&rule, &packet, bits, c.dtag, c.mtu) {
        Ok(s) => s,
        Err(FragError::PacketTooLarge { bits: b, max, .. }) => {
            prop_assert!(b > max || b == 0);
            return Ok(false);
        }
        Err(FragError::MtuTooSmall { .. } | FragError::BadRule { .. }) => return Ok(false),
        Err(e) => return Err(TestCaseError::fail(format!("sender: {e}"))),
    };
    let mut setup = Setup {
        max_steps: 200_000,
        ..Setup::new(c.mtu).link(Link::random(c.p_s, c.p_r, c.seed ^ 0x5eed))
    };
    setup.interleave = c.interleave;
    setup.mtu_changes = c.mtu_changes.clone();
    let t = run_with(&rule, sender, setup);
    prop_assert!(t.rx_errors.is_empty(), "receiver errors: {:?}", t.rx_errors);
    // No frame is ever longer than the MTU current when it was sent.
    for e in t.frames(true) {
        prop_assert!(
            e.bytes.len() <= e.mtu,
            "a frame of {} bytes sent with an MTU of {}",
            e.bytes.len(),
            e.mtu
        );
    }
    if c.mtu_changes.is_empty() {
        prop_assert!(t.mtu_refusals.is_empty(), "refusals at a constant MTU");
    }
    prop_assert!(t.tx_errors.is_empty(), "sender errors: {:?}", t.tx_errors);
    prop_assert!(t.delivered_count <= 1);
    if t.delivered.is_some() {
        prop_assert!(
            t.delivered_exactly(&packet, bits, 8),
            "a wrong packet was delivered"
        );
    }
    // The receiver counts ACKs without progress against MAX_ACK_REQUESTS, so a lossless exchange
    // always delivers, even with an ACK after every window and few attempts.
    let lossless = c.p_s == 0 && c.p_r == 0;
    match c.p.mode {
        FragMode::NoAck => {
            prop_assert_eq!(t.sender, SenderAction::Done);
            match t.receiver {
                ReceiverAction::Delivered { .. } => {}
                ReceiverAction::Aborted(AbortReason::RcsMismatch | AbortReason::Inactivity) => {
                    prop_assert!(c.p_s > 0, "No-ACK without loss must deliver");
                }
                other => prop_assert!(false, "No-ACK receiver ended with {:?}", other),
            }
        }
        _ => {
            match t.sender {
                SenderAction::Done => {
                    prop_assert!(
                        t.delivered.is_some(),
                        "the sender is done, nothing delivered"
                    )
                }
                SenderAction::Aborted(AbortReason::TooManyAttempts | AbortReason::PeerAborted) => {
                    prop_assert!(!lossless, "aborted without loss: {:?}", t.sender)
                }
                other => prop_assert!(false, "the sender ended with {:?}", other),
            }
            match t.receiver {
                ReceiverAction::Delivered { .. } => {}
                ReceiverAction::Aborted(
                    AbortReason::TooManyAttempts
                    | AbortReason::Inactivity
                    | AbortReason::PeerAborted,
                ) => prop_assert!(!lossless, "receiver aborted without loss"),
                other => prop_assert!(false, "the receiver ended with {:?}", other),
            }
        }
    }
    Ok(true)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn no_ack_delivers_or_reports_failure(c in case_strategy(FragMode::NoAck)) {
        prop_assume!(exchange(&c)?);
    }

    #[test]
    fn ack_always_delivers_or_aborts_cleanly(c in case_strategy(FragMode::AckAlways)) {
        prop_assume!(exchange(&c)?);
    }

    #[test]
    fn ack_on_error_delivers_or_aborts_cleanly(c in case_strategy(FragMode::AckOnError)) {
        prop_assume!(exchange(&c)?);
    }
}
