//! Compression-ratio studies (feature `std`): compress every IPv6 packet of a capture with a
//! rule set, decompress it again, check that the bytes come back, and account for what SCHC
//! saves, per packet, per rule and in total.
//!
//! A [`Study`] is fed one packet at a time and keeps only counters (its memory does not grow
//! with the number of packets): per-packet results are returned to the caller
//! ([`PacketReport`]), who may write them out.
//!
//! # What is counted
//!
//! - **header bytes in**: every header the packet has, whatever the rule: 40 for IPv6, plus 8
//!   for UDP, plus the CoAP header, token, options and payload marker (as far as they parse).
//! - **header bits out**: the rule ID, the compression residue, and the headers the rule does
//!   not describe, which travel unchanged after the residue (a rule for IPv6 and UDP leaves the
//!   CoAP header as payload; the no-compression rule leaves every header). Header bytes out are
//!   these bits / 8, not rounded. Counting the undescribed headers on both sides keeps ratios
//!   comparable between rule sets: for a rule that describes every header of its packets this
//!   is exactly the rule's layers in, rule ID and residue out.
//! - **bytes in**: the IPv6 packet; **bytes out**: the SCHC packet, padded to whole bytes.
//! - **header ratio** = header bytes in / header bytes out; **total ratio** = bytes in / bytes
//!   out (both "how many times smaller"; savings are 1 − out/in).
//!
//! # Direction
//!
//! SCHC names addresses and ports by role (device, application), so every packet needs its
//! direction. A real decompressor knows it from the link; a capture does not say it, so a
//! study takes the device's addresses ([`Devices`]): a packet from a device address goes up,
//! one to a device address goes down. [`Devices::from_rules`] reads them from a rule set
//! (addresses its rules fix on the device side) and [`infer_device`] from a capture. The
//! direction is never chosen by trying both and keeping the smaller result.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::Ipv6Addr;

use serde_json::{json, Map, Value};

use crate::capture::{network_packet, CaptureError, CaptureReader, Frame, NotIpv6};
use crate::codec::{self, CompressError, Config};
use crate::packet::Headers;
use crate::rule::{Cda, Direction, Fid, Layer, MatchingOperator, Nature, RuleId, RuleSet};

/// The largest IPv6 packet without a jumbo payload option.
const MAX_IPV6: usize = 40 + 65535;

/// The device side of the traffic: the addresses SCHC calls "Dev".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Devices {
    /// The device addresses.
    pub addresses: Vec<Ipv6Addr>,
    /// Where they come from, for reports (e.g. `--device`, `the rule set`).
    pub source: String,
}

impl Devices {
    /// Device addresses given explicitly.
    pub fn new(addresses: Vec<Ipv6Addr>, source: impl Into<String>) -> Self {
        Self {
            addresses,
            source: source.into(),
        }
    }

    /// The device addresses a rule set fixes: compression rules whose Dev prefix and Dev IID
    /// are both `equal` to one target value. An address that some rule also fixes on the
    /// application side is left out (it would not tell the direction). `None` when no rule
    /// fixes one.
    pub fn from_rules(set: &RuleSet<'_>) -> Option<Self> {
        let mut dev = Vec::new();
        let mut app = Vec::new();
        for rule in set.rules() {
            let fields = set.fields(rule);
            let fixed = |fid: Fid| {
                fields
                    .iter()
                    .find(|f| {
                        f.fid == fid && f.mo == MatchingOperator::Equal && f.cda == Cda::NotSent
                    })
                    .and_then(|f| set.tv(f, 0))
                    .and_then(|tv| <[u8; 8]>::try_from(tv_right_aligned(tv, 8)).ok())
            };
            for (p, i, list) in [
                (Fid::Ipv6DevPrefix, Fid::Ipv6DevIid, &mut dev),
                (Fid::Ipv6AppPrefix, Fid::Ipv6AppIid, &mut app),
            ] {
                if let (Some(p), Some(i)) = (fixed(p), fixed(i)) {
                    let mut a = [0u8; 16];
                    a[..8].copy_from_slice(&p);
                    a[8..].copy_from_slice(&i);
                    let a = Ipv6Addr::from(a);
                    if !list.contains(&a) {
                        list.push(a);
                    }
                }
            }
        }
        dev.retain(|a| !app.contains(a));
        (!dev.is_empty())
            .then(|| Self::new(dev, "from the rule set, which fixes it on the device side"))
    }

