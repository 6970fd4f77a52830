//! Replays the fuzz corpora (`fuzz/corpus/TARGET/`) and every input that once broke a target
//! (`fuzz/regressions/TARGET/`) through the fuzz targets' own code, on stable Rust, so that CI
//! catches a regression without a fuzzer. The seed inputs are derived here from the interop
//! vectors, the shipped rule files and no-loss exchanges; a test checks that they are in the
//! corpus (`SCHC_WRITE_SEEDS=1 cargo test --test fuzz_corpus` writes them).

#[path = "../fuzz/src/gen.rs"]
mod gen;
#[path = "../fuzz/src/targets.rs"]
mod targets;

mod common;

use std::fs;
use std::path::PathBuf;

use common::{hex, root};
use lpwan_schc::codec::{self, Config};
use lpwan_schc::frag::{Receiver, ReceiverAction, Sender, SenderAction};
use lpwan_schc::json;
use lpwan_schc::rule::Direction;

/// A fuzz target's body.
type Target = fn(&[u8]);

/// The targets and their bodies.
const TARGETS: [(&str, Target); 6] = [
    ("decompress", targets::decompress),
    ("compress", targets::compress),
    ("json", targets::json),
    ("receiver", targets::receiver),
    ("sender", targets::sender),
    ("roundtrip", targets::roundtrip),
];

/// The shipped rule files, in the order the codec targets number them (byte 0 mod 4).
const RULE_FILES: [&str; 4] = [
    "rules/example.json",
    "rules/anchor.json",
    "rules/leshan-learned.json",
    "rules/leshan-microschc.json",
];

fn dir(kind: &str, target: &str) -> PathBuf {
    root().join("fuzz").join(kind).join(target)
}

/// The interop compression vectors: (name, packet, direction, RFC 9363 rules as text).
fn vectors() -> Vec<(String, Vec<u8>, Direction, String)> {
    let mut out = Vec::new();
    for f in common::vector_files() {
        let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&f).unwrap()).unwrap();
        let dir = if v["direction"] == "down" {
            Direction::Down
        } else {
            Direction::Up
        };
        out.push((
            v["name"].as_str().unwrap().to_string(),
            hex(v["packet_hex"].as_str().unwrap()),
            dir,
            v["rules"].to_string(),
        ));
    }
    out
}

/// Byte 0 of a codec target's input: rule file `set`, direction `dir`, no IIDs.
fn selector(set: usize, dir: Direction) -> u8 {
    set as u8 | if dir == Direction::Down { 0x40 } else { 0 }
}

/// A no-loss exchange with fragmentation rule `r` of `fuzz/frag-rules.json`: the sender's
/// frames and the receiver's, each as (time step, length, frame) records.
fn exchange(r: usize, mtu: u8, len: u8) -> (Vec<u8>, Vec<u8>) {
    let set =
        json::from_str(&fs::read_to_string(root().join("fuzz/frag-rules.json")).unwrap()).unwrap();
    let rules = set.as_set().rules().to_vec();
    let rule = &rules[r];
    let mtu_bytes = 4 + usize::from(mtu) % 250;
    let size = 1 + usize::from(len) * 4;
    let packet: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
    let Ok(mut tx) = Sender::new(rule, &packet[..], size * 8, 0, mtu_bytes) else {
        return (Vec::new(), Vec::new());
    };
    let buf = vec![0u8; Receiver::<&mut [u8]>::buffer_len(rule, 256)];
    let mut rx = Receiver::new(rule, buf, 0).unwrap();
    let (mut frags, mut acks) = (Vec::new(), Vec::new());
    let mut out = [0u8; 256];
    let record = |log: &mut Vec<u8>, f: &[u8]| {
        log.push(0);
        log.push(f.len() as u8);
        log.extend_from_slice(f);
    };
    for _ in 0..1000 {
        match tx.poll(0, &mut out).unwrap() {
            SenderAction::Send(n) => {
                record(&mut frags, &out[..n]);
                rx.handle_frame(&out[..n], 0).unwrap();
                while let ReceiverAction::Send(m) = rx.poll(0, &mut out).unwrap() {
                    record(&mut acks, &out[..m]);
                    tx.handle_ack(&out[..m], 0).unwrap();
                }
            }
            SenderAction::WaitUntil(_) => break,
            SenderAction::Done | SenderAction::Aborted(_) => break,
        }
    }
    (frags, acks)
}

