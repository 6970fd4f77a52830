//! Compresses or decompresses the anchor packet (`benches/anchor.json`) `N` times and nothing
//! else, for instruction counts:
//!
//! ```text
//! hotloop compress N [--rules K] [--linear]
//! hotloop decompress N [--rules K] [--linear]
//! ```
//!
//! With `--rules K` the rule set has `K` compression rules: `K - 1` plausible decoys that do not
//! match the packet (another device or application port, prefix, IID or Uri-Path), placed before
//! the anchor rule, then the no-compression rule. Without it, the anchor rules as they are.
//! The rule set is indexed (`RuleSetBuf::build_index`) unless `--linear` is given. The result is
//! checked once, before the loop. Count with
//! `valgrind --tool=callgrind target/release/examples/hotloop compress 11000` minus the same at
//! 1000, divided by 10000.

use std::hint::black_box;
use std::process::ExitCode;

use lpwan_schc::codec::{compress, decompress, Config};
use lpwan_schc::json;
use lpwan_schc::rule::{Direction, Fid, FieldSpec, MatchingOperator, RuleId, RuleSetBuf};
use serde_json::Value;

const USAGE: &str = "usage: hotloop compress|decompress N [--rules K] [--linear]";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The anchor rules, or `k` compression rules: `k - 1` decoys, then the anchor rule.
fn rules(doc: &Value, k: Option<usize>) -> RuleSetBuf {
    let anchor = json::from_value(&doc["rules"]).expect("the anchor rules load");
    let Some(k) = k else {
        return anchor;
    };
    let set = anchor.as_set();
    let rule = set.get(RuleId::new(1, 8)).expect("anchor rule 1/8");
    let specs = anchor.field_specs(rule);
    let mut out = RuleSetBuf::new();
    for i in 0..k.saturating_sub(1) {
        out.push_compression(RuleId::new(0x0200 + i as u32, 16), &decoy(&specs, i))
            .expect("decoy rule");
    }
    out.push_compression(rule.id, &specs).expect("anchor rule");
    out.push_no_compression(RuleId::new(0, 8));
    out
}

/// The anchor rule with one equal-matched field changed so that the packet does not match:
/// decoy `i` changes the field `i % 6` names to a value derived from `i`.
fn decoy(specs: &[FieldSpec], i: usize) -> Vec<FieldSpec> {
    let n = (i / 6) as u16 + 1;
    let (fid, value): (Fid, Vec<u8>) = match i % 6 {
        0 => (Fid::UdpAppPort, (0x1633u16 ^ n).to_be_bytes().to_vec()),
        1 => (Fid::UdpDevPort, (0xd100u16 ^ n).to_be_bytes().to_vec()),
        2 => {
            let mut p = vec![0x20, 0x01, 0x0d, 0xb8, 0x00, 0x0b, 0, 0];
            p[6..].copy_from_slice(&n.to_be_bytes());
            (Fid::Ipv6AppPrefix, p)
        }
        3 => {
            let mut p = vec![0u8; 8];
            p[6..].copy_from_slice(&(0x0003 ^ n).to_be_bytes());
            (Fid::Ipv6DevIid, p)
        }
        4 => (Fid::CoapOption(11), format!("t{n}").into_bytes()),
        _ => {
            let mut p = vec![0x20, 0x01, 0x0d, 0xb8, 0x00, 0x0c, 0, 0];
            p[6..].copy_from_slice(&n.to_be_bytes());
            (Fid::Ipv6DevPrefix, p)
        }
    };
    let mut out = specs.to_vec();
    let e = out
        .iter_mut()
        .find(|e| e.fid == fid)
        .expect("the anchor rule describes the field");
    assert_eq!(e.mo, MatchingOperator::Equal);
    e.tv = vec![value];
    out
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let linear = args.iter().any(|a| a == "--linear");
    args.retain(|a| a != "--linear");
    let (op, n, k) = match args.as_slice() {
        [op, n] => (op.as_str(), n.parse().ok(), None),
        [op, n, flag, k] if flag == "--rules" => (op.as_str(), n.parse().ok(), k.parse().ok()),
        _ => (" ", None, None),
    };
    let (Some(n), true) = (n, matches!(op, "compress" | "decompress")) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if args.len() == 4 && k.is_none_or(|k| k == 0) {
        eprintln!("{USAGE} (K at least 1)");
        return ExitCode::from(2);
    }
    let n: usize = n;

    let doc: Value =
        serde_json::from_str(include_str!("../benches/anchor.json")).expect("anchor.json");
    let mut rules = rules(&doc, k);
    if linear {
        rules.validate().expect("the rules are valid");
    } else {
        rules.build_index().expect("the rules are valid");
    }
    let set = rules.as_set();
    let packet = unhex(doc["packet_hex"].as_str().expect("packet_hex"));
    let expected = unhex(
        doc["expected_schc_hex"]
            .as_str()
            .expect("expected_schc_hex"),
    );
    let cfg = Config::default();
    let mut schc = [0u8; 128];
    let mut back = [0u8; 1280];

    // Checked once, outside the loop.
    let c = compress(&set, &packet, Direction::Up, &cfg, &mut schc).expect("compresses");
    assert_eq!(&schc[..c.len], &expected[..], "compressed bytes");
    let d = decompress(&set, &expected, Direction::Up, &cfg, &mut back).expect("decompresses");
    assert_eq!(&back[..d.len], &packet[..], "decompressed bytes");

    let mut sum = 0usize;
    if op == "compress" {
        for _ in 0..n {
            let r = compress(
                black_box(&set),
                black_box(&packet),
                Direction::Up,
                &cfg,
                black_box(&mut schc),
            );
            sum += black_box(r).map_or(0, |c| c.len);
        }
    } else {
        for _ in 0..n {
            let r = decompress(
                black_box(&set),
                black_box(&expected),
                Direction::Up,
                &cfg,
                black_box(&mut back),
            );
            sum += black_box(r).map_or(0, |d| d.len);
        }
    }
    println!(
        "{op} x{n} with {} rules: {sum} bytes out",
        set.rules().len()
    );
    ExitCode::SUCCESS
}
