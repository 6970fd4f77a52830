//! The rule matcher, compression and decompression (RFC 8724 §7, RFC 8824).
//!
//! [`compress`] parses the packet once ([`Headers`]), tries every compression rule of the set,
//! keeps the one that gives the shortest SCHC packet (ties go to the first in the set), and
//! writes `Rule ID ‖ residues (rule order) ‖ payload (unaligned) ‖ zero padding` into the
//! caller's buffer. With no match it falls back to the no-compression rule.
//!
//! [`decompress`] reads the Rule ID, decodes the residues in rule order, rebuilds the headers
//! in wire order, appends the payload, and computes lengths and the UDP checksum last.
//!
//! Neither allocates: the only state is a fixed-size table of decoded fields on the stack.

use heapless::Vec;
use thiserror::Error;

use crate::bits::{get_bits, size_prefix_len, BitAcc, BitError, BitReader, BitWriter};
use crate::packet::{
    FieldRef, Headers, FIELD_SLOTS, IPV6_HEADER_LEN, LENGTH_IPV6, LENGTH_UDP, MAX_OPTIONS,
    UDP_HEADER_LEN,
};
use crate::rule::compiled::{
    CompiledField, RulePlan, CDA_APP_IID, CDA_COMPUTE, CDA_DEV_IID, CDA_LSB, CDA_NOT_SENT,
    CDA_VALUE_SENT, CHECKSUM_KEY, CHECK_CHECKSUM, CHECK_PAYLOAD_LENGTH, CHECK_UDP_LENGTH, DI_DOWN,
    DI_UP, LEN_TOKEN, LEN_VARIABLE, MO_EQUAL, MO_EQUAL_POOL, MO_IGNORE, MO_MASK, MO_MSB,
    OPTION_KEY, OUT_FIELD, OUT_TOKEN, PAYLOAD_LENGTH_KEY, TOKEN_KEY, UDP_LENGTH_KEY,
};
use crate::rule::index::{KeyHasher, RuleIndex, GROUP_DOWN, MAX_KEYS};
use crate::rule::{
    fits_right_aligned, Cda, Direction, Fid, FieldDesc, FieldLength, Layer, MatchingOperator,
    Nature, Rule, RuleId, RuleSet, HEADER_FIELDS,
};

mod device;

/// Settings shared by compression and decompression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// L2 word in bits: compressed packets are zero-padded to a multiple of it (default 8).
    ///
    /// [`decompress`] takes whole bytes and drops the trailing bits that do not make a byte,
    /// which removes any padding of fewer than 8 bits: enough when the L2 word divides 8 (1, 2,
    /// 4 or 8 bits). With another word, padding to the word and then to whole bytes may reach a
    /// byte (a 7-bit word pads 8 bits to 14, written as 2 bytes): the receiver must then pass
    /// [`decompress_bits`] the bit length L2 delivered (the exact length, or for a word under
    /// 8 bits the padded one).
    pub l2_word: u8,
    /// Largest packet decompression may produce, in bytes (default 1280).
    pub max_packet_size: usize,
    /// The device's IPv6 IID, for the DevIID action (from the L2 address; see RFC 9011 §5.3).
    pub dev_iid: Option<[u8; 8]>,
    /// The application's IPv6 IID, for the AppIID action.
    pub app_iid: Option<[u8; 8]>,
    /// The first header of the packets: `Layer::Ipv6` (default) for IPv6 packets,
    /// `Layer::Udp` or `Layer::Coap` where SCHC compresses from that layer on (for example
    /// OSCORE inner compression of a bare CoAP message).
    pub first_layer: Layer,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            l2_word: 8,
            max_packet_size: 1280,
            dev_iid: None,
            app_iid: None,
            first_layer: Layer::Ipv6,
        }
    }
}

/// The result of [`compress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compressed {
    /// The rule used.
    pub rule_id: RuleId,
    /// Length of the SCHC packet in bits, before padding.
    pub bits: usize,
    /// Bytes written to the output (padded to the L2 word, rounded up to a byte).
    pub len: usize,
}

/// The result of [`decompress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decompressed {
    /// The rule used.
    pub rule_id: RuleId,
    /// Bytes of the rebuilt packet written to the output.
    pub len: usize,
}

/// Why a packet could not be compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CompressError {
    /// No compression rule matches and the set has no no-compression rule.
    #[error("no compression rule matches the packet and the rule set has no no-compression rule")]
    NoMatch,
    /// The output buffer is too small.
    #[error("output buffer of {capacity} bytes is too small: {needed} bytes needed")]
    BufferTooSmall {
        /// Bytes the SCHC packet needs.
        needed: usize,
        /// Bytes available.
        capacity: usize,
    },
    /// The chosen rule's ID would not read back as that rule: it is not well formed (over 32
    /// bits, or a value that does not fit), or, in a set built with
    /// [`RuleSet::new_unchecked`], another rule's ID is a prefix of it or prefixed by it.
    /// Decompression would use another rule (or none); [`RuleSet::validate`] names the fault.
    #[error("rule {rule}: its ID would be read back as {}: rule IDs must be well formed and prefix-free", ReadAs(*.read_as))]
    RuleIdNotDecodable {
        /// The rule chosen.
        rule: RuleId,
        /// The rule decompression would find instead (`None`: no rule).
        read_as: Option<RuleId>,
    },
    /// An internal write failed (a bug: sizes are checked before writing).
    #[error("rule {rule}: writing the SCHC packet failed: {error}")]
    Write {
        /// The rule being written.
        rule: RuleId,
        /// The bit-level error.
        error: BitError,
    },
}

/// Why a SCHC packet could not be decompressed. Bit offsets count from the start of the SCHC
/// packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DecompressError {
    /// No rule ID of the set is a prefix of the packet.
    #[error("no rule of the set matches the rule ID at the start of the packet")]
    UnknownRuleId,
    /// The rule is a fragmentation rule: reassemble first.
    #[error("rule {0} is a fragmentation rule, not a compression rule")]
    NotCompression(RuleId),
    /// The set holds no field descriptors for the rule: tables exported `--compiled-only`,
    /// which only `decompress_compiled` reads.
    #[error("rule {0}: the set holds no field descriptors for it (compiled-only tables: use decompress_compiled)")]
    NoDescriptors(RuleId),
    /// A residue runs past the end of the packet.
    #[error("rule {rule}, entry {entry} ({fid}): residue truncated at bit {bit}: {needed} bits needed, {available} left")]
    Truncated {
        /// The rule.
        rule: RuleId,
        /// Index of the entry in the rule.
        entry: usize,
        /// Its field.
        fid: Fid,
        /// Bit offset of the residue.
        bit: usize,
        /// Bits needed.
        needed: usize,
        /// Bits left.
        available: usize,
    },
    /// A mapping-sent index past the end of the target-value list.
    #[error("rule {rule}, entry {entry} ({fid}): mapping index {index} at bit {bit} is past the list of {count} values")]
    MappingIndex {
        /// The rule.
        rule: RuleId,
        /// Index of the entry in the rule.
        entry: usize,
        /// Its field.
        fid: Fid,
        /// Bit offset of the index.
        bit: usize,
        /// The index received.
        index: u64,
        /// Number of target values.
        count: usize,
    },
    /// The rebuilt packet would exceed the size limit or the output buffer.
    #[error(
        "rule {rule}: the packet would exceed {limit} bytes (maximum packet size or output buffer)"
    )]
    TooLong {
        /// The rule.
        rule: RuleId,
        /// The limit in bytes.
        limit: usize,
    },
    /// The rule has no descriptor for a field the packet needs in this direction.
    #[error("rule {rule} describes no {fid} (position {fp}) for this direction")]
    MissingField {
        /// The rule.
        rule: RuleId,
        /// The field.
        fid: Fid,
        /// Its position.
        fp: u8,
    },
    /// A DevIID/AppIID action without the IID configured.
    #[error("rule {rule}, entry {entry} ({fid}): the IID is not configured")]
    MissingIid {
        /// The rule.
        rule: RuleId,
        /// Index of the entry in the rule.
        entry: usize,
        /// Its field.
        fid: Fid,
    },
    /// A field whose length cannot be rebuilt (token not matching TKL, option not whole bytes,
    /// target value wider than the field, more fields than the decoder tracks).
    #[error("rule {rule}, entry {entry} ({fid}): {reason}")]
    BadField {
        /// The rule.
        rule: RuleId,
        /// Index of the entry in the rule.
        entry: usize,
        /// Its field.
        fid: Fid,
        /// What is wrong.
        reason: &'static str,
    },
}

/// "rule 3/4" or "no rule", for [`CompressError::RuleIdNotDecodable`].
struct ReadAs(Option<RuleId>);

impl core::fmt::Display for ReadAs {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(id) => write!(f, "rule {id}"),
            None => f.write_str("no rule"),
        }
    }
}

/// Why a compression rule does not match a packet: the first descriptor (by its index in the
/// rule, its field and the field's bit offset in the packet) that fails, or the rule's layers.
/// [`explain`] gives it for every rule of a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Mismatch {
    /// The set holds no descriptors for the rule (tables exported `--compiled-only`: match
    /// them with `compress_compiled`).
    #[error("the set holds no field descriptors for this rule (compiled-only tables)")]
    NoDescriptors,
    /// The packet has no such field.
    #[error("entry {entry} ({fid}, position {fp}): the packet has no such field")]
    Absent {
        /// Index of the entry in the rule.
        entry: usize,
        /// Its field.
        fid: Fid,
        /// Its position.
        fp: u8,
    },
    /// The field's length is not the descriptor's.
    #[error("entry {entry} ({fid}): the packet's field at bit {bit} is {bits} bits long, not the rule's length")]
    Length {
        /// Index of the entry in the rule.
        entry: usize,
        /// Its field.
        fid: Fid,
        /// Bit offset of the field in the packet.
        bit: u32,
        /// The field's length in the packet.
        bits: u32,
    },
    /// The matching operator fails: the value differs from the target value (equal), from its
    /// most significant bits (MSB), or from every value of the list (match-mapping).
    #[error("entry {entry} ({fid}): the value at bit {bit} fails the matching operator")]
    Value {
        /// Index of the entry in the rule.
        entry: usize,
        /// Its field.
        fid: Fid,
        /// Bit offset of the field in the packet.
        bit: u32,
    },
    /// The action cannot rebuild this value: a computed length or checksum that is not the
    /// packet's, an IID that is not the configured one, a value too long to send.
    #[error("entry {entry} ({fid}): the action cannot rebuild the value at bit {bit}")]
    Action {
        /// Index of the entry in the rule.
        entry: usize,
        /// Its field.
        fid: Fid,
        /// Bit offset of the field in the packet.
        bit: u32,
    },
    /// A field described twice in this direction, or a `fl-token-length` token before its
    /// TKL (possible only in unchecked sets).
    #[error("entry {entry} ({fid}): the field is described twice, or before the TKL it needs")]
    Order {
        /// Index of the entry in the rule.
        entry: usize,
        /// Its field.
        fid: Fid,
    },
    /// The rule describes a layer the packet does not have.
    #[error("the rule describes {0:?} fields, and the packet has no {0:?} header")]
    Layer(Layer),
    /// Every descriptor matches, but the packet has other fields in the rule's layers ("all
    /// and only").
    #[error("the rule describes {described} fields of its layers, the packet has {present}")]
    Count {
        /// Fields the rule describes in this direction.
        described: usize,
        /// Fields the packet has in those layers.
        present: usize,
    },
}

/// Tells, for every compression rule of `set` in set order, whether it matches `packet` going
/// `dir` (its residue length in bits) or why not: `f(rule, result)`. It does not compress, and
/// it does not use the rule index (every rule is tried). For a packet that [`compress`] sends
/// under the no-compression rule or refuses with [`CompressError::NoMatch`], it says which
/// descriptor of which rule stands in the way.
pub fn explain(
    set: &RuleSet<'_>,
    packet: &[u8],
    dir: Direction,
    cfg: &Config,
    mut f: impl FnMut(RuleId, Result<usize, Mismatch>),
) {
    let h = Headers::parse_from(packet, dir, cfg.first_layer);
    let mut m = Matcher::new(&h, cfg);
    for rule in set.rules() {
        if matches!(rule.nature, Nature::Compression(_)) {
            f(rule.id, m.match_rule(set, rule).map(|(bits, _)| bits));
        }
    }
}

