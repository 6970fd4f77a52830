//! The rule model: one representation of a SCHC rule set for devices and gateways.
//!
//! A [`RuleSet`] is a borrowed view over four flat tables: the rules, their field descriptors,
//! the target-value references and a byte pool holding every target value. A device declares
//! the tables as `static` data (no allocation; `schc rules export-rust` writes them from a JSON
//! rule file); a gateway builds them at run time in an owned [`RuleSetBuf`] (feature `alloc`)
//! and borrows the same view. The matcher and codec take a `RuleSet` and never know which.
//!
//! This module owns the rule types and their validation ([`RuleSet::new`]); it knows nothing
//! about packets, JSON or fragmentation state.

pub mod compiled;
pub(crate) mod fid;
mod frag;
pub mod index;
#[cfg(feature = "alloc")]
mod owned;

pub use compiled::{CompiledField, PlanOut, RulePlan};
pub use fid::{Fid, Layer, COAP_OPTION_NAMES, HEADER_FIELDS};
pub use frag::{AckBehavior, BitmapFormat, FragMode, FragParams, RcsAlgorithm, TileInAll1, Timer};
pub use index::RuleIndex;
#[cfg(feature = "alloc")]
pub use owned::{FieldSpec, RuleSetBuf};

use core::fmt;
use thiserror::Error;

/// A rule identifier: `length` bits (0 to 32) holding `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId {
    /// The value, right-aligned.
    pub value: u32,
    /// The length in bits, 0 to 32.
    pub length: u8,
}

impl RuleId {
    /// A rule ID of `length` bits.
    pub const fn new(value: u32, length: u8) -> Self {
        Self { value, length }
    }

    /// Whether the length is at most 32 bits and the value fits in it.
    pub const fn is_well_formed(self) -> bool {
        self.length <= 32 && (self.length == 32 || (self.value as u64) < (1u64 << self.length))
    }

    /// Whether `self` is a prefix of `other` (or equal to it).
    pub const fn is_prefix_of(self, other: RuleId) -> bool {
        if self.length > other.length || other.length > 32 {
            return false;
        }
        let shift = other.length - self.length;
        ((other.value as u64) >> shift) == self.value as u64
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.value, self.length)
    }
}

/// The direction of a packet: uplink (device to application) or downlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Device to application.
    Up,
    /// Application to device.
    Down,
}

/// The direction indicator (DI) of a field descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DirectionIndicator {
    /// Both directions.
    Bi,
    /// Uplink only.
    Up,
    /// Downlink only.
    Down,
}

impl DirectionIndicator {
    /// Whether a descriptor with this DI applies to a packet going `dir`.
    #[inline]
    pub const fn applies(self, dir: Direction) -> bool {
        matches!(
            (self, dir),
            (DirectionIndicator::Bi, _)
                | (DirectionIndicator::Up, Direction::Up)
                | (DirectionIndicator::Down, Direction::Down)
        )
    }
}

/// The field length (FL) of a descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldLength {
    /// A fixed number of bits.
    Fixed(u16),
    /// Variable length in bytes (`fl-variable`): residues carry a size prefix.
    Variable,
    /// The CoAP token's length, TKL bytes (`fl-token-length`): no size prefix.
    TokenLength,
}

/// The matching operator (MO) of a descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchingOperator {
    /// The field equals the target value.
    Equal,
    /// Always true.
    Ignore,
    /// The given number of most significant bits equal the target value's.
    Msb(u16),
    /// The field equals one element of the target-value list.
    MatchMapping,
}

/// The compression/decompression action (CDA) of a descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cda {
    /// Nothing is sent; the decompressor writes the target value.
    NotSent,
    /// The field value is sent (with a size prefix if variable-length).
    ValueSent,
    /// The index of the matching target-value element is sent.
    MappingSent,
    /// The bits after the MSB(x) part are sent.
    Lsb,
    /// Nothing is sent; the decompressor computes the field (lengths, checksum).
    Compute,
    /// Nothing is sent; the field is the device's IID, derived from the L2 address.
    DevIid,
    /// Nothing is sent; the field is the application's IID.
    AppIid,
}

/// A run of entries in one of the rule set's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// Index of the first entry.
    pub start: u32,
    /// Number of entries.
    pub len: u16,
}

