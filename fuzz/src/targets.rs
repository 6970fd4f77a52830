//! The bodies of the fuzz targets, one function each. The fuzz crate calls them from
//! `fuzz_targets/*.rs`; `tests/fuzz_corpus.rs` includes this file with `#[path]` and replays the
//! corpora and the kept crashes through them on stable Rust.
//!
//! Every function takes arbitrary bytes and panics only when the library breaks a promise:
//! a panic inside the library, a frame longer than the MTU, a malformed frame of our own, or a
//! round trip that changes a packet.

#![allow(dead_code)]

use std::sync::OnceLock;

use lpwan_schc::codec::{self, CompressError, Config};
use lpwan_schc::frag::wire::{self, Layout};
use lpwan_schc::frag::{Receiver, ReceiverAction, Sender, SenderAction};
use lpwan_schc::json;
use lpwan_schc::rule::{
    Cda, Direction, MatchingOperator, Nature, Rule, RuleId, RuleSet, RuleSetBuf,
};

use crate::gen::{self, Profile, Src};

/// The shipped compression rule sets the codec targets run against.
const RULE_FILES: [&str; 4] = [
    include_str!("../../rules/example.json"),
    include_str!("../../rules/anchor.json"),
    include_str!("../../rules/leshan-learned.json"),
    include_str!("../../rules/leshan-microschc.json"),
];

/// Fragmentation rules of every mode and header shape (see the file).
const FRAG_RULES: &str = include_str!("../frag-rules.json");

fn rule_sets() -> &'static [RuleSetBuf] {
    static SETS: OnceLock<Vec<RuleSetBuf>> = OnceLock::new();
    SETS.get_or_init(|| {
        RULE_FILES
            .iter()
            .map(|s| {
                let set = json::from_str(s).expect("shipped rules load");
                set.validate().expect("shipped rules are valid");
                set
            })
            .collect()
    })
}

fn frag_rules() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(|| {
        let set = json::from_str(FRAG_RULES).expect("fuzz fragmentation rules load");
        set.validate().expect("fuzz fragmentation rules are valid");
        set.as_set().rules().to_vec()
    })
}

fn config(b: u8) -> Config {
    Config {
        dev_iid: (b & 0x10 != 0).then_some([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]),
        app_iid: (b & 0x20 != 0).then_some([0, 0, 0, 0, 0, 0, 0, 1]),
        ..Config::default()
    }
}

fn direction(b: u8) -> Direction {
    if b & 0x40 == 0 {
        Direction::Up
    } else {
        Direction::Down
    }
}

/// Whether every rule with this ID gives the packet back exactly: no `ignore` + `not-sent`.
fn lossless(set: &RuleSet<'_>, id: RuleId, dir: Direction) -> bool {
    set.rules().iter().filter(|r| r.id == id).all(|r| {
        !set.fields(r)
            .iter()
            .any(|f| f.di.applies(dir) && f.mo == MatchingOperator::Ignore && f.cda == Cda::NotSent)
    })
}

