//! Rule learning (feature `std`): an RFC 9363 rule set synthesised from sample traffic.
//!
//! [`Learner`] collects IPv6 packets with their direction; [`Learner::learn`] returns a
//! validated [`RuleSetBuf`] that compresses every one of them and decompresses it byte for
//! byte (checked), and a [`Report`] of what it found. The method:
//!
//! 1. **Shapes.** Packets are grouped by what decides a rule's field list ("all and only"):
//!    direction, the layers present (IPv6, UDP, CoAP), whether there is a CoAP token, and the
//!    CoAP options by number and position. Shapes with fewer than `min_support` packets get no
//!    rule of their own.
//! 2. **Fields.** For each field of a group, the cheapest action that fits every value seen
//!    (see [`Learner::learn`] for the exact choices): a constant is `equal`/`not-sent`; lengths
//!    and the UDP checksum are `compute` when every packet holds the computed value; a small,
//!    stable set of values (each seen several times) is `match-mapping`/`mapping-sent`;
//!    values sharing their high bits are `MSB(x)`/`LSB`, with `x` taken from the data less a
//!    safety margin; anything else is `value-sent`. The CoAP Message ID and Observe are counters:
//!    never a constant nor a mapping.
//! 3. **Flows and splits.** While the rule budget allows, the group and the field value whose
//!    split (packets with that value / the others) saves the most residue bits is split in two:
//!    this separates flows (addresses, ports), CoAP codes and types, tokens of observations,
//!    option lengths. Counters are never split on.
//! 4. **Catch-alls.** For each direction, an IPv6+UDP rule learned from all of that direction's
//!    UDP packets (the rest of the packet is payload) catches what the specific rules miss (a
//!    new option, a counter out of its learned range) far more cheaply than no compression.
//! 5. **Rule IDs** of `rule_id_bits` bits, the most frequent rule first; the all-ones ID is the
//!    no-compression rule, always present.
//!
//! Learning keeps the sample packets in memory (up to [`LearnOptions::max_samples`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use crate::bits::get_bits;
use crate::codec::udp_checksum;
use crate::packet::{Headers, IPV6_HEADER_LEN};
use crate::ratio::{Devices, Study, Totals};
use crate::rule::{
    Cda, Direction, DirectionIndicator, Fid, FieldLength, FieldSpec, Layer, MatchingOperator,
    RuleError, RuleId, RuleSetBuf,
};

/// Learning parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnOptions {
    /// Rule ID length in bits (1 to 16); default 4.
    pub rule_id_bits: u8,
    /// Most compression rules (default and maximum: 2^bits − 1, one ID is the no-compression
    /// rule's).
    pub max_rules: Option<usize>,
    /// Most target values in a match-mapping list (default 16).
    pub max_mapping: usize,
    /// Fewest packets for a rule of its own (default: 0.5 % of the samples, at least 2).
    pub min_support: Option<usize>,
    /// Bits taken off the MSB length found in the data, so that counters may grow (default 1).
    pub lsb_margin: u32,
    /// Send the UDP checksum instead of computing it (RFC 8724 §10.11 allows compute only when
    /// another layer protects the packet as well); default false.
    pub send_checksum: bool,
    /// Most sample packets kept (default 1,000,000); later ones are counted but not learned from.
    pub max_samples: usize,
}

impl Default for LearnOptions {
    fn default() -> Self {
        Self {
            rule_id_bits: 4,
            max_rules: None,
            max_mapping: 16,
            min_support: None,
            lsb_margin: 1,
            send_checksum: false,
            max_samples: 1_000_000,
        }
    }
}

/// Why learning failed.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// Bad options.
    #[error("{0}")]
    Options(String),
    /// No IPv6 packet to learn from.
    #[error("no IPv6 packet to learn from")]
    NoPackets,
    /// The learned rules are inconsistent (a bug).
    #[error("the learned rules are invalid: {0}")]
    Rule(#[from] RuleError),
    /// Building the tables failed.
    #[error("{0}")]
    Build(&'static str),
    /// Some sample packets do not come back byte for byte (a bug).
    #[error("{0} of the sample packets do not round-trip with the learned rules")]
    RoundTrip(u64),
}

/// One learned rule, for reports.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnedRule {
    /// Its ID.
    pub id: RuleId,
    /// What it describes, e.g. `up CoAP NON 2.05 token [Observe, Content-Format]`.
    pub description: String,
    /// Sample packets in its group.
    pub packets: usize,
    /// Average residue bits per packet of its group.
    pub residue_bits: f64,
}