/// Compresses `packet` going `dir` with the best matching rule of `set` into `out`: through
/// the compiled form and plans in validated sets, the interpreter for what they do not cover.
pub fn compress<'a>(
    set: &RuleSet<'a>,
    packet: &[u8],
    dir: Direction,
    cfg: &Config,
    out: &mut [u8],
) -> Result<Compressed, CompressError> {
    let mut h = Headers::unparsed(packet, dir, cfg.first_layer);
    // (With what plans ask of every rule: the lengths, layers and field counts.)
    h.parse_with::<true>();
    let mut m = Matcher::new(&h, cfg);
    // The best rule so far: its total length, deepest layer, and how it matched: through its
    // compiled entries (and the entries that send a residue, as bits, from its plan) or the
    // interpreter.
    let mut best: Option<(&Rule, usize, Option<Layer>, Written<'a>)> = None;
    // The compiled form, trusted only in a validated set (which `validate` checked it against)
    // unless the caller asked for it alone.
    let compiled = set
        .index()
        .map(|ix| ix.compiled)
        .filter(|c| !c.is_empty() && set.is_validated());
    let pool = set.tables().3;
    // The rules' matching plans, trusted as the compiled form is.
    let plans = set
        .index()
        .map(|ix| ix.plans)
        .filter(|p| !p.is_empty() && set.is_validated());
    let up = usize::from(dir == Direction::Down);
    let ids_checked = set.is_validated();
    // The rules that can match, in set order, from the index; without one (or with too many
    // candidates), every rule. The same rules match either way, tried in the same order. An
    // index without key fields (rules that no field tells apart, as on most devices) makes
    // every compression rule a candidate: no need to probe it.
    let mut cands = Vec::new();
    let indexed = set.index().is_some_and(|ix| {
        ix.keys.first().is_some_and(|k| k.fp != 0) && candidates(ix, &h, &mut cands)
    });
    let rules = set.rules();
    let n = if indexed { cands.len() } else { rules.len() };
    // One loop over either, its body inline.
    for k in 0..n {
        let i = match indexed {
            true => cands.get(k).map_or(usize::MAX, |&i| i as usize),
            false => k,
        };
        let Some(rule) = rules.get(i) else {
            continue;
        };
        let Nature::Compression(span) = rule.nature else {
            continue;
        };
        // A rule whose ID cannot be written as it is (unchecked sets) is never used. (A
        // validated set's IDs are.)
        if !(ids_checked || rule.id.is_well_formed()) {
            continue;
        }
        let cf = compiled.and_then(|c| c.get(span.range()));
        let plan = plans.and_then(|p| p.get(2 * i + up)).filter(|p| p.usable);
        let fast = cf.and_then(|cf| match plan {
            Some(plan) => m.match_plan(plan, cf, pool),
            None => m.match_compiled(cf, pool),
        });
        let (result, how) = match (fast, cf) {
            (Some(r), Some(cf)) => (
                r,
                match plan {
                    Some(p) if p.listed => Written::Planned(cf, p),
                    p => Written::Compiled(cf, p.map(|p| p.sends)),
                },
            ),
            _ => (m.match_rule(set, rule).ok(), Written::Interpreted),
        };
        if let Some((residue, layer)) = result {
            let payload = packet.len() - h.layer_end(layer);
            let total = rule.id.length as usize + residue + payload * 8;
            if best.is_none_or(|b| total < b.1) {
                best = Some((rule, total, layer, how));
            }
        }
    }
    // No match: the no-compression rule, which writes like a rule that covers no layer.
    let (rule, total, layer, how) = match best {
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
                None,
                Written::Interpreted,
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
    // The SCHC packet, its length in bits and bytes; a bit-level error becomes one
    // `CompressError::Write` (one conversion, not one per write: less code on a device).
    let mut emit = || -> Result<(usize, usize), BitError> {
        let mut w = BitAcc::new(out);
        w.write(u64::from(rule.id.value), u32::from(rule.id.length))?;
        // Only value-sent, mapping-sent and LSB write a residue: the other descriptors (most of
        // a typical rule) are skipped before their field is looked up.
        match how {
            Written::Planned(cf, p) => {
                let data = h.data();
                for o in p.outs.get(..usize::from(p.n_outs)).unwrap_or(&[]) {
                    match o.kind {
                        OUT_FIELD => {
                            let at = h.layer_start(o.layer) * 8 + usize::from(o.off);
                            w.copy_bits(data, at, usize::from(o.len))
                        }
                        OUT_TOKEN => {
                            let at = h.layer_start(Layer::Coap as u8 - 1) * 8 + 32;
                            w.copy_bits(data, at, usize::from(h.tkl()) * 8)
                        }
                        _ => cf
                            .get(usize::from(o.entry))
                            .map_or(Ok(()), |c| m.write_compiled(c, &mut w)),
                    }?;
                }
            }
            Written::Compiled(cf, Some(mut sends)) => {
                while let Some(c) = cf.get(sends.trailing_zeros() as usize) {
                    sends &= sends.wrapping_sub(1);
                    m.write_compiled(c, &mut w)?;
                }
            }
            Written::Compiled(cf, _) => {
                let d = if dir == Direction::Up { DI_UP } else { DI_DOWN };
                for c in cf {
                    if c.op() & d != 0 && matches!((c.op() >> 3) & 7, CDA_VALUE_SENT | CDA_LSB) {
                        m.write_compiled(c, &mut w)?;
                    }
                }
            }
            Written::Interpreted => {
                for fd in set.fields(rule) {
                    if matches!(fd.cda, Cda::ValueSent | Cda::MappingSent | Cda::Lsb)
                        && fd.di.applies(dir)
                    {
                        m.write_residue(set, fd, &mut w)?;
                    }
                }
            }
        }
        let start = h.layer_end(layer);
        w.copy_bits(packet, start * 8, (packet.len() - start) * 8)?;
        let bits = w.position();
        // `flush` fills the last byte with zeros: padding to a word that divides 8 adds nothing.
        if 8 % word != 0 {
            w.pad_to(word as u32)?;
        }
        let len = w.flush()?;
        Ok((bits, len))
    };
    let (bits, len) = emit().map_err(|error| CompressError::Write {
        rule: rule.id,
        error,
    })?;
    // In a set that is not prefix-free (unchecked), the ID may read back as another rule, with
    // the exact length or with the padding: refuse rather than let decompression use it.
    let written = out.get(..len).unwrap_or(&[]);
    // A validated set is prefix-free with well-formed IDs: nothing to check. The compiled-only
    // path trusts its static set as validation leaves it.
    let padded = (len * 8 != bits).then_some(len * 8);
    let lengths = core::iter::once(bits)
        .chain(padded)
        .filter(|_| !set.is_validated());
    for bit_len in lengths {
        let read = set.lookup_prefix(written, bit_len);
        if !read.is_some_and(|r| core::ptr::eq(r, rule)) {
            return Err(CompressError::RuleIdNotDecodable {
                rule: rule.id,
                read_as: read.map(|r| r.id),
            });
        }
    }
    Ok(Compressed {
        rule_id: rule.id,
        bits,
        len,
    })
}

/// [`compress`] with the compiled form of the set's index ([`crate::rule::compiled`]) only,
/// for a device that links no interpreter: rules with an entry the form cannot express are
/// never used, and a set without a compiled table compresses nothing (the no-compression
/// rule). It trusts the set as validation leaves it (no field described twice, the TKL
/// before its token, target values that fit, prefix-free rule IDs) even when made with
/// [`RuleSet::new_unchecked`]: check such static tables with [`RuleSet::validate`] in a test.
/// It tries every rule in set order (a device holds a few) rather than probe the index, and
/// uses no matching plans.
/// On a validated set whose rules all compile it gives what [`compress`] gives.
pub fn compress_compiled<'a>(
    set: &RuleSet<'a>,
    packet: &[u8],
    dir: Direction,
    cfg: &Config,
    out: &mut [u8],
) -> Result<Compressed, CompressError> {
    device::compress(set, packet, dir, cfg, out)
}

/// How compression matched the rule it writes, hence how it writes the residues.
#[derive(Debug, Clone, Copy)]
enum Written<'a> {
    /// Through the rule's compiled entries; with a plan, the entries that send a residue.
    Compiled(&'a [CompiledField], Option<u64>),
    /// Through the rule's plan, which lists its residue writes ([`RulePlan::outs`]).
    Planned(&'a [CompiledField], &'a RulePlan),
    /// Through the interpreter (or the no-compression rule).
    Interpreted,
}

/// The most candidate rules [`candidates`] gathers; with more, compression tries every rule.
const MAX_CANDIDATES: usize = 64;

/// The indices of the rules that can match the packet `h`, sorted, from the index `ix`: the
/// rules of each group of the packet's direction whose hash equals the packet's for that group.
/// `false` when there are more than [`MAX_CANDIDATES`].
fn candidates(ix: &RuleIndex<'_>, h: &Headers<'_>, out: &mut Vec<u32, MAX_CANDIDATES>) -> bool {
    let data = h.data();
    let dir = if h.direction() == Direction::Down {
        GROUP_DOWN
    } else {
        0
    };
    let keys = ix.key_fields();
    'groups: for group in ix.groups() {
        if group & GROUP_DOWN != dir {
            continue;
        }
        let mut hasher = KeyHasher::new(group);
        for (b, k) in keys.iter().enumerate().take(MAX_KEYS) {
            if group & (1 << b) == 0 {
                continue;
            }
            // A field the packet lacks: no rule of the group can match.
            match h.field(k.fid, k.fp) {
                Some(f) if f.len <= 64 => {
                    hasher.number(f.len, get_bits(data, f.off as usize, f.len))
                }
                Some(f) if f.off % 8 == 0 && f.len % 8 == 0 => {
                    hasher.bytes(data.get(f.bytes()).unwrap_or(&[]))
                }
                _ => continue 'groups,
            }
        }
        let hash = hasher.finish();
        let from = ix.entries.partition_point(|e| e.hash < hash);
        for e in ix.entries.iter().skip(from).take_while(|e| e.hash == hash) {
            if out.push(e.rule).is_err() {
                return false;
            }
        }
    }
    // Set order, once each (a hash may repeat across groups). Insertion sort: a few entries,
    // and less code than the library sort on a device.
    for i in 1..out.len() {
        let mut j = i;
        while j > 0 && out.get(j - 1) > out.get(j) {
            out.swap(j - 1, j);
            j -= 1;
        }
    }
    let mut last = None;
    out.retain(|&r| last.replace(r) != Some(r));
    true
}

/// The deepest layer a rule describes (in any direction).
fn rule_depth(fields: &[FieldDesc]) -> Option<Layer> {
    fields.iter().map(|f| f.fid.layer()).max()
}

/// Width in bits of a mapping-sent index for a list of `n` values.
#[inline]
fn index_width(n: usize) -> u32 {
    if n <= 1 {
        0
    } else {
        usize::BITS - (n - 1).leading_zeros()
    }
}

