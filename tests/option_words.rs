//! Matching plans compare a rule's CoAP options as the bytes of their encoding when the rule
//! allows one encoding only (`RulePlan::fold_options`: the TKL pinned, every option entry
//! `equal` / `not-sent` with a short value, positions 1, 2, ... per number). These tests hold
//! that path to the interpreter on options of every shape (small and extended deltas, repeated
//! numbers, empty and 8-byte values, longer values that do not fold), on the packet the rule
//! describes and on packets that differ from it by one option. The device codec is held to the
//! host on the same shapes, its rule listing the options in any order.

use lpwan_schc::codec::{compress, compress_compiled, decompress_compiled, udp_checksum, Config};
use lpwan_schc::json;
use lpwan_schc::rule::index::RuleIndexBuf;
use lpwan_schc::rule::{Cda, DirectionIndicator};
use lpwan_schc::rule::{
    Direction, Fid, FieldLength, FieldSpec, MatchingOperator, RuleId, RuleIndex, RuleSet,
    RuleSetBuf,
};
use proptest::prelude::*;

mod common;

use common::{coap_options, hex};

/// The anchor packet's IPv6, UDP and CoAP headers up to its 1-byte token 0xab.
const HEAD: &str = "600000000017114020010db8000a0000000000000000000320010db8000a00000000000000000020d10016330017d71e41011234ab";

/// The anchor packet with `options` (sorted by number, stably) and its payload, lengths and
/// UDP checksum made right.
fn packet(options: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut p = hex(HEAD);
    let mut sorted = options.to_vec();
    sorted.sort_by_key(|o| o.0);
    p.extend(coap_options(&sorted));
    p.extend([0xFF, 1, 2, 3, 4]);
    let len = p.len();
    p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
    p[44..46].copy_from_slice(&((len - 40) as u16).to_be_bytes());
    p[46..48].copy_from_slice(&[0, 0]);
    let c = udp_checksum(&p);
    p[46..48].copy_from_slice(&c.to_be_bytes());
    p
}

/// The anchor rule's entries with `options` (in this order, with these positions) in place
/// of its Uri-Path, and the TKL entry pinned or ignored.
fn rule(anchor: &RuleSetBuf, options: &[(u16, u8, Vec<u8>)], tkl_pinned: bool) -> Vec<FieldSpec> {
    let r = *anchor.as_set().get(RuleId::new(1, 8)).unwrap();
    let mut specs: Vec<FieldSpec> = anchor
        .field_specs(&r)
        .into_iter()
        .filter(|e| !matches!(e.fid, Fid::CoapOption(_)))
        .collect();
    if !tkl_pinned {
        let tkl = specs.iter_mut().find(|e| e.fid == Fid::CoapTkl).unwrap();
        tkl.mo = MatchingOperator::Ignore;
        tkl.cda = Cda::ValueSent;
        tkl.tv.clear();
    }
    for (n, fp, v) in options {
        specs.push(FieldSpec {
            fid: Fid::CoapOption(*n),
            fl: FieldLength::Variable,
            fp: *fp,
            di: DirectionIndicator::Bi,
            tv: vec![v.clone()],
            mo: MatchingOperator::Equal,
            cda: Cda::NotSent,
        });
    }
    specs
}

/// The packet's options as a rule sees them: (number, position, value), in packet order.
fn positioned(options: &[(u16, Vec<u8>)]) -> Vec<(u16, u8, Vec<u8>)> {
    let mut sorted = options.to_vec();
    sorted.sort_by_key(|o| o.0);
    let mut out: Vec<(u16, u8, Vec<u8>)> = Vec::new();
    for (n, v) in sorted {
        let fp = match out.last() {
            Some(&(m, p, _)) if m == n => p + 1,
            _ => 1,
        };
        out.push((n, fp, v));
    }
    out
}

/// What compression gives: the rule ID and the bytes, or the error.
fn outcome(set: &RuleSet<'_>, p: &[u8]) -> Result<(RuleId, Vec<u8>), String> {
    let mut out = vec![0u8; p.len() + 16];
    compress(set, p, Direction::Up, &Config::default(), &mut out)
        .map(|c| (c.rule_id, out[..c.len].to_vec()))
        .map_err(|e| e.to_string())
}

