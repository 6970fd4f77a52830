//! The compiled-only codec, built for a device's flash: what
//! [`compress_compiled`](super::compress_compiled) and
//! [`decompress_compiled`](super::decompress_compiled) run. The host's [`compress`](super::compress)
//! and [`decompress`](super::decompress) use plans, the interpreter and `rebuild_compiled`
//! instead; these give the same packets (`tests/hostile.rs` and the fuzz targets hold them to
//! the host's).
//!
//! Both directions walk a rule's compiled entries in rule order and write with one primitive,
//! [`copy_into`], which puts bits from a source at any bit of the output:
//!
//! - **Compression** runs [`Scan::rule`] over each rule: it matches every entry against the
//!   packet's field, adds up the residue and writes it to the output as it goes (after where
//!   the rule ID will be). Matching and writing are one piece of code, so they cannot
//!   disagree. The best rule's residues are kept when no rule was scanned after it (a device's
//!   one compression rule), else it is scanned once more; then the rule ID, the payload and
//!   the padding are written.
//! - **Decompression** decodes the entries in rule order and writes each header field at its
//!   place in the packet (no table of values). The options must go out in (number, position)
//!   order with deltas: each further pass over the entries finds the next one, whatever order
//!   the rule lists them in, so there is no option table and no sort. Then the payload marker
//!   and the payload, and the computed lengths and checksum.
//!
//! Flash comes first here: on devices `get_bits` is itself a [`copy_into`], and the UDP
//! checksum adds a 16-bit word at a time (see `BENCHMARKS.md` for what it costs in speed).

use super::{
    compiled_fid, computed_key_bit, patch_computed, udp_checksum, CompressError, Compressed,
    Config, DecompressError, Decompressed, IPV6_KEYS, MAX_DECODED, UDP_KEYS,
};
use crate::bits::{copy_into, get_bits, size_prefix, BitError};
use crate::packet::{Headers, IPV6_HEADER_LEN, UDP_HEADER_LEN};
use crate::rule::compiled::{
    CompiledField, CDA_APP_IID, CDA_COMPUTE, CDA_DEV_IID, CDA_LSB, CDA_NOT_SENT, CDA_VALUE_SENT,
    CHECKSUM_KEY, DI_DOWN, DI_UP, LEN_TOKEN, LEN_VARIABLE, MO_EQUAL, MO_EQUAL_POOL, MO_IGNORE,
    MO_MASK, MO_MSB, OPTION_KEY, PAYLOAD_LENGTH_KEY, TKL_KEY, TOKEN_KEY, UDP_LENGTH_KEY,
};
use crate::rule::fid::HEADER_PLACES;
use crate::rule::{Direction, Fid, Layer, Nature, Rule, RuleId, RuleSet, HEADER_FIELDS};

/// Every header field's key, as bits.
const HEADER_KEYS: u64 = (1 << HEADER_FIELDS) - 1;
/// The header keys of the CoAP layer a rebuilt CoAP header needs (the token may be absent).
const COAP_FIXED: u32 = 0x7C000;
const _: () = assert!(
    IPV6_KEYS | UDP_KEYS | COAP_FIXED as u64 | 1 << TOKEN_KEY == HEADER_KEYS
        && OPTION_KEY >= 32
        && (TKL_KEY as usize) < HEADER_FIELDS
);

