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
use lpwan_schc::rule::Direction;

#[path = "../benches/decoys.rs"]
mod decoys;

const USAGE: &str = "usage: hotloop compress|decompress N [--rules K] [--linear]";

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

    let (doc, packet, expected) = decoys::anchor();
    let mut rules = decoys::rules(&doc, k);
    if linear {
        rules.validate().expect("the rules are valid");
    } else {
        rules.build_index().expect("the rules are valid");
    }
    let set = rules.as_set();
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
            // (The inputs are opaque each time, and the length is summed and printed: the
            // call cannot be skipped or hoisted.)
            sum += r.map_or(0, |c| c.len);
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
            sum += r.map_or(0, |d| d.len);
        }
    }
    println!(
        "{op} x{n} with {} rules: {sum} bytes out",
        set.rules().len()
    );
    ExitCode::SUCCESS
}