impl Span {
    /// A span of `len` entries from `start`.
    pub const fn new(start: u32, len: u16) -> Self {
        Self { start, len }
    }

    /// The indices, saturating: a span past the end of the address space (16- and 32-bit
    /// targets) is simply out of range.
    pub(crate) fn range(self) -> core::ops::Range<usize> {
        let s = self.start as usize;
        s..s.saturating_add(self.len as usize)
    }
}

/// A field descriptor: one line of a compression rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldDesc {
    /// Field identifier.
    pub fid: Fid,
    /// Field length.
    pub fl: FieldLength,
    /// Field position (1 = first occurrence).
    pub fp: u8,
    /// Direction indicator.
    pub di: DirectionIndicator,
    /// Target values: a span of the rule set's value table (empty, one value, or a list).
    pub tv: Span,
    /// Matching operator.
    pub mo: MatchingOperator,
    /// Compression/decompression action.
    pub cda: Cda,
}

/// What a rule is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Nature {
    /// A compression rule; its descriptors are a span of the field table, in rule order.
    Compression(Span),
    /// The no-compression rule: the packet follows the rule ID unchanged.
    NoCompression,
    /// A fragmentation rule and its parameters.
    Fragmentation(FragParams),
}

/// A rule: an ID and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rule {
    /// The rule ID.
    pub id: RuleId,
    /// The rule's nature and content.
    pub nature: Nature,
}

/// Where a target value's bytes lie in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ValueRef {
    /// Byte offset in the pool.
    pub offset: u32,
    /// Length in bytes.
    pub len: u16,
}

impl ValueRef {
    /// `len` bytes from `offset`.
    pub const fn new(offset: u32, len: u16) -> Self {
        Self { offset, len }
    }
}

/// What is wrong with one entry (field descriptor) of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum EntryError {
    /// A header field declared with a length other than its protocol's.
    #[error("field length must be {expected} bits for this field")]
    WrongLength {
        /// The protocol's length.
        expected: u16,
    },
    /// Variable or token length on a field that has neither.
    #[error("this field cannot have a variable or token length")]
    LengthKind,
    /// A CoAP option with a fixed length that is not whole bytes.
    #[error("option length {0} bits is not a whole number of bytes")]
    OptionNotBytes(u16),
    /// Field position 0 ("any occurrence") is not supported.
    #[error("field position 0 is not supported; positions start at 1")]
    PositionZero,
    /// The MO or CDA needs a target value and there is none.
    #[error("the matching operator or action needs a target value")]
    MissingTargetValue,
    /// A list of target values where only one is allowed.
    #[error("a list of target values needs match-mapping")]
    UnexpectedList,
    /// A numeric target value wider than the field.
    #[error("target value {index} does not fit in the field length")]
    TargetValueTooWide {
        /// Index of the value in the list.
        index: u16,
    },
    /// MSB(x) with x larger than the field, or not whole bytes on a byte-sized field.
    #[error("MSB({x}) does not fit this field")]
    BadMsb {
        /// The MSB argument.
        x: u16,
    },
    /// MSB(x) with not-sent on bits the MSB does not cover: decompression would write the
    /// target value's low bits instead of the packet's.
    #[error("MSB({x}) with not-sent loses the bits after the first {x}: use LSB or equal")]
    LossyMsb {
        /// The MSB argument.
        x: u16,
    },
    /// mapping-sent without match-mapping, or match-mapping without mapping-sent.
    #[error("mapping-sent and match-mapping go together")]
    MappingMismatch,
    /// LSB without MSB.
    #[error("LSB needs the MSB matching operator")]
    LsbWithoutMsb,
    /// compute on a field that has no computation.
    #[error("compute is only defined for lengths and the UDP checksum")]
    NotComputable,
    /// DevIID/AppIID on another field.
    #[error("DevIID/AppIID apply to the matching IPv6 IID field only")]
    IidOnWrongField,
    /// Two descriptors for the same field and position in one direction.
    #[error("duplicates entry {other} for the same field, position and direction")]
    Duplicate {
        /// Index of the other entry.
        other: usize,
    },
    /// A token with `fl-token-length` whose TKL is not described earlier in the rule.
    #[error("a token of length fl-token-length needs the TKL entry earlier in the rule")]
    TokenBeforeTkl,
    /// A target-value span or value reference points outside its table.
    #[error("target value reference is out of range")]
    BadValueRef,
}

