//! RFC 9363 JSON rule files (feature `std`): an `ietf-schc:schc` document (RFC 7951 encoding)
//! in, a [`RuleSetBuf`] out, and back.
//!
//! This module owns the mapping between the YANG data model of RFC 9363 (plus the RFC 9441
//! compound-ACK leaves) and the rule model of [`crate::rule`]. It walks a
//! [`serde_json::Value`] by hand so that every error can say which rule, which entry and which
//! JSON member is at fault, e.g.
//! `rule 33/8, entry 4 (fid-ipv6-nextheader): target-value[0] is not valid base64`.
//! Consistency checks that do not depend on JSON (field lengths, MO/CDA combinations,
//! prefix-free rule IDs, fragmentation parameters) are left to [`RuleSetBuf::validate`], whose
//! [`RuleError`] is passed through as [`JsonError::Rule`].
//!
//! # Reading
//!
//! - Identity values are accepted qualified (`ietf-schc:fid-ipv6-version`) or not
//!   (`fid-ipv6-version`). The RFC 9441 leaves `bitmap-format` and `last-bitmap-compression`
//!   and their identities are qualified with `ietf-schc-compound-ack:`, or not qualified.
//!   Member names inside the document may also carry their module's prefix.
//! - Members from other modules (any other `module:` prefix) are ignored; an unqualified member
//!   that RFC 9363 does not define is an error (it is usually a typo).
//! - Integers may be JSON numbers or strings of decimal digits (RFC 7951 writes 64-bit integers
//!   as strings). Values out of their YANG range are rejected.
//! - `target-value` lists are sorted by `index`, which must run 0, 1, 2, … without gaps or
//!   repeats. The bytes are stored exactly as written (`AAY=` stays two bytes `00 06`); base64
//!   uses the standard alphabet, padding optional.
//! - `matching-operator-value` for `mo-msb` holds one element: the bit count as a big-endian
//!   binary (`DA==` = 12). A plain JSON number is accepted there too.
//! - `comp-decomp-action-value` is accepted and ignored: no supported CDA takes an argument.
//!   `cda-compute-length` and `cda-compute-checksum` (older drafts) read as `cda-compute`.
//! - Without `rule-nature`, a rule with `entry` is a compression rule, one with
//!   `fragmentation-mode` a fragmentation rule, and any other a no-compression rule. A
//!   compression rule without `entry` has no entries (RFC 7951 omits empty lists).
//! - Defaults for absent leaves are listed on [`from_value`].
//!
//! # Writing
//!
//! [`to_value`] writes qualified identities, entries in rule order, target values as the base64
//! of the stored bytes, and every fragmentation leaf needed to read back the same
//! [`FragParams`]. A CoAP option without an RFC 9363 identity is written as
//! `lpwan-schc:fid-coap-option-<number>`, which this module reads back (no other tool will).

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::rule::{
    AckBehavior, BitmapFormat, Cda, Direction, DirectionIndicator, Fid, FieldLength, FieldSpec,
    FragMode, FragParams, MatchingOperator, Nature, RcsAlgorithm, Rule, RuleError, RuleId,
    RuleSetBuf, TileInAll1, Timer,
};

/// Standard base64 that accepts values with or without padding.
const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Module prefix of RFC 9363 identities and members.
const SCHC: &str = "ietf-schc:";
/// Module prefix of RFC 9441 identities and members.
const COMPOUND_ACK: &str = "ietf-schc-compound-ack:";
/// Our own identity for CoAP options that RFC 9363 does not name.
const OPTION_EXTENSION: &str = "lpwan-schc:fid-coap-option-";
/// The top-level member.
const TOP: &str = "ietf-schc:schc";

/// Default `max-ack-requests` for ACK-Always and ACK-on-Error when the leaf is absent.
pub const DEFAULT_MAX_ACK_REQUESTS: u8 = 4;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// A rule in a document: its position in the `rule` array and, once read, its ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleRef {
    /// Position in the `rule` array (0-based).
    pub index: usize,
    /// The rule ID, if it could be read.
    pub id: Option<RuleId>,
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.id {
            Some(id) => write!(f, "rule {id}"),
            None => write!(f, "rule at index {}", self.index),
        }
    }
}

/// Where in a document an error lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// Outside any rule.
    Document,
    /// In a rule, outside its entries.
    Rule(RuleRef),
    /// In one entry (field descriptor) of a compression rule.
    Entry {
        /// The rule.
        rule: RuleRef,
        /// Position of the entry in the rule's `entry` array (0-based).
        index: usize,
        /// The entry's field, once read.
        fid: Option<Fid>,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Document => f.write_str("document"),
            Location::Rule(r) => write!(f, "{r}"),
            Location::Entry {
                rule,
                index,
                fid: Some(fid),
            } => write!(f, "{rule}, entry {index} ({fid})"),
            Location::Entry {
                rule,
                index,
                fid: None,
            } => write!(f, "{rule}, entry {index}"),
        }
    }
}

