//! The RFCs' worked compression examples (see tests/vectors/RFC-EXAMPLES.md for where each
//! number comes from and the errata involved).

mod common;
use common::{hex, to_hex};
use lpwan_schc::codec::{self, Config};
use lpwan_schc::rule::{
    Cda, Direction, DirectionIndicator as Di, Fid, FieldLength as Fl, FieldSpec, Layer,
    MatchingOperator as Mo, RuleId, RuleSetBuf,
};

fn fs(fid: Fid, fl: Fl, di: Di, tv: &[&[u8]], mo: Mo, cda: Cda) -> FieldSpec {
    FieldSpec {
        fid,
        fl,
        fp: 1,
        di,
        tv: tv.iter().map(|v| v.to_vec()).collect(),
        mo,
        cda,
    }
}

fn fixed(fid: Fid) -> Fl {
    Fl::Fixed(fid.fixed_len().unwrap())
}

/// equal/not-sent on a fixed header field.
fn eq(fid: Fid, di: Di, tv: &[u8]) -> FieldSpec {
    fs(fid, fixed(fid), di, &[tv], Mo::Equal, Cda::NotSent)
}

fn compute(fid: Fid) -> FieldSpec {
    fs(fid, fixed(fid), Di::Bi, &[], Mo::Ignore, Cda::Compute)
}

fn round_trip(
    set: &RuleSetBuf,
    packet: &[u8],
    dir: Direction,
    cfg: &Config,
) -> (RuleId, usize, String) {
    set.validate().unwrap();
    let rules = set.as_set();
    let mut out = vec![0u8; packet.len() + 32];
    let c = codec::compress(&rules, packet, dir, cfg, &mut out).unwrap();
    let mut back = vec![0u8; 1280];
    let d = codec::decompress(&rules, &out[..c.len], dir, cfg, &mut back).unwrap();
    assert_eq!(to_hex(&back[..d.len]), to_hex(packet), "round trip");
    (c.rule_id, c.bits, to_hex(&out[..c.len]))
}

const ALPHA: [u8; 8] = [0x20, 0x01, 0x0d, 0xb8, 0, 0x0a, 0, 0];
const BETA: [u8; 8] = [0x20, 0x01, 0x0d, 0xb8, 0, 0x01, 0, 0];
const DEV_IID: [u8; 8] = [0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55];
const APP_IID: [u8; 8] = [0, 0, 0, 0, 0, 0, 0x10, 0x00];

