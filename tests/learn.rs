//! Rule learning and rule-format conversion on the shipped Leshan capture: the converted
//! microschc rules entry by entry, an openschc rule file written by hand, learned rules that
//! round-trip every packet and generalise to packets they were not learned from.

mod common;
use common::{root, schc};
use std::path::Path;

use lpwan_schc::capture::{network_packet, CaptureReader};
use lpwan_schc::codec::{self, Config};
use lpwan_schc::convert;
use lpwan_schc::json;
use lpwan_schc::learn::{LearnOptions, Learner};
use lpwan_schc::ratio::{Devices, Study, Totals};
use lpwan_schc::rule::{
    Cda, Direction, DirectionIndicator, Fid, FieldLength, FieldSpec, MatchingOperator, Nature,
    RuleId, RuleSetBuf,
};

const CAPTURE: &str = "captures/leshan-thermostat-readings.pcapng";

/// The IPv6 packets of the Leshan capture.
fn leshan() -> Vec<Vec<u8>> {
    let mut r = CaptureReader::open(root().join(CAPTURE)).expect("the shipped capture opens");
    let mut out = Vec::new();
    while let Some(f) = r.next_frame().expect("the shipped capture is whole") {
        out.push(network_packet(f.link_type, f.data).expect("IPv6").to_vec());
    }
    out
}

fn device() -> Devices {
    Devices::new(vec!["2001:db8:a::3".parse().unwrap()], "test")
}

fn study(rules: &RuleSetBuf, packets: &[Vec<u8>]) -> Totals {
    let mut s = Study::new(rules.as_set(), device());
    for p in packets {
        s.add_ipv6(p);
    }
    s.totals().clone()
}

fn microschc() -> convert::Converted {
    let text =
        std::fs::read_to_string(root().join("captures/leshan-rules.microschc.json")).unwrap();
    convert::from_microschc(&text, None).expect("the shipped microschc rules convert")
}

fn rule(set: &RuleSetBuf, id: RuleId) -> Vec<FieldSpec> {
    let r = set.as_set().get(id).copied().expect("the rule exists");
    set.field_specs(&r)
}

fn entry(specs: &[FieldSpec], fid: Fid, fp: u8) -> &FieldSpec {
    specs
        .iter()
        .find(|e| e.fid == fid && e.fp == fp)
        .unwrap_or_else(|| panic!("no {fid} at {fp}"))
}

