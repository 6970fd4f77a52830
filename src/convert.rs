//! Rule files of other SCHC implementations, converted to the RFC 9363 model (feature `std`):
//! microschc's JSON contexts ([`from_microschc`]) and openschc's rule files
//! ([`from_openschc`]). Both return a validated [`RuleSetBuf`] and the list of places where the
//! source model cannot be expressed exactly ([`Converted::warnings`]), one line each.
//!
//! # microschc
//!
//! A microschc context is `{"ruleset": [rule, …]}`; a rule has an `id` and `field_descriptors`
//! whose `id` names a field by protocol and name (`"IPv6:Source Address"`, `"UDP:Source Port"`,
//! `"CoAP:Option Delta"`, …); values are buffers `{"content": hex, "length": bits, "padding":
//! "left"|"right"}` (left padding: the value is the last `length` bits of `content`; right: the
//! first). The conversion:
//!
//! - **Roles.** microschc names source and destination; RFC 8724 names device and application.
//!   Given the device's address (or inferring it: the endpoint of a rule that talks from a port
//!   other than 5683/5684 to a CoAP server on 5683/5684), a rule whose source address is the
//!   device becomes an uplink rule (every entry `di-up`, source → Dev, destination → App), one
//!   whose destination is the device a downlink rule (`di-down`, source → App). Without a
//!   device, the source is taken as the device and every rule is uplink. microschc matches a
//!   rule only when its packet is processed in the direction of every descriptor; it processes
//!   captures as uplink, so `Up` and `Bi` descriptors are kept and `Dw` ones dropped (with a
//!   warning).
//! - **Addresses** (one 128-bit field in microschc) become a prefix and an IID entry: equal and
//!   ignore split in two; MSB(x) becomes MSB on the prefix (x ≤ 64) or equal prefix and MSB on
//!   the IID; match-mapping becomes a mapping on whichever half varies (a warning when both do:
//!   the two mappings accept more addresses than microschc's list).
//! - **Residue order.** microschc sends residues in packet order, RFC 8724 in rule order. The
//!   converted entries keep microschc's order, and each rule applies in one direction only, so
//!   the residues come out in the same order as microschc's.
//! - **CoAP options.** microschc's syntactic descriptors (Option Delta, Delta Extended, Length,
//!   Length Extended, Value) become one entry per option, named by its number (the running sum
//!   of the deltas, which must be `equal`) and its position (occurrence of that number in the
//!   rule; microschc's position 0 carries no meaning). An option whose length is fixed by an
//!   `equal` Length gets a fixed field length (no size prefix, as in microschc); one whose
//!   length is sent (MSB/LSB or value-sent) gets `fl-variable`, whose 4-bit size prefix replaces
//!   microschc's length residue (a warning gives the difference). Semantic option descriptors
//!   (`"CoAP:Option Uri-Path"`) map directly.
//! - **Payload Marker.** RFC 8724 rules do not describe CoAP's payload marker; microschc's
//!   `equal`/`not-sent` Payload Marker descriptor is dropped, so the converted rule matches
//!   packets with and without a payload (a warning).
//! - **Lossy descriptors** (`ignore` with `not-sent`) are kept as they are: packets whose value
//!   differs from the target value do not come back byte for byte, in microschc as here (a
//!   warning).
//!
//! # openschc
//!
//! An openschc rule file is a rule, a list of rules, or a device context `{"DeviceID": …,
//! "SoR": [rule, …]}`. A rule has `RuleID` (or `RuleIDValue`) and `RuleIDLength`, and one of
//! `Compression` (a list of entries `{"FID", "FL", "FP", "DI", "TV", "MO", "MO.VAL", "CDA"}`),
//! `NoCompression` or `Fragmentation` (`FRMode`, `FRDirection`, `FRModeProfile`). Names are
//! case-insensitive, as in openschc. Target values follow openschc: an integer is its shortest
//! big-endian bytes (0 is one zero byte), an 8-byte integer for IPv6 prefixes and IIDs; a string
//! is an IPv6 address (`"2001:db8::/64"`, `"::1"`: the top or bottom 8 bytes) for prefixes and
//! IIDs, and its UTF-8 bytes elsewhere. `COAP.END` entries are dropped, as openschc drops them.
//! ICMPv6 fields are not supported.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv6Addr;

use serde_json::{Map, Value};

use crate::rule::{
    AckBehavior, BitmapFormat, Cda, Direction, DirectionIndicator, Fid, FieldLength, FieldSpec,
    FragMode, FragParams, MatchingOperator, RcsAlgorithm, RuleError, RuleId, RuleSetBuf,
    TileInAll1, Timer,
};

/// A converted rule set and the approximations made.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The rules, validated.
    pub rules: RuleSetBuf,
    /// One line per kind of approximation, naming the rules concerned.
    pub warnings: Vec<String>,
}