/// `tv` read as a big-endian number (its low 64 bits).
#[inline]
fn tv_u64(tv: &[u8]) -> u64 {
    if let Some(w) = tv.last_chunk::<8>() {
        return u64::from_be_bytes(*w);
    }
    let skip = tv.len().saturating_sub(8);
    tv.iter()
        .skip(skip)
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

/// Bit `i` (from the most significant) of `tv` right-aligned in `width` bits.
#[inline]
fn tv_bit(tv: &[u8], width: usize, i: usize) -> u64 {
    let tv_bits = tv.len() * 8;
    if i + tv_bits < width {
        0
    } else {
        get_bits(tv, i + tv_bits - width, 1)
    }
}

/// Whether the field `f` of `data` equals `tv` under the field's length kind. Always inlined
/// on hosts (its call overhead was a third of its cost there); left to the compiler on devices,
/// where three inlined copies cost ~430 B of flash.
#[cfg_attr(feature = "std", inline(always))]
fn tv_equals(tv: &[u8], data: &[u8], f: FieldRef, fl: FieldLength) -> bool {
    if fl == FieldLength::Variable {
        return data.get(f.bytes()) == Some(tv);
    }
    let len = f.len as usize;
    if len <= 64 {
        let v = tv_u64(tv);
        // Up to 8 bytes, `tv` fits when its value does.
        let fits = if tv.len() <= 8 {
            len == 64 || v >> len == 0
        } else {
            fits_right_aligned(tv, len)
        };
        return fits && v == get_bits(data, f.off as usize, f.len);
    }
    if !fits_right_aligned(tv, len) {
        return false;
    }
    (0..len).all(|i| tv_bit(tv, len, i) == get_bits(data, f.off as usize + i, 1))
}

/// Whether the `x` most significant bits of `f` equal those of `tv`.
fn msb_equals(tv: &[u8], x: usize, data: &[u8], f: FieldRef, fl: FieldLength) -> bool {
    let len = f.len as usize;
    if x > len {
        return false;
    }
    if fl == FieldLength::Variable {
        if x % 8 != 0 {
            return false;
        }
        let n = x / 8;
        let s = f.off as usize / 8;
        return match (data.get(s..s + n), tv.get(..n)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        };
    }
    if !fits_right_aligned(tv, len) {
        return false;
    }
    if x == 0 {
        return true;
    }
    if len <= 64 {
        let shift = (len - x) as u32;
        let a = get_bits(data, f.off as usize, f.len) >> shift;
        let b = tv_u64(tv) >> shift;
        return a == b;
    }
    (0..x).all(|i| tv_bit(tv, len, i) == get_bits(data, f.off as usize + i, 1))
}

/// Writes the `n` most significant bits of `tv` right-aligned in `width` bits.
fn write_right_aligned(
    w: &mut BitWriter<'_>,
    tv: &[u8],
    width: usize,
    n: usize,
) -> Result<(), BitError> {
    let tv_bits = tv.len() * 8;
    let zeros = width.saturating_sub(tv_bits).min(n);
    let mut left = zeros;
    while left > 0 {
        let take = left.min(64);
        w.write(0, take as u32)?;
        left -= take;
    }
    let skip = tv_bits.saturating_sub(width);
    w.copy_bits(tv, skip, n - zeros)
}

/// Adds `bytes` to the one's complement sum `sum` (RFC 1071).
///
/// The one's complement sum does not depend on byte order (RFC 1071 §2(B)), and as
/// 2^16 = 1 modulo 0xFFFF, a 16-bit word adds the same at any 16-bit position. So 8-byte
/// words (4-byte without `std`) are added in native order with the carry out of bit 63 added
/// back in (end-around carry), a tail as 4-, 2- and 1-byte pieces. Every run starts at an even
/// offset, so an odd last byte pairs with a zero after it.
fn csum_add(mut sum: u64, bytes: &[u8]) -> u64 {
    let mut acc = |v: u64| {
        let (s, c) = sum.overflowing_add(v);
        sum = s + u64::from(c);
    };
    let mut rest = bytes;
    // Hosts add 8-byte words; devices (32-bit) 4-byte ones: less flash (nostd-check).
    #[cfg(feature = "std")]
    while let Some((w, r)) = rest.split_first_chunk::<8>() {
        acc(u64::from_ne_bytes(*w));
        rest = r;
    }
    while let Some((w, r)) = rest.split_first_chunk::<4>() {
        acc(u64::from(u32::from_ne_bytes(*w)));
        rest = r;
    }
    if let Some((w, r)) = rest.split_first_chunk::<2>() {
        acc(u64::from(u16::from_ne_bytes(*w)));
        rest = r;
    }
    if let Some(&b) = rest.first() {
        acc(u64::from(u16::from_ne_bytes([b, 0])));
    }
    sum
}

/// Folds a one's complement sum of native-order words to 16 bits, big-endian, with
/// end-around carries (below 2^33, 2^17 + 2^16, 0x10001, then 0xFFFF); never 0 from a sum
/// that is not.
fn csum_fold(sum: u64) -> u16 {
    let mut s = (sum & 0xFFFF_FFFF) + (sum >> 32);
    s = (s & 0xFFFF) + (s >> 16);
    s = (s & 0xFFFF) + (s >> 16);
    s = (s & 0xFFFF) + (s >> 16);
    u16::from_be_bytes((s as u16).to_ne_bytes())
}

/// The pseudo-header's UDP length (from the packet's UDP header) and next header 17, as
/// 16-bit words in native order (byte-swapped on little-endian hosts), to add to a sum of
/// native words. Never 0 (17 is in it), so a sum with it folds to 1..=0xFFFF.
fn csum_pseudo(pkt: &[u8]) -> u64 {
    let udp_len = pkt
        .get(44..46)
        .and_then(|b| b.first_chunk::<2>())
        .map_or(0, |b| u16::from_ne_bytes(*b));
    u64::from(udp_len) + u64::from(17u16.to_be())
}

/// The UDP checksum (RFC 768, RFC 8200 §8.1) of an IPv6/UDP packet, with the checksum field
/// taken as zero. Returns 0xFFFF for a computed 0.
#[cfg(feature = "std")]
pub fn udp_checksum(pkt: &[u8]) -> u16 {
    // Pseudo-header addresses, the UDP header up to the checksum, then everything after the
    // checksum; then the UDP length and next header 17 of the pseudo-header.
    // With `std` (hosts), the 40 bytes up to the payload as five unrolled words; devices
    // keep the one loop (flash).
    #[cfg(feature = "std")]
    let head = pkt.get(8..48).and_then(|h| h.first_chunk::<40>());
    #[cfg(not(feature = "std"))]
    let head: Option<&[u8; 40]> = None;
    let sum = match head {
        Some(h) => {
            // The five words of addresses and UDP header, the checksum bytes zeroed.
            let mut sum = 0;
            for (i, w) in h.chunks_exact(8).enumerate() {
                let mut b = <[u8; 8]>::try_from(w).unwrap_or([0; 8]);
                if i == 4 {
                    b[6] = 0;
                    b[7] = 0;
                }
                let (s, c) = u64::overflowing_add(sum, u64::from_ne_bytes(b));
                sum = s + u64::from(c);
            }
            sum
        }
        None => csum_add(
            csum_add(0, pkt.get(8..40).unwrap_or(&[])),
            pkt.get(40..46).unwrap_or(&[]),
        ),
    };
    let sum = csum_add(sum, pkt.get(48..).unwrap_or(&[]));
    let (sum, c) = sum.overflowing_add(csum_pseudo(pkt));
    match !csum_fold(sum + u64::from(c)) {
        0 => 0xFFFF,
        c => c,
    }
}

/// The UDP checksum (RFC 768, RFC 8200 §8.1) of an IPv6/UDP packet, with the checksum field
/// taken as zero. Returns 0xFFFF for a computed 0.
///
/// Devices add 16-bit words one at a time, folding the carries as they go: the least code
/// (flash), and a device checks few packets. (The unit tests run it with
/// `--no-default-features`.)
#[cfg(not(feature = "std"))]
pub fn udp_checksum(pkt: &[u8]) -> u16 {
    // The pseudo-header's UDP length and next header 17, then the words from the source
    // address on but the checksum's, an odd last byte padded.
    let word = |i: usize| {
        (u32::from(pkt.get(i).copied().unwrap_or(0)) << 8)
            | u32::from(pkt.get(i + 1).copied().unwrap_or(0))
    };
    let mut sum = word(44) + 17;
    let mut i = 8;
    while i < pkt.len() {
        if i != 46 {
            sum = (sum & 0xFFFF) + (sum >> 16) + word(i);
        }
        i += 2;
    }
    sum = (sum & 0xFFFF) + (sum >> 16);
    sum = (sum & 0xFFFF) + (sum >> 16);
    match !(sum as u16) {
        0 => 0xFFFF,
        c => c,
    }
}

/// Whether the UDP checksum field of an IPv6/UDP packet holds [`udp_checksum`]'s value, without
/// computing it apart: the one's complement sum of the pseudo-header and the whole UDP
/// datagram, checksum included, is 0xFFFF exactly when the field is the complement of the rest
/// (RFC 1071 §1), or 0xFFFF for a rest that complements to 0. A zero field, which the sum
/// cannot tell from 0xFFFF, never holds ([`udp_checksum`] never returns 0).
pub(crate) fn udp_checksum_holds(pkt: &[u8]) -> bool {
    let Some(field) = pkt.get(46..48) else {
        return false;
    };
    if field == [0, 0] {
        return false;
    }
    let rest = pkt.get(8..).unwrap_or(&[]);
    // Hosts: 8-byte words summed into 128 bits (an add with carry each, the carries folded
    // back once at the end), then the tail as `csum_add` does it.
    // The last 0 to 7 bytes as the top of the datagram's last 8 bytes, shifted down: they
    // start at an even offset, so they keep their 16-bit lanes, with zeros after them.
    #[cfg(feature = "std")]
    let (sum, rest) = {
        let mut wide = u128::from(csum_pseudo(pkt));
        let mut words = rest.chunks_exact(8);
        for w in words.by_ref() {
            let w = <[u8; 8]>::try_from(w).map_or(0, u64::from_ne_bytes);
            wide += u128::from(w);
        }
        let tail = words.remainder().len();
        let last = rest.last_chunk::<8>().filter(|_| tail > 0);
        if let Some(last) = last {
            let v = u64::from_le_bytes(*last) >> (8 * (8 - tail));
            wide += u128::from(u64::from_ne_bytes(v.to_le_bytes()));
        }
        let (lo, c) = (wide as u64).overflowing_add((wide >> 64) as u64);
        let rest = if last.is_some() {
            &[]
        } else {
            words.remainder()
        };
        (lo + u64::from(c), rest)
    };
    #[cfg(not(feature = "std"))]
    let sum = csum_pseudo(pkt);
    let sum = csum_add(sum, rest);
    csum_fold(sum) == 0xFFFF
}

// The matcher keeps the fields a rule described as one bit per slot of a `u64`.
const _: () = assert!(FIELD_SLOTS <= 64);
/// The TKL's bit in that set.
const TKL_BIT: u64 = match Fid::CoapTkl.header_index() {
    Some(i) => 1 << i,
    None => 0,
};
/// Compiled `equal` / `not-sent`.
const OP_EQUAL_NOT_SENT: u8 = MO_EQUAL | (CDA_NOT_SENT << 3);
/// Compiled `ignore` / `not-sent`.
const OP_IGNORE_NOT_SENT: u8 = MO_IGNORE | (CDA_NOT_SENT << 3);
/// Compiled `ignore` / `compute-*`.
const OP_IGNORE_COMPUTE: u8 = MO_IGNORE | (CDA_COMPUTE << 3);

/// [`crate::bits::word_at`] where fewer than 8 bytes are left: kept out of the plan's loop.
#[cold]
#[inline(never)]
fn word_past_end(data: &[u8], at: usize) -> u64 {
    crate::bits::word_at(data, at)
}

/// The compiled keys of the IPv6 header fields, as bits (header fields in wire order).
const IPV6_KEYS: u64 = 0x3FF;
/// The UDP header fields' keys.
const UDP_KEYS: u64 = 0xF << 10;
/// Every header field's key.
const HEADER_KEYS: u64 = (1 << HEADER_FIELDS) - 1;
const _: () = assert!(
    matches!(Fid::Ipv6AppIid.header_index(), Some(9))
        && matches!(Fid::UdpChecksum.header_index(), Some(13))
        && (OPTION_KEY as usize) >= HEADER_FIELDS
        && OPTION_KEY < 64
);

/// Which step of a descriptor's match failed (the matcher adds where, as a [`Mismatch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Miss {
    Length,
    Value,
    Action,
}

impl Miss {
    /// The [`Mismatch`] of entry `entry` on field `fid` at `f` (off the hot path).
    #[cold]
    fn at(self, entry: usize, fid: Fid, f: FieldRef) -> Mismatch {
        match self {
            Miss::Length => Mismatch::Length {
                entry,
                fid,
                bit: f.off,
                bits: f.len,
            },
            Miss::Value => Mismatch::Value {
                entry,
                fid,
                bit: f.off,
            },
            Miss::Action => Mismatch::Action {
                entry,
                fid,
                bit: f.off,
            },
        }
    }
}

/// Per-packet matching state: the parsed headers and lazily computed values.
struct Matcher<'h, 'p> {
    h: &'h Headers<'p>,
    cfg: &'h Config,
    checksum: Option<u16>,
    /// Whether the packet has a CoAP token of length 0 (TKL 0), which a rule need not describe.
    empty_token: bool,
    /// `CHECK_*` bits of the computed fields that hold their computed value in the packet
    /// (the lengths as parsing found them, the checksum's once [`Matcher::checks_hold`] found
    /// it so), and [`CHECKSUM_CHECKED`].
    holds: u8,
}

/// A bit of [`Matcher::holds`]: the checksum bit is set.
const CHECKSUM_CHECKED: u8 = 0x40;
const _: () = assert!(
    CHECKSUM_CHECKED & (CHECK_PAYLOAD_LENGTH | CHECK_UDP_LENGTH | CHECK_CHECKSUM) == 0
        // The lengths parsing checked are the plan's length checks.
        && LENGTH_IPV6 == CHECK_PAYLOAD_LENGTH
        && LENGTH_UDP == CHECK_UDP_LENGTH
);

impl<'h, 'p> Matcher<'h, 'p> {
    #[cfg_attr(feature = "std", inline(always))]
    fn new(h: &'h Headers<'p>, cfg: &'h Config) -> Self {
        Self {
            h,
            cfg,
            checksum: None,
            empty_token: h.has(Layer::Coap) && h.tkl() == 0,
            holds: h.lengths_hold(),
        }
    }

    /// Whether the computed fields `checks` (`CHECK_*` bits) hold their computed values.
    #[cfg_attr(feature = "std", inline(always))]
    fn checks_hold(&mut self, checks: u8) -> bool {
        if checks & !self.holds & CHECK_CHECKSUM != 0 && self.holds & CHECKSUM_CHECKED == 0 {
            self.holds |= CHECKSUM_CHECKED;
            // (A plan with a checksum requires the UDP layer, checked before.)
            if self.h.first() == Layer::Ipv6 && udp_checksum_holds(self.h.data()) {
                self.holds |= CHECK_CHECKSUM;
            }
        }
        checks & !self.holds == 0
    }

    /// If `rule` matches, its residue length in bits and the deepest layer it covers; else
    /// why not.
    fn match_rule(
        &mut self,
        set: &RuleSet<'_>,
        rule: &Rule,
    ) -> Result<(usize, Option<Layer>), Mismatch> {
        let fields = set.fields(rule);
        if let Nature::Compression(span) = rule.nature {
            if fields.len() != usize::from(span.len) {
                return Err(Mismatch::NoDescriptors);
            }
        }
        let dir = self.h.direction();
        // The rule's deepest layer over all its descriptors, either direction.
        let mut layer: Option<Layer> = None;
        let mut count = 0;
        let mut bits = 0;
        // The fields described so far: two descriptors for one field (an unchecked set) would
        // stand in for a field the rule lacks and pass the count below.
        let mut seen: u64 = 0;
        for (entry, fd) in fields.iter().enumerate() {
            layer = layer.max(Some(fd.fid.layer()));
            if !fd.di.applies(dir) {
                continue;
            }
            let order = Mismatch::Order { entry, fid: fd.fid };
            // Decompression reads a token of fl-token-length with the TKL decoded before it: a
            // rule that puts it first (an unchecked set) could not be decompressed.
            if fd.fid == Fid::CoapToken && fd.fl == FieldLength::TokenLength && seen & TKL_BIT == 0
            {
                return Err(order);
            }
            let (slot, f) = self.h.field_slot(fd.fid, fd.fp).ok_or(Mismatch::Absent {
                entry,
                fid: fd.fid,
                fp: fd.fp,
            })?;
            let bit = 1u64.checked_shl(slot as u32).ok_or(order)?;
            if seen & bit != 0 {
                return Err(order);
            }
            seen |= bit;
            bits += match self.match_field(set, fd, f) {
                Ok(b) => b,
                Err(miss) => return Err(miss.at(entry, fd.fid, f)),
            };
            // A descriptor for an empty token (TKL 0) is optional: it matches but is not
            // counted among the packet's fields.
            if !(fd.fid == Fid::CoapToken && self.empty_token) {
                count += 1;
            }
        }
        // The rule's layers must all be present, including those only the other direction's
        // descriptors name.
        if let Some(l) = layer.filter(|&l| !self.h.has(l)) {
            return Err(Mismatch::Layer(l));
        }
        let present = self.h.field_count(layer);
        if count != present {
            return Err(Mismatch::Count {
                described: count,
                present,
            });
        }
        Ok((bits, layer))
    }

