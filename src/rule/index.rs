//! An index over a rule set, so that neither compression nor decompression scans every rule.
//!
//! - **Rule IDs** ([`IdEntry`]): every rule's ID left-aligned in 32 bits, sorted. In a
//!   prefix-free set the only rule whose ID can prefix a SCHC packet is the one with the
//!   greatest left-aligned ID not above the packet's first 32 bits: one binary search.
//! - **Key fields** (tuple-space search): a few fields ([`KeyField`], at most [`MAX_KEYS`])
//!   that rules pin with `equal`. For each direction, a rule falls in the group of the key
//!   fields it pins (a bit mask) and hashes their target values into a [`KeyEntry`]. A packet
//!   hashes its own values of each group's fields the same way; only rules with an equal hash,
//!   in a group the packet probes, can match. The codec then matches those candidates in
//!   rule-set order, exactly as the linear scan would: a rule left out cannot match, so the
//!   result is the same.
//!
//! The index is plain data over the rule table (indices into it), so it exists in the two forms
//! of the rule model: [`crate::rule::RuleSetBuf`] builds it when it validates, and
//! `schc rules export-rust` writes it as `static` tables beside the rules. [`RuleSet::validate`]
//! checks that an index agrees with the rules it is attached to.

use super::compiled::{CompiledField, RulePlan};
use super::{Direction, FieldDesc, FieldLength, MatchingOperator, Nature, RuleId, RuleSet};
use crate::rule::Fid;

/// The most key fields an index uses (a group is a bit mask over them).
pub const MAX_KEYS: usize = 8;

/// A rule ID left-aligned in 32 bits, and its rule's index in the rule table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct IdEntry {
    /// The ID's value shifted to the top of 32 bits (0 for a 0-bit ID).
    pub left: u32,
    /// Index of the rule in the rule table.
    pub rule: u32,
}

/// A field the compression index keys on: a field ID and position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyField {
    /// The field.
    pub fid: Fid,
    /// Its position.
    pub fp: u8,
}

/// A rule's hash in one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct KeyEntry {
    /// Hash of the group and the target values of its key fields.
    pub hash: u32,
    /// Index of the rule in the rule table.
    pub rule: u32,
}

/// A group: [`GROUP_DOWN`] for the downlink, else uplink, and the mask of key fields its rules
/// pin (bit `i` for `keys[i]`).
pub type Group = u16;

/// The direction bit of a [`Group`].
pub const GROUP_DOWN: Group = 0x100;

/// The index tables of a rule set; see the module documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct RuleIndex<'a> {
    /// Every rule, sorted by left-aligned ID.
    pub ids: &'a [IdEntry],
    /// The key fields (position 1 or more), then the groups, each probed once per packet of
    /// its direction, as `KeyField { fid: Fid::CoapOption(group), fp: 0 }` (one table for
    /// both keeps a device's `RuleSet` small); see [`RuleIndex::key_fields`] and
    /// [`RuleIndex::groups`].
    pub keys: &'a [KeyField],
    /// Two entries per compression rule (one per direction), sorted.
    pub entries: &'a [KeyEntry],
    /// The compiled form of the field table ([`super::compiled`]), entry for entry, or empty.
    /// `compress`/`decompress` use it only in validated sets (validation checks it against
    /// the field table); the compiled-only entry points trust it as it is.
    pub compiled: &'a [CompiledField],
    /// The matching plans of the compiled rules ([`RulePlan`]), two per rule in set order
    /// (uplink, downlink), or empty: compression then matches the compiled form entry by
    /// entry. Derived from `compiled` and checked against it like it.
    pub plans: &'a [RulePlan],
}

impl<'a> RuleIndex<'a> {
    /// The key fields: the entries of `keys` before the first group.
    #[inline]
    pub fn key_fields(&self) -> &'a [KeyField] {
        let n = self.keys.iter().take_while(|k| k.fp != 0).count();
        self.keys.get(..n).unwrap_or(&[])
    }

    /// The groups: the entries of `keys` with position 0.
    #[inline]
    pub fn groups(&self) -> impl Iterator<Item = Group> + 'a {
        self.keys.iter().filter(|k| k.fp == 0).map(|k| match k.fid {
            Fid::CoapOption(g) => g,
            _ => Group::MAX,
        })
    }
}

