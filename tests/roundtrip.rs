//! Property tests: random IPv6/UDP/CoAP packets and random rules built to match them.
//! `decompress(compress(p)) == p`, the chosen rule is the one built for the packet, and the
//! SCHC packet has the length the rule implies.

use lpwan_schc::codec::{self, Config};
use lpwan_schc::rule::{
    Cda, Direction, DirectionIndicator as Di, Fid, FieldLength, FieldSpec, MatchingOperator as Mo,
    RuleId, RuleSetBuf,
};
use proptest::prelude::*;

mod common;

use common::coap_options;

/// One header field of a generated packet: its FID, position, bits and whether it is
/// byte-string valued (options).
#[derive(Debug, Clone)]
struct GenField {
    fid: Fid,
    fp: u8,
    /// Value bytes, right-aligned for numeric fields.
    value: Vec<u8>,
    /// Length in bits.
    bits: usize,
    /// Whether the field is variable-length (options).
    var: bool,
    /// Whether this is the token.
    token: bool,
    /// Whether a compute action reproduces it.
    computable: bool,
}

#[derive(Debug, Clone)]
struct Coap {
    ty: u8,
    code: u8,
    mid: u16,
    token: Vec<u8>,
    options: Vec<(u16, Vec<u8>)>,
}

#[derive(Debug, Clone)]
struct GenPacket {
    dir: Direction,
    tc: u8,
    flow: u32,
    nh_udp: bool,
    hl: u8,
    dev: [u8; 16],
    app: [u8; 16],
    ports: (u16, u16),
    coap: Option<Coap>,
    payload: Vec<u8>,
    bad_checksum: bool,
}

fn be(v: u64, bits: usize) -> Vec<u8> {
    let n = bits.div_ceil(8);
    v.to_be_bytes()[8 - n..].to_vec()
}

fn checksum(p: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from(c[0]) << 8
            };
            sum += u32::from(w);
        }
    };
    add(&p[8..40]);
    add(&p[44..46]);
    add(&[0, 17]);
    add(&p[40..46]);
    add(&p[48..]);
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    match !(sum as u16) {
        0 => 0xFFFF,
        c => c,
    }
}

impl GenPacket {
    fn bytes(&self) -> Vec<u8> {
        let mut udp_payload = Vec::new();
        if let Some(c) = &self.coap {
            udp_payload.push(0x40 | (c.ty << 4) | c.token.len() as u8);
            udp_payload.push(c.code);
            udp_payload.extend_from_slice(&c.mid.to_be_bytes());
            udp_payload.extend_from_slice(&c.token);
            udp_payload.extend(coap_options(&c.options));
            if !self.payload.is_empty() {
                udp_payload.push(0xFF);
            }
        }
        udp_payload.extend_from_slice(&self.payload);
        let (src, dst) = match self.dir {
            Direction::Up => (self.dev, self.app),
            Direction::Down => (self.app, self.dev),
        };
        let (sp, dp) = match self.dir {
            Direction::Up => self.ports,
            Direction::Down => (self.ports.1, self.ports.0),
        };
        let mut p = Vec::new();
        let first = 0x6000_0000u32 | (u32::from(self.tc) << 20) | self.flow;
        p.extend_from_slice(&first.to_be_bytes());
        let body_len = if self.nh_udp {
            8 + udp_payload.len()
        } else {
            udp_payload.len()
        };
        p.extend_from_slice(&(body_len as u16).to_be_bytes());
        p.push(if self.nh_udp { 17 } else { 59 });
        p.push(self.hl);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        if self.nh_udp {
            p.extend_from_slice(&sp.to_be_bytes());
            p.extend_from_slice(&dp.to_be_bytes());
            p.extend_from_slice(&(body_len as u16).to_be_bytes());
            p.extend_from_slice(&[0, 0]);
            p.extend_from_slice(&udp_payload);
            let c = checksum(&p);
            let c = if self.bad_checksum { c ^ 0x0101 } else { c };
            p[46..48].copy_from_slice(&c.to_be_bytes());
        } else {
            p.extend_from_slice(&udp_payload);
        }
        p
    }