    /// The direction of an IPv6 packet and whether a device address decided it (a packet
    /// that neither comes from nor goes to a device is taken as uplink).
    pub fn direction(&self, packet: &[u8]) -> (Direction, bool) {
        let addr = |at: usize| {
            packet
                .get(at..at + 16)
                .and_then(|s| <[u8; 16]>::try_from(s).ok())
                .map(Ipv6Addr::from)
        };
        let from = addr(8).is_some_and(|a| self.addresses.contains(&a));
        let to = addr(24).is_some_and(|a| self.addresses.contains(&a));
        match (from, to) {
            (true, _) => (Direction::Up, true),
            (false, true) => (Direction::Down, true),
            _ => (Direction::Up, false),
        }
    }
}

/// `tv` right-aligned in `n` bytes (left-padded with zeros, or its last `n` bytes).
fn tv_right_aligned(tv: &[u8], n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n.saturating_sub(tv.len())];
    v.extend_from_slice(&tv[tv.len().saturating_sub(n)..]);
    v
}

/// How [`infer_device`] found the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// It talks from a port other than 5683/5684 to a CoAP server on 5683/5684.
    CoapClient,
    /// It sent the first CoAP request of the capture.
    FirstRequest,
    /// It sent the first IPv6 packet of the capture.
    FirstPacket,
}

impl Evidence {
    /// A sentence for reports.
    pub fn explain(self) -> &'static str {
        match self {
            Evidence::CoapClient => "the endpoint that talks to a CoAP server on UDP port 5683/5684 from another port (the LwM2M/CoAP client)",
            Evidence::FirstRequest => "the sender of the first CoAP request",
            Evidence::FirstPacket => "the sender of the first IPv6 packet",
        }
    }
}

/// Finds the device side of a capture: the first IPv6/UDP packet between a port 5683/5684 and
/// another port names the endpoint on the other port (a CoAP or LwM2M client registering with
/// or answering its server); failing that, the sender of the first CoAP request; failing
/// that, the sender of the first IPv6 packet. Reads no further than it must.
pub fn infer_device<R: Read>(
    reader: &mut CaptureReader<R>,
) -> Result<Option<(Ipv6Addr, Evidence)>, CaptureError> {
    let mut first_packet = None;
    let mut first_request = None;
    while let Some(frame) = reader.next_frame()? {
        let Ok(p) = network_packet(frame.link_type, frame.data) else {
            continue;
        };
        let addr = |at: usize| {
            let mut a = [0u8; 16];
            a.copy_from_slice(&p[at..at + 16]);
            Ipv6Addr::from(a)
        };
        first_packet.get_or_insert_with(|| addr(8));
        if p.get(6) != Some(&17) || p.len() < 52 {
            continue;
        }
        let sport = u16::from_be_bytes([p[40], p[41]]);
        let dport = u16::from_be_bytes([p[42], p[43]]);
        let coap = |port: u16| port == 5683 || port == 5684;
        match (coap(sport), coap(dport)) {
            (false, true) => return Ok(Some((addr(8), Evidence::CoapClient))),
            (true, false) => return Ok(Some((addr(24), Evidence::CoapClient))),
            _ => {}
        }
        let code = p[49];
        if first_request.is_none() && p[48] >> 6 == 1 && code >> 5 == 0 && code != 0 {
            first_request = Some(addr(8));
        }
    }
    Ok(first_request
        .map(|a| (a, Evidence::FirstRequest))
        .or(first_packet.map(|a| (a, Evidence::FirstPacket))))
}

/// The result of one IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketReport {
    /// The direction it was compressed in.
    pub direction: Direction,
    /// Whether a device address decided the direction.
    pub direction_known: bool,
    /// The rule used.
    pub rule_id: RuleId,
    /// Whether it is a compression rule (false: the no-compression rule).
    pub compressed: bool,
    /// The IPv6 packet's length in bytes.
    pub packet_bytes: usize,
    /// Header bytes before compression (see the module documentation).
    pub header_bytes_in: usize,
    /// Rule ID, residue and undescribed header bits (see the module documentation).
    pub header_bits_out: usize,
    /// Residue bits alone (0 for the no-compression rule).
    pub residue_bits: usize,
    /// The SCHC packet's length in bits, before padding.
    pub schc_bits: usize,
    /// The SCHC packet's length in bytes, padded.
    pub schc_bytes: usize,
    /// Whether decompression gave back the packet byte for byte.
    pub roundtrip_ok: bool,
}