fn options() -> impl Strategy<Value = Vec<(u16, Vec<u8>)>> {
    // Small deltas, 13..=268 and from 269, repeats; values of 0 to 8 bytes mostly, a few
    // longer ones that cannot be inline values.
    let number = prop_oneof![
        Just(1u16),
        Just(3),
        Just(11),
        Just(12),
        Just(15),
        Just(35),
        Just(60),
        Just(300),
        Just(2049),
    ];
    let value = prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..=8),
        1 => proptest::collection::vec(any::<u8>(), 9..=12),
    ];
    proptest::collection::vec((number, value), 1..=4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(600)
    ))]

    #[test]
    fn folded_options_match_as_the_interpreter_does(
        opts in options(),
        shuffle in any::<u64>(),
        tkl_pinned in prop::bool::weighted(0.8),
        gap in prop::bool::weighted(0.1),
        change in 0usize..6,
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let anchor = json::from_str(include_str!("../rules/anchor.json")).unwrap();
        // The rule's option entries in a shuffled order; sometimes a position skipped.
        let mut entries = positioned(&opts);
        let k = entries.len();
        for i in 0..k {
            entries.swap(i, (shuffle >> (i * 8)) as usize % k);
        }
        if gap {
            let i = at.index(k);
            entries[i].1 += 1;
        }
        let set = rule_set(&rule(&anchor, &entries, tkl_pinned));
        prop_assume!(set.validate().is_ok());
        let ix = RuleIndexBuf::build(&set.as_set());
        let planned = set.as_set().with_index(ix.as_index()).into_validated().unwrap();
        let without = RuleIndex { compiled: &[], plans: &[], ..ix.as_index() };
        let interp = set.as_set().with_index(without).into_validated().unwrap();
        // Whether the plan folded the options: exactly when the rule allows one encoding and
        // it fits the plan's free word (the anchor's header takes seven of eight).
        let p = packet(&opts);
        let encoded = p.len() - hex(HEAD).len() - 5;
        let foldable = tkl_pinned && !gap && opts.iter().all(|o| o.1.len() <= 8) && encoded <= 8;
        let up = &ix.plans[0];
        prop_assert!(up.usable);
        prop_assert_eq!(up.rest == 0, foldable, "rest {:#x}", up.rest);

        // The packet the rule describes, and one that differs by an option.
        let mut other = opts.clone();
        let i = at.index(other.len());
        match change {
            0 => other[i].1.push(byte),
            1 if !other[i].1.is_empty() => {
                let j = usize::from(byte) % other[i].1.len();
                other[i].1[j] ^= 1 | byte;
            }
            2 => {
                other.remove(i);
            }
            3 => other.push((other[i].0, vec![byte])),
            4 => other[i].0 = other[i].0.wrapping_add(1).max(1),
            _ => other[i].1.truncate(usize::from(byte) % 3),
        }
        let q = packet(&other);
        let a = outcome(&planned, &p);
        prop_assert_eq!(&a, &outcome(&interp, &p));
        if !gap {
            prop_assert_eq!(a.map(|c| c.0), Ok(RuleId::new(1, 8)), "the described packet");
        }
        prop_assert_eq!(outcome(&planned, &q), outcome(&interp, &q), "changed {:?}", other);
    }

    /// The device codec (`compress_compiled`, `decompress_compiled`) on the same option shapes,
    /// the rule's option entries in any order, some of them value-sent: it compresses as the
    /// host does, and rebuilds the packet, writing the options sorted with their deltas (one
    /// pass over the entries per option) whatever order the rule lists them in.
    #[test]
    fn the_device_codec_rebuilds_options_listed_in_any_order(
        opts in options(),
        shuffle in any::<u64>(),
        sent in any::<u8>(),
    ) {
        let anchor = json::from_str(include_str!("../rules/anchor.json")).unwrap();
        let mut entries = positioned(&opts);
        let k = entries.len();
        for i in 0..k {
            entries.swap(i, (shuffle >> (i * 8)) as usize % k);
        }
        let mut specs = rule(&anchor, &entries, true);
        let first = specs.len() - k;
        for (i, e) in specs[first..].iter_mut().enumerate() {
            if sent & (1 << i) != 0 {
                value_sent(e);
            }
        }
        let set = rule_set(&specs);
        prop_assume!(set.validate().is_ok());
        let ix = RuleIndexBuf::build(&set.as_set());
        let compiled = set.as_set().with_index(ix.as_index()).into_validated().unwrap();
        let p = packet(&opts);
        let cfg = Config::default();
        let mut host = vec![0u8; p.len() + 16];
        let c = compress(&compiled, &p, Direction::Up, &cfg, &mut host).unwrap();
        prop_assert_eq!(c.rule_id, RuleId::new(1, 8));
        let mut dev = vec![0u8; p.len() + 16];
        let d = compress_compiled(&compiled, &p, Direction::Up, &cfg, &mut dev).unwrap();
        prop_assert_eq!(d, c);
        prop_assert_eq!(&dev[..d.len], &host[..c.len]);
        let mut back = vec![0u8; p.len() + 16];
        let r = decompress_compiled(&compiled, &dev[..d.len], d.bits, Direction::Up, &cfg, &mut back)
            .unwrap();
        prop_assert_eq!(&back[..r.len], &p[..], "entries {:?}", entries);
    }
}