    /// The fields of the packet as SCHC sees them, in layer order.
    fn fields(&self) -> Vec<GenField> {
        let bytes = self.bytes();
        let f = |fid, value: Vec<u8>, bits, computable| GenField {
            fid,
            fp: 1,
            value,
            bits,
            var: false,
            token: false,
            computable,
        };
        let plen = u64::from(u16::from_be_bytes([bytes[4], bytes[5]]));
        let mut v = vec![
            f(Fid::Ipv6Version, vec![6], 4, false),
            f(Fid::Ipv6TrafficClass, vec![self.tc], 8, false),
            f(Fid::Ipv6FlowLabel, be(u64::from(self.flow), 20), 20, false),
            f(Fid::Ipv6PayloadLength, be(plen, 16), 16, true),
            f(Fid::Ipv6NextHeader, vec![bytes[6]], 8, false),
            f(Fid::Ipv6HopLimit, vec![self.hl], 8, false),
            f(Fid::Ipv6DevPrefix, self.dev[..8].to_vec(), 64, false),
            f(Fid::Ipv6DevIid, self.dev[8..].to_vec(), 64, false),
            f(Fid::Ipv6AppPrefix, self.app[..8].to_vec(), 64, false),
            f(Fid::Ipv6AppIid, self.app[8..].to_vec(), 64, false),
        ];
        if !self.nh_udp {
            return v;
        }
        v.extend([
            f(Fid::UdpDevPort, be(u64::from(self.ports.0), 16), 16, false),
            f(Fid::UdpAppPort, be(u64::from(self.ports.1), 16), 16, false),
            f(Fid::UdpLength, bytes[44..46].to_vec(), 16, true),
            f(
                Fid::UdpChecksum,
                bytes[46..48].to_vec(),
                16,
                !self.bad_checksum,
            ),
        ]);
        if let Some(c) = &self.coap {
            v.extend([
                f(Fid::CoapVersion, vec![1], 2, false),
                f(Fid::CoapType, vec![c.ty], 2, false),
                f(Fid::CoapTkl, vec![c.token.len() as u8], 4, false),
                f(Fid::CoapCode, vec![c.code], 8, false),
                f(Fid::CoapMid, c.mid.to_be_bytes().to_vec(), 16, false),
            ]);
            v.push(GenField {
                fid: Fid::CoapToken,
                fp: 1,
                value: c.token.clone(),
                bits: c.token.len() * 8,
                var: false,
                token: true,
                computable: false,
            });
            let mut last = (u16::MAX, 0u8);
            for (n, val) in &c.options {
                let fp = if last.0 == *n { last.1 + 1 } else { 1 };
                last = (*n, fp);
                v.push(GenField {
                    fid: Fid::CoapOption(*n),
                    fp,
                    value: val.clone(),
                    bits: val.len() * 8,
                    var: true,
                    token: false,
                    computable: false,
                });
            }
        }
        v
    }
}

fn coap_strategy() -> impl Strategy<Value = Coap> {
    (
        0u8..4,
        any::<u8>(),
        any::<u16>(),
        prop::collection::vec(any::<u8>(), 0..=8),
        prop::collection::vec(
            (
                prop_oneof![
                    Just(1u16),
                    Just(6),
                    Just(11),
                    Just(12),
                    Just(15),
                    Just(60),
                    Just(258),
                    Just(2049)
                ],
                prop_oneof![
                    4 => prop::collection::vec(any::<u8>(), 0..16),
                    1 => prop::collection::vec(any::<u8>(), 250..300),
                ],
            ),
            0..6,
        ),
    )
        .prop_map(|(ty, code, mid, token, mut options)| {
            options.sort_by_key(|o| o.0);
            Coap {
                ty,
                code,
                mid,
                token,
                options,
            }
        })
}

fn packet_strategy() -> impl Strategy<Value = GenPacket> {
    (
        prop_oneof![Just(Direction::Up), Just(Direction::Down)],
        any::<u8>(),
        0u32..(1 << 20),
        prop::bool::weighted(0.9),
        any::<u8>(),
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        any::<(u16, u16)>(),
        prop::option::weighted(0.7, coap_strategy()),
        prop::collection::vec(any::<u8>(), 0..40),
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |(dir, tc, flow, nh_udp, hl, dev, app, ports, coap, payload, bad_checksum)| GenPacket {
                dir,
                tc,
                flow,
                nh_udp,
                hl,
                dev,
                app,
                ports,
                coap: if nh_udp { coap } else { None },
                payload,
                bad_checksum,
            },
        )
}