/// What [`Learner::learn`] found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The rules, in ID order (without the no-compression rule).
    pub rules: Vec<LearnedRule>,
    /// The no-compression rule's ID.
    pub no_compression: RuleId,
    /// Sample packets learned from.
    pub samples: usize,
    /// Packets offered beyond [`LearnOptions::max_samples`].
    pub dropped: u64,
    /// The study of the learned rules on the samples.
    pub train: Totals,
}

/// A sample packet.
struct Sample {
    dir: Direction,
    data: Vec<u8>,
}

/// Collects sample packets and learns a rule set from them.
pub struct Learner {
    opts: LearnOptions,
    samples: Vec<Sample>,
    dropped: u64,
}

/// A field of a shape: FID and position.
type Key = (Fid, u8);

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Shape {
    up: bool,
    depth: u8,
    token: bool,
    options: Vec<(u16, u8)>,
}

impl Shape {
    fn layer(&self) -> Option<Layer> {
        match self.depth {
            1 => Some(Layer::Ipv6),
            2 => Some(Layer::Udp),
            3 => Some(Layer::Coap),
            _ => None,
        }
    }

    /// The fields in rule order.
    fn fields(&self) -> Vec<Key> {
        let mut k = Vec::new();
        if self.depth >= 1 {
            for f in [
                Fid::Ipv6Version,
                Fid::Ipv6TrafficClass,
                Fid::Ipv6FlowLabel,
                Fid::Ipv6PayloadLength,
                Fid::Ipv6NextHeader,
                Fid::Ipv6HopLimit,
                Fid::Ipv6DevPrefix,
                Fid::Ipv6DevIid,
                Fid::Ipv6AppPrefix,
                Fid::Ipv6AppIid,
            ] {
                k.push((f, 1));
            }
        }
        if self.depth >= 2 {
            for f in [
                Fid::UdpDevPort,
                Fid::UdpAppPort,
                Fid::UdpLength,
                Fid::UdpChecksum,
            ] {
                k.push((f, 1));
            }
        }
        if self.depth >= 3 {
            for f in [
                Fid::CoapVersion,
                Fid::CoapType,
                Fid::CoapTkl,
                Fid::CoapCode,
                Fid::CoapMid,
            ] {
                k.push((f, 1));
            }
            if self.token {
                k.push((Fid::CoapToken, 1));
            }
            for &(n, p) in &self.options {
                k.push((Fid::CoapOption(n), p));
            }
        }
        k
    }
}

/// A distinct value of a field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Val {
    bytes: Vec<u8>,
    /// The value as a number (fields up to 64 bits).
    num: u64,
}

/// A field's values over a shape's samples: one id per sample into `dict`.
struct Column {
    key: Key,
    /// Width in bits for fixed fields, `None` for the token and options.
    width: Option<u16>,
    ids: Vec<u32>,
    dict: Vec<Val>,
}

/// A shape's samples and their columns.
struct ShapeData {
    shape: Shape,
    samples: Vec<usize>,
    columns: Vec<Column>,
    /// Per sample: IPv6 payload length, UDP length, UDP checksum hold the computed value.
    computed_ok: Vec<[bool; 3]>,
}

/// A candidate rule: a subset of a shape's samples (indices into `ShapeData::samples`).
struct Group {
    shape: usize,
    members: Vec<u32>,
}

/// An action chosen for a field and its cost.
struct Choice {
    bits: u64,
    fl: FieldLength,
    mo: MatchingOperator,
    cda: Cda,
    tv: Vec<Vec<u8>>,
}

fn size_prefix_bits(len: usize) -> u64 {
    match len {
        0..=14 => 4,
        15..=254 => 12,
        _ => 28,
    }
}

fn bit_len(x: u64) -> u32 {
    64 - x.leading_zeros()
}

fn index_bits(n: usize) -> u64 {
    if n <= 1 {
        0
    } else {
        u64::from(usize::BITS - (n - 1).leading_zeros())
    }
}

