//! Differential test against microschc 0.22.0: random IPv6/UDP/CoAP packets and rule sets
//! within what microschc can express (`fuzz/src/gen.rs`, profile `Microschc`), compressed by
//! both libraries and compared byte for byte, and our SCHC packets decompressed by microschc
//! back to the original packet.
//!
//! microschc runs in Python through `tests/oracle/diff.py`; see `tests/oracle/README.md` for
//! the virtual environment `.ci/run` sets up. Every difference found so far was a bug fixed
//! here or is one of the rulings of `tests/vectors/README.md`; the test names the case.

#[path = "../fuzz/src/gen.rs"]
mod gen;

mod common;

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

use common::{root, to_hex};
use gen::{Profile, Src};
use lpwan_schc::codec::{self, Config};
use lpwan_schc::json;
use lpwan_schc::rule::{Direction, Fid};
use lpwan_schc::sim::SplitMix64;
use serde_json::{json, Value};

/// Cases generated; at least [`MIN_COMPARED`] of them must be ones microschc can express.
const CASES: u64 = 1200;
/// The floor the issue sets.
const MIN_COMPARED: usize = 1000;

/// The Python that has microschc, if any.
fn oracle_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SCHC_ORACLE_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = root().join(".venv-oracle/bin/python");
    venv.exists().then_some(venv)
}

struct Case {
    /// The packet's fields (for classifying differences).
    fields: Vec<gen::Field>,
    packet: Vec<u8>,
    dir: Direction,
    rules: Value,
    ours_hex: String,
    ours_bits: usize,
    ours_rule: (u32, u8),
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for seed in 0..CASES {
        let mut rng = SplitMix64::new(0x5C4C_D1FF ^ seed);
        let mut bytes = vec![0u8; 1024];
        rng.fill_bytes(&mut bytes);
        let mut src = Src::new(&bytes);
        let p = gen::packet(&mut src, Profile::Microschc);
        let (set, _) = gen::rule_set(&mut src, &p, Profile::Microschc);
        set.validate().expect("generated rules are valid");
        let mut schc = vec![0u8; p.bytes.len() + 64];
        let c = codec::compress(
            &set.as_set(),
            &p.bytes,
            p.dir,
            &Config::default(),
            &mut schc,
        )
        .expect("a rule built to match compresses");
        // Our own decompression gives the packet back (the comparison below is against it).
        let mut back = vec![0u8; p.bytes.len() + 16];
        let d = codec::decompress_bits(
            &set.as_set(),
            &schc[..c.len],
            c.bits,
            p.dir,
            &Config::default(),
            &mut back,
        )
        .expect("our SCHC packet decompresses");
        assert_eq!(back[..d.len], p.bytes[..], "case {seed}: our round trip");
        out.push(Case {
            fields: p.fields.clone(),
            ours_hex: to_hex(&schc[..c.len]),
            ours_bits: c.bits,
            ours_rule: (c.rule_id.value, c.rule_id.length),
            packet: p.bytes,
            dir: p.dir,
            rules: json::to_value(&set),
        });
    }
    out
}

/// Whether microschc 0.22's CoAP unparser writes this packet's options wrongly (ruling
/// `microschc-coap-option-extensions` in `tests/vectors/README.md`): an option length of 12
/// (it writes a length extension of −1 and fails), an option delta of 13 (it drops the
/// extension byte), or a delta or length of 269 or more (it writes one byte of the two-byte
/// extension). RFC 7252 §3.1 decides; our packets follow it.
fn microschc_unparser_trap(fields: &[gen::Field]) -> bool {
    let mut prev = 0u16;
    fields.iter().any(|f| {
        let Fid::CoapOption(n) = f.fid else {
            return false;
        };
        let delta = n - prev;
        prev = n;
        let len = f.bits / 8;
        len == 12 || len >= 269 || delta == 13 || delta >= 269
    })
}

fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::Up => "up",
        Direction::Down => "down",
    }
}

#[test]
fn microschc_compresses_and_decompresses_as_we_do() {
    let Some(python) = oracle_python() else {
        assert!(
            std::env::var_os("SCHC_REQUIRE_ORACLE").is_none(),
            "SCHC_REQUIRE_ORACLE is set but there is no oracle: see tests/oracle/README.md"
        );
        eprintln!(
            "SKIPPED: no microschc oracle (python3 -m venv .venv-oracle && \
             .venv-oracle/bin/pip install microschc==0.22.0; .ci/run does it)"
        );
        return;
    };
    let cases = cases();
    let mut input = String::new();
    for (i, c) in cases.iter().enumerate() {
        let line = json!({
            "id": i,
            "rules": c.rules,
            "packet_hex": to_hex(&c.packet),
            "direction": dir_name(c.dir),
            "ours": {"hex": c.ours_hex, "bits": c.ours_bits},
        });
        writeln!(input, "{line}").unwrap();
    }
    let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("differential-cases.jsonl");
    fs::write(&file, input).unwrap();
    let out = Command::new(&python)
        .arg(root().join("tests/oracle/diff.py"))
        .arg(&file)
        .output()
        .expect("the oracle runs");
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let results: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), cases.len(), "one answer per case");

    let (mut compared, mut unsupported) = (0, Vec::new());
    let mut diffs = Vec::new();
    let (mut traps, mut trap_diffs) = (0, 0);
    for (r, c) in results.iter().zip(&cases) {
        let id = r["id"].as_u64().unwrap();
        let comp = &r["compress"];
        if let Some(why) = comp["unsupported"].as_str() {
            unsupported.push(why.to_string());
            continue;
        }
        compared += 1;
        let theirs = (
            comp["hex"].as_str().unwrap_or("?"),
            comp["bits"].as_u64().unwrap_or(0) as usize,
            comp["rule_id"]["value"].as_u64().unwrap_or(u64::MAX),
        );
        if comp.get("error").is_some()
            || theirs.0 != c.ours_hex
            || theirs.1 != c.ours_bits
            || theirs.2 != u64::from(c.ours_rule.0)
        {
            diffs.push(format!(
                "case {id}: compress: microschc {comp}, ours {} ({} bits, rule {}/{})",
                c.ours_hex, c.ours_bits, c.ours_rule.0, c.ours_rule.1
            ));
        }
        let dec = &r["decompress"];
        let trap = microschc_unparser_trap(&c.fields);
        traps += usize::from(trap);
        if dec["packet_hex"].as_str() != Some(to_hex(&c.packet).as_str()) {
            if trap {
                trap_diffs += 1;
                continue;
            }
            diffs.push(format!(
                "case {id}: microschc decompresses our {} to {dec}, packet {}",
                c.ours_hex,
                to_hex(&c.packet)
            ));
        }
    }
    let version = results[0]["version"].as_str().unwrap_or("?");
    eprintln!(
        "microschc {version}: {compared} cases compared byte for byte, {} unsupported, {} \
         differences; {traps} packets with option lengths or deltas microschc's unparser gets \
         wrong, {trap_diffs} of them decompressed wrongly by it (ruling \
         microschc-coap-option-extensions)",
        unsupported.len(),
        diffs.len()
    );
    assert_eq!(version, "0.22.0", "the oracle must be microschc 0.22.0");
    assert!(
        diffs.is_empty(),
        "{} differences with microschc:\n{}\n(rules of case N: regenerate with seed N)",
        diffs.len(),
        diffs
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        compared >= MIN_COMPARED,
        "only {compared} cases within microschc's reach; unsupported: {:?}",
        &unsupported[..unsupported.len().min(10)]
    );
}