/// Sets `tv` to `value` with some low bits changed below the first `x` bits.
fn perturb_low(value: &[u8], bits: usize, x: usize, noise: u64) -> Vec<u8> {
    let mut out = value.to_vec();
    let total = out.len() * 8;
    let lead = total - bits; // leading zero bits of a right-aligned value
    for i in (lead + x)..total {
        if (noise >> (i % 64)) & 1 == 1 {
            out[i / 8] ^= 0x80 >> (i % 8);
        }
    }
    out
}

/// Builds a descriptor matching `f` from random choices.
fn descriptor(f: &GenField, dir: Direction, choice: u64, noise: u64, direct: bool) -> FieldSpec {
    let di = if direct {
        match dir {
            Direction::Up => Di::Up,
            Direction::Down => Di::Down,
        }
    } else {
        Di::Bi
    };
    let fl = if f.token {
        if choice & 0x100 != 0 {
            FieldLength::Fixed(f.bits as u16)
        } else {
            FieldLength::TokenLength
        }
    } else if f.var {
        if choice & 0x100 != 0 && f.bits > 0 {
            FieldLength::Fixed(f.bits as u16)
        } else {
            FieldLength::Variable
        }
    } else {
        FieldLength::Fixed(f.bits as u16)
    };
    let spec = |tv: Vec<Vec<u8>>, mo, cda| FieldSpec {
        fid: f.fid,
        fl,
        fp: f.fp,
        di,
        tv,
        mo,
        cda,
    };
    let kind = if f.computable && choice % 6 == 5 {
        5
    } else {
        choice % 5
    };
    match kind {
        0 => spec(vec![f.value.clone()], Mo::Equal, Cda::NotSent),
        1 => spec(vec![], Mo::Ignore, Cda::ValueSent),
        2 => {
            // MSB(x)/LSB; x a multiple of 8 for variable-length fields.
            let mut x = (noise as usize >> 7) % (f.bits + 1);
            if fl == FieldLength::Variable {
                x -= x % 8;
            }
            let tv = if fl == FieldLength::Variable {
                let mut t = f.value[..x / 8].to_vec();
                t.extend(std::iter::repeat_n(0x5A, (noise % 3) as usize));
                t
            } else {
                perturb_low(&f.value, f.bits, x, noise)
            };
            spec(vec![tv], Mo::Msb(x as u16), Cda::Lsb)
        }
        3 => {
            // match-mapping with the value at a random index among decoys.
            let n = 1 + (noise % 6) as usize;
            let at = (noise as usize >> 3) % n;
            let list = (0..n)
                .map(|i| {
                    if i == at {
                        f.value.clone()
                    } else if fl == FieldLength::Variable {
                        let mut d = f.value.clone();
                        d.push(i as u8);
                        d
                    } else {
                        // A different value of the same width (flip the lowest bit, and more).
                        let mut d = f.value.clone();
                        if let Some(last) = d.last_mut() {
                            *last ^=
                                (i as u8 + 1) & if f.bits < 8 { (1 << f.bits) - 1 } else { 0xFF };
                        }
                        d
                    }
                })
                .collect::<Vec<_>>();
            // Decoys equal to the value (possible for 1-bit fields) would change the index:
            // keep the first occurrence semantics by deduplicating.
            let mut uniq: Vec<Vec<u8>> = Vec::new();
            for v in list {
                if !uniq.contains(&v) {
                    uniq.push(v);
                }
            }
            spec(uniq, Mo::MatchMapping, Cda::MappingSent)
        }
        4 => spec(vec![], Mo::Ignore, Cda::ValueSent),
        _ => spec(vec![], Mo::Ignore, Cda::Compute),
    }
}