/// See [`super::compress_compiled`].
// (The inline attributes in this module were chosen by measuring nostd-check's `.text`: LLVM's
// size heuristics across the LTO boundary leave several hundred bytes on the table otherwise.
// After changing this module, run `python3 nostd-check/inline_search.py`.)
#[inline(never)]
pub(super) fn compress(
    set: &RuleSet<'_>,
    packet: &[u8],
    dir: Direction,
    cfg: &Config,
    out: &mut [u8],
) -> Result<Compressed, CompressError> {
    let mut h = Headers::unparsed(packet, dir, cfg.first_layer);
    h.parse_in_place();
    let mut scan = Scan {
        h: &h,
        cfg,
        pool: set.tables().3,
        checksum: None,
    };
    let compiled = set.index().map(|ix| ix.compiled);
    // The best rule so far: the rule, its total length in bits, its entries, its deepest
    // layer, where its residues end; and whether they are still in `out` (no rule scanned
    // after it).
    let mut best: Option<(&Rule, usize, &[_], Option<Layer>, usize)> = None;
    let mut fresh = false;
    for rule in set.rules() {
        let Nature::Compression(span) = rule.nature else {
            continue;
        };
        // A rule whose ID cannot be written as it is (unchecked sets) is never used.
        let Some(cf) = compiled
            .and_then(|c| c.get(span.range()))
            .filter(|_| rule.id.is_well_formed())
        else {
            continue;
        };
        // (The residues go to `out` from after the rule ID: the best rule's are kept when no
        // rule is scanned after it, else written again.)
        let mut w = Out {
            buf: out,
            at: rule.id.length as usize,
        };
        fresh = false;
        if let Some((residue, layer)) = scan.rule(cf, &mut w) {
            let payload = packet.len() - h.layer_end(layer);
            let total = rule.id.length as usize + residue + payload * 8;
            if best.is_none_or(|b| total < b.1) {
                best = Some((rule, total, cf, layer, w.at));
                fresh = true;
            }
        }
    }
    // No match: the no-compression rule, which writes like a rule with no entry.
    let (rule, total, cf, layer, end) = match best {
        Some(b) => b,
        None => {
            let rule = set.no_compression().ok_or(CompressError::NoMatch)?;
            if !rule.id.is_well_formed() {
                return Err(CompressError::RuleIdNotDecodable {
                    rule: rule.id,
                    read_as: None,
                });
            }
            (
                rule,
                rule.id.length as usize + packet.len() * 8,
                &[][..],
                None,
                0,
            )
        }
    };
    let word = cfg.l2_word.max(1) as usize;
    let needed = (total.div_ceil(word) * word).div_ceil(8);
    if needed > out.len() {
        return Err(CompressError::BufferTooSmall {
            needed,
            capacity: out.len(),
        });
    }
    let id = rule.id;
    let n = id.length as usize;
    let mut w = Out { buf: out, at: 0 };
    let start = h.layer_end(layer);
    // The rule ID, the residues (there, or the scan again, writing), the payload; then zeros
    // to the end of the last byte, which pad to the L2 word.
    let written = w.put(&u64::from(id.value).to_be_bytes(), 64 - n, n)
        && match fresh {
            true => {
                w.at = end;
                true
            }
            false => scan.rule(cf, &mut w).is_some(),
        }
        && w.put(packet, start * 8, (packet.len() - start) * 8);
    let bits = w.at;
    // (The buffer holds `total` bits, checked above, and the second scan matches as the
    // first did: this error is for a broken invariant, never a packet.)
    if !written || bits != total || !w.put(&[], 0, needed * 8 - bits) {
        return Err(CompressError::Write {
            rule: id,
            error: BitError::BufferFull {
                at: bits,
                needed: total,
                available: needed * 8,
            },
        });
    }
    Ok(Compressed {
        rule_id: id,
        bits,
        len: needed,
    })
}

/// A SCHC packet being written: the buffer and the next bit.
struct Out<'o> {
    buf: &'o mut [u8],
    at: usize,
}

impl Out<'_> {
    /// Appends `n` bits of `src` from bit `off`; `false` when the buffer ends first.
    fn put(&mut self, src: &[u8], off: usize, n: usize) -> bool {
        let ok = copy_into(self.buf, self.at, src, off, n).is_some();
        self.at += n;
        ok
    }
}

/// Per-packet matching state: the parsed headers, and the UDP checksum once computed.
struct Scan<'h, 'p> {
    h: &'h Headers<'p>,
    cfg: &'h Config,
    pool: &'h [u8],
    checksum: Option<u16>,
}

