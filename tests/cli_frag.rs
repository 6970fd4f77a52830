//! `schc fragment`, `schc reassemble` and `schc simulate`, run as a process: round trips in the
//! three modes, simulations with and without loss, one-line errors.

mod common;
use common::{fails, ok, root};
use std::path::{Path, PathBuf};

use serde_json::Value;

fn lorawan() -> String {
    root()
        .join("rules/lorawan-fragmentation.json")
        .display()
        .to_string()
}

/// A rule file with a No-ACK rule (2-bit DTag, 1-bit FCN) and a compression rule.
fn no_ack_rules() -> String {
    let text = r#"{"ietf-schc:schc": {"rule": [
        {"rule-id-value": 3, "rule-id-length": 3,
         "rule-nature": "ietf-schc:nature-fragmentation",
         "fragmentation-mode": "ietf-schc:fragmentation-mode-no-ack",
         "direction": "ietf-schc:di-up", "dtag-size": 2, "fcn-size": 1,
         "inactivity-timer": {"ticks-duration": 20, "ticks-numbers": 60}},
        {"rule-id-value": 1, "rule-id-length": 3,
         "rule-nature": "ietf-schc:nature-compression", "entry": []}
    ]}}"#;
    // One file per call: tests run in parallel and must not read each other's half-written file.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("no-ack-{}-{n}.json", std::process::id());
    let path: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, text).expect("scratch rule file written");
    path.display().to_string()
}

/// `n` bytes that are not all alike, in hex.
fn packet_hex(n: usize) -> String {
    (0..n)
        .map(|i| format!("{:02x}", (i * 37 + 11) % 256))
        .collect()
}

fn fragment(rules: &str, rule_id: &str, mtu: usize, extra: &[&str], hex: &str) -> Vec<String> {
    let mtu = mtu.to_string();
    let mut args = vec![
        "fragment",
        "--rules",
        rules,
        "--rule-id",
        rule_id,
        "--mtu",
        &mtu,
    ];
    args.extend_from_slice(extra);
    args.push(hex);
    let text = ok(&args);
    let frames: Vec<String> = text.lines().map(str::to_string).collect();
    for f in &frames {
        assert!(
            f.len() % 2 == 0
                && f.chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_uppercase()),
            "not lowercase hex: {f:?}"
        );
        assert!(
            f.len() / 2 <= mtu.parse().unwrap(),
            "frame over the MTU: {f}"
        );
    }
    frames
}

fn reassemble(rules: &str, rule_id: &str, frames: &[String]) -> String {
    let mut args = vec!["reassemble", "--rules", rules, "--rule-id", rule_id];
    args.extend(frames.iter().map(String::as_str));
    let text = ok(&args);
    assert_eq!(text.lines().count(), 1, "{text:?}");
    text.trim_end().to_string()
}

fn simulate_json(rule_id: &str, mtu: usize, size: usize, loss: &str, seed: u64) -> Value {
    let (mtu, size, seed) = (mtu.to_string(), size.to_string(), seed.to_string());
    let text = ok(&[
        "simulate",
        "--rules",
        &lorawan(),
        "--rule-id",
        rule_id,
        "--mtu",
        &mtu,
        "--size",
        &size,
        "--loss",
        loss,
        "--seed",
        &seed,
        "--json",
    ]);
    assert_eq!(text.lines().count(), 1, "{text:?}");
    serde_json::from_str(&text).expect("one JSON object")
}

#[test]
fn the_lorawan_rule_file_checks() {
    let line = ok(&["rules", "check", &lorawan()]);
    assert!(
        line.trim_end()
            .ends_with("3 rules: 0 compression, 1 no-compression, 2 fragmentation"),
        "{line}"
    );
}

#[test]
fn ack_on_error_round_trip() {
    let rules = lorawan();
    for (size, mtu) in [
        (1, 51),
        (9, 12),
        (10, 51),
        (300, 51),
        (1280, 242),
        (2520, 242),
    ] {
        let hex = packet_hex(size);
        let frames = fragment(&rules, "20/8", mtu, &[], &hex);
        assert!(
            frames.iter().all(|f| f.starts_with("14")),
            "rule 20: FPort 0x14"
        );
        assert_eq!(
            reassemble(&rules, "20/8", &frames),
            hex,
            "{size} bytes, MTU {mtu}"
        );
    }
    // RFC 9011: 10-byte tiles, as many as fit after the 2-byte header.
    let frames = fragment(&rules, "20/8", 51, &[], &packet_hex(300));
    assert_eq!(
        frames.len(),
        9,
        "28 tiles in 7 fragments of 4, 1 more, the last in the All-1"
    );
    assert_eq!(frames[0].len() / 2, 42);
}