fn num_bytes(v: u64, width: u16) -> Vec<u8> {
    let n = usize::from(width).div_ceil(8).max(1);
    v.to_be_bytes()[8 - n.min(8)..].to_vec()
}

impl Learner {
    /// A learner with these options.
    pub fn new(opts: LearnOptions) -> Result<Self, LearnError> {
        if opts.rule_id_bits == 0 || opts.rule_id_bits > 16 {
            return Err(LearnError::Options(
                "--rule-id-bits must be 1 to 16".to_string(),
            ));
        }
        let cap = (1usize << opts.rule_id_bits) - 1;
        if let Some(k) = opts.max_rules {
            if k == 0 || k > cap {
                return Err(LearnError::Options(format!(
                    "--max-rules must be 1 to {cap} with {}-bit rule IDs (one ID is the no-compression rule's)",
                    opts.rule_id_bits
                )));
            }
        }
        Ok(Self {
            opts,
            samples: Vec::new(),
            dropped: 0,
        })
    }

    /// Adds an IPv6 packet going `dir` (non-IPv6 data is ignored).
    pub fn add(&mut self, packet: &[u8], dir: Direction) {
        if packet.len() < IPV6_HEADER_LEN || packet[0] >> 4 != 6 {
            return;
        }
        if self.samples.len() >= self.opts.max_samples {
            self.dropped += 1;
            return;
        }
        self.samples.push(Sample {
            dir,
            data: packet.to_vec(),
        });
    }

    /// Sample packets collected.
    pub fn samples(&self) -> usize {
        self.samples.len()
    }

    fn min_support(&self) -> usize {
        self.opts
            .min_support
            .unwrap_or(self.samples.len() / 200)
            .max(2)
    }