impl Scan<'_, '_> {
    /// If the rule of compiled entries `cf` matches, its residue length in bits and the
    /// deepest layer it covers. Every entry must be expressible and match its field; then the
    /// rule's layers must all be in the packet and its entries of this direction must
    /// describe every field of them, once (validated sets describe no field twice). It writes
    /// the residues to `w` as it goes (a write stops at the end of the buffer: the caller
    /// checks that the rule it keeps fits before it uses them).
    fn rule(&mut self, cf: &[CompiledField], w: &mut Out<'_>) -> Option<(usize, Option<Layer>)> {
        let h = self.h;
        let data = h.data();
        let dir = if h.direction() == Direction::Up {
            DI_UP
        } else {
            DI_DOWN
        };
        // Header keys described (any direction / this direction) as bits, options on the top
        // bit (32-bit masks: a device's word); this direction's options counted.
        let (mut all, mut mine, mut options, mut bits) = (0u32, 0u32, 0u32, 0usize);
        for c in cf {
            let (op, key, len, tv, arg) = (c.op(), c.key(), c.len(), c.tv(), u32::from(c.arg()));
            let bit = 1u32 << key.min(31);
            all |= bit;
            if op & MO_MASK == 0 {
                return None;
            }
            if op & dir == 0 {
                continue;
            }
            mine |= bit;
            options += u32::from(key >= OPTION_KEY);
            let f = if key < OPTION_KEY {
                h.place(usize::from(key))
            } else {
                h.option_field(key - OPTION_KEY, c.fp())?
            };
            // The field's first 64 bits: those of a longer field fail on the length first.
            let v = get_bits(data, f.off as usize, f.len);
            let len_ok = match len {
                LEN_VARIABLE => {
                    f.off % 8 == 0
                        && f.len % 8 == 0
                        && (op & MO_MASK != MO_EQUAL || f.len == arg * 8)
                }
                LEN_TOKEN => f.len <= 64,
                l => u32::from(l) == f.len,
            };
            // Equal, MSB and ignore compare the field's top bits with the target value's:
            // all of them, `arg`, none. (A field of at most 64 bits equal to the target value
            // is one that fits it.)
            let matches = match op & MO_MASK {
                MO_EQUAL_POOL => {
                    // (Byte by byte: no `memcmp` linked.)
                    let (start, len) = ((tv >> 16) as usize, (tv & 0xFFFF) as usize);
                    let at = f.off as usize / 8;
                    f.len as usize == len * 8
                        && (0..len).all(|i| {
                            self.pool
                                .get(start + i)
                                .is_some_and(|p| data.get(at + i) == Some(p))
                        })
                }
                mo => {
                    let shift = f.len.saturating_sub(match mo {
                        MO_IGNORE => 0,
                        MO_EQUAL => f.len,
                        MO_MSB => arg,
                        _ => return None,
                    });
                    mo == MO_IGNORE || (shift < 64 && (v ^ tv) >> shift == 0)
                }
            };
            if !(len_ok && matches) {
                return None;
            }
            // The residue: the field's last `sent` bits, after a size prefix for a
            // variable-length value.
            let cda = (op >> 3) & 7;
            let sent = match cda {
                CDA_NOT_SENT => 0,
                CDA_VALUE_SENT => f.len,
                CDA_LSB => f.len.saturating_sub(arg),
                CDA_COMPUTE if self.computed(key)? == v => 0,
                CDA_DEV_IID | CDA_APP_IID => {
                    let iid = if cda == CDA_DEV_IID {
                        self.cfg.dev_iid
                    } else {
                        self.cfg.app_iid
                    };
                    if f.len != 64 || iid.map(u64::from_be_bytes) != Some(v) {
                        return None;
                    }
                    0
                }
                _ => return None,
            } as usize;
            if cda == CDA_VALUE_SENT && len == LEN_VARIABLE {
                let (prefix, n) = size_prefix(sent / 8).ok()?;
                w.put(&prefix.to_be_bytes(), 64 - n as usize, n as usize);
                bits += n as usize;
            }
            w.put(data, (f.off + f.len) as usize - sent, sent);
            bits += sent;
        }
        // The deepest layer of all entries, the first of this direction's.
        const IPV6: u32 = IPV6_KEYS as u32;
        const UDP: u32 = UDP_KEYS as u32;
        let layer = if all & !(IPV6 | UDP) != 0 {
            Some(Layer::Coap)
        } else if all & UDP != 0 {
            Some(Layer::Udp)
        } else if all != 0 {
            Some(Layer::Ipv6)
        } else {
            None
        };
        // The keys of the layers before the packet's first, which this direction must not
        // describe.
        let below = match h.first() {
            Layer::Ipv6 => 0,
            Layer::Udp => IPV6,
            Layer::Coap => IPV6 | UDP,
        };
        // Every field once: an empty token (TKL 0) described is not among the packet's fields.
        let empty_token =
            u32::from(h.has(Layer::Coap) && h.tkl() == 0 && mine & (1 << TOKEN_KEY) != 0);
        let count = (mine & HEADER_KEYS as u32).count_ones() - empty_token + options;
        if layer.is_some_and(|l| !h.has(l))
            || mine & below != 0
            || count as usize != h.field_count(layer)
        {
            return None;
        }
        Some((bits, layer))
    }

