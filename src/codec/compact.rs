//! Decompression from the compiled form in little code, for devices: what
//! [`decompress_compiled`](super::decompress_compiled) runs. The host's
//! [`decompress`](super::decompress) uses the faster, larger `rebuild_compiled` instead; the
//! two give the same packets (both are held to the interpreter by `tests/hostile.rs`).
//!
//! Each entry of the rule is decoded into a value per header field (or an option to write),
//! then the headers are written field after field in wire order with the accumulating writer
//! the compressor also uses, the options sorted as the interpreter sorts them, then the
//! payload; the computed lengths and checksum are patched last.

use heapless::Vec;

use super::{
    patch_computed, CompiledOpt, Config, OptVal, IPV6_KEYS, MAX_DECODED, TKL_KEY, UDP_KEYS,
};
use crate::bits::{get_bits, BitAcc, BitReader};
use crate::packet::IPV6_HEADER_LEN;
use crate::rule::compiled::{
    CompiledField, CDA_APP_IID, CDA_COMPUTE, CDA_DEV_IID, CDA_LSB, CDA_NOT_SENT, CDA_VALUE_SENT,
    CHECKSUM_KEY, CHECK_CHECKSUM, CHECK_PAYLOAD_LENGTH, CHECK_UDP_LENGTH, DI_DOWN, DI_UP,
    LEN_TOKEN, LEN_VARIABLE, MO_EQUAL_POOL, MO_MASK, OPTION_KEY, PAYLOAD_LENGTH_KEY, TOKEN_KEY,
    UDP_LENGTH_KEY,
};
use crate::rule::fid::HEADER_PLACES;
use crate::rule::{Direction, Layer, RuleId, RuleSet, HEADER_FIELDS};

/// The header fields in wire order (layer by layer), uplink (Dev first) and downlink.
const ORDER: [[u8; HEADER_FIELDS]; 2] = [
    [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
    ],
    [
        0, 1, 2, 3, 4, 5, 8, 9, 6, 7, 11, 10, 12, 13, 14, 15, 16, 17, 18, 19,
    ],
];

/// The header keys of IPv6 and of UDP as 32-bit masks.
const IPV6: u32 = IPV6_KEYS as u32;
/// See [`IPV6`].
const UDP: u32 = UDP_KEYS as u32;
const _: () =
    assert!(IPV6 as u64 == IPV6_KEYS && UDP as u64 == UDP_KEYS && OPTION_KEY >= 31 && TKL_KEY < 31);

/// The header keys of the CoAP layer that must all be described (the token may not be).
const COAP_FIXED: u32 = 0x7C000;

