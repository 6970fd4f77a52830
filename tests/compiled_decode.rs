//! `decompress_compiled` needs the rules, the compiled table and the pool, not the `FieldDesc`
//! table: a device that links only the compiled-only entry points can leave `FIELDS` out.
//! These tests give it a rule set whose field table is empty.

mod common;

use lpwan_schc::codec::{decompress_compiled, Config, DecompressError};
use lpwan_schc::json;
use lpwan_schc::rule::{Direction, Fid, RuleId, RuleSet, RuleSetBuf};
use serde_json::Value;

use common::{hex, root};

/// The anchor document (`benches/anchor.json`): its rules, packet and SCHC packet.
fn anchor() -> (Value, Vec<u8>, Vec<u8>) {
    let text = std::fs::read_to_string(root().join("benches/anchor.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let packet = hex(doc["packet_hex"].as_str().unwrap());
    let schc = hex(doc["expected_schc_hex"].as_str().unwrap());
    (doc, packet, schc)
}

/// The rules of `doc` with the anchor rule's entries reordered by `reorder`, indexed.
fn rules(doc: &Value, reorder: impl FnOnce(&mut Vec<Value>)) -> RuleSetBuf {
    let mut rules = doc["rules"].clone();
    let entries = rules["ietf-schc:schc"]["rule"][0]["entry"]
        .as_array_mut()
        .unwrap();
    reorder(entries);
    json::from_value(&rules).expect("the anchor rules, reordered, are valid")
}

/// `buf`'s set without its field table: rules, values, pool and index only.
fn without_fields(buf: &RuleSetBuf) -> RuleSet<'_> {
    let (rules, fields, values, pool) = buf.as_set().tables();
    assert!(!fields.is_empty());
    RuleSet::new_unchecked(rules, &[], values, pool).with_index(buf.index().unwrap().as_index())
}

#[test]
fn anchor_decompresses_without_the_field_table() {
    let (doc, packet, schc) = anchor();
    let buf = rules(&doc, |_| {});
    let set = without_fields(&buf);
    let mut out = [0x5Au8; 128];
    let d = decompress_compiled(&set, &schc, 52, Direction::Up, &Config::default(), &mut out)
        .expect("the compiled form rebuilds the anchor");
    assert_eq!(d.rule_id, RuleId::new(1, 8));
    assert_eq!(&out[..d.len], &packet[..]);
}

#[test]
fn refusal_names_the_first_entry_from_the_compiled_table() {
    let (doc, _, schc) = anchor();
    // Uri-Path first, then the anchor's other entries: a valid rule whose entry 0 is an option.
    let buf = rules(&doc, |e| {
        let uri = e.pop().unwrap();
        assert_eq!(uri["field-id"], "ietf-schc:fid-coap-option-uri-path");
        e.insert(0, uri);
    });
    let set = without_fields(&buf);
    let cfg = Config::default();
    let mut out = [0u8; 128];
    // The rule ID alone: the MID's LSB residue is missing.
    let err = decompress_compiled(&set, &schc, 8, Direction::Up, &cfg, &mut out).unwrap_err();
    assert_eq!(
        err,
        DecompressError::BadField {
            rule: RuleId::new(1, 8),
            entry: 0,
            fid: Fid::CoapOption(11),
            reason: "the compiled form cannot rebuild this packet",
        }
    );
    // The whole SCHC packet still decompresses (option order does not change the packet).
    let (_, packet, _) = anchor();
    let d = decompress_compiled(&set, &schc, 52, Direction::Up, &cfg, &mut out).unwrap();
    assert_eq!(&out[..d.len], &packet[..]);

    // A header field first (the UDP app port): named from its compiled key.
    let buf = rules(&doc, |e| {
        let port = e.remove(11);
        assert_eq!(port["field-id"], "ietf-schc:fid-udp-app-port");
        e.insert(0, port);
    });
    let set = without_fields(&buf);
    let err = decompress_compiled(&set, &schc, 8, Direction::Up, &cfg, &mut out).unwrap_err();
    assert_names(&err, Fid::UdpAppPort);

    // An entry the compiled form cannot express (match-mapping) first: the rule is refused,
    // and its field is still named (the fallback entry keeps its key).
    let buf = rules(&doc, |e| {
        let mut port = e.remove(11);
        port["matching-operator"] = "ietf-schc:mo-match-mapping".into();
        port["comp-decomp-action"] = "ietf-schc:cda-mapping-sent".into();
        port["target-value"] = serde_json::json!([
            {"index": 0, "value": "FjM="},
            {"index": 1, "value": "FjQ="}
        ]);
        e.insert(0, port);
    });
    let set = without_fields(&buf);
    let err = decompress_compiled(&set, &schc, 52, Direction::Up, &cfg, &mut out).unwrap_err();
    assert_names(&err, Fid::UdpAppPort);
}

/// `err` refuses the rule naming entry 0's field `fid`.
fn assert_names(err: &DecompressError, fid: Fid) {
    assert!(
        matches!(err, DecompressError::BadField { entry: 0, fid: f, .. } if *f == fid),
        "{err:?}"
    );
}