    /// [`Matcher::match_rule`] on the compiled form of a rule's descriptors: `None` when an
    /// entry cannot be compiled (the caller then interprets the rule), else whether the rule
    /// matches (its residue length and deepest layer). Only for validated sets: what
    /// validation guarantees (no field described twice, the TKL before a token of
    /// `fl-token-length`, target values that fit) is not checked again.
    #[cfg_attr(feature = "std", inline(always))]
    fn match_compiled(
        &mut self,
        cf: &[CompiledField],
        pool: &[u8],
    ) -> Option<Option<(usize, Option<Layer>)>> {
        let dir = if self.h.direction() == Direction::Up {
            DI_UP
        } else {
            DI_DOWN
        };
        // Header keys described (any direction / this direction) as bits; options counted.
        let mut all = 0u64;
        let mut mine = 0u64;
        let mut options = 0usize;
        let mut bits = 0usize;
        for c in cf {
            let op = c.op();
            let key = c.key();
            // Options share the top bit: only their presence matters for the layers.
            let bit = 1u64 << key.min(63);
            all |= bit;
            if op & dir == 0 {
                if op & MO_MASK == 0 {
                    return None;
                }
                continue;
            }
            mine |= bit;
            options += usize::from(key >= OPTION_KEY);
            let Some(f) = self.compiled_field(c) else {
                return Some(None);
            };
            // One general step per entry: this loop serves the rare rules without a usable
            // plan; compression with plans does not come here.
            match self.match_entry(c, f, pool)? {
                Some(b) => bits += b,
                None => return Some(None),
            }
        }
        // The deepest layer of all entries, the first of this direction's.
        let deepest = |m: u64| {
            if m & !(IPV6_KEYS | UDP_KEYS) != 0 {
                Some(Layer::Coap)
            } else if m & UDP_KEYS != 0 {
                Some(Layer::Udp)
            } else if m != 0 {
                Some(Layer::Ipv6)
            } else {
                None
            }
        };
        let first = if mine & IPV6_KEYS != 0 {
            Layer::Ipv6
        } else if mine & UDP_KEYS != 0 {
            Layer::Udp
        } else {
            Layer::Coap
        };
        let layer = deepest(all);
        // Every header key of this direction once (validated sets), an empty token (TKL 0)
        // not counted among the packet's fields.
        let empty_token = u32::from(self.empty_token && mine & (1 << TOKEN_KEY) != 0);
        let count = ((mine & HEADER_KEYS).count_ones() - empty_token) as usize + options;
        if layer.is_some_and(|l| !self.h.has(l))
            || (mine != 0 && !self.h.has(first))
            || count != self.h.field_count(layer)
        {
            return Some(None);
        }
        Some(Some((bits, layer)))
    }

    /// [`Matcher::match_compiled`] with the rule's plan for this direction ([`RulePlan`]):
    /// the layers and the field count first, then the pinned header words, the computed
    /// fields, and the entries the plan leaves to be matched one by one.
    #[cfg_attr(feature = "std", inline(always))]
    fn match_plan(
        &mut self,
        p: &RulePlan,
        cf: &[CompiledField],
        pool: &[u8],
    ) -> Option<Option<(usize, Option<Layer>)>> {
        let h = self.h;
        let layer_of = |l: u8| match l {
            1 => Layer::Ipv6,
            2 => Layer::Udp,
            _ => Layer::Coap,
        };
        let layer = (p.layer != 0).then(|| layer_of(p.layer));
        // The deepest and the first layers parsed, and the field count up to the deepest.
        let empty_token = usize::from(self.empty_token && p.token);
        let count = usize::from(p.header_fields) + usize::from(p.options) - empty_token;
        if h.present() & p.needs != p.needs || count != h.counted(layer) {
            return Some(None);
        }
        let data = h.data();
        // The last byte a whole word can start at (wraps for a packet under 8 bytes).
        let last = data.len().wrapping_sub(8);
        for w in p.words.get(..usize::from(p.n_words))? {
            let at = h.layer_start(w.layer) + usize::from(w.at);
            // Whole words in the packet inline; a word past its end (a short CoAP header) from
            // `bits::word_at`, off the hot path.
            let x = if at <= last && data.len() >= 8 {
                data.get(at..)
                    .and_then(|s| s.first_chunk::<8>())
                    .map_or(0, |x| u64::from_ne_bytes(*x))
            } else {
                u64::from_ne_bytes(word_past_end(data, at).to_be_bytes())
            };
            if (x ^ w.value) & w.mask != 0 {
                return Some(None);
            }
        }
        if p.checks != 0 && !self.checks_hold(p.checks) {
            return Some(None);
        }
        let mut bits = p.residue as usize;
        if p.token_sent {
            bits += h.place(usize::from(TOKEN_KEY)).len as usize;
        }
        let mut rest = p.rest;
        while rest != 0 {
            let c = cf.get(rest.trailing_zeros() as usize)?;
            rest &= rest - 1;
            let key = c.key();
            let f = if key < OPTION_KEY {
                h.place(usize::from(key))
            } else {
                match h.option_field(key - OPTION_KEY, c.fp()) {
                    Some(f) => f,
                    None => return Some(None),
                }
            };
            // An option equal to a short value, not sent: the common option entry, inline.
            if key >= OPTION_KEY && c.op() & 0x3F == OP_EQUAL_NOT_SENT && c.len() == LEN_VARIABLE {
                if f.len != u32::from(c.arg()) * 8
                    || get_bits(data, f.off as usize, f.len) != c.tv()
                {
                    return Some(None);
                }
                continue;
            }
            match self.match_entry(c, f, pool)? {
                Some(b) => bits += b,
                None => return Some(None),
            }
        }
        Some(Some((bits, layer)))
    }

    /// The packet's field that compiled entry `c` describes: a header field where it would
    /// be (see [`Headers::place`]), or the option, if the packet has it.
    #[cfg_attr(feature = "std", inline(always))]
    fn compiled_field(&self, c: &CompiledField) -> Option<FieldRef> {
        let key = c.key();
        if key < OPTION_KEY {
            Some(self.h.place(usize::from(key)))
        } else {
            self.h.option_field(key - OPTION_KEY, c.fp())
        }
    }

    /// One compiled entry against the packet's field `f`: `None` if it cannot be compiled,
    /// else its residue length if it matches.
    #[inline(never)]
    fn match_entry(
        &mut self,
        c: &CompiledField,
        f: FieldRef,
        pool: &[u8],
    ) -> Option<Option<usize>> {
        let data = self.h.data();
        let (op, len, tv, arg) = (c.op(), c.len(), c.tv(), u32::from(c.arg()));
        // The field's value (its first 64 bits), read once for every compare below: those of
        // fields over 64 bits fail on the length first.
        let v = get_bits(data, f.off as usize, f.len);
        let len_ok = match len {
            LEN_VARIABLE => f.off % 8 == 0 && f.len % 8 == 0,
            LEN_TOKEN => f.len <= 64,
            l => u32::from(l) == f.len,
        };
        let ok = len_ok
            && match op & MO_MASK {
                MO_IGNORE => true,
                MO_EQUAL => {
                    v == tv
                        && match len {
                            LEN_VARIABLE => f.len == arg * 8,
                            LEN_TOKEN => f.len == 64 || tv >> f.len == 0,
                            _ => true,
                        }
                }
                MO_EQUAL_POOL => {
                    let start = (tv >> 16) as usize;
                    let end = start.saturating_add((tv & 0xFFFF) as usize);
                    pool.get(start..end)
                        .is_some_and(|p| data.get(f.bytes()) == Some(p))
                }
                MO_MSB => {
                    let shift = f.len.saturating_sub(arg);
                    shift < 64 && v >> shift == tv >> shift
                }
                _ => return None,
            };
        if !ok {
            return Some(None);
        }
        self.entry_residue(c, f, v)
    }

    /// The residue length of compiled entry `c` whose MO matched the packet's field `f` of
    /// value `v` (its first 64 bits), if its CDA can rebuild it; `None` if it cannot be
    /// compiled.
    #[cfg_attr(feature = "std", inline(always))]
    fn entry_residue(&mut self, c: &CompiledField, f: FieldRef, v: u64) -> Option<Option<usize>> {
        let (op, len, arg) = (c.op(), c.len(), u32::from(c.arg()));
        let cda = (op >> 3) & 7;
        Some(match cda {
            CDA_NOT_SENT => Some(0),
            CDA_VALUE_SENT if len == LEN_VARIABLE => {
                let n = f.len as usize / 8;
                (n <= 0xFFFF).then(|| size_prefix_len(n) as usize + f.len as usize)
            }
            CDA_VALUE_SENT => Some(f.len as usize),
            CDA_LSB => Some(f.len.saturating_sub(arg) as usize),
            CDA_COMPUTE => {
                let x = self.computed(Fid::from_header_index(usize::from(c.key()))?);
                x.filter(|&x| v == u64::from(x)).map(|_| 0)
            }
            CDA_DEV_IID | CDA_APP_IID => {
                let iid = if cda == CDA_DEV_IID {
                    self.cfg.dev_iid
                } else {
                    self.cfg.app_iid
                };
                // (An IID field lies whole in the packet when its layer, which the rule
                // requires, was parsed.)
                iid.filter(|iid| f.len == 64 && v == u64::from_be_bytes(*iid))
                    .map(|_| 0)
            }
            _ => return None,
        })
    }

    /// If the descriptor matches the packet's field `f`, the length of its residue in bits.
    fn match_field(
        &mut self,
        set: &RuleSet<'_>,
        fd: &FieldDesc,
        f: FieldRef,
    ) -> Result<usize, Miss> {
        let data = self.h.data();
        match fd.fl {
            FieldLength::Fixed(l) if u32::from(l) != f.len => return Err(Miss::Length),
            FieldLength::Variable if f.off % 8 != 0 || f.len % 8 != 0 => return Err(Miss::Length),
            FieldLength::TokenLength if fd.fid != Fid::CoapToken => return Err(Miss::Length),
            _ => {}
        }
        let ok = match fd.mo {
            MatchingOperator::Ignore => true,
            MatchingOperator::Equal => set
                .tv(fd, 0)
                .is_some_and(|tv| tv_equals(tv, data, f, fd.fl)),
            MatchingOperator::Msb(x) => set
                .tv(fd, 0)
                .is_some_and(|tv| msb_equals(tv, x as usize, data, f, fd.fl)),
            MatchingOperator::MatchMapping => self.mapping_index(set, fd, f).is_some(),
        };
        if !ok {
            return Err(Miss::Value);
        }
        self.action_bits(set, fd, f).ok_or(Miss::Action)
    }

    /// The residue length in bits of a field whose MO matched, if the CDA can rebuild it.
    fn action_bits(&mut self, set: &RuleSet<'_>, fd: &FieldDesc, f: FieldRef) -> Option<usize> {
        let data = self.h.data();
        let len = f.len as usize;
        match fd.cda {
            // Decompression writes the first target value: unless the MO ignores the field
            // (deliberately lossy), match only a field it rebuilds exactly (MSB(x) or
            // match-mapping with not-sent in an unchecked set would lose bits).
            Cda::NotSent => match fd.mo {
                MatchingOperator::Equal | MatchingOperator::Ignore => Some(0),
                _ => set
                    .tv(fd, 0)
                    .is_some_and(|tv| tv_equals(tv, data, f, fd.fl))
                    .then_some(0),
            },
            Cda::ValueSent => match fd.fl {
                FieldLength::Variable => {
                    let n = len / 8;
                    (n <= 0xFFFF).then(|| size_prefix_len(n) as usize + len)
                }
                _ => Some(len),
            },
            // The index of the value in the list: a field the list lacks cannot be sent (only
            // match-mapping guarantees it is there, and an unchecked set may pair mapping-sent
            // with another MO).
            Cda::MappingSent => self
                .mapping_index(set, fd, f)
                .map(|_| index_width(set.tv_count(fd)) as usize),
            Cda::Lsb => {
                let MatchingOperator::Msb(x) = fd.mo else {
                    return None;
                };
                let rest = len.checked_sub(x as usize)?;
                match fd.fl {
                    FieldLength::Variable => {
                        let n = rest / 8;
                        (n <= 0xFFFF).then(|| size_prefix_len(n) as usize + rest)
                    }
                    _ => Some(rest),
                }
            }
            Cda::Compute => {
                let expected = self.computed(fd.fid)?;
                (get_bits(data, f.off as usize, f.len) == u64::from(expected)).then_some(0)
            }
            Cda::DevIid => (self.cfg.dev_iid.as_ref().map(|b| &b[..]) == data.get(f.bytes()))
                .then_some(0)
                .filter(|_| self.cfg.dev_iid.is_some() && len == 64),
            Cda::AppIid => (self.cfg.app_iid.as_ref().map(|b| &b[..]) == data.get(f.bytes()))
                .then_some(0)
                .filter(|_| self.cfg.app_iid.is_some() && len == 64),
        }
    }