/// Rebuilds the packet of rule `cf` (a validated set's compiled rule; reader after the rule
/// ID) into `out`: its length, or `None` for anything the compiled form does not rebuild or
/// any error (the caller reports it).
#[allow(clippy::too_many_arguments)]
pub(super) fn rebuild(
    set: &RuleSet<'_>,
    cf: &[CompiledField],
    r: &mut BitReader<'_>,
    input: &[u8],
    dir: Direction,
    cfg: &Config,
    id: RuleId,
    out: &mut [u8],
) -> Option<usize> {
    let pool = set.tables().3;
    let dir_bit = if dir == Direction::Up { DI_UP } else { DI_DOWN };
    // A value per header field, as two 32-bit halves: a table of 4-byte alignment is zeroed
    // with `__aeabi_memclr4`, which a device links for its own buffers anyway (an 8-byte
    // aligned one would link `__aeabi_memclr8` beside it).
    let mut vals = [[0u32; 2]; HEADER_FIELDS];
    let val = |vals: &[[u32; 2]; HEADER_FIELDS], k: usize| {
        vals.get(k)
            .map_or(0, |&[hi, lo]| (u64::from(hi) << 32) | u64::from(lo))
    };
    let mut token_bits = 0u32;
    // Keys described (any direction / this direction) as bits: header fields by index, every
    // option on the top bit (32-bit masks: a device's word).
    let (mut all, mut mine, mut computed) = (0u32, 0u32, 0u8);
    let mut opts: Vec<CompiledOpt, MAX_DECODED> = Vec::new();
    let mut applicable = 0usize;
    for c in cf {
        let (op, key) = (c.op(), c.key());
        if op & MO_MASK == 0 {
            return None;
        }
        let bit = 1u32 << key.min(31);
        all |= bit;
        if op & dir_bit == 0 {
            continue;
        }
        // As many entries as the interpreter decodes.
        applicable += 1;
        if applicable > MAX_DECODED {
            return None;
        }
        let tkl = (mine & (1 << TKL_KEY) != 0).then(|| val(&vals, TKL_KEY));
        let (bits, val) = decode(c, r, input, cfg, tkl)?;
        if (op >> 3) & 7 == CDA_COMPUTE {
            // (`computed_bit` of the key's field; no header field past the last.)
            computed |= match key {
                PAYLOAD_LENGTH_KEY => CHECK_PAYLOAD_LENGTH,
                UDP_LENGTH_KEY => CHECK_UDP_LENGTH,
                CHECKSUM_KEY => CHECK_CHECKSUM,
                k if usize::from(k) < HEADER_FIELDS => 0,
                _ => return None,
            };
        }
        mine |= bit;
        if key < OPTION_KEY {
            let (OptVal::Word(v), true) = (val, bits <= 64) else {
                return None;
            };
            *vals.get_mut(usize::from(key))? = [(v >> 32) as u32, v as u32];
            if key == TOKEN_KEY {
                token_bits = bits;
            }
        } else {
            opts.push(CompiledOpt {
                number: key - OPTION_KEY,
                fp: c.fp(),
                bits,
                val,
            })
            .ok()?;
        }
    }
    let first = cfg.first_layer;
    // A field below the first layer is an error (the interpreter's).
    if (first > Layer::Ipv6 && mine & IPV6 != 0) || (first > Layer::Udp && mine & UDP != 0) {
        return None;
    }
    let coap = all & !(IPV6 | UDP) != 0;
    let udp = coap || all & UDP != 0;
    let ipv6 = udp || all & IPV6 != 0;
    let tkl = val(&vals, TKL_KEY);
    // The keys of the layers written, each of which must have been described (the token,
    // written from the TKL, need not be).
    let needed = if ipv6 && first == Layer::Ipv6 {
        IPV6
    } else {
        0
    } | if udp && first <= Layer::Udp { UDP } else { 0 }
        | if coap { COAP_FIXED } else { 0 };
    if mine & needed != needed {
        return None;
    }
    if coap && (tkl > 8 || (mine & (1 << TOKEN_KEY) == 0 && tkl != 0)) {
        return None;
    }
    if mine & (1 << TOKEN_KEY) != 0 && u64::from(token_bits) != tkl * 8 {
        return None;
    }
    let mut w = BitAcc::new(out);
    let order = ORDER.get(usize::from(dir == Direction::Down))?;
    let written = needed | if coap { 1 << TOKEN_KEY } else { 0 };
    for &k in order.iter() {
        let k = usize::from(k);
        let place = HEADER_PLACES.get(k)?;
        if written & (1 << k) == 0 {
            continue;
        }
        let bits = match place.len {
            0 => tkl as u32 * 8,
            l => u32::from(l),
        };
        w.write(val(&vals, k), bits).ok()?;
    }
    if coap {
        // Options in (number, position) order; insertion sort, as the interpreter.
        let key =
            |o: Option<&CompiledOpt>| o.map_or(0, |o| (u32::from(o.number) << 8) | u32::from(o.fp));
        for i in 1..opts.len() {
            let mut j = i;
            while j > 0 && key(opts.get(j - 1)) > key(opts.get(j)) {
                opts.swap(j - 1, j);
                j -= 1;
            }
        }
        let mut prev: u16 = 0;
        for opt in opts.iter() {
            if opt.bits % 8 != 0 {
                return None;
            }
            let len = opt.bits as usize / 8;
            let delta = usize::from(opt.number.checked_sub(prev)?);
            prev = opt.number;
            let (dn, dx, dxl) = nibble(delta)?;
            let (ln, lx, lxl) = nibble(len)?;
            // The option's first byte, then both extensions (at most 32 bits) in one write.
            w.write(u64::from((dn << 4) | ln), 8).ok()?;
            w.write(u64::from((dx << lxl) | lx), dxl + lxl).ok()?;
            match opt.val {
                OptVal::Word(x) => w.write(x, opt.bits),
                OptVal::Input(off) => w.copy_bits(input, off, opt.bits as usize),
                OptVal::Pool(at) => {
                    let value = pool.get(at..at.checked_add(len)?)?;
                    w.copy_bits(value, 0, opt.bits as usize)
                }
            }
            .ok()?;
        }
        if r.remaining() >= 8 {
            w.write(0xFF, 8).ok()?;
        }
    }
    let payload = r.remaining() / 8;
    w.copy_bits(input, r.position(), payload * 8).ok()?;
    let total = w.flush().ok()?;
    let udp_start = if first == Layer::Ipv6 {
        IPV6_HEADER_LEN
    } else {
        0
    };
    patch_computed(out, total, first, udp_start, computed, id).ok()?;
    Some(total)
}