    /// The value decompression computes for the computed field of key `key`; `None` for a
    /// field it does not compute or cannot here.
    #[inline(never)]
    fn computed(&mut self, key: u16) -> Option<u64> {
        let h = self.h;
        let len = h.data().len();
        let v = match key {
            PAYLOAD_LENGTH_KEY => u16::try_from(len.wrapping_sub(IPV6_HEADER_LEN)).ok()?,
            UDP_LENGTH_KEY => u16::try_from(len.checked_sub(h.udp_start())?).ok()?,
            CHECKSUM_KEY if h.first() == Layer::Ipv6 => {
                *self.checksum.get_or_insert_with(|| udp_checksum(h.data()))
            }
            _ => return None,
        };
        Some(u64::from(v))
    }
}

/// See [`super::decompress_compiled`].
pub(super) fn decompress(
    set: &RuleSet<'_>,
    schc: &[u8],
    bit_len: usize,
    dir: Direction,
    cfg: &Config,
    out: &mut [u8],
) -> Result<Decompressed, DecompressError> {
    let end = bit_len.min(schc.len() * 8);
    // A device holds a few prefix-free rules: tried in order, not searched.
    let rule = set
        .lookup_linear(schc, end)
        .ok_or(DecompressError::UnknownRuleId)?;
    let id = rule.id;
    let start = id.length as usize;
    let limit = cfg.max_packet_size.min(out.len());
    let dst = out.get_mut(..limit).unwrap_or(&mut []);
    match rule.nature {
        Nature::Fragmentation(_) => Err(DecompressError::NotCompression(id)),
        Nature::NoCompression => {
            // The packet's bytes after the rule ID, aligned or not.
            let len = end.saturating_sub(start) / 8;
            if len > dst.len() {
                return Err(DecompressError::TooLong { rule: id, limit });
            }
            copy_into(dst, 0, schc, start, len * 8);
            Ok(Decompressed { rule_id: id, len })
        }
        Nature::Compression(span) => {
            let cf = set.index().and_then(|ix| ix.compiled.get(span.range()));
            let rebuilt = cf.and_then(|cf| {
                Rebuild {
                    id,
                    cf,
                    input: schc,
                    end,
                    dir,
                    cfg,
                    pool: set.tables().3,
                }
                .run(start, dst)
            });
            match rebuilt {
                Some(len) => Ok(Decompressed { rule_id: id, len }),
                // Any error, or an entry the form cannot express.
                None => Err(DecompressError::BadField {
                    rule: id,
                    entry: 0,
                    fid: cf
                        .and_then(|c| c.first())
                        .and_then(compiled_fid)
                        .unwrap_or(Fid::Ipv6Version),
                    reason: "the compiled form cannot rebuild this packet",
                }),
            }
        }
    }
}

/// Where a decoded field's value comes from.
#[derive(Debug, Clone, Copy)]
enum Val {
    /// The value, right-aligned (at most 64 bits).
    Word(u64),
    /// The SCHC packet's bits from this offset.
    Input(usize),
    /// The pool's bytes from this offset.
    Pool(usize),
}

/// The rebuilding of one SCHC packet of a compression rule.
struct Rebuild<'a> {
    id: RuleId,
    cf: &'a [CompiledField],
    input: &'a [u8],
    /// The SCHC packet's length in bits.
    end: usize,
    dir: Direction,
    cfg: &'a Config,
    pool: &'a [u8],
}