/// RFC 8724 Appendix A, Figure 26: the context with Rules 0 to 3.
fn figure26() -> RuleSetBuf {
    let ipv6_common = |hop: Vec<FieldSpec>, dev: FieldSpec, app: FieldSpec| {
        let mut v = vec![
            fs(
                Fid::Ipv6Version,
                Fl::Fixed(4),
                Di::Bi,
                &[&[6]],
                Mo::Ignore,
                Cda::NotSent,
            ),
            eq(Fid::Ipv6TrafficClass, Di::Bi, &[0]),
            eq(Fid::Ipv6FlowLabel, Di::Bi, &[0]),
            compute(Fid::Ipv6PayloadLength),
            eq(Fid::Ipv6NextHeader, Di::Bi, &[17]),
        ];
        v.extend(hop);
        v.push(dev);
        v.push(fs(
            Fid::Ipv6DevIid,
            Fl::Fixed(64),
            Di::Bi,
            &[],
            Mo::Ignore,
            Cda::DevIid,
        ));
        v.push(app);
        v.push(eq(Fid::Ipv6AppIid, Di::Bi, &APP_IID));
        v
    };
    let hl255 = || {
        vec![fs(
            Fid::Ipv6HopLimit,
            Fl::Fixed(8),
            Di::Bi,
            &[&[255]],
            Mo::Ignore,
            Cda::NotSent,
        )]
    };
    let udp = |ports: [FieldSpec; 2]| {
        let [a, b] = ports;
        vec![a, b, compute(Fid::UdpLength), compute(Fid::UdpChecksum)]
    };
    let mut set = RuleSetBuf::new();
    set.push_no_compression(RuleId::new(0, 8));
    // Rule 1: everything elided.
    let mut r1 = ipv6_common(
        hl255(),
        eq(Fid::Ipv6DevPrefix, Di::Bi, &ALPHA),
        eq(Fid::Ipv6AppPrefix, Di::Bi, &BETA),
    );
    r1.extend(udp([
        eq(Fid::UdpDevPort, Di::Bi, &[0x16, 0x33]),
        eq(Fid::UdpAppPort, Di::Bi, &[0x16, 0x33]),
    ]));
    set.push_compression(RuleId::new(1, 8), &r1).unwrap();
    // Rule 2: prefixes by mapping (2 and 3 values).
    let gamma = [0x20, 0x01, 0x0d, 0xb8, 0, 0x0c, 0, 0];
    let delta = [0x20, 0x01, 0x0d, 0xb8, 0, 0x0d, 0, 0];
    let mut r2 = ipv6_common(
        hl255(),
        fs(
            Fid::Ipv6DevPrefix,
            Fl::Fixed(64),
            Di::Bi,
            &[&ALPHA, &gamma],
            Mo::MatchMapping,
            Cda::MappingSent,
        ),
        fs(
            Fid::Ipv6AppPrefix,
            Fl::Fixed(64),
            Di::Bi,
            &[&BETA, &gamma, &delta],
            Mo::MatchMapping,
            Cda::MappingSent,
        ),
    );
    r2.extend(udp([
        eq(Fid::UdpDevPort, Di::Bi, &[0x16, 0x34]),
        eq(Fid::UdpAppPort, Di::Bi, &[0x16, 0x34]),
    ]));
    set.push_compression(RuleId::new(2, 8), &r2).unwrap();
    // Rule 3: hop limit by direction, ports MSB(12)/LSB around 8720.
    let mut r3 = ipv6_common(
        vec![
            fs(
                Fid::Ipv6HopLimit,
                Fl::Fixed(8),
                Di::Up,
                &[&[255]],
                Mo::Ignore,
                Cda::NotSent,
            ),
            fs(
                Fid::Ipv6HopLimit,
                Fl::Fixed(8),
                Di::Down,
                &[],
                Mo::Ignore,
                Cda::ValueSent,
            ),
        ],
        eq(Fid::Ipv6DevPrefix, Di::Bi, &ALPHA),
        eq(Fid::Ipv6AppPrefix, Di::Bi, &BETA),
    );
    r3.extend(udp([
        fs(
            Fid::UdpDevPort,
            Fl::Fixed(16),
            Di::Bi,
            &[&[0x22, 0x10]],
            Mo::Msb(12),
            Cda::Lsb,
        ),
        fs(
            Fid::UdpAppPort,
            Fl::Fixed(16),
            Di::Bi,
            &[&[0x22, 0x10]],
            Mo::Msb(12),
            Cda::Lsb,
        ),
    ]));
    set.push_compression(RuleId::new(3, 8), &r3).unwrap();
    set
}

/// An IPv6/UDP packet between the Figure 26 device and application.
fn fig26_packet(
    dir: Direction,
    hop: u8,
    dev_prefix: [u8; 8],
    app_prefix: [u8; 8],
    dev_port: u16,
    app_port: u16,
    payload: &[u8],
) -> Vec<u8> {
    let dev = [dev_prefix, DEV_IID].concat();
    let app = [app_prefix, APP_IID].concat();
    let (src, dst, sp, dp) = match dir {
        Direction::Up => (dev, app, dev_port, app_port),
        Direction::Down => (app, dev, app_port, dev_port),
    };
    let len = (8 + payload.len()) as u16;
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&[17, hop]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&sp.to_be_bytes());
    p.extend_from_slice(&dp.to_be_bytes());
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    let c = lpwan_schc::codec::udp_checksum(&p);
    p[46..48].copy_from_slice(&c.to_be_bytes());
    p
}

fn fig26_cfg() -> Config {
    Config {
        dev_iid: Some(DEV_IID),
        ..Config::default()
    }
}

/// V-8724-2: Rule 3 uplink, ports 8723/8725: residue `0011 0101` → `03 35` ‖ payload.
#[test]
fn rfc8724_figure26_rule3_uplink() {
    let set = figure26();
    let p = fig26_packet(Direction::Up, 255, ALPHA, BETA, 8723, 8725, b"hi");
    let (id, bits, got) = round_trip(&set, &p, Direction::Up, &fig26_cfg());
    assert_eq!(id, RuleId::new(3, 8));
    assert_eq!(bits, 16 + 16);
    assert_eq!(got, format!("0335{}", to_hex(b"hi")));
}

/// V-8724-2: the same flow downlink with Hop Limit 64: the Dw Hop Limit residue (8 bits) comes
/// before the ports in rule order → `03 40 35`; the Dev port is now the destination port.
#[test]
fn rfc8724_figure26_rule3_downlink() {
    let set = figure26();
    let p = fig26_packet(Direction::Down, 64, ALPHA, BETA, 8723, 8725, b"hi");
    let (id, bits, got) = round_trip(&set, &p, Direction::Down, &fig26_cfg());
    assert_eq!(id, RuleId::new(3, 8));
    assert_eq!(bits, 24 + 16);
    assert_eq!(got, format!("034035{}", to_hex(b"hi")));
}