/// Why a rule file cannot be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// Not JSON.
    #[error("invalid JSON: {0}")]
    Syntax(#[from] serde_json::Error),
    /// Something the conversion cannot read or express, and where.
    #[error("{at}: {reason}")]
    Invalid {
        /// The rule and descriptor (e.g. `rule 3 (ID 3/4), descriptor 7 (CoAP:Option Value)`).
        at: String,
        /// What is wrong.
        reason: String,
    },
    /// The converted rules are inconsistent.
    #[error(transparent)]
    Rule(#[from] RuleError),
}

fn invalid(at: &str, reason: impl Into<String>) -> ConvertError {
    ConvertError::Invalid {
        at: at.to_string(),
        reason: reason.into(),
    }
}

/// Collects warnings by kind, with the rules they concern.
#[derive(Default)]
struct Warnings(BTreeMap<String, Vec<String>>);

impl Warnings {
    fn add(&mut self, what: impl Into<String>, rule: RuleId) {
        let list = self.0.entry(what.into()).or_default();
        let r = rule.to_string();
        if !list.contains(&r) {
            list.push(r);
        }
    }

    fn into_lines(self) -> Vec<String> {
        self.0
            .into_iter()
            .map(|(what, rules)| {
                let s = if rules.len() == 1 { "" } else { "s" };
                format!("rule{s} {}: {what}", rules.join(", "))
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Bit strings
// ---------------------------------------------------------------------------------------------

/// A value of `len` bits.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bits(Vec<bool>);

impl Bits {
    fn from_bytes(bytes: &[u8], start: usize, len: usize) -> Self {
        Bits(
            (start..start + len)
                .map(|i| bytes.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0))
                .collect(),
        )
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    /// Right-aligned in `ceil(len / 8)` bytes.
    fn bytes(&self) -> Vec<u8> {
        let n = self.0.len().div_ceil(8);
        let mut out = vec![0u8; n];
        let pad = n * 8 - self.0.len();
        for (i, &b) in self.0.iter().enumerate() {
            if b {
                let j = pad + i;
                if let Some(byte) = out.get_mut(j / 8) {
                    *byte |= 0x80 >> (j % 8);
                }
            }
        }
        out
    }

    /// The value followed by `width - len` zero bits, right-aligned (an MSB target value).
    fn shifted_to(&self, width: usize) -> Vec<u8> {
        let mut v = self.0.clone();
        v.resize(width.max(self.0.len()), false);
        Bits(v).bytes()
    }

    fn slice(&self, start: usize, len: usize) -> Bits {
        Bits(self.0.iter().skip(start).take(len).copied().collect())
    }

    fn to_u64(&self) -> u64 {
        self.0.iter().fold(0u64, |a, &b| (a << 1) | u64::from(b))
    }
}

/// Width of a mapping-sent index for `n` values (RFC 8724: ceil(log2 n)).
fn index_bits(n: usize) -> u32 {
    if n <= 1 {
        0
    } else {
        usize::BITS - (n - 1).leading_zeros()
    }
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// microschc
// ---------------------------------------------------------------------------------------------

/// A microschc buffer.
fn ms_buffer(v: &Value, at: &str, what: &str) -> Result<Bits, ConvertError> {
    let o = v
        .as_object()
        .ok_or_else(|| invalid(at, format!("{what} must be a buffer object")))?;
    let content = o.get("content").and_then(Value::as_str).unwrap_or("");
    let bytes = hex_bytes(content)
        .ok_or_else(|| invalid(at, format!("{what}.content is not hex: {content:?}")))?;
    let len = o
        .get("length")
        .and_then(Value::as_u64)
        .map_or(bytes.len() * 8, |l| l as usize);
    if len > bytes.len() * 8 {
        return Err(invalid(
            at,
            format!(
                "{what}.length {len} is longer than its {} content bits",
                bytes.len() * 8
            ),
        ));
    }
    let right = match o.get("padding").and_then(Value::as_str) {
        None | Some("left") => false,
        Some("right") => true,
        Some(p) => {
            return Err(invalid(
                at,
                format!("{what}.padding {p:?} is not left or right"),
            ))
        }
    };
    let start = if right { 0 } else { bytes.len() * 8 - len };
    Ok(Bits::from_bytes(&bytes, start, len))
}

/// microschc's target value: one buffer, or a match-mapping list.
enum MsTv {
    None,
    One(Bits),
    Map(Vec<Bits>),
}

struct MsField {
    id: String,
    length: usize,
    di: String,
    tv: MsTv,
    mo: String,
    cda: String,
    at: String,
}

fn ms_field(
    v: &Value,
    at: &str,
    rule: RuleId,
    warn: &mut Warnings,
) -> Result<MsField, ConvertError> {
    let o = v
        .as_object()
        .ok_or_else(|| invalid(at, "a field descriptor must be an object"))?;
    let s = |k: &str| {
        o.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| invalid(at, format!("{k} is missing or not a string")))
    };
    let id = s("id")?;
    let at = format!("{at} ({id})");
    let tv = match o.get("target_value") {
        None | Some(Value::Null) => MsTv::None,
        Some(Value::Array(items)) => {
            let mut list = Vec::new();
            let mut given_bits = None;
            for item in items {
                let index = ms_buffer(item.get("index").unwrap_or(&Value::Null), &at, "index")?;
                let value = ms_buffer(item.get("value").unwrap_or(&Value::Null), &at, "value")?;
                given_bits = Some(index.len());
                list.push((index.to_u64(), value));
            }
            list.sort_by_key(|(i, _)| *i);
            let indices: Vec<u64> = list.iter().map(|(i, _)| *i).collect();
            if indices.iter().enumerate().any(|(k, &i)| i != k as u64) {
                return Err(invalid(
                    &at,
                    format!("mapping indices {indices:?} do not run 0, 1, 2, ..."),
                ));
            }
            let ours = index_bits(list.len());
            if let Some(b) = given_bits.filter(|&b| b != ours as usize) {
                warn.add(
                    format!("{id}: microschc sends the mapping index on {b} bits, RFC 8724 on {ours} (ceil(log2 {}))", list.len()),
                    rule,
                );
            }
            MsTv::Map(list.into_iter().map(|(_, v)| v).collect())
        }
        Some(b) => MsTv::One(ms_buffer(b, &at, "target_value")?),
    };
    Ok(MsField {
        length: o.get("length").and_then(Value::as_u64).unwrap_or(0) as usize,
        di: o
            .get("direction")
            .and_then(Value::as_str)
            .unwrap_or("Bi")
            .to_string(),
        mo: s("matching_operator")?,
        cda: s("compression_decompression_action")?,
        tv,
        id,
        at,
    })
}

/// The fixed-width header fields microschc names, with our FID for each role.
fn ms_header(id: &str) -> Option<(Fid, u16)> {
    Some(match id {
        "IPv6:Version" => (Fid::Ipv6Version, 4),
        "IPv6:Traffic Class" => (Fid::Ipv6TrafficClass, 8),
        "IPv6:Flow Label" => (Fid::Ipv6FlowLabel, 20),
        "IPv6:Payload Length" => (Fid::Ipv6PayloadLength, 16),
        "IPv6:Next Header" => (Fid::Ipv6NextHeader, 8),
        "IPv6:Hop Limit" => (Fid::Ipv6HopLimit, 8),
        "UDP:Length" => (Fid::UdpLength, 16),
        "UDP:Checksum" => (Fid::UdpChecksum, 16),
        "CoAP:Version" => (Fid::CoapVersion, 2),
        "CoAP:Type" => (Fid::CoapType, 2),
        "CoAP:Token Length" => (Fid::CoapTkl, 4),
        "CoAP:Code" => (Fid::CoapCode, 8),
        "CoAP:Message ID" => (Fid::CoapMid, 16),
        _ => return None,
    })
}

/// CoAP option names as microschc and RFC 7252 and its successors spell them.
const OPTION_NAMES: [(u16, &str); 20] = [
    (1, "If-Match"),
    (3, "Uri-Host"),
    (4, "ETag"),
    (5, "If-None-Match"),
    (6, "Observe"),
    (7, "Uri-Port"),
    (8, "Location-Path"),
    (11, "Uri-Path"),
    (12, "Content-Format"),
    (14, "Max-Age"),
    (15, "Uri-Query"),
    (17, "Accept"),
    (20, "Location-Query"),
    (23, "Block2"),
    (27, "Block1"),
    (28, "Size2"),
    (35, "Proxy-Uri"),
    (39, "Proxy-Scheme"),
    (60, "Size1"),
    (258, "No-Response"),
];

fn option_label(n: u16) -> String {
    match OPTION_NAMES.iter().find(|(k, _)| *k == n) {
        Some((_, name)) => format!("option {n} ({name})"),
        None => format!("option {n}"),
    }
}

fn ms_mo(f: &MsField) -> Result<&'static str, ConvertError> {
    Ok(match f.mo.as_str() {
        "equal" => "equal",
        "ignore" => "ignore",
        "most-significant-bits" | "MSB" | "msb" => "msb",
        "match-mapping" => "mapping",
        other => {
            return Err(invalid(
                &f.at,
                format!("unknown matching operator {other:?}"),
            ))
        }
    })
}

fn ms_cda(f: &MsField) -> Result<Cda, ConvertError> {
    Ok(match f.cda.as_str() {
        "not-sent" => Cda::NotSent,
        "value-sent" => Cda::ValueSent,
        "mapping-sent" => Cda::MappingSent,
        "least-significant-bits" | "LSB" | "lsb" => Cda::Lsb,
        "compute" | "compute-length" | "compute-checksum" => Cda::Compute,
        other => return Err(invalid(&f.at, format!("unknown action {other:?}"))),
    })
}

/// MO and target values of a field `width` bits wide (`None`: variable length in bytes).
fn ms_mo_tv(
    f: &MsField,
    width: Option<usize>,
) -> Result<(MatchingOperator, Vec<Vec<u8>>), ConvertError> {
    let as_tv = |b: &Bits| -> Result<Vec<u8>, ConvertError> {
        match width {
            Some(w) if b.len() > w => Err(invalid(
                &f.at,
                format!(
                    "target value of {} bits is wider than the {w}-bit field",
                    b.len()
                ),
            )),
            Some(_) => Ok(b.bytes()),
            None if b.len() % 8 != 0 => Err(invalid(
                &f.at,
                "a variable-length target value must be whole bytes",
            )),
            None => Ok(b.bytes()),
        }
    };
    let mo = ms_mo(f)?;
    Ok(match (mo, &f.tv) {
        ("equal", MsTv::One(b)) => (MatchingOperator::Equal, vec![as_tv(b)?]),
        ("equal", _) => return Err(invalid(&f.at, "equal needs one target value")),
        ("ignore", MsTv::One(b)) if b.len() > 0 => (MatchingOperator::Ignore, vec![as_tv(b)?]),
        ("ignore", _) => (MatchingOperator::Ignore, Vec::new()),
        ("msb", MsTv::One(b)) => {
            let x = b.len();
            match width {
                Some(w) if x <= w => (MatchingOperator::Msb(x as u16), vec![b.shifted_to(w)]),
                Some(w) => {
                    return Err(invalid(
                        &f.at,
                        format!("MSB({x}) is wider than the {w}-bit field"),
                    ))
                }
                None if x % 8 == 0 => (MatchingOperator::Msb(x as u16), vec![b.bytes()]),
                None => {
                    return Err(invalid(
                        &f.at,
                        format!("MSB({x}) on a variable-length field must be whole bytes"),
                    ))
                }
            }
        }
        ("msb", _) => return Err(invalid(&f.at, "MSB needs one target value (the pattern)")),
        ("mapping", MsTv::Map(list)) => (
            MatchingOperator::MatchMapping,
            list.iter().map(as_tv).collect::<Result<_, _>>()?,
        ),
        ("mapping", _) => return Err(invalid(&f.at, "match-mapping needs a list of values")),
        _ => return Err(invalid(&f.at, "unknown matching operator")),
    })
}

/// Address roles of one rule.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Roles {
    /// Source = device (uplink rule).
    SourceIsDev,
    /// Destination = device (downlink rule).
    DestIsDev,
}

/// A rule's fixed endpoints: source and destination addresses and ports.
struct Endpoints {
    src: Option<[u8; 16]>,
    dst: Option<[u8; 16]>,
    sport: Option<u16>,
    dport: Option<u16>,
}

fn ms_rule_addresses(fields: &[MsField]) -> Endpoints {
    let fixed = |id: &str| {
        fields
            .iter()
            .find(|f| f.id == id && f.mo == "equal")
            .and_then(|f| match &f.tv {
                MsTv::One(b) => Some(b.bytes()),
                _ => None,
            })
    };
    let addr = |id| fixed(id).and_then(|b| <[u8; 16]>::try_from(b).ok());
    let port = |id| {
        fixed(id)
            .filter(|b| b.len() <= 2)
            .map(|b| b.iter().fold(0u16, |a, &x| (a << 8) | u16::from(x)))
    };
    Endpoints {
        src: addr("IPv6:Source Address"),
        dst: addr("IPv6:Destination Address"),
        sport: port("UDP:Source Port"),
        dport: port("UDP:Destination Port"),
    }
}

/// Reads a microschc context (see the module documentation). `device` names the device's IPv6
/// address; without it the device is inferred from the rules.
pub fn from_microschc(text: &str, device: Option<Ipv6Addr>) -> Result<Converted, ConvertError> {
    let doc: Value = serde_json::from_str(text)?;
    let rules: &[Value] = match &doc {
        Value::Object(o) if o.contains_key("ruleset") => o
            .get("ruleset")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .ok_or_else(|| invalid("document", "ruleset must be a list"))?,
        Value::Object(o) if o.contains_key("field_descriptors") || o.contains_key("nature") => {
            std::slice::from_ref(&doc)
        }
        Value::Array(a) => a.as_slice(),
        _ => {
            return Err(invalid(
                "document",
                "expected {\"ruleset\": [...]} or a list of rules",
            ))
        }
    };
    let mut warn = Warnings::default();
    // Read every rule first: the device may be inferred from all of them.
    let mut read = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let at0 = format!("rule {i}");
        let id = ms_buffer(r.get("id").unwrap_or(&Value::Null), &at0, "id")?;
        if id.len() > 32 {
            return Err(invalid(
                &at0,
                format!("rule ID of {} bits (at most 32)", id.len()),
            ));
        }
        let rid = RuleId::new(id.to_u64() as u32, id.len() as u8);
        let at = format!("rule {i} (ID {rid})");
        let nature = r.get("nature").and_then(Value::as_str).unwrap_or(
            if r.get("field_descriptors").is_some() {
                "compression"
            } else {
                "no-compression"
            },
        );
        let mut fields = Vec::new();
        if nature == "compression" {
            let fds = r
                .get("field_descriptors")
                .and_then(Value::as_array)
                .ok_or_else(|| invalid(&at, "field_descriptors must be a list"))?;
            for (j, fd) in fds.iter().enumerate() {
                fields.push(ms_field(
                    fd,
                    &format!("{at}, descriptor {j}"),
                    rid,
                    &mut warn,
                )?);
            }
        } else if nature != "no-compression" {
            return Err(invalid(&at, format!("nature {nature:?} is not supported")));
        }
        read.push((rid, at, nature == "compression", fields));
    }

    // The device: given, or the endpoint talking to a CoAP server port from another port.
    let coap = |p: Option<u16>| p == Some(5683) || p == Some(5684);
    let device = match device {
        Some(d) => Some((d.octets(), "given".to_string())),
        None => {
            let mut votes: BTreeMap<[u8; 16], usize> = BTreeMap::new();
            for (_, _, _, fields) in &read {
                let e = ms_rule_addresses(fields);
                let dev = match (coap(e.sport), coap(e.dport)) {
                    (false, true) if e.sport.is_some() => e.src,
                    (true, false) if e.dport.is_some() => e.dst,
                    _ => None,
                };
                if let Some(d) = dev {
                    *votes.entry(d).or_default() += 1;
                }
            }
            votes.into_iter().max_by_key(|(_, n)| *n).map(|(d, _)| {
                (
                    d,
                    "inferred: the endpoint that talks to a CoAP server port (5683/5684) from another port"
                        .to_string(),
                )
            })
        }
    };

    let mut buf = RuleSetBuf::new();
    let mut up_rules = Vec::new();
    let mut down_rules = Vec::new();
    for (rid, at, compression, fields) in &read {
        if !compression {
            buf.push_no_compression(*rid);
            continue;
        }
        let ends = ms_rule_addresses(fields);
        let roles = match device {
            Some((d, _)) if ends.src == Some(d) => Roles::SourceIsDev,
            Some((d, _)) if ends.dst == Some(d) => Roles::DestIsDev,
            Some(_) => {
                warn.add(
                    "neither address is fixed to the device: the source is taken as the device",
                    *rid,
                );
                Roles::SourceIsDev
            }
            None => Roles::SourceIsDev,
        };
        let di = match roles {
            Roles::SourceIsDev => {
                up_rules.push(rid.to_string());
                DirectionIndicator::Up
            }
            Roles::DestIsDev => {
                down_rules.push(rid.to_string());
                DirectionIndicator::Down
            }
        };
        let entries = ms_entries(fields, *rid, at, roles, di, &mut warn)?;
        buf.push_compression(*rid, &entries)
            .map_err(|e| invalid(at, e))?;
    }
    let mut warnings = Vec::new();
    let mut roles =
        String::from("microschc names source and destination, RFC 8724 device and application: ");
    match device {
        Some((d, how)) => {
            let _ = write!(roles, "device {} ({how}); ", Ipv6Addr::from(d));
        }
        None => roles.push_str("no device address found, so the source is taken as the device; "),
    }
    if !up_rules.is_empty() {
        let _ = write!(
            roles,
            "uplink rules (source = device): {}",
            up_rules.join(", ")
        );
    }
    if !down_rules.is_empty() {
        if !up_rules.is_empty() {
            roles.push_str("; ");
        }
        let _ = write!(
            roles,
            "downlink rules (destination = device): {}",
            down_rules.join(", ")
        );
    }
    if !up_rules.is_empty() || !down_rules.is_empty() {
        warnings.push(roles);
    }
    warnings.extend(warn.into_lines());
    buf.validate()?;
    Ok(Converted {
        rules: buf,
        warnings,
    })
}

/// Pending state of a syntactic CoAP option.
#[derive(Default)]
struct OptState {
    number: u32,
    delta: Option<u32>,
    delta_ext: bool,
    /// Known length in bytes, or `None` when sent.
    length: Option<Option<u32>>,
    length_ext: bool,
    /// microschc's residue bits for a sent length.
    length_bits: usize,
}

fn ms_entries(
    fields: &[MsField],
    rid: RuleId,
    at: &str,
    roles: Roles,
    di: DirectionIndicator,
    warn: &mut Warnings,
) -> Result<Vec<FieldSpec>, ConvertError> {
    let mut out: Vec<FieldSpec> = Vec::new();
    let mut opt = OptState::default();
    let mut positions: BTreeMap<u16, u8> = BTreeMap::new();
    let src_dev = roles == Roles::SourceIsDev;
    for f in fields {
        match f.di.as_str() {
            "Bi" | "Up" => {}
            "Dw" => {
                warn.add(format!("{}: a downlink-only (Dw) descriptor is dropped (microschc processes captures as uplink)", f.id), rid);
                continue;
            }
            other => return Err(invalid(&f.at, format!("unknown direction {other:?}"))),
        }
        let cda = ms_cda(f)?;
        if ms_mo(f)? == "ignore" && cda == Cda::NotSent && f.tv_len() > 0 {
            warn.add(format!("{} is ignore/not-sent: a packet whose value differs from the target value is not rebuilt exactly (as in microschc)", f.id), rid);
        }
        let spec = |fid: Fid, fl: FieldLength, mo: MatchingOperator, tv: Vec<Vec<u8>>| FieldSpec {
            fid,
            fl,
            fp: 1,
            di,
            tv,
            mo,
            cda,
        };
        if let Some((fid, w)) = ms_header(&f.id) {
            if f.length != usize::from(w) {
                return Err(invalid(
                    &f.at,
                    format!("length {} bits, the field has {w}", f.length),
                ));
            }
            let (mo, tv) = ms_mo_tv(f, Some(usize::from(w)))?;
            out.push(spec(fid, FieldLength::Fixed(w), mo, tv));
            continue;
        }
        match f.id.as_str() {
            "IPv6:Source Address" | "IPv6:Destination Address" => {
                if f.length != 128 {
                    return Err(invalid(
                        &f.at,
                        format!("length {} bits, an address has 128", f.length),
                    ));
                }
                let dev = (f.id == "IPv6:Source Address") == src_dev;
                let (p, i) = if dev {
                    (Fid::Ipv6DevPrefix, Fid::Ipv6DevIid)
                } else {
                    (Fid::Ipv6AppPrefix, Fid::Ipv6AppIid)
                };
                let [a, b] = ms_address(f, p, i, di, cda, rid, warn)?;
                out.push(a);
                out.push(b);
            }
            "UDP:Source Port" | "UDP:Destination Port" => {
                if f.length != 16 {
                    return Err(invalid(
                        &f.at,
                        format!("length {} bits, a port has 16", f.length),
                    ));
                }
                let dev = (f.id == "UDP:Source Port") == src_dev;
                let fid = if dev {
                    Fid::UdpDevPort
                } else {
                    Fid::UdpAppPort
                };
                let (mo, tv) = ms_mo_tv(f, Some(16))?;
                out.push(spec(fid, FieldLength::Fixed(16), mo, tv));
            }
            "CoAP:Token" => {
                let (fl, w) = if f.length == 0 {
                    (FieldLength::TokenLength, Some(64))
                } else if f.length % 8 == 0 && f.length <= 64 {
                    (FieldLength::Fixed(f.length as u16), Some(f.length))
                } else {
                    return Err(invalid(&f.at, format!("a token of {} bits", f.length)));
                };
                let (mo, tv) = ms_mo_tv(f, w)?;
                out.push(spec(Fid::CoapToken, fl, mo, tv));
            }
            "CoAP:Payload Marker" => {
                let ok = ms_mo(f)? == "equal"
                    && cda == Cda::NotSent
                    && matches!(&f.tv, MsTv::One(b) if b.bytes() == [0xFF]);
                if !ok {
                    return Err(invalid(
                        &f.at,
                        "a payload marker must be equal 0xff, not-sent",
                    ));
                }
                warn.add("the Payload Marker descriptor is dropped (RFC 8724 rules do not describe it): the rule also matches packets without a payload", rid);
            }
            "CoAP:Option Delta" => {
                if opt.delta.is_some() {
                    return Err(invalid(
                        &f.at,
                        "option delta without the previous option's value",
                    ));
                }
                let d = ms_fixed_number(
                    f,
                    "the option delta must be equal/not-sent (the option number must be known)",
                )?;
                if d == 15 {
                    return Err(invalid(&f.at, "option delta 15 is reserved"));
                }
                opt.delta_ext = d >= 13;
                opt.delta = Some(d);
            }
            "CoAP:Option Delta Extended" => {
                let e = ms_fixed_number(f, "the extended option delta must be equal/not-sent")?;
                match (opt.delta, opt.delta_ext) {
                    (Some(13), true) => opt.delta = Some(13 + e),
                    (Some(14), true) => opt.delta = Some(269 + e),
                    _ => {
                        return Err(invalid(
                            &f.at,
                            "an extended delta needs a delta of 13 or 14",
                        ))
                    }
                }
                opt.delta_ext = false;
            }
            "CoAP:Option Length" => {
                if opt.delta.is_none() {
                    return Err(invalid(&f.at, "option length before its delta"));
                }
                match (ms_mo(f)?, cda) {
                    ("equal", Cda::NotSent) => {
                        let l = ms_fixed_number(f, "")?;
                        opt.length_ext = l >= 13;
                        opt.length = Some(Some(l));
                    }
                    ("msb", Cda::Lsb) => {
                        opt.length_bits = 4 - f.tv_len().min(4);
                        opt.length = Some(None);
                    }
                    ("ignore", Cda::ValueSent) => {
                        opt.length_bits = 4;
                        opt.length = Some(None);
                    }
                    _ => {
                        return Err(invalid(
                            &f.at,
                            "option length must be equal/not-sent, MSB/LSB or ignore/value-sent",
                        ))
                    }
                }
            }
            "CoAP:Option Length Extended" => {
                match (opt.length, opt.length_ext) {
                    (Some(Some(l)), true) => {
                        let e = ms_fixed_number(
                            f,
                            "the extended option length must be equal/not-sent",
                        )?;
                        opt.length = Some(Some(if l == 13 { 13 + e } else { 269 + e }));
                    }
                    (Some(None), _) => opt.length_bits += f.length,
                    _ => {
                        return Err(invalid(
                            &f.at,
                            "an extended length needs a length of 13 or 14",
                        ))
                    }
                }
                opt.length_ext = false;
            }
            "CoAP:Option Value" => {
                let (Some(delta), Some(length)) = (opt.delta, opt.length) else {
                    return Err(invalid(&f.at, "option value without its delta and length"));
                };
                if opt.delta_ext || opt.length_ext {
                    return Err(invalid(
                        &f.at,
                        "the extended delta or length descriptor is missing",
                    ));
                }
                opt.number = opt
                    .number
                    .checked_add(delta)
                    .ok_or_else(|| invalid(&f.at, "option number above 65535"))?;
                let number = u16::try_from(opt.number)
                    .map_err(|_| invalid(&f.at, "option number above 65535"))?;
                let fp = positions.entry(number).or_insert(0);
                *fp = fp.saturating_add(1);
                let fp = *fp;
                let entry = ms_option(f, number, fp, length, opt.length_bits, di, cda, rid, warn)?;
                out.push(entry);
                opt = OptState {
                    number: opt.number,
                    ..OptState::default()
                };
            }
            id if id.starts_with("CoAP:Option ") => {
                let name = &id["CoAP:Option ".len()..];
                let number = OPTION_NAMES
                    .iter()
                    .find(|(_, n)| *n == name)
                    .map(|(k, _)| *k)
                    .or_else(|| {
                        name.strip_prefix("Unknown(")
                            .and_then(|r| r.strip_suffix(')'))
                            .and_then(|n| n.parse().ok())
                    })
                    .ok_or_else(|| invalid(&f.at, "unknown CoAP option"))?;
                let fp = positions.entry(number).or_insert(0);
                *fp = fp.saturating_add(1);
                let fp = *fp;
                let length = (f.length > 0).then_some((f.length / 8) as u32);
                let entry = ms_option(f, number, fp, length, 4, di, cda, rid, warn)?;
                out.push(entry);
            }
            other => {
                return Err(invalid(
                    &f.at,
                    format!(
                    "field {other:?} is not supported (lpwan-schc compresses IPv6, UDP and CoAP)"
                ),
                ))
            }
        }
    }
    if opt.delta.is_some() {
        return Err(invalid(at, "the last option has no value descriptor"));
    }
    Ok(out)
}

impl MsField {
    fn tv_len(&self) -> usize {
        match &self.tv {
            MsTv::One(b) => b.len(),
            _ => 0,
        }
    }
}

/// A small field that must be equal/not-sent: its value.
fn ms_fixed_number(f: &MsField, why: &str) -> Result<u32, ConvertError> {
    let fixed = f.mo == "equal" && f.cda == "not-sent";
    match (&f.tv, fixed) {
        (MsTv::One(b), true) if b.len() <= 32 => Ok(b.to_u64() as u32),
        _ => Err(invalid(
            &f.at,
            if why.is_empty() {
                "must be equal/not-sent"
            } else {
                why
            },
        )),
    }
}

#[allow(clippy::too_many_arguments)]
fn ms_option(
    f: &MsField,
    number: u16,
    fp: u8,
    length: Option<u32>,
    length_bits: usize,
    di: DirectionIndicator,
    cda: Cda,
    rid: RuleId,
    warn: &mut Warnings,
) -> Result<FieldSpec, ConvertError> {
    let fid = Fid::CoapOption(number);
    let label = option_label(number);
    let (fl, width) = match length {
        Some(n) => {
            if f.length != 0 && f.length != n as usize * 8 {
                return Err(invalid(
                    &f.at,
                    format!(
                        "value length {} bits, the option length says {n} bytes",
                        f.length
                    ),
                ));
            }
            let bits = n
                .checked_mul(8)
                .and_then(|b| u16::try_from(b).ok())
                .ok_or_else(|| invalid(&f.at, "option too long"))?;
            // A fixed length sends no size prefix, as microschc sends no length residue. An
            // equal/not-sent value needs no length at all.
            if cda == Cda::NotSent {
                (FieldLength::Variable, None)
            } else {
                (FieldLength::Fixed(bits), Some(n as usize * 8))
            }
        }
        None => {
            if matches!(cda, Cda::ValueSent | Cda::Lsb) {
                warn.add(
                    format!("{label} has a variable length: microschc sends it as a {length_bits}-bit residue, RFC 8724 as a 4-bit size prefix for values under 15 bytes ({} bit{} more per packet), and any length matches", 4i64 - length_bits as i64, if 4i64 - length_bits as i64 == 1 { "" } else { "s" }),
                    rid,
                );
            }
            (FieldLength::Variable, None)
        }
    };
    let (mo, tv) = ms_mo_tv(f, width)?;
    Ok(FieldSpec {
        fid,
        fl,
        fp,
        di,
        tv,
        mo,
        cda,
    })
}

/// One 128-bit microschc address as a prefix and an IID entry.
fn ms_address(
    f: &MsField,
    p: Fid,
    i: Fid,
    di: DirectionIndicator,
    cda: Cda,
    rid: RuleId,
    warn: &mut Warnings,
) -> Result<[FieldSpec; 2], ConvertError> {
    let e = |fid, mo, cda, tv| FieldSpec {
        fid,
        fl: FieldLength::Fixed(64),
        fp: 1,
        di,
        tv,
        mo,
        cda,
    };
    let full = |b: &Bits| -> Result<Bits, ConvertError> {
        if b.len() > 128 {
            return Err(invalid(
                &f.at,
                "an address target value wider than 128 bits",
            ));
        }
        let mut v = vec![false; 128 - b.len()];
        v.extend_from_slice(&b.0);
        Ok(Bits(v))
    };
    let halves = |b: &Bits| -> Result<(Vec<u8>, Vec<u8>), ConvertError> {
        let a = full(b)?;
        Ok((a.slice(0, 64).bytes(), a.slice(64, 64).bytes()))
    };
    use MatchingOperator as Mo;
    Ok(match (ms_mo(f)?, cda, &f.tv) {
        ("equal", Cda::NotSent, MsTv::One(b)) => {
            let (hp, hi) = halves(b)?;
            [
                e(p, Mo::Equal, Cda::NotSent, vec![hp]),
                e(i, Mo::Equal, Cda::NotSent, vec![hi]),
            ]
        }
        ("ignore", Cda::ValueSent, _) => [
            e(p, Mo::Ignore, Cda::ValueSent, vec![]),
            e(i, Mo::Ignore, Cda::ValueSent, vec![]),
        ],
        ("ignore", Cda::NotSent, MsTv::One(b)) => {
            let (hp, hi) = halves(b)?;
            [
                e(p, Mo::Ignore, Cda::NotSent, vec![hp]),
                e(i, Mo::Ignore, Cda::NotSent, vec![hi]),
            ]
        }
        ("msb", Cda::Lsb, MsTv::One(b)) => {
            let x = b.len();
            let top = Bits({
                let mut v = b.0.clone();
                v.resize(128, false);
                v
            });
            let (hp, hi) = (top.slice(0, 64).bytes(), top.slice(64, 64).bytes());
            match x {
                0 => [
                    e(p, Mo::Ignore, Cda::ValueSent, vec![]),
                    e(i, Mo::Ignore, Cda::ValueSent, vec![]),
                ],
                1..=63 => [
                    e(p, Mo::Msb(x as u16), Cda::Lsb, vec![hp]),
                    e(i, Mo::Ignore, Cda::ValueSent, vec![]),
                ],
                64 => [
                    e(p, Mo::Equal, Cda::NotSent, vec![hp]),
                    e(i, Mo::Ignore, Cda::ValueSent, vec![]),
                ],
                65..=127 => [
                    e(p, Mo::Equal, Cda::NotSent, vec![hp]),
                    e(i, Mo::Msb((x - 64) as u16), Cda::Lsb, vec![hi]),
                ],
                _ => [
                    e(p, Mo::Equal, Cda::NotSent, vec![hp]),
                    e(i, Mo::Equal, Cda::NotSent, vec![hi]),
                ],
            }
        }
        ("mapping", Cda::MappingSent, MsTv::Map(list)) => {
            let mut prefixes: Vec<Vec<u8>> = Vec::new();
            let mut iids: Vec<Vec<u8>> = Vec::new();
            for b in list {
                let (hp, hi) = halves(b)?;
                prefixes.push(hp);
                iids.push(hi);
            }
            let same = |v: &[Vec<u8>]| v.windows(2).all(|w| w.first() == w.last());
            if same(&iids) {
                [
                    e(p, Mo::MatchMapping, Cda::MappingSent, prefixes),
                    e(i, Mo::Equal, Cda::NotSent, vec![iids.swap_remove(0)]),
                ]
            } else if same(&prefixes) {
                [
                    e(p, Mo::Equal, Cda::NotSent, vec![prefixes.swap_remove(0)]),
                    e(i, Mo::MatchMapping, Cda::MappingSent, iids),
                ]
            } else {
                warn.add(format!("{}: a mapping of whole addresses becomes a mapping of prefixes and one of IIDs (it accepts more addresses, and the residue may differ in length)", f.id), rid);
                let dedup = |v: Vec<Vec<u8>>| {
                    let mut out: Vec<Vec<u8>> = Vec::new();
                    for x in v {
                        if !out.contains(&x) {
                            out.push(x);
                        }
                    }
                    out
                };
                [
                    e(p, Mo::MatchMapping, Cda::MappingSent, dedup(prefixes)),
                    e(i, Mo::MatchMapping, Cda::MappingSent, dedup(iids)),
                ]
            }
        }
        _ => {
            return Err(invalid(
                &f.at,
                "this matching operator and action cannot be split into prefix and IID",
            ))
        }
    })
}

// ---------------------------------------------------------------------------------------------
// openschc
// ---------------------------------------------------------------------------------------------

fn os_fid(name: &str) -> Option<Fid> {
    Some(match name.to_ascii_uppercase().as_str() {
        "IPV6.VER" => Fid::Ipv6Version,
        "IPV6.TC" => Fid::Ipv6TrafficClass,
        "IPV6.FL" => Fid::Ipv6FlowLabel,
        "IPV6.LEN" => Fid::Ipv6PayloadLength,
        "IPV6.NXT" => Fid::Ipv6NextHeader,
        "IPV6.HOP_LMT" => Fid::Ipv6HopLimit,
        "IPV6.DEV_PREFIX" => Fid::Ipv6DevPrefix,
        "IPV6.DEV_IID" => Fid::Ipv6DevIid,
        "IPV6.APP_PREFIX" => Fid::Ipv6AppPrefix,
        "IPV6.APP_IID" => Fid::Ipv6AppIid,
        "UDP.DEV_PORT" => Fid::UdpDevPort,
        "UDP.APP_PORT" => Fid::UdpAppPort,
        "UDP.LEN" => Fid::UdpLength,
        "UDP.CKSUM" => Fid::UdpChecksum,
        "COAP.VER" => Fid::CoapVersion,
        "COAP.TYPE" => Fid::CoapType,
        "COAP.TKL" => Fid::CoapTkl,
        "COAP.CODE" => Fid::CoapCode,
        "COAP.MID" => Fid::CoapMid,
        "COAP.TOKEN" => Fid::CoapToken,
        other => {
            let name = other.strip_prefix("COAP.")?;
            let n = OPTION_NAMES
                .iter()
                .find(|(_, n)| n.eq_ignore_ascii_case(name))
                .map(|(k, _)| *k)
                .or(match name {
                    "OBS" => Some(6),
                    "CONT-FORMAT" => Some(12),
                    "LOC-PATH" => Some(8),
                    "LOC-QUERY" => Some(20),
                    "NO-RESP" => Some(258),
                    _ => None,
                })?;
            Fid::CoapOption(n)
        }
    })
}

/// An openschc target value as bytes, as openschc's `adapt_value` makes them.
fn os_tv(v: &Value, fid: Fid, at: &str) -> Result<Vec<u8>, ConvertError> {
    let addr = matches!(
        fid,
        Fid::Ipv6DevPrefix | Fid::Ipv6DevIid | Fid::Ipv6AppPrefix | Fid::Ipv6AppIid
    );
    match v {
        Value::Number(n) => {
            let n = n.as_u64().ok_or_else(|| {
                invalid(at, format!("target value {n} is not an unsigned integer"))
            })?;
            if addr {
                return Ok(n.to_be_bytes().to_vec());
            }
            let bytes = n.to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count().min(7);
            Ok(bytes.get(skip..).unwrap_or_default().to_vec())
        }
        Value::String(s) if addr => {
            let text = s.split('/').next().unwrap_or("");
            let a: Ipv6Addr = text
                .parse()
                .map_err(|_| invalid(at, format!("{s:?} is not an IPv6 address")))?;
            let o = a.octets();
            Ok(if matches!(fid, Fid::Ipv6DevPrefix | Fid::Ipv6AppPrefix) {
                o[..8].to_vec()
            } else {
                o[8..].to_vec()
            })
        }
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        other => Err(invalid(
            at,
            format!("target value {other} is neither a number nor a string"),
        )),
    }
}

fn os_entry(e: &Value, at: &str) -> Result<Option<FieldSpec>, ConvertError> {
    let o = e
        .as_object()
        .ok_or_else(|| invalid(at, "an entry must be an object"))?;
    let get = |k: &str| {
        o.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(k))
            .map(|(_, v)| v)
    };
    let name = get("FID")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(at, "FID is missing"))?;
    let at = format!("{at} ({name})");
    if name.eq_ignore_ascii_case("COAP.END") {
        return Ok(None);
    }
    let fid = os_fid(name).ok_or_else(|| {
        invalid(
            &at,
            "field not supported (lpwan-schc compresses IPv6, UDP and CoAP)",
        )
    })?;
    let fl = match get("FL") {
        None | Some(Value::Null) => match fid.fixed_len() {
            Some(l) => FieldLength::Fixed(l),
            None if fid == Fid::CoapToken => FieldLength::TokenLength,
            None => FieldLength::Variable,
        },
        Some(Value::Number(n)) => FieldLength::Fixed(
            n.as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(|| invalid(&at, format!("FL {n} is not a bit count")))?,
        ),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("var") => FieldLength::Variable,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("tkl") => FieldLength::TokenLength,
        Some(other) => {
            return Err(invalid(
                &at,
                format!("FL {other} is not a number, var or tkl"),
            ))
        }
    };
    let fp = match get("FP") {
        None | Some(Value::Null) => 1,
        Some(v) => v
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .ok_or_else(|| invalid(&at, format!("FP {v} is not a position")))?,
    };
    let di = match get("DI")
        .and_then(Value::as_str)
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("BI") => DirectionIndicator::Bi,
        Some("UP") => DirectionIndicator::Up,
        Some("DW") | Some("DOWN") => DirectionIndicator::Down,
        Some(d) => return Err(invalid(&at, format!("DI {d:?} is not UP, DW or BI"))),
    };
    let mo_name = get("MO")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(&at, "MO is missing"))?
        .to_ascii_uppercase();
    let cda = match get("CDA")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(&at, "CDA is missing"))?
        .to_ascii_uppercase()
        .as_str()
    {
        "NOT-SENT" => Cda::NotSent,
        "VALUE-SENT" => Cda::ValueSent,
        "MAPPING-SENT" => Cda::MappingSent,
        "LSB" => Cda::Lsb,
        "COMPUTE" | "COMPUTE-LENGTH" | "COMPUTE-CHECKSUM" => Cda::Compute,
        "DEVIID" | "COMPUTE-DEVIID" => Cda::DevIid,
        "APPIID" => Cda::AppIid,
        other => return Err(invalid(&at, format!("CDA {other:?} is not supported"))),
    };
    let tv_value = get("TV").filter(|v| !v.is_null());
    let (mo, tv) = match mo_name.as_str() {
        "MATCH-MAPPING" => {
            let list = tv_value
                .and_then(Value::as_array)
                .ok_or_else(|| invalid(&at, "match-mapping needs a list TV"))?;
            let tv = list
                .iter()
                .map(|v| os_tv(v, fid, &at))
                .collect::<Result<Vec<_>, _>>()?;
            (MatchingOperator::MatchMapping, tv)
        }
        "EQUAL" | "IGNORE" | "MSB" => {
            let tv = match tv_value {
                None => Vec::new(),
                Some(Value::Array(a)) if a.is_empty() => Vec::new(),
                Some(v) => vec![os_tv(v, fid, &at)?],
            };
            let mo = match mo_name.as_str() {
                "EQUAL" => MatchingOperator::Equal,
                "IGNORE" => MatchingOperator::Ignore,
                _ => {
                    let x = get("MO.VAL")
                        .or_else(|| get("MOa"))
                        .and_then(Value::as_u64)
                        .and_then(|x| u16::try_from(x).ok())
                        .ok_or_else(|| invalid(&at, "MSB needs MO.VAL, the bit count"))?;
                    MatchingOperator::Msb(x)
                }
            };
            (mo, tv)
        }
        other => return Err(invalid(&at, format!("MO {other:?} is not supported"))),
    };
    // IIDs and prefixes given as shorter integers are right-aligned in 8 bytes already; DevIID
    // and AppIID ignore their target value.
    let tv = if matches!(cda, Cda::DevIid | Cda::AppIid) && mo != MatchingOperator::Equal {
        Vec::new()
    } else {
        tv
    };
    Ok(Some(FieldSpec {
        fid,
        fl,
        fp,
        di,
        tv,
        mo,
        cda,
    }))
}

