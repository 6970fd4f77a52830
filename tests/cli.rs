//! The `schc` command, run as a process: the anchor packet both ways, the JSON output, one-line
//! errors, the shipped rule files, and the generated tables of the no-heap proof.

mod common;
use common::{fails, root, schc, stderr, stdout};
use std::path::{Path, PathBuf};

use serde_json::Value;

const ANCHOR: &str = include_str!("../benches/anchor.json");

fn anchor() -> Value {
    serde_json::from_str(ANCHOR).expect("benches/anchor.json is JSON")
}

fn anchor_str(key: &str) -> String {
    anchor()[key]
        .as_str()
        .unwrap_or_else(|| panic!("anchor.json has no string {key}"))
        .to_string()
}

fn anchor_rules() -> String {
    root().join("rules/anchor.json").display().to_string()
}

/// Runs a command that must succeed, quietly; returns its first line of output.
fn first_line(args: &[&str]) -> String {
    let out = schc(args);
    assert!(
        out.status.success(),
        "schc {args:?} failed: {}",
        stderr(&out)
    );
    assert_eq!(stderr(&out), "", "schc {args:?} wrote to stderr");
    stdout(&out).lines().next().unwrap_or("").to_string()
}

/// A file under the test's scratch directory holding `text`.
fn scratch_file(name: &str, text: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, text).expect("scratch file written");
    path
}

#[test]
fn shipped_anchor_rules_are_the_anchor_documents_rules() {
    let shipped: Value =
        serde_json::from_str(&std::fs::read_to_string(anchor_rules()).expect("rules/anchor.json"))
            .expect("rules/anchor.json is JSON");
    assert_eq!(shipped, anchor()["rules"]);
}

#[test]
fn compresses_the_anchor_packet() {
    let packet = anchor_str("packet_hex");
    let line = first_line(&["compress", "--rules", &anchor_rules(), &packet]);
    assert_eq!(line, anchor_str("expected_schc_hex"));
    assert_eq!(line, "014ab010203040");
}

#[test]
fn hex_may_be_spaced_with_colons_in_upper_case() {
    let packet = anchor_str("packet_hex").to_uppercase();
    let spaced: Vec<&str> = (0..packet.len())
        .step_by(2)
        .map(|i| &packet[i..i + 2])
        .collect();
    let spaced = spaced.join(": ");
    let line = first_line(&["compress", "--rules", &anchor_rules(), &spaced]);
    assert_eq!(line, anchor_str("expected_schc_hex"));
}

#[test]
fn compress_json_has_rule_id_bits_and_hex() {
    let packet = anchor_str("packet_hex");
    let args = [
        "compress",
        "--rules",
        &anchor_rules(),
        "--direction",
        "up",
        "--json",
        &packet,
    ];
    let out = schc(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text:?}");
    let j: Value = serde_json::from_str(&text).expect("one JSON object");
    let a = anchor();
    assert_eq!(j["rule_id"], a["expected_rule_id"]);
    assert_eq!(j["bits"], a["expected_schc_bits"]);
    assert_eq!(j["bits"], 52);
    assert_eq!(j["hex"], a["expected_schc_hex"]);
    assert_eq!(
        text.trim_end(),
        r#"{"rule_id":{"value":1,"length":8},"bits":52,"hex":"014ab010203040"}"#
    );
}

#[test]
fn l2_word_pads_further() {
    let packet = anchor_str("packet_hex");
    let args = [
        "compress",
        "--rules",
        &anchor_rules(),
        "--l2-word",
        "32",
        &packet,
    ];
    // 52 bits padded to 64.
    assert_eq!(first_line(&args), "014ab01020304000");
}

#[test]
fn decompresses_the_anchor_packet() {
    let schc_hex = anchor_str("expected_schc_hex");
    let line = first_line(&["decompress", "--rules", &anchor_rules(), &schc_hex]);
    assert_eq!(line, anchor_str("packet_hex"));
    let explicit = [
        "decompress",
        "--rules",
        &anchor_rules(),
        "--direction",
        "up",
        "--bits",
        "52",
        &schc_hex,
    ];
    assert_eq!(first_line(&explicit), anchor_str("packet_hex"));
    let j: Value = serde_json::from_str(&first_line(&[
        "decompress",
        "--json",
        "--rules",
        &anchor_rules(),
        &schc_hex,
    ]))
    .expect("one JSON object");
    assert_eq!(j["rule_id"], anchor()["expected_rule_id"]);
    assert_eq!(j["len"], 63);
    assert_eq!(j["hex"].as_str(), Some(anchor_str("packet_hex").as_str()));
}

#[test]
fn bad_hex_is_one_error_line() {
    let rules = anchor_rules();
    let err = fails(&["compress", "--rules", &rules, "60zz"]);
    assert!(err.contains("invalid hex digit 'z'"), "{err}");
    let err = fails(&["compress", "--rules", &rules, "600"]);
    assert!(err.contains("odd number of hex digits"), "{err}");
    fails(&["decompress", "--rules", &rules, "0x01"]);
}

#[test]
fn missing_rule_file_is_one_error_line() {
    let err = fails(&["compress", "--rules", "rules/no-such-file.json", "60"]);
    assert!(err.contains("rules/no-such-file.json"), "{err}");
    fails(&["rules", "check", "rules/no-such-file.json"]);
    fails(&["rules", "export-rust", "rules/no-such-file.json"]);
}