/// Compresses `pkt` and, with a lossless rule, checks that decompression gives it back.
fn check_round_trip(set: &RuleSet<'_>, pkt: &[u8], dir: Direction, cfg: &Config, must_match: bool) {
    let mut out = vec![0u8; pkt.len() * 2 + 160];
    let c = match codec::compress(set, pkt, dir, cfg, &mut out) {
        Ok(c) => c,
        Err(CompressError::NoMatch) if !must_match => return,
        Err(e) if !must_match => {
            let _ = e.to_string();
            return;
        }
        Err(e) => panic!("a rule built to match refused the packet: {e}\n{pkt:02x?}"),
    };
    assert!(c.bits <= c.len * 8 && c.len <= out.len(), "{c:?}");
    // The device's entry points (`codec::device`: one scan per rule, headers written as they
    // are decoded) give the same packets when every rule compiles.
    let whole = set.index().is_some_and(|ix| !ix.compiled.is_empty())
        && set.rules().iter().all(|r| {
            set.fields(r)
                .iter()
                .all(|fd| !set.compile_field(fd).is_fallback())
        });
    if whole {
        let mut dev = vec![0u8; out.len()];
        let k = codec::compress_compiled(set, pkt, dir, cfg, &mut dev).expect("compress agrees");
        assert!(
            k == c && dev[..k.len] == out[..c.len],
            "compress_compiled differs from compress:\n {pkt:02x?}"
        );
    }
    // explain (every rule, no index) agrees with compress (the index's candidates): the rule
    // chosen matches, and a packet sent uncompressed matches no rule.
    let mut chosen_matches = false;
    let mut any_match = false;
    codec::explain(set, pkt, dir, cfg, |id, r| {
        any_match |= r.is_ok();
        chosen_matches |= id == c.rule_id && r.is_ok();
    });
    let uncompressed = set
        .no_compression()
        .is_some_and(|r| r.id == c.rule_id && !chosen_matches);
    assert!(
        chosen_matches || (uncompressed && !any_match),
        "compress chose rule {} but explain disagrees",
        c.rule_id
    );
    if !lossless(set, c.rule_id, dir) {
        return;
    }
    let cfg2 = Config {
        max_packet_size: pkt.len() + 16,
        ..*cfg
    };
    let mut back = vec![0u8; pkt.len() + 16];
    let d = codec::decompress_bits(set, &out[..c.len], c.bits, dir, &cfg2, &mut back)
        .unwrap_or_else(|e| {
            panic!(
                "our own SCHC packet does not decompress: {e}\n packet {pkt:02x?}\n schc {:02x?} ({} bits)",
                &out[..c.len],
                c.bits
            )
        });
    assert_eq!(d.rule_id, c.rule_id);
    if whole {
        let mut dev = vec![0u8; back.len()];
        let e = codec::decompress_compiled(set, &out[..c.len], c.bits, dir, &cfg2, &mut dev)
            .expect("decompress_compiled agrees");
        assert!(
            dev[..e.len] == back[..d.len],
            "decompress_compiled differs from decompress:\n {pkt:02x?}"
        );
    }
    assert!(
        &back[..d.len] == pkt,
        "round trip changed the packet with rule {}:\n in  {pkt:02x?}\n out {:02x?}\n schc {:02x?} ({} bits)",
        c.rule_id,
        &back[..d.len],
        &out[..c.len],
        c.bits
    );
}

