//! An owned rule set for gateways (feature `alloc`): built at run time, borrowed as a
//! [`RuleSet`] by the same codec the device uses.

use alloc::vec::Vec;

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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSetBuf {
    rules: Vec<Rule>,
    fields: Vec<FieldDesc>,
    values: Vec<ValueRef>,
    pool: Vec<u8>,
}

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
        Ok(())
    }

    /// Appends the no-compression rule.
    pub fn push_no_compression(&mut self, id: RuleId) {
        self.rules.push(Rule {
            id,
            nature: Nature::NoCompression,
        });
    }

    /// Appends a fragmentation rule.
    pub fn push_fragmentation(&mut self, id: RuleId, params: FragParams) {
        self.rules.push(Rule {
            id,
            nature: Nature::Fragmentation(params),
        });
    }

    /// The borrowed view the codec works on. Call [`RuleSetBuf::validate`] once after building.
    pub fn as_set(&self) -> RuleSet<'_> {
        RuleSet::new_unchecked(&self.rules, &self.fields, &self.values, &self.pool)
    }

    /// Validates the whole set (see [`RuleSet::validate`]).
    pub fn validate(&self) -> Result<(), RuleError> {
        self.as_set().validate()
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
