//! The compiled per-field form: a compact descriptor derived from each [`FieldDesc`] of a
//! validated rule set, so that the codec matches a field with a load and a compare, and
//! rebuilds it with a store into a fixed header layout, instead of interpreting the general
//! descriptor.
//!
//! A [`CompiledField`] is 14 bytes: the field's key (a header field's index, or an option
//! number), its position, its length (bits, or a code for token-length and variable fields),
//! the MO, CDA and direction as one byte, the MSB length, and the target value right-aligned in
//! 64 bits (or, for a variable-length value longer than 8 bytes, where it lies in the pool).
//! The table is parallel to the rule set's field table: entry `i` is compiled from field `i`.
//!
//! It lives in the [`RuleIndex`](super::RuleIndex) (built with it by
//! [`RuleIndexBuf::build`](super::index::RuleIndexBuf::build), written with it by
//! `schc rules export-rust`, checked with it by [`RuleSet::validate`]). [`FieldDesc`] stays
//! the one rule model: an entry the form cannot express compiles to [`CompiledField::FALLBACK`],
//! and the codec runs the general interpreter for its rule.

use super::fid::HEADER_PLACES;
use super::{
    Cda, Direction, DirectionIndicator, FieldDesc, FieldLength, MatchingOperator, RuleSet,
};
use crate::rule::Fid;

/// One compiled field descriptor; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CompiledField {
    tv: [u8; 8],
    key: u16,
    fp: u8,
    len: u8,
    op: u8,
    arg: u8,
}

/// `key` of a CoAP option: this plus the option number.
pub(crate) const OPTION_KEY: u16 = 32;
/// `len` of a token of `fl-token-length`.
pub(crate) const LEN_TOKEN: u8 = 0xFE;
/// `len` of a variable-length field.
pub(crate) const LEN_VARIABLE: u8 = 0xFF;

/// Matching operators of the compiled form (`op & MO_MASK`).
pub(crate) const MO_MASK: u8 = 0x07;
/// Not expressible: the rule runs on the general interpreter.
pub(crate) const MO_FALLBACK: u8 = 0;
/// `ignore` (or MSB(0)); with not-sent, the target value as for `equal`.
pub(crate) const MO_IGNORE: u8 = 1;
/// `equal` to the right-aligned number in `tv` (variable fields: `arg` bytes long).
pub(crate) const MO_EQUAL: u8 = 2;
/// `equal` to the pool bytes `tv` points at (variable fields over 8 bytes).
pub(crate) const MO_EQUAL_POOL: u8 = 3;
/// MSB(`arg`) of a fixed-length field of at most 64 bits.
pub(crate) const MO_MSB: u8 = 4;

/// Actions of the compiled form (`(op >> 3) & 7`).
pub(crate) const CDA_NOT_SENT: u8 = 0;
/// value-sent.
pub(crate) const CDA_VALUE_SENT: u8 = 1;
/// LSB after MSB(`arg`).
pub(crate) const CDA_LSB: u8 = 2;
/// compute-*.
pub(crate) const CDA_COMPUTE: u8 = 3;
/// DevIID.
pub(crate) const CDA_DEV_IID: u8 = 4;
/// AppIID.
pub(crate) const CDA_APP_IID: u8 = 5;

/// The compiled keys of the computed fields and the token.
pub(crate) const PAYLOAD_LENGTH_KEY: u16 = 3;
/// See [`PAYLOAD_LENGTH_KEY`].
pub(crate) const UDP_LENGTH_KEY: u16 = 12;
/// See [`PAYLOAD_LENGTH_KEY`].
pub(crate) const CHECKSUM_KEY: u16 = 13;
/// See [`PAYLOAD_LENGTH_KEY`].
pub(crate) const TOKEN_KEY: u16 = 19;
/// See [`PAYLOAD_LENGTH_KEY`].
pub(crate) const TKL_KEY: u16 = 16;
const _: () = assert!(
    matches!(Fid::Ipv6PayloadLength.header_index(), Some(3))
        && matches!(Fid::UdpLength.header_index(), Some(12))
        && matches!(Fid::UdpChecksum.header_index(), Some(13))
        && matches!(Fid::CoapToken.header_index(), Some(19))
        && matches!(Fid::CoapTkl.header_index(), Some(16))
);