/// A group as an entry of [`RuleIndex::keys`].
pub const fn group_entry(group: Group) -> KeyField {
    KeyField {
        fid: Fid::CoapOption(group),
        fp: 0,
    }
}

/// A rule ID's value at the top of 32 bits (0 for a 0-bit or malformed ID), as [`IdEntry::left`] holds it.
pub const fn left_aligned_id(id: RuleId) -> u32 {
    if id.length == 0 || id.length > 32 {
        0
    } else {
        id.value << (32 - id.length as u32)
    }
}

/// Hashes the values of a group's key fields, the same way for target values and packets.
#[derive(Debug, Clone, Copy)]
pub struct KeyHasher(u64);

impl KeyHasher {
    const MUL: u64 = 0x9E37_79B9_7F4A_7C15;

    /// A hasher for `group`.
    #[inline]
    pub fn new(group: Group) -> Self {
        Self((u64::from(group) + 1).wrapping_mul(Self::MUL))
    }

    #[inline]
    fn mix(&mut self, x: u64) {
        self.0 = (self.0 ^ x).wrapping_mul(Self::MUL).rotate_left(29);
    }

    /// A field of `len` bits (at most 64) whose value is `value`.
    #[inline]
    pub fn number(&mut self, len: u32, value: u64) {
        self.mix(u64::from(len));
        self.mix(value);
    }

    /// A byte-aligned field longer than 64 bits.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.mix(bytes.len() as u64 * 8);
        let mut words = bytes.chunks_exact(8);
        for w in words.by_ref() {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.mix(u64::from_be_bytes(b));
        }
        let mut b = [0u8; 8];
        for (d, s) in b.iter_mut().zip(words.remainder()) {
            *d = *s;
        }
        self.mix(u64::from_be_bytes(b));
    }

    /// The hash.
    #[inline]
    pub fn finish(self) -> u32 {
        (self.0 >> 32) as u32 ^ self.0 as u32
    }
}

/// `tv` as the number a field of `len` bits compares it with, if it fits (right-aligned).
pub(crate) fn tv_number(tv: &[u8], len: usize) -> Option<u64> {
    if len > 64 || !super::fits_right_aligned(tv, len) {
        return None;
    }
    let skip = tv.len().saturating_sub(8);
    Some(
        tv.iter()
            .skip(skip)
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
    )
}

impl<'a> RuleSet<'a> {
    /// The descriptor with which `rule` pins key field `k` going `dir`, if any: an `equal`
    /// whose first target value a field can equal, hashed into `h`.
    fn pin(
        &self,
        fields: &[FieldDesc],
        k: &KeyField,
        dir: Direction,
        h: Option<&mut KeyHasher>,
    ) -> bool {
        let Some(fd) = fields
            .iter()
            .find(|fd| fd.fid == k.fid && fd.fp == k.fp && fd.di.applies(dir))
        else {
            return false;
        };
        if fd.mo != MatchingOperator::Equal {
            return false;
        }
        let Some(tv) = self.tv(fd, 0) else {
            return false;
        };
        let (len, number) = match fd.fl {
            FieldLength::Fixed(l) => (usize::from(l), tv_number(tv, usize::from(l))),
            FieldLength::Variable => (tv.len() * 8, tv_number(tv, tv.len() * 8)),
            FieldLength::TokenLength => return false,
        };
        match (number, fd.fl) {
            (Some(v), _) => {
                if let Some(h) = h {
                    h.number(len as u32, v);
                }
                true
            }
            (None, FieldLength::Variable) => {
                if let Some(h) = h {
                    h.bytes(tv);
                }
                true
            }
            _ => false,
        }
    }

