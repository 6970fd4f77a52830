//! Adversarial property tests: hostile rule tables, packets, SCHC packets and rule files.
//!
//! 1. Arbitrary (mostly invalid) rule tables wrapped with `RuleSet::new_unchecked`: `validate`,
//!    `compress` and `decompress`/`decompress_bits` with arbitrary configurations and buffers
//!    never panic, and what they write stays inside the caller's buffer and limits.
//! 2. Random rule sets that `validate()` accepts, built around a packet: whenever compression
//!    succeeds with a rule that has no `ignore`+`not-sent` descriptor, decompression gives back
//!    the packet byte for byte.
//! 3. `json::from_str` on arbitrary strings and on mutated shipped rule files: no panic, and
//!    what it accepts writes back to the same set.
//! 4. The CoAP parser on arbitrary UDP payloads: field references stay inside the packet, the
//!    parsed message re-encodes to the same bytes, and a rule built from it round-trips.
//!
//! Case counts are modest for CI; `PROPTEST_CASES=20000 cargo test --test hostile` runs each
//! property that many times. The deterministic tests at the end reproduce the bugs these
//! properties found.

mod common;

use std::cell::Cell;
use std::fmt::Debug;

use lpwan_schc::bits::get_bits;
use lpwan_schc::codec::{self, CompressError, Config, DecompressError};
use lpwan_schc::packet::{Headers, MAX_OPTIONS};
use lpwan_schc::rule::{
    AckBehavior, BitmapFormat, Cda, Direction, DirectionIndicator as Di, EntryError, Fid,
    FieldDesc, FieldLength as Fl, FieldSpec, FragMode, FragParams, Layer, MatchingOperator as Mo,
    Nature, RcsAlgorithm, Rule, RuleError, RuleId, RuleSet, RuleSetBuf, Span, TileInAll1, Timer,
    ValueRef, HEADER_FIELDS,
};
use lpwan_schc::{export, json};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config as PtConfig, TestCaseError, TestRunner};
use serde_json::Value;

use common::{coap_options, hex};

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

/// Runs `test` on `default_cases` inputs (or `PROPTEST_CASES`), panicking with the shrunk
/// input on failure. A runner rather than `proptest!` so that each property can report how
/// many cases reached the interesting paths (`--nocapture`) and fail when too few do. Failures
/// are not persisted: each bug found gets a deterministic test at the end of this file.
fn run<S>(
    name: &str,
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S: Strategy,
    S::Value: Debug,
{
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_cases);
    let mut runner = TestRunner::new(PtConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..PtConfig::default()
    });
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{name}: {e}");
    }
}

/// Named counters, printed after a property ran (visible with `--nocapture`).
#[derive(Default)]
struct Stats(Vec<(&'static str, Cell<u64>)>);

impl Stats {
    fn new(names: &[&'static str]) -> Self {
        Stats(names.iter().map(|n| (*n, Cell::new(0))).collect())
    }
    fn hit(&self, name: &str) {
        if let Some((_, c)) = self.0.iter().find(|(n, _)| *n == name) {
            c.set(c.get() + 1);
        }
    }
    fn get(&self, name: &str) -> u64 {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, c)| c.get())
    }
    fn print(&self, title: &str) {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(n, c)| format!("{n}={}", c.get()))
            .collect();
        eprintln!("{title}: {}", parts.join(" "));
    }
}

fn cases_scaled() -> bool {
    std::env::var("PROPTEST_CASES").is_err()
}

// ---------------------------------------------------------------------------------------------
// Packets
// ---------------------------------------------------------------------------------------------

/// A well-formed CoAP message (options sorted; more than 32 options now and then).
#[derive(Debug, Clone)]
struct Coap {
    ver: u8,
    ty: u8,
    code: u8,
    mid: u16,
    token: Vec<u8>,
    options: Vec<(u16, Vec<u8>)>,
    payload: Vec<u8>,
}

impl Coap {
    fn bytes(&self) -> Vec<u8> {
        let mut m = vec![
            (self.ver << 6) | (self.ty << 4) | self.token.len() as u8,
            self.code,
        ];
        m.extend_from_slice(&self.mid.to_be_bytes());
        m.extend_from_slice(&self.token);
        m.extend(coap_options(&self.options));
        if !self.payload.is_empty() {
            m.push(0xFF);
            m.extend_from_slice(&self.payload);
        }
        m
    }
}

fn option_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => prop::collection::vec(any::<u8>(), 0..10),
        1 => prop::collection::vec(any::<u8>(), 11..16),
        1 => prop_oneof![Just(12usize), Just(13), Just(268), Just(269), Just(270)]
            .prop_flat_map(|n| prop::collection::vec(any::<u8>(), n)),
    ]
}

fn coap_strategy() -> impl Strategy<Value = Coap> {
    let number = prop_oneof![
        Just(0u16),
        Just(1),
        Just(4),
        Just(6),
        Just(11),
        Just(12),
        Just(15),
        Just(60),
        Just(258),
        Just(2049),
        Just(65535),
        any::<u16>(),
    ];
    let options = prop_oneof![
        10 => prop::collection::vec((number.clone(), option_value()), 0..6),
        1 => prop::collection::vec((number, prop::collection::vec(any::<u8>(), 0..2)), 30..36),
    ];
    (
        prop_oneof![8 => Just(1u8), 1 => 0u8..4],
        0u8..4,
        any::<u8>(),
        any::<u16>(),
        prop::collection::vec(any::<u8>(), 0..=8),
        options,
        prop_oneof![Just(vec![]), prop::collection::vec(any::<u8>(), 1..24)],
    )
        .prop_map(|(ver, ty, code, mid, token, mut options, payload)| {
            options.sort_by_key(|o| o.0);
            Coap {
                ver,
                ty,
                code,
                mid,
                token,
                options,
                payload,
            }
        })
}

/// UDP payloads: CoAP, damaged CoAP, and noise.
fn udp_payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        5 => coap_strategy().prop_map(|c| c.bytes()),
        3 => (coap_strategy(), prop::collection::vec((any::<Index>(), any::<u8>()), 1..4)).prop_map(
            |(c, edits)| {
                let mut b = c.bytes();
                for (i, v) in edits {
                    if !b.is_empty() {
                        let at = i.index(b.len());
                        b[at] = v;
                    }
                }
                b
            }
        ),
        1 => (coap_strategy(), any::<Index>()).prop_map(|(c, i)| {
            let mut b = c.bytes();
            let n = i.index(b.len() + 1);
            b.truncate(n);
            b
        }),
        1 => (coap_strategy(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(c, tail)| [c.bytes(), tail].concat()),
        2 => prop::collection::vec(any::<u8>(), 0..64),
        1 => Just(vec![]),
    ]
}

#[derive(Debug, Clone)]
struct Pkt {
    dir: Direction,
    tc: u8,
    flow: u32,
    hl: u8,
    dev: [u8; 16],
    app: [u8; 16],
    /// Next Header: 17 (UDP) or something else.
    udp: bool,
    ports: (u16, u16),
    payload: Vec<u8>,
    /// Damage to the IPv6 payload length, UDP length or checksum (0 = none).
    damage: u8,
}

impl Pkt {
    fn bytes(&self) -> Vec<u8> {
        let (src, dst) = match self.dir {
            Direction::Up => (self.dev, self.app),
            Direction::Down => (self.app, self.dev),
        };
        let (sp, dp) = match self.dir {
            Direction::Up => self.ports,
            Direction::Down => (self.ports.1, self.ports.0),
        };
        let body = if self.udp {
            8 + self.payload.len()
        } else {
            self.payload.len()
        };
        let mut p = Vec::with_capacity(40 + body);
        let first = 0x6000_0000u32 | (u32::from(self.tc) << 20) | (self.flow & 0xF_FFFF);
        p.extend_from_slice(&first.to_be_bytes());
        p.extend_from_slice(&(body as u16).to_be_bytes());
        p.push(if self.udp { 17 } else { 59 });
        p.push(self.hl);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        if self.udp {
            p.extend_from_slice(&sp.to_be_bytes());
            p.extend_from_slice(&dp.to_be_bytes());
            p.extend_from_slice(&(body as u16).to_be_bytes());
            p.extend_from_slice(&[0, 0]);
        }
        p.extend_from_slice(&self.payload);
        if self.udp {
            let c = codec::udp_checksum(&p);
            p[46..48].copy_from_slice(&c.to_be_bytes());
        }
        match self.damage {
            1 => p[5] ^= 1,
            2 if self.udp => p[45] ^= 2,
            3 if self.udp => p[47] ^= 4,
            _ => {}
        }
        p
    }
}

fn dir_strategy() -> impl Strategy<Value = Direction> {
    prop_oneof![Just(Direction::Up), Just(Direction::Down)]
}