    /// Learns the rule set (see the module documentation), checks that every sample packet
    /// round-trips, and reports.
    ///
    /// Field actions, for the values a group of packets shows:
    /// - IPv6 payload length and UDP length: `compute` when every packet's length is right;
    ///   the UDP checksum likewise (unless `send_checksum`);
    /// - one value (not a counter): `equal`/`not-sent`;
    /// - 2 to `max_mapping` values, each seen 3 times on average (not a counter):
    ///   `match-mapping`/`mapping-sent` on ⌈log2 n⌉ bits, most frequent value first;
    /// - values of one fixed width that share their top `x` bits (less `lsb_margin`):
    ///   `MSB(x)`/`LSB`;
    /// - otherwise `value-sent` (with a size prefix for options of varying length);
    ///
    /// whichever sends the fewest bits over the group.
    pub fn learn(&self) -> Result<(RuleSetBuf, Report), LearnError> {
        if self.samples.is_empty() {
            return Err(LearnError::NoPackets);
        }
        let bits = self.opts.rule_id_bits;
        let budget = self.opts.max_rules.unwrap_or((1usize << bits) - 1);
        let min_support = self.min_support();

        // 1. Shapes.
        let mut by_shape: BTreeMap<Shape, Vec<usize>> = BTreeMap::new();
        for (i, s) in self.samples.iter().enumerate() {
            by_shape.entry(shape_of(s)).or_default().push(i);
        }
        // Catch-alls: per direction, IPv6+UDP (and IPv6 alone if some packets have no UDP).
        let mut catch_alls: Vec<Shape> = Vec::new();
        for up in [true, false] {
            for depth in [2u8, 1] {
                let any = by_shape.keys().any(|s| s.up == up && s.depth >= depth);
                let needed = depth == 2 || by_shape.keys().any(|s| s.up == up && s.depth == 1);
                if any && needed {
                    catch_alls.push(Shape {
                        up,
                        depth,
                        token: false,
                        options: Vec::new(),
                    });
                }
            }
        }
        let mut shapes: Vec<(Shape, Vec<usize>)> = by_shape
            .into_iter()
            .filter(|(s, v)| v.len() >= min_support && s.depth >= 1)
            .collect();
        shapes.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
        // Keep room for the catch-alls, unless the budget is too small for any.
        let reserve = if budget > catch_alls.len() {
            catch_alls.len()
        } else {
            0
        };
        if reserve == 0 {
            catch_alls.clear();
        }
        // A catch-all identical to a specific shape (non-CoAP UDP traffic) is not needed twice.
        catch_alls.retain(|c| !shapes.iter().any(|(s, _)| s == c));
        let reserve = catch_alls.len();
        let specific = budget - reserve;
        shapes.truncate(specific);

        let mut data: Vec<ShapeData> = shapes
            .into_iter()
            .map(|(shape, samples)| self.shape_data(shape, samples))
            .collect();
        let mut groups: Vec<Group> = data
            .iter()
            .enumerate()
            .map(|(i, d)| Group {
                shape: i,
                members: (0..d.samples.len() as u32).collect(),
            })
            .collect();

        // 3. Splits while the budget allows.
        while groups.len() < specific {
            let mut best: Option<(u64, usize, usize, Split)> = None;
            for (gi, g) in groups.iter().enumerate() {
                let d = &data[g.shape];
                let base = self.group_cost(d, &g.members);
                for (ci, col) in d.columns.iter().enumerate() {
                    for split in self.split_candidates(d, col, &g.members, min_support) {
                        let (a, b) = partition(d, ci, &split, &g.members);
                        let cost = self.group_cost(d, &a) + self.group_cost(d, &b);
                        let saving = base.saturating_sub(cost);
                        if saving > 0 && best.as_ref().is_none_or(|x| saving > x.0) {
                            best = Some((saving, gi, ci, split));
                        }
                    }
                }
            }
            let Some((_, gi, ci, split)) = best else {
                break;
            };
            let g = groups.swap_remove(gi);
            let (a, b) = partition(&data[g.shape], ci, &split, &g.members);
            groups.push(Group {
                shape: g.shape,
                members: a,
            });
            groups.push(Group {
                shape: g.shape,
                members: b,
            });
        }
        groups.sort_by_key(|g| std::cmp::Reverse(g.members.len()));

        // 4. Catch-alls, learned from every packet of their direction that has their layers.
        let first_catch_all = data.len();
        for c in &catch_alls {
            let members: Vec<usize> = self
                .samples
                .iter()
                .enumerate()
                .filter(|(_, s)| {
                    (s.dir == Direction::Up) == c.up
                        && Headers::parse(&s.data, s.dir).depth() >= c.layer()
                })
                .map(|(i, _)| i)
                .collect();
            let n = members.len() as u32;
            data.push(self.shape_data(c.clone(), members));
            groups.push(Group {
                shape: data.len() - 1,
                members: (0..n).collect(),
            });
        }

        // 5. Rules and IDs.
        let mut buf = RuleSetBuf::new();
        let mut rules = Vec::new();
        for (k, g) in groups.iter().enumerate() {
            let d = &data[g.shape];
            let id = RuleId::new(k as u32, bits);
            let di = if d.shape.up {
                DirectionIndicator::Up
            } else {
                DirectionIndicator::Down
            };
            let mut entries = Vec::new();
            let mut residue = 0u64;
            for col in &d.columns {
                let c = self.choose(d, col, &g.members);
                residue += c.bits;
                entries.push(FieldSpec {
                    fid: col.key.0,
                    fl: c.fl,
                    fp: col.key.1,
                    di,
                    tv: c.tv,
                    mo: c.mo,
                    cda: c.cda,
                });
            }
            buf.push_compression(id, &entries)
                .map_err(LearnError::Build)?;
            let n = g.members.len().max(1);
            rules.push(LearnedRule {
                id,
                description: describe(d, g, g.shape >= first_catch_all),
                packets: g.members.len(),
                residue_bits: residue as f64 / n as f64,
            });
        }
        let no_comp = RuleId::new((1u32 << bits) - 1, bits);
        buf.push_no_compression(no_comp);
        buf.validate()?;

        // Every sample must round-trip.
        let set = buf.as_set();
        let mut study = Study::new(set, Devices::new(Vec::new(), "learning"));
        for s in &self.samples {
            study.add_ipv6_dir(&s.data, s.dir, true);
        }
        let train = study.totals().clone();
        if train.roundtrip_failures > 0 {
            return Err(LearnError::RoundTrip(train.roundtrip_failures));
        }
        drop(study);
        Ok((
            buf,
            Report {
                rules,
                no_compression: no_comp,
                samples: self.samples.len(),
                dropped: self.dropped,
                train,
            },
        ))
    }