impl Rebuild<'_> {
    /// Rebuilds the packet whose residues start at bit `start` into `out`: its length, or
    /// `None` for anything the compiled form does not rebuild or any error (the caller
    /// reports it).
    fn run(&self, start: usize, out: &mut [u8]) -> Option<usize> {
        let first = self.cfg.first_layer;
        // Where each layer starts (bytes): the fields' places count from there.
        let udp_start = if first == Layer::Ipv6 {
            IPV6_HEADER_LEN
        } else {
            0
        };
        let coap_start = udp_start
            + if first <= Layer::Udp {
                UDP_HEADER_LEN
            } else {
                0
            };
        let starts = [0, udp_start, coap_start];
        // The options written so far: the last's number and (number, position) key, and
        // where the next goes (bits; set by the first pass).
        let (mut number, mut last, mut at) = (0u16, 0u32, 0usize);
        let dir = if self.dir == Direction::Up {
            DI_UP
        } else {
            DI_DOWN
        };
        let mut pass = 0;
        loop {
            // One pass over the entries: their values decoded in rule order (residues are),
            // header fields written at their places on the first, and the next option found.
            let mut pos = start;
            let (mut all, mut mine, mut computed, mut applicable) = (0u32, 0u32, 0u8, 0usize);
            let (mut tkl, mut token_bits) = (None, 0);
            let mut next: Option<(u32, u32, Val)> = None;
            for c in self.cf {
                let (op, key) = (c.op(), c.key());
                if op & MO_MASK == 0 {
                    return None;
                }
                let bit = 1u32 << key.min(31);
                all |= bit;
                if op & dir == 0 {
                    continue;
                }
                // As many entries as the interpreter decodes.
                applicable += 1;
                if applicable > MAX_DECODED {
                    return None;
                }
                let (bits, val) = self.decode(c, &mut pos, tkl)?;
                if (op >> 3) & 7 == CDA_COMPUTE {
                    // (No option is computed.)
                    if usize::from(key) >= HEADER_FIELDS {
                        return None;
                    }
                    computed |= computed_key_bit(key);
                }
                mine |= bit;
                if key >= OPTION_KEY {
                    let k = (u32::from(key - OPTION_KEY) << 8) | u32::from(c.fp());
                    if k > last && next.is_none_or(|n| k < n.0) {
                        next = Some((k, bits, val));
                    }
                    continue;
                }
                let (Val::Word(v), true) = (val, bits <= 64) else {
                    return None;
                };
                if key == TKL_KEY {
                    tkl = Some(v);
                }
                if key == TOKEN_KEY {
                    token_bits = bits;
                }
                let place = HEADER_PLACES.get(usize::from(key))?;
                if pass == 0 {
                    // The field's length (the token's: its own, which must be the TKL's, checked
                    // below) of its value.
                    let n = match place.len {
                        0 => bits,
                        l => u32::from(l),
                    };
                    let base = starts.get(usize::from(place.layer)).copied().unwrap_or(0);
                    let to = base * 8 + usize::from(place.offset(self.dir));
                    self.put(out, to, Val::Word(v), n)?;
                }
            }
            if pass == 0 {
                at = self.check(all, mine, tkl.unwrap_or(0), token_bits, starts)?;
            }
            pass += 1;
            let Some((k, bits, val)) = next else {
                // Every option written: the payload marker when a payload follows, the payload.
                let payload = self.end.checked_sub(pos)? / 8;
                if all & !(IPV6_KEYS as u32 | UDP_KEYS as u32) != 0 && payload > 0 {
                    self.put(out, at, Val::Word(0xFF), 8)?;
                    at += 8;
                }
                copy_into(out, at, self.input, pos, payload * 8)?;
                let total = at / 8 + payload;
                patch_computed(out, total, first, udp_start, computed, self.id).ok()?;
                return Some(total);
            };
            // The option (`bits` a whole number of bytes): its delta and length nibbles and
            // their extensions, then its value.
            if bits % 8 != 0 {
                return None;
            }
            let n = (k >> 8) as u16;
            let (dn, dx, dxl) = nibble(usize::from(n.checked_sub(number)?))?;
            let (ln, lx, lxl) = nibble(bits as usize / 8)?;
            let head = (u64::from((dn << 4) | ln) << (dxl + lxl)) | u64::from((dx << lxl) | lx);
            let head_bits = 8 + dxl + lxl;
            self.put(out, at, Val::Word(head), head_bits)?;
            at += head_bits as usize;
            self.put(out, at, val, bits)?;
            at += bits as usize;
            (number, last) = (n, k);
        }
    }

    /// The checks of the first pass: every field of the layers written described, the token
    /// as long as the TKL says, no field below the first layer. Where the options start
    /// (the end of the rebuilt headers, in bits).
    fn check(
        &self,
        all: u32,
        mine: u32,
        tkl: u64,
        token_bits: u32,
        starts: [usize; 3],
    ) -> Option<usize> {
        const IPV6: u32 = IPV6_KEYS as u32;
        const UDP: u32 = UDP_KEYS as u32;
        let first = self.cfg.first_layer;
        if (first > Layer::Ipv6 && mine & IPV6 != 0) || (first > Layer::Udp && mine & UDP != 0) {
            return None;
        }
        let coap = all & !(IPV6 | UDP) != 0;
        let udp = coap || all & UDP != 0;
        let ipv6 = udp || all & IPV6 != 0;
        let (ipv6, udp) = (ipv6 && first == Layer::Ipv6, udp && first <= Layer::Udp);
        let needed = if ipv6 { IPV6 } else { 0 }
            | if udp { UDP } else { 0 }
            | if coap { COAP_FIXED } else { 0 };
        let token = mine & (1 << TOKEN_KEY) != 0;
        if mine & needed != needed
            || (coap && (tkl > 8 || (!token && tkl != 0)))
            || (token && u64::from(token_bits) != tkl * 8)
        {
            return None;
        }
        Some(if coap {
            starts[2] * 8 + 32 + tkl as usize * 8
        } else if udp {
            (starts[1] + UDP_HEADER_LEN) * 8
        } else if ipv6 {
            IPV6_HEADER_LEN * 8
        } else {
            0
        })
    }

    /// Writes `n` bits of `val` at bit `at` of `out` (the last `n` of a word).
    #[inline(always)]
    fn put(&self, out: &mut [u8], at: usize, val: Val, n: u32) -> Option<()> {
        let n = n as usize;
        match val {
            Val::Word(x) => copy_into(out, at, &x.to_be_bytes(), 64usize.checked_sub(n)?, n),
            Val::Input(off) => copy_into(out, at, self.input, off, n),
            Val::Pool(from) => {
                let value = self.pool.get(from..from.checked_add(n / 8)?)?;
                copy_into(out, at, value, 0, n)
            }
        }
    }

    /// The length in bits of the field of entry `c` (an applicable entry; `tkl`: the TKL
    /// decoded before it, if any) and where its value comes from, reading its residue from
    /// bit `pos` on; `None` for what the compiled form does not rebuild.
    #[inline(always)]
    fn decode(&self, c: &CompiledField, pos: &mut usize, tkl: Option<u64>) -> Option<(u32, Val)> {
        let (op, len, tv, arg) = (c.op(), c.len(), c.tv(), c.arg());
        let (mo, cda) = (op & MO_MASK, (op >> 3) & 7);
        // `n` bits of the residue: where they start.
        let mut take = |n: usize| {
            let at = *pos;
            let to = at.checked_add(n).filter(|&e| e <= self.end)?;
            *pos = to;
            Some(at)
        };
        let bits: u32 = match len {
            // The TKL, decoded before (validated sets).
            LEN_TOKEN => u32::try_from(tkl?.checked_mul(8)?).ok()?,
            LEN_VARIABLE => match cda {
                CDA_NOT_SENT if mo == MO_EQUAL_POOL => (tv & 0xFFFF) as u32 * 8,
                CDA_NOT_SENT => u32::from(arg) * 8,
                CDA_VALUE_SENT => {
                    // The size prefix: 4 bits, 12 or 28 when the shorter ones are all ones.
                    let mut n = 4;
                    loop {
                        let size = get_bits(self.input, take(n)?, n as u32) as u32;
                        if size != (1 << n) - 1 || n == 16 {
                            break size * 8;
                        }
                        n *= 2;
                    }
                }
                _ => return None,
            },
            l => u32::from(l),
        };
        let val = match cda {
            CDA_NOT_SENT if mo == MO_EQUAL_POOL => Val::Pool((tv >> 16) as usize),
            // A token's target value must fit its TKL bytes.
            CDA_NOT_SENT if bits < 64 && tv >> bits != 0 => return None,
            CDA_NOT_SENT => Val::Word(tv),
            CDA_VALUE_SENT | CDA_LSB => {
                let sent = if cda == CDA_LSB {
                    bits.checked_sub(u32::from(arg))?
                } else {
                    bits
                };
                let off = take(sent as usize)?;
                if sent > 64 {
                    Val::Input(off)
                } else {
                    // LSB: the target value's top bits, then the residue.
                    let top = if cda == CDA_LSB && arg != 0 {
                        tv.checked_shr(sent)
                            .unwrap_or(0)
                            .checked_shl(sent)
                            .unwrap_or(0)
                    } else {
                        0
                    };
                    Val::Word(top | get_bits(self.input, off, sent))
                }
            }
            CDA_COMPUTE => Val::Word(0),
            CDA_DEV_IID => Val::Word(u64::from_be_bytes(self.cfg.dev_iid?)),
            CDA_APP_IID => Val::Word(u64::from_be_bytes(self.cfg.app_iid?)),
            _ => return None,
        };
        Some((bits, val))
    }
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
