//! RFC 9363 JSON rule files: every shared interop vector's rule set, the benchmark anchor and
//! the shipped example load, and survive a write/read round trip unchanged.

#![cfg(feature = "std")]

use std::path::Path;

use lpwan_schc::json::{self, JsonError, Location, RuleRef};
use lpwan_schc::rule::{
    AckBehavior, Direction, FieldLength, FragMode, MatchingOperator, Nature, RuleError, RuleId,
    RuleSetBuf, Timer,
};
use serde_json::Value;

fn manifest(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Loads the `rules` member of a vector file, checks the round trip, returns the set.
fn load_rules_member(path: &Path) -> RuleSetBuf {
    let text = std::fs::read_to_string(path).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let rules = v
        .get("rules")
        .unwrap_or_else(|| panic!("{}: no rules member", path.display()));
    let set = json::from_value(rules).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_round_trip(&set, &path.display().to_string());
    set
}

fn assert_round_trip(set: &RuleSetBuf, what: &str) {
    let written = json::to_value(set);
    let back = json::from_value(&written)
        .unwrap_or_else(|e| panic!("{what}: written set does not load: {e}\n{written:#}"));
    assert_eq!(&back, set, "{what}: round trip changed the set");
    let text = json::to_string_pretty(set);
    assert_eq!(
        &json::from_str(&text).unwrap(),
        set,
        "{what}: text round trip"
    );
    // Writing is deterministic.
    assert_eq!(
        json::to_value(&back),
        written,
        "{what}: second write differs"
    );
}

#[test]
fn every_compression_vector_rule_set_round_trips() {
    let dir = manifest("tests/vectors");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 19,
        "expected the 19 shared compression vectors in tests/vectors, found {}",
        paths.len()
    );
    for path in &paths {
        let set = load_rules_member(path);
        assert!(!set.as_set().rules().is_empty(), "{}", path.display());
    }
}

#[test]
fn anchor_rule_set_round_trips() {
    let set = load_rules_member(&manifest("benches/anchor.json"));
    let view = set.as_set();
    let rule = view.get(RuleId::new(1, 8)).expect("anchor rule 1/8");
    assert!(matches!(rule.nature, Nature::Compression(_)));
}

#[test]
fn shipped_example_loads() {
    let text = std::fs::read_to_string(manifest("rules/example.json")).unwrap();
    let set = json::from_str(&text).unwrap();
    let view = set.as_set();
    assert_eq!(view.rules().len(), 3);

    let r1 = view.get(RuleId::new(1, 8)).unwrap();
    let fields = view.fields(r1);
    assert_eq!(fields.len(), 21);
    assert_eq!(fields[18].mo, MatchingOperator::Msb(12));
    assert_eq!(fields[20].fl, FieldLength::Variable);

    let Nature::Fragmentation(p) = view.get(RuleId::new(20, 8)).unwrap().nature else {
        panic!("20/8 is not a fragmentation rule");
    };
    assert_eq!(p.mode, FragMode::AckOnError);
    assert_eq!(p.direction, Direction::Up);
    assert_eq!(p.w_bits, 2);
    assert_eq!(p.fcn_bits, 6);
    assert_eq!(p.window_size, 63);
    assert_eq!(p.tile_size, 80);
    assert_eq!(p.max_ack_requests, 8);
    assert_eq!(p.ack_behavior, AckBehavior::AfterAll0);
    let timer = Timer {
        tick_exp: 20,
        ticks: 41199,
    };
    assert_eq!(p.inactivity_timer, Some(timer));
    assert_eq!(p.retransmission_timer, Some(timer));
    // 41199 ticks of 2^20 µs: about 12 hours.
    assert_eq!(timer.micros(), 41199 * (1 << 20));

    assert_eq!(
        view.get(RuleId::new(22, 8)).unwrap().nature,
        Nature::NoCompression
    );
    assert_round_trip(&set, "rules/example.json");
}

#[test]
fn errors_name_rule_entry_and_member() {
    let text = std::fs::read_to_string(manifest("rules/example.json")).unwrap();
    let bad = text.replacen("\"EQ==\"", "\"E?==\"", 1);
    let err = json::from_str(&bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        "rule 1/8, entry 4 (fid-ipv6-nextheader): target-value[0] is not valid base64"
    );
    assert!(matches!(
        err.location(),
        Some(Location::Entry {
            rule: RuleRef {
                id: Some(id),
                index: 0
            },
            index: 4,
            ..
        }) if id == RuleId::new(1, 8)
    ));

    let clash = text.replacen("\"rule-id-value\": 22", "\"rule-id-value\": 1", 1);
    let err = json::from_str(&clash).unwrap_err();
    assert!(matches!(err, JsonError::Rule(RuleError::NotPrefixFree(..))));
    assert_eq!(
        err.to_string(),
        "rule 1/8 is a prefix of rule 1/8: rule IDs must be prefix-free"
    );

    assert!(matches!(json::from_str("[1,"), Err(JsonError::Syntax(_))));
}