/// Direction bits of `op`: the entry applies uplink.
pub(crate) const DI_UP: u8 = 0x40;
/// The entry applies downlink.
pub(crate) const DI_DOWN: u8 = 0x80;

impl CompiledField {
    /// The entry of a field the compiled form cannot express.
    pub const FALLBACK: Self = Self::new(0, 0, 0, 0, 0, 0);

    /// An entry from its raw parts, as [`CompiledField::parts`] gives them (for the static
    /// tables `schc rules export-rust` writes).
    pub const fn new(tv: u64, key: u16, fp: u8, len: u8, op: u8, arg: u8) -> Self {
        Self {
            tv: tv.to_be_bytes(),
            key,
            fp,
            len,
            op,
            arg,
        }
    }

    /// The raw parts: target value, key, position, length code, operation, argument.
    pub const fn parts(&self) -> (u64, u16, u8, u8, u8, u8) {
        (
            u64::from_be_bytes(self.tv),
            self.key,
            self.fp,
            self.len,
            self.op,
            self.arg,
        )
    }

    /// The target value (or pool reference), right-aligned.
    #[inline(always)]
    pub(crate) fn tv(&self) -> u64 {
        u64::from_be_bytes(self.tv)
    }

    /// The key: a header field index, or [`OPTION_KEY`] plus an option number.
    #[inline(always)]
    pub(crate) fn key(&self) -> u16 {
        self.key
    }

    /// The field position.
    #[inline(always)]
    pub(crate) fn fp(&self) -> u8 {
        self.fp
    }

    /// The length code: bits (at most 64), [`LEN_TOKEN`] or [`LEN_VARIABLE`].
    #[inline(always)]
    pub(crate) fn len(&self) -> u8 {
        self.len
    }

    /// The operation byte: MO, CDA and direction bits.
    #[inline(always)]
    pub(crate) fn op(&self) -> u8 {
        self.op
    }

    /// MSB length, or a variable target value's length in bytes.
    #[inline(always)]
    pub(crate) fn arg(&self) -> u8 {
        self.arg
    }

    /// Whether the codec must use the general interpreter for this entry's rule.
    #[inline(always)]
    pub fn is_fallback(&self) -> bool {
        self.op & MO_MASK == MO_FALLBACK
    }
}

/// The most word compares in a [`RulePlan`]: the IPv6 header needs five, UDP one, CoAP one.
pub const PLAN_WORDS: usize = 8;

/// One compare of a [`RulePlan`]: the 8 bytes from byte `at` of a layer's header (zero past
/// the packet's end), read as a native-endian `u64` (`u64::from_ne_bytes`: no byte swap per
/// packet), under `mask`, must equal `value`. `mask` and `value` are in that order too:
/// [`PlanWord::mask_be`] and [`PlanWord::value_be`] give them big-endian. Unused words of a
/// plan are all zero: they compare the first 8 bytes under an empty mask, and always pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlanWord {
    /// The layer: 0 IPv6, 1 UDP, 2 CoAP.
    pub layer: u8,
    /// Byte offset from the layer's start.
    pub at: u8,
    /// The bits the rule pins.
    pub mask: u64,
    /// Their values (zero outside `mask`).
    pub value: u64,
}

impl PlanWord {
    /// `mask` read big-endian: bit 63 is the first bit of byte `at`.
    pub fn mask_be(&self) -> u64 {
        u64::from_be_bytes(self.mask.to_ne_bytes())
    }

    /// `value` read big-endian.
    pub fn value_be(&self) -> u64 {
        u64::from_be_bytes(self.value.to_ne_bytes())
    }
}

/// The most residue writes a [`RulePlan`] lists ([`PlanOut`]): a rule that sends more
/// residues is written entry by entry from [`RulePlan::sends`].
pub const PLAN_OUTS: usize = 6;