/// A rule set that cannot be used, with the rule (and entry) at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RuleError {
    /// A rule ID longer than 32 bits or whose value does not fit its length.
    #[error("rule {0}: the value does not fit in the length (0 to 32 bits)")]
    BadRuleId(RuleId),
    /// Two rule IDs where one is a prefix of (or equal to) the other.
    #[error("rule {0} is a prefix of rule {1}: rule IDs must be prefix-free")]
    NotPrefixFree(RuleId, RuleId),
    /// A rule's field span is outside the field table.
    #[error("rule {0}: its entries lie outside the field table")]
    BadFieldSpan(RuleId),
    /// One entry of a compression rule is wrong.
    #[error("rule {rule}, entry {index} ({fid}): {error}")]
    Entry {
        /// The rule.
        rule: RuleId,
        /// The entry's index in the rule (0-based).
        index: usize,
        /// The entry's field.
        fid: Fid,
        /// What is wrong.
        error: EntryError,
    },
    /// A fragmentation rule's parameters are inconsistent.
    #[error("rule {rule}: {reason}")]
    Fragmentation {
        /// The rule.
        rule: RuleId,
        /// What is wrong.
        reason: &'static str,
    },
    /// A compression rule with more entries than any packet could match.
    #[error("rule {rule} has {count} entries; at most {MAX_ENTRIES} are accepted")]
    TooManyEntries {
        /// The rule.
        rule: RuleId,
        /// Its number of entries.
        count: usize,
    },
    /// More than one no-compression rule.
    #[error("rules {0} and {1} are both no-compression rules")]
    TwoNoCompression(RuleId, RuleId),
    /// The index attached with [`RuleSet::with_index`] does not agree with the rules (the
    /// rule named, or `0/0` for the tables' shape): regenerate it.
    #[error("the rule index does not agree with the rules at rule {0}: regenerate it")]
    BadIndex(RuleId),
}

/// The most entries a compression rule may have: far more than the fields a packet can carry in
/// both directions ([`crate::packet::FIELD_SLOTS`] per direction), and a bound on the quadratic
/// duplicate check.
pub const MAX_ENTRIES: usize = 255;

/// A validated, borrowed rule set: the one representation used by device and gateway.
#[derive(Debug, Clone, Copy)]
pub struct RuleSet<'a> {
    rules: &'a [Rule],
    fields: &'a [FieldDesc],
    values: &'a [ValueRef],
    pool: &'a [u8],
    checked: bool,
    index: Option<RuleIndex<'a>>,
}

impl<'a> RuleSet<'a> {
    /// A rule set over the four tables, checked by [`RuleSet::validate`].
    pub fn new(
        rules: &'a [Rule],
        fields: &'a [FieldDesc],
        values: &'a [ValueRef],
        pool: &'a [u8],
    ) -> Result<Self, RuleError> {
        let mut set = Self::new_unchecked(rules, fields, values, pool);
        set.validate()?;
        set.checked = true;
        Ok(set)
    }

    /// A rule set without validation, usable in `const`/`static` items. The codec never panics
    /// on an invalid set, but may reject packets; call [`RuleSet::validate`] in a test.
    pub const fn new_unchecked(
        rules: &'a [Rule],
        fields: &'a [FieldDesc],
        values: &'a [ValueRef],
        pool: &'a [u8],
    ) -> Self {
        Self {
            rules,
            fields,
            values,
            pool,
            checked: false,
            index: None,
        }
    }

    /// This set with an index ([`index`]): compression then matches only the rules that can
    /// match and decompression finds the rule ID by binary search. The index must come from
    /// the same tables ([`index::RuleIndexBuf::build`], or the tables `schc rules export-rust`
    /// writes); [`RuleSet::validate`] checks that it does. Without one, every rule is tried.
    pub const fn with_index(mut self, index: RuleIndex<'a>) -> Self {
        self.index = Some(index);
        self.checked = false;
        self
    }

    /// This set, validated ([`RuleSet::validate`]) and marked so; for static tables with an
    /// index: `RuleSet::new_unchecked(..).with_index(..).into_validated()`.
    pub fn into_validated(mut self) -> Result<Self, RuleError> {
        self.validate()?;
        self.checked = true;
        Ok(self)
    }

