//! The rule index changes nothing but speed: compression and decompression through an indexed
//! set give exactly what the linear scan gives, on real traffic and on sets where several
//! rules match; a static index that disagrees with its rules is refused by validation.

mod common;

use lpwan_schc::capture::{network_packet, CaptureReader};
use lpwan_schc::codec::{compress, decompress, Config};
use lpwan_schc::json;
use lpwan_schc::rule::compiled::{OUT_FIELD, OUT_TOKEN};
use lpwan_schc::rule::index::{left_aligned_id, IdEntry, RuleIndex, RuleIndexBuf};
use lpwan_schc::rule::{Direction, Fid, FieldSpec, RuleError, RuleId, RuleSet, RuleSetBuf};

use common::{hex, root};

/// An indexed and a linear (validated, no index) copy of a rule file.
fn both(file: &str) -> (RuleSetBuf, RuleSetBuf) {
    let text = std::fs::read_to_string(root().join(file)).expect("rule file");
    let indexed = json::from_str(&text).expect("rules load");
    assert!(indexed.index().is_some(), "json::from_str indexes");
    let mut linear = RuleSetBuf::new();
    for rule in indexed.as_set().rules() {
        match rule.nature {
            lpwan_schc::rule::Nature::Compression(_) => linear
                .push_compression(rule.id, &indexed.field_specs(rule))
                .unwrap(),
            lpwan_schc::rule::Nature::NoCompression => linear.push_no_compression(rule.id),
            lpwan_schc::rule::Nature::Fragmentation(p) => linear.push_fragmentation(rule.id, p),
        }
    }
    linear.validate().unwrap();
    assert!(linear.as_set().index().is_none());
    (indexed, linear)
}

/// Compresses and decompresses `packet` both ways with both sets; the results must be equal.
fn same(indexed: &RuleSet<'_>, linear: &RuleSet<'_>, packet: &[u8], what: &str) -> usize {
    let cfg = Config::default();
    let mut compressed = 0;
    for dir in [Direction::Up, Direction::Down] {
        let (mut a, mut b) = ([0u8; 1400], [0u8; 1400]);
        let ra = compress(indexed, packet, dir, &cfg, &mut a);
        let rb = compress(linear, packet, dir, &cfg, &mut b);
        assert_eq!(ra, rb, "{what} {dir:?}: compression result");
        if let Ok(c) = ra {
            assert_eq!(a[..c.len], b[..c.len], "{what} {dir:?}: SCHC bytes");
            let (mut x, mut y) = ([0u8; 1400], [0u8; 1400]);
            let da = decompress(indexed, &a[..c.len], dir, &cfg, &mut x);
            let db = decompress(linear, &a[..c.len], dir, &cfg, &mut y);
            assert_eq!(da, db, "{what} {dir:?}: decompression result");
            if let Ok(d) = da {
                assert_eq!(x[..d.len], y[..d.len]);
            }
            compressed += usize::from(c.rule_id.length > 0);
        }
    }
    compressed
}

#[test]
fn indexed_sets_agree_with_the_linear_scan_on_the_leshan_capture() {
    for file in ["rules/leshan-learned.json", "rules/leshan-microschc.json"] {
        let (indexed, linear) = both(file);
        let (ix, lin) = (indexed.as_set(), linear.as_set());
        assert!(
            !indexed.index().unwrap().keys.is_empty(),
            "{file}: keys chosen"
        );
        let mut reader =
            CaptureReader::open(root().join("captures/leshan-thermostat-readings.pcapng")).unwrap();
        let (mut frames, mut compressed) = (0, 0);
        while let Some(frame) = reader.next_frame().unwrap() {
            if let Ok(packet) = network_packet(frame.link_type, frame.data) {
                compressed += same(&ix, &lin, packet, file);
                frames += 1;
            }
            if frames == 1500 {
                break;
            }
        }
        assert_eq!(frames, 1500);
        // Each packet compresses with a rule in one direction at least.
        assert!(compressed >= frames, "{file}: {compressed} compressed");
        // Every rule's ID, and garbage, look up the same.
        for rule in ix.rules() {
            let head = (u64::from(rule.id.value) << (64 - u32::from(rule.id.length))).to_be_bytes();
            for bits in [usize::from(rule.id.length), 64] {
                assert_eq!(
                    ix.lookup_prefix(&head, bits),
                    lin.lookup_prefix(&head, bits)
                );
            }
        }
        for b in 0..=255u8 {
            let data = [b, b.wrapping_mul(7), 0x55];
            for bits in [0, 1, 3, 5, 8, 13, 24] {
                assert_eq!(
                    ix.lookup_prefix(&data, bits),
                    lin.lookup_prefix(&data, bits)
                );
            }
        }
    }
}