/// [`PlanOut::kind`]: `len` bits from bit `off` of layer `layer`'s header.
pub const OUT_FIELD: u8 = 0;
/// [`PlanOut::kind`]: the CoAP token, TKL bytes (a value-sent token of `fl-token-length`).
pub const OUT_TOKEN: u8 = 1;
/// [`PlanOut::kind`]: the residue of compiled entry `entry`, written as the entry says
/// (options, size prefixes, anything not at a fixed place).
pub const OUT_ENTRY: u8 = 2;

/// One residue write of a [`RulePlan`], in the rule's entry order: a header field's residue
/// (its value-sent bits, or the bits under an LSB) at a fixed place of its layer, the token,
/// or a compiled entry written as such.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlanOut {
    /// [`OUT_FIELD`], [`OUT_TOKEN`] or [`OUT_ENTRY`].
    pub kind: u8,
    /// The layer of a field: 0 IPv6, 1 UDP, 2 CoAP.
    pub layer: u8,
    /// The bits of a field's residue.
    pub len: u8,
    /// The entry's index in the rule.
    pub entry: u8,
    /// The bit offset of a field's residue from its layer's start, in the plan's direction.
    pub off: u16,
}

impl PlanOut {
    /// How compression writes the residue of entry `i`, `c`, going `dir`.
    fn of(c: &CompiledField, i: usize, dir: Direction) -> Self {
        let (key, len, cda) = (c.key(), c.len(), (c.op() >> 3) & 7);
        let entry = Self {
            kind: OUT_ENTRY,
            entry: i as u8,
            ..Self::default()
        };
        if key == TOKEN_KEY && len == LEN_TOKEN && cda == CDA_VALUE_SENT {
            return Self {
                kind: OUT_TOKEN,
                ..entry
            };
        }
        match HEADER_PLACES.get(usize::from(key)) {
            Some(place) if place.len != 0 && len == place.len => {
                let x = if cda == CDA_LSB { c.arg().min(len) } else { 0 };
                Self {
                    kind: OUT_FIELD,
                    layer: place.layer,
                    len: len - x,
                    off: place.offset(dir) + u16::from(x),
                    ..entry
                }
            }
            _ => entry,
        }
    }
}

/// Plan check: the IPv6 payload length must be the one decompression computes.
pub const CHECK_PAYLOAD_LENGTH: u8 = 1;
/// Plan check: the UDP length.
pub const CHECK_UDP_LENGTH: u8 = 2;
/// Plan check: the UDP checksum.
pub const CHECK_CHECKSUM: u8 = 4;

/// A compiled rule's matching plan for one direction, derived from its [`CompiledField`]s
/// with the index ([`RulePlan::new`]) so that compression does per rule what it would
/// otherwise do per entry: the header fields the rule pins with equal or MSB are checked a
/// word at a time, and its CoAP options as the bytes of their encoding when it allows one
/// only ([`RulePlan::new`]); the layers and the field count from precomputed masks, and only
/// the entries left in `rest` (other options, the token, device and application IIDs,
/// fields of an unexpected length) one by one; and the residues are written from `outs`.
/// It costs 2 × 264 bytes per rule, so static device tables leave it out (`schc rules
/// export-rust` writes no plans) and match entry by entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RulePlan {
    /// The word compares, `n_words` of them.
    pub words: [PlanWord; PLAN_WORDS],
    /// How many of `words` are used.
    pub n_words: u8,
    /// Whether the plan can be used: `false` when the rule has an entry the compiled form
    /// cannot express, more than 64 entries, or more pinned words than [`PLAN_WORDS`].
    pub usable: bool,
    /// `CHECK_*` bits: the computed fields to compare with the packet.
    pub checks: u8,
    /// The deepest layer of any entry (either direction): 0 none, else `Layer as u8`.
    pub layer: u8,
    /// The first layer of this direction's entries (`Layer as u8`; 0 when none).
    pub first: u8,
    /// `layer` and `first` as bits, `1 << (l - 1)` for layer `l`: the layers the packet
    /// must have.
    pub needs: u8,
    /// How many of this direction's entries are header fields.
    pub header_fields: u8,
    /// How many are CoAP options.
    pub options: u8,
    /// Whether one of them is the CoAP token.
    pub token: bool,
    /// Whether the token is ignored and sent (TKL bytes of residue, in no word).
    pub token_sent: bool,
    /// Residue bits of the entries the words cover.
    pub residue: u32,
    /// The entries matched one by one, as bits of their index in the rule.
    pub rest: u64,
    /// The entries of this direction that send a residue (value-sent, LSB), as bits.
    pub sends: u64,
    /// Their residue writes in entry order, `n_outs` of them, when `listed`.
    pub outs: [PlanOut; PLAN_OUTS],
    /// How many of `outs` are used.
    pub n_outs: u8,
    /// Whether `outs` lists every residue (at most [`PLAN_OUTS`]); else compression writes
    /// them from `sends`.
    pub listed: bool,
}