#[test]
fn ack_always_round_trip() {
    let rules = lorawan();
    for (size, mtu) in [(1, 51), (50, 11), (300, 51), (1280, 51)] {
        let hex = packet_hex(size);
        let frames = fragment(&rules, "21/8", mtu, &[], &hex);
        assert!(
            frames.iter().all(|f| f.starts_with("15")),
            "rule 21: FPort 0x15"
        );
        assert_eq!(
            reassemble(&rules, "21/8", &frames),
            hex,
            "{size} bytes, MTU {mtu}"
        );
    }
}

#[test]
fn no_ack_round_trip_with_a_dtag() {
    let rules = no_ack_rules();
    for (size, mtu) in [(1, 8), (66, 12), (500, 51)] {
        let hex = packet_hex(size);
        let frames = fragment(&rules, "3/3", mtu, &["--dtag", "2"], &hex);
        // Rule 011, DTag 10.
        assert!(frames.iter().all(|f| f.starts_with('7')), "{frames:?}");
        assert_eq!(
            reassemble(&rules, "3/3", &frames),
            hex,
            "{size} bytes, MTU {mtu}"
        );
    }
}

#[test]
fn simulate_without_loss_sends_the_fragments_once() {
    for (rule, mtu, size) in [("20/8", 51, 1280), ("20/8", 242, 700), ("21/8", 51, 300)] {
        let j = simulate_json(rule, mtu, size, "0", 1);
        let frames = {
            let size_s = size.to_string();
            let mtu_s = mtu.to_string();
            let packet = ok(&[
                "simulate",
                "--rules",
                &lorawan(),
                "--rule-id",
                rule,
                "--mtu",
                &mtu_s,
                "--size",
                &size_s,
                "--loss",
                "0",
                "--seed",
                "1",
            ]);
            assert_eq!(packet.lines().count(), 2, "{packet}");
            assert!(packet.starts_with("delivered, identical"), "{packet}");
            // Same size packet, any bytes: the fragment count depends on the size only.
            fragment(&lorawan(), rule, mtu, &[], &packet_hex(size))
        };
        assert_eq!(j["delivered"], true, "{rule}: {j}");
        assert_eq!(j["identical"], true, "{rule}: {j}");
        assert_eq!(j["fragments_sent"], frames.len(), "{rule}: {j}");
        assert_eq!(j["retransmissions"], 0, "{rule}: {j}");
        assert_eq!(j["sim_time_s"], 0.0, "{rule}: {j}");
        let acks = j["acks_sent"].as_u64().unwrap() as usize;
        let frag_bytes: usize = frames.iter().map(|f| f.len() / 2).sum();
        if rule == "20/8" {
            // One All-1, one success ACK of 2 bytes.
            assert_eq!(acks, 1, "{j}");
            assert_eq!(j["rounds"], 1, "{j}");
        } else {
            // ACK-Always: every window (one tile each) is acknowledged.
            assert_eq!(acks, frames.len(), "{j}");
            assert_eq!(j["rounds"], frames.len(), "{j}");
        }
        assert_eq!(j["bytes_on_air"], frag_bytes + 2 * acks, "{rule}: {j}");
    }
}

#[test]
fn simulate_with_loss_delivers_and_reports_every_field() {
    let j = simulate_json("20/8", 51, 1280, "0.3", 4);
    let obj = j.as_object().expect("an object");
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "delivered",
            "identical",
            "fragments_sent",
            "acks_sent",
            "bytes_on_air",
            "retransmissions",
            "rounds",
            "sim_time_s"
        ]
    );
    assert_eq!(j["delivered"], true, "{j}");
    assert_eq!(j["identical"], true, "{j}");
    for k in [
        "fragments_sent",
        "acks_sent",
        "bytes_on_air",
        "retransmissions",
        "rounds",
    ] {
        assert!(j[k].is_u64(), "{k}: {j}");
    }
    assert!(j["sim_time_s"].is_f64(), "{j}");
    assert!(j["retransmissions"].as_u64().unwrap() > 0, "30% loss: {j}");
    assert!(j["rounds"].as_u64().unwrap() > 1, "30% loss: {j}");
    assert_eq!(
        j["fragments_sent"].as_u64().unwrap(),
        33 + j["retransmissions"].as_u64().unwrap(),
        "33 frames without loss: {j}"
    );
    // The same seed gives the same run; another seed another one.
    assert_eq!(simulate_json("20/8", 51, 1280, "0.3", 4), j);
    assert_ne!(simulate_json("20/8", 51, 1280, "0.3", 5), j);
}