    fn mapping_index(&self, set: &RuleSet<'_>, fd: &FieldDesc, f: FieldRef) -> Option<usize> {
        let data = self.h.data();
        (0..set.tv_count(fd)).find(|&i| {
            set.tv(fd, i)
                .is_some_and(|tv| tv_equals(tv, data, f, fd.fl))
        })
    }

    /// The value decompression will compute for a compute-* field of this packet.
    fn computed(&mut self, fid: Fid) -> Option<u16> {
        match fid {
            // The IPv6 payload length and UDP length decompression will compute.
            Fid::Ipv6PayloadLength => {
                u16::try_from(self.h.data().len().wrapping_sub(IPV6_HEADER_LEN)).ok()
            }
            Fid::UdpLength => self
                .h
                .data()
                .len()
                .checked_sub(self.h.udp_start())
                .and_then(|l| u16::try_from(l).ok()),
            Fid::UdpChecksum if self.h.first() == Layer::Ipv6 => {
                if self.checksum.is_none() {
                    self.checksum = Some(udp_checksum(self.h.data()));
                }
                self.checksum
            }
            _ => None,
        }
    }

    /// Writes the residue of compiled entry `c` (value-sent or LSB) of the matched rule.
    #[cfg_attr(feature = "std", inline(always))]
    fn write_compiled(&self, c: &CompiledField, w: &mut BitAcc<'_>) -> Result<(), BitError> {
        let Some(f) = self.compiled_field(c) else {
            return Ok(());
        };
        let data = self.h.data();
        let (off, len) = (f.off as usize, f.len as usize);
        let (off, len) = match (c.op() >> 3) & 7 {
            CDA_VALUE_SENT => {
                if c.len() == LEN_VARIABLE {
                    w.write_size_prefix(len / 8)?;
                }
                (off, len)
            }
            CDA_LSB => {
                let x = usize::from(c.arg()).min(len);
                (off + x, len - x)
            }
            _ => return Ok(()),
        };
        // One of at most 64 bits at once.
        if len <= 64 {
            w.write(get_bits(data, off, len as u32), len as u32)
        } else {
            w.copy_bits(data, off, len)
        }
    }

    #[cfg_attr(feature = "std", inline(always))]
    fn write_residue(
        &self,
        set: &RuleSet<'_>,
        fd: &FieldDesc,
        w: &mut BitAcc<'_>,
    ) -> Result<(), BitError> {
        let Some(f) = self.h.field(fd.fid, fd.fp) else {
            return Ok(());
        };
        let data = self.h.data();
        let (off, len) = (f.off as usize, f.len as usize);
        match fd.cda {
            Cda::ValueSent => {
                if fd.fl == FieldLength::Variable {
                    w.write_size_prefix(len / 8)?;
                }
                w.copy_bits(data, off, len)
            }
            Cda::MappingSent => {
                let idx = self.mapping_index(set, fd, f).unwrap_or(0);
                w.write(idx as u64, index_width(set.tv_count(fd)))
            }
            Cda::Lsb => {
                let x = match fd.mo {
                    MatchingOperator::Msb(x) => (x as usize).min(len),
                    _ => 0,
                };
                if fd.fl == FieldLength::Variable {
                    w.write_size_prefix((len - x) / 8)?;
                }
                w.copy_bits(data, off + x, len - x)
            }
            Cda::NotSent | Cda::Compute | Cda::DevIid | Cda::AppIid => Ok(()),
        }
    }
}

/// Where a decoded field's value comes from.
#[derive(Debug, Clone, Copy)]
enum Val {
    /// `bits` bits of the SCHC packet from this bit offset.
    Input(u32),
    /// Target value number `i` of the descriptor.
    Tv(u16),
    /// The descriptor's first target value's `x` high bits, then the input from this offset.
    Lsb { off: u32, x: u16 },
    /// The device's (`true`) or the application's interface identifier from the [`Config`].
    Iid(bool),
    /// To compute once the packet is rebuilt.
    Compute,
}

/// One decoded field, small: the decoder keeps a table of them on the stack.
#[derive(Debug, Clone, Copy)]
struct Decoded<'a> {
    fd: &'a FieldDesc,
    val: Val,
    bits: u32,
    entry: u16,
}

impl Decoded<'_> {
    /// Index of the entry in its rule.
    fn entry(&self) -> usize {
        usize::from(self.entry)
    }
}

const MAX_DECODED: usize = HEADER_FIELDS + MAX_OPTIONS;

/// Decompresses the SCHC packet `schc` (whole bytes; up to 7 trailing padding bits are
/// ignored) going `dir` into `out`.
pub fn decompress(
    set: &RuleSet<'_>,
    schc: &[u8],
    dir: Direction,
    cfg: &Config,
    out: &mut [u8],
) -> Result<Decompressed, DecompressError> {
    decompress_bits(set, schc, schc.len() * 8, dir, cfg, out)
}

/// Decompresses the first `bit_len` bits of `schc`; see [`decompress`].
pub fn decompress_bits(
    set: &RuleSet<'_>,
    schc: &[u8],
    bit_len: usize,
    dir: Direction,
    cfg: &Config,
    out: &mut [u8],
) -> Result<Decompressed, DecompressError> {
    let bit_len = bit_len.min(schc.len() * 8);
    let rule = set
        .lookup_prefix(schc, bit_len)
        .ok_or(DecompressError::UnknownRuleId)?;
    let id = rule.id;
    let limit = cfg.max_packet_size.min(out.len());
    let too_long = |_| DecompressError::TooLong { rule: id, limit };
    let mut r = BitReader::with_bit_len(schc, bit_len);
    r.skip(id.length as usize)
        .map_err(|_| DecompressError::UnknownRuleId)?;
    match rule.nature {
        Nature::Fragmentation(_) => Err(DecompressError::NotCompression(id)),
        Nature::NoCompression => {
            let n = r.remaining() / 8;
            let dst = out
                .get_mut(..limit)
                .and_then(|d| d.get_mut(..n))
                .ok_or(too_long(()))?;
            // The packet's bytes, after the rule ID: a copy when it ends on a byte, else
            // shifted byte by byte (no bit writer).
            let (k, sh) = (r.position() / 8, (r.position() % 8) as u32);
            match schc.get(k..k + n) {
                Some(src) if sh == 0 => dst.copy_from_slice(src),
                _ => {
                    for (i, d) in dst.iter_mut().enumerate() {
                        let hi = schc.get(k + i).copied().unwrap_or(0);
                        let lo = schc.get(k + i + 1).copied().unwrap_or(0);
                        *d = (hi << sh) | lo.checked_shr(8 - sh).unwrap_or(0);
                    }
                }
            }
            Ok(Decompressed {
                rule_id: id,
                len: n,
            })
        }
        Nature::Compression(span) => {
            let dst = out.get_mut(..limit).unwrap_or(&mut []);
            // The compiled form (validated sets): any error or entry it cannot express sends
            // the packet to the interpreter, which gives the error (or the same packet).
            let compiled = set
                .index()
                .map(|ix| ix.compiled)
                .filter(|c| !c.is_empty() && set.is_validated())
                .and_then(|c| c.get(span.range()));
            if let Some(cf) = compiled {
                let mut r2 = r.clone();
                if let Some(len) = rebuild_compiled(set, cf, &mut r2, schc, dir, cfg, id, dst) {
                    return Ok(Decompressed { rule_id: id, len });
                }
            }
            let len = Rebuilder {
                set,
                rule,
                dir,
                input: schc,
                iids: (cfg.dev_iid, cfg.app_iid),
                decoded: Vec::new(),
                header: [0; HEADER_FIELDS],
                computed: 0,
            }
            .run(&mut r, cfg, dst)?;
            Ok(Decompressed { rule_id: id, len })
        }
    }
}

/// [`decompress_bits`] with the compiled form only (see [`compress_compiled`]): a packet of a
/// rule it cannot rebuild, and every packet the interpreter would refuse, is refused with
/// [`DecompressError::BadField`] (entry 0) instead of the interpreter's precise error. It reads
/// the rules, the compiled table and the pool, never the [`FieldDesc`] table (a device need not
/// link it): the error names entry 0's field from its compiled key (kept also by entries the
/// compiled form cannot express). It finds the rule by trying the set's rules in order, not
/// through the index (a device holds a few; their IDs are prefix-free as validation leaves
/// them, so it is the rule the index would give).
pub fn decompress_compiled(
    set: &RuleSet<'_>,
    schc: &[u8],
    bit_len: usize,
    dir: Direction,
    cfg: &Config,
    out: &mut [u8],
) -> Result<Decompressed, DecompressError> {
    device::decompress(set, schc, bit_len, dir, cfg, out)
}

/// The field a compiled entry describes, from its key (header field index, or an option).
fn compiled_fid(c: &CompiledField) -> Option<Fid> {
    match c.key().checked_sub(OPTION_KEY) {
        Some(n) => Some(Fid::CoapOption(n)),
        None => Fid::from_header_index(usize::from(c.key())),
    }
}

/// Where a compiled option's value comes from.
#[derive(Debug, Clone, Copy)]
enum OptVal {
    /// The value, right-aligned (at most 64 bits).
    Word(u64),
    /// The SCHC packet's bits from this offset.
    Input(usize),
    /// The pool's bytes from this offset.
    Pool(usize),
}

/// A decoded option of the compiled path.
#[derive(Debug, Clone, Copy)]
struct CompiledOpt {
    number: u16,
    fp: u8,
    bits: u32,
    val: OptVal,
}

/// A CoAP option delta or length: its nibble and extension bytes (0, 1 or 2).
fn option_nibble(v: usize) -> (usize, u16, usize) {
    match v {
        0..=12 => (v, 0, 0),
        13..=268 => (13, (v - 13) as u16, 1),
        _ => (14, (v - 269) as u16, 2),
    }
}

/// A byte cursor over the output of [`rebuild_compiled`]; `None` past its end.
struct ByteOut<'o> {
    buf: &'o mut [u8],
    pos: usize,
}

impl ByteOut<'_> {
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.pos.checked_add(bytes.len())?;
        self.buf.get_mut(self.pos..end)?.copy_from_slice(bytes);
        self.pos = end;
        Some(())
    }

    /// Eight bytes.
    #[inline(always)]
    fn put8(&mut self, x: u64) -> Option<()> {
        let end = self.pos.checked_add(8)?;
        *self.buf.get_mut(self.pos..)?.first_chunk_mut::<8>()? = x.to_be_bytes();
        self.pos = end;
        Some(())
    }

    /// The first `n` (at most 8; `None` for more) bytes of `x`'s big-endian form from a
    /// register: on hosts one 8-byte store, or a 4-, a 2- and a 1-byte store as `n` needs them
    /// (byte by byte on devices); no `memcpy` call for a length known only at run time, nothing
    /// written past them.
    #[cfg_attr(feature = "std", inline(always))]
    fn put_top(&mut self, x: u64, n: usize) -> Option<()> {
        if n > 8 {
            return None;
        }
        let end = self.pos.checked_add(n)?;
        let d = self.buf.get_mut(self.pos..end)?;
        self.pos = end;
        // Devices: one byte at a time (less flash).
        #[cfg(not(feature = "std"))]
        {
            let mut w = x;
            for b in d {
                *b = (w >> 56) as u8;
                w <<= 8;
            }
        }
        #[cfg(feature = "std")]
        {
            if let Some(h) = d.first_chunk_mut::<8>() {
                *h = x.to_be_bytes();
                return Some(());
            }
            let (mut w, mut at) = (x, 0);
            if n & 4 != 0 {
                if let Some(h) = d.first_chunk_mut::<4>() {
                    *h = ((w >> 32) as u32).to_be_bytes();
                }
                (w, at) = (w << 32, 4);
            }
            if n & 2 != 0 {
                if let Some(h) = d.get_mut(at..).and_then(|t| t.first_chunk_mut::<2>()) {
                    *h = ((w >> 48) as u16).to_be_bytes();
                }
                (w, at) = (w << 16, at + 2);
            }
            if let Some(h) = d.get_mut(at) {
                *h = (w >> 56) as u8;
            }
        }
        Some(())
    }

    /// `n` bytes from bit `off` of `src` (any alignment): seven at a time while a whole word
    /// can be read, then the rest (at most 7 bytes) from one zero-padded word.
    #[cfg_attr(feature = "std", inline(always))]
    fn copy_bits(&mut self, src: &[u8], head: u64, off: usize, n: usize) -> Option<()> {
        let mut k = off / 8;
        if off % 8 == 0 {
            return self.put(src.get(k..k.checked_add(n)?)?);
        }
        if off.checked_add(n.checked_mul(8)?)? > src.len() * 8 {
            return None;
        }
        let sh = (off % 8) as u32;
        let mut left = n;
        while left >= 7 {
            let Some(w) = src.get(k..).and_then(|s| s.first_chunk::<8>()) else {
                break;
            };
            let v = u64::from_be_bytes(*w) << sh;
            self.put(v.to_be_bytes().get(..7)?)?;
            k += 7;
            left -= 7;
        }
        // The loop stops with fewer than 7 bytes left, or fewer than 8 bytes of `src` from `k`,
        // when the bounds above leave at most 6 to copy.
        self.put_top(input_word(src, head, k) << sh, left)
    }
}

#[cfg(test)]
mod byte_out_tests {
    use super::*;