    fn shape_data(&self, shape: Shape, samples: Vec<usize>) -> ShapeData {
        let keys = shape.fields();
        let mut columns: Vec<Column> = keys
            .iter()
            .map(|&key| Column {
                key,
                width: if matches!(key.0, Fid::CoapToken | Fid::CoapOption(_)) {
                    None
                } else {
                    key.0.fixed_len()
                },
                ids: Vec::with_capacity(samples.len()),
                dict: Vec::new(),
            })
            .collect();
        let mut index: Vec<HashMap<Val, u32>> = vec![HashMap::new(); columns.len()];
        let mut computed_ok = Vec::with_capacity(samples.len());
        for &si in &samples {
            let s = &self.samples[si];
            let h = Headers::parse(&s.data, s.dir);
            for (col, idx) in columns.iter_mut().zip(index.iter_mut()) {
                let f = h.field(col.key.0, col.key.1).unwrap_or_default();
                let val = if let Some(w) = col.width {
                    let num = get_bits(&s.data, f.off as usize, u32::from(w).min(64));
                    Val {
                        bytes: num_bytes(num, w),
                        num,
                    }
                } else {
                    let bytes = s.data.get(f.bytes()).unwrap_or(&[]).to_vec();
                    let num = if bytes.len() <= 8 {
                        bytes.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b))
                    } else {
                        0
                    };
                    Val { bytes, num }
                };
                let next = col.dict.len() as u32;
                let id = *idx.entry(val.clone()).or_insert_with(|| {
                    col.dict.push(val);
                    next
                });
                col.ids.push(id);
            }
            let len = s.data.len();
            let be16 = |at: usize| {
                s.data
                    .get(at..at + 2)
                    .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
            };
            let udp = h.depth() >= Some(Layer::Udp);
            computed_ok.push([
                usize::from(be16(4)) == len - IPV6_HEADER_LEN,
                udp && usize::from(be16(44)) == len - IPV6_HEADER_LEN,
                udp && !self.opts.send_checksum && be16(46) == udp_checksum(&s.data),
            ]);
        }
        ShapeData {
            shape,
            samples,
            columns,
            computed_ok,
        }
    }

    fn group_cost(&self, d: &ShapeData, members: &[u32]) -> u64 {
        d.columns
            .iter()
            .map(|c| self.choose(d, c, members).bits)
            .sum()
    }

    /// The cheapest action for one field over `members`.
    fn choose(&self, d: &ShapeData, col: &Column, members: &[u32]) -> Choice {
        let n = members.len() as u64;
        let fid = col.key.0;
        // Histogram over the members.
        let mut counts: HashMap<u32, u64> = HashMap::new();
        for &m in members {
            *counts.entry(col.ids[m as usize]).or_default() += 1;
        }
        let mut hist: Vec<(u32, u64)> = counts.into_iter().collect();
        hist.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let distinct = hist.len();
        let vals: Vec<&Val> = hist.iter().map(|(id, _)| &col.dict[*id as usize]).collect();
        let counter = matches!(fid, Fid::CoapMid | Fid::CoapOption(6));
        let fixed = |l: u16| FieldLength::Fixed(l);
        // A checksum that cannot be computed is noise: sent whole, never matched.
        let noise = fid == Fid::UdpChecksum;

        // Computed fields.
        let computable = match fid {
            Fid::Ipv6PayloadLength => Some(0),
            Fid::UdpLength => Some(1),
            Fid::UdpChecksum => Some(2),
            _ => None,
        };
        if let Some(k) = computable {
            if members.iter().all(|&m| d.computed_ok[m as usize][k]) {
                return Choice {
                    bits: 0,
                    fl: fixed(16),
                    mo: MatchingOperator::Ignore,
                    cda: Cda::Compute,
                    tv: Vec::new(),
                };
            }
        }

        let mut best: Option<Choice> = None;
        let mut offer = |c: Choice| {
            if best.as_ref().is_none_or(|b| c.bits < b.bits) {
                best = Some(c);
            }
        };
        let lengths: Vec<usize> = {
            let mut l: Vec<usize> = vals.iter().map(|v| v.bytes.len()).collect();
            l.sort_unstable();
            l.dedup();
            l
        };
        // The field length for equal and mapping.
        let (var_fl, width) = match (col.width, fid) {
            (Some(w), _) => (fixed(w), Some(w)),
            (None, Fid::CoapToken) => (
                FieldLength::TokenLength,
                (lengths.len() == 1).then(|| (lengths[0] * 8) as u16),
            ),
            (None, _) => (
                FieldLength::Variable,
                (lengths.len() == 1).then(|| (lengths[0] * 8) as u16),
            ),
        };
        if distinct == 1 && !counter && !noise {
            offer(Choice {
                bits: 0,
                fl: var_fl,
                mo: MatchingOperator::Equal,
                cda: Cda::NotSent,
                tv: vec![vals[0].bytes.clone()],
            });
        }
        if !counter
            && !noise
            && (2..=self.opts.max_mapping).contains(&distinct)
            && n >= 3 * distinct as u64
        {
            offer(Choice {
                bits: n * index_bits(distinct),
                fl: var_fl,
                mo: MatchingOperator::MatchMapping,
                cda: Cda::MappingSent,
                tv: vals.iter().map(|v| v.bytes.clone()).collect(),
            });
        }
        // MSB/LSB on one fixed width of at most 64 bits.
        if let Some(w) = width.filter(|&w| (1..=64).contains(&w) && !noise) {
            let min = vals.iter().map(|v| v.num).min().unwrap_or(0);
            let max = vals.iter().map(|v| v.num).max().unwrap_or(0);
            let shared = u32::from(w) - bit_len(min ^ max).min(u32::from(w));
            let x = shared.saturating_sub(self.opts.lsb_margin);
            if x > 0 && x < u32::from(w) {
                let shift = u32::from(w) - x;
                let tv = if shift >= 64 {
                    0
                } else {
                    (min >> shift) << shift
                };
                let fl = if col.width.is_some() || fid == Fid::CoapToken {
                    if col.width.is_some() {
                        fixed(w)
                    } else {
                        FieldLength::TokenLength
                    }
                } else {
                    fixed(w)
                };
                offer(Choice {
                    bits: n * u64::from(shift),
                    fl,
                    mo: MatchingOperator::Msb(x as u16),
                    cda: Cda::Lsb,
                    tv: vec![num_bytes(tv, w)],
                });
            }
        }
        // Value-sent.
        let (fl, bits) = match (col.width, fid) {
            (Some(w), _) => (fixed(w), n * u64::from(w)),
            (None, Fid::CoapToken) => (
                FieldLength::TokenLength,
                hist.iter()
                    .map(|(id, c)| c * 8 * col.dict[*id as usize].bytes.len() as u64)
                    .sum(),
            ),
            (None, _) => match width {
                Some(w) => (fixed(w), n * u64::from(w)),
                None => (
                    FieldLength::Variable,
                    hist.iter()
                        .map(|(id, c)| {
                            let l = col.dict[*id as usize].bytes.len();
                            c * (size_prefix_bits(l) + 8 * l as u64)
                        })
                        .sum(),
                ),
            },
        };
        offer(Choice {
            bits,
            fl,
            mo: MatchingOperator::Ignore,
            cda: Cda::ValueSent,
            tv: Vec::new(),
        });
        best.unwrap_or(Choice {
            bits: 0,
            fl: FieldLength::Variable,
            mo: MatchingOperator::Ignore,
            cda: Cda::ValueSent,
            tv: Vec::new(),
        })
    }

    fn split_candidates(
        &self,
        d: &ShapeData,
        col: &Column,
        members: &[u32],
        min_support: usize,
    ) -> Vec<Split> {
        let fid = col.key.0;
        if matches!(
            fid,
            Fid::CoapMid | Fid::Ipv6PayloadLength | Fid::UdpLength | Fid::UdpChecksum
        ) {
            return Vec::new();
        }
        // A counter's values are never split on; its length may be (Observe grows from 1 to 3
        // bytes: each length then gets a fixed-length LSB).
        let counter = fid == Fid::CoapOption(6);
        let _ = d;
        let mut counts: HashMap<u32, usize> = HashMap::new();
        let mut lens: HashMap<usize, usize> = HashMap::new();
        for &m in members {
            let id = col.ids[m as usize];
            *counts.entry(id).or_default() += 1;
            if col.width.is_none() {
                *lens.entry(col.dict[id as usize].bytes.len()).or_default() += 1;
            }
        }
        let n = members.len();
        let mut out = Vec::new();
        if !counter && counts.len() >= 2 && counts.len() <= self.opts.max_mapping {
            let mut v: Vec<(u32, usize)> = counts.into_iter().collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            for (id, c) in v.into_iter().take(4) {
                if c >= min_support && n - c >= min_support {
                    out.push(Split::Value(id));
                }
            }
        }
        if lens.len() >= 2 {
            let mut v: Vec<(usize, usize)> = lens.into_iter().collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            for (l, c) in v.into_iter().take(4) {
                if c >= min_support && n - c >= min_support {
                    out.push(Split::Length(l));
                }
            }
        }
        out
    }
}