fn addr() -> impl Strategy<Value = [u8; 16]> {
    prop_oneof![
        any::<[u8; 16]>(),
        Just([0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
        Just([0u8; 16]),
        Just([0xFFu8; 16]),
    ]
}

fn pkt_strategy() -> impl Strategy<Value = Pkt> {
    (
        dir_strategy(),
        any::<u8>(),
        any::<u32>(),
        any::<u8>(),
        addr(),
        addr(),
        prop::bool::weighted(0.9),
        any::<(u16, u16)>(),
        udp_payload(),
        prop_oneof![6 => Just(0u8), 1 => 1u8..4],
    )
        .prop_map(
            |(dir, tc, flow, hl, dev, app, udp, ports, payload, damage)| Pkt {
                dir,
                tc,
                flow,
                hl,
                dev,
                app,
                udp,
                ports,
                payload,
                damage,
            },
        )
}

fn layer_strategy() -> impl Strategy<Value = Layer> {
    prop_oneof![6 => Just(Layer::Ipv6), 1 => Just(Layer::Udp), 1 => Just(Layer::Coap)]
}

/// The packet as seen from `first`: the headers below it stripped.
fn from_layer(bytes: &[u8], first: Layer) -> Vec<u8> {
    let skip = match first {
        Layer::Ipv6 => 0,
        Layer::Udp => 40,
        Layer::Coap => 48,
    };
    bytes.get(skip..).unwrap_or(&[]).to_vec()
}

// ---------------------------------------------------------------------------------------------
// Rules built around a packet
// ---------------------------------------------------------------------------------------------

/// One field of a parsed packet.
#[derive(Debug, Clone)]
struct PField {
    fid: Fid,
    fp: u8,
    off: usize,
    bits: usize,
    /// Right-aligned value bytes (`ceil(bits / 8)` of them).
    value: Vec<u8>,
}

impl PField {
    fn is_option(&self) -> bool {
        matches!(self.fid, Fid::CoapOption(_))
    }
}

fn right_aligned(data: &[u8], off: usize, bits: usize) -> Vec<u8> {
    if off % 8 == 0 && bits % 8 == 0 {
        return data[off / 8..(off + bits) / 8].to_vec();
    }
    let n = bits.div_ceil(8);
    get_bits(data, off, bits as u32).to_be_bytes()[8 - n..].to_vec()
}

/// Every field of the layers `h` parsed, in layer order (options in packet order).
fn fields_of(h: &Headers<'_>) -> Vec<PField> {
    let data = h.data();
    let mut v = Vec::new();
    for i in 0..HEADER_FIELDS {
        let fid = Fid::from_header_index(i).unwrap();
        if let Some(f) = h.field(fid, 1) {
            let (off, bits) = (f.off as usize, f.len as usize);
            v.push(PField {
                fid,
                fp: 1,
                off,
                bits,
                value: right_aligned(data, off, bits),
            });
        }
    }
    if h.has(Layer::Coap) {
        for o in h.options() {
            let (off, bits) = (o.value.off as usize, o.value.len as usize);
            v.push(PField {
                fid: Fid::CoapOption(o.number),
                fp: o.position,
                off,
                bits,
                value: right_aligned(data, off, bits),
            });
        }
    }
    v
}

/// `value` with bits flipped after the first `x` of its `bits` (right-aligned) bits.
fn perturb_low(value: &[u8], bits: usize, x: usize, noise: u64) -> Vec<u8> {
    let mut out = value.to_vec();
    let total = out.len() * 8;
    let lead = total - bits;
    for i in (lead + x)..total {
        if (noise >> (i % 61)) & 1 == 1 {
            out[i / 8] ^= 0x80 >> (i % 8);
        }
    }
    out
}

/// A random value of `bits` bits, right-aligned.
fn random_value(bits: usize, noise: u64) -> Vec<u8> {
    let n = bits.div_ceil(8);
    let mut v: Vec<u8> = (0..n)
        .map(|i| (noise.rotate_left(i as u32 * 8) >> 3) as u8)
        .collect();
    if bits % 8 != 0 {
        if let Some(first) = v.first_mut() {
            *first &= (1u8 << (bits % 8)) - 1;
        }
    }
    v
}

/// Splitmix64: cheap deterministic noise from one seed.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A descriptor for `f` whose MO matches the packet. The MO/CDA pair is drawn from the whole
/// cross product (weighted towards sensible pairs), so some are invalid and some lossy; with
/// `sane`, only pairs the codec is meant to round-trip.
fn descriptor(f: &PField, dir: Direction, seed: u64, sane: bool, cfg: &Config) -> FieldSpec {
    let c = mix(seed);
    let n = mix(c);
    let var_ok = f.is_option();
    let fl = if f.fid == Fid::CoapToken {
        match c % 5 {
            0 | 1 => Fl::TokenLength,
            2 => Fl::Variable,
            _ => Fl::Fixed(f.bits as u16),
        }
    } else if var_ok && (c & 1 == 0 || f.bits == 0) {
        Fl::Variable
    } else {
        Fl::Fixed(f.bits as u16)
    };
    let var = fl == Fl::Variable;
    // A TKL for one direction only would leave an fl-token-length token without one.
    let di = if (c >> 1) % 4 == 0 && f.fid != Fid::CoapTkl {
        match dir {
            Direction::Up => Di::Up,
            Direction::Down => Di::Down,
        }
    } else {
        Di::Bi
    };
    let mut mo_pick = (c >> 3) % 4;
    let iid_field = match f.fid {
        Fid::Ipv6DevIid => cfg.dev_iid.map(|i| (i, Cda::DevIid)),
        Fid::Ipv6AppIid => cfg.app_iid.map(|i| (i, Cda::AppIid)),
        _ => None,
    };
    // IID actions when the configured IID is the field's.
    if let Some((iid, cda)) = iid_field {
        if iid[..] == f.value[..] && (c >> 5) % 3 == 0 {
            let (tv, mo) = if (c >> 7) & 1 == 0 {
                (vec![], Mo::Ignore)
            } else {
                (vec![f.value.clone()], Mo::Equal)
            };
            return FieldSpec {
                fid: f.fid,
                fl,
                fp: f.fp,
                di,
                tv,
                mo,
                cda,
            };
        }
    }
    if f.fid.is_computable() && (c >> 9) % 4 == 0 {
        mo_pick = 1; // Ignore + compute
    }
    let x_for = |n: u64| {
        let mut x = (n % (f.bits as u64 + 1)) as usize;
        if n % 7 == 0 {
            x = f.bits;
        }
        if var {
            x -= x % 8;
        }
        x
    };
    let (mo, tv) = match mo_pick {
        0 => {
            let mut tv = f.value.clone();
            if !var && n % 5 == 0 {
                tv.insert(0, 0); // a wider encoding of the same number
            }
            (Mo::Equal, vec![tv])
        }
        1 => {
            let tv = if n % 3 == 0 {
                vec![]
            } else {
                vec![random_value(f.bits, n)]
            };
            (Mo::Ignore, tv)
        }
        2 => {
            let x = x_for(n);
            let tv = if var {
                let mut t = f.value[..x / 8].to_vec();
                t.extend(std::iter::repeat_n(0x5A, (n >> 20) as usize % 3));
                t
            } else {
                perturb_low(&f.value, f.bits, x, n >> 8)
            };
            (Mo::Msb(x as u16), vec![tv])
        }
        _ => {
            let count = match (n >> 4) % 16 {
                0 => 200 + (n >> 12) as usize % 100,
                1..=3 => 1,
                _ => 1 + (n >> 12) as usize % 8,
            };
            let at = (n >> 24) as usize % count;
            let list = (0..count)
                .map(|i| {
                    if i == at {
                        f.value.clone()
                    } else if var {
                        let mut d = f.value.clone();
                        d.extend_from_slice(&(i as u16).to_be_bytes());
                        d
                    } else {
                        random_value(f.bits, mix(n ^ i as u64))
                    }
                })
                .collect();
            (Mo::MatchMapping, list)
        }
    };
    // Per rule: how often a descriptor gets an arbitrary CDA, or a lossy ignore/not-sent.
    let (wild, lossy) = if sane {
        (0, 0)
    } else {
        (1 + (seed >> 58) % 40, 1 + (seed >> 52) % 12)
    };
    let cda = if wild != 0 && (c >> 11) % (wild * 4) == 0 {
        [
            Cda::NotSent,
            Cda::ValueSent,
            Cda::MappingSent,
            Cda::Lsb,
            Cda::Compute,
            Cda::DevIid,
            Cda::AppIid,
        ][(c >> 15) as usize % 7]
    } else {
        let pick = (c >> 19) as usize;
        match mo {
            Mo::Equal => [Cda::NotSent, Cda::NotSent, Cda::ValueSent][pick % 3],
            Mo::Ignore if f.fid.is_computable() && pick % 2 == 0 => Cda::Compute,
            Mo::Ignore if sane => Cda::ValueSent,
            Mo::Ignore if (pick >> 4) as u64 % (lossy * 8) == 0 => Cda::NotSent,
            Mo::Ignore => Cda::ValueSent,
            Mo::Msb(_) if sane || pick % 5 != 0 => [Cda::Lsb, Cda::Lsb, Cda::ValueSent][pick % 3],
            Mo::Msb(_) => Cda::NotSent,
            Mo::MatchMapping => [Cda::MappingSent, Cda::MappingSent, Cda::ValueSent][pick % 3],
        }
    };
    let tv = if mo == Mo::Ignore && cda == Cda::NotSent && tv.is_empty() {
        vec![random_value(f.bits, n)]
    } else {
        tv
    };
    FieldSpec {
        fid: f.fid,
        fl,
        fp: f.fp,
        di,
        tv,
        mo,
        cda,
    }
}

/// The entries of a rule for the first `depth` layers of `h` (from its first layer).
fn rule_for(h: &Headers<'_>, depth: u8, seed: u64, sane: bool, cfg: &Config) -> Vec<FieldSpec> {
    let first = h.first() as u8;
    let mut fields = fields_of(h);
    fields.retain(|f| (f.fid.layer() as u8) < first + depth);
    let mut entries: Vec<FieldSpec> = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        let s = mix(seed ^ (i as u64).wrapping_mul(0x1234_5678_9ABC));
        // An empty token need not be described.
        if f.fid == Fid::CoapToken && f.bits == 0 && s % 2 == 0 {
            continue;
        }
        entries.push(descriptor(f, h.direction(), s, sane, cfg));
        // Now and then a descriptor for the other direction, which must not count.
        if s % 11 == 0 && entries.last().is_some_and(|e| e.di != Di::Bi) {
            let mut other = entries.last().unwrap().clone();
            other.di = match h.direction() {
                Direction::Up => Di::Down,
                Direction::Down => Di::Up,
            };
            if other.tv.len() == 1 {
                other.tv[0] = random_value(f.bits, s);
                other.mo = Mo::Equal;
                other.cda = Cda::NotSent;
            }
            entries.push(other);
        }
    }
    // Below the first layer, a descriptor for the other direction only (it must not count).
    if h.first() > Layer::Ipv6 && mix(seed ^ 5) % 6 == 0 {
        let other = match h.direction() {
            Direction::Up => Di::Down,
            Direction::Down => Di::Up,
        };
        let fid = if h.first() == Layer::Coap && mix(seed ^ 6) % 2 == 0 {
            Fid::UdpAppPort
        } else {
            Fid::Ipv6HopLimit
        };
        entries.push(FieldSpec {
            fid,
            fl: Fl::Fixed(fid.fixed_len().unwrap()),
            fp: 1,
            di: other,
            tv: vec![vec![64]],
            mo: Mo::Equal,
            cda: Cda::NotSent,
        });
    }
    // Shuffle (residues follow rule order), keeping the TKL before the token.
    let n = entries.len();
    if n > 1 {
        for i in 0..n {
            let j = (mix(seed.wrapping_add(i as u64)) % n as u64) as usize;
            entries.swap(i, j);
        }
    }
    let tkl = entries.iter().position(|e| e.fid == Fid::CoapTkl);
    let tok = entries.iter().position(|e| e.fid == Fid::CoapToken);
    if let (Some(a), Some(b)) = (tkl, tok) {
        if b < a {
            entries.swap(a, b);
        }
    }
    entries
}

/// `count` prefix-free rule IDs.
fn rule_ids(count: usize, seed: u64) -> Vec<RuleId> {
    let s = mix(seed);
    if count <= 1 && s % 5 == 0 {
        return vec![RuleId::new(0, 0); count];
    }
    match s % 3 {
        // One length, distinct values.
        0 | 1 => {
            let min_len = usize::BITS - count.leading_zeros();
            let len = (min_len + (s >> 8) as u32 % 33).min(32).max(min_len) as u8;
            let base = (s >> 16) as u32;
            (0..count as u32)
                .map(|i| {
                    let v = if len == 32 {
                        base.wrapping_add(i)
                    } else {
                        (base.wrapping_add(i)) & ((1u32 << len) - 1)
                    };
                    RuleId::new(v, len)
                })
                .collect()
        }
        // Unary prefixes: 0xx, 10xx, 110xx, ..., then all ones.
        _ => (0..count)
            .map(|k| {
                let tail = ((s >> (8 + k * 3)) % 5) as u8;
                let ones = ((1u32 << k) - 1) << 1;
                if k + 1 == count {
                    RuleId::new((1u32 << k) - 1, k as u8)
                } else {
                    let head = ones; // k ones then a zero
                    let v = (head << tail) | ((s >> 40) as u32 & ((1u32 << tail) - 1));
                    RuleId::new(v, k as u8 + 1 + tail)
                }
            })
            .collect(),
    }
}

fn frag_params(seed: u64) -> FragParams {
    let s = mix(seed);
    FragParams {
        mode: [FragMode::NoAck, FragMode::AckAlways, FragMode::AckOnError][(s % 3) as usize],
        direction: if s & 8 == 0 {
            Direction::Up
        } else {
            Direction::Down
        },
        l2_word: (s >> 8) as u8,
        dtag_bits: (s >> 16) as u8 % 20,
        w_bits: (s >> 24) as u8 % 20,
        fcn_bits: (s >> 32) as u8 % 20,
        window_size: (s >> 40) as u16,
        rcs: RcsAlgorithm::Crc32,
        max_packet_size: (s >> 20) as u16,
        max_interleaved: (s >> 28) as u8,
        inactivity_timer: Some(Timer {
            tick_exp: (s >> 36) as u8,
            ticks: (s >> 44) as u16,
        }),
        retransmission_timer: None,
        max_ack_requests: (s >> 50) as u8,
        tile_size: (s >> 33) as u16,
        tile_in_all1: TileInAll1::SenderChoice,
        ack_behavior: AckBehavior::AfterAll1,
        bitmap_format: BitmapFormat::Rfc8724,
        last_bitmap_compression: s & 16 == 0,
    }
}

fn config_strategy() -> impl Strategy<Value = (u8, usize, u8, u8, u64)> {
    (
        prop_oneof![4 => Just(8u8), 1 => Just(1u8), 1 => Just(0u8), 2 => any::<u8>()],
        prop_oneof![3 => Just(4096usize), 1 => 0usize..=5000],
        0u8..4,
        0u8..4,
        any::<u64>(),
    )
}

/// A configuration: the IIDs are the packet's (so DevIID/AppIID can match), random, or none.
fn make_config(
    pkt: &[u8],
    dir: Direction,
    first: Layer,
    (word, max, dev, app, r): (u8, usize, u8, u8, u64),
) -> Config {
    let iid_at =
        |at: usize| -> Option<[u8; 8]> { pkt.get(at..at + 8).and_then(|s| s.try_into().ok()) };
    let (dev_at, app_at) = match dir {
        Direction::Up => (16, 32),
        Direction::Down => (32, 16),
    };
    let pick = |k: u8, at: usize| match k {
        0 => None,
        1 => Some(r.to_be_bytes()),
        _ => iid_at(at).or(Some([0; 8])),
    };
    Config {
        l2_word: word,
        max_packet_size: max,
        dev_iid: pick(dev, dev_at),
        app_iid: pick(app, app_at),
        first_layer: first,
    }
}

// ---------------------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------------------

/// Whether every rule with this ID describes the packet losslessly in `dir`: no
/// `ignore`+`not-sent` descriptor (DevIID/AppIID use the same configuration both ways here).
fn lossless(set: &RuleSet<'_>, id: RuleId, dir: Direction) -> bool {
    set.rules().iter().filter(|r| r.id == id).all(|r| {
        !set.fields(r)
            .iter()
            .any(|f| f.di.applies(dir) && f.mo == Mo::Ignore && f.cda == Cda::NotSent)
    })
}

/// The rules with this ID, their descriptors and target values, for failure messages.
fn describe(set: &RuleSet<'_>, id: RuleId) -> String {
    let mut s = String::new();
    for r in set.rules().iter().filter(|r| r.id == id) {
        for fd in set.fields(r) {
            let tvs: Vec<String> = (0..set.tv_count(fd).min(4))
                .map(|i| format!("{:02x?}", set.tv(fd, i)))
                .collect();
            s += &format!(
                "  {} fp {} {:?} {:?} {:?} {:?} tv[{}] {}\n",
                fd.fid,
                fd.fp,
                fd.fl,
                fd.di,
                fd.mo,
                fd.cda,
                set.tv_count(fd),
                tvs.join(" ")
            );
        }
    }
    s
}

/// Bytes `compress` writes for `bits` bits under L2 word `word`.
fn padded_len(bits: usize, word: u8) -> usize {
    let w = usize::from(word.max(1));
    (bits.div_ceil(w) * w).div_ceil(8)
}

#[derive(Debug, PartialEq, Eq)]
enum Trip {
    NoMatch,
    Lossy,
    /// Round trip exact, with the rule's ID.
    Exact(RuleId),
    /// Compression refused with a typed error (only allowed for unchecked sets).
    Refused,
}

/// Compresses `pkt` and decompresses the result: with a lossless rule, the same bytes. With
/// `strict` (a validated set), compression may not fail but for want of a matching rule.
fn round_trip(
    set: &RuleSet<'_>,
    pkt: &[u8],
    dir: Direction,
    cfg: &Config,
    strict: bool,
) -> Result<Trip, TestCaseError> {
    let mut out = vec![0u8; pkt.len() * 2 + 160];
    let c = match codec::compress(set, pkt, dir, cfg, &mut out) {
        Ok(c) => c,
        Err(CompressError::NoMatch) => return Ok(Trip::NoMatch),
        Err(e @ CompressError::BufferTooSmall { .. }) => {
            return Err(TestCaseError::fail(format!(
                "buffer of {} for a {}-byte packet: {e}",
                out.len(),
                pkt.len()
            )))
        }
        Err(e) => {
            if strict {
                return Err(TestCaseError::fail(format!("validated set: {e}")));
            }
            return Ok(Trip::Refused);
        }
    };
    prop_assert!(c.len <= out.len() && c.bits <= c.len * 8);
    prop_assert_eq!(c.len, padded_len(c.bits, cfg.l2_word), "padding of {:?}", c);
    if !lossless(set, c.rule_id, dir) {
        return Ok(Trip::Lossy);
    }
    let cfg2 = Config {
        max_packet_size: pkt.len() + 16,
        ..*cfg
    };
    let mut back = vec![0u8; pkt.len() + 16];
    let schc = &out[..c.len];
    let d = codec::decompress_bits(set, schc, c.bits, dir, &cfg2, &mut back);
    match d {
        Ok(d) => {
            prop_assert_eq!(d.rule_id, c.rule_id);
            prop_assert!(
                &back[..d.len] == pkt,
                "round trip changed the packet with rule {}:\n in  {:02x?}\n out {:02x?}\n schc {:02x?} ({} bits)\n{}",
                c.rule_id,
                pkt,
                &back[..d.len],
                schc,
                c.bits,
                describe(set, c.rule_id)
            );
        }
        // Even with an invalid set: what compression accepted, decompression must rebuild.
        Err(e) => {
            return Err(TestCaseError::fail(format!(
                "compressed with rule {} but decompression failed: {e}\n in {:02x?}\n schc {:02x?} ({} bits)\n{}",
                c.rule_id, pkt, schc, c.bits, describe(set, c.rule_id)
            )));
        }
    }
    // Whole bytes: padding under a byte is dropped. That holds when the L2 word divides 8.
    if matches!(cfg.l2_word, 0 | 1 | 2 | 4 | 8) {
        let d = codec::decompress(set, schc, dir, &cfg2, &mut back);
        prop_assert!(
            d.as_ref().is_ok_and(|d| &back[..d.len] == pkt),
            "decompress on whole bytes (L2 word {}): {:?}",
            cfg.l2_word,
            d
        );
    }
    Ok(Trip::Exact(c.rule_id))
}

/// Decompression of `schc` into a buffer of `cap` bytes never panics and respects the limits.
fn decompress_bounded(
    set: &RuleSet<'_>,
    schc: &[u8],
    bits: Option<usize>,
    dir: Direction,
    cfg: &Config,
    cap: usize,
) -> Result<Option<DecompressError>, TestCaseError> {
    let mut back = vec![0xA5u8; cap + 8];
    let (buf, guard) = back.split_at_mut(cap);
    let r = match bits {
        Some(b) => codec::decompress_bits(set, schc, b, dir, cfg, buf),
        None => codec::decompress(set, schc, dir, cfg, buf),
    };
    prop_assert!(guard.iter().all(|&b| b == 0xA5));
    match r {
        Ok(d) => {
            prop_assert!(
                d.len <= cap && d.len <= cfg.max_packet_size,
                "{:?} cap {}",
                d,
                cap
            );
            Ok(None)
        }
        Err(e) => {
            // Every error formats.
            let _ = e.to_string();
            Ok(Some(e))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile tables
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Tables {
    rules: Vec<Rule>,
    fields: Vec<FieldDesc>,
    values: Vec<ValueRef>,
    pool: Vec<u8>,
}

impl Tables {
    fn of(set: &RuleSetBuf) -> Self {
        let (r, f, v, p) = set.as_set().tables();
        Tables {
            rules: r.to_vec(),
            fields: f.to_vec(),
            values: v.to_vec(),
            pool: p.to_vec(),
        }
    }
    fn set(&self) -> RuleSet<'_> {
        RuleSet::new_unchecked(&self.rules, &self.fields, &self.values, &self.pool)
    }
}

fn any_fid() -> impl Strategy<Value = Fid> {
    prop_oneof![
        (0..HEADER_FIELDS).prop_map(|i| Fid::from_header_index(i).unwrap()),
        prop_oneof![Just(0u16), Just(11), Just(60), Just(65535), any::<u16>()]
            .prop_map(Fid::CoapOption),
    ]
}

fn any_fl() -> impl Strategy<Value = Fl> {
    prop_oneof![
        Just(Fl::Fixed(0)),
        Just(Fl::Fixed(65535)),
        Just(Fl::Fixed(64)),
        Just(Fl::Fixed(65)),
        (0u16..130).prop_map(Fl::Fixed),
        any::<u16>().prop_map(Fl::Fixed),
        Just(Fl::Variable),
        Just(Fl::TokenLength),
    ]
}

fn any_mo() -> impl Strategy<Value = Mo> {
    prop_oneof![
        Just(Mo::Equal),
        Just(Mo::Ignore),
        Just(Mo::MatchMapping),
        (0u16..80).prop_map(Mo::Msb),
        any::<u16>().prop_map(Mo::Msb),
    ]
}

fn any_cda() -> impl Strategy<Value = Cda> {
    prop_oneof![
        Just(Cda::NotSent),
        Just(Cda::ValueSent),
        Just(Cda::MappingSent),
        Just(Cda::Lsb),
        Just(Cda::Compute),
        Just(Cda::DevIid),
        Just(Cda::AppIid),
    ]
}

fn any_di() -> impl Strategy<Value = Di> {
    prop_oneof![Just(Di::Bi), Just(Di::Up), Just(Di::Down)]
}

fn any_u32_index() -> impl Strategy<Value = u32> {
    prop_oneof![
        0u32..8,
        Just(u32::MAX),
        Just(u32::MAX - 1),
        Just(u32::MAX - 300),
        Just(1u32 << 31),
        any::<u32>(),
    ]
}

fn any_span() -> impl Strategy<Value = Span> {
    (
        any_u32_index(),
        prop_oneof![0u16..4, Just(300), Just(u16::MAX), any::<u16>()],
    )
        .prop_map(|(s, l)| Span::new(s, l))
}

fn any_rule_id() -> impl Strategy<Value = RuleId> {
    (any::<u32>(), 0u8..=40, 0u8..3).prop_map(|(v, len, k)| {
        let v = match k {
            // Well-formed when the length allows.
            0 if len < 32 => v & ((1u32 << len) - 1),
            1 => v & 0xF,
            _ => v,
        };
        RuleId::new(v, len)
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Fid(Index, Fid),
    Fl(Index, Fl),
    Fp(Index, u8),
    Di(Index, Di),
    Mo(Index, Mo),
    Cda(Index, Cda),
    Tv(Index, Span),
    TvNear(Index, u16),
    Value(Index, u32, u16),
    RuleId(Index, RuleId),
    RuleSpan(Index, Span),
    Pool(Index, u8),
    Dup(Index),
    Swap(Index, Index),
    Frag(Index, u64),
    NoComp(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), any_fid()).prop_map(|(i, v)| Mutation::Fid(i, v)),
        (any::<Index>(), any_fl()).prop_map(|(i, v)| Mutation::Fl(i, v)),
        (any::<Index>(), prop_oneof![Just(0u8), Just(2), any::<u8>()])
            .prop_map(|(i, v)| Mutation::Fp(i, v)),
        (any::<Index>(), any_di()).prop_map(|(i, v)| Mutation::Di(i, v)),
        (any::<Index>(), any_mo()).prop_map(|(i, v)| Mutation::Mo(i, v)),
        (any::<Index>(), any_cda()).prop_map(|(i, v)| Mutation::Cda(i, v)),
        (any::<Index>(), any_span()).prop_map(|(i, v)| Mutation::Tv(i, v)),
        (any::<Index>(), 0u16..=300).prop_map(|(i, v)| Mutation::TvNear(i, v)),
        (
            any::<Index>(),
            any_u32_index(),
            prop_oneof![0u16..10, Just(u16::MAX), any::<u16>()]
        )
            .prop_map(|(i, o, l)| Mutation::Value(i, o, l)),
        (any::<Index>(), any_rule_id()).prop_map(|(i, v)| Mutation::RuleId(i, v)),
        (any::<Index>(), any_span()).prop_map(|(i, v)| Mutation::RuleSpan(i, v)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::Pool(i, v)),
        any::<Index>().prop_map(Mutation::Dup),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        (any::<Index>(), any::<u64>()).prop_map(|(i, s)| Mutation::Frag(i, s)),
        any::<Index>().prop_map(Mutation::NoComp),
    ]
}

fn apply(t: &mut Tables, m: &Mutation) {
    let nf = t.fields.len();
    let nr = t.rules.len();
    let field = |_: &mut Tables, i: &Index| -> Option<usize> { (nf > 0).then(|| i.index(nf)) };
    match m {
        Mutation::Fid(i, v) => {
            if let Some(k) = field(t, i) {
                t.fields[k].fid = *v;
            }
        }
        Mutation::Fl(i, v) => {
            if let Some(k) = field(t, i) {
                t.fields[k].fl = *v;
            }
        }
        Mutation::Fp(i, v) => {
            if let Some(k) = field(t, i) {
                t.fields[k].fp = *v;
            }
        }
        Mutation::Di(i, v) => {
            if let Some(k) = field(t, i) {
                t.fields[k].di = *v;
            }
        }
        Mutation::Mo(i, v) => {
            if let Some(k) = field(t, i) {
                t.fields[k].mo = *v;
            }
        }
        Mutation::Cda(i, v) => {
            if let Some(k) = field(t, i) {
                t.fields[k].cda = *v;
            }
        }
        Mutation::Tv(i, v) => {
            if let Some(k) = field(t, i) {
                t.fields[k].tv = *v;
            }
        }
        Mutation::TvNear(i, len) => {
            if let Some(k) = field(t, i) {
                t.fields[k].tv.len = *len;
            }
        }
        Mutation::Value(i, off, len) => {
            if !t.values.is_empty() {
                let k = i.index(t.values.len());
                t.values[k] = ValueRef::new(*off, *len);
            } else {
                t.values.push(ValueRef::new(*off, *len));
            }
        }
        Mutation::RuleId(i, id) => {
            if nr > 0 {
                t.rules[i.index(nr)].id = *id;
            }
        }
        Mutation::RuleSpan(i, s) => {
            if nr > 0 {
                t.rules[i.index(nr)].nature = Nature::Compression(*s);
            }
        }
        Mutation::Pool(i, v) => {
            if !t.pool.is_empty() {
                let k = i.index(t.pool.len());
                t.pool[k] = *v;
            }
        }
        Mutation::Dup(i) => {
            if let Some(k) = field(t, i) {
                let d = t.fields[k];
                t.fields.insert(k, d);
                for r in &mut t.rules {
                    if let Nature::Compression(s) = &mut r.nature {
                        if (s.start as usize) <= k && k < s.start as usize + s.len as usize {
                            s.len = s.len.saturating_add(1);
                        } else if s.start as usize > k {
                            s.start = s.start.saturating_add(1);
                        }
                    }
                }
            }
        }
        Mutation::Swap(a, b) => {
            if nf > 0 {
                t.fields.swap(a.index(nf), b.index(nf));
            }
        }
        Mutation::Frag(i, s) => {
            let id = RuleId::new(i.index(1 << 12) as u32, 12);
            t.rules.push(Rule {
                id,
                nature: Nature::Fragmentation(frag_params(*s)),
            });
        }
        Mutation::NoComp(i) => {
            let id = RuleId::new(i.index(4) as u32, 2);
            t.rules.push(Rule {
                id,
                nature: Nature::NoCompression,
            });
        }
    }
}

/// Entirely random tables.
fn random_tables() -> impl Strategy<Value = Tables> {
    let fd = (
        any_fid(),
        any_fl(),
        prop_oneof![Just(1u8), any::<u8>()],
        any_di(),
        any_span(),
        any_mo(),
        any_cda(),
    )
        .prop_map(|(fid, fl, fp, di, tv, mo, cda)| FieldDesc {
            fid,
            fl,
            fp,
            di,
            tv,
            mo,
            cda,
        });
    let nature = prop_oneof![
        4 => any_span().prop_map(Nature::Compression),
        4 => (0u32..20, 0u16..30).prop_map(|(s, l)| Nature::Compression(Span::new(s, l))),
        1 => Just(Nature::NoCompression),
        1 => any::<u64>().prop_map(|s| Nature::Fragmentation(frag_params(s))),
    ];
    (
        prop::collection::vec(
            (any_rule_id(), nature).prop_map(|(id, nature)| Rule { id, nature }),
            0..6,
        ),
        prop::collection::vec(fd, 0..40),
        prop::collection::vec(
            (
                prop_oneof![0u32..64, any_u32_index()],
                prop_oneof![0u16..9, any::<u16>()],
            )
                .prop_map(|(o, l)| ValueRef::new(o, l)),
            0..40,
        ),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(rules, fields, values, pool)| Tables {
            rules,
            fields,
            values,
            pool,
        })
}

// ---------------------------------------------------------------------------------------------
// Property 1: hostile tables never make the codec panic or overrun
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct HostileCase {
    pkt: Pkt,
    first: Layer,
    depth: u8,
    seed: u64,
    extra: u8,
    mutations: Vec<Mutation>,
    random: Option<Tables>,
    cfgs: Vec<(u8, usize, u8, u8, u64)>,
    caps: Vec<usize>,
    noise: Vec<u8>,
    flips: Vec<(Index, u8)>,
    dir2: Direction,
}

fn hostile_strategy() -> impl Strategy<Value = HostileCase> {
    (
        (
            pkt_strategy(),
            layer_strategy(),
            1u8..=3,
            any::<u64>(),
            0u8..3,
        ),
        prop::collection::vec(mutation(), 0..8),
        prop::option::weighted(0.25, random_tables()),
        prop::collection::vec(config_strategy(), 2..4),
        prop::collection::vec(prop_oneof![0usize..8, 8usize..200, 200usize..5100], 3),
        prop::collection::vec(any::<u8>(), 0..80),
        prop::collection::vec((any::<Index>(), any::<u8>()), 0..4),
        dir_strategy(),
    )
        .prop_map(
            |(
                (pkt, first, depth, seed, extra),
                mutations,
                random,
                cfgs,
                caps,
                noise,
                flips,
                dir2,
            )| HostileCase {
                pkt,
                first,
                depth,
                seed,
                extra,
                mutations,
                random,
                cfgs,
                caps,
                noise,
                flips,
                dir2,
            },
        )
}

fn base_set(
    h: &Headers<'_>,
    depth: u8,
    seed: u64,
    extra: u8,
    sane: bool,
    cfg: &Config,
) -> RuleSetBuf {
    let count = 1 + extra as usize;
    let ids = rule_ids(count + 1, seed);
    let mut set = RuleSetBuf::new();
    for (k, id) in ids.iter().take(count).enumerate() {
        let s = mix(seed ^ (k as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
        // Extra rules: another rule for the same packet, possibly to another depth.
        let d = if k == 0 { depth } else { 1 + (s % 3) as u8 };
        let entries = rule_for(h, d, s, sane, cfg);
        set.push_compression(*id, &entries).unwrap();
    }
    match mix(seed ^ 77) % 4 {
        0 => {}
        1 => set.push_fragmentation(ids[count], frag_params(seed)),
        _ => set.push_no_compression(ids[count]),
    }
    set
}

#[test]
fn hostile_tables_never_panic_or_overrun() {
    let stats = Stats::new(&[
        "cases",
        "valid",
        "compressed",
        "exact",
        "refused",
        "lossy",
        "no-match",
        "decomp-ok",
        "decomp-err",
    ]);
    run("hostile tables", 600, hostile_strategy(), |c| {
        stats.hit("cases");
        let full = c.pkt.bytes();
        let pkt = from_layer(&full, c.first);
        let cfg0 = make_config(&full, c.pkt.dir, c.first, c.cfgs[0]);
        let h = Headers::parse_from(&pkt, c.pkt.dir, c.first);
        let tables = match &c.random {
            Some(t) => t.clone(),
            None => {
                let mut t = Tables::of(&base_set(&h, c.depth, c.seed, c.extra, false, &cfg0));
                for m in &c.mutations {
                    apply(&mut t, m);
                }
                t
            }
        };
        let set = tables.set();
        if set.validate().is_ok() {
            stats.hit("valid");
        } else {
            let _ = set.validate().unwrap_err().to_string();
        }
        let _ = export::summary(&set);
        let mut schcs: Vec<(Vec<u8>, usize)> = Vec::new();
        for (k, raw) in c.cfgs.iter().enumerate() {
            let cfg = make_config(&full, c.pkt.dir, c.first, *raw);
            // The real packet, with a buffer of any size.
            for &cap in &c.caps {
                let mut out = vec![0x5Au8; cap + 8];
                let (buf, guard) = out.split_at_mut(cap);
                let r = codec::compress(&set, &pkt, c.pkt.dir, &cfg, buf);
                prop_assert!(guard.iter().all(|&b| b == 0x5A));
                if let Ok(r) = r {
                    prop_assert!(r.len <= cap && r.bits <= r.len * 8);
                    schcs.push((buf[..r.len].to_vec(), r.bits));
                }
            }
            // The round trip (silent corruption is never allowed, even for invalid sets).
            match round_trip(&set, &pkt, c.pkt.dir, &cfg, false)? {
                Trip::Exact(_) => {
                    stats.hit("compressed");
                    stats.hit("exact")
                }
                Trip::Refused => {
                    stats.hit("compressed");
                    stats.hit("refused")
                }
                Trip::Lossy => stats.hit("lossy"),
                Trip::NoMatch => stats.hit("no-match"),
            }
            // Noise as a packet.
            let mut out = vec![0u8; c.noise.len() + 64];
            let _ = codec::compress(&set, &c.noise, c.dir2, &cfg, &mut out);
            // Noise, compressed output and damaged compressed output as SCHC packets.
            let mut inputs: Vec<(Vec<u8>, Option<usize>)> = vec![(c.noise.clone(), None)];
            for (s, bits) in &schcs {
                inputs.push((s.clone(), Some(*bits)));
                let mut d = s.clone();
                for (i, v) in &c.flips {
                    if !d.is_empty() {
                        let at = i.index(d.len());
                        d[at] ^= v;
                    }
                }
                let cut = c
                    .flips
                    .first()
                    .map_or(d.len(), |(i, _)| i.index(d.len() + 1));
                d.truncate(cut);
                inputs.push((d, None));
            }
            for (input, bits) in &inputs {
                for (j, &cap) in c.caps.iter().enumerate() {
                    let dir = if (j + k) % 2 == 0 { c.pkt.dir } else { c.dir2 };
                    let r = decompress_bounded(&set, input, None, dir, &cfg, cap)?;
                    let bit_len = bits.unwrap_or(input.len() * 8 - (j % 8).min(input.len() * 8));
                    let r2 = decompress_bounded(&set, input, Some(bit_len), dir, &cfg, cap)?;
                    let huge =
                        decompress_bounded(&set, input, Some(usize::MAX), dir, &cfg, cap / 2)?;
                    for r in [r, r2, huge] {
                        stats.hit(if r.is_none() {
                            "decomp-ok"
                        } else {
                            "decomp-err"
                        });
                    }
                }
            }
        }
        Ok(())
    });
    stats.print("hostile tables");
    if cases_scaled() {
        assert!(
            stats.get("compressed") > stats.get("cases") / 10,
            "the generator rarely compresses"
        );
        assert!(stats.get("valid") > 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Property 2: validated sets round-trip
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct ValidCase {
    pkt: Pkt,
    first: Layer,
    depth: u8,
    seed: u64,
    extra: u8,
    cfg: (u8, usize, u8, u8, u64),
}

fn valid_strategy() -> impl Strategy<Value = ValidCase> {
    (
        pkt_strategy(),
        layer_strategy(),
        1u8..=3,
        any::<u64>(),
        prop_oneof![3 => Just(0u8), 1 => 1u8..4],
        config_strategy(),
    )
        .prop_map(|(pkt, first, depth, seed, extra, cfg)| ValidCase {
            pkt,
            first,
            depth,
            seed,
            extra,
            cfg,
        })
}

#[test]
fn validated_sets_round_trip_exactly() {
    let stats = Stats::new(&[
        "cases",
        "valid",
        "exact",
        "lossy",
        "no-match",
        "built-rule-chosen",
    ]);
    run("validated sets", 1500, valid_strategy(), |c| {
        stats.hit("cases");
        let full = c.pkt.bytes();
        let pkt = from_layer(&full, c.first);
        let cfg = make_config(&full, c.pkt.dir, c.first, c.cfg);
        let h = Headers::parse_from(&pkt, c.pkt.dir, c.first);
        let set = base_set(&h, c.depth, c.seed, c.extra, false, &cfg);
        if set.validate().is_err() {
            return Ok(());
        }
        stats.hit("valid");
        let view = set.as_set();
        match round_trip(&view, &pkt, c.pkt.dir, &cfg, true)? {
            Trip::Exact(id) => {
                stats.hit("exact");
                if Some(id) == view.rules().first().map(|r| r.id) {
                    stats.hit("built-rule-chosen");
                }
            }
            Trip::Lossy => stats.hit("lossy"),
            Trip::NoMatch => stats.hit("no-match"),
            Trip::Refused => unreachable!(),
        }
        Ok(())
    });
    stats.print("validated sets");
    if cases_scaled() {
        assert!(
            stats.get("exact") > stats.get("cases") / 5,
            "too few round trips exercised"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Property 2b: the compiled form and the interpreter agree
// ---------------------------------------------------------------------------------------------

/// One codec call's outcome, to compare two runs.
fn compress_outcome(
    set: &RuleSet<'_>,
    pkt: &[u8],
    dir: Direction,
    cfg: &Config,
) -> Result<(lpwan_schc::codec::Compressed, Vec<u8>), CompressError> {
    let mut out = vec![0u8; pkt.len() * 2 + 160];
    codec::compress(set, pkt, dir, cfg, &mut out).map(|c| (c, out[..c.len].to_vec()))
}

/// As [`compress_outcome`], for decompression.
fn decompress_outcome(
    set: &RuleSet<'_>,
    schc: &[u8],
    bits: usize,
    dir: Direction,
    cfg: &Config,
) -> Result<(lpwan_schc::codec::Decompressed, Vec<u8>), DecompressError> {
    let mut out = vec![0u8; 2048];
    codec::decompress_bits(set, schc, bits, dir, cfg, &mut out).map(|d| (d, out[..d.len].to_vec()))
}

#[test]
fn compiled_form_and_interpreter_agree() {
    use lpwan_schc::rule::index::RuleIndexBuf;
    use lpwan_schc::rule::RuleIndex;
    let stats = Stats::new(&[
        "cases",
        "valid",
        "compiled-rules",
        "compressed",
        "decompressed",
        "damaged-refused",
        "compiled-only",
        "invalid-compiled-only",
    ]);
    run("compiled form", 1500, hostile_strategy(), |c| {
        stats.hit("cases");
        let full = c.pkt.bytes();
        let pkt = from_layer(&full, c.first);
        let cfg0 = make_config(&full, c.pkt.dir, c.first, c.cfgs[0]);
        let h = Headers::parse_from(&pkt, c.pkt.dir, c.first);
        // Sane rules around the packet, then (half the time) mutations that may keep them valid.
        let sane = c.extra % 2 == 0;
        let mut t = Tables::of(&base_set(&h, c.depth, c.seed, c.extra, sane, &cfg0));
        if c.seed % 2 == 0 {
            for m in &c.mutations {
                apply(&mut t, m);
            }
        }
        // Two cases in three: entries the compiled form cannot express (match-mapping above
        // all, which the generator picks for a quarter of the fields) become ignore/value-sent,
        // so that whole rules run compiled.
        if c.seed % 3 != 0 {
            let t0 = t.clone();
            let view = t0.set();
            for fd in t.fields.iter_mut() {
                if view.compile_field(fd).is_fallback() {
                    fd.mo = Mo::Ignore;
                    fd.cda = Cda::ValueSent;
                    fd.tv = Span::new(0, 0);
                }
            }
        }
        let plain = t.set();
        if plain.validate().is_err() {
            // Unchecked tables with a compiled table built from them anyway: the compiled-only
            // entry points trust it, and must still never panic or write out of bounds.
            let ix = RuleIndexBuf::build(&plain);
            let set = plain.with_index(ix.as_index());
            for raw in &c.cfgs {
                let cfg = make_config(&full, c.pkt.dir, c.first, *raw);
                for &cap in &c.caps {
                    let mut out = vec![0x5Au8; cap + 8];
                    let (buf, guard) = out.split_at_mut(cap);
                    let r = codec::compress_compiled(&set, &pkt, c.pkt.dir, &cfg, buf);
                    prop_assert!(guard.iter().all(|&b| b == 0x5A));
                    if let Ok(r) = r {
                        let schc = buf[..r.len].to_vec();
                        let mut back = vec![0x5Au8; cap + 8];
                        let (b2, g2) = back.split_at_mut(cap);
                        let _ =
                            codec::decompress_compiled(&set, &schc, r.bits, c.pkt.dir, &cfg, b2);
                        prop_assert!(g2.iter().all(|&b| b == 0x5A));
                    }
                    let mut back = vec![0x5Au8; cap + 8];
                    let (b2, g2) = back.split_at_mut(cap);
                    let n = c.noise.len() * 8;
                    let _ = codec::decompress_compiled(&set, &c.noise, n, c.dir2, &cfg, b2);
                    prop_assert!(g2.iter().all(|&b| b == 0x5A));
                }
            }
            stats.hit("invalid-compiled-only");
            return Ok(());
        }
        stats.hit("valid");
        let ix = RuleIndexBuf::build(&plain);
        let compiled = plain.with_index(ix.as_index()).into_validated();
        prop_assert!(compiled.is_ok(), "the built index is valid: {:?}", compiled);
        let compiled = compiled.unwrap();
        let without = RuleIndex {
            compiled: &[],
            plans: &[],
            ..ix.as_index()
        };
        let interp = plain.with_index(without).into_validated().unwrap();
        // The compiled form matched entry by entry, as static device tables do (no plans).
        let no_plans = RuleIndex {
            plans: &[],
            ..ix.as_index()
        };
        let entrywise = plain.with_index(no_plans).into_validated().unwrap();
        for r in plain.rules() {
            let fs = plain.fields(r);
            if matches!(r.nature, Nature::Compression(_))
                && fs.iter().all(|fd| !plain.compile_field(fd).is_fallback())
            {
                stats.hit("compiled-rules");
            }
        }
        // Whether every compression rule compiles: the compiled-only entry points then agree.
        let whole = plain.rules().iter().all(|r| {
            plain
                .fields(r)
                .iter()
                .all(|fd| !plain.compile_field(fd).is_fallback())
        });
        for raw in &c.cfgs {
            let cfg = make_config(&full, c.pkt.dir, c.first, *raw);
            for (p, dir) in [
                (&pkt[..], c.pkt.dir),
                (&c.noise[..], c.dir2),
                (&pkt[..], c.dir2),
            ] {
                let a = compress_outcome(&compiled, p, dir, &cfg);
                let b = compress_outcome(&interp, p, dir, &cfg);
                prop_assert_eq!(&a, &b, "compress {:02x?} going {:?}", p, dir);
                let e = compress_outcome(&entrywise, p, dir, &cfg);
                prop_assert_eq!(&e, &b, "compress without plans {:02x?} going {:?}", p, dir);
                if whole {
                    stats.hit("compiled-only");
                    let mut out = vec![0u8; p.len() * 2 + 160];
                    let k = codec::compress_compiled(&compiled, p, dir, &cfg, &mut out)
                        .map(|k| (k, out[..k.len].to_vec()));
                    prop_assert_eq!(&k, &a, "compress_compiled {:02x?}", p);
                    if let Ok((k, schc)) = &a {
                        let mut back = vec![0u8; 2048];
                        let d = codec::decompress_compiled(
                            &compiled, schc, k.bits, dir, &cfg, &mut back,
                        )
                        .map(|d| (d, back[..d.len].to_vec()));
                        let e = decompress_outcome(&interp, schc, k.bits, dir, &cfg);
                        prop_assert_eq!(d.is_ok(), e.is_ok(), "decompress_compiled {:02x?}", schc);
                        if let (Ok(d), Ok(e)) = (d, e) {
                            prop_assert_eq!(d, e);
                        }
                    }
                }
                if let Ok((k, schc)) = a {
                    stats.hit("compressed");
                    let a = decompress_outcome(&compiled, &schc, k.bits, dir, &cfg);
                    let b = decompress_outcome(&interp, &schc, k.bits, dir, &cfg);
                    prop_assert_eq!(&a, &b, "decompress {:02x?}", schc);
                    if a.is_ok() {
                        stats.hit("decompressed");
                    }
                    // Damaged: flipped bits, then cut short; and whole bytes only.
                    let mut d = schc.clone();
                    for (i, v) in &c.flips {
                        if !d.is_empty() {
                            let at = i.index(d.len());
                            d[at] ^= v;
                        }
                    }
                    for cut in [d.len(), d.len() / 2, d.len().saturating_sub(1)] {
                        let part = &d[..cut];
                        let a = decompress_outcome(&compiled, part, cut * 8, dir, &cfg);
                        let b = decompress_outcome(&interp, part, cut * 8, dir, &cfg);
                        prop_assert_eq!(&a, &b, "decompress damaged {:02x?}", part);
                        if a.is_err() {
                            stats.hit("damaged-refused");
                        }
                    }
                }
            }
            let a = decompress_outcome(&compiled, &c.noise, c.noise.len() * 8, c.dir2, &cfg);
            let b = decompress_outcome(&interp, &c.noise, c.noise.len() * 8, c.dir2, &cfg);
            prop_assert_eq!(a, b, "decompress noise {:02x?}", c.noise);
        }
        Ok(())
    });
    stats.print("compiled form");
    if cases_scaled() {
        assert!(
            stats.get("compiled-rules") > stats.get("valid") / 2,
            "the generator rarely makes rules the compiled form expresses"
        );
        assert!(stats.get("compressed") > stats.get("cases") / 5);
    }
}

// ---------------------------------------------------------------------------------------------
// Property 4: the CoAP parser
// ---------------------------------------------------------------------------------------------

/// Re-encodes the CoAP message `h` parsed (header, token, options, payload marker).
fn reencode_coap(h: &Headers<'_>) -> Vec<u8> {
    let data = h.data();
    let bits = |fid| {
        let f = h.field(fid, 1).unwrap();
        get_bits(data, f.off as usize, f.len) as u8
    };
    let tok = h.field(Fid::CoapToken, 1).unwrap();
    let mid = h.field(Fid::CoapMid, 1).unwrap();
    let mut m = vec![
        (bits(Fid::CoapVersion) << 6) | (bits(Fid::CoapType) << 4) | bits(Fid::CoapTkl),
        bits(Fid::CoapCode),
    ];
    m.extend_from_slice(&data[mid.bytes()]);
    m.extend_from_slice(&data[tok.bytes()]);
    let options: Vec<(u16, Vec<u8>)> = h
        .options()
        .map(|o| (o.number, data[o.value.bytes()].to_vec()))
        .collect();
    m.extend(coap_options(&options));
    if h.layer_end(Some(Layer::Coap)) < data.len() {
        m.push(0xFF);
    }
    m
}

#[test]
fn coap_parser_on_arbitrary_udp_payloads() {
    let stats = Stats::new(&[
        "cases",
        "coap",
        "not-coap",
        "too-many-options",
        "exact",
        "lossy",
    ]);
    let strategy = (
        pkt_strategy(),
        prop_oneof![5 => Just(Layer::Ipv6), 1 => Just(Layer::Udp), 1 => Just(Layer::Coap)],
        any::<u64>(),
        config_strategy(),
    );
    run(
        "coap parser",
        1500,
        strategy,
        |(mut pkt, first, seed, cfg)| {
            stats.hit("cases");
            pkt.udp = true;
            let full = pkt.bytes();
            let bytes = from_layer(&full, first);
            let h = Headers::parse_from(&bytes, pkt.dir, first);
            // Every field lies inside the packet; options are sorted with consistent positions.
            for f in fields_of(&h) {
                prop_assert!(f.off + f.bits <= bytes.len() * 8, "{:?} past the end", f);
            }
            let opts: Vec<_> = h.options().collect();
            prop_assert!(opts.len() <= MAX_OPTIONS);
            for w in opts.windows(2) {
                prop_assert!(w[0].number <= w[1].number);
                let pos = if w[0].number == w[1].number {
                    w[0].position + 1
                } else {
                    1
                };
                prop_assert_eq!(w[1].position, pos);
            }
            let coap_start = if first == Layer::Coap {
                0
            } else {
                8 + if first == Layer::Ipv6 { 40 } else { 0 }
            };
            if h.has(Layer::Coap) {
                stats.hit("coap");
                prop_assert!(h.coap_error().is_none());
                let end = h.layer_end(Some(Layer::Coap));
                prop_assert!(end <= bytes.len());
                // The parse is faithful: re-encoding gives the same bytes.
                prop_assert_eq!(reencode_coap(&h), bytes[coap_start..end].to_vec());
            } else {
                stats.hit("not-coap");
                if matches!(
                    h.coap_error(),
                    Some(lpwan_schc::packet::CoapError::TooManyOptions)
                ) {
                    stats.hit("too-many-options");
                }
            }
            // A sane rule for every parsed layer: it (the only rule) compresses and round-trips.
            let cfg = make_config(&full, pkt.dir, first, cfg);
            let mut set = RuleSetBuf::new();
            set.push_compression(RuleId::new(5, 3), &rule_for(&h, 3, seed, true, &cfg))
                .unwrap();
            if let Err(e) = set.validate() {
                return Err(TestCaseError::fail(format!("sane rule rejected: {e}")));
            }
            match round_trip(&set.as_set(), &bytes, pkt.dir, &cfg, true)? {
                Trip::Exact(_) => stats.hit("exact"),
                Trip::Lossy => stats.hit("lossy"),
                other => {
                    // Only a wrong length or checksum under compute may keep it from matching.
                    prop_assert!(pkt.damage != 0 || first != Layer::Ipv6, "{:?}", other);
                }
            }
            Ok(())
        },
    );
    stats.print("coap parser");
    if cases_scaled() {
        assert!(stats.get("coap") > stats.get("cases") / 3);
        assert!(stats.get("exact") > stats.get("cases") / 2);
    }
}

// ---------------------------------------------------------------------------------------------
// Property 3: JSON rule files
// ---------------------------------------------------------------------------------------------

/// A shipped rule document, with the vector's packet and direction when it has one.
type Shipped = (Value, Option<(Vec<u8>, Direction)>);

fn shipped_documents() -> Vec<Shipped> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut docs = Vec::new();
    let mut dirs = vec![format!("{root}/rules"), format!("{root}/tests/vectors")];
    while let Some(dir) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                dirs.push(p.to_string_lossy().into_owned());
            } else if p.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&p).unwrap();
                let v: Value = serde_json::from_str(&text).unwrap();
                let packet = match (v.get("packet_hex"), v.get("direction")) {
                    (Some(Value::String(p)), Some(Value::String(d))) => Some((
                        hex(p),
                        if d == "down" {
                            Direction::Down
                        } else {
                            Direction::Up
                        },
                    )),
                    _ => None,
                };
                if v.get("ietf-schc:schc").is_some() {
                    docs.push((v, None));
                } else if let Some(r) = v.get("rules") {
                    if r.get("ietf-schc:schc").is_some() {
                        docs.push((r.clone(), packet));
                    }
                }
            }
        }
    }
    docs
}

#[derive(Debug, Clone)]
enum JsonMut {
    Delete,
    Replace(u8, u64),
    Nest(u16),
    Qualify,
    Unknown,
    Repeat(u16),
    BigIndex(u64),
    /// A change that usually keeps the document loadable: another identity of the same kind,
    /// a nearby number, other base64 bytes.
    Tweak(u64),
}

fn json_mut() -> impl Strategy<Value = (Vec<Index>, JsonMut)> {
    (
        prop::collection::vec(any::<Index>(), 0..8),
        prop_oneof![
            3 => Just(JsonMut::Delete),
            6 => (any::<u8>(), any::<u64>()).prop_map(|(k, n)| JsonMut::Replace(k, n)),
            1 => prop_oneof![1u16..10, 100u16..200].prop_map(JsonMut::Nest),
            1 => Just(JsonMut::Qualify),
            1 => Just(JsonMut::Unknown),
            1 => prop_oneof![2u16..10, 300u16..400].prop_map(JsonMut::Repeat),
            1 => prop_oneof![Just(65535u64), Just(65536), Just(u32::MAX as u64 + 1), Just(u64::MAX), any::<u64>()].prop_map(JsonMut::BigIndex),
            8 => any::<u64>().prop_map(JsonMut::Tweak),
        ],
    )
}

fn scalar(k: u8, n: u64) -> Value {
    match k % 24 {
        0 => Value::Null,
        1 => Value::Bool(n & 1 == 0),
        2 => Value::from(n % 300),
        3 => Value::from(-1),
        4 => Value::from(u64::MAX),
        5 => serde_json::json!(1e300),
        6 => serde_json::json!(0.5),
        7 => Value::from(n),
        8 => Value::from("18446744073709551616"),
        9 => Value::from(""),
        10 => Value::from("AAAA"),
        11 => Value::from("A*A="),
        12 => Value::from("ietf-schc:fid-coap-option-uri-path"),
        13 => Value::from("lpwan-schc:fid-coap-option-99999"),
        14 => Value::from("ietf-schc:fl-token-length"),
        15 => Value::from("fl-variable"),
        16 => Value::from((n % 100_000).to_string()),
        17 => Value::Array(vec![]),
        18 => Value::Object(Default::default()),
        19 => serde_json::json!([{"index": n % 3, "value": "AA=="}]),
        20 => serde_json::json!([{"index": 0, "value": n}]),
        21 => Value::from("ietf-schc:mo-msb"),
        22 => Value::from("ietf-schc:cda-lsb"),
        _ => Value::from(format!("{n:x}")),
    }
}

/// Applies `m` at the place `path` leads to in `v`.
fn mutate(v: &mut Value, path: &[Index], m: &JsonMut) {
    // Walk down while the path lasts and children exist; remember the parent and key.
    let mut cur = v;
    for (depth, i) in path.iter().enumerate() {
        let last = depth + 1 == path.len();
        let child_count = match &*cur {
            Value::Array(a) => a.len(),
            Value::Object(o) => o.len(),
            _ => 0,
        };
        if child_count == 0 {
            break;
        }
        let k = i.index(child_count);
        if last {
            // Mutate this child in its parent.
            match cur {
                Value::Array(a) => match m {
                    JsonMut::Delete => {
                        a.remove(k);
                    }
                    JsonMut::Repeat(n) => {
                        let item = a[k].clone();
                        a.extend(std::iter::repeat_n(item, usize::from(*n)));
                    }
                    _ => change(&mut a[k], m),
                },
                Value::Object(o) => {
                    let key = o.keys().nth(k).unwrap().clone();
                    match m {
                        JsonMut::Delete => {
                            o.shift_remove(&key);
                        }
                        JsonMut::Qualify => {
                            let val = o[&key].clone();
                            let q = if key.contains(':') {
                                key.split(':').nth(1).unwrap().to_string()
                            } else {
                                format!("ietf-schc:{key}")
                            };
                            o.insert(q, val);
                        }
                        JsonMut::Unknown => {
                            o.insert(format!("{key}-x"), Value::Null);
                        }
                        _ => change(o.get_mut(&key).unwrap(), m),
                    }
                }
                _ => {}
            }
            return;
        }
        cur = match cur {
            Value::Array(a) => &mut a[k],
            Value::Object(o) => {
                let key = o.keys().nth(k).unwrap().clone();
                o.get_mut(&key).unwrap()
            }
            _ => unreachable!(),
        };
    }
    change(cur, m);
}

fn tweak(v: &mut Value, n: u64) {
    const KINDS: [&[&str]; 4] = [
        &["mo-equal", "mo-ignore", "mo-msb", "mo-match-mapping"],
        &[
            "cda-not-sent",
            "cda-value-sent",
            "cda-mapping-sent",
            "cda-lsb",
            "cda-compute",
            "cda-deviid",
            "cda-appiid",
        ],
        &["di-bidirectional", "di-up", "di-down"],
        &["fl-variable", "fl-token-length"],
    ];
    match v {
        Value::Number(x) => {
            let x = x.as_u64().unwrap_or(0);
            *v = Value::from(match n % 4 {
                0 => x.saturating_add(1),
                1 => x.saturating_sub(1),
                2 => x.saturating_mul(2),
                _ => n % (x.saturating_add(1)).max(2),
            });
        }
        Value::String(st) => {
            let short = st.rsplit(':').next().unwrap_or("").to_string();
            if let Some(kind) = KINDS.iter().find(|k| k.contains(&short.as_str())) {
                *st = format!("ietf-schc:{}", kind[(n % kind.len() as u64) as usize]);
            } else if short.starts_with("fid-") || st.is_empty() {
                // Leave field names alone.
            } else {
                use base64::Engine as _;
                let bytes = random_value(((n >> 8) % 72) as usize, mix(n));
                *st = base64::engine::general_purpose::STANDARD.encode(bytes);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let k = (n % a.len() as u64) as usize;
            if n & 1 == 0 {
                a.remove(k);
            } else {
                let mut item = a[k].clone();
                if let Some(o) = item.as_object_mut() {
                    if o.contains_key("index") {
                        o.insert("index".into(), Value::from(a.len()));
                    }
                }
                a.push(item);
            }
        }
        _ => {}
    }
}

fn change(v: &mut Value, m: &JsonMut) {
    match m {
        JsonMut::Tweak(n) => tweak(v, *n),
        JsonMut::Replace(k, n) => *v = scalar(*k, *n),
        JsonMut::Nest(d) => {
            for _ in 0..*d {
                *v = Value::Array(vec![v.take()]);
            }
        }
        JsonMut::BigIndex(n) => {
            *v = serde_json::json!([{"index": n, "value": "AA=="}, {"index": 0, "value": "AQ=="}])
        }
        JsonMut::Repeat(n) => {
            let item = v.take();
            *v = Value::Array(vec![item; usize::from(*n)]);
        }
        JsonMut::Delete => *v = Value::Null,
        JsonMut::Qualify | JsonMut::Unknown => {
            if let Value::Object(o) = v {
                o.insert("ietf-schc:rule".into(), Value::Array(vec![]));
                o.insert("unknown-member".into(), Value::Null);
            }
        }
    }
}

/// What `from_str` accepts writes back to the same set, exports, validates, and round-trips
/// the vector's packet (if any) exactly with a lossless rule.
fn check_accepted(
    text: &str,
    packet: Option<&(Vec<u8>, Direction)>,
) -> Result<bool, TestCaseError> {
    match json::from_str(text) {
        Ok(set) => {
            prop_assert!(set.validate().is_ok());
            let again = json::from_value(&json::to_value(&set));
            prop_assert!(again.as_ref().is_ok_and(|a| *a == set), "{:?}", again.err());
            let _ = export::to_rust(&set);
            if let Some((p, dir)) = packet {
                round_trip(&set.as_set(), p, *dir, &Config::default(), true)?;
            }
            Ok(true)
        }
        Err(e) => {
            let _: &json::JsonError = &e;
            let _ = e.to_string();
            let _ = e.location();
            Ok(false)
        }
    }
}

#[test]
fn json_from_str_on_mutated_shipped_files() {
    let docs = shipped_documents();
    assert!(docs.len() >= 20, "found {} documents", docs.len());
    let stats = Stats::new(&["cases", "accepted", "rejected"]);
    let strategy = (
        any::<Index>(),
        prop_oneof![3 => prop::collection::vec(json_mut(), 1..2), 1 => prop::collection::vec(json_mut(), 2..4)],
        prop::option::weighted(0.2, (any::<Index>(), any::<Index>(), ".{0,8}")),
    );
    run(
        "mutated rule files",
        800,
        strategy,
        |(which, muts, text_edit)| {
            stats.hit("cases");
            let (mut v, packet) = docs[which.index(docs.len())].clone();
            // One large repetition per document at most (nested ones would multiply).
            let mut big = false;
            for (path, m) in &muts {
                let m = match m {
                    JsonMut::Repeat(n) if *n > 10 && big => JsonMut::Repeat(n % 10),
                    JsonMut::Repeat(n) if *n > 10 => {
                        big = true;
                        JsonMut::Repeat(*n)
                    }
                    other => other.clone(),
                };
                mutate(&mut v, path, &m);
            }
            let mut text = serde_json::to_string(&v).unwrap();
            if let Some((a, b, ins)) = &text_edit {
                // A textual edit: cut a range and insert something.
                let mut s = a.index(text.len() + 1);
                let mut e = (s + b.index(16)).min(text.len());
                while !text.is_char_boundary(s) {
                    s -= 1;
                }
                while !text.is_char_boundary(e) {
                    e -= 1;
                }
                text.replace_range(s..e.max(s), ins);
            }
            // Also through `from_value` directly (serde's recursion limit does not apply there).
            if let Ok(val) = serde_json::from_str::<Value>(&text) {
                let _ = json::from_value(&val);
            }
            let _ = json::from_value(&v);
            if check_accepted(&text, packet.as_ref())? {
                stats.hit("accepted");
            } else {
                stats.hit("rejected");
            }
            Ok(())
        },
    );
    stats.print("mutated rule files");
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("ietf-schc:schc"),
            Just("rule"),
            Just("entry"),
            Just("rule-id-value"),
            Just("rule-id-length"),
            Just("field-id"),
            Just("ietf-schc:nature-compression"),
            Just("fid-coap-token"),
            Just("fl-variable"),
            Just("mo-msb"),
            Just("cda-lsb"),
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    let keys = prop_oneof![
        Just("ietf-schc:schc".to_string()),
        Just("rule".to_string()),
        Just("entry".to_string()),
        Just("rule-id-value".to_string()),
        Just("rule-id-length".to_string()),
        Just("rule-nature".to_string()),
        Just("field-id".to_string()),
        Just("field-length".to_string()),
        Just("target-value".to_string()),
        Just("index".to_string()),
        Just("value".to_string()),
        Just("matching-operator".to_string()),
        Just("matching-operator-value".to_string()),
        Just("comp-decomp-action".to_string()),
        Just("fragmentation-mode".to_string()),
        Just("fcn-size".to_string()),
        Just("direction".to_string()),
        "[a-z:-]{0,10}",
    ];
    leaf.prop_recursive(6, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

#[test]
fn json_from_str_on_arbitrary_input() {
    let stats = Stats::new(&["cases", "accepted"]);
    let strategy = (
        any::<String>(),
        "[\\[\\]{}\",:0-9a-z -]{0,40}",
        json_value(),
        0usize..3000,
    );
    run("arbitrary JSON", 1500, strategy, |(s, t, v, depth)| {
        stats.hit("cases");
        check_accepted(&s, None)?;
        check_accepted(&t, None)?;
        let wrapped = serde_json::json!({"ietf-schc:schc": {"rule": [v.clone()]}});
        let _ = json::from_value(&v);
        let _ = json::from_value(&wrapped);
        if check_accepted(&wrapped.to_string(), None)? {
            stats.hit("accepted");
        }
        // Deep nesting as text (never built as a `Value`).
        let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        prop_assert!(json::from_str(&deep).is_err());
        let deep_obj = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        prop_assert!(json::from_str(&deep_obj).is_err());
        Ok(())
    });
    stats.print("arbitrary JSON");
}

// ---------------------------------------------------------------------------------------------
// Regressions: one deterministic test per bug the properties found
// ---------------------------------------------------------------------------------------------

fn spec(fid: Fid, fl: Fl, tv: &[&[u8]], mo: Mo, cda: Cda) -> FieldSpec {
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

fn value_sent(fid: Fid) -> FieldSpec {
    spec(
        fid,
        Fl::Fixed(fid.fixed_len().unwrap()),
        &[],
        Mo::Ignore,
        Cda::ValueSent,
    )
}

/// IPv6/UDP, uplink, with `payload` after the UDP header; lengths and checksum right.
fn udp_packet(payload: &[u8]) -> Vec<u8> {
    Pkt {
        dir: Direction::Up,
        tc: 0,
        flow: 0,
        hl: 64,
        dev: [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        app: [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        udp: true,
        ports: (0x1633, 0x1634),
        payload: payload.to_vec(),
        damage: 0,
    }
    .bytes()
}

/// Every IPv6 and UDP field value-sent.
fn all_value_sent() -> Vec<FieldSpec> {
    (0..14)
        .map(|i| value_sent(Fid::from_header_index(i).unwrap()))
        .collect()
}

#[test]
fn msb_with_not_sent_is_rejected_as_lossy() {
    // MSB(4) + not-sent on the hop limit matched 0x4F against 0x40 and gave back 0x40.
    let mut e = all_value_sent();
    e[5] = spec(
        Fid::Ipv6HopLimit,
        Fl::Fixed(8),
        &[&[0x40]],
        Mo::Msb(4),
        Cda::NotSent,
    );
    let mut set = RuleSetBuf::new();
    set.push_compression(RuleId::new(1, 8), &e).unwrap();
    assert_eq!(
        set.validate(),
        Err(RuleError::Entry {
            rule: RuleId::new(1, 8),
            index: 5,
            fid: Fid::Ipv6HopLimit,
            error: EntryError::LossyMsb { x: 4 },
        })
    );
    // MSB over the whole field is equality: allowed.
    e[5] = spec(
        Fid::Ipv6HopLimit,
        Fl::Fixed(8),
        &[&[0x40]],
        Mo::Msb(8),
        Cda::NotSent,
    );
    let mut set = RuleSetBuf::new();
    set.push_compression(RuleId::new(1, 8), &e).unwrap();
    set.validate().unwrap();
    // On a variable-length field the not-sent value is the whole target value: never exact.
    let opt = spec(
        Fid::CoapOption(11),
        Fl::Variable,
        &[b"temp"],
        Mo::Msb(16),
        Cda::NotSent,
    );
    let mut set = RuleSetBuf::new();
    set.push_compression(RuleId::new(1, 8), &[opt]).unwrap();
    assert!(matches!(
        set.validate(),
        Err(RuleError::Entry {
            error: EntryError::LossyMsb { x: 16 },
            ..
        })
    ));
    // And an unchecked set with such a rule never gives back a different packet: the rule
    // matches only a field that not-sent rebuilds exactly.
    let mut p = udp_packet(b"");
    p[7] = 0x4F;
    let mut e = all_value_sent();
    e[5] = spec(
        Fid::Ipv6HopLimit,
        Fl::Fixed(8),
        &[&[0x40]],
        Mo::Msb(4),
        Cda::NotSent,
    );
    let mut set = RuleSetBuf::new();
    set.push_compression(RuleId::new(1, 8), &e).unwrap();
    set.push_no_compression(RuleId::new(0, 8));
    let view = set.as_set();
    let mut out = [0u8; 200];
    let c = codec::compress(&view, &p, Direction::Up, &Config::default(), &mut out).unwrap();
    let mut back = [0u8; 200];
    let d = codec::decompress(
        &view,
        &out[..c.len],
        Direction::Up,
        &Config::default(),
        &mut back,
    )
    .unwrap();
    assert_eq!(&back[..d.len], &p[..]);
}

#[test]
fn udp_checksum_of_a_packet_over_128_kib_does_not_overflow() {
    // The 32-bit sum overflowed (a panic in debug builds) past 65537 words of payload.
    let payload = vec![0xFFu8; 140_000];
    let mut p = udp_packet(&payload);
    // Lengths do not fit 16 bits: keep them as sent, compute only the checksum.
    let c = codec::udp_checksum(&p);
    p[46..48].copy_from_slice(&c.to_be_bytes());
    let mut e = all_value_sent();
    e[13] = spec(
        Fid::UdpChecksum,
        Fl::Fixed(16),
        &[],
        Mo::Ignore,
        Cda::Compute,
    );
    let mut set = RuleSetBuf::new();
    set.push_compression(RuleId::new(1, 8), &e).unwrap();
    set.validate().unwrap();
    let view = set.as_set();
    let mut out = vec![0u8; p.len() + 64];
    let c = codec::compress(&view, &p, Direction::Up, &Config::default(), &mut out).unwrap();
    assert_eq!(c.rule_id, RuleId::new(1, 8));
    let cfg = Config {
        max_packet_size: p.len(),
        ..Config::default()
    };
    let mut back = vec![0u8; p.len()];
    let d = codec::decompress(&view, &out[..c.len], Direction::Up, &cfg, &mut back).unwrap();
    assert!(back[..d.len] == p[..]);
    // The one's-complement sum of 70 000 words of 0xFFFF, checked by hand: all ones fold to
    // 0xFFFF, so the checksum is that of the header words alone.
    let mut small = udp_packet(&[]);
    small[44..46].copy_from_slice(&p[44..46]);
    assert_eq!(codec::udp_checksum(&p), codec::udp_checksum(&small));
}

/// A bare CoAP message and a rule over it from `entries`, no-compression as the fallback;
/// compresses with `first_layer: Coap` and returns what decompression gives back.
fn coap_only(msg: &[u8], set: &RuleSetBuf, dir: Direction) -> (RuleId, Vec<u8>) {
    let view = set.as_set();
    let cfg = Config {
        first_layer: Layer::Coap,
        ..Config::default()
    };
    let mut out = [0u8; 128];
    let c = codec::compress(&view, msg, dir, &cfg, &mut out).unwrap();
    let mut back = [0u8; 128];
    let d = codec::decompress(&view, &out[..c.len], dir, &cfg, &mut back).unwrap();
    (c.rule_id, back[..d.len].to_vec())
}

fn coap_header_value_sent() -> Vec<FieldSpec> {
    [
        Fid::CoapVersion,
        Fid::CoapType,
        Fid::CoapTkl,
        Fid::CoapCode,
        Fid::CoapMid,
    ]
    .into_iter()
    .map(value_sent)
    .collect()
}

#[test]
fn duplicate_descriptor_cannot_stand_in_for_a_missing_field() {
    // Two empty options 0; the rule describes the first one only, and the code twice: the
    // count of descriptors equalled the count of fields, and decompression dropped an option.
    let msg = [0x40, 0x01, 0x00, 0x01, 0x00, 0x00];
    let mut e = coap_header_value_sent();
    e.push(spec(
        Fid::CoapOption(0),
        Fl::Variable,
        &[],
        Mo::Ignore,
        Cda::ValueSent,
    ));
    e.push(value_sent(Fid::CoapCode));
    let mut set = RuleSetBuf::new();
    set.push_compression(RuleId::new(1, 2), &e).unwrap();
    set.push_no_compression(RuleId::new(0, 2));
    assert!(matches!(
        set.validate(),
        Err(RuleError::Entry {
            index: 6,
            error: EntryError::Duplicate { other: 3 },
            ..
        })
    ));
    let (rule, back) = coap_only(&msg, &set, Direction::Up);
    assert_eq!(
        rule,
        RuleId::new(0, 2),
        "the rule with a duplicate must not match"
    );
    assert_eq!(back, msg);
}

#[test]
fn mapping_sent_without_match_mapping_never_sends_a_missing_value() {
    // MSB(1) + mapping-sent (unchecked): version 1 matched MSB(1) of the list's only value, 2,
    // was not in the list, and index 0 was sent: the version came back as 2.
    let msg = [0x40, 0x01, 0x00, 0x01];
    let mut e = coap_header_value_sent();
    e[0] = spec(
        Fid::CoapVersion,
        Fl::Fixed(2),
        &[&[2]],
        Mo::Msb(1),
        Cda::MappingSent,
    );
    let mut set = RuleSetBuf::new();
    set.push_compression(RuleId::new(1, 2), &e).unwrap();
    set.push_no_compression(RuleId::new(0, 2));
    assert!(matches!(
        set.validate(),
        Err(RuleError::Entry {
            index: 0,
            error: EntryError::MappingMismatch,
            ..
        })
    ));
    let (rule, back) = coap_only(&msg, &set, Direction::Up);
    assert_eq!(rule, RuleId::new(0, 2));
    assert_eq!(back, msg);
    // With the value in the list, the index is sent and the field rebuilt.
    e[0] = spec(
        Fid::CoapVersion,
        Fl::Fixed(2),
        &[&[1]],
        Mo::Msb(1),
        Cda::MappingSent,
    );
    let mut set = RuleSetBuf::new();
    set.push_compression(RuleId::new(1, 2), &e).unwrap();
    set.push_no_compression(RuleId::new(0, 2));
    assert_eq!(
        coap_only(&msg, &set, Direction::Up),
        (RuleId::new(1, 2), msg.to_vec())
    );
}

#[test]
fn rule_id_that_reads_back_as_another_rule_is_refused() {
    // No-compression 0/1 before a compression rule 0/2 (unchecked): the SCHC packet of rule
    // 0/2 was decompressed as a no-compression packet, shifted by a bit.
    let msg = [0x40, 0x01, 0x00, 0x01];
    let mut set = RuleSetBuf::new();
    set.push_no_compression(RuleId::new(0, 1));
    set.push_compression(RuleId::new(0, 2), &coap_header_value_sent())
        .unwrap();
    assert_eq!(
        set.validate(),
        Err(RuleError::NotPrefixFree(
            RuleId::new(0, 1),
            RuleId::new(0, 2)
        ))
    );
    let cfg = Config {
        first_layer: Layer::Coap,
        ..Config::default()
    };
    let mut out = [0u8; 16];
    let err = codec::compress(&set.as_set(), &msg, Direction::Up, &cfg, &mut out).unwrap_err();
    assert_eq!(
        err,
        CompressError::RuleIdNotDecodable {
            rule: RuleId::new(0, 2),
            read_as: Some(RuleId::new(0, 1)),
        }
    );
    assert!(err.to_string().contains("rule 0/1"), "{err}");
    // An ID whose value does not fit its length is never written.
    let mut set = RuleSetBuf::new();
    set.push_compression(RuleId::new(9, 2), &coap_header_value_sent())
        .unwrap();
    set.push_no_compression(RuleId::new(0, 40));
    assert_eq!(
        codec::compress(&set.as_set(), &msg, Direction::Up, &cfg, &mut out),
        Err(CompressError::RuleIdNotDecodable {
            rule: RuleId::new(0, 40),
            read_as: None,
        })
    );
}

#[test]
fn descriptor_below_the_first_layer_for_the_other_direction_is_ignored() {
    // A valid rule with a downlink-only IPv6 entry, on an uplink bare CoAP message: compression
    // skipped the entry (other direction) but decompression refused the rule for it.
    let msg = [0x40, 0x01, 0x12, 0x34];
    let mut e = vec![FieldSpec {
        di: Di::Down,
        ..spec(
            Fid::Ipv6HopLimit,
            Fl::Fixed(8),
            &[&[64]],
            Mo::Equal,
            Cda::NotSent,
        )
    }];
    e.extend(coap_header_value_sent());
    let mut set = RuleSetBuf::new();
    set.push_compression(RuleId::new(1, 4), &e).unwrap();
    set.validate().unwrap();
    assert_eq!(
        coap_only(&msg, &set, Direction::Up),
        (RuleId::new(1, 4), msg.to_vec())
    );
}

#[test]
fn spans_at_the_end_of_the_address_space_are_out_of_range() {
    // `start as usize + len` overflowed on 32-bit targets (a panic in debug builds there).
    let rules = [
        Rule {
            id: RuleId::new(1, 2),
            nature: Nature::Compression(Span::new(u32::MAX, u16::MAX)),
        },
        Rule {
            id: RuleId::new(2, 2),
            nature: Nature::Compression(Span::new(0, 1)),
        },
    ];
    let fields = [FieldDesc {
        fid: Fid::CoapVersion,
        fl: Fl::Fixed(2),
        fp: 1,
        di: Di::Bi,
        tv: Span::new(u32::MAX, u16::MAX),
        mo: Mo::Equal,
        cda: Cda::NotSent,
    }];
    let values = [ValueRef::new(u32::MAX, u16::MAX)];
    let set = RuleSet::new_unchecked(&rules, &fields, &values, &[1]);
    assert_eq!(
        set.validate(),
        Err(RuleError::BadFieldSpan(RuleId::new(1, 2)))
    );
    assert!(set.fields(&rules[0]).is_empty());
    assert_eq!(set.tv(&fields[0], 0), None);
    assert_eq!(set.tv(&fields[0], usize::MAX), None);
    let own = [FieldDesc {
        tv: Span::new(0, 1),
        ..fields[0]
    }];
    let set = RuleSet::new_unchecked(&rules, &own, &values, &[1]);
    assert_eq!(set.tv(&own[0], 0), None);
    let cfg = Config {
        first_layer: Layer::Coap,
        ..Config::default()
    };
    let mut out = [0u8; 16];
    let _ = codec::compress(&set, &[0x40, 1, 0, 0], Direction::Up, &cfg, &mut out);
    let _ = codec::decompress(&set, &[0x80, 0, 0], Direction::Up, &cfg, &mut out);
}

#[test]
fn token_of_token_length_before_its_tkl_does_not_match() {
    // fl-token-length token first, TKL later (unchecked): compression took it, and
    // decompression, which needs the TKL to size the token, failed: the packet was lost.
    let msg = [0x42, 0x01, 0x12, 0x34, 0xAB, 0xCD];
    let mut e = vec![spec(
        Fid::CoapToken,
        Fl::TokenLength,
        &[],
        Mo::Ignore,
        Cda::ValueSent,
    )];
    e.extend(coap_header_value_sent());
    let mut set = RuleSetBuf::new();
    set.push_compression(RuleId::new(1, 2), &e).unwrap();
    set.push_no_compression(RuleId::new(0, 2));
    assert!(matches!(
        set.validate(),
        Err(RuleError::Entry {
            index: 0,
            error: EntryError::TokenBeforeTkl,
            ..
        })
    ));
    assert_eq!(
        coap_only(&msg, &set, Direction::Up),
        (RuleId::new(0, 2), msg.to_vec())
    );
    // After the TKL it matches.
    e.rotate_left(1);
    let mut set = RuleSetBuf::new();
    set.push_compression(RuleId::new(1, 2), &e).unwrap();
    set.push_no_compression(RuleId::new(0, 2));
    set.validate().unwrap();
    assert_eq!(
        coap_only(&msg, &set, Direction::Up),
        (RuleId::new(1, 2), msg.to_vec())
    );
}

#[test]
fn decompression_names_a_dangling_target_value_or_a_partial_byte_msb() {
    // Unchecked tables: a variable-length value whose reference points past the value table
    // was rebuilt as empty without a word; MSB(4)/LSB on a variable length wrote 4 bits fewer
    // than it counted.
    let rules = [Rule {
        id: RuleId::new(1, 2),
        nature: Nature::Compression(Span::new(0, 1)),
    }];
    let cfg = Config {
        first_layer: Layer::Coap,
        ..Config::default()
    };
    let option = |tv: Span, mo: Mo, cda: Cda| FieldDesc {
        fid: Fid::CoapOption(11),
        fl: Fl::Variable,
        fp: 1,
        di: Di::Bi,
        tv,
        mo,
        cda,
    };
    let values = [ValueRef::new(0, 2)];
    let pool = [b'a', b'b'];
    let reason = |fields: &[FieldDesc], schc: &[u8]| {
        let set = RuleSet::new_unchecked(&rules, fields, &values, &pool);
        let mut out = [0u8; 64];
        match codec::decompress(&set, schc, Direction::Up, &cfg, &mut out) {
            Err(DecompressError::BadField {
                reason, entry: 0, ..
            }) => reason,
            other => panic!("{other:?}"),
        }
    };
    let dangling = [option(Span::new(5, 1), Mo::Equal, Cda::NotSent)];
    assert_eq!(
        reason(&dangling, &[0x40]),
        "target value reference is out of range"
    );
    let dangling_lsb = [option(Span::new(5, 1), Mo::Msb(8), Cda::Lsb)];
    assert_eq!(
        reason(&dangling_lsb, &[0x40, 0]),
        "target value reference is out of range"
    );
    let half_byte = [option(Span::new(0, 1), Mo::Msb(4), Cda::Lsb)];
    assert_eq!(
        reason(&half_byte, &[0x40, 0x10, 0]),
        "MSB of a variable length is not bytes"
    );
}