/// V-8724-2: Rule 1 sends no residue; Rule 2 sends 1 + 2 bits of prefix indices.
#[test]
fn rfc8724_figure26_rules_1_and_2() {
    let set = figure26();
    let p = fig26_packet(Direction::Up, 255, ALPHA, BETA, 5683, 5683, b"x");
    let (id, bits, got) = round_trip(&set, &p, Direction::Up, &fig26_cfg());
    assert_eq!((id, bits, got), (RuleId::new(1, 8), 16, "0178".to_string()));
    let gamma = [0x20, 0x01, 0x0d, 0xb8, 0, 0x0c, 0, 0];
    let delta = [0x20, 0x01, 0x0d, 0xb8, 0, 0x0d, 0, 0];
    let p = fig26_packet(Direction::Up, 255, gamma, delta, 5684, 5684, b"x");
    let (id, bits, got) = round_trip(&set, &p, Direction::Up, &fig26_cfg());
    // index 1 (1 bit) and index 2 (2 bits): 1 10, then 'x' shifted by 3 bits.
    assert_eq!((id, bits), (RuleId::new(2, 8), 8 + 3 + 8));
    assert_eq!(got, "02cf00");
    // A packet with another hop limit still matches Rule 1 (ignore / not-sent), and is
    // rebuilt with 255: the RFC's lossy-by-design choice for this rule.
    let p = fig26_packet(Direction::Up, 7, ALPHA, BETA, 5683, 5683, b"x");
    let rules = set.as_set();
    let mut out = [0u8; 64];
    let c = codec::compress(&rules, &p, Direction::Up, &fig26_cfg(), &mut out).unwrap();
    assert_eq!(c.rule_id, RuleId::new(1, 8));
    let mut back = [0u8; 128];
    let d = codec::decompress(
        &rules,
        &out[..c.len],
        Direction::Up,
        &fig26_cfg(),
        &mut back,
    )
    .unwrap();
    assert_eq!(back[7], 255);
    assert_eq!(&back[8..d.len], &p[8..]);
    // Without the DevIID configured, nothing but no-compression matches.
    let c = codec::compress(
        &rules,
        &p,
        Direction::Up,
        &Config::default(),
        &mut [0u8; 128],
    )
    .unwrap();
    assert_eq!(c.rule_id, RuleId::new(0, 8));
}

/// The no-OSCORE CoAP rule of RFC 8824 §7 / draft-ietf-schc-8824-update (RuleID 2 in the
/// update), compressing a bare CoAP message. Erratum (present in both texts): the rule's Up
/// Code TV is printed as 2 (POST) although the GET has code 1; the printed bytes need TV 1.
fn no_oscore_rule() -> RuleSetBuf {
    let mut set = RuleSetBuf::new();
    let e = vec![
        eq(Fid::CoapVersion, Di::Bi, &[1]),
        eq(Fid::CoapType, Di::Up, &[0]),
        eq(Fid::CoapType, Di::Down, &[2]),
        eq(Fid::CoapTkl, Di::Bi, &[1]),
        eq(Fid::CoapCode, Di::Up, &[1]),
        fs(
            Fid::CoapCode,
            Fl::Fixed(8),
            Di::Down,
            &[&[69], &[132]],
            Mo::MatchMapping,
            Cda::MappingSent,
        ),
        fs(
            Fid::CoapMid,
            Fl::Fixed(16),
            Di::Bi,
            &[&[0, 0]],
            Mo::Msb(12),
            Cda::Lsb,
        ),
        fs(
            Fid::CoapToken,
            Fl::TokenLength,
            Di::Bi,
            &[&[0x80]],
            Mo::Msb(5),
            Cda::Lsb,
        ),
        fs(
            Fid::CoapOption(11),
            Fl::Variable,
            Di::Up,
            &[b"temperature"],
            Mo::Equal,
            Cda::NotSent,
        ),
    ];
    set.push_compression(RuleId::new(2, 8), &e).unwrap();
    set
}

fn coap_cfg() -> Config {
    Config {
        first_layer: Layer::Coap,
        ..Config::default()
    }
}

/// V-CO-6 (update column): GET `4101000182bb74656d7065726174757265` → `02 14`.
#[test]
fn rfc8824_no_oscore_get() {
    let set = no_oscore_rule();
    let get = hex("4101000182bb74656d7065726174757265");
    let (id, bits, got) = round_trip(&set, &get, Direction::Up, &coap_cfg());
    assert_eq!((id, bits, got.as_str()), (RuleId::new(2, 8), 15, "0214"));
}

