//! Builds IPv6/UDP/CoAP packets and rules that match them from a stream of bytes.
//!
//! Shared by the structure-aware fuzz target (`fuzz/fuzz_targets/roundtrip.rs`, where the bytes
//! come from libFuzzer), its corpus replay on stable (`tests/fuzz_corpus.rs`) and the
//! differential test against microschc (`tests/differential.rs`, where the bytes come from a
//! seeded generator). It uses only the library's public API, so it is included with `#[path]`
//! by the tests and as a module by the fuzz crate.
//!
//! With [`Profile::Microschc`] everything stays within what microschc 0.22 can express (see
//! `tests/oracle/oracle.py`): rules list the fields in packet order, both halves of each address
//! in the combinations microschc can merge, the CoAP options it knows with non-empty values, no
//! MSB on variable-length fields, mappings of at least two values, and a token whose length the
//! rule fixes.

#![allow(dead_code)]

use lpwan_schc::codec::udp_checksum;
use lpwan_schc::rule::{
    Cda, Direction, DirectionIndicator as Di, Fid, FieldLength, FieldSpec, MatchingOperator as Mo,
    RuleId, RuleSetBuf,
};

/// Reads choices from a byte string; past its end every read is 0, so any input is a case.
pub struct Src<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Src<'a> {
    /// A source over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// The next byte (0 past the end).
    pub fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }

    /// A number below `n` (0 when `n` is 0), from one or two bytes.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else if n <= 256 {
            usize::from(self.byte()) % n
        } else {
            (usize::from(self.byte()) << 8 | usize::from(self.byte())) % n
        }
    }

    /// True with probability about `p` in 256.
    pub fn chance(&mut self, p: u8) -> bool {
        self.byte() < p
    }

    /// Whether the input is used up.
    pub fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
}

/// Which rules to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Everything our model allows, in any entry order.
    Full,
    /// Only what microschc 0.22 expresses the same way (see the module doc).
    Microschc,
}

/// One field of a generated packet.
#[derive(Debug, Clone)]
pub struct Field {
    /// Its identifier.
    pub fid: Fid,
    /// Its position (1 = first occurrence).
    pub fp: u8,
    /// Its value: right-aligned in whole bytes for fixed-length fields, the bytes otherwise.
    pub value: Vec<u8>,
    /// Its length in bits.
    pub bits: usize,
    /// A CoAP option (variable length).
    pub var: bool,
}

impl Field {
    fn fixed(fid: Fid, v: u64, bits: usize) -> Self {
        let n = bits.div_ceil(8);
        let value = v.to_be_bytes()[8 - n..].to_vec();
        Self {
            fid,
            fp: 1,
            value,
            bits,
            var: false,
        }
    }
}

/// A generated packet and its fields in packet order.
#[derive(Debug, Clone)]
pub struct Packet {
    /// The IPv6 packet.
    pub bytes: Vec<u8>,
    /// The direction it travels.
    pub dir: Direction,
    /// Its header fields (and CoAP options) in packet order; dev/app named for `dir`.
    pub fields: Vec<Field>,
    /// Whether it carries CoAP (UDP port 5683 on the application side).
    pub coap: bool,
}

/// CoAP options microschc knows (option numbers).
const MICROSCHC_OPTIONS: [u16; 6] = [3, 6, 11, 12, 15, 17];
/// Options it may repeat.
const REPEATABLE: [u16; 2] = [11, 15];

fn be(v: u64, n: usize) -> Vec<u8> {
    v.to_be_bytes()[8 - n..].to_vec()
}

fn uint(src: &mut Src<'_>, bits: usize) -> u64 {
    let mut v = 0u64;
    for _ in 0..bits.div_ceil(8) {
        v = v << 8 | u64::from(src.byte());
    }
    if bits < 64 {
        v & ((1u64 << bits) - 1)
    } else {
        v
    }
}

/// The longest value of the uint options microschc knows (RFC 7252 §5.10, RFC 7641).
fn uint_option_max(n: u16) -> Option<usize> {
    match n {
        6 => Some(3),
        12 | 17 => Some(2),
        _ => None,
    }
}

/// An option delta or length nibble and its extension bytes (RFC 7252 §3.1).
fn ext(v: usize) -> (u8, Vec<u8>) {
    match v {
        0..=12 => (v as u8, vec![]),
        13..=268 => (13, vec![(v - 13) as u8]),
        _ => (14, be((v - 269) as u64, 2)),
    }
}