/// A binary split of a group on one field.
#[derive(Debug, Clone, Copy)]
enum Split {
    /// This value / the others.
    Value(u32),
    /// Values of this length in bytes / the others.
    Length(usize),
}

fn partition(d: &ShapeData, ci: usize, split: &Split, members: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let col = &d.columns[ci];
    members.iter().partition(|&&m| {
        let id = col.ids[m as usize];
        match *split {
            Split::Value(v) => id == v,
            Split::Length(l) => col.dict[id as usize].bytes.len() == l,
        }
    })
}

fn shape_of(s: &Sample) -> Shape {
    let h = Headers::parse(&s.data, s.dir);
    let depth = match h.depth() {
        None => 0,
        Some(Layer::Ipv6) => 1,
        Some(Layer::Udp) => 2,
        Some(Layer::Coap) => 3,
    };
    Shape {
        up: s.dir == Direction::Up,
        depth,
        token: depth == 3 && h.field(Fid::CoapToken, 1).is_some_and(|f| f.len > 0),
        options: if depth == 3 {
            h.options().map(|o| (o.number, o.position)).collect()
        } else {
            Vec::new()
        },
    }
}

const OPTION_SHORT: [(u16, &str); 12] = [
    (1, "If-Match"),
    (3, "Uri-Host"),
    (4, "ETag"),
    (6, "Observe"),
    (8, "Location-Path"),
    (11, "Uri-Path"),
    (12, "Content-Format"),
    (14, "Max-Age"),
    (15, "Uri-Query"),
    (17, "Accept"),
    (23, "Block2"),
    (27, "Block1"),
];