#[test]
fn bad_rule_files_are_one_error_line() {
    let not_json = scratch_file("not-json.json", "{ \"ietf-schc:schc\": [ oops");
    let not_json = not_json.display().to_string();
    let err = fails(&["rules", "check", &not_json]);
    assert!(err.contains("not-json.json"), "{err}");
    fails(&["compress", "--rules", &not_json, "60"]);

    // Well-formed JSON, but rule 1/8 is a prefix of rule 16/12: not a usable rule set.
    let clash = r#"{"ietf-schc:schc": {"rule": [
        {"rule-id-value": 1, "rule-id-length": 8,
         "rule-nature": "ietf-schc:nature-no-compression"},
        {"rule-id-value": 16, "rule-id-length": 12,
         "rule-nature": "ietf-schc:nature-compression", "entry": []}
    ]}}"#;
    let clash = scratch_file("prefix-clash.json", clash)
        .display()
        .to_string();
    let err = fails(&["rules", "check", &clash]);
    assert!(err.contains("prefix-clash.json"), "{err}");
    fails(&["rules", "export-rust", &clash]);
}

#[test]
fn unknown_rule_id_is_one_error_line() {
    // The anchor rules are 1/8 and 0/8.
    let err = fails(&["decompress", "--rules", &anchor_rules(), "ff01"]);
    assert!(err.contains("rule"), "{err}");
}

#[test]
fn command_line_mistakes_are_one_error_line() {
    let rules = anchor_rules();
    fails(&[]);
    fails(&["compres"]);
    fails(&["compress", "--rules", &rules]);
    fails(&[
        "compress",
        "--rules",
        &rules,
        "--direction",
        "sideways",
        "60",
    ]);
    fails(&["compress", "--rules", &rules, "--l2-word", "0", "60"]);
    fails(&["compress", "--rules", &rules, "--dev-iid", "0102", "60"]);
    fails(&[
        "decompress",
        "--rules",
        &rules,
        "--bits",
        "99",
        "014ab010203040",
    ]);
    let help = first_line(&["--help"]);
    assert!(help.contains("SCHC"), "{help}");
}

#[test]
fn every_shipped_rule_file_checks() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("rules"))
        .expect("rules/ exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "rules/ holds {files:?}");
    for file in files {
        let file = file.display().to_string();
        let out = schc(&["rules", "check", &file]);
        assert!(out.status.success(), "{file}: {}", stderr(&out));
        let text = stdout(&out);
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert!(text.contains(" compression, "), "{text:?}");
    }
    let line = first_line(&["rules", "check", &anchor_rules()]);
    assert!(
        line.ends_with("2 rules: 1 compression, 1 no-compression, 0 fragmentation"),
        "{line}"
    );
}

#[test]
fn export_rust_declares_the_rule_set() {
    let out = schc(&["rules", "export-rust", &anchor_rules()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let src = stdout(&out);
    for needle in [
        "static RULES: [lpwan_schc::rule::Rule; 2]",
        "static FIELDS: [lpwan_schc::rule::FieldDesc; 21]",
        "static VALUES: [lpwan_schc::rule::ValueRef; ",
        "static POOL: [u8; ",
        "RuleSet::new_unchecked(&RULES, &FIELDS, &VALUES, &POOL)",
    ] {
        assert!(src.contains(needle), "missing {needle:?}");
    }
}

/// `nostd-check/src/rules.rs` is what `export-rust --compiled-only` writes for
/// `rules/anchor.json`, and `tests/static_rules/anchor.rs` what `export-rust` writes (the
/// full tables, which `tests/index.rs` validates and compares with the device's).
#[test]
fn static_tables_are_regenerated_identically() {
    for (args, path) in [
        (
            &[
                "rules",
                "export-rust",
                "--compiled-only",
                "rules/anchor.json",
            ][..],
            "nostd-check/src/rules.rs",
        ),
        (
            &["rules", "export-rust", "rules/anchor.json"][..],
            "tests/static_rules/anchor.rs",
        ),
    ] {
        let out = schc(args);
        assert!(out.status.success(), "{}", stderr(&out));
        let committed = std::fs::read_to_string(root().join(path)).expect(path);
        assert!(
            stdout(&out) == committed,
            "{path} is stale: run `cargo run -- {} > {path}`",
            args.join(" ")
        );
    }
}

/// `--explain` tells on standard error which rule matches and, for the others, the first entry
/// that fails with its field and bit offset; without a no-compression rule, a packet no rule
/// matches fails with that explanation.
#[test]
fn explain_says_which_entry_stands_in_the_way() {
    let packet = anchor_str("packet_hex");
    // Hop limit 0x3f instead of 0x40 (byte 7, bit 56): rule 1 no longer matches.
    let other = format!("{}3f{}", &packet[..14], &packet[16..]);
    let out = schc(&["compress", "--rules", &anchor_rules(), "--explain", &other]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "rule 1/8: entry 5 (fid-ipv6-hoplimit): the value at bit 56 fails the matching operator\n"
    );
    // Sent under the no-compression rule 0/8.
    assert_eq!(stdout(&out).trim(), format!("00{other}"));

    let out = schc(&["compress", "--rules", &anchor_rules(), "--explain", &packet]);
    assert_eq!(stderr(&out), "rule 1/8: matches, 12 bits of residue\n");
    assert_eq!(stdout(&out).trim(), anchor_str("expected_schc_hex"));

    // Without the no-compression rule the packet cannot be sent, and the error says why.
    let text = std::fs::read_to_string(anchor_rules()).unwrap();
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    doc["ietf-schc:schc"]["rule"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["rule-id-value"] == 1);
    let only = scratch_file("anchor-rule-1-only.json", &doc.to_string());
    let err = fails(&["compress", "--rules", only.to_str().unwrap(), &other]);
    assert!(
        err.contains("no compression rule matches")
            && err.contains("rule 1/8: entry 5 (fid-ipv6-hoplimit)"),
        "{err}"
    );
}