fn os_frag(f: &Value, at: &str) -> Result<FragParams, ConvertError> {
    let o = f
        .as_object()
        .ok_or_else(|| invalid(at, "Fragmentation must be an object"))?;
    let get = |m: &Map<String, Value>, k: &str| -> Option<Value> {
        m.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    let mode = match get(o, "FRMode")
        .and_then(|v| v.as_str().map(str::to_ascii_lowercase))
        .as_deref()
    {
        Some("noack") => FragMode::NoAck,
        Some("ackalways") => FragMode::AckAlways,
        Some("ackonerror") => FragMode::AckOnError,
        other => {
            return Err(invalid(
                at,
                format!("FRMode {other:?} is not NoAck, AckAlways or AckOnError"),
            ))
        }
    };
    let direction = match get(o, "FRDirection")
        .and_then(|v| v.as_str().map(str::to_ascii_uppercase))
        .as_deref()
    {
        Some("UP") => Direction::Up,
        Some("DW") => Direction::Down,
        other => {
            return Err(invalid(
                at,
                format!("FRDirection {other:?} is not UP or DW"),
            ))
        }
    };
    let empty = Map::new();
    let prof_v = get(o, "FRModeProfile");
    let prof = prof_v.as_ref().and_then(Value::as_object).unwrap_or(&empty);
    let num = |k: &str, default: u64| -> Result<u64, ConvertError> {
        match get(prof, k) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_u64()
                .ok_or_else(|| invalid(at, format!("FRModeProfile.{k} {v} is not a number"))),
        }
    };
    let small = |k: &str, default: u64, max: u64| -> Result<u64, ConvertError> {
        let v = num(k, default)?;
        if v > max {
            return Err(invalid(at, format!("FRModeProfile.{k} {v} is above {max}")));
        }
        Ok(v)
    };
    let (dtag_default, w_default, fcn_default) = match mode {
        FragMode::NoAck => (2, 0, 1),
        FragMode::AckAlways => (0, 1, 1),
        FragMode::AckOnError => (0, 1, 3),
    };
    let fcn_bits = small("FCNSize", fcn_default, 16)? as u8;
    let ack_behavior = match get(prof, "ackBehavior")
        .and_then(|v| v.as_str().map(str::to_string))
        .as_deref()
    {
        None | Some("afterAll1") => AckBehavior::AfterAll1,
        Some("afterAll0") => AckBehavior::AfterAll0,
        Some("afterAny") | Some("byLayer2") => AckBehavior::ByLayer2,
        Some(other) => {
            return Err(invalid(
                at,
                format!("ackBehavior {other:?} is not supported"),
            ))
        }
    };
    let tile_in_all1 = match get(prof, "lastTileInAll1") {
        Some(Value::Bool(true)) => TileInAll1::Yes,
        _ => TileInAll1::No,
    };
    let timeout = num("timeout", 600)?;
    // openschc's timeout is in seconds; RFC 9363 counts ticks of 2^20 µs (about 1.05 s).
    let ticks =
        u16::try_from(timeout.saturating_mul(1_000_000).div_ceil(1 << 20)).unwrap_or(u16::MAX);
    Ok(FragParams {
        mode,
        direction,
        l2_word: small("L2WordSize", 8, 255)? as u8,
        dtag_bits: small("dtagSize", dtag_default, 16)? as u8,
        w_bits: small("WSize", w_default, 16)? as u8,
        fcn_bits,
        window_size: small("windowSize", (1u64 << fcn_bits) - 1, 65535)? as u16,
        rcs: RcsAlgorithm::Crc32,
        max_packet_size: small("MaxPcktSize", 1280, 65535)? as u16,
        max_interleaved: small("MaxInterFrame", 1, 255)? as u8,
        inactivity_timer: None,
        retransmission_timer: (mode != FragMode::NoAck).then_some(Timer {
            tick_exp: 20,
            ticks,
        }),
        max_ack_requests: small("maxRetry", 4, 255)? as u8,
        tile_size: small("tileSize", 0, 65535)? as u16,
        tile_in_all1,
        ack_behavior,
        bitmap_format: BitmapFormat::Rfc8724,
        last_bitmap_compression: false,
    })
}