#[test]
fn simulate_help_defines_rounds_and_retransmissions() {
    let help = ok(&["simulate", "--help"]);
    for needle in [
        "rounds ",
        "retransmissions ",
        "SplitMix64",
        "fragments_sent",
        "sim_time_s",
    ] {
        assert!(help.contains(needle), "{needle:?} missing from:\n{help}");
    }
}

#[test]
fn mistakes_are_one_error_line() {
    let rules = lorawan();
    let hex = packet_hex(20);
    // Bad --rule-id.
    for id in ["20", "x/8", "20/x", "300/8", "1/33", ""] {
        fails(&[
            "fragment",
            "--rules",
            &rules,
            "--rule-id",
            id,
            "--mtu",
            "51",
            &hex,
        ]);
    }
    // Not in the file; not a fragmentation rule.
    let err = fails(&[
        "fragment",
        "--rules",
        &rules,
        "--rule-id",
        "99/8",
        "--mtu",
        "51",
        &hex,
    ]);
    assert!(err.contains("no rule 99/8"), "{err}");
    let err = fails(&[
        "fragment",
        "--rules",
        &rules,
        "--rule-id",
        "22/8",
        "--mtu",
        "51",
        &hex,
    ]);
    assert!(err.contains("not a fragmentation rule"), "{err}");
    let err = fails(&[
        "reassemble",
        "--rules",
        &no_ack_rules(),
        "--rule-id",
        "1/3",
        "20",
    ]);
    assert!(err.contains("compression rule"), "{err}");
    fails(&[
        "simulate",
        "--rules",
        &rules,
        "--rule-id",
        "22/8",
        "--mtu",
        "51",
        "--size",
        "10",
        "--loss",
        "0",
        "--seed",
        "1",
    ]);
    // Bad hex.
    let err = fails(&[
        "fragment",
        "--rules",
        &rules,
        "--rule-id",
        "20/8",
        "--mtu",
        "51",
        "14zz",
    ]);
    assert!(err.contains("invalid hex digit"), "{err}");
    fails(&[
        "fragment",
        "--rules",
        &rules,
        "--rule-id",
        "20/8",
        "--mtu",
        "51",
        "",
    ]);
    let err = fails(&[
        "reassemble",
        "--rules",
        &rules,
        "--rule-id",
        "20/8",
        "1400",
        "0x",
    ]);
    assert!(err.contains("frame 2"), "{err}");
    // Frames that cannot be read, or do not complete a packet.
    fails(&["reassemble", "--rules", &rules, "--rule-id", "20/8", "15"]);
    fails(&["reassemble", "--rules", &rules, "--rule-id", "20/8"]);
    let frames = fragment(&rules, "20/8", 51, &[], &packet_hex(300));
    let mut args = vec!["reassemble", "--rules", &rules, "--rule-id", "20/8"];
    args.extend(frames[..frames.len() - 1].iter().map(String::as_str));
    let err = fails(&args);
    assert!(err.contains("do not complete a packet"), "{err}");
    // Impossible requests.
    let err = fails(&[
        "fragment",
        "--rules",
        &rules,
        "--rule-id",
        "20/8",
        "--mtu",
        "5",
        &hex,
    ]);
    assert!(err.contains("MTU"), "{err}");
    fails(&[
        "fragment",
        "--rules",
        &rules,
        "--rule-id",
        "20/8",
        "--mtu",
        "51",
        "--dtag",
        "1",
        &hex,
    ]);
    fails(&[
        "simulate",
        "--rules",
        &rules,
        "--rule-id",
        "20/8",
        "--mtu",
        "51",
        "--size",
        "3000",
        "--loss",
        "0",
        "--seed",
        "1",
    ]);
    for loss in ["1.5", "-0.1", "x", "NaN"] {
        fails(&[
            "simulate",
            "--rules",
            &rules,
            "--rule-id",
            "20/8",
            "--mtu",
            "51",
            "--size",
            "10",
            "--loss",
            loss,
            "--seed",
            "1",
        ]);
    }
}