/// Value-sent options long enough for every size prefix width (4, 12 and 28 bits: RFC 8724
/// §7.5.2) through the device codec, as the host compresses and rebuilds them.
#[test]
fn the_device_codec_reads_every_size_prefix_width() {
    let anchor = json::from_str(include_str!("../rules/anchor.json")).unwrap();
    for len in [0usize, 14, 15, 254, 255, 300] {
        let value: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let opts = vec![(11u16, value), (15, b"k=v".to_vec())];
        let mut specs = rule(&anchor, &positioned(&opts), true);
        let first = specs.len() - 2;
        specs[first..].iter_mut().for_each(value_sent);
        let set = rule_set(&specs);
        let ix = RuleIndexBuf::build(&set.as_set());
        let compiled = set
            .as_set()
            .with_index(ix.as_index())
            .into_validated()
            .unwrap();
        let p = packet(&opts);
        let cfg = Config::default();
        let (mut host, mut dev) = (vec![0u8; p.len() + 16], vec![0u8; p.len() + 16]);
        let c = compress(&compiled, &p, Direction::Up, &cfg, &mut host).unwrap();
        let d = compress_compiled(&compiled, &p, Direction::Up, &cfg, &mut dev).unwrap();
        assert_eq!((d, &dev[..d.len]), (c, &host[..c.len]), "{len} bytes");
        // The rule ID, the MID's LSBs and the token (8 + 4 + 8 bits), then the prefix: the
        // size in 4 bits, or 0xF and 8 bits, or 0xFFF and 16 bits.
        let (prefix, width) = match len {
            0..=14 => (len as u64, 4),
            15..=254 => (0xF00 | len as u64, 12),
            _ => (0xFFF_0000 | len as u64, 28),
        };
        assert_eq!(bits_at(&dev, 20, width), prefix, "{len} bytes");
        let mut back = vec![0u8; p.len() + 16];
        let r = decompress_compiled(
            &compiled,
            &dev[..d.len],
            d.bits,
            Direction::Up,
            &cfg,
            &mut back,
        )
        .unwrap();
        assert_eq!(&back[..r.len], &p[..], "{len} bytes");
        // Cut one byte into the value: refused, not rebuilt from bits past the end.
        if len > 0 {
            let cut = 20 + width + 8 * len - 8;
            let e = decompress_compiled(
                &compiled,
                &dev[..d.len],
                cut,
                Direction::Up,
                &cfg,
                &mut back,
            );
            assert!(e.is_err(), "{len} bytes: {e:?}");
        }
    }
}

/// Makes `e` an `ignore` / `value-sent` entry.
fn value_sent(e: &mut FieldSpec) {
    e.mo = MatchingOperator::Ignore;
    e.cda = Cda::ValueSent;
    e.tv.clear();
}

/// `specs` as rule 1/8, beside the no-compression rule 0/8.
fn rule_set(specs: &[FieldSpec]) -> RuleSetBuf {
    let mut set = RuleSetBuf::new();
    set.push_compression(RuleId::new(1, 8), specs).unwrap();
    set.push_no_compression(RuleId::new(0, 8));
    set
}

/// `n` bits of `data` from bit `off`, MSB first.
fn bits_at(data: &[u8], off: usize, n: usize) -> u64 {
    (off..off + n).fold(0, |v, i| {
        (v << 1) | u64::from((data[i / 8] >> (7 - i % 8)) & 1)
    })
}
