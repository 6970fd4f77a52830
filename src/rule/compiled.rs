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

use super::{Cda, DirectionIndicator, FieldDesc, FieldLength, MatchingOperator, RuleSet};
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

impl RuleSet<'_> {
    /// The compiled form of `fd`, a descriptor of this (validated) set; [`CompiledField::FALLBACK`]
    /// when the form cannot express it (match-mapping, MSB on variable fields, fields over
    /// 64 bits that are not byte strings, ...).
    pub fn compile_field(&self, fd: &FieldDesc) -> CompiledField {
        self.try_compile(fd).unwrap_or(CompiledField::FALLBACK)
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
    fn fourteen_bytes() {
        assert_eq!(core::mem::size_of::<CompiledField>(), 14);
        let c = CompiledField::new(0x2001_0db8_000a_0000, 6, 1, 64, 0xC2, 0);
        assert_eq!(c.parts(), (0x2001_0db8_000a_0000, 6, 1, 64, 0xC2, 0));
        assert!(!c.is_fallback());
        assert!(CompiledField::FALLBACK.is_fallback());
    }
}