#[test]
fn microschc_rules_convert_entry_by_entry() {
    let c = microschc();
    let set = &c.rules;
    assert_eq!(set.as_set().rules().len(), 9);
    let nc = set.as_set().no_compression().unwrap();
    assert_eq!(nc.id, RuleId::new(8, 4));

    // Rule 0/4: notifications from the device (uplink): source = device.
    let r0 = rule(set, RuleId::new(0, 4));
    assert!(r0.iter().all(|e| e.di == DirectionIndicator::Up));
    let dp = entry(&r0, Fid::Ipv6DevPrefix, 1);
    assert_eq!(dp.tv, vec![vec![0x20, 0x01, 0x0d, 0xb8, 0x00, 0x0a, 0, 0]]);
    assert_eq!(
        entry(&r0, Fid::Ipv6DevIid, 1).tv,
        vec![vec![0, 0, 0, 0, 0, 0, 0, 3]]
    );
    assert_eq!(
        entry(&r0, Fid::Ipv6AppIid, 1).tv,
        vec![vec![0, 0, 0, 0, 0, 0, 0, 0x20]]
    );
    assert_eq!(entry(&r0, Fid::UdpDevPort, 1).tv, vec![vec![0x90, 0xa0]]);
    assert_eq!(entry(&r0, Fid::UdpAppPort, 1).tv, vec![vec![0x16, 0x33]]);
    assert_eq!(
        entry(&r0, Fid::Ipv6FlowLabel, 1).tv,
        vec![vec![0x0f, 0xf8, 0x5f]]
    );
    let ty = entry(&r0, Fid::CoapType, 1);
    assert_eq!((ty.mo, ty.cda), (MatchingOperator::Msb(1), Cda::Lsb));
    let token = entry(&r0, Fid::CoapToken, 1);
    assert_eq!(
        (token.fl, token.cda),
        (FieldLength::Fixed(16), Cda::ValueSent)
    );
    let observe = entry(&r0, Fid::CoapOption(6), 1);
    assert_eq!(
        (observe.fl, observe.mo, observe.cda),
        (
            FieldLength::Variable,
            MatchingOperator::Ignore,
            Cda::ValueSent
        )
    );
    let cf = entry(&r0, Fid::CoapOption(12), 1);
    assert_eq!((cf.mo, cf.cda), (MatchingOperator::Equal, Cda::NotSent));
    assert_eq!(cf.tv, vec![vec![0x2d, 0x16]]);
    // The payload marker descriptor is gone: 25 microschc descriptors, 2 addresses split in
    // two, 3 option triplets become 2 entries... : 20 header entries + 2 options.
    assert_eq!(r0.len(), 22);
    // Entries keep microschc's (packet) order: the residues come out in the same order.
    let order: Vec<Fid> = r0.iter().map(|e| e.fid).collect();
    assert_eq!(
        order[6..10],
        [
            Fid::Ipv6DevPrefix,
            Fid::Ipv6DevIid,
            Fid::Ipv6AppPrefix,
            Fid::Ipv6AppIid
        ]
    );

    // Rule 4/4: the server's POST to /3303/0/5605 (downlink): source = application.
    let r4 = rule(set, RuleId::new(4, 4));
    assert!(r4.iter().all(|e| e.di == DirectionIndicator::Down));
    let order: Vec<Fid> = r4.iter().map(|e| e.fid).collect();
    assert_eq!(
        order[6..10],
        [
            Fid::Ipv6AppPrefix,
            Fid::Ipv6AppIid,
            Fid::Ipv6DevPrefix,
            Fid::Ipv6DevIid
        ]
    );
    assert_eq!(order[10..12], [Fid::UdpAppPort, Fid::UdpDevPort]);
    let p1 = entry(&r4, Fid::CoapOption(11), 1);
    assert_eq!(
        (p1.fl, p1.mo, p1.cda),
        (FieldLength::Fixed(32), MatchingOperator::Msb(29), Cda::Lsb)
    );
    assert_eq!(p1.tv, vec![b"3300".to_vec()]); // "3300" to "3307"
    assert_eq!(entry(&r4, Fid::CoapOption(11), 2).tv, vec![b"0".to_vec()]);
    assert_eq!(
        entry(&r4, Fid::CoapOption(11), 3).tv,
        vec![b"5605".to_vec()]
    );
    assert_eq!(entry(&r4, Fid::UdpDevPort, 1).tv, vec![vec![0x90, 0xa0]]);

    // Rule 3/4: the empty ACK has no token descriptor.
    let r3 = rule(set, RuleId::new(3, 4));
    assert!(r3.iter().all(|e| e.fid != Fid::CoapToken));

    // Every approximation is reported.
    let w = c.warnings.join("\n");
    assert!(w.contains("device 2001:db8:a::3"), "{w}");
    assert!(
        w.contains("downlink rules (destination = device): 2/4, 3/4, 4/4, 6/4"),
        "{w}"
    );
    assert!(
        w.contains("option 6 (Observe) has a variable length"),
        "{w}"
    );
    assert!(w.contains("Payload Marker"), "{w}");
}