    #[test]
    fn put_top_writes_exactly_n_bytes() {
        let x = 0x0102_0304_0506_0708u64;
        for room in 0..=10usize {
            for start in 0..=2usize.min(room) {
                for n in 0..=9usize {
                    let mut buf = [0xEEu8; 12];
                    let mut o = ByteOut {
                        buf: &mut buf[..room],
                        pos: start,
                    };
                    let r = o.put_top(x, n);
                    let fits = n <= 8 && start + n <= room;
                    assert_eq!(r.is_some(), fits, "room {room} start {start} n {n}");
                    let pos = o.pos;
                    let mut want = [0xEEu8; 12];
                    if fits {
                        assert_eq!(pos, start + n);
                        want[start..start + n].copy_from_slice(&x.to_be_bytes()[..n]);
                    }
                    assert_eq!(buf, want, "room {room} start {start} n {n}");
                }
            }
        }
    }

    #[test]
    fn copy_bits_at_every_offset_matches_the_bit_reader() {
        let all: [u8; 19] = core::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0xA5);
        // Short packets (one head word) and long ones.
        for src in [
            &all[..],
            &all[..9],
            &all[..8],
            &all[..7],
            &all[..3],
            &all[..0],
        ] {
            copy_bits_of(src);
        }
    }

    #[test]
    fn computed_key_bit_is_computed_bit_by_key() {
        for key in 0..=u16::MAX {
            let want = Fid::from_header_index(usize::from(key)).map_or(0, computed_bit);
            assert_eq!(computed_key_bit(key), want, "key {key}");
        }
        assert_eq!(computed_key_bit(PAYLOAD_LENGTH_KEY), 1);
        assert_eq!(computed_key_bit(UDP_LENGTH_KEY), 2);
        assert_eq!(computed_key_bit(CHECKSUM_KEY), 4);
    }

    #[test]
    fn left_aligned_moves_the_low_bytes_up() {
        let x = 0x0102_0304_0506_0708u64;
        assert_eq!(left_aligned(x, 0), 0);
        assert_eq!(left_aligned(x, 1), 0x08 << 56);
        assert_eq!(left_aligned(x, 3), 0x0006_0708 << 40);
        assert_eq!(left_aligned(x, 8), x);
        // Past 8 (callers never pass it): no panic.
        let _ = left_aligned(x, usize::MAX);
        let _ = left_aligned(x, 9);
    }

    #[test]
    fn residue_reads_agree_with_get_bits() {
        let all: [u8; 12] = core::array::from_fn(|i| (i as u8).wrapping_mul(91) ^ 0x3C);
        for len in 0..=all.len() {
            let input = &all[..len];
            let head = input_head(input);
            for off in 0..=len * 8 {
                for n in 0..=64u32 {
                    assert_eq!(
                        residue(input, head, off, n),
                        get_bits(input, off, n),
                        "len {len} off {off} n {n}"
                    );
                }
            }
        }
    }

    fn copy_bits_of(src: &[u8]) {
        let head = input_head(src);
        for off in 0..24usize {
            for n in 0..=src.len() + 1 {
                let mut buf = [0u8; 24];
                let mut o = ByteOut {
                    buf: &mut buf,
                    pos: 1,
                };
                let fits = off + 8 * n <= src.len() * 8;
                assert_eq!(
                    o.copy_bits(src, head, off, n).is_some(),
                    fits,
                    "off {off} n {n}"
                );
                if fits {
                    assert_eq!(o.pos, 1 + n);
                    for (i, b) in buf[1..1 + n].iter().enumerate() {
                        assert_eq!(
                            u64::from(*b),
                            get_bits(src, off + 8 * i, 8),
                            "off {off} n {n}"
                        );
                    }
                    assert!(buf[1 + n..].iter().all(|&b| b == 0) && buf[0] == 0);
                }
            }
        }
    }
}

/// The low `n` (at most 8; callers check) bytes of `x` moved to its top, for
/// [`ByteOut::put_top`]. Never panics: a larger `n` gives some shift of `x`.
#[inline(always)]
fn left_aligned(x: u64, n: usize) -> u64 {
    x.checked_shl(64u32.saturating_sub((n as u32).wrapping_mul(8)))
        .unwrap_or(0)
}

/// [`input_word`]'s `head` of the SCHC packet `input`.
#[cfg_attr(feature = "std", inline(always))]
fn input_head(input: &[u8]) -> u64 {
    // Devices read every word with `word_at` (less flash).
    if cfg!(feature = "std") && input.len() <= 8 {
        crate::bits::word_at(input, 0)
    } else {
        0
    }
}

/// The 8 bytes of the SCHC packet `input` from byte `k`, zero-padded
/// ([`word_at`](crate::bits::word_at)); `head` is [`input_head`]`(input)`. On hosts, a packet of
/// at most 8 bytes (LPWAN packets often are) is that one word, shifted: no overlapping reads per
/// call.
#[cfg_attr(feature = "std", inline(always))]
fn input_word(input: &[u8], head: u64, k: usize) -> u64 {
    if cfg!(feature = "std") && input.len() <= 8 {
        return if k < 8 { head << (8 * k) } else { 0 };
    }
    crate::bits::word_at(input, k)
}

/// `n` bits of a residue at bit `off` of the SCHC packet `input` (`head`: [`input_head`]): one
/// zero-padded word read when they lie in the 8 bytes from their first, else [`get_bits`].
#[cfg_attr(feature = "std", inline(always))]
fn residue(input: &[u8], head: u64, off: usize, n: u32) -> u64 {
    let sh = (off % 8) as u32;
    if n > 0 && n + sh <= 64 {
        return (input_word(input, head, off / 8) << sh) >> (64 - n);
    }
    get_bits(input, off, n)
}

/// The TKL's compiled key.
const TKL_KEY: usize = 16;

/// [`computed_bit`] of every header field, 3 bits per compiled key (keys 0..21).
const COMPUTED_BITS: u64 = (computed_bit(Fid::Ipv6PayloadLength) as u64)
    << (3 * PAYLOAD_LENGTH_KEY)
    | (computed_bit(Fid::UdpLength) as u64) << (3 * UDP_LENGTH_KEY)
    | (computed_bit(Fid::UdpChecksum) as u64) << (3 * CHECKSUM_KEY);
const _: () = assert!(HEADER_FIELDS * 3 <= 64);

/// [`computed_bit`] of the header field with compiled key `key` (0 past the header fields):
/// a shift, no compare chain.
#[inline(always)]
fn computed_key_bit(key: u16) -> u8 {
    (COMPUTED_BITS.checked_shr(3 * u32::from(key)).unwrap_or(0) & 7) as u8
}
const _: () = assert!(matches!(Fid::CoapTkl.header_index(), Some(TKL_KEY)));

