//! Interop vectors made by other SCHC implementations (microschc 0.22.0 and openschc), copied
//! from the team's shared vectors into `tests/vectors/`: every vector must compress to the
//! expected bytes with the expected rule, and decompress back to the original packet.
//! The `disagreements/` cases are checked against our rulings (tests/vectors/README.md).

mod common;
use common::{hex, to_hex};
use std::path::Path;

use lpwan_schc::codec::{self, Config, DecompressError};
use lpwan_schc::json;
use lpwan_schc::rule::{Direction, RuleId};
use serde_json::Value;

fn load(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn direction(v: &Value) -> Direction {
    match v["direction"].as_str() {
        Some("down") => Direction::Down,
        _ => Direction::Up,
    }
}

/// Compresses `packet` with the vector's rules; returns (rule id, bits, hex).
fn compress(v: &Value, packet: &[u8]) -> (RuleId, usize, String) {
    let rules = json::from_value(&v["rules"]).unwrap();
    let set = rules.as_set();
    let mut out = vec![0u8; packet.len() + 64];
    let c = codec::compress(&set, packet, direction(v), &Config::default(), &mut out).unwrap();
    (c.rule_id, c.bits, to_hex(&out[..c.len]))
}

fn decompress(v: &Value, schc: &[u8]) -> Result<Vec<u8>, DecompressError> {
    let rules = json::from_value(&v["rules"]).unwrap();
    let set = rules.as_set();
    let mut out = vec![0u8; 1280];
    let d = codec::decompress(&set, schc, direction(v), &Config::default(), &mut out)?;
    out.truncate(d.len);
    Ok(out)
}

fn rule_id(v: &Value) -> RuleId {
    RuleId::new(
        v["value"].as_u64().unwrap() as u32,
        v["length"].as_u64().unwrap() as u8,
    )
}

#[test]
fn every_compression_vector_both_ways() {
    let mut checked = 0;
    let names = common::vector_files();
    for path in names {
        let v = load(&path);
        if v["kind"] != "compression" {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let packet = hex(v["packet_hex"].as_str().unwrap());
        let (id, bits, got) = compress(&v, &packet);
        assert_eq!(id, rule_id(&v["expected_rule_id"]), "{name}: rule");
        assert_eq!(
            bits,
            v["expected_schc_bits"].as_u64().unwrap() as usize,
            "{name}: bits"
        );
        assert_eq!(
            got,
            v["expected_schc_hex"].as_str().unwrap(),
            "{name}: bytes"
        );
        let back = decompress(&v, &hex(v["expected_schc_hex"].as_str().unwrap()))
            .unwrap_or_else(|e| panic!("{name}: decompress: {e}"));
        assert_eq!(
            to_hex(&back),
            to_hex(&packet),
            "{name}: decompressed packet"
        );
        checked += 1;
    }
    assert_eq!(checked, 19, "all 19 shared compression vectors are present");
}

fn disagreement(name: &str) -> Value {
    load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/vectors/disagreements")
            .join(name),
    )
}

/// Checks a disagreement case against the implementation our ruling sides with.
fn check_against(name: &str, who: &str) -> Value {
    let v = disagreement(name);
    let packet = hex(v["packet_hex"].as_str().unwrap());
    let r = &v["results"][who]["compress"];
    let (id, bits, got) = compress(&v, &packet);
    assert_eq!(id, rule_id(&r["rule_id"]), "{name}: rule");
    assert_eq!(bits, r["bits"].as_u64().unwrap() as usize, "{name}: bits");
    assert_eq!(got, r["hex"].as_str().unwrap(), "{name}: bytes");
    let back = decompress(&v, &hex(&got)).unwrap();
    assert_eq!(to_hex(&back), to_hex(&packet), "{name}: round trip");
    v
}

/// Ruling: LSB sends FL − x bits (8 of a 20-bit Flow Label with MSB(12)); microschc is right.
#[test]
fn ruling_lsb_sends_fl_minus_x_bits() {
    check_against("flowlabel-msb12-lsb8.json", "microschc");
}

/// Ruling: MSB/LSB on a token whose length comes from TKL is legal; microschc's bytes.
#[test]
fn ruling_msb_lsb_on_token_length_field() {
    check_against("coap-token-msb8-lsb8.json", "microschc");
}

/// Ruling: a zero-length option value is legal; value-sent sends a 4-bit length of 0.
#[test]
fn ruling_zero_length_option_value_sent() {
    check_against("coap-observe-zero-length.json", "openschc");
}

/// Ruling: residues follow the rule's field order, and in the down direction the Dev fields
/// are the destination; openschc is right (three cases).
#[test]
fn ruling_rule_order_and_dev_app_mapping_down() {
    check_against("down-dev-first-rule-order.json", "openschc");
    check_against("ipv6-udp-value-sent-nh-ports-down.json", "openschc");
    check_against("udp-ports-msb12-lsb4-down.json", "openschc");
}

/// Ruling: never drop bytes. A rule for IPv6+UDP carries the CoAP bytes as payload
/// (openschc's "42" loses the CoAP header; microschc's no-compression fallback is lossless but
/// needlessly long).
#[test]
fn ruling_rule_without_coap_keeps_coap_as_payload() {
    let v = disagreement("rule-without-coap-on-coap-packet.json");
    let packet = hex(v["packet_hex"].as_str().unwrap());
    let (id, bits, got) = compress(&v, &packet);
    assert_eq!(id, RuleId::new(66, 8));
    // Rule ID, then the whole UDP payload (the CoAP message) unchanged.
    let expected = format!("42{}", to_hex(&packet[48..]));
    assert_eq!(got, expected);
    assert_eq!(bits, 8 + (packet.len() - 48) * 8);
    assert_ne!(
        got,
        v["results"]["openschc"]["compress"]["hex"]
            .as_str()
            .unwrap()
    );
    assert_eq!(
        to_hex(&decompress(&v, &hex(&got)).unwrap()),
        to_hex(&packet)
    );
}

/// Ruling: a compute-* CDA matches only when the packet already holds the value decompression
/// computes. A packet with a wrong UDP checksum falls back to no-compression and comes back
/// exactly as it went in, never silently "fixed".
#[test]
fn ruling_compute_matches_only_correct_values() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/ipv6-udp-all-not-sent-up.json");
    let v = load(&path);
    let mut packet = hex(v["packet_hex"].as_str().unwrap());
    packet[47] ^= 0x01; // break the checksum
    let (id, bits, got) = compress(&v, &packet);
    assert_eq!(id, RuleId::new(0, 8), "falls back to no-compression");
    assert_eq!(bits, 8 + packet.len() * 8);
    assert_eq!(
        to_hex(&decompress(&v, &hex(&got)).unwrap()),
        to_hex(&packet)
    );
    // Same with a wrong UDP length and a wrong IPv6 payload length.
    let mut p2 = hex(v["packet_hex"].as_str().unwrap());
    p2[45] ^= 0x01;
    assert_eq!(compress(&v, &p2).0, RuleId::new(0, 8));
    let mut p3 = hex(v["packet_hex"].as_str().unwrap());
    p3[5] ^= 0x01;
    assert_eq!(compress(&v, &p3).0, RuleId::new(0, 8));
}

