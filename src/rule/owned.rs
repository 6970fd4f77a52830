//! An owned rule set for gateways (feature `alloc`): built at run time, borrowed as a
//! [`RuleSet`] by the same codec the device uses.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use super::index::RuleIndexBuf;
use super::{
    Cda, DirectionIndicator, Fid, FieldDesc, FieldLength, FragParams, MatchingOperator, Nature,
    Rule, RuleError, RuleId, RuleSet, Span, ValueRef,
};

/// One field descriptor with its target values owned, for building rule sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    /// Field identifier.
    pub fid: Fid,
    /// Field length.
    pub fl: FieldLength,
    /// Field position (1 = first occurrence).
    pub fp: u8,
    /// Direction indicator.
    pub di: DirectionIndicator,
    /// Target values (none, one, or a match-mapping list), as bytes.
    pub tv: Vec<Vec<u8>>,
    /// Matching operator.
    pub mo: MatchingOperator,
    /// Compression/decompression action.
    pub cda: Cda,
}

/// The owned tables behind a [`RuleSet`].
#[derive(Debug, Default)]
pub struct RuleSetBuf {
    rules: Vec<Rule>,
    fields: Vec<FieldDesc>,
    values: Vec<ValueRef>,
    pool: Vec<u8>,
    /// Whether [`RuleSetBuf::validate`] passed since the last change.
    /// (Atomic so that a gateway can share a set between threads.)
    validated: AtomicBool,
    /// The index [`RuleSetBuf::build_index`] made, until the next change.
    index: Option<RuleIndexBuf>,
}

impl Clone for RuleSetBuf {
    fn clone(&self) -> Self {
        Self {
            rules: self.rules.clone(),
            fields: self.fields.clone(),
            values: self.values.clone(),
            pool: self.pool.clone(),
            validated: AtomicBool::new(self.validated.load(Ordering::Relaxed)),
            index: self.index.clone(),
        }
    }
}

/// Equal tables; whether either was validated does not matter.
impl PartialEq for RuleSetBuf {
    fn eq(&self, other: &Self) -> bool {
        self.rules == other.rules
            && self.fields == other.fields
            && self.values == other.values
            && self.pool == other.pool
    }
}

impl Eq for RuleSetBuf {}

/// Which table overflowed while building.
const TOO_MANY: &str = "rule set tables exceed their 32-bit indices";

