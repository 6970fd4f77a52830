//! Captures: small pcap and pcapng files written here for every supported link type and both
//! byte orders, frames that are not IPv6, truncated, damaged and hostile files; and the
//! `schc ratio` command on them.

mod common;
use common::{hex, schc};
use std::path::{Path, PathBuf};
use std::process::Output;

use lpwan_schc::capture::{link, network_packet, CaptureError, CaptureReader, Format, NotIpv6};
use lpwan_schc::json;
use lpwan_schc::ratio::{Devices, Study};
use serde_json::Value;

const ANCHOR: &str = "600000000017114020010db8000a0000000000000000000320010db8000a00000000000000000020d10016330017d71e41011234abb474656d70ff01020304";

/// Three IPv6 packets: the anchor packet, and two with other MIDs and payloads.
fn ipv6_packets() -> Vec<Vec<u8>> {
    let a = hex(ANCHOR);
    let mut b = a.clone();
    b[52] = 0x99; // MID low byte
    let mut c = a[..a.len() - 5].to_vec(); // no payload
    c[5] -= 5; // payload length
    c[45] -= 5; // UDP length
    c[46] = 0;
    c[47] = 0;
    let ck = lpwan_schc::codec::udp_checksum(&c);
    c[46..48].copy_from_slice(&ck.to_be_bytes());
    vec![a, b, c]
}

const IPV4: [u8; 28] = [
    0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0x16, 0x33, 0x16, 0x33, 0,
    8, 0, 0,
];