/// Reads an openschc rule file (see the module documentation).
pub fn from_openschc(text: &str) -> Result<Converted, ConvertError> {
    let doc: Value = serde_json::from_str(text)?;
    let is_rule = |v: &Value| v.get("RuleID").is_some() || v.get("RuleIDValue").is_some();
    let rules: Vec<&Value> = match &doc {
        Value::Object(o) if o.contains_key("SoR") => o
            .get("SoR")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("document", "SoR must be a list"))?
            .iter()
            .collect(),
        v @ Value::Object(_) if is_rule(v) => vec![v],
        Value::Array(a) if a.iter().all(is_rule) => a.iter().collect(),
        Value::Array(a) if a.len() == 1 && a.first().and_then(|r| r.get("SoR")).is_some() => a
            .first()
            .and_then(|r| r.get("SoR"))
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("document", "SoR must be a list"))?
            .iter()
            .collect(),
        Value::Array(_) => {
            return Err(invalid(
                "document",
                "expected rules, or one device context {\"SoR\": [...]}; convert several devices one at a time",
            ))
        }
        _ => return Err(invalid("document", "expected a rule, a list of rules or {\"SoR\": [...]}")),
    };
    let mut buf = RuleSetBuf::new();
    let mut warn = Warnings::default();
    for (i, r) in rules.iter().enumerate() {
        let at0 = format!("rule {i}");
        let num = |k: &str| r.get(k).and_then(Value::as_u64);
        let value = num("RuleID")
            .or_else(|| num("RuleIDValue"))
            .ok_or_else(|| invalid(&at0, "RuleID is missing or not a number"))?;
        let length = num("RuleIDLength")
            .or_else(|| num("RuleLength"))
            .ok_or_else(|| invalid(&at0, "RuleIDLength is missing or not a number"))?;
        let id = RuleId::new(
            u32::try_from(value).map_err(|_| invalid(&at0, "RuleID above 2^32"))?,
            u8::try_from(length).map_err(|_| invalid(&at0, "RuleIDLength above 255"))?,
        );
        let at = format!("rule {i} (ID {id})");
        if let Some(entries) = r.get("Compression") {
            let list = entries
                .as_array()
                .ok_or_else(|| invalid(&at, "Compression must be a list"))?;
            let mut specs = Vec::new();
            for (j, e) in list.iter().enumerate() {
                match os_entry(e, &format!("{at}, entry {j}"))? {
                    Some(s) => specs.push(s),
                    None => warn.add("COAP.END entries are dropped, as openschc drops them", id),
                }
            }
            buf.push_compression(id, &specs)
                .map_err(|e| invalid(&at, e))?;
        } else if r.get("NoCompression").is_some() {
            buf.push_no_compression(id);
        } else if let Some(f) = r.get("Fragmentation") {
            buf.push_fragmentation(id, os_frag(f, &at)?);
        } else {
            return Err(invalid(
                &at,
                "the rule has none of Compression, NoCompression, Fragmentation",
            ));
        }
    }
    buf.validate()?;
    Ok(Converted {
        rules: buf,
        warnings: warn.into_lines(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_left_and_right() {
        let v = serde_json::json!({"content": "33333030", "length": 29, "padding": "right"});
        let b = ms_buffer(&v, "t", "tv").unwrap();
        assert_eq!(b.len(), 29);
        assert_eq!(b.shifted_to(32), vec![0x33, 0x33, 0x30, 0x30]);
        let v = serde_json::json!({"content": "0ff85f", "length": 20, "padding": "left"});
        let b = ms_buffer(&v, "t", "tv").unwrap();
        assert_eq!(b.bytes(), vec![0x0f, 0xf8, 0x5f]);
        let v = serde_json::json!({"content": "00", "length": 1, "padding": "right"});
        assert_eq!(ms_buffer(&v, "t", "tv").unwrap().shifted_to(2), vec![0]);
    }
}