/// Counters for one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RuleStats {
    /// Packets sent with it.
    pub packets: u64,
    /// Header bytes in.
    pub header_bytes_in: u64,
    /// Header bits out.
    pub header_bits_out: u64,
    /// Residue bits.
    pub residue_bits: u64,
    /// IPv6 bytes in.
    pub bytes_in: u64,
    /// SCHC bytes out.
    pub bytes_out: u64,
    /// Round-trip failures.
    pub roundtrip_failures: u64,
}

/// The totals of a study.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Totals {
    /// Frames read.
    pub packets: u64,
    /// Sent with a compression rule.
    pub compressed: u64,
    /// Sent with the no-compression rule.
    pub uncompressed: u64,
    /// Not IPv6 (or cut short by the snapshot length), by reason.
    pub skipped: BTreeMap<&'static str, u64>,
    /// IPv6 packets that could not be compressed at all (no rule matched and the set has no
    /// no-compression rule).
    pub failed: u64,
    /// IPv6 bytes in.
    pub bytes_in: u64,
    /// SCHC bytes out.
    pub bytes_out: u64,
    /// Header bytes in.
    pub header_bytes_in: u64,
    /// Header bits out.
    pub header_bits_out: u64,
    /// Residue bits.
    pub residue_bits: u64,
    /// Round-trip failures.
    pub roundtrip_failures: u64,
    /// Packets compressed uplink.
    pub up: u64,
    /// Packets compressed downlink.
    pub down: u64,
    /// Packets whose direction no device address decided.
    pub direction_unknown: u64,
    /// Per rule.
    pub per_rule: BTreeMap<RuleId, RuleStats>,
    /// SCHC packet sizes in bytes: how many packets of each size.
    pub schc_sizes: BTreeMap<usize, u64>,
    /// IPv6 packet sizes in bytes: how many packets of each size.
    pub ipv6_sizes: BTreeMap<usize, u64>,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

impl Totals {
    /// Packets that were not IPv6 (or were cut short).
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// Header bytes out (bits / 8).
    pub fn header_bytes_out(&self) -> f64 {
        self.header_bits_out as f64 / 8.0
    }

    /// Header bytes in / header bytes out.
    pub fn header_ratio(&self) -> f64 {
        ratio(self.header_bytes_in * 8, self.header_bits_out)
    }

    /// IPv6 bytes in / SCHC bytes out.
    pub fn total_ratio(&self) -> f64 {
        ratio(self.bytes_in, self.bytes_out)
    }

    /// The totals as one JSON object (see `schc ratio --help` for the members).
    pub fn to_json(&self) -> Value {
        let mut per_rule = Map::new();
        for (id, r) in &self.per_rule {
            per_rule.insert(
                id.to_string(),
                json!({
                    "packets": r.packets,
                    "header_bytes_in": r.header_bytes_in,
                    "header_bits_out": r.header_bits_out,
                    "header_bytes_out": r.header_bits_out as f64 / 8.0,
                    "residue_bits": r.residue_bits,
                    "bytes_in": r.bytes_in,
                    "bytes_out": r.bytes_out,
                    "header_ratio": ratio(r.header_bytes_in * 8, r.header_bits_out),
                    "roundtrip_failures": r.roundtrip_failures,
                }),
            );
        }
        json!({
            "packets": self.packets,
            "compressed": self.compressed,
            "uncompressed": self.uncompressed,
            "skipped": self.skipped_total(),
            "skipped_by_reason": self.skipped,
            "failed": self.failed,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "header_bytes_in": self.header_bytes_in,
            "header_bits_out": self.header_bits_out,
            "header_bytes_out": self.header_bytes_out(),
            "residue_bits": self.residue_bits,
            "header_ratio": self.header_ratio(),
            "total_ratio": self.total_ratio(),
            "header_saving": 1.0 - ratio(self.header_bits_out, self.header_bytes_in * 8),
            "total_saving": 1.0 - ratio(self.bytes_out, self.bytes_in),
            "roundtrip_failures": self.roundtrip_failures,
            "direction": { "up": self.up, "down": self.down, "unknown": self.direction_unknown },
            "per_rule": per_rule,
        })
    }
}

/// What became of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An IPv6 packet, compressed and decompressed.
    Packet(PacketReport),
    /// Not an IPv6 packet.
    Skipped(NotIpv6),
    /// An IPv6 packet that could not be compressed.
    Failed(CompressError),
}

/// A running compression-ratio study.
pub struct Study<'r> {
    set: RuleSet<'r>,
    cfg: Config,
    devices: Devices,
    out: Vec<u8>,
    back: Vec<u8>,
    totals: Totals,
}