const ANCHOR: &str = "600000000017114020010db8000a0000000000000000000320010db8000a00000000000000000020d10016330017d71e41011234abb474656d70ff01020304";

#[test]
fn first_and_shortest_matching_rule_still_wins_with_decoys() {
    let anchor = json::from_str(include_str!("../rules/anchor.json")).unwrap();
    let rule = *anchor.as_set().get(RuleId::new(1, 8)).unwrap();
    let specs = anchor.field_specs(&rule);
    let with_port = |port: u16| -> Vec<FieldSpec> {
        let mut s = specs.clone();
        let e = s.iter_mut().find(|e| e.fid == Fid::UdpAppPort).unwrap();
        e.tv = vec![port.to_be_bytes().to_vec()];
        s
    };
    let with_uri = |uri: &str| -> Vec<FieldSpec> {
        let mut s = specs.clone();
        let e = s.iter_mut().find(|e| e.fid == Fid::CoapOption(11)).unwrap();
        e.tv = vec![uri.as_bytes().to_vec()];
        s
    };
    let packet = hex(ANCHOR);
    let mut set = RuleSetBuf::new();
    for i in 0..200u32 {
        set.push_compression(RuleId::new(0x400 + i, 12), &with_port(0x2000 + i as u16))
            .unwrap();
        set.push_compression(RuleId::new(0x600 + i, 12), &with_uri(&format!("u{i}")))
            .unwrap();
    }
    // Three rules match: two of 12 bits, identical but for the ID, and one of 16 bits.
    set.push_compression(RuleId::new(0xF000, 16), &specs)
        .unwrap();
    set.push_compression(RuleId::new(0x7F0, 12), &specs)
        .unwrap();
    set.push_compression(RuleId::new(0x7F1, 12), &specs)
        .unwrap();
    set.push_no_compression(RuleId::new(0xFF, 8));
    set.validate().unwrap();
    let linear = set.as_set();
    let mut indexed = set.clone();
    indexed.build_index().unwrap();
    let ix = indexed.index().unwrap();
    assert!(ix.keys.iter().any(|k| k.fid == Fid::UdpAppPort));
    assert!(ix.keys.iter().any(|k| k.fid == Fid::CoapOption(11)));
    let mut out = [0u8; 64];
    let c = compress(
        &indexed.as_set(),
        &packet,
        Direction::Up,
        &Config::default(),
        &mut out,
    )
    .unwrap();
    assert_eq!(
        c.rule_id,
        RuleId::new(0x7F0, 12),
        "the first of the shortest"
    );
    same(&indexed.as_set(), &linear, &packet, "decoys");
    // A packet no rule matches goes to the no-compression rule both ways.
    let mut other = packet.clone();
    other[43] ^= 1; // the application port
    let c = compress(
        &indexed.as_set(),
        &other,
        Direction::Up,
        &Config::default(),
        &mut out,
    )
    .unwrap();
    assert_eq!(c.rule_id, RuleId::new(0xFF, 8));
    same(&indexed.as_set(), &linear, &other, "no match");
}

#[test]
fn a_static_index_that_disagrees_with_its_rules_is_refused() {
    let mut buf = json::from_str(include_str!("../rules/leshan-learned.json")).unwrap();
    buf.build_index().unwrap();
    let ix = buf.index().unwrap().clone();
    let (rules, fields, values, pool) = buf.as_set().tables();
    let ok = RuleSet::new_unchecked(rules, fields, values, pool).with_index(ix.as_index());
    assert!(!ok.is_validated());
    let ok = ok.into_validated().expect("the built index agrees");
    assert!(ok.is_validated());

    // A compression entry dropped, an ID entry pointing elsewhere, unsorted IDs.
    let mut entries = ix.entries.clone();
    entries.remove(3);
    let dropped = RuleIndex {
        entries: &entries,
        ..ix.as_index()
    };
    let set = RuleSet::new_unchecked(rules, fields, values, pool).with_index(dropped);
    assert!(matches!(set.validate(), Err(RuleError::BadIndex(_))));

    let mut ids = ix.ids.clone();
    ids[0].rule = ids[1].rule;
    let moved = RuleIndex {
        ids: &ids,
        ..ix.as_index()
    };
    let set = RuleSet::new_unchecked(rules, fields, values, pool).with_index(moved);
    assert!(matches!(set.validate(), Err(RuleError::BadIndex(_))));

    let mut ids: Vec<IdEntry> = ix.ids.clone();
    ids.swap(0, 1);
    let unsorted = RuleIndex {
        ids: &ids,
        ..ix.as_index()
    };
    let set = RuleSet::new_unchecked(rules, fields, values, pool).with_index(unsorted);
    assert!(set.validate().is_err());

    // Built again from the same tables, the index is the same.
    assert_eq!(RuleIndexBuf::build(&buf.as_set()), ix);
    assert_eq!(left_aligned_id(RuleId::new(1, 8)), 0x0100_0000);
    // A change to the tables drops the index.
    buf.push_no_compression(RuleId::new(0xFFFF_FFFF, 32));
    assert!(buf.index().is_none() && buf.as_set().index().is_none());
}

