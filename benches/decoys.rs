//! The anchor rules with decoys, for `examples/hotloop.rs` and `benches/codec.rs` (included by
//! both with `#[path]`).

use lpwan_schc::json;
use lpwan_schc::rule::{Fid, FieldSpec, MatchingOperator, RuleId, RuleSetBuf};
use serde_json::Value;

/// The anchor document (`benches/anchor.json`), its packet, and the SCHC packet expected for
/// it.
pub fn anchor() -> (Value, Vec<u8>, Vec<u8>) {
    let doc: Value = serde_json::from_str(include_str!("anchor.json")).expect("anchor.json");
    let bytes = |key: &str| -> Vec<u8> {
        let s = doc[key].as_str().expect(key);
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    };
    let (packet, expected) = (bytes("packet_hex"), bytes("expected_schc_hex"));
    (doc, packet, expected)
}

/// The anchor rules, or `k` compression rules: `k - 1` decoys, then the anchor rule.
pub fn rules(doc: &Value, k: Option<usize>) -> RuleSetBuf {
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
