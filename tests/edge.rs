//! Edge cases of the bit layout and of the codec's contract: 0- and 32-bit rule IDs, the
//! 28-bit size prefix, L2 word padding, rule choice, buffer and size limits.

use lpwan_schc::codec::{self, CompressError, Config, DecompressError};
use lpwan_schc::rule::{
    Cda, Direction, DirectionIndicator as Di, Fid, FieldLength as Fl, FieldSpec,
    MatchingOperator as Mo, RuleId, RuleSetBuf,
};

fn fs(fid: Fid, fl: Fl, tv: &[&[u8]], mo: Mo, cda: Cda) -> FieldSpec {
    FieldSpec {
        fid,
        fl,
        fp: 1,
        di: Di::Bi,
        tv: tv.iter().map(|v| v.to_vec()).collect(),
        mo,
        cda,
    }
}

/// IPv6/UDP/CoAP GET with one Uri-Query of `query_len` bytes, uplink.
fn packet(query_len: usize) -> Vec<u8> {
    let mut coap = vec![0x40, 0x01, 0x12, 0x34];
    if query_len > 0 {
        // Option 15: delta 15 (13-form), length in the 13/14-form as needed.
        let (ln, lx): (u8, Vec<u8>) = match query_len {
            0..=12 => (query_len as u8, vec![]),
            13..=268 => (13, vec![(query_len - 13) as u8]),
            _ => (14, ((query_len - 269) as u16).to_be_bytes().to_vec()),
        };
        coap.push(0xD0 | ln);
        coap.push(2);
        coap.extend(lx);
        coap.extend(std::iter::repeat_n(b'q', query_len));
    }
    let len = (8 + coap.len()) as u16;
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&[17, 64]);
    p.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    p.extend_from_slice(&[0x16, 0x33, 0x16, 0x33]);
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend(coap);
    let c = codec::udp_checksum(&p);
    p[46..48].copy_from_slice(&c.to_be_bytes());
    p
}

/// Every IPv6/UDP field equal/not-sent (lengths and checksum computed) for [`packet`].
fn ipv6_udp(p: &[u8]) -> Vec<FieldSpec> {
    let eq = |fid: Fid, tv: &[u8]| {
        fs(
            fid,
            Fl::Fixed(fid.fixed_len().unwrap()),
            &[tv],
            Mo::Equal,
            Cda::NotSent,
        )
    };
    let comp = |fid: Fid| fs(fid, Fl::Fixed(16), &[], Mo::Ignore, Cda::Compute);
    vec![
        eq(Fid::Ipv6Version, &[6]),
        eq(Fid::Ipv6TrafficClass, &[0]),
        eq(Fid::Ipv6FlowLabel, &[0]),
        comp(Fid::Ipv6PayloadLength),
        eq(Fid::Ipv6NextHeader, &[17]),
        eq(Fid::Ipv6HopLimit, &[64]),
        eq(Fid::Ipv6DevPrefix, &p[8..16]),
        eq(Fid::Ipv6DevIid, &p[16..24]),
        eq(Fid::Ipv6AppPrefix, &p[24..32]),
        eq(Fid::Ipv6AppIid, &p[32..40]),
        eq(Fid::UdpDevPort, &p[40..42]),
        eq(Fid::UdpAppPort, &p[42..44]),
        comp(Fid::UdpLength),
        comp(Fid::UdpChecksum),
    ]
}

fn coap_header(query: Option<FieldSpec>) -> Vec<FieldSpec> {
    let eq = |fid: Fid, tv: &[u8]| {
        fs(
            fid,
            Fl::Fixed(fid.fixed_len().unwrap()),
            &[tv],
            Mo::Equal,
            Cda::NotSent,
        )
    };
    let mut v = vec![
        eq(Fid::CoapVersion, &[1]),
        eq(Fid::CoapType, &[0]),
        eq(Fid::CoapTkl, &[0]),
        eq(Fid::CoapCode, &[1]),
        fs(Fid::CoapMid, Fl::Fixed(16), &[], Mo::Ignore, Cda::ValueSent),
        fs(
            Fid::CoapToken,
            Fl::TokenLength,
            &[&[]],
            Mo::Equal,
            Cda::NotSent,
        ),
    ];
    v.extend(query);
    v
}