/// A packet from `src`.
pub fn packet(src: &mut Src<'_>, profile: Profile) -> Packet {
    let micro = profile == Profile::Microschc;
    let dir = if micro || src.byte() & 1 == 0 {
        Direction::Up
    } else {
        Direction::Down
    };
    let tc = uint(src, 8);
    let fl = uint(src, 20);
    let hl = uint(src, 8);
    // Prefixes and IIDs: a few distinct values so that rules and decoys meet.
    let dev_prefix = 0x2001_0db8_0000_0000 | uint(src, 8);
    let app_prefix = 0x2001_0db8_0001_0000 | uint(src, 8) << 8;
    let dev_iid = uint(src, 64);
    let app_iid = if src.chance(128) { 1 } else { uint(src, 64) };
    let coap = src.chance(200);
    let app_port = if coap {
        5683
    } else {
        // Not 5683: microschc would parse CoAP there.
        0x1000 + uint(src, 12) as u16
    };
    let dev_port = if src.chance(128) {
        0xF0B0 | uint(src, 4) as u16
    } else {
        (uint(src, 16) as u16).clamp(1, 5682)
    };

    // The UDP payload: a CoAP message or bytes.
    let mut udp_payload = Vec::new();
    let mut coap_fields = Vec::new();
    if coap {
        let ty = uint(src, 2);
        let tkl = src.below(9);
        let code = uint(src, 8);
        let mid = uint(src, 16);
        let token = src.bytes(tkl);
        udp_payload.push(0x40 | (ty as u8) << 4 | tkl as u8);
        udp_payload.push(code as u8);
        udp_payload.extend(be(mid, 2));
        udp_payload.extend(&token);
        coap_fields.push(Field::fixed(Fid::CoapVersion, 1, 2));
        coap_fields.push(Field::fixed(Fid::CoapType, ty, 2));
        coap_fields.push(Field::fixed(Fid::CoapTkl, tkl as u64, 4));
        coap_fields.push(Field::fixed(Fid::CoapCode, code, 8));
        coap_fields.push(Field::fixed(Fid::CoapMid, mid, 16));
        coap_fields.push(Field {
            fid: Fid::CoapToken,
            fp: 1,
            value: token,
            bits: tkl * 8,
            var: false,
        });
        // Options in increasing number.
        let count = src.below(if micro { 5 } else { 7 });
        let mut numbers: Vec<u16> = (0..count)
            .map(|_| {
                if micro || src.chance(192) {
                    MICROSCHC_OPTIONS[src.below(MICROSCHC_OPTIONS.len())]
                } else {
                    1 + src.below(2000) as u16
                }
            })
            .collect();
        numbers.sort_unstable();
        if micro {
            // Only the repeatable options appear twice.
            numbers.dedup_by(|a, b| a == b && !REPEATABLE.contains(a));
        }
        let mut prev = 0u16;
        let mut seen: Vec<(u16, u8)> = Vec::new();
        for n in numbers {
            let fp = match seen.iter_mut().find(|(m, _)| *m == n) {
                Some((_, c)) => {
                    *c += 1;
                    *c
                }
                None => {
                    seen.push((n, 1));
                    1
                }
            };
            let value: Vec<u8> = match uint_option_max(n) {
                // Observe, Content-Format and Accept are uints: microschc reads them as
                // numbers, so give it canonical ones (no leading zero byte).
                Some(max) if micro => {
                    let len = 1 + src.below(max);
                    let mut v = src.bytes(len);
                    v[0] = v[0].max(1);
                    v
                }
                _ => {
                    let min = usize::from(micro);
                    let short = src.chance(230);
                    let len = min + src.below(if short { 13 } else { 300 });
                    (0..len).map(|_| b'a' + src.below(26) as u8).collect()
                }
            };
            let len = value.len();
            let (dn, dx) = ext(usize::from(n - prev));
            let (ln, lx) = ext(len);
            udp_payload.push(dn << 4 | ln);
            udp_payload.extend(dx);
            udp_payload.extend(lx);
            udp_payload.extend(&value);
            coap_fields.push(Field {
                fid: Fid::CoapOption(n),
                fp,
                bits: len * 8,
                value,
                var: true,
            });
            prev = n;
        }
        if src.chance(128) {
            udp_payload.push(0xFF);
            let n = 1 + src.below(40);
            udp_payload.extend(src.bytes(n));
        }
    } else {
        let n = src.below(48);
        udp_payload.extend(src.bytes(n));
    }

    let udp_len = 8 + udp_payload.len();
    let (src_prefix, src_iid, dst_prefix, dst_iid, sport, dport) = match dir {
        Direction::Up => (dev_prefix, dev_iid, app_prefix, app_iid, dev_port, app_port),
        Direction::Down => (app_prefix, app_iid, dev_prefix, dev_iid, app_port, dev_port),
    };
    let mut bytes = Vec::with_capacity(48 + udp_payload.len());
    bytes.extend(be(6 << 28 | tc << 20 | fl, 4));
    bytes.extend(be(udp_len as u64, 2));
    bytes.push(17);
    bytes.push(hl as u8);
    for v in [src_prefix, src_iid, dst_prefix, dst_iid] {
        bytes.extend(v.to_be_bytes());
    }
    bytes.extend(sport.to_be_bytes());
    bytes.extend(dport.to_be_bytes());
    bytes.extend(be(udp_len as u64, 2));
    bytes.extend([0, 0]);
    bytes.extend(&udp_payload);
    let ck = udp_checksum(&bytes);
    bytes[46..48].copy_from_slice(&ck.to_be_bytes());

    // Fields in packet order: dev/app follow the direction.
    let mut fields = vec![
        Field::fixed(Fid::Ipv6Version, 6, 4),
        Field::fixed(Fid::Ipv6TrafficClass, tc, 8),
        Field::fixed(Fid::Ipv6FlowLabel, fl, 20),
        Field::fixed(Fid::Ipv6PayloadLength, udp_len as u64, 16),
        Field::fixed(Fid::Ipv6NextHeader, 17, 8),
        Field::fixed(Fid::Ipv6HopLimit, hl, 8),
    ];
    let dev = [
        Field::fixed(Fid::Ipv6DevPrefix, dev_prefix, 64),
        Field::fixed(Fid::Ipv6DevIid, dev_iid, 64),
    ];
    let app = [
        Field::fixed(Fid::Ipv6AppPrefix, app_prefix, 64),
        Field::fixed(Fid::Ipv6AppIid, app_iid, 64),
    ];
    let dev_p = Field::fixed(Fid::UdpDevPort, u64::from(dev_port), 16);
    let app_p = Field::fixed(Fid::UdpAppPort, u64::from(app_port), 16);
    match dir {
        Direction::Up => {
            fields.extend(dev);
            fields.extend(app);
            fields.extend([dev_p, app_p]);
        }
        Direction::Down => {
            fields.extend(app);
            fields.extend(dev);
            fields.extend([app_p, dev_p]);
        }
    }
    fields.push(Field::fixed(Fid::UdpLength, udp_len as u64, 16));
    fields.push(Field::fixed(Fid::UdpChecksum, u64::from(ck), 16));
    fields.extend(coap_fields);
    Packet {
        bytes,
        dir,
        fields,
        coap,
    }
}