/// Ruling: mapping-sent with a single value sends a 0-bit index.
#[test]
fn ruling_single_value_mapping_sends_nothing() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/ipv6-udp-all-not-sent-up.json");
    let mut v = load(&path);
    // Turn the hop-limit entry into a one-element match-mapping.
    let entry = v["rules"]["ietf-schc:schc"]["rule"][0]["entry"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["field-id"] == "ietf-schc:fid-ipv6-hoplimit")
        .unwrap();
    entry["matching-operator"] = "ietf-schc:mo-match-mapping".into();
    entry["comp-decomp-action"] = "ietf-schc:cda-mapping-sent".into();
    let packet = hex(v["packet_hex"].as_str().unwrap());
    let (id, bits, got) = compress(&v, &packet);
    assert_eq!(id, RuleId::new(1, 8));
    assert_eq!(bits, v["expected_schc_bits"].as_u64().unwrap() as usize);
    assert_eq!(got, v["expected_schc_hex"].as_str().unwrap());
}

/// Decompression errors are typed and say where: unknown rule ID, truncated residue, mapping
/// index past the list, a packet past the size limit.
#[test]
fn decompression_errors_name_the_place() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    // Unknown rule ID: the set has 1/8 and 0/8 only.
    let v = load(&base.join("ipv6-udp-all-not-sent-up.json"));
    assert_eq!(
        decompress(&v, &[0x07, 0x00]),
        Err(DecompressError::UnknownRuleId)
    );
    // Truncated: rule 3/3 sends next header, ports (40 bits); give it 10 bits.
    let v = load(&base.join("ipv6-udp-value-sent-nh-ports.json"));
    match decompress(&v, &[0x62, 0x3f]) {
        Err(DecompressError::Truncated { rule, bit, .. }) => {
            assert_eq!(rule, RuleId::new(3, 3));
            assert!((3..16).contains(&bit), "bit {bit}");
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
    // Mapping index past the list: rule 4/8 maps hop limit over 3 values (2-bit index 3).
    let v = load(&base.join("match-mapping-prefixes-hl-port.json"));
    let mut schc = hex(v["expected_schc_hex"].as_str().unwrap());
    schc[1] |= 0xC0;
    match decompress(&v, &schc) {
        Err(
            e @ DecompressError::MappingIndex {
                index: 3, count: 3, ..
            },
        ) => {
            assert!(e.to_string().contains("4/8"), "{e}");
        }
        other => panic!("expected MappingIndex, got {other:?}"),
    }
    // Too long: the no-compression rule with 1281 bytes.
    let v = load(&base.join("no-compression-fallback.json"));
    let mut big = vec![0u8; 1282];
    big[0] = 0x00;
    assert!(matches!(
        decompress(&v, &big),
        Err(DecompressError::TooLong { limit: 1280, .. })
    ));
}