    /// The group and hash of compression rule `i` going `dir` under `keys`.
    pub(crate) fn rule_key(
        &self,
        i: usize,
        keys: &[KeyField],
        dir: Direction,
    ) -> Option<(Group, u32)> {
        let rule = self.rules.get(i)?;
        if !matches!(rule.nature, Nature::Compression(_)) {
            return None;
        }
        let fields = self.fields(rule);
        let mut group: Group = if dir == Direction::Down {
            GROUP_DOWN
        } else {
            0
        };
        for (b, k) in keys.iter().enumerate().take(MAX_KEYS) {
            if self.pin(fields, k, dir, None) {
                group |= 1 << b;
            }
        }
        let mut h = KeyHasher::new(group);
        for (b, k) in keys.iter().enumerate().take(MAX_KEYS) {
            if group & (1 << b) != 0 {
                self.pin(fields, k, dir, Some(&mut h));
            }
        }
        Some((group, h.finish()))
    }

    /// The rule whose ID prefixes the first `bit_len` bits of `data`, through the ID index.
    pub(crate) fn lookup_indexed(
        &self,
        ids: &[IdEntry],
        data: &[u8],
        bit_len: usize,
    ) -> Option<&'a super::Rule> {
        // The first 32 bits, read as one word when there are 4 bytes (SCHC packets of a few
        // bytes would take `get_bits`' zero-padded tail otherwise).
        let head = match data.first_chunk::<4>() {
            Some(w) => u32::from_be_bytes(*w),
            None => crate::bits::get_bits(data, 0, 32) as u32,
        };
        let at = ids.partition_point(|e| e.left <= head);
        let e = ids.get(at.checked_sub(1)?)?;
        let rule = self.rules.get(e.rule as usize)?;
        let len = usize::from(rule.id.length);
        // In 64 bits, the ID's value shifted to the top of 32 equals the entry's `left` only
        // if the ID is well formed (no value bit above its length) and `left` is its
        // left-aligned value; then the packet's first `len` bits must be that value.
        let sh = 32usize.checked_sub(len)?;
        let left = u64::from(rule.id.value) << sh;
        (len <= bit_len && left == u64::from(e.left) && (u64::from(head) >> sh) << sh == left)
            .then_some(rule)
    }

    /// Checks that the attached index (if any) agrees with the rules: every rule in the ID
    /// table once, sorted; every compression rule's entry for each direction present, in a
    /// listed group.
    pub(crate) fn validate_index(&self) -> Result<(), super::RuleError> {
        let Some(ix) = self.index else {
            return Ok(());
        };
        let bad = |id| super::RuleError::BadIndex(id);
        let none = RuleId::new(0, 0);
        let keys = ix.key_fields();
        if ix.ids.len() != self.rules.len() || keys.len() > MAX_KEYS {
            return Err(bad(none));
        }
        if ix.ids.windows(2).any(|w| w.first() >= w.get(1)) {
            return Err(bad(none));
        }
        for e in ix.ids {
            let rule = self.rules.get(e.rule as usize).ok_or(bad(none))?;
            if left_aligned_id(rule.id) != e.left {
                return Err(bad(rule.id));
            }
        }
        // Distinct rule indices in the ID table: with as many entries as rules and each in
        // range, sorted by (left, rule) in a prefix-free set (distinct `left`), each appears once
        // when no two entries name the same rule.
        for (i, rule) in self.rules.iter().enumerate() {
            let found = ix
                .ids
                .binary_search(&IdEntry {
                    left: left_aligned_id(rule.id),
                    rule: i as u32,
                })
                .is_ok();
            if !found {
                return Err(bad(rule.id));
            }
            for dir in [Direction::Up, Direction::Down] {
                if let Some((group, hash)) = self.rule_key(i, keys, dir) {
                    let entry = KeyEntry {
                        hash,
                        rule: i as u32,
                    };
                    if !ix.groups().any(|g| g == group) || ix.entries.binary_search(&entry).is_err()
                    {
                        return Err(bad(rule.id));
                    }
                }
            }
        }
        if ix.entries.windows(2).any(|w| w.first() >= w.get(1)) {
            return Err(bad(none));
        }
        if !self.compiled_agrees(ix.compiled) || !self.plans_agree(ix.compiled, ix.plans) {
            return Err(bad(none));
        }
        Ok(())
    }
}

#[cfg(feature = "alloc")]
mod build {
    use alloc::vec::Vec;

    use super::*;