#[test]
fn microschc_rules_compress_the_whole_capture() {
    let packets = leshan();
    assert_eq!(packets.len(), 10_000);
    let t = study(&microschc().rules, &packets);
    assert_eq!(t.compressed, 10_000, "{t:?}");
    assert_eq!(t.roundtrip_failures, 0);
    assert!(t.header_ratio() > 8.0, "{}", t.header_ratio());
    // The device given or inferred gives the same rules.
    let text =
        std::fs::read_to_string(root().join("captures/leshan-rules.microschc.json")).unwrap();
    let given = convert::from_microschc(&text, Some("2001:db8:a::3".parse().unwrap())).unwrap();
    assert_eq!(given.rules, microschc().rules);
    // With the server as the device, the roles swap.
    let swapped = convert::from_microschc(&text, Some("2001:db8:a::20".parse().unwrap())).unwrap();
    let r0 = rule(&swapped.rules, RuleId::new(0, 4));
    assert!(r0.iter().all(|e| e.di == DirectionIndicator::Down));
}

#[test]
fn shipped_rule_files_are_what_the_commands_make() {
    let shipped = std::fs::read_to_string(root().join("rules/leshan-microschc.json")).unwrap();
    assert_eq!(json::from_str(&shipped).unwrap(), microschc().rules);
    let learned =
        json::from_str(&std::fs::read_to_string(root().join("rules/leshan-learned.json")).unwrap())
            .unwrap();
    let packets = leshan();
    let t = study(&learned, &packets);
    assert_eq!(t.roundtrip_failures, 0);
    assert_eq!(t.uncompressed, 0);
    let ms = study(&microschc().rules, &packets);
    assert!(
        t.header_ratio() > ms.header_ratio(),
        "learned {} vs microschc {}",
        t.header_ratio(),
        ms.header_ratio()
    );
}

fn learn(packets: &[Vec<u8>], opts: LearnOptions) -> (RuleSetBuf, lpwan_schc::learn::Report) {
    let d = device();
    let mut l = Learner::new(opts).unwrap();
    for p in packets {
        l.add(p, d.direction(p).0);
    }
    l.learn().expect("learning succeeds")
}

#[test]
fn learned_rules_round_trip_and_generalise() {
    let packets = leshan();
    let (train, test) = packets.split_at(5_000);
    let (rules, report) = learn(train, LearnOptions::default());
    rules.validate().unwrap();
    assert_eq!(report.samples, 5_000);
    assert_eq!(report.train.roundtrip_failures, 0);
    assert_eq!(report.train.uncompressed, 0);
    // 4-bit IDs: 15 compression rules at most, the all-ones ID for no compression.
    assert!(report.rules.len() <= 15);
    assert_eq!(report.no_compression, RuleId::new(15, 4));
    assert!(report
        .rules
        .iter()
        .any(|r| r.description.contains("catch-all")));
    let t = study(&rules, test);
    assert_eq!(t.roundtrip_failures, 0);
    assert_eq!(t.uncompressed, 0, "a test packet fell to no compression");
    // Better than the no-compression rule by far, and than the authors' microschc rules.
    let baseline = {
        let mut only = RuleSetBuf::new();
        only.push_no_compression(RuleId::new(0, 1));
        study(&only, test)
    };
    assert!(baseline.header_ratio() < 1.0);
    assert!(t.header_ratio() > 12.0, "{}", t.header_ratio());
    assert!(t.header_ratio() > study(&microschc().rules, test).header_ratio());
    assert!(t.total_ratio() > 4.0, "{}", t.total_ratio());
}