fn describe(d: &ShapeData, g: &Group, catch_all: bool) -> String {
    let s = &d.shape;
    let mut out = String::from(if s.up { "up" } else { "down" });
    if catch_all {
        let what = if s.depth == 2 { "IPv6/UDP" } else { "IPv6" };
        let _ = write!(out, " {what} catch-all (the rest is payload)");
        return out;
    }
    let constant = |fid: Fid| {
        let col = d.columns.iter().find(|c| c.key == (fid, 1))?;
        let first = col.ids[*g.members.first()? as usize];
        g.members
            .iter()
            .all(|&m| col.ids[m as usize] == first)
            .then(|| col.dict[first as usize].num)
    };
    match s.depth {
        1 => out.push_str(" IPv6"),
        2 => out.push_str(" IPv6/UDP"),
        _ => {
            out.push_str(" CoAP");
            if let Some(t) = constant(Fid::CoapType) {
                out.push(' ');
                out.push_str(["CON", "NON", "ACK", "RST"][(t & 3) as usize]);
            }
            match constant(Fid::CoapCode) {
                Some(0) => out.push_str(" empty"),
                Some(c) => {
                    let _ = write!(out, " {}.{:02}", c >> 5, c & 31);
                }
                None => {}
            }
            if s.token {
                out.push_str(" token");
            }
            if !s.options.is_empty() {
                let names: Vec<String> = s
                    .options
                    .iter()
                    .map(|&(n, _)| {
                        OPTION_SHORT
                            .iter()
                            .find(|(k, _)| *k == n)
                            .map_or_else(|| n.to_string(), |(_, name)| (*name).to_string())
                    })
                    .collect();
                let _ = write!(out, " [{}]", names.join(", "));
            }
        }
    }
    out
}