impl RulePlan {
    /// The plan of the compiled rule `cf` going `dir`.
    pub fn new(cf: &[CompiledField], dir: Direction) -> Self {
        let unusable = Self::default();
        if cf.len() > 64 {
            return unusable;
        }
        let d = if dir == Direction::Up { DI_UP } else { DI_DOWN };
        let mut p = Self::default();
        let (mut all, mut mine) = (0u64, 0u64);
        let mut too_many = false;
        for (i, c) in cf.iter().enumerate() {
            let (op, key) = (c.op(), c.key());
            let mo = op & MO_MASK;
            if mo == MO_FALLBACK {
                return unusable;
            }
            // `Layer as u8` (1 IPv6, 2 UDP, 3 CoAP); options are CoAP's.
            let layer = HEADER_PLACES
                .get(usize::from(key))
                .map_or(3, |p| p.layer + 1);
            all |= 1 << (layer - 1);
            if op & d == 0 {
                continue;
            }
            mine |= 1 << (layer - 1);
            let cda = (op >> 3) & 7;
            if matches!(cda, CDA_VALUE_SENT | CDA_LSB) {
                p.sends |= 1 << i;
                match p.outs.get_mut(usize::from(p.n_outs)) {
                    Some(o) => {
                        *o = PlanOut::of(c, i, dir);
                        p.n_outs += 1;
                    }
                    None => too_many = true,
                }
            }
            if key >= OPTION_KEY {
                p.options += 1;
                p.rest |= 1 << i;
                continue;
            }
            p.header_fields += 1;
            p.token |= key == TOKEN_KEY;
            if key == TOKEN_KEY && c.len() == LEN_TOKEN && mo == MO_IGNORE && cda == CDA_VALUE_SENT
            {
                p.token_sent = true;
                continue;
            }
            let Some(place) = HEADER_PLACES.get(usize::from(key)) else {
                return unusable;
            };
            let len = c.len();
            let check = match (cda, key) {
                (CDA_COMPUTE, PAYLOAD_LENGTH_KEY) => CHECK_PAYLOAD_LENGTH,
                (CDA_COMPUTE, UDP_LENGTH_KEY) => CHECK_UDP_LENGTH,
                (CDA_COMPUTE, CHECKSUM_KEY) => CHECK_CHECKSUM,
                _ => 0,
            };
            let foldable = place.len != 0
                && len == place.len
                && matches!(mo, MO_IGNORE | MO_EQUAL | MO_MSB)
                && (matches!(cda, CDA_NOT_SENT | CDA_VALUE_SENT | CDA_LSB) || check != 0);
            if !foldable {
                p.rest |= 1 << i;
                continue;
            }
            p.checks |= check;
            p.residue += u32::from(match cda {
                CDA_VALUE_SENT => len,
                CDA_LSB => len - c.arg().min(len),
                _ => 0,
            });
            let x = match mo {
                MO_EQUAL => len,
                MO_MSB => c.arg().min(len),
                _ => 0,
            };
            if x == 0 {
                continue;
            }
            // The top `x` bits of the field, at bit `o` of its layer.
            let o = u32::from(place.offset(dir));
            let value = c.tv() >> (len - x);
            let used = p.words.get(..usize::from(p.n_words)).unwrap_or(&[]);
            let word = used.iter().position(|w| {
                w.layer == place.layer
                    && u32::from(w.at) * 8 <= o
                    && o + u32::from(x) <= u32::from(w.at) * 8 + 64
            });
            let w = match word {
                Some(w) => w,
                None if usize::from(p.n_words) < PLAN_WORDS => {
                    let n = usize::from(p.n_words);
                    if let Some(w) = p.words.get_mut(n) {
                        w.layer = place.layer;
                        // 8-byte aligned: no header field crosses such a boundary, so
                        // the fields of a window share one word in either direction.
                        w.at = (o / 64 * 8) as u8;
                    }
                    p.n_words += 1;
                    n
                }
                None => return unusable,
            };
            let Some(w) = p.words.get_mut(w) else {
                return unusable;
            };
            let Some(shift) = 64u32.checked_sub(o - u32::from(w.at) * 8 + u32::from(x)) else {
                return unusable;
            };
            let ones = u64::MAX >> (64 - u32::from(x));
            w.mask |= ones << shift;
            w.value |= (value & ones) << shift;
        }
        p.layer = (64 - all.leading_zeros()) as u8;
        p.first = if mine == 0 {
            0
        } else {
            mine.trailing_zeros() as u8 + 1
        };
        p.needs = [p.layer, p.first]
            .iter()
            .filter(|&&l| l != 0)
            .fold(0, |b, &l| b | 1 << (l - 1));
        p.fold_options(cf, d);
        // The words in the packet's byte order, as compression reads them.
        for w in &mut p.words {
            w.mask = u64::from_ne_bytes(w.mask.to_be_bytes());
            w.value = u64::from_ne_bytes(w.value.to_be_bytes());
        }
        if too_many {
            p.outs = Default::default();
            p.n_outs = 0;
        }
        p.listed = !too_many;
        p.usable = true;
        p
    }
}