/// V-CO-6 (update column): 2.05 response `6145000182ff32332043` → `02 0a 32 33 20 43`; the
/// payload marker is not sent and is restored.
#[test]
fn rfc8824_no_oscore_response() {
    let set = no_oscore_rule();
    let resp = hex("6145000182ff32332043");
    let (id, bits, got) = round_trip(&set, &resp, Direction::Down, &coap_cfg());
    assert_eq!(
        (id, bits, got.as_str()),
        (RuleId::new(2, 8), 48, "020a32332043")
    );
}

/// V-CO-7: the CORECONF example of RFC 8824 §5.3: `/c/X6?k="eth0"` with Uri-Path "c"
/// not-sent, a second Uri-Path value-sent and Uri-Query MSB(24)/LSB: the residue is
/// `0x2 X 6 0x5 eth0"` = `25 83 65 65 74 68 30 22`; the size prefix counts the LSB part only.
#[test]
fn rfc8824_coreconf_uri_path_and_query() {
    let mut set = RuleSetBuf::new();
    let mut path2 = fs(
        Fid::CoapOption(11),
        Fl::Variable,
        Di::Bi,
        &[],
        Mo::Ignore,
        Cda::ValueSent,
    );
    path2.fp = 2;
    let e = vec![
        eq(Fid::CoapVersion, Di::Bi, &[1]),
        eq(Fid::CoapType, Di::Bi, &[0]),
        eq(Fid::CoapTkl, Di::Bi, &[0]),
        eq(Fid::CoapCode, Di::Bi, &[1]),
        eq(Fid::CoapMid, Di::Bi, &[0, 7]),
        fs(
            Fid::CoapToken,
            Fl::TokenLength,
            Di::Bi,
            &[&[]],
            Mo::Equal,
            Cda::NotSent,
        ),
        fs(
            Fid::CoapOption(11),
            Fl::Variable,
            Di::Bi,
            &[b"c"],
            Mo::Equal,
            Cda::NotSent,
        ),
        path2,
        fs(
            Fid::CoapOption(15),
            Fl::Variable,
            Di::Bi,
            &[b"k=\""],
            Mo::Msb(24),
            Cda::Lsb,
        ),
    ];
    // A 0-bit rule ID: the set's only rule.
    set.push_compression(RuleId::new(0, 0), &e).unwrap();
    let mut msg = hex("40010007");
    msg.extend_from_slice(&[0xb1, b'c', 0x02, b'X', b'6', 0x48]);
    msg.extend_from_slice(b"k=\"eth0\"");
    let (id, bits, got) = round_trip(&set, &msg, Direction::Up, &coap_cfg());
    assert_eq!(id, RuleId::new(0, 0));
    assert_eq!(bits, 64);
    assert_eq!(got, "2583656574683022");
}

/// V-CO-2: the original CoAP messages of RFC 8824 §7.3 parse and rebuild byte for byte with
/// a rule that sends every field.
#[test]
fn rfc8824_original_messages_value_sent() {
    let mut set = RuleSetBuf::new();
    let vs = |fid: Fid| fs(fid, fixed(fid), Di::Bi, &[], Mo::Ignore, Cda::ValueSent);
    let mut e = vec![
        vs(Fid::CoapVersion),
        vs(Fid::CoapType),
        vs(Fid::CoapTkl),
        vs(Fid::CoapCode),
        vs(Fid::CoapMid),
    ];
    e.push(fs(
        Fid::CoapToken,
        Fl::TokenLength,
        Di::Bi,
        &[],
        Mo::Ignore,
        Cda::ValueSent,
    ));
    let mut uri = e.clone();
    uri.push(fs(
        Fid::CoapOption(11),
        Fl::Variable,
        Di::Bi,
        &[],
        Mo::Ignore,
        Cda::ValueSent,
    ));
    set.push_compression(RuleId::new(1, 2), &uri).unwrap();
    set.push_compression(RuleId::new(2, 2), &e).unwrap();
    let get = hex("4101000182bb74656d7065726174757265");
    let (id, bits, _) = round_trip(&set, &get, Direction::Up, &coap_cfg());
    // 2 + 2+2+4+8+16 + 8 (token) + 12 (size prefix 11 -> 4 bits) ... = header 40 bits + 4 + 88
    assert_eq!((id, bits), (RuleId::new(1, 2), 2 + 32 + 8 + 4 + 88));
    let resp = hex("6145000182ff32332043");
    let (id, bits, _) = round_trip(&set, &resp, Direction::Down, &coap_cfg());
    assert_eq!((id, bits), (RuleId::new(2, 2), 2 + 40 + 32));
}