#[test]
fn learning_respects_its_budget() {
    let packets = leshan();
    let small = &packets[..2_000];
    let (rules, report) = learn(
        small,
        LearnOptions {
            rule_id_bits: 2,
            ..LearnOptions::default()
        },
    );
    assert!(report.rules.len() <= 3);
    assert_eq!(report.no_compression, RuleId::new(3, 2));
    assert_eq!(report.train.roundtrip_failures, 0);
    assert!(rules.as_set().rules().iter().all(|r| r.id.length == 2));
    let (_, report) = learn(
        small,
        LearnOptions {
            max_rules: Some(1),
            ..LearnOptions::default()
        },
    );
    assert_eq!(report.rules.len(), 1);
    assert_eq!(report.train.roundtrip_failures, 0);
    // A checksum that must be sent.
    let (rules, _) = learn(
        small,
        LearnOptions {
            send_checksum: true,
            ..LearnOptions::default()
        },
    );
    let set = rules.as_set();
    for r in set.rules() {
        for f in set.fields(r) {
            if f.fid == Fid::UdpChecksum {
                assert_eq!(f.cda, Cda::ValueSent);
            }
        }
    }
    assert!(Learner::new(LearnOptions {
        rule_id_bits: 0,
        ..LearnOptions::default()
    })
    .is_err());
    assert!(Learner::new(LearnOptions {
        max_rules: Some(16),
        ..LearnOptions::default()
    })
    .is_err());
    assert!(Learner::new(LearnOptions::default())
        .unwrap()
        .learn()
        .is_err());
}

const OPENSCHC: &str = r#"{"DeviceID": "udp:10.0.0.1:8888", "SoR": [
 {"RuleID": 12, "RuleIDLength": 4, "Compression": [
  {"FID": "IPV6.VER", "FL": 4, "FP": 1, "DI": "BI", "TV": 6, "MO": "equal", "CDA": "not-sent"},
  {"FID": "IPV6.TC", "TV": 0, "MO": "equal", "CDA": "not-sent"},
  {"FID": "IPV6.FL", "TV": 0, "MO": "ignore", "CDA": "not-sent"},
  {"FID": "IPV6.LEN", "MO": "ignore", "CDA": "compute-length"},
  {"FID": "IPV6.NXT", "TV": 17, "MO": "equal", "CDA": "not-sent"},
  {"FID": "IPV6.HOP_LMT", "TV": 64, "MO": "ignore", "CDA": "not-sent"},
  {"FID": "IPV6.DEV_PREFIX", "TV": ["2001:db8:a::/64", "fe80::/64"], "MO": "match-mapping", "CDA": "mapping-sent"},
  {"FID": "IPV6.DEV_IID", "TV": "::3", "MO": "equal", "CDA": "not-sent"},
  {"FID": "IPV6.APP_PREFIX", "TV": "2001:db8:a::/64", "MO": "equal", "CDA": "not-sent"},
  {"FID": "IPV6.APP_IID", "TV": 32, "MO": "equal", "CDA": "not-sent"},
  {"FID": "UDP.DEV_PORT", "TV": 53504, "MO": "MSB", "MO.VAL": 12, "CDA": "LSB"},
  {"FID": "UDP.APP_PORT", "TV": 5683, "MO": "equal", "CDA": "not-sent"},
  {"FID": "UDP.LEN", "TV": 0, "MO": "ignore", "CDA": "compute-length"},
  {"FID": "UDP.CKSUM", "TV": 0, "MO": "ignore", "CDA": "compute-checksum"},
  {"FID": "COAP.VER", "TV": 1, "MO": "equal", "CDA": "not-sent"},
  {"FID": "COAP.TYPE", "TV": 0, "MO": "equal", "CDA": "not-sent"},
  {"FID": "COAP.TKL", "TV": 1, "MO": "equal", "CDA": "not-sent"},
  {"FID": "COAP.CODE", "TV": 1, "MO": "equal", "CDA": "not-sent"},
  {"FID": "COAP.MID", "TV": 4608, "MO": "MSB", "MO.VAL": 8, "CDA": "LSB"},
  {"FID": "COAP.TOKEN", "MO": "ignore", "CDA": "value-sent"},
  {"FID": "COAP.URI-PATH", "FL": "var", "FP": 1, "DI": "UP", "TV": "temp", "MO": "equal", "CDA": "not-sent"},
  {"FID": "COAP.End", "TV": 255, "MO": "equal", "CDA": "not-sent"}
 ]},
 {"RuleID": 0, "RuleIDLength": 3, "NoCompression": []},
 {"RuleID": 1, "RuleIDLength": 3, "Fragmentation": {"FRMode": "AckOnError", "FRDirection": "UP",
   "FRModeProfile": {"dtagSize": 0, "WSize": 1, "FCNSize": 3, "ackBehavior": "afterAll1",
                     "tileSize": 10, "MICAlgorithm": "RCS_CRC32", "lastTileInAll1": false}}}
]}"#;