    /// The index, if one is attached.
    #[inline]
    pub fn index(&self) -> Option<&RuleIndex<'a>> {
        self.index.as_ref()
    }

    /// Whether the set is known to pass [`RuleSet::validate`] (built by [`RuleSet::new`], or
    /// borrowed from a [`RuleSetBuf`] validated since its last change). Compression skips its
    /// read-back check of the rule ID for such sets.
    pub fn is_validated(&self) -> bool {
        self.checked
    }

    /// This view, marked validated; for owned tables that were just checked.
    #[cfg(feature = "alloc")]
    pub(crate) fn assume_validated(mut self) -> Self {
        self.checked = true;
        self
    }

    /// The rules, in set order.
    #[inline]
    pub fn rules(&self) -> &'a [Rule] {
        self.rules
    }

    /// The raw tables: rules, field descriptors, value references, pool.
    pub fn tables(&self) -> (&'a [Rule], &'a [FieldDesc], &'a [ValueRef], &'a [u8]) {
        (self.rules, self.fields, self.values, self.pool)
    }

    /// The field descriptors of a compression rule, in rule order (empty for other natures).
    #[inline]
    pub fn fields(&self, rule: &Rule) -> &'a [FieldDesc] {
        match rule.nature {
            Nature::Compression(span) => self.fields.get(span.range()).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Number of target values of a descriptor.
    #[inline]
    pub fn tv_count(&self, fd: &FieldDesc) -> usize {
        fd.tv.len as usize
    }

    /// Target value `i` of a descriptor (`None` if absent or out of range).
    #[inline]
    pub fn tv(&self, fd: &FieldDesc, i: usize) -> Option<&'a [u8]> {
        if i >= fd.tv.len as usize {
            return None;
        }
        let r = self.values.get((fd.tv.start as usize).checked_add(i)?)?;
        let start = r.offset as usize;
        self.pool.get(start..start.checked_add(r.len as usize)?)
    }

    /// The rule with exactly this ID.
    pub fn get(&self, id: RuleId) -> Option<&'a Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// The rule whose ID is a prefix of the first `bit_len` bits of `data` (read MSB first),
    /// if any: the first in set order, or through the index when there is one (the set is then
    /// prefix-free, and there is at most one).
    pub fn lookup_prefix(&self, data: &[u8], bit_len: usize) -> Option<&'a Rule> {
        match &self.index {
            Some(ix) => self.lookup_indexed(ix.ids, data, bit_len),
            None => self.lookup_linear(data, bit_len),
        }
    }

    /// [`RuleSet::lookup_prefix`] by trying every rule in set order.
    pub(crate) fn lookup_linear(&self, data: &[u8], bit_len: usize) -> Option<&'a Rule> {
        self.rules.iter().find(|r| {
            let len = r.id.length as usize;
            len <= bit_len
                && crate::bits::get_bits(data, 0, r.id.length as u32) == r.id.value as u64
        })
    }

    /// The no-compression rule, if the set has one.
    pub fn no_compression(&self) -> Option<&'a Rule> {
        self.rules
            .iter()
            .find(|r| matches!(r.nature, Nature::NoCompression))
    }

    /// Checks every rule: well-formed, prefix-free IDs; consistent entries; sane fragmentation
    /// parameters. The error names the rule (and entry) at fault.
    pub fn validate(&self) -> Result<(), RuleError> {
        self.validate_ids_pairwise()?;
        self.validate_rules()?;
        self.validate_index()
    }

    /// Well-formed, prefix-free rule IDs, by comparing every pair: no allocation, for the few
    /// rules of a device. [`RuleSetBuf::validate`] sorts instead.
    fn validate_ids_pairwise(&self) -> Result<(), RuleError> {
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.id.is_well_formed() {
                return Err(RuleError::BadRuleId(rule.id));
            }
            for other in self.rules.iter().skip(i + 1) {
                if rule.id.is_prefix_of(other.id) {
                    return Err(RuleError::NotPrefixFree(rule.id, other.id));
                }
                if other.id.is_prefix_of(rule.id) {
                    return Err(RuleError::NotPrefixFree(other.id, rule.id));
                }
            }
        }
        Ok(())
    }

    /// Everything [`RuleSet::validate`] checks but the rule IDs' prefix-freeness.
    pub(crate) fn validate_rules(&self) -> Result<(), RuleError> {
        let mut no_comp: Option<RuleId> = None;
        for rule in self.rules.iter() {
            if !rule.id.is_well_formed() {
                return Err(RuleError::BadRuleId(rule.id));
            }
            match rule.nature {
                Nature::NoCompression => {
                    if let Some(first) = no_comp {
                        return Err(RuleError::TwoNoCompression(first, rule.id));
                    }
                    no_comp = Some(rule.id);
                }
                Nature::Fragmentation(p) => {
                    p.validate().map_err(|reason| RuleError::Fragmentation {
                        rule: rule.id,
                        reason,
                    })?
                }
                Nature::Compression(span) => {
                    if self.fields.get(span.range()).is_none() {
                        return Err(RuleError::BadFieldSpan(rule.id));
                    }
                    if usize::from(span.len) > MAX_ENTRIES {
                        return Err(RuleError::TooManyEntries {
                            rule: rule.id,
                            count: usize::from(span.len),
                        });
                    }
                    self.validate_entries(rule)?;
                }
            }
        }
        Ok(())
    }

    fn validate_entries(&self, rule: &Rule) -> Result<(), RuleError> {
        let fields = self.fields(rule);
        for (index, fd) in fields.iter().enumerate() {
            let err = |error| RuleError::Entry {
                rule: rule.id,
                index,
                fid: fd.fid,
                error,
            };
            self.validate_entry(fd).map_err(err)?;
            for (other, prev) in fields.iter().enumerate().take(index) {
                let overlap = [Direction::Up, Direction::Down]
                    .iter()
                    .any(|&d| prev.di.applies(d) && fd.di.applies(d));
                if prev.fid == fd.fid && prev.fp == fd.fp && overlap {
                    return Err(err(EntryError::Duplicate { other }));
                }
            }
            if fd.fid == Fid::CoapToken && fd.fl == FieldLength::TokenLength {
                for d in [Direction::Up, Direction::Down] {
                    if fd.di.applies(d)
                        && !fields
                            .iter()
                            .take(index)
                            .any(|p| p.fid == Fid::CoapTkl && p.di.applies(d))
                    {
                        return Err(err(EntryError::TokenBeforeTkl));
                    }
                }
            }
        }
        Ok(())
    }

    fn validate_entry(&self, fd: &FieldDesc) -> Result<(), EntryError> {
        if fd.fp == 0 {
            return Err(EntryError::PositionZero);
        }
        // Field length against the protocol.
        match (fd.fid.fixed_len(), fd.fl) {
            (Some(expected), FieldLength::Fixed(l)) if l != expected => {
                return Err(EntryError::WrongLength { expected })
            }
            (Some(_), FieldLength::Variable | FieldLength::TokenLength) => {
                return Err(EntryError::LengthKind)
            }
            (None, FieldLength::TokenLength) if fd.fid != Fid::CoapToken => {
                return Err(EntryError::LengthKind)
            }
            (None, FieldLength::Fixed(l)) if l % 8 != 0 => {
                return Err(EntryError::OptionNotBytes(l))
            }
            _ => {}
        }
        // Target values resolve.
        for i in 0..fd.tv.len as usize {
            if self.tv(fd, i).is_none() {
                return Err(EntryError::BadValueRef);
            }
        }
        let n = fd.tv.len;
        let needs_tv = matches!(
            fd.mo,
            MatchingOperator::Equal | MatchingOperator::Msb(_) | MatchingOperator::MatchMapping
        ) || matches!(fd.cda, Cda::NotSent | Cda::Lsb | Cda::MappingSent);
        if needs_tv && n == 0 {
            return Err(EntryError::MissingTargetValue);
        }
        let is_mapping = fd.mo == MatchingOperator::MatchMapping;
        // mapping-sent needs the list; a list is only meaningful with mapping-sent (or when the
        // value is sent anyway).
        if (fd.cda == Cda::MappingSent && !is_mapping)
            || (is_mapping && !matches!(fd.cda, Cda::MappingSent | Cda::ValueSent))
        {
            return Err(EntryError::MappingMismatch);
        }
        if n > 1 && !is_mapping {
            return Err(EntryError::UnexpectedList);
        }
        if fd.cda == Cda::Lsb && !matches!(fd.mo, MatchingOperator::Msb(_)) {
            return Err(EntryError::LsbWithoutMsb);
        }
        if fd.cda == Cda::Compute && !fd.fid.is_computable() {
            return Err(EntryError::NotComputable);
        }
        if (fd.cda == Cda::DevIid && fd.fid != Fid::Ipv6DevIid)
            || (fd.cda == Cda::AppIid && fd.fid != Fid::Ipv6AppIid)
        {
            return Err(EntryError::IidOnWrongField);
        }
        // Numeric target values must fit the field.
        if let FieldLength::Fixed(fl) = fd.fl {
            for i in 0..n {
                let tv = self.tv(fd, i as usize).unwrap_or(&[]);
                if !fits_right_aligned(tv, fl as usize) {
                    return Err(EntryError::TargetValueTooWide { index: i });
                }
            }
        }
        if let MatchingOperator::Msb(x) = fd.mo {
            let ok = match fd.fl {
                FieldLength::Fixed(fl) => x <= fl,
                FieldLength::Variable => x % 8 == 0,
                FieldLength::TokenLength => x <= 64,
            };
            if !ok {
                return Err(EntryError::BadMsb { x });
            }
            // Not-sent rebuilds the whole target value: exact only when MSB covers the field.
            if fd.cda == Cda::NotSent && !matches!(fd.fl, FieldLength::Fixed(fl) if x >= fl) {
                return Err(EntryError::LossyMsb { x });
            }
        }
        Ok(())
    }
}