fn run(set: &RuleSetBuf, p: &[u8], cfg: &Config) -> codec::Compressed {
    set.validate().unwrap();
    let rules = set.as_set();
    let mut out = vec![0u8; p.len() + 64];
    let c = codec::compress(&rules, p, Direction::Up, cfg, &mut out).unwrap();
    let mut back = vec![0u8; 4096];
    let cfg2 = Config {
        max_packet_size: 4096,
        ..*cfg
    };
    // Whole bytes carry at most 7 padding bits; with a wider L2 word the receiver passes the
    // exact length (documented on Config::l2_word).
    let d = if cfg.l2_word > 8 {
        codec::decompress_bits(
            &rules,
            &out[..c.len],
            c.bits,
            Direction::Up,
            &cfg2,
            &mut back,
        )
    } else {
        codec::decompress(&rules, &out[..c.len], Direction::Up, &cfg2, &mut back)
    }
    .unwrap();
    assert_eq!(&back[..d.len], p);
    c
}

#[test]
fn rule_id_of_32_bits() {
    let p = packet(0);
    let mut set = RuleSetBuf::new();
    let mut e = ipv6_udp(&p);
    e.extend(coap_header(None));
    set.push_compression(RuleId::new(0xDEAD_BEEF, 32), &e)
        .unwrap();
    let c = run(&set, &p, &Config::default());
    assert_eq!(c.rule_id, RuleId::new(0xDEAD_BEEF, 32));
    assert_eq!(c.bits, 32 + 16);
}

#[test]
fn rule_id_of_0_bits_is_the_only_rule() {
    let p = packet(3);
    let mut set = RuleSetBuf::new();
    set.push_compression(RuleId::new(0, 0), &ipv6_udp(&p))
        .unwrap();
    let c = run(&set, &p, &Config::default());
    // Nothing but the UDP payload, byte aligned.
    assert_eq!(c.bits, (p.len() - 48) * 8);
    // A second rule would not be prefix-free.
    set.push_no_compression(RuleId::new(1, 1));
    assert!(set.validate().is_err());
}

#[test]
fn size_prefixes_of_4_12_and_28_bits() {
    for (n, prefix) in [(14usize, 4usize), (15, 12), (254, 12), (255, 28), (300, 28)] {
        let p = packet(n);
        let mut set = RuleSetBuf::new();
        let mut e = ipv6_udp(&p);
        e.extend(coap_header(Some(fs(
            Fid::CoapOption(15),
            Fl::Variable,
            &[],
            Mo::Ignore,
            Cda::ValueSent,
        ))));
        set.push_compression(RuleId::new(5, 3), &e).unwrap();
        let c = run(&set, &p, &Config::default());
        assert_eq!(c.bits, 3 + 16 + prefix + n * 8, "query of {n} bytes");
    }
}

#[test]
fn padding_follows_the_l2_word() {
    let p = packet(0);
    let mut set = RuleSetBuf::new();
    let mut e = ipv6_udp(&p);
    e.extend(coap_header(None));
    set.push_compression(RuleId::new(5, 3), &e).unwrap();
    for (word, len) in [(1u8, 3usize), (8, 3), (16, 4), (32, 4)] {
        let cfg = Config {
            l2_word: word,
            ..Config::default()
        };
        let c = run(&set, &p, &cfg);
        assert_eq!(c.bits, 19);
        assert_eq!(c.len, len, "L2 word {word}");
    }
}