/// Decompresses with the compiled form `cf` of a validated set's rule (reader after the rule
/// ID) into `out`: the packet's length, or `None` for anything it does not handle or any
/// error, which the caller leaves to the interpreter (the same packet, or the error).
/// Header fields are decoded into a fixed layout and written a word per layer.
#[allow(clippy::too_many_arguments)]
// Kept out of line: inlined into `decompress_bits` (its only caller now), it cost ~45
// instructions a packet in register pressure.
#[inline(never)]
fn rebuild_compiled(
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
    // `op` masked to this direction and the MO/CDA bits, minus `fast`: 0 or 1 for equal or
    // ignore with not-sent in this direction (see the loop).
    let op_mask = dir_bit | 0x3F;
    let fast = dir_bit | OP_IGNORE_NOT_SENT;
    const _: () = assert!(OP_EQUAL_NOT_SENT == OP_IGNORE_NOT_SENT + 1);
    let head = input_head(input);
    let mut vals = [0u64; HEADER_FIELDS];
    let mut all = 0u64;
    let mut mine = 0u64;
    let mut computed = 0u8;
    let mut token_bits = 0u32;
    let mut opts: Vec<CompiledOpt, MAX_DECODED> = Vec::new();
    for c in cf {
        let (op, key) = (c.op(), c.key());
        // Most entries: a header field before the token (fixed length in a validated set),
        // rebuilt from its target value; one test on the operation byte, one on the key.
        // As one compare: the key with bit 16 up unless the operation is 0 or 1 above `fast`.
        let y = u32::from((op & op_mask).wrapping_sub(fast) >> 1);
        if (u32::from(key) | (y << 16)) < u32::from(TOKEN_KEY) {
            if let Some(v) = vals.get_mut(usize::from(key)) {
                *v = c.tv();
            }
            mine |= 1 << key;
            continue;
        }
        // Next most: a computed length or checksum (ignore / compute-* in this direction).
        if op & op_mask == dir_bit | OP_IGNORE_COMPUTE && key < TOKEN_KEY {
            computed |= computed_key_bit(key);
            if let Some(v) = vals.get_mut(usize::from(key)) {
                *v = 0;
            }
            mine |= 1 << key;
            continue;
        }
        let (len, tv, arg) = (c.len(), c.tv(), c.arg());
        let mo = op & MO_MASK;
        if mo == crate::rule::compiled::MO_FALLBACK {
            return None;
        }
        let bit = 1u64 << key.min(63);
        all |= bit;
        if op & dir_bit == 0 {
            continue;
        }
        let cda = (op >> 3) & 7;
        let bits: u32 = match len {
            LEN_TOKEN => {
                // The TKL, decoded before (validated sets).
                if mine & (1 << TKL_KEY) == 0 {
                    return None;
                }
                u32::try_from(vals.get(TKL_KEY)? * 8).ok()?
            }
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
            CDA_NOT_SENT => {
                // A token's target value must fit its TKL bytes.
                if bits < 64 && tv >> bits != 0 {
                    return None;
                }
                OptVal::Word(tv)
            }
            CDA_VALUE_SENT => {
                let off = r.skip(bits as usize).ok()?;
                if bits <= 64 {
                    OptVal::Word(residue(input, head, off, bits))
                } else {
                    OptVal::Input(off)
                }
            }
            CDA_LSB => {
                let rest = bits.checked_sub(u32::from(arg))?;
                let off = r.skip(rest as usize).ok()?;
                let low = residue(input, head, off, rest);
                OptVal::Word(if arg == 0 {
                    low
                } else {
                    ((tv >> rest) << rest) | low
                })
            }
            CDA_COMPUTE => {
                // Compute on an option is not for this path.
                if usize::from(key) >= HEADER_FIELDS {
                    return None;
                }
                computed |= computed_key_bit(key);
                OptVal::Word(0)
            }
            CDA_DEV_IID => OptVal::Word(u64::from_be_bytes(cfg.dev_iid?)),
            CDA_APP_IID => OptVal::Word(u64::from_be_bytes(cfg.app_iid?)),
            _ => return None,
        };
        mine |= bit;
        if key < OPTION_KEY {
            let (OptVal::Word(v), true) = (val, bits <= 64) else {
                return None;
            };
            *vals.get_mut(usize::from(key))? = v;
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
    // The fast entries count in `all` too.
    all |= mine;
    // No more fields than the interpreter tracks (it refuses the packet then). In a validated
    // set each header field is described once per direction, so only many options can exceed.
    if opts.len() > MAX_DECODED - HEADER_FIELDS
        && (mine & HEADER_KEYS).count_ones() as usize + opts.len() > MAX_DECODED
    {
        return None;
    }
    let first = cfg.first_layer;
    // A field below the first layer is an error (the interpreter's).
    if (first > Layer::Ipv6 && mine & IPV6_KEYS != 0)
        || (first > Layer::Udp && mine & UDP_KEYS != 0)
    {
        return None;
    }
    let has = |m: u64| all & m != 0;
    let coap = has(!(IPV6_KEYS | UDP_KEYS));
    let udp = coap || has(UDP_KEYS);
    let ipv6 = udp || has(IPV6_KEYS);
    let v = |k: usize| vals.get(k).copied().unwrap_or(0);
    // Every header is whole bytes: the packet is written a byte cursor at a time.
    let mut o = ByteOut { buf: out, pos: 0 };
    if first == Layer::Ipv6 && ipv6 {
        if mine & IPV6_KEYS != IPV6_KEYS {
            return None;
        }
        let (a, b) = if dir == Direction::Up { (6, 8) } else { (8, 6) };
        let word = (v(0) << 60) | (v(1) << 52) | (v(2) << 32) | (v(3) << 16) | (v(4) << 8) | v(5);
        for x in [word, v(a), v(a + 1), v(b), v(b + 1)] {
            o.put8(x)?;
        }
    }
    if first <= Layer::Udp && udp {
        if mine & UDP_KEYS != UDP_KEYS {
            return None;
        }
        let (s, d) = if dir == Direction::Up {
            (10, 11)
        } else {
            (11, 10)
        };
        o.put8((v(s) << 48) | (v(d) << 32) | (v(12) << 16) | v(13))?;
    }
    if coap {
        if mine & 0x7C000 != 0x7C000 {
            return None;
        }
        let tkl = v(TKL_KEY);
        let head = (v(14) << 30) | (v(15) << 28) | (tkl << 24) | (v(17) << 16) | v(18);
        o.put(&(head as u32).to_be_bytes())?;
        if mine & (1 << TOKEN_KEY) != 0 {
            if u64::from(token_bits) != tkl * 8 || tkl > 8 {
                return None;
            }
            let token = v(usize::from(TOKEN_KEY));
            o.put_top(left_aligned(token, tkl as usize), tkl as usize)?;
        } else if tkl != 0 {
            return None;
        }
        // Options in (number, position) order; insertion sort, as the interpreter.
        for i in 1..opts.len() {
            let mut j = i;
            while j > 0
                && opts.get(j - 1).map(|o| (o.number, o.fp)) > opts.get(j).map(|o| (o.number, o.fp))
            {
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
            if len > 65535 + 269 {
                return None;
            }
            let delta = usize::from(opt.number.checked_sub(prev)?);
            prev = opt.number;
            let (dn, dx, dxl) = option_nibble(delta);
            let (ln, lx, lxl) = option_nibble(len);
            o.put_top((((dn << 4) | ln) as u64) << 56, 1)?;
            if dxl > 0 {
                o.put_top(left_aligned(u64::from(dx), dxl), dxl)?;
            }
            if lxl > 0 {
                o.put_top(left_aligned(u64::from(lx), lxl), lxl)?;
            }
            match opt.val {
                OptVal::Word(x) if len <= 8 => o.put_top(left_aligned(x, len), len)?,
                OptVal::Word(_) => return None,
                OptVal::Input(off) => o.copy_bits(input, head, off, len)?,
                OptVal::Pool(at) => o.put(pool.get(at..at.checked_add(len)?)?)?,
            }
        }
        if r.remaining() >= 8 {
            o.put(&[0xFF])?;
        }
    }
    let payload = r.remaining() / 8;
    o.copy_bits(input, head, r.position(), payload)?;
    let total = o.pos;
    let udp_start = if first == Layer::Ipv6 {
        IPV6_HEADER_LEN
    } else {
        0
    };
    patch_computed(out, total, first, udp_start, computed, id).ok()?;
    Some(total)
}

struct Rebuilder<'s, 'a, 'i> {
    set: &'s RuleSet<'a>,
    rule: &'s Rule,
    dir: Direction,
    input: &'i [u8],
    /// The device's and the application's IIDs.
    iids: (Option<[u8; 8]>, Option<[u8; 8]>),
    decoded: Vec<Decoded<'a>, MAX_DECODED>,
    /// For each header field (by [`Fid::header_index`]), 1 + the index in `decoded` of its
    /// first descriptor at position 1; 0 when the rule has none.
    header: [u8; HEADER_FIELDS],
    /// The computed (`compute`) fields, by [`computed_bit`], at any position.
    computed: u8,
}

// `Rebuilder::header` holds indices of `decoded` plus one in a byte.
const _: () = assert!(MAX_DECODED < u8::MAX as usize);

/// The bit of a field with a `compute` action in `Rebuilder::computed` (0 for other fields):
/// the plan's `CHECK_*` bit of the same field.
const fn computed_bit(fid: Fid) -> u8 {
    match fid {
        Fid::Ipv6PayloadLength => CHECK_PAYLOAD_LENGTH,
        Fid::UdpLength => CHECK_UDP_LENGTH,
        Fid::UdpChecksum => CHECK_CHECKSUM,
        _ => 0,
    }
}

impl<'a> Rebuilder<'_, 'a, '_> {
    fn bad(&self, entry: usize, fid: Fid, reason: &'static str) -> DecompressError {
        DecompressError::BadField {
            rule: self.rule.id,
            entry,
            fid,
            reason,
        }
    }

    fn run(
        mut self,
        r: &mut BitReader<'_>,
        cfg: &Config,
        out: &mut [u8],
    ) -> Result<usize, DecompressError> {
        let id = self.rule.id;
        let fields = self.set.fields(self.rule);
        // Tables exported `--compiled-only` hold no descriptors for the interpreter.
        if let Nature::Compression(span) = self.rule.nature {
            if fields.len() != usize::from(span.len) {
                return Err(DecompressError::NoDescriptors(id));
            }
        }
        for (entry, fd) in fields.iter().enumerate() {
            if fd.di.applies(self.dir) {
                let d = self.decode(entry, fd, r, cfg)?;
                if matches!(d.val, Val::Compute) {
                    self.computed |= computed_bit(fd.fid);
                }
                let n = self.decoded.len();
                self.decoded
                    .push(d)
                    .map_err(|_| self.bad(entry, fd.fid, "more fields than the decoder tracks"))?;
                if let (1, Some(i)) = (fd.fp, fd.fid.header_index()) {
                    if let Some(slot) = self.header.get_mut(i).filter(|s| **s == 0) {
                        *slot = n as u8 + 1;
                    }
                }
            }
        }
        let limit = out.len();
        let too_long = |_| DecompressError::TooLong { rule: id, limit };
        let layer = rule_depth(fields);
        let first = cfg.first_layer;
        // Descriptors for the other direction do not count, as in compression. No layer lies
        // below IPv6, the usual first layer: no need to look then.
        if let Some((entry, fd)) = fields
            .iter()
            .enumerate()
            .filter(|_| first > Layer::Ipv6)
            .find(|(_, f)| f.di.applies(self.dir) && f.fid.layer() < first)
        {
            return Err(self.bad(
                entry,
                fd.fid,
                "the rule describes a layer below the first layer configured",
            ));
        }
        let mut w = BitWriter::new(out);
        let dev_first = self.dir == Direction::Up;
        if first == Layer::Ipv6 && layer >= Some(Layer::Ipv6) {
            let (a, b) = if dev_first {
                (
                    [Fid::Ipv6DevPrefix, Fid::Ipv6DevIid],
                    [Fid::Ipv6AppPrefix, Fid::Ipv6AppIid],
                )
            } else {
                (
                    [Fid::Ipv6AppPrefix, Fid::Ipv6AppIid],
                    [Fid::Ipv6DevPrefix, Fid::Ipv6DevIid],
                )
            };
            let order = [
                Fid::Ipv6Version,
                Fid::Ipv6TrafficClass,
                Fid::Ipv6FlowLabel,
                Fid::Ipv6PayloadLength,
                Fid::Ipv6NextHeader,
                Fid::Ipv6HopLimit,
                a[0],
                a[1],
                b[0],
                b[1],
            ];
            for fid in order {
                self.emit_header(fid, &mut w)?;
            }
        }
        if first <= Layer::Udp && layer >= Some(Layer::Udp) {
            let (s, d) = if dev_first {
                (Fid::UdpDevPort, Fid::UdpAppPort)
            } else {
                (Fid::UdpAppPort, Fid::UdpDevPort)
            };
            for fid in [s, d, Fid::UdpLength, Fid::UdpChecksum] {
                self.emit_header(fid, &mut w)?;
            }
        }
        if layer >= Some(Layer::Coap) {
            self.emit_coap(&mut w, r.remaining() >= 8)?;
        }
        let payload = r.remaining() / 8;
        w.copy_bits(self.input, r.position(), payload * 8)
            .map_err(too_long)?;
        let total = w.byte_len();
        let udp_start = if first == Layer::Ipv6 {
            IPV6_HEADER_LEN
        } else {
            0
        };
        patch_computed(out, total, first, udp_start, self.computed, id)?;
        Ok(total)
    }

    fn decode(
        &self,
        entry: usize,
        fd: &'a FieldDesc,
        r: &mut BitReader<'_>,
        cfg: &Config,
    ) -> Result<Decoded<'a>, DecompressError> {
        let id = self.rule.id;
        let trunc = |e: BitError| match e {
            BitError::Truncated {
                at,
                needed,
                available,
            } => DecompressError::Truncated {
                rule: id,
                entry,
                fid: fd.fid,
                bit: at,
                needed,
                available,
            },
            _ => DecompressError::BadField {
                rule: id,
                entry,
                fid: fd.fid,
                reason: "residue cannot be read",
            },
        };
        let tv_len = |i: usize| self.set.tv(fd, i).map_or(0, |t| t.len() * 8);
        // Length of a token described with fl-token-length: TKL bytes.
        let token_bits = || -> Result<usize, DecompressError> {
            let tkl = self
                .decoded
                .iter()
                .find(|d| d.fd.fid == Fid::CoapTkl)
                .ok_or(DecompressError::MissingField {
                    rule: id,
                    fid: Fid::CoapTkl,
                    fp: 1,
                })?;
            Ok(self.numeric(tkl)? as usize * 8)
        };
        let fixed = |fl: FieldLength| match fl {
            FieldLength::Fixed(l) => Some(l as usize),
            _ => None,
        };
        let (val, bits) = match fd.cda {
            Cda::NotSent => {
                let bits = match fd.fl {
                    FieldLength::Fixed(l) => l as usize,
                    FieldLength::Variable => tv_len(0),
                    FieldLength::TokenLength => token_bits()?,
                };
                (Val::Tv(0), bits)
            }
            Cda::ValueSent => {
                let bits = match fd.fl {
                    FieldLength::Fixed(l) => l as usize,
                    FieldLength::Variable => r.read_size_prefix().map_err(trunc)? * 8,
                    FieldLength::TokenLength => token_bits()?,
                };
                let off = r.skip(bits).map_err(trunc)?;
                (Val::Input(self.offset(entry, fd, off)?), bits)
            }
            Cda::MappingSent => {
                let count = self.set.tv_count(fd);
                let bit = r.position();
                let index = r.read(index_width(count)).map_err(trunc)?;
                if index as usize >= count {
                    return Err(DecompressError::MappingIndex {
                        rule: id,
                        entry,
                        fid: fd.fid,
                        bit,
                        index,
                        count,
                    });
                }
                let i = index as usize;
                let bits = match fd.fl {
                    FieldLength::Fixed(l) => l as usize,
                    FieldLength::Variable => tv_len(i),
                    FieldLength::TokenLength => token_bits()?,
                };
                // Below the count of target values, a u16.
                (Val::Tv(i as u16), bits)
            }
            Cda::Lsb => {
                let MatchingOperator::Msb(x) = fd.mo else {
                    return Err(self.bad(entry, fd.fid, "LSB without MSB"));
                };
                let x = x as usize;
                let (rest, bits) = match fd.fl {
                    FieldLength::Fixed(l) => {
                        let l = l as usize;
                        (l.checked_sub(x), l)
                    }
                    FieldLength::Variable => {
                        let n = r.read_size_prefix().map_err(trunc)? * 8;
                        (Some(n), x + n)
                    }
                    FieldLength::TokenLength => {
                        let l = token_bits()?;
                        (l.checked_sub(x), l)
                    }
                };
                let rest =
                    rest.ok_or_else(|| self.bad(entry, fd.fid, "MSB wider than the field"))?;
                if fd.fl == FieldLength::Variable && x % 8 != 0 {
                    return Err(self.bad(entry, fd.fid, "MSB of a variable length is not bytes"));
                }
                // (A missing target value is reported below.)
                if fd.fl == FieldLength::Variable
                    && self.set.tv(fd, 0).is_some_and(|t| t.len() * 8 < x)
                {
                    return Err(self.bad(entry, fd.fid, "target value shorter than MSB"));
                }
                let off = r.skip(rest).map_err(trunc)?;
                let off = self.offset(entry, fd, off)?;
                // `x` came from a u16.
                (Val::Lsb { off, x: x as u16 }, bits)
            }
            Cda::Compute => (Val::Compute, fixed(fd.fl).unwrap_or(16)),
            Cda::DevIid | Cda::AppIid => {
                let dev = fd.cda == Cda::DevIid;
                let iid = if dev { cfg.dev_iid } else { cfg.app_iid };
                if iid.is_none() {
                    return Err(DecompressError::MissingIid {
                        rule: id,
                        entry,
                        fid: fd.fid,
                    });
                }
                (Val::Iid(dev), 64)
            }
        };
        // A validated set has every target value reference resolved, every fixed-length
        // target value fitting its field and every header field at its protocol length
        // (`RuleSet::validate`): only a token's length, which comes from the packet's TKL, is
        // left to check per packet.
        if self.set.is_validated() && fd.fl != FieldLength::TokenLength {
            return Ok(Decoded {
                fd,
                val,
                bits: u32::try_from(bits).map_err(|_| self.bad(entry, fd.fid, "field too long"))?,
                entry: entry as u16,
            });
        }
        // The target value the field is rebuilt from must exist (unchecked sets) and fit.
        let used = match val {
            Val::Tv(i) => Some(usize::from(i)),
            Val::Lsb { .. } => Some(0),
            _ => None,
        };
        if let Some(i) = used {
            let Some(t) = self.set.tv(fd, i) else {
                return Err(self.bad(entry, fd.fid, "target value reference is out of range"));
            };
            if matches!(val, Val::Tv(_))
                && matches!(fd.fl, FieldLength::Fixed(_) | FieldLength::TokenLength)
                && !fits_right_aligned(t, bits)
            {
                return Err(self.bad(entry, fd.fid, "target value wider than the field"));
            }
        }
        if let Some(l) = fd.fid.fixed_len() {
            if bits != l as usize {
                return Err(self.bad(entry, fd.fid, "field length differs from the protocol's"));
            }
        }
        Ok(Decoded {
            fd,
            val,
            bits: u32::try_from(bits).map_err(|_| self.bad(entry, fd.fid, "field too long"))?,
            // Entries are counted by a u16 (`Span::len`).
            entry: entry as u16,
        })
    }

    /// A bit offset of the SCHC packet, as kept in a [`Val`].
    fn offset(&self, entry: usize, fd: &FieldDesc, off: usize) -> Result<u32, DecompressError> {
        u32::try_from(off).map_err(|_| self.bad(entry, fd.fid, "SCHC packet too long"))
    }

    /// The value of a decoded field of at most 64 bits.
    fn numeric(&self, d: &Decoded) -> Result<u64, DecompressError> {
        if d.bits > 64 {
            return Err(self.bad(d.entry(), d.fd.fid, "field wider than 64 bits"));
        }
        let mut buf = [0u8; 8];
        let mut w = BitWriter::new(&mut buf);
        self.emit_value(d, &mut w)
            .map_err(|_| self.bad(d.entry(), d.fd.fid, "field cannot be rebuilt"))?;
        Ok(get_bits(&buf, 0, d.bits))
    }

    // Always inlined on hosts, where its call overhead was a quarter of its cost; left to
    // the compiler on devices (flash).
    #[cfg_attr(feature = "std", inline(always))]
    fn emit_value(&self, d: &Decoded, w: &mut BitWriter<'_>) -> Result<(), BitError> {
        let tv = |i| self.set.tv(d.fd, i).unwrap_or(&[]);
        let bits = d.bits as usize;
        let var = d.fd.fl == FieldLength::Variable;
        // Fields of up to 64 bits are one read and one write; the low 64 bits of a target
        // value are what a field that narrow takes of it.
        let narrow = d.bits <= 64;
        match d.val {
            Val::Input(off) if narrow => {
                w.write(get_bits(self.input, off as usize, d.bits), d.bits)
            }
            Val::Input(off) => w.copy_bits(self.input, off as usize, bits),
            Val::Tv(i) if var => w.write_bytes(tv(usize::from(i))),
            Val::Tv(i) if narrow => w.write(tv_u64(tv(usize::from(i))), d.bits),
            Val::Tv(i) => write_right_aligned(w, tv(usize::from(i)), bits, bits),
            Val::Lsb { off, x } => {
                let x = usize::from(x);
                if var {
                    w.write_bytes(tv(0).get(..x / 8).unwrap_or(&[]))?;
                } else if narrow && x > 0 {
                    w.write(tv_u64(tv(0)) >> (bits - x), x as u32)?;
                } else {
                    write_right_aligned(w, tv(0), bits, x)?;
                }
                w.copy_bits(self.input, off as usize, bits - x)
            }
            Val::Iid(dev) => {
                let iid = if dev { self.iids.0 } else { self.iids.1 };
                w.write_bytes(&iid.unwrap_or_default())
            }
            Val::Compute => {
                let mut left = bits;
                while left > 0 {
                    let take = left.min(64);
                    w.write(0, take as u32)?;
                    left -= take;
                }
                Ok(())
            }
        }
    }

    fn find(&self, fid: Fid, fp: u8) -> Result<&Decoded<'a>, DecompressError> {
        let found = match (fp, fid.header_index()) {
            (1, Some(i)) => self
                .header
                .get(i)
                .and_then(|&n| self.decoded.get(usize::from(n).checked_sub(1)?)),
            _ => self
                .decoded
                .iter()
                .find(|d| d.fd.fid == fid && d.fd.fp == fp),
        };
        found.ok_or(DecompressError::MissingField {
            rule: self.rule.id,
            fid,
            fp,
        })
    }

    fn emit_header(&self, fid: Fid, w: &mut BitWriter<'_>) -> Result<(), DecompressError> {
        let d = self.find(fid, 1)?;
        self.emit_value(d, w).map_err(|_| DecompressError::TooLong {
            rule: self.rule.id,
            limit: w.position() / 8 + w.remaining() / 8,
        })
    }

    fn emit_coap(&self, w: &mut BitWriter<'_>, has_payload: bool) -> Result<(), DecompressError> {
        let id = self.rule.id;
        let limit = w.position() / 8 + w.remaining() / 8;
        let too_long = |_| DecompressError::TooLong { rule: id, limit };
        for fid in [
            Fid::CoapVersion,
            Fid::CoapType,
            Fid::CoapTkl,
            Fid::CoapCode,
            Fid::CoapMid,
        ] {
            self.emit_header(fid, w)?;
        }
        let tkl_entry = self.find(Fid::CoapTkl, 1)?;
        let tkl = self.numeric(tkl_entry)? as usize;
        match self.find(Fid::CoapToken, 1) {
            Ok(token) => {
                if token.bits as usize != tkl * 8 || tkl > 8 {
                    return Err(self.bad(
                        token.entry(),
                        Fid::CoapToken,
                        "token length differs from TKL",
                    ));
                }
                self.emit_value(token, w).map_err(too_long)?;
            }
            // A rule may leave out the token when TKL is 0.
            Err(_) if tkl == 0 => {}
            Err(e) => return Err(e),
        }

        // Options in (number, position) order.
        let mut opts: Vec<(u16, u8, usize), MAX_DECODED> = Vec::new();
        for (i, d) in self.decoded.iter().enumerate() {
            if let Fid::CoapOption(n) = d.fd.fid {
                // Capacity equals the decoded table's: cannot overflow.
                let _ = opts.push((n, d.fd.fp, i));
            }
        }
        // Insertion sort: a handful of options, usually already in order; the library sort
        // costs about 2 KB of flash on a device.
        for i in 1..opts.len() {
            let mut j = i;
            while j > 0 && opts.get(j - 1) > opts.get(j) {
                opts.swap(j - 1, j);
                j -= 1;
            }
        }
        let mut prev: u16 = 0;
        for &(number, _, i) in opts.iter() {
            let Some(d) = self.decoded.get(i) else {
                continue;
            };
            if d.bits % 8 != 0 {
                return Err(self.bad(d.entry(), d.fd.fid, "option value is not whole bytes"));
            }
            let len = d.bits as usize / 8;
            let delta = usize::from(number - prev);
            prev = number;
            let nibble = |v: usize| match v {
                0..=12 => (v as u64, 0u64, 0u32),
                13..=268 => (13, (v - 13) as u64, 8),
                _ => (14, (v - 269) as u64, 16),
            };
            let (dn, dx, dxl) = nibble(delta);
            let (ln, lx, lxl) = nibble(len);
            if len > 65535 + 269 {
                return Err(self.bad(d.entry(), d.fd.fid, "option value too long for CoAP"));
            }
            w.write((dn << 4) | ln, 8).map_err(too_long)?;
            w.write(dx, dxl).map_err(too_long)?;
            w.write(lx, lxl).map_err(too_long)?;
            self.emit_value(d, w).map_err(too_long)?;
        }
        if has_payload {
            w.write(0xFF, 8).map_err(too_long)?;
        }
        Ok(())
    }
}