const ANCHOR: &str = "600000000017114020010db8000a0000000000000000000320010db8000a00000000000000000020d10016330017d71e41011234abb474656d70ff01020304";

#[test]
fn openschc_rule_file_converts_and_compresses() {
    let c = convert::from_openschc(OPENSCHC).expect("converts");
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("COAP.END"));
    let set = c.rules.as_set();
    assert_eq!(set.rules().len(), 3);
    assert!(matches!(
        set.get(RuleId::new(1, 3)).unwrap().nature,
        Nature::Fragmentation(p) if p.fcn_bits == 3 && p.tile_size == 10 && p.direction == Direction::Up
    ));
    let r = rule(&c.rules, RuleId::new(12, 4));
    assert_eq!(r.len(), 21);
    assert_eq!(
        entry(&r, Fid::Ipv6DevPrefix, 1).tv,
        vec![
            vec![0x20, 0x01, 0x0d, 0xb8, 0x00, 0x0a, 0, 0],
            vec![0xfe, 0x80, 0, 0, 0, 0, 0, 0]
        ]
    );
    assert_eq!(
        entry(&r, Fid::Ipv6AppIid, 1).tv,
        vec![vec![0, 0, 0, 0, 0, 0, 0, 0x20]]
    );
    let port = entry(&r, Fid::UdpDevPort, 1);
    assert_eq!(
        (port.mo, port.tv.clone()),
        (MatchingOperator::Msb(12), vec![vec![0xd1, 0x00]])
    );
    let path = entry(&r, Fid::CoapOption(11), 1);
    assert_eq!(
        (path.fl, path.di),
        (FieldLength::Variable, DirectionIndicator::Up)
    );
    assert_eq!(path.tv, vec![b"temp".to_vec()]);
    assert_eq!(entry(&r, Fid::CoapToken, 1).fl, FieldLength::TokenLength);

    // The anchor packet: 4-bit ID, 1-bit prefix index, 4 bits of port, 8 of MID, 8 of token,
    // then the 4-byte payload.
    let packet: Vec<u8> = (0..ANCHOR.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&ANCHOR[i..i + 2], 16).unwrap())
        .collect();
    let mut out = [0u8; 128];
    let cfg = Config::default();
    let done = codec::compress(&set, &packet, Direction::Up, &cfg, &mut out).unwrap();
    assert_eq!(done.rule_id, RuleId::new(12, 4));
    assert_eq!(done.bits, 4 + 1 + 4 + 8 + 8 + 32);
    let mut back = [0u8; 128];
    let d = codec::decompress(&set, &out[..done.len], Direction::Up, &cfg, &mut back).unwrap();
    assert_eq!(&back[..d.len], &packet[..]);
}