impl RulePlan {
    /// Folds the option entries of direction bit `d` into words when together they allow one
    /// encoding only: every one `equal` / `not-sent` with a short inline value, their
    /// positions 1, 2, ... per option number, and the TKL pinned (so the options start at a
    /// fixed byte of the CoAP header). As the field count leaves the packet no other option,
    /// and an option's header bytes are canonical (extended nibbles only for deltas and
    /// lengths of 13 and more), the packet's options then match exactly when their bytes are
    /// that encoding. Otherwise, or when the words do not fit, they stay in `rest`.
    fn fold_options(&mut self, cf: &[CompiledField], d: u8) {
        const MAX: usize = 8;
        let tkl = cf
            .iter()
            .find(|c| c.key() == TKL_KEY && c.op() & d != 0 && c.op() & MO_MASK == MO_EQUAL);
        let Some(tkl) = tkl.map(|c| c.tv()).filter(|&t| t <= 8) else {
            return;
        };
        // (number, position, index in the rule) of each option entry, sorted.
        let mut opts = [(0u16, 0u8, 0usize); MAX];
        let mut n = 0;
        for (i, c) in cf.iter().enumerate() {
            if c.key() < OPTION_KEY || c.op() & d == 0 {
                continue;
            }
            let inline = c.op() & 0x3F == MO_EQUAL | (CDA_NOT_SENT << 3)
                && c.len() == LEN_VARIABLE
                && c.arg() <= 8;
            match opts.get_mut(n) {
                Some(o) if inline => *o = (c.key() - OPTION_KEY, c.fp(), i),
                _ => return,
            }
            n += 1;
        }
        let opts = opts.get_mut(..n).unwrap_or(&mut []);
        if opts.is_empty() {
            return;
        }
        opts.sort_unstable();
        // Their encoding (RFC 7252 §3.1), at most the free words' bytes.
        let mut bytes = [0u8; 8 * PLAN_WORDS];
        let room = 8 * (PLAN_WORDS - usize::from(self.n_words));
        let mut len = 0;
        let mut put = |b: u8| match bytes.get_mut(len).filter(|_| len < room) {
            Some(x) => {
                *x = b;
                len += 1;
                true
            }
            None => false,
        };
        let (mut prev, mut last) = (0u16, (u16::MAX, 0u8));
        for &(number, fp, i) in opts.iter() {
            let position = if last.0 == number {
                last.1.checked_add(1)
            } else {
                Some(1)
            };
            if position != Some(fp) {
                return;
            }
            last = (number, fp);
            let (Some(c), Some(delta)) = (cf.get(i), number.checked_sub(prev)) else {
                return;
            };
            prev = number;
            let size = c.arg();
            let (nibble, ext): (u8, &[u8]) = match delta {
                0..=12 => (delta as u8, &[]),
                13..=268 => (13, &[(delta - 13) as u8]),
                _ => (14, &(delta - 269).to_be_bytes()),
            };
            let value = c.tv().to_be_bytes();
            let value = value.get(8 - usize::from(size)..).unwrap_or(&[]);
            let ok = put((nibble << 4) | size) && ext.iter().chain(value).all(|&b| put(b));
            if !ok {
                return;
            }
        }
        // Whole words from the first option byte: 4 header bytes and the token before it.
        for (j, chunk) in bytes.get(..len).unwrap_or(&[]).chunks(8).enumerate() {
            let Some(w) = self.words.get_mut(usize::from(self.n_words)) else {
                return;
            };
            let mut be = [0u8; 8];
            be.iter_mut().zip(chunk).for_each(|(d, s)| *d = *s);
            *w = PlanWord {
                layer: 2,
                at: 4 + tkl as u8 + 8 * j as u8,
                mask: u64::MAX << (64 - 8 * chunk.len()),
                value: u64::from_be_bytes(be),
            };
            self.n_words += 1;
        }
        for &(_, _, i) in opts.iter() {
            self.rest &= !(1 << i);
        }
    }
}