/// What is wrong with one JSON member.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// A required member is absent.
    #[error("is missing")]
    Missing,
    /// The member has the wrong JSON type.
    #[error("must be {0}")]
    Type(&'static str),
    /// A binary value is not base64.
    #[error("is not valid base64")]
    Base64,
    /// A number above its YANG range.
    #[error("is {value}, more than {max}")]
    TooLarge {
        /// The value found.
        value: u64,
        /// The largest value allowed.
        max: u64,
    },
    /// An identity this library does not know for this member.
    #[error("has unknown value \"{0}\"")]
    UnknownIdentity(String),
    /// A field identity that the library does not support.
    #[error("\"{0}\" is not a supported field")]
    UnsupportedFid(String),
    /// List indices that are not 0, 1, 2, … (sorted, as found).
    #[error("has indices {0:?}; they must run 0, 1, 2, ... without gaps or repeats")]
    BadIndices(Vec<u64>),
    /// A member that RFC 9363 does not define here.
    #[error("is not an RFC 9363 member here")]
    UnknownMember,
    /// The same member twice (e.g. once qualified, once not).
    #[error("appears twice")]
    Duplicate,
    /// A member that does not belong to this kind of rule.
    #[error("is not allowed in a {0} rule")]
    NotAllowed(&'static str),
    /// Any other inconsistency, described.
    #[error("{0}")]
    Invalid(String),
}

/// An RFC 9363 JSON document that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// Not JSON at all.
    #[error("invalid JSON: {0}")]
    Syntax(#[from] serde_json::Error),
    /// JSON that does not follow the RFC 9363 model, with the rule, entry and member at fault.
    #[error("{at}: {member} {problem}")]
    Schema {
        /// The rule and entry.
        at: Location,
        /// The JSON member (with list positions, e.g. `target-value[0]`).
        member: String,
        /// What is wrong with it.
        problem: Problem,
    },
    /// A well-formed document whose rules are inconsistent (see [`RuleSetBuf::validate`]).
    #[error(transparent)]
    Rule(#[from] RuleError),
}

impl JsonError {
    /// The location of a schema error (`None` for syntax and rule-model errors).
    pub fn location(&self) -> Option<Location> {
        match self {
            JsonError::Schema { at, .. } => Some(*at),
            _ => None,
        }
    }
}

fn schema(at: Location, member: impl Into<String>, problem: Problem) -> JsonError {
    JsonError::Schema {
        at,
        member: member.into(),
        problem,
    }
}

// ---------------------------------------------------------------------------------------------
// Identity tables
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NatureKind {
    Compression,
    NoCompression,
    Fragmentation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MoKind {
    Equal,
    Ignore,
    Msb,
    MatchMapping,
}

const NATURES: &[(&str, NatureKind)] = &[
    ("nature-compression", NatureKind::Compression),
    ("nature-no-compression", NatureKind::NoCompression),
    ("nature-fragmentation", NatureKind::Fragmentation),
];

const DIS: &[(&str, DirectionIndicator)] = &[
    ("di-bidirectional", DirectionIndicator::Bi),
    ("di-up", DirectionIndicator::Up),
    ("di-down", DirectionIndicator::Down),
];

const MOS: &[(&str, MoKind)] = &[
    ("mo-equal", MoKind::Equal),
    ("mo-ignore", MoKind::Ignore),
    ("mo-msb", MoKind::Msb),
    ("mo-match-mapping", MoKind::MatchMapping),
];

const CDAS: &[(&str, Cda)] = &[
    ("cda-not-sent", Cda::NotSent),
    ("cda-value-sent", Cda::ValueSent),
    ("cda-mapping-sent", Cda::MappingSent),
    ("cda-lsb", Cda::Lsb),
    ("cda-compute", Cda::Compute),
    ("cda-compute-length", Cda::Compute),
    ("cda-compute-checksum", Cda::Compute),
    ("cda-deviid", Cda::DevIid),
    ("cda-appiid", Cda::AppIid),
];

const FLS: &[(&str, FieldLength)] = &[
    ("fl-variable", FieldLength::Variable),
    ("fl-token-length", FieldLength::TokenLength),
];

const MODES: &[(&str, FragMode)] = &[
    ("fragmentation-mode-no-ack", FragMode::NoAck),
    ("fragmentation-mode-ack-always", FragMode::AckAlways),
    ("fragmentation-mode-ack-on-error", FragMode::AckOnError),
];

const RCSS: &[(&str, RcsAlgorithm)] = &[("rcs-crc32", RcsAlgorithm::Crc32)];

const TILE_IN_ALL1: &[(&str, TileInAll1)] = &[
    ("all-1-data-no", TileInAll1::No),
    ("all-1-data-yes", TileInAll1::Yes),
    ("all-1-data-sender-choice", TileInAll1::SenderChoice),
];

const ACK_BEHAVIORS: &[(&str, AckBehavior)] = &[
    ("ack-behavior-after-all-0", AckBehavior::AfterAll0),
    ("ack-behavior-after-all-1", AckBehavior::AfterAll1),
    ("ack-behavior-by-layer2", AckBehavior::ByLayer2),
];

const BITMAP_FORMATS: &[(&str, BitmapFormat)] = &[
    ("bitmap-RFC8724", BitmapFormat::Rfc8724),
    ("bitmap-compound-ack", BitmapFormat::CompoundAck),
];

/// The module an identity or member belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Module {
    Schc,
    CompoundAck,
}

impl Module {
    const fn prefix(self) -> &'static str {
        match self {
            Module::Schc => SCHC,
            Module::CompoundAck => COMPOUND_ACK,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Members of an object
// ---------------------------------------------------------------------------------------------

const ENTRY_MEMBERS: &[(&str, Module)] = &[
    ("field-id", Module::Schc),
    ("field-length", Module::Schc),
    ("field-position", Module::Schc),
    ("direction-indicator", Module::Schc),
    ("target-value", Module::Schc),
    ("matching-operator", Module::Schc),
    ("matching-operator-value", Module::Schc),
    ("comp-decomp-action", Module::Schc),
    ("comp-decomp-action-value", Module::Schc),
];

/// Fragmentation leaves (only in fragmentation rules).
const FRAG_MEMBERS: &[(&str, Module)] = &[
    ("fragmentation-mode", Module::Schc),
    ("l2-word-size", Module::Schc),
    ("direction", Module::Schc),
    ("dtag-size", Module::Schc),
    ("w-size", Module::Schc),
    ("fcn-size", Module::Schc),
    ("rcs-algorithm", Module::Schc),
    ("maximum-packet-size", Module::Schc),
    ("window-size", Module::Schc),
    ("max-interleaved-frames", Module::Schc),
    ("inactivity-timer", Module::Schc),
    ("retransmission-timer", Module::Schc),
    ("max-ack-requests", Module::Schc),
    ("tile-size", Module::Schc),
    ("tile-in-all-1", Module::Schc),
    ("ack-behavior", Module::Schc),
    ("bitmap-format", Module::CompoundAck),
    ("last-bitmap-compression", Module::CompoundAck),
];

const RULE_MEMBERS: &[(&str, Module)] = &[
    ("rule-id-value", Module::Schc),
    ("rule-id-length", Module::Schc),
    ("rule-nature", Module::Schc),
    ("entry", Module::Schc),
];

const TIMER_MEMBERS: &[(&str, Module)] = &[
    ("ticks-duration", Module::Schc),
    ("ticks-numbers", Module::Schc),
];

const LIST_ITEM_MEMBERS: &[(&str, Module)] = &[("index", Module::Schc), ("value", Module::Schc)];

const SCHC_MEMBERS: &[(&str, Module)] = &[("rule", Module::Schc)];

/// The known members of a JSON object, by unqualified name.
struct Members<'a> {
    found: Vec<(&'static str, &'a Value)>,
}

impl<'a> Members<'a> {
    /// Sorts the members of `obj` against the `known` lists. Members of foreign modules are
    /// skipped; an unknown or repeated member is an error `(member, problem)`.
    fn read(
        obj: &'a Map<String, Value>,
        known: &[&[(&'static str, Module)]],
    ) -> Result<Self, (String, Problem)> {
        let mut found: Vec<(&'static str, &'a Value)> = Vec::with_capacity(obj.len());
        for (key, value) in obj {
            let (module, name) = if let Some(rest) = key.strip_prefix(SCHC) {
                (Some(Module::Schc), rest)
            } else if let Some(rest) = key.strip_prefix(COMPOUND_ACK) {
                (Some(Module::CompoundAck), rest)
            } else if key.contains(':') {
                continue; // another module's augmentation: not ours to judge
            } else {
                (None, key.as_str())
            };
            let hit = known
                .iter()
                .flat_map(|list| list.iter())
                .find(|(n, m)| *n == name && (module.is_none() || module == Some(*m)));
            let Some(&(name, _)) = hit else {
                return Err((key.clone(), Problem::UnknownMember));
            };
            if found.iter().any(|(n, _)| *n == name) {
                return Err((key.clone(), Problem::Duplicate));
            }
            found.push((name, value));
        }
        Ok(Self { found })
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.found.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    /// The first member present from `list`, if any.
    fn any_of(&self, list: &[(&'static str, Module)]) -> Option<&'static str> {
        self.found
            .iter()
            .map(|(n, _)| *n)
            .find(|n| list.iter().any(|(l, _)| l == n))
    }
}

// ---------------------------------------------------------------------------------------------
// Scalar readers (errors are a bare `Problem`; the caller adds the location and member)
// ---------------------------------------------------------------------------------------------

const UINT: &str = "an unsigned integer";

fn uint(v: &Value, max: u64) -> Result<u64, Problem> {
    let n = match v {
        Value::Number(n) => n.as_u64().ok_or(Problem::Type(UINT))?,
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<u64>().map_err(|_| Problem::Type(UINT))?
        }
        _ => return Err(Problem::Type(UINT)),
    };
    if n > max {
        return Err(Problem::TooLarge { value: n, max });
    }
    Ok(n)
}

fn uint8(v: &Value) -> Result<u8, Problem> {
    uint(v, u8::MAX.into()).map(|n| n as u8)
}

fn uint16(v: &Value) -> Result<u16, Problem> {
    uint(v, u16::MAX.into()).map(|n| n as u16)
}

fn boolean(v: &Value) -> Result<bool, Problem> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        _ => Err(Problem::Type("true or false")),
    }
}

fn identity<T: Copy>(v: &Value, module: Module, table: &[(&str, T)]) -> Result<T, Problem> {
    let s = v.as_str().ok_or(Problem::Type("an identity name"))?;
    let short = s.strip_prefix(module.prefix()).unwrap_or(s);
    table
        .iter()
        .find(|(n, _)| *n == short)
        .map(|(_, t)| *t)
        .ok_or_else(|| Problem::UnknownIdentity(s.to_string()))
}

fn fid(v: &Value) -> Result<Fid, Problem> {
    let s = v.as_str().ok_or(Problem::Type("an identity name"))?;
    if let Some(f) = Fid::from_rfc9363_name(s) {
        return Ok(f);
    }
    if let Some(num) = s.strip_prefix(OPTION_EXTENSION) {
        if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = num.parse::<u16>() {
                return Ok(Fid::CoapOption(n));
            }
        }
    }
    Err(Problem::UnsupportedFid(s.to_string()))
}

fn field_length(v: &Value) -> Result<FieldLength, Problem> {
    match v {
        Value::String(s) if !s.bytes().all(|b| b.is_ascii_digit()) => {
            identity(v, Module::Schc, FLS)
        }
        _ => uint16(v).map(FieldLength::Fixed).map_err(|p| match p {
            Problem::Type(_) => Problem::Type("a number of bits, fl-variable or fl-token-length"),
            p => p,
        }),
    }
}

/// Minimal big-endian bytes of `n` (at least one byte).
fn be_bytes(n: u64) -> Vec<u8> {
    let b = n.to_be_bytes();
    let skip = b.iter().take(7).take_while(|&&x| x == 0).count();
    b.get(skip..).unwrap_or_default().to_vec()
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// Parses an RFC 9363 JSON document and validates the resulting set.
///
/// See [`from_value`] for what is accepted and the defaults used.
pub fn from_str(s: &str) -> Result<RuleSetBuf, JsonError> {
    let v: Value = serde_json::from_str(s)?;
    from_value(&v)
}

/// Builds a rule set from an RFC 9363 JSON document (`{"ietf-schc:schc": {"rule": [...]}}`)
/// and validates and indexes it with [`RuleSetBuf::build_index`].
///
/// Rules keep their array order, and entries their order within a rule (the rule order of
/// RFC 8724). Defaults for absent leaves:
///
/// | leaf | default |
/// |---|---|
/// | `field-position` | 1 |
/// | `direction-indicator` | `di-bidirectional` |
/// | `target-value` | none |
/// | `l2-word-size` | 8 |
/// | `dtag-size` | 0 |
/// | `w-size` | 0 for No-ACK, 1 for ACK-Always; required for ACK-on-Error |
/// | `rcs-algorithm` | `rcs-crc32` |
/// | `maximum-packet-size` | 1280 |
/// | `window-size` | 2^`fcn-size` − 1 |
/// | `max-interleaved-frames` | 1 |
/// | `inactivity-timer`, `retransmission-timer` | none; inside, `ticks-duration` 20 |
/// | `max-ack-requests` | [`DEFAULT_MAX_ACK_REQUESTS`] (4) for ACK-Always and ACK-on-Error, 0 for No-ACK |
/// | `tile-size` | 0 (fill the fragment) |
/// | `tile-in-all-1` | `all-1-data-sender-choice` for ACK-on-Error; `all-1-data-yes` for the other modes, where RFC 8724 puts the last tile in the All-1 |
/// | `ack-behavior` | `ack-behavior-after-all-1` |
/// | `bitmap-format` | `bitmap-RFC8724` |
/// | `last-bitmap-compression` | true |
///
/// `fragmentation-mode`, `direction` (up or down only) and `fcn-size` are required in a
/// fragmentation rule; `rule-id-value`, `rule-id-length`, and in an entry `field-id`,
/// `field-length`, `matching-operator` and `comp-decomp-action` are always required.
pub fn from_value(v: &Value) -> Result<RuleSetBuf, JsonError> {
    let doc = Location::Document;
    let top = v
        .as_object()
        .ok_or_else(|| schema(doc, "top level", Problem::Type("a JSON object")))?;
    let schc = top
        .get(TOP)
        .ok_or_else(|| schema(doc, TOP, Problem::Missing))?
        .as_object()
        .ok_or_else(|| schema(doc, TOP, Problem::Type("a JSON object")))?;
    let members = Members::read(schc, &[SCHC_MEMBERS])
        .map_err(|(m, p)| schema(doc, format!("{TOP}.{m}"), p))?;
    let mut set = RuleSetBuf::new();
    if let Some(rules) = members.get("rule") {
        let rules = rules
            .as_array()
            .ok_or_else(|| schema(doc, "rule", Problem::Type("a list of rules")))?;
        for (index, rule) in rules.iter().enumerate() {
            read_rule(&mut set, index, rule)?;
        }
    }
    set.build_index()?;
    Ok(set)
}

fn read_rule(set: &mut RuleSetBuf, index: usize, v: &Value) -> Result<(), JsonError> {
    let mut rref = RuleRef { index, id: None };
    let at = Location::Rule(rref);
    let obj = v
        .as_object()
        .ok_or_else(|| schema(at, "rule", Problem::Type("a JSON object")))?;
    let m = Members::read(obj, &[RULE_MEMBERS, FRAG_MEMBERS]).map_err(|(k, p)| schema(at, k, p))?;
    let req = |name: &'static str| {
        m.get(name)
            .ok_or_else(|| schema(at, name, Problem::Missing))
    };

    let value = uint(req("rule-id-value")?, u32::MAX.into())
        .map_err(|p| schema(at, "rule-id-value", p))? as u32;
    let length =
        uint(req("rule-id-length")?, 32).map_err(|p| schema(at, "rule-id-length", p))? as u8;
    let id = RuleId::new(value, length);
    if !id.is_well_formed() {
        return Err(schema(
            at,
            "rule-id-value",
            Problem::Invalid(format!(
                "{value} does not fit in rule-id-length {length} bits"
            )),
        ));
    }
    rref.id = Some(id);
    let at = Location::Rule(rref);

    let nature = match m.get("rule-nature") {
        Some(n) => identity(n, Module::Schc, NATURES).map_err(|p| schema(at, "rule-nature", p))?,
        None if m.get("entry").is_some() => NatureKind::Compression,
        None if m.get("fragmentation-mode").is_some() => NatureKind::Fragmentation,
        None => NatureKind::NoCompression,
    };
    let no_frag_leaves = |kind: &'static str| match m.any_of(FRAG_MEMBERS) {
        Some(leaf) => Err(schema(at, leaf, Problem::NotAllowed(kind))),
        None => Ok(()),
    };
    let no_entries = |kind: &'static str| match m.get("entry") {
        Some(_) => Err(schema(at, "entry", Problem::NotAllowed(kind))),
        None => Ok(()),
    };
    match nature {
        NatureKind::Compression => {
            no_frag_leaves("compression")?;
            let entries = match m.get("entry") {
                Some(e) => e
                    .as_array()
                    .ok_or_else(|| schema(at, "entry", Problem::Type("a list of entries")))?
                    .as_slice(),
                None => &[],
            };
            let specs = entries
                .iter()
                .enumerate()
                .map(|(i, e)| read_entry(rref, i, e))
                .collect::<Result<Vec<_>, _>>()?;
            set.push_compression(id, &specs)
                .map_err(|msg| schema(at, "entry", Problem::Invalid(msg.to_string())))?;
        }
        NatureKind::NoCompression => {
            no_frag_leaves("no-compression")?;
            no_entries("no-compression")?;
            set.push_no_compression(id);
        }
        NatureKind::Fragmentation => {
            no_entries("fragmentation")?;
            let params = read_frag(at, &m)?;
            set.push_fragmentation(id, params);
        }
    }
    Ok(())
}

fn read_entry(rule: RuleRef, index: usize, v: &Value) -> Result<FieldSpec, JsonError> {
    let mut at = Location::Entry {
        rule,
        index,
        fid: None,
    };
    let obj = v
        .as_object()
        .ok_or_else(|| schema(at, "entry", Problem::Type("a JSON object")))?;
    // Name the field in errors about other members, even when the object has a bad member.
    let early_fid = obj
        .get("field-id")
        .or_else(|| obj.get("ietf-schc:field-id"))
        .and_then(|v| fid(v).ok());
    let err_at = Location::Entry {
        rule,
        index,
        fid: early_fid,
    };
    let m = Members::read(obj, &[ENTRY_MEMBERS]).map_err(|(k, p)| schema(err_at, k, p))?;

    let fid_v = m
        .get("field-id")
        .ok_or_else(|| schema(at, "field-id", Problem::Missing))?;
    let fid = fid(fid_v).map_err(|p| schema(at, "field-id", p))?;
    at = Location::Entry {
        rule,
        index,
        fid: Some(fid),
    };
    let req = |name: &'static str| {
        m.get(name)
            .ok_or_else(|| schema(at, name, Problem::Missing))
    };

    let fl = field_length(req("field-length")?).map_err(|p| schema(at, "field-length", p))?;
    let fp = match m.get("field-position") {
        Some(v) => uint8(v).map_err(|p| schema(at, "field-position", p))?,
        None => 1,
    };
    let di = match m.get("direction-indicator") {
        Some(v) => {
            identity(v, Module::Schc, DIS).map_err(|p| schema(at, "direction-indicator", p))?
        }
        None => DirectionIndicator::Bi,
    };
    let tv = match m.get("target-value") {
        Some(v) => binary_list(at, "target-value", v, false)?,
        None => Vec::new(),
    };
    let mo_kind = identity(req("matching-operator")?, Module::Schc, MOS)
        .map_err(|p| schema(at, "matching-operator", p))?;
    let mo = match mo_kind {
        MoKind::Equal => MatchingOperator::Equal,
        MoKind::Ignore => MatchingOperator::Ignore,
        MoKind::MatchMapping => MatchingOperator::MatchMapping,
        MoKind::Msb => {
            const MOV: &str = "matching-operator-value";
            let list = binary_list(at, MOV, req(MOV)?, true)?;
            let [bytes] = list.as_slice() else {
                return Err(schema(
                    at,
                    MOV,
                    Problem::Invalid(format!(
                        "must hold exactly one value (the MSB bit count) for mo-msb, not {}",
                        list.len()
                    )),
                ));
            };
            let mut x: u64 = 0;
            for &b in bytes {
                x = (x << 8) | u64::from(b);
                if x > u16::MAX.into() {
                    return Err(schema(
                        at,
                        format!("{MOV}[0]"),
                        Problem::Invalid(format!("is an MSB bit count larger than {}", u16::MAX)),
                    ));
                }
            }
            MatchingOperator::Msb(x as u16)
        }
    };
    let cda = identity(req("comp-decomp-action")?, Module::Schc, CDAS)
        .map_err(|p| schema(at, "comp-decomp-action", p))?;
    // `comp-decomp-action-value` is accepted by `Members::read` and ignored.
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

/// Reads a YANG list of `{index, value}` binaries, sorted by index (which must be 0..n).
/// With `numbers`, a plain JSON number is accepted as a value (as its minimal big-endian bytes).
fn binary_list(
    at: Location,
    member: &str,
    v: &Value,
    numbers: bool,
) -> Result<Vec<Vec<u8>>, JsonError> {
    let arr = v.as_array().ok_or_else(|| {
        schema(
            at,
            member,
            Problem::Type("a list of {\"index\", \"value\"} objects"),
        )
    })?;
    let mut items: Vec<(u64, Vec<u8>)> = Vec::with_capacity(arr.len());
    for (i, item) in arr.iter().enumerate() {
        let name = format!("{member}[{i}]");
        let obj = item.as_object().ok_or_else(|| {
            schema(
                at,
                name.as_str(),
                Problem::Type("an object with index and value"),
            )
        })?;
        let m = Members::read(obj, &[LIST_ITEM_MEMBERS])
            .map_err(|(k, p)| schema(at, format!("{name}.{k}"), p))?;
        let index = m
            .get("index")
            .ok_or_else(|| schema(at, format!("{name}.index"), Problem::Missing))?;
        let index = uint16(index).map_err(|p| schema(at, format!("{name}.index"), p))?;
        let value = m
            .get("value")
            .ok_or_else(|| schema(at, format!("{name}.value"), Problem::Missing))?;
        let bytes = match value {
            Value::String(s) => BASE64_LENIENT
                .decode(s)
                .map_err(|_| schema(at, name.as_str(), Problem::Base64))?,
            Value::Number(_) if numbers => {
                be_bytes(uint(value, u64::MAX).map_err(|p| schema(at, name.as_str(), p))?)
            }
            _ => {
                return Err(schema(
                    at,
                    format!("{name}.value"),
                    Problem::Type("a base64 string"),
                ))
            }
        };
        items.push((index.into(), bytes));
    }
    items.sort_by_key(|(i, _)| *i);
    if items
        .iter()
        .enumerate()
        .any(|(i, (idx, _))| *idx != i as u64)
    {
        return Err(schema(
            at,
            member,
            Problem::BadIndices(items.iter().map(|(i, _)| *i).collect()),
        ));
    }
    Ok(items.into_iter().map(|(_, b)| b).collect())
}

fn read_timer(at: Location, member: &'static str, v: &Value) -> Result<Timer, JsonError> {
    let obj = v
        .as_object()
        .ok_or_else(|| schema(at, member, Problem::Type("a JSON object")))?;
    let m = Members::read(obj, &[TIMER_MEMBERS])
        .map_err(|(k, p)| schema(at, format!("{member}.{k}"), p))?;
    let tick_exp = match m.get("ticks-duration") {
        Some(v) => uint8(v).map_err(|p| schema(at, format!("{member}.ticks-duration"), p))?,
        None => 20,
    };
    let ticks = m
        .get("ticks-numbers")
        .ok_or_else(|| schema(at, format!("{member}.ticks-numbers"), Problem::Missing))?;
    let ticks = uint16(ticks).map_err(|p| schema(at, format!("{member}.ticks-numbers"), p))?;
    Ok(Timer { tick_exp, ticks })
}

fn read_frag(at: Location, m: &Members<'_>) -> Result<FragParams, JsonError> {
    let err = |name: &'static str| move |p: Problem| schema(at, name, p);
    let opt_u8 = |name: &'static str, default: u8| -> Result<u8, JsonError> {
        m.get(name)
            .map_or(Ok(default), |v| uint8(v).map_err(err(name)))
    };
    let opt_u16 = |name: &'static str, default: u16| -> Result<u16, JsonError> {
        m.get(name)
            .map_or(Ok(default), |v| uint16(v).map_err(err(name)))
    };
    let req = |name: &'static str| {
        m.get(name)
            .ok_or_else(|| schema(at, name, Problem::Missing))
    };

    let mode = identity(req("fragmentation-mode")?, Module::Schc, MODES)
        .map_err(err("fragmentation-mode"))?;
    let direction =
        match identity(req("direction")?, Module::Schc, DIS).map_err(err("direction"))? {
            DirectionIndicator::Up => Direction::Up,
            DirectionIndicator::Down => Direction::Down,
            DirectionIndicator::Bi => {
                return Err(schema(
                    at,
                    "direction",
                    Problem::Invalid(
                        "must be di-up or di-down: a fragmentation rule has one direction".into(),
                    ),
                ))
            }
        };
    let l2_word = opt_u8("l2-word-size", 8)?;
    let dtag_bits = opt_u8("dtag-size", 0)?;
    let w_bits = match (m.get("w-size"), mode) {
        (Some(v), _) => uint8(v).map_err(err("w-size"))?,
        (None, FragMode::NoAck) => 0,
        (None, FragMode::AckAlways) => 1,
        (None, FragMode::AckOnError) => return Err(schema(at, "w-size", Problem::Missing)),
    };
    let fcn_bits = uint8(req("fcn-size")?).map_err(err("fcn-size"))?;
    let rcs = match m.get("rcs-algorithm") {
        Some(v) => identity(v, Module::Schc, RCSS).map_err(err("rcs-algorithm"))?,
        None => RcsAlgorithm::Crc32,
    };
    let max_packet_size = opt_u16("maximum-packet-size", 1280)?;
    let default_window = if fcn_bits >= 16 {
        u16::MAX
    } else {
        (1u16 << fcn_bits) - 1
    };
    let window_size = opt_u16("window-size", default_window)?;
    let max_interleaved = opt_u8("max-interleaved-frames", 1)?;
    let inactivity_timer = m
        .get("inactivity-timer")
        .map(|v| read_timer(at, "inactivity-timer", v))
        .transpose()?;
    let retransmission_timer = m
        .get("retransmission-timer")
        .map(|v| read_timer(at, "retransmission-timer", v))
        .transpose()?;
    let max_ack_requests = opt_u8("max-ack-requests", default_max_ack_requests(mode))?;
    let tile_size = opt_u16("tile-size", 0)?;
    let tile_in_all1 = match m.get("tile-in-all-1") {
        Some(v) => identity(v, Module::Schc, TILE_IN_ALL1).map_err(err("tile-in-all-1"))?,
        None => default_tile_in_all1(mode),
    };
    let ack_behavior = match m.get("ack-behavior") {
        Some(v) => identity(v, Module::Schc, ACK_BEHAVIORS).map_err(err("ack-behavior"))?,
        None => AckBehavior::AfterAll1,
    };
    let bitmap_format = match m.get("bitmap-format") {
        Some(v) => {
            identity(v, Module::CompoundAck, BITMAP_FORMATS).map_err(err("bitmap-format"))?
        }
        None => BitmapFormat::Rfc8724,
    };
    let last_bitmap_compression = match m.get("last-bitmap-compression") {
        Some(v) => boolean(v).map_err(err("last-bitmap-compression"))?,
        None => true,
    };
    Ok(FragParams {
        mode,
        direction,
        l2_word,
        dtag_bits,
        w_bits,
        fcn_bits,
        window_size,
        rcs,
        max_packet_size,
        max_interleaved,
        inactivity_timer,
        retransmission_timer,
        max_ack_requests,
        tile_size,
        tile_in_all1,
        ack_behavior,
        bitmap_format,
        last_bitmap_compression,
    })
}

const fn default_max_ack_requests(mode: FragMode) -> u8 {
    match mode {
        FragMode::NoAck => 0,
        FragMode::AckAlways | FragMode::AckOnError => DEFAULT_MAX_ACK_REQUESTS,
    }
}

const fn default_tile_in_all1(mode: FragMode) -> TileInAll1 {
    match mode {
        FragMode::AckOnError => TileInAll1::SenderChoice,
        FragMode::NoAck | FragMode::AckAlways => TileInAll1::Yes,
    }
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// Writes a rule set as an RFC 9363 JSON document that [`from_value`] reads back to an equal
/// set.
///
/// Identities are qualified (`ietf-schc:...`, `ietf-schc-compound-ack:...`); entries keep rule
/// order; target values are the base64 of the stored bytes; an MSB argument is the base64 of
/// the minimal big-endian bytes of its bit count (12 is `DA==`). Fragmentation rules carry every
/// RFC 9363 leaf of their mode; leaves outside their mode (and the RFC 9441 leaves) are written
/// only when they differ from the default [`from_value`] would use.
pub fn to_value(set: &RuleSetBuf) -> Value {
    let rules: Vec<Value> = set
        .as_set()
        .rules()
        .iter()
        .map(|rule| rule_value(set, rule))
        .collect();
    let mut schc = Map::new();
    schc.insert("rule".into(), Value::Array(rules));
    let mut top = Map::new();
    top.insert(TOP.into(), Value::Object(schc));
    Value::Object(top)
}

/// [`to_value`], pretty-printed (two-space indent, no trailing newline).
pub fn to_string_pretty(set: &RuleSetBuf) -> String {
    format!("{:#}", to_value(set))
}

fn qualified(module: Module, name: &str) -> Value {
    Value::String([module.prefix(), name].concat())
}

fn schc_id(name: &str) -> Value {
    qualified(Module::Schc, name)
}

fn name_of<T: PartialEq>(table: &[(&'static str, T)], value: &T) -> &'static str {
    // Every table covers its whole enum, so the fallback is never used.
    table
        .iter()
        .find(|(_, t)| t == value)
        .map_or("", |(n, _)| *n)
}

fn binary_list_value<'b>(values: impl IntoIterator<Item = &'b [u8]>) -> Value {
    Value::Array(
        values
            .into_iter()
            .enumerate()
            .map(|(i, b)| {
                let mut o = Map::new();
                o.insert("index".into(), Value::from(i));
                o.insert("value".into(), Value::String(STANDARD.encode(b)));
                Value::Object(o)
            })
            .collect(),
    )
}

fn rule_value(set: &RuleSetBuf, rule: &Rule) -> Value {
    let mut o = Map::new();
    o.insert("rule-id-value".into(), rule.id.value.into());
    o.insert("rule-id-length".into(), rule.id.length.into());
    match rule.nature {
        Nature::Compression(_) => {
            o.insert("rule-nature".into(), schc_id("nature-compression"));
            let entries = set.field_specs(rule).iter().map(entry_value).collect();
            o.insert("entry".into(), Value::Array(entries));
        }
        Nature::NoCompression => {
            o.insert("rule-nature".into(), schc_id("nature-no-compression"));
        }
        Nature::Fragmentation(p) => {
            o.insert("rule-nature".into(), schc_id("nature-fragmentation"));
            frag_members(&mut o, &p);
        }
    }
    Value::Object(o)
}

fn entry_value(e: &FieldSpec) -> Value {
    let mut o = Map::new();
    let fid = match e.fid.rfc9363_name() {
        Some(name) => schc_id(name),
        None => match e.fid {
            Fid::CoapOption(n) => Value::String(format!("{OPTION_EXTENSION}{n}")),
            // Every other field has an RFC 9363 name.
            other => Value::String(other.to_string()),
        },
    };
    o.insert("field-id".into(), fid);
    let fl = match e.fl {
        FieldLength::Fixed(n) => n.into(),
        FieldLength::Variable => schc_id("fl-variable"),
        FieldLength::TokenLength => schc_id("fl-token-length"),
    };
    o.insert("field-length".into(), fl);
    o.insert("field-position".into(), e.fp.into());
    o.insert("direction-indicator".into(), schc_id(name_of(DIS, &e.di)));
    if !e.tv.is_empty() {
        o.insert(
            "target-value".into(),
            binary_list_value(e.tv.iter().map(Vec::as_slice)),
        );
    }
    let mo = match e.mo {
        MatchingOperator::Equal => "mo-equal",
        MatchingOperator::Ignore => "mo-ignore",
        MatchingOperator::Msb(_) => "mo-msb",
        MatchingOperator::MatchMapping => "mo-match-mapping",
    };
    o.insert("matching-operator".into(), schc_id(mo));
    if let MatchingOperator::Msb(x) = e.mo {
        let bytes = be_bytes(x.into());
        o.insert(
            "matching-operator-value".into(),
            binary_list_value([bytes.as_slice()]),
        );
    }
    o.insert("comp-decomp-action".into(), schc_id(name_of(CDAS, &e.cda)));
    Value::Object(o)
}

fn timer_value(t: &Timer) -> Value {
    let mut o = Map::new();
    o.insert("ticks-duration".into(), t.tick_exp.into());
    o.insert("ticks-numbers".into(), t.ticks.into());
    Value::Object(o)
}

fn frag_members(o: &mut Map<String, Value>, p: &FragParams) {
    let windowed = p.mode != FragMode::NoAck;
    let aoe = p.mode == FragMode::AckOnError;
    o.insert(
        "fragmentation-mode".into(),
        schc_id(name_of(MODES, &p.mode)),
    );
    o.insert("l2-word-size".into(), p.l2_word.into());
    let di = match p.direction {
        Direction::Up => "di-up",
        Direction::Down => "di-down",
    };
    o.insert("direction".into(), schc_id(di));
    o.insert("dtag-size".into(), p.dtag_bits.into());
    if windowed || p.w_bits != 0 {
        o.insert("w-size".into(), p.w_bits.into());
    }
    o.insert("fcn-size".into(), p.fcn_bits.into());
    let rcs = match p.rcs {
        // RFC 9363 has no identity for RFC 9442's tile count: a name of our own, which
        // `from_str` refuses instead of reading it back as CRC32.
        RcsAlgorithm::TileCount => Value::String("lpwan-schc:rcs-tile-count".into()),
        _ => schc_id(name_of(RCSS, &p.rcs)),
    };
    o.insert("rcs-algorithm".into(), rcs);
    o.insert("maximum-packet-size".into(), p.max_packet_size.into());
    o.insert("window-size".into(), p.window_size.into());
    o.insert("max-interleaved-frames".into(), p.max_interleaved.into());
    if let Some(t) = &p.inactivity_timer {
        o.insert("inactivity-timer".into(), timer_value(t));
    }
    if let Some(t) = &p.retransmission_timer {
        o.insert("retransmission-timer".into(), timer_value(t));
    }
    if windowed || p.max_ack_requests != default_max_ack_requests(p.mode) {
        o.insert("max-ack-requests".into(), p.max_ack_requests.into());
    }
    if aoe || p.tile_size != 0 {
        o.insert("tile-size".into(), p.tile_size.into());
    }
    if aoe || p.tile_in_all1 != default_tile_in_all1(p.mode) {
        o.insert(
            "tile-in-all-1".into(),
            schc_id(name_of(TILE_IN_ALL1, &p.tile_in_all1)),
        );
    }
    if aoe || p.ack_behavior != AckBehavior::AfterAll1 {
        o.insert(
            "ack-behavior".into(),
            schc_id(name_of(ACK_BEHAVIORS, &p.ack_behavior)),
        );
    }
    if p.bitmap_format != BitmapFormat::Rfc8724 {
        o.insert(
            [COMPOUND_ACK, "bitmap-format"].concat(),
            qualified(
                Module::CompoundAck,
                name_of(BITMAP_FORMATS, &p.bitmap_format),
            ),
        );
    }
    if !p.last_bitmap_compression || p.bitmap_format != BitmapFormat::Rfc8724 {
        o.insert(
            [COMPOUND_ACK, "last-bitmap-compression"].concat(),
            p.last_bitmap_compression.into(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::{EntryError, RuleSet};
    use serde_json::json;

    const EXAMPLE: &str = include_str!("../rules/example.json");

    fn entry(fid: &str, fl: Value, tv: Option<&str>, mo: &str, cda: &str) -> Value {
        let mut e = json!({
            "field-id": fid,
            "field-length": fl,
            "field-position": 1,
            "direction-indicator": "ietf-schc:di-bidirectional",
            "matching-operator": mo,
            "comp-decomp-action": cda,
        });
        if let Some(tv) = tv {
            e["target-value"] = json!([{"index": 0, "value": tv}]);
        }
        e
    }

    fn doc(rules: Vec<Value>) -> Value {
        json!({"ietf-schc:schc": {"rule": rules}})
    }

    fn compression(value: u32, length: u8, entries: Vec<Value>) -> Value {
        json!({
            "rule-id-value": value,
            "rule-id-length": length,
            "rule-nature": "ietf-schc:nature-compression",
            "entry": entries,
        })
    }

    /// A one-entry compression rule 5/8 around `e`; the error message it gives.
    fn entry_err(e: Value) -> String {
        let err = from_value(&doc(vec![compression(5, 8, vec![e])])).unwrap_err();
        err.to_string()
    }

    fn round_trip(set: &RuleSetBuf) {
        let v = to_value(set);
        let back = from_value(&v).unwrap_or_else(|e| panic!("{e}\n{v:#}"));
        assert_eq!(&back, set);
        let text = to_string_pretty(set);
        assert_eq!(&from_str(&text).unwrap(), set);
    }

    fn frag_params(set: &RuleSetBuf, id: RuleId) -> FragParams {
        match set.as_set().get(id).unwrap().nature {
            Nature::Fragmentation(p) => p,
            other => panic!("{id} is {other:?}"),
        }
    }

    #[test]
    fn shipped_example_loads_and_round_trips() {
        let set = from_str(EXAMPLE).unwrap();
        let view = set.as_set();
        assert_eq!(view.rules().len(), 3);
        let r1 = view.get(RuleId::new(1, 8)).unwrap();
        let fields = view.fields(r1);
        assert_eq!(fields.len(), 21);
        assert_eq!(fields[0].fid, Fid::Ipv6Version);
        assert_eq!(view.tv(&fields[0], 0), Some(&[6u8][..]));
        assert_eq!(fields[6].mo, MatchingOperator::MatchMapping);
        assert_eq!(view.tv_count(&fields[6]), 2);
        assert_eq!(fields[10].mo, MatchingOperator::Msb(12));
        assert_eq!(fields[19].fl, FieldLength::TokenLength);
        assert_eq!(fields[20].fl, FieldLength::Variable);
        assert_eq!(fields[20].fid, Fid::CoapOption(11));
        assert_eq!(view.tv(&fields[20], 0), Some(&b"temp"[..]));
        assert_eq!(fields[15].di, DirectionIndicator::Up);

        let p = frag_params(&set, RuleId::new(20, 8));
        assert_eq!(p.mode, FragMode::AckOnError);
        assert_eq!(p.direction, Direction::Up);
        assert_eq!((p.w_bits, p.fcn_bits, p.dtag_bits), (2, 6, 0));
        assert_eq!(p.window_size, 63);
        assert_eq!(p.tile_size, 80);
        assert_eq!(p.max_ack_requests, 8);
        assert_eq!(p.max_packet_size, 2520);
        assert_eq!(p.ack_behavior, AckBehavior::AfterAll0);
        assert_eq!(p.tile_in_all1, TileInAll1::SenderChoice);
        let t = Timer {
            tick_exp: 20,
            ticks: 41199,
        };
        assert_eq!(p.inactivity_timer, Some(t));
        assert_eq!(p.retransmission_timer, Some(t));
        assert_eq!(
            view.get(RuleId::new(22, 8)).unwrap().nature,
            Nature::NoCompression
        );
        round_trip(&set);
    }

    #[test]
    fn writes_stored_bytes_and_msb_argument() {
        let set = from_str(EXAMPLE).unwrap();
        let v = to_value(&set);
        let rule = &v["ietf-schc:schc"]["rule"][0];
        assert_eq!(rule["rule-nature"], "ietf-schc:nature-compression");
        let dev_port = &rule["entry"][10];
        assert_eq!(dev_port["field-id"], "ietf-schc:fid-udp-dev-port");
        assert_eq!(dev_port["target-value"][0]["value"], "IhA=");
        assert_eq!(
            dev_port["matching-operator-value"],
            json!([{"index": 0, "value": "DA=="}])
        );
        assert_eq!(
            rule["entry"][19]["field-length"],
            "ietf-schc:fl-token-length"
        );
        // `AAY=` (two bytes) is kept as written, not normalised to `Bg==`.
        let e = entry(
            "fid-ipv6-version",
            json!(4),
            Some("AAY="),
            "mo-equal",
            "cda-not-sent",
        );
        let set = from_value(&doc(vec![compression(1, 8, vec![e])])).unwrap();
        let v = to_value(&set);
        let e = &v["ietf-schc:schc"]["rule"][0]["entry"][0];
        assert_eq!(e["target-value"][0]["value"], "AAY=");
        assert_eq!(e["field-id"], "ietf-schc:fid-ipv6-version");
        assert_eq!(e["matching-operator"], "ietf-schc:mo-equal");
    }

    fn annex_a_rule_6(version_tv: &str) -> Value {
        compression(
            6,
            3,
            vec![
                entry(
                    "fid-ipv6-version",
                    json!(4),
                    Some(version_tv),
                    "mo-equal",
                    "cda-not-sent",
                ),
                entry(
                    "fid-ipv6-trafficclass",
                    json!(8),
                    Some("AA=="),
                    "mo-equal",
                    "cda-not-sent",
                ),
                entry(
                    "fid-ipv6-flowlabel",
                    json!(20),
                    Some("AA=="),
                    "mo-ignore",
                    "cda-not-sent",
                ),
                entry(
                    "fid-ipv6-payload-length",
                    json!(16),
                    None,
                    "mo-ignore",
                    "cda-compute",
                ),
                entry(
                    "fid-ipv6-nextheader",
                    json!(8),
                    Some("ADo="),
                    "mo-equal",
                    "cda-not-sent",
                ),
                entry(
                    "fid-ipv6-hoplimit",
                    json!(8),
                    Some("AP8="),
                    "mo-ignore",
                    "cda-not-sent",
                ),
                entry(
                    "fid-ipv6-devprefix",
                    json!(64),
                    Some("IAEEcB8hAdI="),
                    "mo-equal",
                    "cda-not-sent",
                ),
                entry(
                    "fid-ipv6-deviid",
                    json!(64),
                    Some("AAAAAAAAAAM="),
                    "mo-equal",
                    "cda-not-sent",
                ),
                entry(
                    "fid-ipv6-appprefix",
                    json!(64),
                    None,
                    "mo-ignore",
                    "cda-value-sent",
                ),
                entry(
                    "fid-ipv6-appiid",
                    json!(64),
                    None,
                    "mo-ignore",
                    "cda-value-sent",
                ),
            ],
        )
    }

    fn annex_a(version_tv: &str) -> Value {
        doc(vec![
            annex_a_rule_6(version_tv),
            json!({
                "rule-id-value": 12,
                "rule-id-length": 11,
                "rule-nature": "ietf-schc:nature-fragmentation",
                "fragmentation-mode": "ietf-schc:fragmentation-mode-no-ack",
                "direction": "ietf-schc:di-up",
                "dtag-size": 2,
                "fcn-size": 3,
                "rcs-algorithm": "ietf-schc:rcs-crc32",
            }),
            json!({
                "rule-id-value": 100,
                "rule-id-length": 8,
                "rule-nature": "ietf-schc:nature-no-compression",
            }),
        ])
    }

    #[test]
    fn rfc9363_annex_a_structure_loads() {
        let wide = from_value(&annex_a("AAY=")).unwrap();
        let narrow = from_value(&annex_a("Bg==")).unwrap();
        for (set, bytes) in [(&wide, &[0u8, 6][..]), (&narrow, &[6u8][..])] {
            let view: RuleSet<'_> = set.as_set();
            view.validate().unwrap();
            let rule = view.get(RuleId::new(6, 3)).unwrap();
            let version = &view.fields(rule)[0];
            assert_eq!(view.tv(version, 0), Some(bytes));
            // Both encodings stand for 6 in the 4-bit field.
            let n = bytes.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b));
            assert_eq!(n, 6);
            assert_eq!(view.fields(rule).len(), 10);
            round_trip(set);
        }
        let p = frag_params(&wide, RuleId::new(12, 11));
        assert_eq!(p.mode, FragMode::NoAck);
        assert_eq!(p.direction, Direction::Up);
        assert_eq!((p.dtag_bits, p.w_bits, p.fcn_bits), (2, 0, 3));
        assert_eq!(p.window_size, 7);
        assert_eq!(p.rcs, RcsAlgorithm::Crc32);
        assert_eq!(p.max_packet_size, 1280);
        assert_eq!(p.l2_word, 8);
        assert_eq!(
            wide.as_set().get(RuleId::new(100, 8)).unwrap().nature,
            Nature::NoCompression
        );
    }

    #[test]
    fn prefix_clash_names_both_rules() {
        let d = doc(vec![
            annex_a_rule_6("AAY="),
            json!({"rule-id-value": 13, "rule-id-length": 4,
                   "rule-nature": "ietf-schc:nature-no-compression"}),
        ]);
        let err = from_value(&d).unwrap_err();
        assert!(
            matches!(
                err,
                JsonError::Rule(RuleError::NotPrefixFree(a, b))
                    if a == RuleId::new(6, 3) && b == RuleId::new(13, 4)
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("6/3") && msg.contains("13/4"), "{msg}");
    }

    #[test]
    fn bad_base64_names_rule_entry_and_member() {
        let e = entry(
            "fid-ipv6-nextheader",
            json!(8),
            Some("A*A="),
            "mo-equal",
            "cda-not-sent",
        );
        let d = doc(vec![compression(
            33,
            8,
            vec![
                entry(
                    "fid-ipv6-version",
                    json!(4),
                    Some("Bg=="),
                    "mo-equal",
                    "cda-not-sent",
                ),
                e.clone(),
                e.clone(),
                e.clone(),
                e,
            ],
        )]);
        let err = from_value(&d).unwrap_err();
        assert_eq!(
            err.to_string(),
            "rule 33/8, entry 1 (fid-ipv6-nextheader): target-value[0] is not valid base64"
        );
        assert!(matches!(
            err,
            JsonError::Schema {
                problem: Problem::Base64,
                ..
            }
        ));
    }

    #[test]
    fn unknown_fid_is_unsupported() {
        for name in ["ietf-schc:fid-coap-option-oscore-piv", "fid-ipv6-ds"] {
            let msg = entry_err(entry(name, json!(8), None, "mo-ignore", "cda-value-sent"));
            assert!(msg.starts_with("rule 5/8, entry 0: field-id"), "{msg}");
            assert!(
                msg.contains(name) && msg.contains("not a supported field"),
                "{msg}"
            );
        }
    }

    #[test]
    fn msb_needs_its_argument() {
        let msg = entry_err(entry(
            "fid-udp-dev-port",
            json!(16),
            Some("IhA="),
            "mo-msb",
            "cda-lsb",
        ));
        assert_eq!(
            msg,
            "rule 5/8, entry 0 (fid-udp-dev-port): matching-operator-value is missing"
        );
        let mut e = entry(
            "fid-udp-dev-port",
            json!(16),
            Some("IhA="),
            "mo-msb",
            "cda-lsb",
        );
        e["matching-operator-value"] =
            json!([{"index": 0, "value": "DA=="}, {"index": 1, "value": "DA=="}]);
        let msg = entry_err(e);
        assert!(
            msg.contains("rule 5/8, entry 0") && msg.contains("exactly one"),
            "{msg}"
        );
    }

    #[test]
    fn equal_needs_a_target_value() {
        let err = from_value(&doc(vec![compression(
            5,
            8,
            vec![entry(
                "fid-ipv6-version",
                json!(4),
                None,
                "mo-equal",
                "cda-not-sent",
            )],
        )]))
        .unwrap_err();
        assert!(matches!(
            err,
            JsonError::Rule(RuleError::Entry {
                index: 0,
                error: EntryError::MissingTargetValue,
                ..
            })
        ));
        let msg = err.to_string();
        assert!(
            msg.contains("rule 5/8, entry 0 (fid-ipv6-version)"),
            "{msg}"
        );
    }

    #[test]
    fn target_value_indices_must_be_contiguous() {
        let mut e = entry(
            "fid-udp-app-port",
            json!(16),
            None,
            "mo-match-mapping",
            "cda-mapping-sent",
        );
        e["target-value"] = json!([{"index": 0, "value": "FjM="}, {"index": 2, "value": "FjQ="}]);
        let msg = entry_err(e.clone());
        assert_eq!(
            msg,
            "rule 5/8, entry 0 (fid-udp-app-port): target-value has indices [0, 2]; \
             they must run 0, 1, 2, ... without gaps or repeats"
        );
        e["target-value"] = json!([{"index": 0, "value": "FjM="}, {"index": 0, "value": "FjQ="}]);
        assert!(entry_err(e.clone()).contains("[0, 0]"));
        // Out of order is fine: sorted by index.
        e["target-value"] = json!([{"index": 1, "value": "FjQ="}, {"index": "0", "value": "FjM="}]);
        let set = from_value(&doc(vec![compression(5, 8, vec![e])])).unwrap();
        let view = set.as_set();
        let fd = &view.fields(&view.rules()[0])[0];
        assert_eq!(view.tv(fd, 0), Some(&[0x16, 0x33][..]));
        assert_eq!(view.tv(fd, 1), Some(&[0x16, 0x34][..]));
    }

    #[test]
    fn numeric_value_too_wide_for_length() {
        let err = from_value(&doc(vec![compression(
            5,
            8,
            vec![entry(
                "fid-ipv6-version",
                json!(4),
                Some("Hw=="),
                "mo-equal",
                "cda-not-sent",
            )],
        )]))
        .unwrap_err();
        assert!(matches!(
            err,
            JsonError::Rule(RuleError::Entry {
                error: EntryError::TargetValueTooWide { index: 0 },
                ..
            })
        ));
        assert!(err
            .to_string()
            .contains("rule 5/8, entry 0 (fid-ipv6-version)"));
    }

    #[test]
    fn wrong_field_length() {
        let err = from_value(&doc(vec![compression(
            5,
            8,
            vec![entry(
                "fid-ipv6-version",
                json!(5),
                Some("Bg=="),
                "mo-equal",
                "cda-not-sent",
            )],
        )]))
        .unwrap_err();
        assert!(matches!(
            err,
            JsonError::Rule(RuleError::Entry {
                error: EntryError::WrongLength { expected: 4 },
                ..
            })
        ));
        let msg = err.to_string();
        assert!(
            msg.contains("rule 5/8, entry 0 (fid-ipv6-version)"),
            "{msg}"
        );
        assert!(msg.contains("4 bits"), "{msg}");
    }

    fn frag_rule() -> Value {
        json!({
            "rule-id-value": 20,
            "rule-id-length": 8,
            "rule-nature": "ietf-schc:nature-fragmentation",
            "fragmentation-mode": "ietf-schc:fragmentation-mode-ack-on-error",
            "direction": "ietf-schc:di-up",
            "w-size": 2,
            "fcn-size": 6,
        })
    }

    #[test]
    fn fragmentation_rule_must_have_one_direction() {
        let mut r = frag_rule();
        r["direction"] = json!("ietf-schc:di-bidirectional");
        let msg = from_value(&doc(vec![r])).unwrap_err().to_string();
        assert!(
            msg.starts_with("rule 20/8: direction must be di-up or di-down"),
            "{msg}"
        );
        let mut r = frag_rule();
        r.as_object_mut().unwrap().remove("direction");
        let msg = from_value(&doc(vec![r])).unwrap_err().to_string();
        assert_eq!(msg, "rule 20/8: direction is missing");
    }

    #[test]
    fn rule_id_length_over_32() {
        let d = doc(vec![
            json!({"rule-id-value": 1, "rule-id-length": 2, "rule-nature": "nature-no-compression"}),
            json!({"rule-id-value": 5, "rule-id-length": 33, "entry": []}),
        ]);
        let err = from_value(&d).unwrap_err();
        assert_eq!(
            err.to_string(),
            "rule at index 1: rule-id-length is 33, more than 32"
        );
        assert_eq!(
            err.location(),
            Some(Location::Rule(RuleRef { index: 1, id: None }))
        );
        let d = doc(vec![
            json!({"rule-id-value": 300, "rule-id-length": 8, "entry": []}),
        ]);
        let msg = from_value(&d).unwrap_err().to_string();
        assert!(
            msg.starts_with("rule at index 0: rule-id-value 300 does not fit"),
            "{msg}"
        );
    }

    #[test]
    fn missing_top_level_member() {
        let err = from_value(&json!({"schc": {"rule": []}})).unwrap_err();
        assert_eq!(err.to_string(), "document: ietf-schc:schc is missing");
        assert_eq!(err.location(), Some(Location::Document));
        assert!(matches!(from_str("{"), Err(JsonError::Syntax(_))));
        assert!(from_value(&json!([])).is_err());
        // An empty document is an empty set.
        assert_eq!(
            from_value(&json!({"ietf-schc:schc": {}})).unwrap(),
            RuleSetBuf::new()
        );
    }

    #[test]
    fn qualified_and_unqualified_names_agree() {
        let qualified = from_str(EXAMPLE).unwrap();
        let bare = from_str(
            &EXAMPLE
                .replace("\"ietf-schc:", "\"")
                .replace("\"schc\": {", "\"ietf-schc:schc\": {"),
        )
        .unwrap();
        assert!(!EXAMPLE
            .replace("\"ietf-schc:", "\"")
            .contains("\"ietf-schc:fid"));
        assert_eq!(bare, qualified);
        // Qualified member names are tolerated too.
        let d = doc(vec![json!({
            "ietf-schc:rule-id-value": 22, "ietf-schc:rule-id-length": 8,
            "ietf-schc:rule-nature": "nature-no-compression"
        })]);
        assert_eq!(from_value(&d).unwrap().as_set().rules().len(), 1);
    }

    #[test]
    fn numbers_as_strings_and_missing_padding() {
        let e = json!({
            "field-id": "fid-ipv6-version", "field-length": "4", "field-position": "1",
            "target-value": [{"index": "0", "value": "Bg"}],
            "matching-operator": "mo-equal", "comp-decomp-action": "cda-not-sent",
        });
        let d = doc(vec![
            json!({"rule-id-value": "1", "rule-id-length": "8", "entry": [e]}),
        ]);
        let set = from_value(&d).unwrap();
        let view = set.as_set();
        let rule = &view.rules()[0];
        assert_eq!(rule.id, RuleId::new(1, 8));
        let fd = &view.fields(rule)[0];
        assert_eq!(fd.fl, FieldLength::Fixed(4));
        assert_eq!(fd.di, DirectionIndicator::Bi, "default direction indicator");
        assert_eq!(view.tv(fd, 0), Some(&[6u8][..]));
        // Out of range and wrong types.
        let msg = entry_err(json!({"field-id": "fid-ipv6-version", "field-length": 4,
            "field-position": 256, "target-value": [{"index": 0, "value": "Bg=="}],
            "matching-operator": "mo-equal", "comp-decomp-action": "cda-not-sent"}));
        assert_eq!(
            msg,
            "rule 5/8, entry 0 (fid-ipv6-version): field-position is 256, more than 255"
        );
        let msg = entry_err(json!({"field-id": "fid-ipv6-version", "field-length": -4,
            "matching-operator": "mo-ignore", "comp-decomp-action": "cda-value-sent"}));
        assert!(
            msg.contains("field-length must be a number of bits"),
            "{msg}"
        );
    }

    #[test]
    fn nature_is_inferred() {
        let d = doc(vec![
            json!({"rule-id-value": 1, "rule-id-length": 2, "entry": []}),
            json!({"rule-id-value": 2, "rule-id-length": 2}),
            json!({"rule-id-value": 3, "rule-id-length": 2,
                   "fragmentation-mode": "fragmentation-mode-no-ack",
                   "direction": "di-down", "fcn-size": 1}),
            json!({"rule-id-value": 0, "rule-id-length": 2,
                   "rule-nature": "nature-compression"}),
        ]);
        let set = from_value(&d).unwrap();
        let natures: Vec<_> = set.as_set().rules().iter().map(|r| r.nature).collect();
        assert!(matches!(natures[0], Nature::Compression(s) if s.len == 0));
        assert_eq!(natures[1], Nature::NoCompression);
        assert!(matches!(natures[2], Nature::Fragmentation(p) if p.direction == Direction::Down));
        assert!(matches!(natures[3], Nature::Compression(s) if s.len == 0));
        round_trip(&set);
    }

    #[test]
    fn leaves_of_the_wrong_nature_are_rejected() {
        let mut r = frag_rule();
        r["entry"] = json!([]);
        let msg = from_value(&doc(vec![r])).unwrap_err().to_string();
        assert_eq!(
            msg,
            "rule 20/8: entry is not allowed in a fragmentation rule"
        );
        let d = doc(vec![json!({"rule-id-value": 1, "rule-id-length": 8,
            "rule-nature": "nature-compression", "entry": [], "fcn-size": 3})]);
        let msg = from_value(&d).unwrap_err().to_string();
        assert_eq!(
            msg,
            "rule 1/8: fcn-size is not allowed in a compression rule"
        );
        let d = doc(vec![json!({"rule-id-value": 1, "rule-id-length": 8,
            "rule-nature": "nature-no-compression", "entry": []})]);
        assert!(from_value(&d).is_err());
    }

    #[test]
    fn unknown_members_and_identities() {
        let mut e = entry(
            "fid-ipv6-version",
            json!(4),
            Some("Bg=="),
            "mo-equal",
            "cda-not-sent",
        );
        e["target-values"] = json!([]);
        assert_eq!(
            entry_err(e),
            "rule 5/8, entry 0 (fid-ipv6-version): target-values is not an RFC 9363 member here"
        );
        // Members of other modules are skipped.
        let mut e = entry(
            "fid-ipv6-version",
            json!(4),
            Some("Bg=="),
            "mo-equal",
            "cda-not-sent",
        );
        e["example-vendor:note"] = json!("anything");
        e["comp-decomp-action-value"] = json!([{"index": 0, "value": "AA=="}]);
        from_value(&doc(vec![compression(5, 8, vec![e])])).unwrap();
        let msg = entry_err(entry(
            "fid-ipv6-version",
            json!(4),
            Some("Bg=="),
            "mo-same",
            "cda-not-sent",
        ));
        assert_eq!(
            msg,
            "rule 5/8, entry 0 (fid-ipv6-version): matching-operator has unknown value \"mo-same\""
        );
        let mut e = entry(
            "fid-ipv6-version",
            json!(4),
            Some("Bg=="),
            "mo-equal",
            "cda-not-sent",
        );
        e["field-id"] = json!("fid-ipv6-version");
        e["ietf-schc:field-id"] = json!("fid-ipv6-version");
        assert!(entry_err(e).contains("appears twice"));
    }

    #[test]
    fn old_compute_names_read_as_compute() {
        let d = doc(vec![compression(
            5,
            8,
            vec![
                entry(
                    "fid-udp-length",
                    json!(16),
                    None,
                    "mo-ignore",
                    "cda-compute-length",
                ),
                entry(
                    "fid-udp-checksum",
                    json!(16),
                    None,
                    "mo-ignore",
                    "ietf-schc:cda-compute-checksum",
                ),
            ],
        )]);
        let set = from_value(&d).unwrap();
        let v = to_value(&set);
        assert_eq!(
            v["ietf-schc:schc"]["rule"][0]["entry"][1]["comp-decomp-action"],
            "ietf-schc:cda-compute"
        );
        let view = set.as_set();
        assert!(view
            .fields(&view.rules()[0])
            .iter()
            .all(|f| f.cda == Cda::Compute));
    }

    #[test]
    fn fragmentation_defaults() {
        let set = from_value(&doc(vec![frag_rule()])).unwrap();
        let p = frag_params(&set, RuleId::new(20, 8));
        assert_eq!(p.l2_word, 8);
        assert_eq!(p.window_size, 63);
        assert_eq!(p.max_ack_requests, DEFAULT_MAX_ACK_REQUESTS);
        assert_eq!(p.max_interleaved, 1);
        assert_eq!(p.tile_size, 0);
        assert_eq!(p.tile_in_all1, TileInAll1::SenderChoice);
        assert_eq!(p.ack_behavior, AckBehavior::AfterAll1);
        assert_eq!(p.bitmap_format, BitmapFormat::Rfc8724);
        assert!(p.last_bitmap_compression);
        assert_eq!(p.inactivity_timer, None);
        let mut r = frag_rule();
        r.as_object_mut().unwrap().remove("w-size");
        assert_eq!(
            from_value(&doc(vec![r])).unwrap_err().to_string(),
            "rule 20/8: w-size is missing"
        );
        let mut r = frag_rule();
        r["fragmentation-mode"] = json!("fragmentation-mode-ack-always");
        r["fcn-size"] = json!(3);
        r.as_object_mut().unwrap().remove("w-size");
        r["inactivity-timer"] = json!({"ticks-numbers": 0});
        let set = from_value(&doc(vec![r])).unwrap();
        let p = frag_params(&set, RuleId::new(20, 8));
        assert_eq!((p.w_bits, p.window_size), (1, 7));
        assert_eq!(p.tile_in_all1, TileInAll1::Yes);
        assert_eq!(
            p.inactivity_timer,
            Some(Timer {
                tick_exp: 20,
                ticks: 0
            })
        );
        round_trip(&set);
        let mut r = frag_rule();
        r["retransmission-timer"] = json!({"ticks-duration": 10});
        assert_eq!(
            from_value(&doc(vec![r])).unwrap_err().to_string(),
            "rule 20/8: retransmission-timer.ticks-numbers is missing"
        );
    }

    #[test]
    fn compound_ack_leaves() {
        let mut q = frag_rule();
        q["ietf-schc-compound-ack:bitmap-format"] =
            json!("ietf-schc-compound-ack:bitmap-compound-ack");
        q["ietf-schc-compound-ack:last-bitmap-compression"] = json!(false);
        let mut u = frag_rule();
        u["bitmap-format"] = json!("bitmap-compound-ack");
        u["last-bitmap-compression"] = json!("false");
        let qs = from_value(&doc(vec![q])).unwrap();
        let us = from_value(&doc(vec![u])).unwrap();
        assert_eq!(qs, us);
        let p = frag_params(&qs, RuleId::new(20, 8));
        assert_eq!(p.bitmap_format, BitmapFormat::CompoundAck);
        assert!(!p.last_bitmap_compression);
        let v = to_value(&qs);
        let rule = &v["ietf-schc:schc"]["rule"][0];
        assert_eq!(
            rule["ietf-schc-compound-ack:bitmap-format"],
            "ietf-schc-compound-ack:bitmap-compound-ack"
        );
        assert_eq!(
            rule["ietf-schc-compound-ack:last-bitmap-compression"],
            false
        );
        round_trip(&qs);
        // The RFC 9441 leaves are not in the ietf-schc module.
        let mut w = frag_rule();
        w["ietf-schc:bitmap-format"] = json!("bitmap-compound-ack");
        assert!(from_value(&doc(vec![w])).is_err());
        let mut w = frag_rule();
        w["bitmap-format"] = json!("ietf-schc:bitmap-compound-ack");
        assert!(from_value(&doc(vec![w])).is_err());
    }

    #[test]
    fn non_default_leaves_round_trip() {
        let mut set = RuleSetBuf::new();
        let base = FragParams {
            mode: FragMode::NoAck,
            direction: Direction::Down,
            l2_word: 1,
            dtag_bits: 3,
            w_bits: 0,
            fcn_bits: 1,
            window_size: 1,
            rcs: RcsAlgorithm::Crc32,
            max_packet_size: 300,
            max_interleaved: 2,
            inactivity_timer: Some(Timer {
                tick_exp: 16,
                ticks: 9,
            }),
            retransmission_timer: None,
            max_ack_requests: 0,
            tile_size: 16,
            tile_in_all1: TileInAll1::No,
            ack_behavior: AckBehavior::ByLayer2,
            bitmap_format: BitmapFormat::Rfc8724,
            last_bitmap_compression: true,
        };
        set.push_fragmentation(RuleId::new(0, 2), base);
        set.push_fragmentation(
            RuleId::new(1, 2),
            FragParams {
                mode: FragMode::AckOnError,
                w_bits: 5,
                fcn_bits: 4,
                window_size: 12,
                max_ack_requests: 1,
                retransmission_timer: Some(Timer {
                    tick_exp: 0,
                    ticks: 65535,
                }),
                ..base
            },
        );
        set.push_compression(
            RuleId::new(2, 2),
            &[
                FieldSpec {
                    fid: Fid::CoapOption(2048),
                    fl: FieldLength::Variable,
                    fp: 2,
                    di: DirectionIndicator::Down,
                    tv: vec![b"ab".to_vec()],
                    mo: MatchingOperator::Msb(256),
                    cda: Cda::Lsb,
                },
                FieldSpec {
                    fid: Fid::UdpDevPort,
                    fl: FieldLength::Fixed(16),
                    fp: 1,
                    di: DirectionIndicator::Up,
                    tv: vec![vec![], vec![1], vec![0, 2]],
                    mo: MatchingOperator::MatchMapping,
                    cda: Cda::MappingSent,
                },
            ],
        )
        .unwrap();
        set.validate().unwrap();
        round_trip(&set);
        let v = to_value(&set);
        let e = &v["ietf-schc:schc"]["rule"][2]["entry"][0];
        assert_eq!(e["field-id"], "lpwan-schc:fid-coap-option-2048");
        assert_eq!(e["matching-operator-value"][0]["value"], "AQA=");
    }

    #[test]
    fn msb_argument_forms() {
        let mut e = entry(
            "fid-udp-dev-port",
            json!(16),
            Some("IhA="),
            "mo-msb",
            "cda-lsb",
        );
        e["matching-operator-value"] = json!([{"index": 0, "value": 12}]);
        let set = from_value(&doc(vec![compression(5, 8, vec![e.clone()])])).unwrap();
        let view = set.as_set();
        assert_eq!(
            view.fields(&view.rules()[0])[0].mo,
            MatchingOperator::Msb(12)
        );
        e["matching-operator-value"] = json!([{"index": 0, "value": "AAAM"}]);
        let again = from_value(&doc(vec![compression(5, 8, vec![e.clone()])])).unwrap();
        assert_eq!(again, set);
        e["matching-operator-value"] = json!([{"index": 0, "value": "AQAA"}]);
        assert!(entry_err(e).contains("larger than 65535"));
    }

    #[test]
    fn anchor_rules_round_trip() {
        let anchor: Value = serde_json::from_str(include_str!("../benches/anchor.json")).unwrap();
        let set = from_value(&anchor["rules"]).unwrap();
        assert!(!set.as_set().rules().is_empty());
        round_trip(&set);
    }
}