/// The seed inputs of each target.
fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let sets: Vec<_> = RULE_FILES
        .iter()
        .map(|f| json::from_str(&fs::read_to_string(root().join(f)).unwrap()).unwrap())
        .collect();
    for (name, pkt, d, rules) in vectors() {
        for (i, set) in sets.iter().enumerate() {
            let mut input = vec![selector(i, d)];
            input.extend(&pkt);
            out.push(("compress", format!("{name}-{i}"), input));
            let mut schc = [0u8; 1600];
            if let Ok(c) = codec::compress(&set.as_set(), &pkt, d, &Config::default(), &mut schc) {
                let mut input = vec![selector(i, d)];
                input.extend(&schc[..c.len]);
                out.push(("decompress", format!("{name}-{i}"), input));
            }
        }
        out.push(("json", name, rules.into_bytes()));
    }
    for f in RULE_FILES
        .iter()
        .chain(&["rules/lorawan-fragmentation.json", "fuzz/frag-rules.json"])
    {
        let name = f.rsplit('/').next().unwrap().trim_end_matches(".json");
        out.push(("json", name.to_string(), fs::read(root().join(f)).unwrap()));
    }
    for r in 0..6u8 {
        for (mtu, len) in [(47u8, 20u8), (8, 3), (238, 255)] {
            let (frags, acks) = exchange(usize::from(r), mtu, len);
            let mut rx = vec![r];
            rx.extend(frags);
            out.push(("receiver", format!("rule{r}-mtu{mtu}-len{len}"), rx));
            let mut tx = vec![r, mtu, len];
            tx.extend(acks);
            out.push(("sender", format!("rule{r}-mtu{mtu}-len{len}"), tx));
        }
    }
    // The structure-aware target reads choices: a few fixed byte strings to start from.
    for k in 0..8u32 {
        let bytes: Vec<u8> = (0..400u32)
            .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(k * 97) >> 13) as u8)
            .collect();
        out.push(("roundtrip", format!("mix{k}"), bytes));
    }
    out
}

#[test]
fn seed_corpora_are_committed() {
    let write = std::env::var_os("SCHC_WRITE_SEEDS").is_some();
    let mut missing = Vec::new();
    for (target, name, bytes) in seeds() {
        let path = dir("corpus", target).join(format!("seed-{name}"));
        if write {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, &bytes).unwrap();
        } else if fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
            missing.push(path.display().to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "seed inputs missing or stale (SCHC_WRITE_SEEDS=1 cargo test --test fuzz_corpus):\n{}",
        missing.join("\n")
    );
}

/// Runs every file of `fuzz/corpus/TARGET` and `fuzz/regressions/TARGET` through the target;
/// returns how many ran.
fn replay(target: &str, body: Target) -> usize {
    let mut n = 0;
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = fs::read_dir(dir(kind, target)) else {
            continue;
        };
        let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files {
            let data = fs::read(&f).unwrap();
            let r = std::panic::catch_unwind(|| body(&data));
            assert!(r.is_ok(), "{target}: {} fails", f.display());
            n += 1;
        }
    }
    n
}

#[test]
fn corpora_and_regressions_replay_without_failure() {
    for (target, body) in TARGETS {
        let n = replay(target, body);
        assert!(n > 0, "{target}: no corpus in fuzz/corpus/{target}");
        println!("{target}: {n} inputs");
    }
}