impl RuleSetBuf {
    /// An empty rule set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a compression rule with its entries in rule order.
    ///
    /// Fails only when a table outgrows its index type (over 2^32 entries, or over 65535
    /// entries in one rule or values in one entry).
    pub fn push_compression(
        &mut self,
        id: RuleId,
        entries: &[FieldSpec],
    ) -> Result<(), &'static str> {
        let start = u32::try_from(self.fields.len()).map_err(|_| TOO_MANY)?;
        let len = u16::try_from(entries.len()).map_err(|_| "a rule has more than 65535 entries")?;
        for e in entries {
            let tv_start = u32::try_from(self.values.len()).map_err(|_| TOO_MANY)?;
            let tv_len = u16::try_from(e.tv.len()).map_err(|_| "more than 65535 target values")?;
            for v in &e.tv {
                let offset = u32::try_from(self.pool.len()).map_err(|_| TOO_MANY)?;
                let vlen =
                    u16::try_from(v.len()).map_err(|_| "a target value exceeds 65535 bytes")?;
                self.pool.extend_from_slice(v);
                self.values.push(ValueRef::new(offset, vlen));
            }
            self.fields.push(FieldDesc {
                fid: e.fid,
                fl: e.fl,
                fp: e.fp,
                di: e.di,
                tv: Span::new(tv_start, tv_len),
                mo: e.mo,
                cda: e.cda,
            });
        }
        self.rules.push(Rule {
            id,
            nature: Nature::Compression(Span::new(start, len)),
        });
        self.changed();
        Ok(())
    }

    /// Appends the no-compression rule.
    pub fn push_no_compression(&mut self, id: RuleId) {
        self.rules.push(Rule {
            id,
            nature: Nature::NoCompression,
        });
        self.changed();
    }

    /// Appends a fragmentation rule.
    pub fn push_fragmentation(&mut self, id: RuleId, params: FragParams) {
        self.rules.push(Rule {
            id,
            nature: Nature::Fragmentation(params),
        });
        self.changed();
    }

    /// Forgets the validation and the index: the tables changed.
    fn changed(&mut self) {
        self.validated.store(false, Ordering::Relaxed);
        self.index = None;
    }

    /// The borrowed view the codec works on, with the index if [`RuleSetBuf::build_index`] made
    /// one since the last change. Call [`RuleSetBuf::validate`] (or `build_index`) once after
    /// building.
    pub fn as_set(&self) -> RuleSet<'_> {
        let mut set = RuleSet::new_unchecked(&self.rules, &self.fields, &self.values, &self.pool);
        if let Some(ix) = &self.index {
            set = set.with_index(ix.as_index());
        }
        if self.validated.load(Ordering::Relaxed) {
            set.assume_validated()
        } else {
            set
        }
    }

    /// Validates the set ([`RuleSetBuf::validate`]) and builds its index
    /// ([`RuleIndexBuf::build`]), kept until the next change: compression then tries only the
    /// rules that can match and decompression finds rule IDs by binary search, whatever the
    /// number of rules. [`crate::json::from_str`] does it for every set it reads.
    pub fn build_index(&mut self) -> Result<(), RuleError> {
        self.index = None;
        self.validate()?;
        self.index = Some(RuleIndexBuf::build(&self.as_set()));
        Ok(())
    }

    /// The index, if [`RuleSetBuf::build_index`] made one since the last change.
    pub fn index(&self) -> Option<&RuleIndexBuf> {
        self.index.as_ref()
    }

    /// Validates the whole set (see [`RuleSet::validate`]).
    ///
    /// Prefix-freeness is checked by sorting the rule IDs (left-aligned, then by length): a rule
    /// that prefixes another also prefixes the rule right after it in that order, so comparing
    /// neighbours finds every clash in O(n log n) for the large sets of a gateway.
    pub fn validate(&self) -> Result<(), RuleError> {
        if let Some(bad) = self.rules.iter().find(|r| !r.id.is_well_formed()) {
            return Err(RuleError::BadRuleId(bad.id));
        }
        let mut ids: Vec<RuleId> = self.rules.iter().map(|r| r.id).collect();
        ids.sort_unstable_by_key(|id| {
            let left = u64::from(id.value) << (32 - u32::from(id.length));
            (left, id.length)
        });
        let clash = ids.windows(2).find_map(|w| match w {
            [a, b] if a.is_prefix_of(*b) => Some((*a, *b)),
            _ => None,
        });
        if let Some((a, b)) = clash {
            return Err(RuleError::NotPrefixFree(a, b));
        }
        self.as_set().validate_rules()?;
        self.validated.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// The entries of a compression rule as owned specs (empty for other natures).
    pub fn field_specs(&self, rule: &Rule) -> Vec<FieldSpec> {
        let set = self.as_set();
        set.fields(rule)
            .iter()
            .map(|fd| FieldSpec {
                fid: fd.fid,
                fl: fd.fl,
                fp: fd.fp,
                di: fd.di,
                tv: (0..set.tv_count(fd))
                    .map(|i| set.tv(fd, i).unwrap_or(&[]).to_vec())
                    .collect(),
                mo: fd.mo,
                cda: fd.cda,
            })
            .collect()
    }

    /// Bytes of memory the tables hold (capacity, excluding the struct itself).
    pub fn heap_bytes(&self) -> usize {
        self.rules.capacity() * core::mem::size_of::<Rule>()
            + self.fields.capacity() * core::mem::size_of::<FieldDesc>()
            + self.values.capacity() * core::mem::size_of::<ValueRef>()
            + self.pool.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::{RuleError, RuleId};

    #[test]
    fn sorted_prefix_check_finds_clashes_among_many_rules() {
        // 4,096 distinct 16-bit IDs are prefix-free...
        let mut set = RuleSetBuf::new();
        for v in 0..4096u32 {
            set.push_no_compression(RuleId::new(v * 16 + 3, 16));
            set.rules.last_mut().unwrap().nature =
                super::Nature::Compression(super::Span::new(0, 0));
        }
        set.validate().unwrap();
        // ...until a 12-bit ID that prefixes one of them, and a duplicate, are added.
        let mut clash = set.clone();
        clash.push_no_compression(RuleId::new(0x0AB, 12));
        assert_eq!(
            clash.validate(),
            Err(RuleError::NotPrefixFree(
                RuleId::new(0x0AB, 12),
                RuleId::new(0x0AB3, 16)
            ))
        );
        let mut dup = set.clone();
        dup.push_no_compression(RuleId::new(0x0013, 16));
        assert!(matches!(dup.validate(), Err(RuleError::NotPrefixFree(a, b)) if a == b));
        // The pairwise check of the core agrees.
        assert_eq!(clash.as_set().validate(), clash.validate());
    }

    #[test]
    fn rules_with_more_entries_than_any_packet_are_refused() {
        use crate::rule::{Cda, DirectionIndicator, Fid, FieldLength, MatchingOperator};
        let e = FieldSpec {
            fid: Fid::CoapOption(11),
            fl: FieldLength::Variable,
            fp: 1,
            di: DirectionIndicator::Bi,
            tv: Vec::new(),
            mo: MatchingOperator::Ignore,
            cda: Cda::ValueSent,
        };
        let entries: Vec<FieldSpec> = (0..=crate::rule::MAX_ENTRIES)
            .map(|i| FieldSpec {
                fp: (i % 250 + 1) as u8,
                fid: Fid::CoapOption(11 + (i / 250) as u16),
                ..e.clone()
            })
            .collect();
        let mut set = RuleSetBuf::new();
        set.push_compression(RuleId::new(1, 1), &entries).unwrap();
        assert_eq!(
            set.validate(),
            Err(RuleError::TooManyEntries {
                rule: RuleId::new(1, 1),
                count: crate::rule::MAX_ENTRIES + 1
            })
        );
    }

    #[test]
    fn validation_is_remembered_until_the_next_change() {
        fn shared<T: Send + Sync>(_: &T) {}
        let mut set = RuleSetBuf::new();
        set.push_no_compression(RuleId::new(0, 1));
        shared(&set);
        assert!(!set.as_set().is_validated());
        set.validate().unwrap();
        assert!(set.as_set().is_validated());
        assert!(set.clone().as_set().is_validated());
        set.push_no_compression(RuleId::new(1, 1));
        assert!(!set.as_set().is_validated());
        // Two no-compression rules: invalid, and not marked.
        assert!(set.validate().is_err());
        assert!(!set.as_set().is_validated());
    }
}