    /// The owned tables of a [`RuleIndex`].
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct RuleIndexBuf {
        /// See [`RuleIndex::ids`].
        pub ids: Vec<IdEntry>,
        /// The key fields ([`RuleIndex::key_fields`]).
        pub keys: Vec<KeyField>,
        /// The groups ([`RuleIndex::groups`]).
        pub groups: Vec<Group>,
        /// The key fields then the groups: [`RuleIndex::keys`].
        probes: Vec<KeyField>,
        /// See [`RuleIndex::entries`].
        pub entries: Vec<KeyEntry>,
        /// See [`RuleIndex::compiled`].
        pub compiled: Vec<CompiledField>,
        /// See [`RuleIndex::plans`].
        pub plans: Vec<RulePlan>,
    }

    impl RuleIndexBuf {
        /// The index of a prefix-free rule set (call it on a validated set).
        ///
        /// Key fields are chosen among those that rules pin with `equal`, most distinct target
        /// values first, and only when they tell rules apart (two values or more).
        pub fn build(set: &RuleSet<'_>) -> Self {
            let rules = set.rules();
            let mut ids: Vec<IdEntry> = rules
                .iter()
                .enumerate()
                .map(|(i, r)| IdEntry {
                    left: left_aligned_id(r.id),
                    rule: i as u32,
                })
                .collect();
            ids.sort_unstable();

            // Candidate key fields and how many distinct values rules pin them to.
            let mut cands: Vec<(KeyField, Vec<u32>)> = Vec::new();
            for rule in rules {
                for fd in set.fields(rule) {
                    let k = KeyField {
                        fid: fd.fid,
                        fp: fd.fp,
                    };
                    for dir in [Direction::Up, Direction::Down] {
                        let mut h = KeyHasher::new(0);
                        if set.pin(set.fields(rule), &k, dir, Some(&mut h)) {
                            match cands.iter_mut().find(|c| c.0 == k) {
                                Some(c) => c.1.push(h.finish()),
                                None => cands.push((k, alloc::vec![h.finish()])),
                            }
                        }
                    }
                }
            }
            let mut scored: Vec<(usize, usize, KeyField)> = cands
                .into_iter()
                .enumerate()
                .map(|(order, (k, mut v))| {
                    v.sort_unstable();
                    v.dedup();
                    (v.len(), order, k)
                })
                .filter(|c| c.0 > 1)
                .collect();
            scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            let keys: Vec<KeyField> = scored.iter().take(MAX_KEYS).map(|c| c.2).collect();

            let mut groups = Vec::new();
            let mut entries = Vec::new();
            for i in 0..rules.len() {
                for dir in [Direction::Up, Direction::Down] {
                    if let Some((group, hash)) = set.rule_key(i, &keys, dir) {
                        if !groups.contains(&group) {
                            groups.push(group);
                        }
                        entries.push(KeyEntry {
                            hash,
                            rule: i as u32,
                        });
                    }
                }
            }
            groups.sort_unstable();
            entries.sort_unstable();
            entries.dedup();
            let (_, fields, _, _) = set.tables();
            let compiled: Vec<CompiledField> =
                fields.iter().map(|fd| set.compile_field(fd)).collect();
            let plans = rules
                .iter()
                .flat_map(|r| {
                    let cf = match r.nature {
                        super::Nature::Compression(span) => compiled.get(span.range()),
                        _ => None,
                    };
                    [Direction::Up, Direction::Down]
                        .map(|dir| cf.map_or(RulePlan::default(), |cf| RulePlan::new(cf, dir)))
                })
                .collect();
            let probes = keys
                .iter()
                .copied()
                .chain(groups.iter().map(|&g| group_entry(g)))
                .collect();
            Self {
                ids,
                keys,
                groups,
                probes,
                entries,
                compiled,
                plans,
            }
        }

        /// The borrowed view.
        pub fn as_index(&self) -> RuleIndex<'_> {
            RuleIndex {
                ids: &self.ids,
                keys: &self.probes,
                entries: &self.entries,
                compiled: &self.compiled,
                plans: &self.plans,
            }
        }
    }
}

#[cfg(feature = "alloc")]
pub use build::RuleIndexBuf;