#[test]
fn shortest_rule_wins_and_ties_go_to_the_first() {
    let p = packet(4);
    let mut long = ipv6_udp(&p);
    long.extend(coap_header(Some(fs(
        Fid::CoapOption(15),
        Fl::Variable,
        &[],
        Mo::Ignore,
        Cda::ValueSent,
    ))));
    let mut short = ipv6_udp(&p);
    short.extend(coap_header(Some(fs(
        Fid::CoapOption(15),
        Fl::Variable,
        &[b"qqqq"],
        Mo::Equal,
        Cda::NotSent,
    ))));
    let mut set = RuleSetBuf::new();
    set.push_compression(RuleId::new(1, 4), &long).unwrap();
    set.push_compression(RuleId::new(2, 4), &short).unwrap();
    set.push_compression(RuleId::new(3, 4), &short).unwrap();
    let c = run(&set, &p, &Config::default());
    assert_eq!(c.rule_id, RuleId::new(2, 4));
    assert_eq!(c.bits, 4 + 16);
    // A rule that covers only IPv6+UDP is longer here (the CoAP bytes ride as payload).
    let mut set = RuleSetBuf::new();
    set.push_compression(RuleId::new(1, 4), &ipv6_udp(&p))
        .unwrap();
    set.push_compression(RuleId::new(2, 4), &short).unwrap();
    assert_eq!(run(&set, &p, &Config::default()).rule_id, RuleId::new(2, 4));
}

#[test]
fn buffer_and_size_limits_are_typed_errors() {
    let p = packet(10);
    let mut set = RuleSetBuf::new();
    set.push_no_compression(RuleId::new(0, 1));
    let rules = set.as_set();
    let mut small = [0u8; 10];
    assert_eq!(
        codec::compress(&rules, &p, Direction::Up, &Config::default(), &mut small),
        Err(CompressError::BufferTooSmall {
            needed: p.len() + 1,
            capacity: 10
        })
    );
    let mut out = vec![0u8; 200];
    let c = codec::compress(&rules, &p, Direction::Up, &Config::default(), &mut out).unwrap();
    let cfg = Config {
        max_packet_size: 40,
        ..Config::default()
    };
    let mut back = [0u8; 1280];
    assert!(matches!(
        codec::decompress(&rules, &out[..c.len], Direction::Up, &cfg, &mut back),
        Err(DecompressError::TooLong { limit: 40, .. })
    ));
    // The output buffer is a limit too.
    let mut tiny = [0u8; 12];
    assert!(matches!(
        codec::decompress(
            &rules,
            &out[..c.len],
            Direction::Up,
            &Config::default(),
            &mut tiny
        ),
        Err(DecompressError::TooLong { limit: 12, .. })
    ));
    // No rule at all.
    let empty = RuleSetBuf::new();
    assert_eq!(
        codec::compress(
            &empty.as_set(),
            &p,
            Direction::Up,
            &Config::default(),
            &mut out
        ),
        Err(CompressError::NoMatch)
    );
    assert_eq!(
        codec::decompress(
            &empty.as_set(),
            &[0xFF],
            Direction::Up,
            &Config::default(),
            &mut back
        ),
        Err(DecompressError::UnknownRuleId)
    );
}

#[test]
fn a_packet_with_a_field_the_rule_lacks_does_not_match() {
    // The rule has no Uri-Query descriptor: the packet with one falls back.
    let p = packet(2);
    let mut e = ipv6_udp(&p);
    e.extend(coap_header(None));
    let mut set = RuleSetBuf::new();
    set.push_compression(RuleId::new(1, 2), &e).unwrap();
    set.push_no_compression(RuleId::new(0, 2));
    assert_eq!(run(&set, &p, &Config::default()).rule_id, RuleId::new(0, 2));
    // And a packet without the option a rule describes does not match either.
    let q = packet(0);
    let mut e = ipv6_udp(&q);
    e.extend(coap_header(Some(fs(
        Fid::CoapOption(15),
        Fl::Variable,
        &[],
        Mo::Ignore,
        Cda::ValueSent,
    ))));
    let mut set = RuleSetBuf::new();
    set.push_compression(RuleId::new(1, 2), &e).unwrap();
    set.push_no_compression(RuleId::new(0, 2));
    assert_eq!(run(&set, &q, &Config::default()).rule_id, RuleId::new(0, 2));
}