/// Writes the computed fields (`computed`: [`computed_bit`]s) of the rebuilt packet `out` of
/// `total` bytes: IPv6 payload length, UDP length, then the UDP checksum.
fn patch_computed(
    out: &mut [u8],
    total: usize,
    first: Layer,
    udp_start: usize,
    computed: u8,
    id: RuleId,
) -> Result<(), DecompressError> {
    let computed = |fid| computed & computed_bit(fid) != 0;
    let put = |out: &mut [u8], at: usize, v: u16| {
        if let Some(s) = out.get_mut(at..at + 2) {
            s.copy_from_slice(&v.to_be_bytes());
        }
    };
    let len16 = |fid, from: usize| {
        total
            .checked_sub(from)
            .and_then(|l| u16::try_from(l).ok())
            .ok_or(DecompressError::BadField {
                rule: id,
                entry: 0,
                fid,
                reason: "computed length does not fit 16 bits",
            })
    };
    if computed(Fid::Ipv6PayloadLength) && first == Layer::Ipv6 {
        put(out, 4, len16(Fid::Ipv6PayloadLength, IPV6_HEADER_LEN)?);
    }
    if computed(Fid::UdpLength) && total >= udp_start + UDP_HEADER_LEN {
        put(out, udp_start + 4, len16(Fid::UdpLength, udp_start)?);
    }
    if computed(Fid::UdpChecksum)
        && first == Layer::Ipv6
        && total >= IPV6_HEADER_LEN + UDP_HEADER_LEN
    {
        let c = udp_checksum(out.get(..total).unwrap_or(&[]));
        put(out, 46, c);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The no-compression rule gives its packet back after a rule ID of any length (the
    /// packet's bytes at every alignment), through `decompress_bits` and through
    /// `decompress_compiled`, whose device build reads the bytes with `get_bits` (run with
    /// `--no-default-features` too).
    #[test]
    fn no_compression_after_rule_ids_of_every_length() {
        let packet = [0x60u8, 0x12, 0x34, 0xFF, 0x00, 0xA5, 0x5A];
        for len in 1..=16u8 {
            let rules = [Rule {
                id: RuleId::new(1, len),
                nature: Nature::NoCompression,
            }];
            let set = RuleSet::new_unchecked(&rules, &[], &[], &[]);
            let mut schc = [0u8; 16];
            let mut w = crate::bits::BitWriter::new(&mut schc);
            w.write(1, u32::from(len)).unwrap();
            for b in packet {
                w.write(u64::from(b), 8).unwrap();
            }
            let bits = w.position();
            let cfg = Config::default();
            for compiled in [false, true] {
                let mut out = [0u8; 16];
                let d = if compiled {
                    decompress_compiled(&set, &schc, bits, Direction::Up, &cfg, &mut out)
                } else {
                    decompress_bits(&set, &schc, bits, Direction::Up, &cfg, &mut out)
                };
                let d = d.unwrap();
                assert_eq!(
                    (d.rule_id, d.len),
                    (rules[0].id, packet.len()),
                    "ID length {len}"
                );
                assert_eq!(out[..d.len], packet, "ID length {len}, compiled {compiled}");
            }
        }
    }

    #[test]
    fn index_widths() {
        assert_eq!(
            [0, 1, 2, 3, 4, 5, 8, 9, 256, 257].map(index_width),
            [0, 0, 1, 2, 2, 3, 3, 4, 8, 9]
        );
    }

    #[test]
    fn right_aligned_writes() {
        let mut buf = [0u8; 4];
        let mut w = BitWriter::new(&mut buf);
        write_right_aligned(&mut w, &[0x00, 0x06], 4, 4).unwrap();
        write_right_aligned(&mut w, &[0x06], 4, 4).unwrap();
        write_right_aligned(&mut w, &[0x12], 20, 12).unwrap(); // top 12 of 0x00012
        assert_eq!(w.position(), 20);
        assert_eq!(get_bits(&buf, 0, 20), 0x66000);
    }

    /// RFC 768 as written: 16-bit big-endian words, the odd last byte padded with zero.
    fn checksum_by_pairs(pkt: &[u8]) -> u16 {
        let udp = pkt.get(40..).unwrap_or(&[]);
        let udp_len = u16::from_be_bytes([pkt[44], pkt[45]]);
        let mut sum: u64 = u64::from(udp_len) + 17;
        let words = |b: &[u8]| -> u64 {
            b.chunks(2)
                .map(|c| u64::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
                .sum()
        };
        sum += words(&pkt[8..40]);
        sum += words(&udp[..6]);
        sum += words(udp.get(8..).unwrap_or(&[]));
        while sum > 0xFFFF {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        match !(sum as u16) {
            0 => 0xFFFF,
            c => c,
        }
    }

    #[test]
    fn checksum_agrees_with_pairwise_sum_at_every_length() {
        // Lengths 46..=200 cover every tail shape (0 to 7 bytes after the 8-byte words) and
        // the packets that end inside the checksum; all-0xFF bytes make every 64-bit add
        // carry, the xorshift bytes vary the lanes. Shorter slices do not panic.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for len in 0..46 {
            let _ = udp_checksum(&[0xFF; 64][..len]);
        }
        for len in 46..=200usize {
            for fill in 0..3 {
                let p: std::vec::Vec<u8> = (0..len)
                    .map(|i| match fill {
                        0 => 0xFF,
                        1 => i as u8,
                        _ => {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            x as u8
                        }
                    })
                    .collect();
                assert_eq!(
                    udp_checksum(&p),
                    checksum_by_pairs(&p),
                    "len {len} fill {fill}"
                );
            }
        }
        // A sum of 0xFFFF (UDP length 10 twice, 17, and the payload word) reports 0xFFFF,
        // not 0.
        let mut p = [0u8; 50];
        p[44..46].copy_from_slice(&10u16.to_be_bytes());
        p[48..50].copy_from_slice(&(0xFFFF - 37u16).to_be_bytes());
        assert_eq!(checksum_by_pairs(&p), 0xFFFF);
        assert_eq!(udp_checksum(&p), 0xFFFF);
    }

    #[test]
    fn checksum_holds_exactly_when_the_field_is_the_checksum() {
        // Every tail shape, the field right, off by one, 0 and 0xFFFF; and a sum of 0xFFFF,
        // whose checksum is sent as 0xFFFF: 0 (the same one's complement zero) must not hold.
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for len in 0..48 {
            assert!(!udp_checksum_holds(&[0xFF; 64][..len]));
        }
        for len in 48..=120usize {
            let mut p: std::vec::Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let c = udp_checksum(&p);
            for field in [c, c.wrapping_add(1), c ^ 0x0100, 0, 0xFFFF] {
                p[46..48].copy_from_slice(&field.to_be_bytes());
                assert_eq!(
                    udp_checksum_holds(&p),
                    field == c,
                    "len {len} field {field:#x}"
                );
            }
        }
        let mut p = [0u8; 50];
        p[44..46].copy_from_slice(&10u16.to_be_bytes());
        p[48..50].copy_from_slice(&(0xFFFF - 37u16).to_be_bytes());
        p[46..48].copy_from_slice(&0xFFFFu16.to_be_bytes());
        assert!(udp_checksum_holds(&p));
        p[46..48].copy_from_slice(&[0, 0]);
        assert!(!udp_checksum_holds(&p));
    }

    #[test]
    fn checksum_of_shared_vector() {
        // ipv6-udp-all-not-sent-up: checksum 0x9eca.
        let p: std::vec::Vec<u8> = (0..)
            .step_by(2)
            .take_while(|&i| i < 116)
            .map(|i| u8::from_str_radix(&"600000000012114020010db8000a000b000000000000005720010db8000100020000000000000401f0b1f0b200129eca68656c6c6f2073636863"[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(udp_checksum(&p), 0x9eca);
    }
}