/// The interop vectors with the compiled form (what `json::from_str` builds) and without it
/// (the same index, its compiled table dropped: the interpreter): the same SCHC packets, the
/// vectors' own, and the same packets back; most vector rules run compiled.
#[test]
fn compiled_form_agrees_with_the_interpreter_on_the_interop_vectors() {
    let names = common::vector_files();
    let (mut checked, mut compiled_rules, mut rules) = (0, 0, 0);
    for path in names {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if v["kind"] != "compression" {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let buf = json::from_value(&v["rules"]).unwrap();
        let fast = buf.as_set();
        assert!(fast.is_validated() && !fast.index().unwrap().compiled.is_empty());
        let (r, f, val, pool) = fast.tables();
        let ix = buf.index().unwrap();
        let interp = RuleSet::new_unchecked(r, f, val, pool)
            .with_index(RuleIndex {
                compiled: &[],
                plans: &[],
                ..ix.as_index()
            })
            .into_validated()
            .unwrap();
        // The compiled form entry by entry, as static device tables (no plans).
        let entrywise = RuleSet::new_unchecked(r, f, val, pool)
            .with_index(RuleIndex {
                plans: &[],
                ..ix.as_index()
            })
            .into_validated()
            .unwrap();
        for rule in fast.rules() {
            if matches!(rule.nature, lpwan_schc::rule::Nature::Compression(_)) {
                rules += 1;
                if fast
                    .fields(rule)
                    .iter()
                    .all(|fd| !fast.compile_field(fd).is_fallback())
                {
                    compiled_rules += 1;
                }
            }
        }
        let dir = match v["direction"].as_str() {
            Some("down") => Direction::Down,
            _ => Direction::Up,
        };
        let packet = hex(v["packet_hex"].as_str().unwrap());
        let cfg = Config::default();
        let (mut a, mut b) = ([0u8; 1400], [0u8; 1400]);
        let ca = compress(&fast, &packet, dir, &cfg, &mut a);
        let cb = compress(&interp, &packet, dir, &cfg, &mut b);
        assert_eq!(ca, cb, "{name}: compress");
        let mut e = [0u8; 1400];
        let ce = compress(&entrywise, &packet, dir, &cfg, &mut e);
        assert_eq!(ce, cb, "{name}: compress without plans");
        assert_eq!(e, b, "{name}: compressed bytes without plans");
        let len = ca.unwrap().len;
        assert_eq!(a[..len], b[..len], "{name}: compressed bytes");
        assert_eq!(
            common::to_hex(&a[..len]),
            v["expected_schc_hex"].as_str().unwrap(),
            "{name}: the vector's bytes"
        );
        let (mut x, mut y) = ([0u8; 1400], [0u8; 1400]);
        let da = decompress(&fast, &a[..len], dir, &cfg, &mut x);
        let db = decompress(&interp, &a[..len], dir, &cfg, &mut y);
        assert_eq!(da, db, "{name}: decompress");
        let n = da.unwrap().len;
        assert_eq!(x[..n], packet[..], "{name}: packet back");
        checked += 1;
    }
    assert_eq!(checked, 19, "all 19 compression vectors");
    assert!(
        compiled_rules * 2 > rules,
        "only {compiled_rules} of {rules} vector rules compile"
    );
}

/// A compiled table that disagrees with the field table (stale static tables) is refused by
/// validation, so the codec never trusts it.
#[test]
fn stale_compiled_table_is_refused() {
    let text = std::fs::read_to_string(root().join("rules/anchor.json")).unwrap();
    let buf = json::from_str(&text).unwrap();
    let ix = buf.index().unwrap();
    let (r, f, v, p) = buf.as_set().tables();
    let ok = RuleSet::new_unchecked(r, f, v, p).with_index(ix.as_index());
    assert!(ok.into_validated().is_ok());
    let mut compiled = ix.compiled.clone();
    let (tv, key, fp, len, op, arg) = compiled[6].parts();
    compiled[6] = lpwan_schc::rule::CompiledField::new(tv ^ 1, key, fp, len, op, arg);
    let stale = RuleIndex {
        compiled: &compiled,
        ..ix.as_index()
    };
    let set = RuleSet::new_unchecked(r, f, v, p).with_index(stale);
    assert!(matches!(set.validate(), Err(RuleError::BadIndex(_))));
    let short = RuleIndex {
        compiled: &ix.compiled[..5],
        ..ix.as_index()
    };
    let set = RuleSet::new_unchecked(r, f, v, p).with_index(short);
    assert!(matches!(set.validate(), Err(RuleError::BadIndex(_))));
}

#[allow(dead_code)]
#[path = "../nostd-check/src/rules.rs"]
mod device_rules;

#[allow(dead_code)]
#[path = "static_rules/anchor.rs"]
mod full_rules;

/// The anchor rule (the one the figures in BENCHMARKS.md are measured on) compiles whole, in
/// the JSON-loaded set and in the device's static tables: a change that made one of its
/// entries fall back to the interpreter would silently cost the fast path.
#[test]
fn anchor_rule_compiles_whole() {
    let text = std::fs::read_to_string(root().join("rules/anchor.json")).unwrap();
    let buf = json::from_str(&text).unwrap();
    let set = buf.as_set();
    let rule = set.get(RuleId::new(1, 8)).unwrap();
    assert_eq!(set.fields(rule).len(), 21);
    assert!(set
        .fields(rule)
        .iter()
        .all(|fd| !set.compile_field(fd).is_fallback()));
    // Its uplink plan: the pinned header fields as seven masked words (IPv6 version to hop
    // limit with the payload length left out, the four address halves, the UDP ports, the
    // CoAP header with the MID's 12 high bits), the Uri-Path option as an eighth (its bytes
    // as encoded: the TKL is pinned), the three computed fields as checks, the token and the
    // MID's 4 low bits as residue, and nothing left to match alone.
    let plans = buf.index().unwrap().plans.clone();
    let i = set
        .rules()
        .iter()
        .position(|r| r.id == RuleId::new(1, 8))
        .unwrap();
    let up = &plans[2 * i];
    assert!(up.usable);
    let words: Vec<(u8, u8, u64, u64)> = up.words[..usize::from(up.n_words)]
        .iter()
        .map(|w| (w.layer, w.at, w.mask_be(), w.value_be()))
        .collect();
    assert_eq!(
        words,
        [
            (0, 0, 0xFFFF_FFFF_0000_FFFF, 0x6000_0000_0000_1140),
            (0, 8, u64::MAX, 0x2001_0db8_000a_0000),
            (0, 16, u64::MAX, 0x0000_0000_0000_0003),
            (0, 24, u64::MAX, 0x2001_0db8_000a_0000),
            (0, 32, u64::MAX, 0x0000_0000_0000_0020),
            (1, 0, 0xFFFF_FFFF_0000_0000, 0xd100_1633_0000_0000),
            (2, 0, 0xFFFF_FFF0_0000_0000, 0x4101_1230_0000_0000),
            // Uri-Path "temp", its only option, as encoded after the 1-byte token: header
            // byte 0xB4 (delta 11, length 4), then the value.
            (2, 5, 0xFFFF_FFFF_FF00_0000, 0xB474_656D_7000_0000),
        ]
    );
    assert_eq!(up.checks, 0b111);
    assert_eq!((up.residue, up.token_sent), (4, true));
    // Its residue writes in entry order: the MID's 4 low bits (CoAP bits 28..32), then the
    // token's TKL bytes.
    assert!(up.listed);
    let outs: Vec<(u8, u8, u16, u8)> = up.outs[..usize::from(up.n_outs)]
        .iter()
        .map(|o| (o.kind, o.layer, o.off, o.len))
        .collect();
    assert_eq!(outs, [(OUT_FIELD, 2, 28, 4), (OUT_TOKEN, 0, 0, 0)]);
    assert_eq!(up.outs[1].entry, 19);
    assert_eq!(up.rest, 0);
    assert_eq!(
        (up.header_fields, up.options, up.layer, up.first),
        (20, 1, 3, 1)
    );
    // Downlink, the device's address and port are the destination's: by place, the
    // application's IID now comes first and the ports swap.
    let down = &plans[2 * i + 1];
    let mut at: Vec<(u8, u8, u64)> = down.words[..usize::from(down.n_words)]
        .iter()
        .map(|w| (w.layer, w.at, w.value_be()))
        .collect();
    at.sort_unstable();
    assert_eq!(
        at[1..5].iter().map(|w| w.2).collect::<Vec<_>>(),
        [0x2001_0db8_000a_0000, 0x20, 0x2001_0db8_000a_0000, 0x3]
    );
    assert_eq!(at[5], (1, 0, 0x1633_d100_0000_0000));

    // The full static tables validate (their index included) ...
    let full = full_rules::RULE_SET
        .into_validated()
        .expect("the static tables validate");
    let ix = full.index().unwrap();
    assert_eq!(ix.compiled, buf.index().unwrap().compiled.as_slice());
    assert_eq!(std::mem::size_of_val(ix.compiled), 21 * 14);
    // ... and the device's compiled-only tables are the same but for the descriptors.
    let device = &device_rules::RULE_SET;
    let dix = device.index().unwrap();
    let (rules, fields, values, pool) = device.tables();
    assert_eq!(rules, full.tables().0);
    assert!(fields.is_empty() && values.is_empty() && pool.is_empty());
    assert_eq!(
        (dix.ids, dix.keys, dix.entries),
        (ix.ids, ix.keys, ix.entries)
    );
    assert_eq!(dix.compiled, ix.compiled);

    // The device's unchecked static set through the compiled-only entry points (what
    // nostd-check links): the anchor's bytes and back.
    let anchor: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("benches/anchor.json")).unwrap())
            .unwrap();
    let packet = hex(anchor["packet_hex"].as_str().unwrap());
    let expected = hex(anchor["expected_schc_hex"].as_str().unwrap());
    let unchecked = &device_rules::RULE_SET;
    assert!(!unchecked.is_validated());
    let cfg = Config::default();
    let mut out = [0u8; 64];
    let c = lpwan_schc::codec::compress_compiled(unchecked, &packet, Direction::Up, &cfg, &mut out)
        .unwrap();
    assert_eq!(out[..c.len], expected[..]);
    let mut back = [0u8; 128];
    let d = lpwan_schc::codec::decompress_compiled(
        unchecked,
        &expected,
        expected.len() * 8,
        Direction::Up,
        &cfg,
        &mut back,
    )
    .unwrap();
    assert_eq!(back[..d.len], packet[..]);
}