/// The length in bits of the field of entry `c` (an applicable entry of the rule; `tkl`: the
/// TKL decoded before it, if any) and where its value comes from, reading its residue from
/// `r`; `None` for what the compiled form does not rebuild.
// (Out of `rebuild`'s loop: less flash.)
#[inline(never)]
fn decode(
    c: &CompiledField,
    r: &mut BitReader<'_>,
    input: &[u8],
    cfg: &Config,
    tkl: Option<u64>,
) -> Option<(u32, OptVal)> {
    let (op, len, tv, arg) = (c.op(), c.len(), c.tv(), c.arg());
    let (mo, cda) = (op & MO_MASK, (op >> 3) & 7);
    let bits: u32 = match len {
        // The TKL, decoded before (validated sets).
        LEN_TOKEN => u32::try_from(tkl?.checked_mul(8)?).ok()?,
        LEN_VARIABLE => match cda {
            CDA_NOT_SENT if mo == MO_EQUAL_POOL => (tv & 0xFFFF) as u32 * 8,
            CDA_NOT_SENT => u32::from(arg) * 8,
            CDA_VALUE_SENT => u32::try_from(r.read_size_prefix().ok()? * 8).ok()?,
            _ => return None,
        },
        l => u32::from(l),
    };
    let val = match cda {
        CDA_NOT_SENT if mo == MO_EQUAL_POOL => OptVal::Pool((tv >> 16) as usize),
        // A token's target value must fit its TKL bytes.
        CDA_NOT_SENT if bits < 64 && tv >> bits != 0 => return None,
        CDA_NOT_SENT => OptVal::Word(tv),
        CDA_VALUE_SENT | CDA_LSB => {
            let sent = if cda == CDA_LSB {
                bits.checked_sub(u32::from(arg))?
            } else {
                bits
            };
            let off = r.skip(sent as usize).ok()?;
            if sent > 64 {
                OptVal::Input(off)
            } else if cda == CDA_LSB && arg != 0 {
                OptVal::Word(((tv >> sent) << sent) | get_bits(input, off, sent))
            } else {
                OptVal::Word(get_bits(input, off, sent))
            }
        }
        CDA_COMPUTE => OptVal::Word(0),
        CDA_DEV_IID => OptVal::Word(u64::from_be_bytes(cfg.dev_iid?)),
        CDA_APP_IID => OptVal::Word(u64::from_be_bytes(cfg.app_iid?)),
        _ => return None,
    };
    Some((bits, val))
}

/// A CoAP option delta or length: its nibble, and its extension as a value and a width in
/// bits (0, 8 or 16); `None` past what 16 bits of extension hold.
fn nibble(v: usize) -> Option<(u32, u32, u32)> {
    let v = u32::try_from(v).ok()?;
    match v {
        0..=12 => Some((v, 0, 0)),
        13..=268 => Some((13, v - 13, 8)),
        269..=65804 => Some((14, v - 269, 16)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ORDER` is the wire order `HEADER_PLACES` gives: in each direction, every header
    /// field once, layer after layer, each starting where the one before in its layer ends.
    #[test]
    fn order_follows_the_field_places() {
        for (d, dir) in [Direction::Up, Direction::Down].into_iter().enumerate() {
            let mut seen = [false; HEADER_FIELDS];
            let (mut layer, mut at) = (0u8, 0u16);
            for &k in ORDER[d].iter() {
                let p = HEADER_PLACES[usize::from(k)];
                assert!(!seen[usize::from(k)], "{dir:?} key {k} twice");
                seen[usize::from(k)] = true;
                if p.layer != layer {
                    assert_eq!(p.layer, layer + 1, "{dir:?} key {k}");
                    (layer, at) = (p.layer, 0);
                }
                assert_eq!(p.offset(dir), at, "{dir:?} key {k}");
                at += u16::from(p.len);
            }
            assert!(seen.iter().all(|&s| s), "{dir:?}");
            assert_eq!(layer, 2, "{dir:?}");
        }
    }
}
