//! `codec::explain`: for every compression rule, whether it matches the packet or the first
//! entry that fails (its field and bit offset), on the anchor packet and rule (rule 1/8, 21
//! entries: IPv6 0-9, UDP 10-13, CoAP 14-20).

use lpwan_schc::codec::{self, udp_checksum, Config, Mismatch};
use lpwan_schc::rule::{Direction, Fid, RuleId};

mod common;
use common::hex;

const ANCHOR: &str = "600000000017114020010db8000a0000000000000000000320010db8000a00000000000000000020d10016330017d71e41011234abb474656d70ff01020304";

fn explain(packet: &[u8]) -> Vec<(RuleId, Result<usize, Mismatch>)> {
    let set = lpwan_schc::json::from_str(include_str!("../rules/anchor.json")).unwrap();
    let mut out = Vec::new();
    codec::explain(
        &set.as_set(),
        packet,
        Direction::Up,
        &Config::default(),
        |id, r| out.push((id, r)),
    );
    out
}

/// Rewrites the IPv6 and UDP lengths and the UDP checksum after the packet changed.
fn fix_lengths(p: &mut [u8]) {
    let udp = (p.len() - 40) as u16;
    p[4..6].copy_from_slice(&udp.to_be_bytes());
    p[44..46].copy_from_slice(&udp.to_be_bytes());
    p[46..48].copy_from_slice(&[0, 0]);
    let ck = udp_checksum(p);
    p[46..48].copy_from_slice(&ck.to_be_bytes());
}

const RULE: RuleId = RuleId::new(1, 8);

#[test]
fn the_anchor_packet_matches_with_12_bits_of_residue() {
    assert_eq!(explain(&hex(ANCHOR)), [(RULE, Ok(12))]);
}

#[test]
fn each_kind_of_mismatch_names_its_entry_and_bit() {
    // Hop limit 0x3f: equal fails at entry 5, bit 56.
    let mut p = hex(ANCHOR);
    p[7] = 0x3f;
    assert_eq!(
        explain(&p),
        [(
            RULE,
            Err(Mismatch::Value {
                entry: 5,
                fid: Fid::Ipv6HopLimit,
                bit: 56
            })
        )]
    );

    // A wrong UDP checksum: the compute action cannot rebuild it (entry 13, bit 368).
    let mut p = hex(ANCHOR);
    p[47] ^= 1;
    assert_eq!(
        explain(&p),
        [(
            RULE,
            Err(Mismatch::Action {
                entry: 13,
                fid: Fid::UdpChecksum,
                bit: 368
            })
        )]
    );

    // No CoAP message after UDP: the first CoAP entry finds no field.
    let mut p = hex(ANCHOR)[..48].to_vec();
    fix_lengths(&mut p);
    assert_eq!(
        explain(&p),
        [(
            RULE,
            Err(Mismatch::Absent {
                entry: 14,
                fid: Fid::CoapVersion,
                fp: 1
            })
        )]
    );

    // One more CoAP option (Uri-Query "a", delta 4 after Uri-Path): every entry matches, but
    // the packet has a field the rule does not describe.
    let a = hex(ANCHOR);
    let marker = a.iter().rposition(|&b| b == 0xff).unwrap();
    let mut p = a[..marker].to_vec();
    p.extend([0x41, b'a']);
    p.extend(&a[marker..]);
    fix_lengths(&mut p);
    let r = explain(&p);
    assert!(
        matches!(r[..], [(RULE, Err(Mismatch::Count { described, present }))] if present == described + 1),
        "{r:?}"
    );

    // A UDP datagram that is not IPv6 at all: no IPv6 version field.
    let r = explain(&hex(ANCHOR)[40..]);
    assert!(
        matches!(
            r[..],
            [(
                RULE,
                Err(Mismatch::Absent {
                    entry: 0,
                    fid: Fid::Ipv6Version,
                    ..
                })
            )]
        ),
        "{r:?}"
    );
}

#[test]
fn mismatches_read_as_sentences() {
    let m = Mismatch::Value {
        entry: 5,
        fid: Fid::Ipv6HopLimit,
        bit: 56,
    };
    assert_eq!(
        m.to_string(),
        "entry 5 (fid-ipv6-hoplimit): the value at bit 56 fails the matching operator"
    );
}