impl RuleSet<'_> {
    /// The compiled form of `fd`, a descriptor of this (validated) set; a fallback entry
    /// ([`CompiledField::is_fallback`]: [`CompiledField::FALLBACK`] with the field's key and
    /// position) when the form cannot express it (match-mapping, MSB on variable fields,
    /// fields over 64 bits that are not byte strings, ...).
    pub fn compile_field(&self, fd: &FieldDesc) -> CompiledField {
        self.try_compile(fd).unwrap_or_else(|| {
            // The field's key and position kept, so that an error can name the field.
            let key = match fd.fid {
                Fid::CoapOption(n) => n.checked_add(OPTION_KEY).unwrap_or(0),
                other => other.header_index().map_or(0, |i| i as u16),
            };
            CompiledField::new(0, key, fd.fp, 0, 0, 0)
        })
    }

    fn try_compile(&self, fd: &FieldDesc) -> Option<CompiledField> {
        let (key, fp) = match fd.fid {
            Fid::CoapOption(n) => (n.checked_add(OPTION_KEY)?, fd.fp),
            other => {
                // Only position 1 of a header field exists in a packet.
                if fd.fp != 1 {
                    return None;
                }
                (other.header_index()? as u16, 1)
            }
        };
        if fd.fp == 0 {
            return None;
        }
        let len = match fd.fl {
            FieldLength::Fixed(l) if l <= 64 => l as u8,
            FieldLength::Fixed(_) => return None,
            FieldLength::TokenLength if fd.fid == Fid::CoapToken => LEN_TOKEN,
            FieldLength::TokenLength => return None,
            FieldLength::Variable => LEN_VARIABLE,
        };
        let tv0 = self.tv(fd, 0);
        let (mo, tv, arg) = match fd.mo {
            // Decompression writes the target value of ignore/not-sent (lossy, but exact).
            MatchingOperator::Ignore if fd.cda == Cda::NotSent => {
                let tv = tv0?;
                match fd.fl {
                    FieldLength::Fixed(l) => {
                        (MO_IGNORE, super::index::tv_number(tv, usize::from(l))?, 0)
                    }
                    _ if tv.len() <= 8 => (
                        MO_IGNORE,
                        super::index::tv_number(tv, tv.len() * 8)?,
                        tv.len() as u8,
                    ),
                    _ => return None,
                }
            }
            MatchingOperator::Ignore => (MO_IGNORE, 0, 0),
            MatchingOperator::Equal => {
                let tv = tv0?;
                match fd.fl {
                    FieldLength::Fixed(l) => {
                        (MO_EQUAL, super::index::tv_number(tv, usize::from(l))?, 0)
                    }
                    FieldLength::TokenLength if tv.len() <= 8 => {
                        (MO_EQUAL, super::index::tv_number(tv, tv.len() * 8)?, 0)
                    }
                    FieldLength::TokenLength => return None,
                    FieldLength::Variable if tv.len() <= 8 => (
                        MO_EQUAL,
                        super::index::tv_number(tv, tv.len() * 8)?,
                        tv.len() as u8,
                    ),
                    FieldLength::Variable => {
                        let r = self.values.get(fd.tv.start as usize)?;
                        (
                            (MO_EQUAL_POOL),
                            (u64::from(r.offset) << 16) | u64::from(r.len),
                            0,
                        )
                    }
                }
            }
            MatchingOperator::Msb(x) => match fd.fl {
                FieldLength::Fixed(l) if x <= l => {
                    let v = super::index::tv_number(tv0?, usize::from(l))?;
                    // MSB(0) matches whatever fits, as ignore does.
                    (if x == 0 { MO_IGNORE } else { MO_MSB }, v, x as u8)
                }
                _ => return None,
            },
            MatchingOperator::MatchMapping => return None,
        };
        let cda = match (fd.cda, fd.mo) {
            (Cda::NotSent, MatchingOperator::Equal | MatchingOperator::Ignore) => CDA_NOT_SENT,
            (Cda::NotSent, _) => return None,
            (Cda::ValueSent, _) => CDA_VALUE_SENT,
            (Cda::Lsb, MatchingOperator::Msb(_)) => CDA_LSB,
            (Cda::Compute, _) if fd.fid.is_computable() => CDA_COMPUTE,
            (Cda::DevIid, _) if fd.fid == Fid::Ipv6DevIid => CDA_DEV_IID,
            (Cda::AppIid, _) if fd.fid == Fid::Ipv6AppIid => CDA_APP_IID,
            _ => return None,
        };
        let di = match fd.di {
            DirectionIndicator::Bi => DI_UP | DI_DOWN,
            DirectionIndicator::Up => DI_UP,
            DirectionIndicator::Down => DI_DOWN,
        };
        Some(CompiledField::new(
            tv,
            key,
            fp,
            len,
            mo | (cda << 3) | di,
            arg,
        ))
    }

    /// Whether `plans` are the plans of `compiled` (two per rule), or empty.
    pub(crate) fn plans_agree(&self, compiled: &[CompiledField], plans: &[RulePlan]) -> bool {
        plans.is_empty()
            || (plans.len() == self.rules().len() * 2
                && self.rules().iter().zip(plans.chunks(2)).all(|(r, p)| {
                    let cf = match r.nature {
                        super::Nature::Compression(span) => compiled.get(span.range()),
                        _ => None,
                    };
                    [Direction::Up, Direction::Down]
                        .iter()
                        .zip(p)
                        .all(|(&dir, p)| {
                            *p == cf.map_or(RulePlan::default(), |cf| RulePlan::new(cf, dir))
                        })
                }))
    }

    /// Whether `compiled` is the compiled form of this set's field table, entry by entry.
    pub(crate) fn compiled_agrees(&self, compiled: &[CompiledField]) -> bool {
        let (_, fields, _, _) = self.tables();
        compiled.is_empty()
            || (compiled.len() == fields.len()
                && fields
                    .iter()
                    .zip(compiled)
                    .all(|(fd, c)| self.compile_field(fd) == *c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::rule::{Span, ValueRef};

    fn fd(
        fid: Fid,
        fl: FieldLength,
        fp: u8,
        tv: Span,
        mo: MatchingOperator,
        cda: Cda,
    ) -> FieldDesc {
        FieldDesc {
            fid,
            fl,
            fp,
            di: DirectionIndicator::Bi,
            tv,
            mo,
            cda,
        }
    }

    #[test]
    fn what_compiles_and_what_falls_back() {
        use FieldLength::{Fixed, TokenLength, Variable};
        use MatchingOperator::{Equal, Ignore, MatchMapping, Msb};
        // Values: 0x1633 (2 bytes), "temperature" (11 bytes), 6 (1 byte).
        let pool = *b"\x16\x33temperature\x06";
        let values = [
            ValueRef::new(0, 2),
            ValueRef::new(2, 11),
            ValueRef::new(13, 1),
        ];
        let set = RuleSet::new_unchecked(&[], &[], &values, &pool);
        let one = |i| Span::new(i, 1);
        let port = fd(Fid::UdpAppPort, Fixed(16), 1, one(0), Equal, Cda::NotSent);
        let c = set.compile_field(&port);
        assert_eq!(
            c.parts(),
            (0x1633, 11, 1, 16, MO_EQUAL | DI_UP | DI_DOWN, 0)
        );
        // An option: key 32 + number; a long value: a pool reference (offset, length).
        let path = fd(
            Fid::CoapOption(11),
            Variable,
            2,
            one(1),
            Equal,
            Cda::NotSent,
        );
        let c = set.compile_field(&path);
        assert_eq!(c.parts(), ((2 << 16) | 11, 43, 2, LEN_VARIABLE, 0xC3, 0));
        // A short variable value inline, its length in `arg`.
        let short = fd(
            Fid::CoapOption(11),
            Variable,
            1,
            one(2),
            Equal,
            Cda::NotSent,
        );
        assert_eq!(set.compile_field(&short).parts().5, 1);
        // MSB(12)/LSB on a fixed field; ignore/not-sent keeps its target value.
        let mid = fd(Fid::CoapMid, Fixed(16), 1, one(0), Msb(12), Cda::Lsb);
        assert_eq!(
            set.compile_field(&mid).parts(),
            (0x1633, 18, 1, 16, MO_MSB | (CDA_LSB << 3) | 0xC0, 12)
        );
        let lossy = fd(Fid::UdpAppPort, Fixed(16), 1, one(0), Ignore, Cda::NotSent);
        assert_eq!(set.compile_field(&lossy).tv(), 0x1633);
        let token = fd(
            Fid::CoapToken,
            TokenLength,
            1,
            Span::new(0, 0),
            Ignore,
            Cda::ValueSent,
        );
        assert_eq!(set.compile_field(&token).len(), LEN_TOKEN);
        // What the form cannot express.
        for f in [
            fd(
                Fid::UdpAppPort,
                Fixed(16),
                1,
                Span::new(0, 3),
                MatchMapping,
                Cda::MappingSent,
            ),
            fd(Fid::CoapOption(11), Variable, 1, one(1), Msb(8), Cda::Lsb),
            fd(Fid::UdpAppPort, Fixed(16), 2, one(0), Equal, Cda::NotSent),
            fd(
                Fid::CoapOption(11),
                Fixed(72),
                1,
                one(1),
                Ignore,
                Cda::ValueSent,
            ),
            fd(Fid::UdpAppPort, Fixed(16), 1, one(0), Msb(16), Cda::NotSent),
            fd(
                Fid::CoapOption(11),
                Variable,
                1,
                one(1),
                Ignore,
                Cda::NotSent,
            ),
            fd(
                Fid::CoapOption(65535),
                Variable,
                1,
                one(2),
                Equal,
                Cda::NotSent,
            ),
        ] {
            assert!(set.compile_field(&f).is_fallback(), "{f:?}");
        }
    }

    #[test]
    fn plan_size_as_documented() {
        assert_eq!(core::mem::size_of::<RulePlan>(), 264);
    }

    #[test]
    fn fourteen_bytes() {
        assert_eq!(core::mem::size_of::<CompiledField>(), 14);
        let c = CompiledField::new(0x2001_0db8_000a_0000, 6, 1, 64, 0xC2, 0);
        assert_eq!(c.parts(), (0x2001_0db8_000a_0000, 6, 1, 64, 0xC2, 0));
        assert!(!c.is_fallback());
        assert!(CompiledField::FALLBACK.is_fallback());
    }
}