/// One frame of `link_type` carrying `l3` with EtherType/family for IPv6 (`v6`) or IPv4.
fn frame(link_type: u32, l3: &[u8], v6: bool) -> Vec<u8> {
    let ethertype: [u8; 2] = if v6 { [0x86, 0xDD] } else { [0x08, 0x00] };
    let mut f = Vec::new();
    match link_type {
        link::ETHERNET => {
            f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
            // A VLAN tag in front, to be skipped.
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
            f.extend_from_slice(&ethertype);
        }
        link::LINUX_SLL => {
            f.extend_from_slice(&[0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
            f.extend_from_slice(&ethertype);
        }
        link::LINUX_SLL2 => {
            f.extend_from_slice(&ethertype);
            f.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
        }
        link::NULL => f.extend_from_slice(&(if v6 { 30u32 } else { 2 }).to_le_bytes()),
        link::LOOP => f.extend_from_slice(&(if v6 { 24u32 } else { 2 }).to_be_bytes()),
        _ => {}
    }
    f.extend_from_slice(l3);
    if link_type == link::ETHERNET {
        f.extend_from_slice(&[0u8; 4]); // trailer padding, not part of the IPv6 packet
    }
    f
}

/// A pcap file; `big` for big-endian, `nanos` for nanosecond timestamps.
fn pcap(link_type: u32, frames: &[Vec<u8>], big: bool, nanos: bool) -> Vec<u8> {
    let u32b = |v: u32| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u16b = |v: u16| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut out = Vec::new();
    out.extend_from_slice(&u32b(if nanos { 0xA1B2_3C4D } else { 0xA1B2_C3D4 }));
    out.extend_from_slice(&u16b(2));
    out.extend_from_slice(&u16b(4));
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&u32b(65535));
    out.extend_from_slice(&u32b(link_type));
    for (i, f) in frames.iter().enumerate() {
        out.extend_from_slice(&u32b(1_700_000_000 + i as u32));
        out.extend_from_slice(&u32b(500));
        out.extend_from_slice(&u32b(f.len() as u32));
        out.extend_from_slice(&u32b(f.len() as u32));
        out.extend_from_slice(f);
    }
    out
}

fn pcapng_block(out: &mut Vec<u8>, big: bool, block_type: u32, body: &[u8]) {
    let u32b = |v: u32| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let len = 12 + body.len().div_ceil(4) * 4;
    out.extend_from_slice(&u32b(block_type));
    out.extend_from_slice(&u32b(len as u32));
    out.extend_from_slice(body);
    out.resize(out.len() + (len - 12 - body.len()), 0);
    out.extend_from_slice(&u32b(len as u32));
}

/// A pcapng file with one interface of `link_type`: enhanced packet blocks, and a simple
/// packet block for the last frame.
fn pcapng(link_type: u32, frames: &[Vec<u8>], big: bool) -> Vec<u8> {
    let u32b = |v: u32| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u16b = |v: u16| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut out = Vec::new();
    let mut shb = Vec::new();
    shb.extend_from_slice(&u32b(0x1A2B_3C4D));
    shb.extend_from_slice(&u16b(1));
    shb.extend_from_slice(&u16b(0));
    shb.extend_from_slice(&[0xFF; 8]);
    pcapng_block(&mut out, big, 0x0A0D_0D0A, &shb);
    let mut idb = Vec::new();
    idb.extend_from_slice(&u16b(link_type as u16));
    idb.extend_from_slice(&[0, 0]);
    idb.extend_from_slice(&u32b(0));
    pcapng_block(&mut out, big, 1, &idb);
    // A name resolution block, to be skipped.
    pcapng_block(&mut out, big, 4, &[0, 0, 0, 0]);
    for (i, f) in frames.iter().enumerate() {
        if i + 1 == frames.len() && frames.len() > 1 {
            let mut spb = u32b(f.len() as u32).to_vec();
            spb.extend_from_slice(f);
            pcapng_block(&mut out, big, 3, &spb);
            continue;
        }
        let mut epb = Vec::new();
        epb.extend_from_slice(&u32b(0));
        epb.extend_from_slice(&u32b(0));
        epb.extend_from_slice(&u32b(i as u32));
        epb.extend_from_slice(&u32b(f.len() as u32));
        epb.extend_from_slice(&u32b(f.len() as u32));
        epb.extend_from_slice(f);
        epb.resize(20 + f.len().div_ceil(4) * 4, 0);
        pcapng_block(&mut out, big, 6, &epb);
    }
    out
}

const LINKS: [u32; 8] = [
    link::ETHERNET,
    link::LINUX_SLL,
    link::LINUX_SLL2,
    link::RAW,
    link::IPV6,
    link::NULL,
    link::LOOP,
    link::IPV4,
];

/// Frames for a link type: three IPv6 packets, and an IPv4 packet where the link can carry one.
fn frames_for(link_type: u32) -> (Vec<Vec<u8>>, usize) {
    let mut frames = Vec::new();
    let mut v6 = 0;
    if link_type != link::IPV4 {
        for p in ipv6_packets() {
            frames.push(frame(link_type, &p, true));
            v6 += 1;
        }
    }
    if link_type != link::IPV6 {
        frames.push(frame(link_type, &IPV4, false));
    }
    (frames, v6)
}

fn read_all(bytes: &[u8]) -> (Format, Vec<(u32, Vec<u8>)>) {
    let mut r = CaptureReader::new(bytes).expect("a capture");
    let format = r.format();
    let mut out = Vec::new();
    while let Some(f) = r.next_frame().expect("a frame") {
        out.push((f.link_type, f.data.to_vec()));
    }
    (format, out)
}

#[test]
fn every_link_type_in_every_format() {
    let anchor_rules = json::from_str(include_str!("../rules/anchor.json")).unwrap();
    for link_type in LINKS {
        let (frames, v6) = frames_for(link_type);
        let files = [
            ("pcap le us", pcap(link_type, &frames, false, false)),
            ("pcap be ns", pcap(link_type, &frames, true, true)),
            ("pcapng le", pcapng(link_type, &frames, false)),
            ("pcapng be", pcapng(link_type, &frames, true)),
        ];
        for (what, bytes) in files {
            let (format, got) = read_all(&bytes);
            assert_eq!(format == Format::Pcap, what.starts_with("pcap "), "{what}");
            assert_eq!(got.len(), frames.len(), "{link_type} {what}");
            let mut ipv6 = Vec::new();
            for (i, (lt, data)) in got.iter().enumerate() {
                assert_eq!(*lt, link_type, "{what}");
                assert_eq!(data, &frames[i], "{link_type} {what}: frame {i}");
                match network_packet(*lt, data) {
                    Ok(p) => ipv6.push(p.to_vec()),
                    Err(e) => assert_eq!(e, NotIpv6::Ipv4, "{link_type} {what}"),
                }
            }
            assert_eq!(ipv6, ipv6_packets()[..v6].to_vec(), "{link_type} {what}");
            // The study counts the IPv4 frame as skipped and round-trips the rest.
            let set = anchor_rules.as_set();
            let mut study = Study::new(set, Devices::new(Vec::new(), "test"));
            let mut r = CaptureReader::new(&bytes[..]).unwrap();
            while let Some(f) = r.next_frame().unwrap() {
                study.add_frame(&f);
            }
            let t = study.totals();
            assert_eq!(t.packets, frames.len() as u64);
            assert_eq!(t.skipped_total(), (frames.len() - v6) as u64);
            assert_eq!(t.compressed + t.uncompressed, v6 as u64);
            assert_eq!(t.roundtrip_failures, 0, "{link_type} {what}");
        }
    }
}

#[test]
fn concatenated_pcapng_sections_of_either_byte_order() {
    let (frames, _) = frames_for(link::ETHERNET);
    let mut both = pcapng(link::ETHERNET, &frames, false);
    both.extend_from_slice(&pcapng(
        link::LINUX_SLL,
        &frames_for(link::LINUX_SLL).0,
        true,
    ));
    let (_, got) = read_all(&both);
    assert_eq!(got.len(), 2 * frames.len());
    assert_eq!(got[0].0, link::ETHERNET);
    assert_eq!(got[frames.len()].0, link::LINUX_SLL);
    let v6 = got
        .iter()
        .filter(|(lt, d)| network_packet(*lt, d).is_ok())
        .count();
    assert_eq!(v6, 6);
}

#[test]
fn truncated_pcap_reports_where_and_keeps_the_packets_before() {
    let (frames, _) = frames_for(link::ETHERNET);
    let whole = pcap(link::ETHERNET, &frames, false, false);
    // Cut in the middle of the third record's data.
    let third = 24 + (16 + frames[0].len()) + (16 + frames[1].len());
    let cut = &whole[..third + 16 + 10];
    let mut r = CaptureReader::new(cut).unwrap();
    assert!(r.next_frame().unwrap().is_some());
    assert!(r.next_frame().unwrap().is_some());
    let err = r.next_frame().unwrap_err();
    assert_eq!(err.packets_before(), 2);
    match &err {
        CaptureError::Truncated {
            offset,
            needed,
            available,
            ..
        } => {
            assert_eq!(*offset, third as u64);
            assert_eq!(*needed, (16 + frames[2].len()) as u64);
            assert_eq!(*available, 26);
        }
        other => panic!("{other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("truncated") && msg.contains(&format!("byte {third}")),
        "{msg}"
    );
    // Cut inside a record header.
    let mut r = CaptureReader::new(&whole[..third + 5]).unwrap();
    r.next_frame().unwrap();
    r.next_frame().unwrap();
    assert!(matches!(
        r.next_frame(),
        Err(CaptureError::Truncated { available: 5, .. })
    ));
}

#[test]
fn truncated_pcapng_keeps_the_packets_before() {
    let (frames, _) = frames_for(link::LINUX_SLL);
    let whole = pcapng(link::LINUX_SLL, &frames, false);
    let cut = &whole[..whole.len() - 7];
    let mut r = CaptureReader::new(cut).unwrap();
    let mut n = 0;
    let err = loop {
        match r.next_frame() {
            Ok(Some(_)) => n += 1,
            Ok(None) => panic!("the damage was not noticed"),
            Err(e) => break e,
        }
    };
    assert_eq!(n, frames.len() - 1);
    assert_eq!(err.packets_before(), n as u64);
    assert!(err
        .to_string()
        .starts_with("truncated capture: the packet block at byte "));
}

#[test]
fn hostile_and_foreign_files_are_clear_errors() {
    assert!(matches!(
        CaptureReader::new(&[][..]),
        Err(CaptureError::Empty)
    ));
    let e = CaptureReader::new(&b"GIF89a..."[..]).err().unwrap();
    assert!(
        e.to_string().starts_with("not a pcap or pcapng capture"),
        "{e}"
    );
    // A pcap record declaring 4 GiB: refused before anything is allocated.
    let mut huge = pcap(link::RAW, &[], false, false);
    huge.extend_from_slice(&[0; 8]);
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    let mut r = CaptureReader::new(&huge[..]).unwrap();
    let e = r.next_frame().unwrap_err();
    assert!(
        matches!(e, CaptureError::TooLarge { offset: 24, .. }),
        "{e}"
    );
    // A pcapng block length that is not a multiple of 4.
    let mut bad = pcapng(link::RAW, &[], false);
    bad.extend_from_slice(&6u32.to_le_bytes());
    bad.extend_from_slice(&13u32.to_le_bytes());
    bad.extend_from_slice(&[0; 8]);
    let mut r = CaptureReader::new(&bad[..]).unwrap();
    let e = r.next_frame().unwrap_err();
    assert!(matches!(e, CaptureError::Malformed { .. }), "{e}");
    // A packet on an interface that was never described.
    let mut orphan = Vec::new();
    let mut shb = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&[0xFF; 8]);
    pcapng_block(&mut orphan, false, 0x0A0D_0D0A, &shb);
    let mut epb = vec![0u8; 20];
    epb[12] = 4;
    epb[16] = 4;
    epb.extend_from_slice(&[0x60, 0, 0, 0]);
    pcapng_block(&mut orphan, false, 6, &epb);
    let mut r = CaptureReader::new(&orphan[..]).unwrap();
    let e = r.next_frame().unwrap_err();
    assert!(e.to_string().contains("interface 0"), "{e}");
    // A large non-packet block is skipped, not buffered.
    let (frames, _) = frames_for(link::RAW);
    let mut big = pcapng(link::RAW, &frames[..1], false);
    pcapng_block(
        &mut big,
        false,
        0x0BAD,
        &vec![7u8; 2 * lpwan_schc::capture::MAX_RECORD],
    );
    let tail = pcapng(link::RAW, &frames[1..2], false);
    // Only the blocks after the header and interface of the second file.
    let skip = 28 + 20 + 16;
    big.extend_from_slice(&tail[skip..]);
    let (_, got) = read_all(&big);
    assert_eq!(got.len(), 2);
}

#[test]
fn snapped_and_short_packets_are_not_compressed() {
    let p = &ipv6_packets()[0];
    assert_eq!(network_packet(link::IPV6, &p[..50]), Err(NotIpv6::Snapped));
    assert_eq!(network_packet(link::IPV6, &p[..20]), Err(NotIpv6::Short));
    assert_eq!(
        network_packet(link::ETHERNET, &[0u8; 10]),
        Err(NotIpv6::Short)
    );
    let arp = {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x06]);
        f.extend_from_slice(&[0u8; 28]);
        f
    };
    assert_eq!(network_packet(link::ETHERNET, &arp), Err(NotIpv6::Arp));
}