#[test]
fn conversion_errors_name_the_place() {
    let e = convert::from_openschc(r#"[{"RuleID": 1, "RuleIDLength": 3, "Compression": [{"FID": "ICMPV6.TYPE", "TV": 128, "MO": "equal", "CDA": "not-sent"}]}]"#)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("rule 0 (ID 1/3), entry 0 (ICMPV6.TYPE): field not supported"),
        "{e}"
    );
    let e = convert::from_openschc(r#"[{"RuleID": 1, "RuleIDLength": 3}]"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("none of Compression"), "{e}");
    let e = convert::from_openschc(r#"[{"RuleID": 1, "RuleIDLength": 1, "NoCompression": []}, {"RuleID": 3, "RuleIDLength": 2, "NoCompression": []}]"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("prefix"), "{e}");
    let e = convert::from_microschc(r#"{"ruleset": [{"id": {"content": "00", "length": 4}, "nature": "compression", "field_descriptors": [{"id": "IPv4:Version", "length": 4, "position": 0, "direction": "Bi", "target_value": {"content": "04", "length": 4}, "matching_operator": "equal", "compression_decompression_action": "not-sent"}]}]}"#, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("descriptor 0 (IPv4:Version)") && e.contains("not supported"),
        "{e}"
    );
    assert!(convert::from_microschc("not json", None).is_err());
}

// ---------------------------------------------------------------------------------------------
// The commands
// ---------------------------------------------------------------------------------------------

#[test]
fn convert_command_writes_the_shipped_file_and_warns() {
    let out = schc(&[
        "rules",
        "convert",
        "--from",
        "microschc",
        "captures/leshan-rules.microschc.json",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text,
        std::fs::read_to_string(root().join("rules/leshan-microschc.json")).unwrap()
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.lines().count() >= 3, "{err}");
    assert!(
        err.lines()
            .all(|l| l.starts_with("warning: captures/leshan-rules.microschc.json: ")),
        "{err}"
    );
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("openschc.json");
    std::fs::write(&file, OPENSCHC).unwrap();
    let out = schc(&[
        "rules",
        "convert",
        "--from",
        "openschc",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    json::from_str(&String::from_utf8(out.stdout).unwrap()).unwrap();
    let out = schc(&[
        "rules",
        "convert",
        "--from",
        "openschc",
        "captures/leshan-rules.microschc.json",
    ]);
    assert!(!out.status.success());
    assert_eq!(String::from_utf8(out.stderr).unwrap().lines().count(), 1);
}

#[test]
fn learn_command_reports_train_and_test() {
    let out_file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("learned.json");
    let out = schc(&[
        "rules",
        "learn",
        CAPTURE,
        "--output",
        out_file.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["train_packets"], 5000);
    assert_eq!(v["test_packets"], 5000);
    assert_eq!(v["train"]["roundtrip_failures"], 0);
    assert_eq!(v["test"]["roundtrip_failures"], 0);
    assert!(v["test"]["header_ratio"].as_f64().unwrap() > 12.0, "{v}");
    assert_eq!(v["device"]["addresses"][0], "2001:db8:a::3");
    let rules = json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    // The same as the shipped learned rules.
    let shipped =
        json::from_str(&std::fs::read_to_string(root().join("rules/leshan-learned.json")).unwrap())
            .unwrap();
    assert_eq!(rules, shipped);
    let out = schc(&[
        "rules",
        "learn",
        CAPTURE,
        "--output",
        out_file.to_str().unwrap(),
        "--holdout",
        "1.5",
    ]);
    assert!(!out.status.success());
    let out = schc(&[
        "rules",
        "learn",
        CAPTURE,
        "--output",
        out_file.to_str().unwrap(),
        "--max-rules",
        "99",
    ]);
    assert!(!out.status.success());
    assert_eq!(String::from_utf8(out.stderr).unwrap().lines().count(), 1);
}

#[test]
fn ratio_on_the_leshan_capture() {
    let out = schc(&[
        "ratio",
        "--rules",
        "rules/leshan-learned.json",
        CAPTURE,
        "--json",
    ]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["packets"], 10000);
    assert_eq!(v["compressed"], 10000);
    assert_eq!(v["roundtrip_failures"], 0);
    assert_eq!(v["direction"]["up"], 9135);
    assert_eq!(v["direction"]["down"], 865);
    let text = String::from_utf8(
        schc(&["ratio", "--rules", "rules/leshan-microschc.json", CAPTURE]).stdout,
    )
    .unwrap();
    assert!(text.contains("10,000 IPv6: 10,000 compressed"), "{text}");
    assert!(
        text.contains("check    10,000 of 10,000 packets decompress to the original bytes"),
        "{text}"
    );
}