fn rule_strategy() -> impl Strategy<Value = (GenPacket, Vec<u64>, Vec<u64>, u8, u32, u16, u8)> {
    (
        packet_strategy(),
        prop::collection::vec(any::<u64>(), 40),
        prop::collection::vec(any::<u64>(), 40),
        1u8..=32,
        any::<u32>(),
        any::<u16>(),
        1u8..=3,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, .. ProptestConfig::default() })]

    #[test]
    fn decompress_of_compress_is_identity((p, choices, noise, id_len, id_raw, shuffle, depth) in rule_strategy()) {
        let bytes = p.bytes();
        let mut fields = p.fields();
        // Cover 1 to 3 layers (as far as the packet has them); the rest is payload.
        let layer_of = |fid: Fid| fid.layer() as u8;
        fields.retain(|f| layer_of(f.fid) <= depth);
        let mut entries: Vec<FieldSpec> = fields
            .iter()
            .enumerate()
            .map(|(i, f)| descriptor(f, p.dir, choices[i % 40], noise[i % 40], (choices[(i + 7) % 40] % 4 == 0 && !matches!(f.fid, Fid::CoapTkl | Fid::CoapToken)) || f.fid == Fid::Ipv6HopLimit))
            .collect();
        // A descriptor for the other direction that must be ignored.
        let other = match p.dir { Direction::Up => Di::Down, Direction::Down => Di::Up };
        entries.push(FieldSpec {
            fid: Fid::Ipv6HopLimit, fl: FieldLength::Fixed(8), fp: 1, di: other,
            tv: vec![vec![p.hl.wrapping_add(1)]], mo: Mo::Equal, cda: Cda::NotSent,
        });
        // Shuffle the rule order (residues follow it), keeping TKL before the token.
        let n = entries.len();
        for i in 0..n {
            let j = (usize::from(shuffle) * 31 + i * 17) % n;
            entries.swap(i, j);
        }
        let tkl = entries.iter().position(|e| e.fid == Fid::CoapTkl);
        let tok = entries.iter().position(|e| e.fid == Fid::CoapToken);
        if let (Some(a), Some(b)) = (tkl, tok) {
            if b < a { entries.swap(a, b); }
        }
        let id = RuleId::new(if id_len == 32 { id_raw } else { id_raw & ((1 << id_len) - 1) }, id_len);
        // The no-compression rule: the other branch of the first bit.
        let nc = RuleId::new(u32::from((id.value >> (id_len - 1)) & 1 == 0), 1);
        let mut set = RuleSetBuf::new();
        set.push_compression(id, &entries).unwrap();
        set.push_no_compression(nc);
        set.validate().unwrap();
        let rules = set.as_set();
        let cfg = Config { max_packet_size: 4096, ..Config::default() };
        let mut out = vec![0u8; bytes.len() * 2 + 64];
        let c = codec::compress(&rules, &bytes, p.dir, &cfg, &mut out).unwrap();
        prop_assert_eq!(c.rule_id, id, "the rule built for the packet must match");
        let mut back = vec![0u8; 4096];
        let d = codec::decompress(&rules, &out[..c.len], p.dir, &cfg, &mut back).unwrap();
        prop_assert_eq!(d.rule_id, id);
        prop_assert_eq!(&back[..d.len], &bytes[..]);
    }

    #[test]
    fn no_compression_fallback_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..200), id_len in 0u8..=32, id_raw in any::<u32>(), down in any::<bool>()) {
        let id = RuleId::new(if id_len == 32 { id_raw } else { id_raw & ((1u32 << id_len) - 1) }, id_len);
        let mut set = RuleSetBuf::new();
        set.push_no_compression(id);
        let rules = set.as_set();
        let dir = if down { Direction::Down } else { Direction::Up };
        let mut out = vec![0u8; 256];
        let c = codec::compress(&rules, &bytes, dir, &Config::default(), &mut out).unwrap();
        prop_assert_eq!(c.bits, id_len as usize + bytes.len() * 8);
        let mut back = vec![0u8; 1280];
        let d = codec::decompress(&rules, &out[..c.len], dir, &Config::default(), &mut back).unwrap();
        prop_assert_eq!(&back[..d.len], &bytes[..]);
    }

    #[test]
    fn decompress_never_panics_on_garbage(bytes in prop::collection::vec(any::<u8>(), 0..120), (p, choices, noise, _l, _r, _s, _d) in rule_strategy()) {
        // Any input against a real rule: an error or a packet, never a panic or overrun.
        let fields = p.fields();
        let entries: Vec<FieldSpec> = fields.iter().enumerate()
            .map(|(i, f)| descriptor(f, p.dir, choices[i % 40], noise[i % 40], false)).collect();
        let mut set = RuleSetBuf::new();
        set.push_compression(RuleId::new(1, 2), &entries).unwrap();
        set.push_no_compression(RuleId::new(0, 2));
        let rules = set.as_set();
        let mut back = vec![0u8; 300];
        let cfg = Config { max_packet_size: 300, ..Config::default() };
        if let Ok(d) = codec::decompress(&rules, &bytes, p.dir, &cfg, &mut back) {
            prop_assert!(d.len <= 300);
        }
    }
}