impl<'r> Study<'r> {
    /// A study of `set` with the device side `devices` and the default codec settings.
    pub fn new(set: RuleSet<'r>, devices: Devices) -> Self {
        Self {
            set,
            cfg: Config {
                max_packet_size: MAX_IPV6,
                ..Config::default()
            },
            devices,
            out: vec![0u8; 2 * MAX_IPV6 + 64],
            back: vec![0u8; MAX_IPV6],
            totals: Totals::default(),
        }
    }

    /// The totals so far.
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// The device side used.
    pub fn devices(&self) -> &Devices {
        &self.devices
    }

    /// Accounts for one captured frame.
    pub fn add_frame(&mut self, frame: &Frame<'_>) -> Outcome {
        match network_packet(frame.link_type, frame.data) {
            Ok(p) => self.add_ipv6(p),
            Err(why) => {
                self.totals.packets += 1;
                *self.totals.skipped.entry(why.name()).or_default() += 1;
                Outcome::Skipped(why)
            }
        }
    }

    /// Accounts for one IPv6 packet (direction from the device addresses).
    pub fn add_ipv6(&mut self, packet: &[u8]) -> Outcome {
        let (dir, known) = self.devices.direction(packet);
        self.add_ipv6_dir(packet, dir, known)
    }

    /// Accounts for one IPv6 packet going `dir`.
    pub fn add_ipv6_dir(&mut self, packet: &[u8], dir: Direction, known: bool) -> Outcome {
        let t = &mut self.totals;
        t.packets += 1;
        let c = match codec::compress(&self.set, packet, dir, &self.cfg, &mut self.out) {
            Ok(c) => c,
            Err(e) => {
                t.failed += 1;
                return Outcome::Failed(e);
            }
        };
        let rule = self.set.get(c.rule_id);
        let compressed = rule.is_some_and(|r| matches!(r.nature, Nature::Compression(_)));
        let h = Headers::parse(packet, dir);
        let covered = if compressed {
            rule.and_then(|r| self.set.fields(r).iter().map(|f| f.fid.layer()).max())
        } else {
            None
        };
        let header_in = h.layer_end(h.depth()).min(packet.len());
        let covered_end = h.layer_end(covered).min(header_in);
        let header_bits_out = c.bits.saturating_sub((packet.len() - header_in) * 8);
        // The residue alone: what follows the rule ID up to the undescribed headers.
        let residue_bits = c
            .bits
            .saturating_sub(usize::from(c.rule_id.length) + (packet.len() - covered_end) * 8);
        let roundtrip_ok = self.out.get(..c.len).is_some_and(|schc| {
            codec::decompress(&self.set, schc, dir, &self.cfg, &mut self.back)
                .is_ok_and(|d| self.back.get(..d.len) == Some(packet))
        });
        let report = PacketReport {
            direction: dir,
            direction_known: known,
            rule_id: c.rule_id,
            compressed,
            packet_bytes: packet.len(),
            header_bytes_in: header_in,
            header_bits_out,
            residue_bits,
            schc_bits: c.bits,
            schc_bytes: c.len,
            roundtrip_ok,
        };
        if compressed {
            t.compressed += 1;
        } else {
            t.uncompressed += 1;
        }
        match (dir, known) {
            (_, false) => t.direction_unknown += 1,
            (Direction::Up, true) => t.up += 1,
            (Direction::Down, true) => t.down += 1,
        }
        let fail = u64::from(!roundtrip_ok);
        t.bytes_in += packet.len() as u64;
        t.bytes_out += c.len as u64;
        t.header_bytes_in += header_in as u64;
        t.header_bits_out += header_bits_out as u64;
        t.residue_bits += residue_bits as u64;
        t.roundtrip_failures += fail;
        let r = t.per_rule.entry(c.rule_id).or_default();
        r.packets += 1;
        r.header_bytes_in += header_in as u64;
        r.header_bits_out += header_bits_out as u64;
        r.residue_bits += residue_bits as u64;
        r.bytes_in += packet.len() as u64;
        r.bytes_out += c.len as u64;
        r.roundtrip_failures += fail;
        *t.schc_sizes.entry(c.len).or_default() += 1;
        *t.ipv6_sizes.entry(packet.len()).or_default() += 1;
        Outcome::Packet(report)
    }
}

/// The deepest layer a rule describes, `None` for other natures or an empty rule.
pub fn rule_depth(set: &RuleSet<'_>, id: RuleId) -> Option<Layer> {
    let rule = set.get(id)?;
    set.fields(rule).iter().map(|f| f.fid.layer()).max()
}