/// Whether `tv`, read as a big-endian unsigned number, fits in `bits` bits.
#[inline]
pub(crate) fn fits_right_aligned(tv: &[u8], bits: usize) -> bool {
    let total = tv.len() * 8;
    if total <= bits {
        return true;
    }
    let excess = total - bits;
    // The leading `excess` bits must be zero.
    tv.iter().enumerate().all(|(i, &b)| {
        let lo = i * 8;
        if lo >= excess {
            true
        } else if lo + 8 <= excess {
            b == 0
        } else {
            b >> (8 - (excess - lo)) == 0
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn rule_id_prefixes() {
        let a = RuleId::new(0b110, 3);
        let b = RuleId::new(0b1101, 4);
        let c = RuleId::new(0b1001, 4);
        assert!(a.is_prefix_of(b));
        assert!(!a.is_prefix_of(c));
        assert!(RuleId::new(0, 0).is_prefix_of(c));
        assert!(RuleId::new(u32::MAX, 32).is_well_formed());
        assert!(!RuleId::new(8, 3).is_well_formed());
        assert!(!RuleId::new(0, 33).is_well_formed());
    }

    #[test]
    fn prefix_free_check_names_both_rules() {
        let rules = [
            Rule {
                id: RuleId::new(0b110, 3),
                nature: Nature::NoCompression,
            },
            Rule {
                id: RuleId::new(0b1101, 4),
                nature: Nature::Compression(Span::new(0, 0)),
            },
        ];
        let err = RuleSet::new(&rules, &[], &[], &[]).unwrap_err();
        assert_eq!(
            err,
            RuleError::NotPrefixFree(RuleId::new(6, 3), RuleId::new(13, 4))
        );
        assert!(err.to_string().contains("6/3") && err.to_string().contains("13/4"));
    }

    #[test]
    fn mixed_lengths_from_rfc9363_annex_are_prefix_free() {
        let rules = [
            Rule {
                id: RuleId::new(6, 3),
                nature: Nature::Compression(Span::new(0, 0)),
            },
            Rule {
                id: RuleId::new(12, 11),
                nature: Nature::NoCompression,
            },
            Rule {
                id: RuleId::new(100, 8),
                nature: Nature::Compression(Span::new(0, 0)),
            },
        ];
        RuleSet::new(&rules, &[], &[], &[]).unwrap();
    }

    #[test]
    fn right_aligned_fit() {
        assert!(fits_right_aligned(&[0x00, 0x06], 4));
        assert!(fits_right_aligned(&[0x06], 4));
        assert!(!fits_right_aligned(&[0x16], 4));
        assert!(fits_right_aligned(&[0x0F, 0xFF, 0xFF], 20));
        assert!(!fits_right_aligned(&[0x1F, 0xFF, 0xFF], 20));
        assert!(fits_right_aligned(&[], 0));
    }
}