/// `value` (right-aligned in whole bytes, `bits` long) with random bits below its `x` most
/// significant ones.
fn perturb_low(src: &mut Src<'_>, value: &[u8], bits: usize, x: usize) -> Vec<u8> {
    let mut out = value.to_vec();
    let lead = value.len() * 8 - bits;
    for i in (lead + x)..value.len() * 8 {
        if src.chance(128) {
            out[i / 8] ^= 0x80 >> (i % 8);
        }
    }
    out
}

/// `value` with its lowest bits changed by `k` (within `bits`), for decoys.
fn other_value(value: &[u8], bits: usize, k: u8) -> Vec<u8> {
    let mut d = value.to_vec();
    if let Some(last) = d.last_mut() {
        let mask = if bits < 8 { (1u8 << bits) - 1 } else { 0xFF };
        *last ^= k & mask;
    }
    d
}

/// What a descriptor does with its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    EqualNotSent,
    IgnoreValueSent,
    MsbLsb,
    Mapping,
    Compute,
}

fn spec(f: &Field, fl: FieldLength, di: Di, tv: Vec<Vec<u8>>, mo: Mo, cda: Cda) -> FieldSpec {
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

/// A descriptor of `kind` that matches `f`.
fn descriptor(src: &mut Src<'_>, f: &Field, kind: Kind, fl: FieldLength, di: Di) -> FieldSpec {
    // A field of no bits has one value: no list of two to map.
    let kind = if kind == Kind::Mapping && fl != FieldLength::Variable && f.bits == 0 {
        Kind::EqualNotSent
    } else {
        kind
    };
    match kind {
        Kind::EqualNotSent => spec(f, fl, di, vec![f.value.clone()], Mo::Equal, Cda::NotSent),
        Kind::IgnoreValueSent => spec(f, fl, di, vec![], Mo::Ignore, Cda::ValueSent),
        Kind::Compute => spec(f, fl, di, vec![], Mo::Ignore, Cda::Compute),
        Kind::MsbLsb => {
            let var = fl == FieldLength::Variable;
            let mut x = src.below(f.bits + 1);
            if var {
                x -= x % 8;
            }
            let tv = if var {
                let mut t = f.value[..x / 8].to_vec();
                t.extend(std::iter::repeat_n(0x5A, src.below(3)));
                t
            } else {
                perturb_low(src, &f.value, f.bits, x)
            };
            spec(f, fl, di, vec![tv], Mo::Msb(x as u16), Cda::Lsb)
        }
        Kind::Mapping => {
            // Decoys of a variable-length field are longer; of a fixed one, other values.
            let var = fl == FieldLength::Variable;
            let room = if var || f.bits >= 3 { 6 } else { 1 << f.bits };
            let n = 2 + src.below(room - 1);
            let at = src.below(n);
            let mut list: Vec<Vec<u8>> = Vec::new();
            let mut k = 1u8;
            while list.len() < n {
                if list.len() == at {
                    list.push(f.value.clone());
                    continue;
                }
                let d = if var {
                    let mut d = f.value.clone();
                    d.push(k);
                    d
                } else {
                    other_value(&f.value, f.bits, k)
                };
                k = k.wrapping_add(1);
                if d != f.value && !list.contains(&d) {
                    list.push(d);
                }
                if k == 0 {
                    break; // a field too narrow for n distinct values
                }
            }
            if !list.contains(&f.value) {
                list.push(f.value.clone());
            }
            spec(f, fl, di, list, Mo::MatchMapping, Cda::MappingSent)
        }
    }
}

fn computable(fid: Fid) -> bool {
    matches!(
        fid,
        Fid::Ipv6PayloadLength | Fid::UdpLength | Fid::UdpChecksum
    )
}

fn pick(src: &mut Src<'_>, f: &Field) -> Kind {
    if computable(f.fid) && src.chance(100) {
        return Kind::Compute;
    }
    match src.below(4) {
        0 => Kind::EqualNotSent,
        1 => Kind::IgnoreValueSent,
        2 => Kind::MsbLsb,
        _ => Kind::Mapping,
    }
}

/// The entries of a rule that matches `p` (all its fields), from `src`.
pub fn entries(src: &mut Src<'_>, p: &Packet, profile: Profile) -> Vec<FieldSpec> {
    match profile {
        Profile::Full => full_entries(src, p),
        Profile::Microschc => microschc_entries(src, p),
    }
}

fn full_entries(src: &mut Src<'_>, p: &Packet) -> Vec<FieldSpec> {
    // The direction indicator of the TKL entry, once it is written.
    let mut tkl_di: Option<Di> = None;
    let mut out: Vec<FieldSpec> = Vec::new();
    for f in &p.fields {
        let kind = pick(src, f);
        let mut di = match src.below(3) {
            0 => Di::Bi,
            _ if p.dir == Direction::Up => Di::Up,
            _ => Di::Down,
        };
        let fl = match tkl_di {
            Some(tdi) if f.fid == Fid::CoapToken && src.chance(128) => {
                // With TKL described, the token may take its length from it (in the
                // directions TKL is described for).
                di = tdi;
                FieldLength::TokenLength
            }
            _ if f.var && src.chance(40) && f.bits > 0 => FieldLength::Fixed(f.bits as u16),
            _ if f.var => FieldLength::Variable,
            _ => FieldLength::Fixed(f.bits as u16),
        };
        let d = descriptor(src, f, kind, fl, di);
        if f.fid == Fid::CoapTkl {
            tkl_di = Some(di);
        }
        if src.chance(16) && !out.is_empty() && fl != FieldLength::TokenLength {
            // Residues follow rule order, whatever it is (a token that takes its length
            // from TKL stays after it).
            let at = src.below(out.len() + 1);
            out.insert(at, d);
        } else {
            out.push(d);
        }
    }
    out
}

/// A (prefix, IID) pair of kinds microschc can merge into one 128-bit field.
fn address_kinds(src: &mut Src<'_>) -> (Kind, Kind) {
    match src.below(6) {
        0 => (Kind::EqualNotSent, Kind::EqualNotSent),
        1 => (Kind::EqualNotSent, Kind::IgnoreValueSent),
        2 => (Kind::EqualNotSent, Kind::MsbLsb),
        3 => (Kind::MsbLsb, Kind::IgnoreValueSent),
        4 => (Kind::IgnoreValueSent, Kind::IgnoreValueSent),
        _ => (Kind::Mapping, Kind::EqualNotSent),
    }
}

fn microschc_entries(src: &mut Src<'_>, p: &Packet) -> Vec<FieldSpec> {
    let mut out: Vec<FieldSpec> = Vec::new();
    let mut i = 0;
    let mut tkl_equal = true;
    while i < p.fields.len() {
        let f = &p.fields[i];
        let fl_fixed = FieldLength::Fixed(f.bits as u16);
        if matches!(f.fid, Fid::Ipv6DevPrefix | Fid::Ipv6AppPrefix) {
            let iid = &p.fields[i + 1];
            let (kp, ki) = address_kinds(src);
            out.push(descriptor(src, f, kp, fl_fixed, Di::Bi));
            out.push(descriptor(
                src,
                iid,
                ki,
                FieldLength::Fixed(iid.bits as u16),
                Di::Bi,
            ));
            i += 2;
            continue;
        }
        let mut kind = pick(src, f);
        let fl = if f.var {
            // No MSB on variable-length fields.
            if kind == Kind::MsbLsb {
                kind = Kind::IgnoreValueSent;
            }
            FieldLength::Variable
        } else if f.fid == Fid::CoapToken {
            if tkl_equal {
                FieldLength::TokenLength
            } else {
                fl_fixed
            }
        } else {
            fl_fixed
        };
        if f.fid == Fid::CoapTkl {
            tkl_equal = kind == Kind::EqualNotSent;
        }
        if f.fid == Fid::CoapToken && f.bits == 0 {
            // microschc's parser gives no token field when TKL is 0: leave it out of the
            // rule, as the interop vectors do.
            i += 1;
            continue;
        }
        out.push(descriptor(src, f, kind, fl, Di::Bi));
        i += 1;
    }
    out
}

/// A decoy of `entries`: the same rule with one `Equal` target changed so that it cannot
/// match, if the rule has one.
pub fn decoy(src: &mut Src<'_>, entries: &[FieldSpec]) -> Option<Vec<FieldSpec>> {
    let candidates: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.mo == Mo::Equal && e.tv.first().is_some_and(|v| !v.is_empty()))
        .map(|(i, _)| i)
        .collect();
    if candidates.is_empty() {
        return None;
    }
    let at = candidates[src.below(candidates.len())];
    let mut out = entries.to_vec();
    let e = &mut out[at];
    let bits = match e.fl {
        FieldLength::Fixed(b) => usize::from(b),
        _ => e.tv[0].len() * 8,
    };
    e.tv[0] = other_value(&e.tv[0], bits, 1 + src.below(255) as u8);
    Some(out)
}

/// A rule set for `p`: maybe a decoy, the matching rule, and a no-compression rule; rule IDs
/// of one length, distinct. Returns the set and the matching rule's ID.
pub fn rule_set(src: &mut Src<'_>, p: &Packet, profile: Profile) -> (RuleSetBuf, RuleId) {
    let len = 2 + src.below(7) as u8; // 2..8 bits: room for three IDs
    let base = uint(src, usize::from(len)) as u32;
    let id = |k: u32| RuleId::new((base + k) % (1 << len), len);
    let matching = entries(src, p, profile);
    let mut set = RuleSetBuf::new();
    let mut k = 0;
    if src.chance(128) {
        if let Some(d) = decoy(src, &matching) {
            set.push_compression(id(k), &d).expect("small rule");
            k += 1;
        }
    }
    let rid = id(k);
    set.push_compression(rid, &matching).expect("small rule");
    set.push_no_compression(id(k + 1));
    (set, rid)
}