/// A rule tried before the winner that needs the interpreter (match-mapping on the CoAP type)
/// computes the UDP checksum and then fails (another MID): the winner's plan must still count
/// the checksum as holding. (The plan once trusted only a checksum it had checked itself, and
/// sent this packet uncompressed.)
#[test]
fn a_checksum_the_interpreter_computed_still_holds_for_a_plan() {
    let text = std::fs::read_to_string(root().join("benches/anchor.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut rules = doc["rules"].clone();
    let list = rules["ietf-schc:schc"]["rule"].as_array_mut().unwrap();
    let mut other = list[0].clone();
    other["rule-id-value"] = 2.into();
    let entries = other["entry"].as_array_mut().unwrap();
    assert_eq!(entries[15]["field-id"], "ietf-schc:fid-coap-type");
    entries[15]["matching-operator"] = "ietf-schc:mo-match-mapping".into();
    entries[15]["comp-decomp-action"] = "ietf-schc:cda-mapping-sent".into();
    entries[15]["target-value"] = serde_json::json!([
        {"index": 0, "value": "AA=="},
        {"index": 1, "value": "AQ=="}
    ]);
    assert_eq!(entries[18]["field-id"], "ietf-schc:fid-coap-mid");
    entries[18]["target-value"][0]["value"] = "VnA=".into();
    list.insert(0, other);
    let buf = json::from_value(&rules).unwrap();
    let set = buf.as_set();
    let ix = buf.index().unwrap();
    // Rule 2 is interpreted (no plan), rule 1 has one; no key field: both are tried, in order.
    assert!(!ix.plans[0].usable && ix.plans[2].usable);
    assert!(ix.keys.iter().all(|k| k.fp == 0));

    let packet = hex(doc["packet_hex"].as_str().unwrap());
    let expected = hex(doc["expected_schc_hex"].as_str().unwrap());
    let mut out = [0u8; 128];
    let c = compress(&set, &packet, Direction::Up, &Config::default(), &mut out).unwrap();
    assert_eq!(c.rule_id, RuleId::new(1, 8));
    assert_eq!(out[..c.len], expected[..]);
}