/// Decompresses arbitrary bytes with a shipped rule set. Byte 0 picks the set, the direction
/// and the IIDs; the rest is the SCHC packet.
pub fn decompress(data: &[u8]) {
    let Some((&b, schc)) = data.split_first() else {
        return;
    };
    let set = rule_sets()[usize::from(b) % RULE_FILES.len()].as_set();
    let cfg = config(b);
    let dir = direction(b);
    let mut out = [0u8; 1600];
    match codec::decompress(&set, schc, dir, &cfg, &mut out) {
        Ok(d) => {
            assert!(d.len <= cfg.max_packet_size, "{d:?}");
            // The same bits through decompress_bits give the same packet.
            let mut again = [0u8; 1600];
            let e = codec::decompress_bits(&set, schc, schc.len() * 8, dir, &cfg, &mut again)
                .expect("decompress_bits agrees with decompress");
            assert_eq!(out[..d.len], again[..e.len]);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// Compresses arbitrary bytes with a shipped rule set, and decompresses what comes out. Byte 0
/// picks the set, the direction and the IIDs; the rest is the packet.
pub fn compress(data: &[u8]) {
    let Some((&b, pkt)) = data.split_first() else {
        return;
    };
    let set = rule_sets()[usize::from(b) % RULE_FILES.len()].as_set();
    check_round_trip(&set, pkt, direction(b), &config(b), false);
}

/// Parses arbitrary bytes as an RFC 9363 JSON rule file; a file that loads and validates
/// must write out and load back to the same rule set.
pub fn json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let set = match json::from_str(text) {
        Ok(set) => set,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    if set.validate().is_err() {
        return;
    }
    let written = json::to_string_pretty(&set);
    let back = json::from_str(&written).expect("our own JSON loads");
    assert!(
        back == set,
        "JSON round trip changed the rule set:\n{written}"
    );
}

/// Splits the input into (time step, frame) pairs: one byte of time step (in 10 ms units),
/// one byte of length, then the frame.
fn frames(data: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let (&dt, r) = rest.split_first()?;
        let (&len, r) = r.split_first()?;
        let n = usize::from(len).min(r.len());
        let (frame, r) = r.split_at(n);
        rest = r;
        Some((u64::from(dt) * 10_000, frame))
    })
}

/// A fragment receiver fed arbitrary frames. Byte 0 picks the rule.
pub fn receiver(data: &[u8]) {
    let Some((&b, data)) = data.split_first() else {
        return;
    };
    let rules = frag_rules();
    let rule = &rules[usize::from(b) % rules.len()];
    let Nature::Fragmentation(params) = rule.nature else {
        return;
    };
    let Ok(layout) = Layout::new(rule) else {
        return;
    };
    let buf = vec![0u8; Receiver::<&mut [u8]>::buffer_len(rule, 256)];
    let mut now = 0u64;
    let mut rx = Receiver::new(rule, buf, now).expect("receiver for a valid rule");
    let mut out = [0u8; 256];
    let mut delivered = false;
    for (dt, frame) in frames(data) {
        now += dt;
        let _ = rx.handle_frame(frame, now);
        for _ in 0..16 {
            match rx.poll(now, &mut out) {
                Ok(ReceiverAction::Send(n)) => {
                    assert!(n <= out.len());
                    // What we send parses as an ACK (or a Receiver-Abort) of this rule.
                    wire::parse_ack(&layout, &out[..n]).expect("our ACK parses");
                }
                Ok(ReceiverAction::Delivered { bits }) => {
                    assert!(!delivered, "delivered twice");
                    delivered = true;
                    let (p, b) = rx.packet().expect("a delivered packet");
                    assert_eq!(b, bits);
                    assert!(bits <= p.len() * 8);
                    assert!(bits <= usize::from(params.max_packet_size) * 8 + 64);
                }
                Ok(_) | Err(_) => break,
            }
        }
    }
}

/// A fragment sender fed arbitrary ACKs. Byte 0 picks the rule, byte 1 the MTU and byte 2
/// the packet length; then (time step, ACK) pairs.
pub fn sender(data: &[u8]) {
    let [b, m, len, rest @ ..] = data else {
        return;
    };
    let rules = frag_rules();
    let rule = &rules[usize::from(*b) % rules.len()];
    let Ok(layout) = Layout::new(rule) else {
        return;
    };
    let mtu = 4 + usize::from(*m) % 250;
    let size = 1 + usize::from(*len) * 4;
    let packet: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
    let Ok(mut tx) = Sender::new(rule, &packet[..], size * 8, 0, mtu) else {
        return;
    };
    let mut acks = frames(rest);
    let mut now = 0u64;
    let mut out = [0u8; 256];
    for _ in 0..10_000 {
        match tx.poll(now, &mut out) {
            Ok(SenderAction::Send(n)) => {
                assert!(n <= mtu, "frame of {n} bytes over an MTU of {mtu}");
                // Fragments, ACK REQs and Sender-Aborts all parse as sender frames.
                if let Err(e) = wire::parse_fragment(&layout, &out[..n]) {
                    panic!("our own frame does not parse: {e}: {:02x?}", &out[..n]);
                }
            }
            Ok(SenderAction::WaitUntil(t)) => match acks.next() {
                Some((dt, ack)) => {
                    now += dt;
                    let _ = tx.handle_ack(ack, now);
                }
                None => now = now.max(t),
            },
            Ok(SenderAction::Done | SenderAction::Aborted(_)) => return,
            Err(e) => {
                let _ = e.to_string();
                return;
            }
        }
    }
}

/// Structure-aware round trip: a packet built from the input, a rule built to match it
/// (behind a decoy that does not), compressed and decompressed: the same bytes.
pub fn roundtrip(data: &[u8]) {
    let mut src = Src::new(data);
    let p = gen::packet(&mut src, Profile::Full);
    let (set, _) = gen::rule_set(&mut src, &p, Profile::Full);
    if let Err(e) = set.validate() {
        // Built rules are always valid.
        panic!("generated rule set invalid: {e}");
    }
    check_round_trip(&set.as_set(), &p.bytes, p.dir, &Config::default(), true);
}