// ---------------------------------------------------------------------------------------------
// The command
// ---------------------------------------------------------------------------------------------

fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, bytes).expect("scratch file written");
    path
}

fn ratio_json(args: &[&str]) -> (Output, Value) {
    let out = schc(args);
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {text:?} {:?}", out.stderr));
    (out, v)
}

#[test]
fn ratio_json_counts_skipped_frames() {
    let (frames, v6) = frames_for(link::ETHERNET);
    let mut with_arp = frames.clone();
    let mut arp = vec![0u8; 12];
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0u8; 28]);
    with_arp.push(arp);
    let file = scratch("mixed.pcap", &pcap(link::ETHERNET, &with_arp, false, false));
    let file = file.display().to_string();
    let (out, v) = ratio_json(&["ratio", "--rules", "rules/anchor.json", &file, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stderr, b"");
    assert_eq!(v["packets"], 5);
    assert_eq!(v["skipped"], 2);
    assert_eq!(v["skipped_by_reason"]["ipv4"], 1);
    assert_eq!(v["skipped_by_reason"]["arp"], 1);
    assert_eq!(
        v["compressed"].as_u64().unwrap() + v["uncompressed"].as_u64().unwrap(),
        v6 as u64
    );
    assert_eq!(v["roundtrip_failures"], 0);
    let bytes_in: u64 = ipv6_packets().iter().map(|p| p.len() as u64).sum();
    assert_eq!(v["bytes_in"], bytes_in);
    for key in [
        "bytes_out",
        "header_bytes_in",
        "header_bytes_out",
        "header_bits_out",
        "header_ratio",
        "total_ratio",
        "per_rule",
        "device",
        "seconds",
    ] {
        assert!(v.get(key).is_some(), "no {key} in {v}");
    }
    // The anchor packet: rule 1/8 describes 59 header bytes (IPv6 40, UDP 8, CoAP 11); with its
    // 4-byte payload the SCHC packet is 52 bits: 20 bits of rule ID and residue.
    let r = &v["per_rule"]["1/8"];
    assert!(r["packets"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v["device"]["addresses"][0], "2001:db8:a::3", "{v}");
}

#[test]
fn ratio_on_a_truncated_capture_reports_the_packets_before_and_fails() {
    let (frames, _) = frames_for(link::RAW);
    let whole = pcap(link::RAW, &frames, false, false);
    let file = scratch("truncated.pcap", &whole[..whole.len() - 3]);
    let file = file.display().to_string();
    let (out, v) = ratio_json(&["ratio", "--rules", "rules/anchor.json", &file, "--json"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("truncated capture"),
        "{err}"
    );
    assert!(err.contains("3 packets read before it"), "{err}");
    assert_eq!(v["packets"], 3);
    assert!(v["error"].as_str().unwrap().contains("truncated"));
    // The text summary is printed as well.
    let out = schc(&["ratio", "--rules", "rules/anchor.json", &file]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stdout).unwrap().contains("3 IPv6"));
}

#[test]
fn ratio_errors_are_one_line() {
    let not = scratch("not-a-capture.pcap", b"hello, world");
    for args in [
        vec![
            "ratio",
            "--rules",
            "rules/anchor.json",
            not.to_str().unwrap(),
        ],
        vec!["ratio", "--rules", "rules/anchor.json", "no/such/file.pcap"],
        vec![
            "ratio",
            "--rules",
            "no/such/rules.json",
            "captures/leshan-thermostat-readings.pcapng",
        ],
        vec![
            "ratio",
            "--device",
            "not-an-address",
            "captures/leshan-thermostat-readings.pcapng",
        ],
    ] {
        let out = schc(&args);
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn ratio_writes_csv_and_svg() {
    let (frames, _) = frames_for(link::LINUX_SLL2);
    let file = scratch("sll2.pcapng", &pcapng(link::LINUX_SLL2, &frames, false));
    let csv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sll2.csv");
    let svg = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sll2.svg");
    let out = schc(&[
        "ratio",
        "--rules",
        "rules/anchor.json",
        file.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + frames.len());
    assert!(lines[0].starts_with("frame,direction,rule,"));
    assert!(
        lines[1].starts_with("1,up,1/8,compression,63,59,20,12,52,7,ok"),
        "{}",
        lines[1]
    );
    assert!(lines[4].contains("skipped:ipv4"), "{}", lines[4]);
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("Header bytes per packet"));
}

#[test]
fn ratio_without_rules_learns_them_and_counts_a_window() {
    let (out, v) = ratio_json(&[
        "ratio",
        "captures/leshan-thermostat-readings.pcapng",
        "--skip",
        "100",
        "--count",
        "1000",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(v["packets"], 1000);
    assert_eq!(v["rules"], "learned from this capture");
    assert_eq!(v["roundtrip_failures"], 0);
    assert_eq!(v["uncompressed"], 0);
    assert!(v["header_ratio"].as_f64().unwrap() > 10.0, "{v}");
    // An explicit device that is the server reverses the directions.
    let (out, v) = ratio_json(&[
        "ratio",
        "--rules",
        "rules/leshan-microschc.json",
        "--device",
        "2001:db8:a::20",
        "captures/leshan-thermostat-readings.pcapng",
        "--count",
        "100",
        "--json",
    ]);
    assert!(out.status.success());
    assert_eq!(v["device"]["source"], "given with --device");
    assert_eq!(
        v["direction"]["down"].as_u64().unwrap() + v["direction"]["up"].as_u64().unwrap(),
        100
    );
    assert!(v["direction"]["down"].as_u64().unwrap() > v["direction"]["up"].as_u64().unwrap());
}

mod damaged {
    use super::*;
    use proptest::prelude::*;

    /// Reads a capture to its end or first error, through the study: must never panic, and
    /// must return every frame before the damage.
    fn survive(bytes: &[u8]) {
        let rules = json::from_str(include_str!("../rules/anchor.json")).unwrap();
        let mut study = Study::new(rules.as_set(), Devices::new(Vec::new(), "test"));
        if let Ok(mut r) = CaptureReader::new(bytes) {
            loop {
                match r.next_frame() {
                    Ok(Some(f)) => {
                        study.add_frame(&f);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        assert_eq!(e.packets_before(), study.totals().packets);
                        break;
                    }
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn mutated_captures_never_panic(
            pcapng_file in any::<bool>(),
            big in any::<bool>(),
            link_index in 0usize..LINKS.len(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let link_type = LINKS[link_index];
            let (frames, _) = frames_for(link_type);
            let mut bytes = if pcapng_file {
                pcapng(link_type, &frames, big)
            } else {
                pcap(link_type, &frames, big, false)
            };
            for (at, v) in flips {
                let i = at.index(bytes.len());
                bytes[i] = v;
            }
            let keep = cut.index(bytes.len() + 1);
            survive(&bytes);
            survive(&bytes[..keep]);
        }
    }
}
