//! Packet captures (feature `std`): pcap and pcapng files read as a stream of frames, and the
//! IPv6 packet found in each frame.
//!
//! [`CaptureReader`] reads one record at a time into a single reusable buffer, so memory stays
//! flat however long the capture is: no record larger than [`MAX_RECORD`] bytes is ever
//! buffered (larger packet records are an error, larger non-packet pcapng blocks are skipped
//! without being read into memory), and at most [`MAX_INTERFACES`] pcapng interfaces are kept.
//! The record layouts are parsed by the `pcap-file` crate; this module owns the I/O, the limits
//! and the error positions: a truncated or damaged file yields a [`CaptureError`] that says at
//! which byte the damage starts and how many packets were read before it, and every frame read
//! before the damage has already been returned.
//!
//! [`network_packet`] strips the link-layer header of the supported link types (Ethernet with
//! VLAN tags, Linux cooked capture v1 and v2, raw IP, BSD loopback) and returns the IPv6 packet,
//! trimmed to the length its header declares (Ethernet pads short frames), or says why there is
//! none ([`NotIpv6`]).
//!
//! This module knows nothing about SCHC rules.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::time::Duration;

use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{Endianness, PcapError, TsResolution};

/// The largest record (pcap packet record or pcapng block, headers included) buffered: 256 KiB,
/// tcpdump's default snapshot length plus room for headers and options.
pub const MAX_RECORD: usize = 256 * 1024 + 1024;

/// The most pcapng interfaces kept per section.
pub const MAX_INTERFACES: usize = 4096;

/// Link-layer header types (LINKTYPE_* values of the tcpdump.org registry) that
/// [`network_packet`] understands.
pub mod link {
    /// BSD loopback (`LINKTYPE_NULL`): a 4-byte address family in the capturing host's byte order.
    pub const NULL: u32 = 0;
    /// Ethernet (`LINKTYPE_ETHERNET`), with any 802.1Q/802.1ad VLAN tags.
    pub const ETHERNET: u32 = 1;
    /// Raw IPv4 or IPv6 (`LINKTYPE_RAW`), told apart by the version nibble.
    pub const RAW: u32 = 101;
    /// OpenBSD loopback (`LINKTYPE_LOOP`): a 4-byte address family in network byte order.
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1 (`LINKTYPE_LINUX_SLL`).
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4 (`LINKTYPE_IPV4`).
    pub const IPV4: u32 = 228;
    /// Raw IPv6 (`LINKTYPE_IPV6`).
    pub const IPV6: u32 = 229;
    /// Linux cooked capture v2 (`LINKTYPE_LINUX_SLL2`).
    pub const LINUX_SLL2: u32 = 276;
}

/// The two file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// libpcap (microsecond or nanosecond timestamps, either byte order).
    Pcap,
    /// pcapng.
    PcapNg,
}

/// Why a capture cannot be read (further). Positions are byte offsets from the start of the file;
/// `packets` counts the packet records read successfully before the problem.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be read.
    #[error("cannot read the capture: {0}")]
    Io(#[from] io::Error),
    /// The file is empty.
    #[error("the file is empty, not a pcap or pcapng capture")]
    Empty,
    /// The file starts with neither a pcap nor a pcapng magic number.
    #[error("not a pcap or pcapng capture (it starts with {0:02x?})")]
    NotACapture(Vec<u8>),
    /// The file ends in the middle of a record.
    #[error("truncated capture: the {what} at byte {offset} needs {needed} bytes but only {available} are left ({packets} packets read before it)")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where it starts.
        offset: u64,
        /// Its length in bytes.
        needed: u64,
        /// Bytes left in the file.
        available: u64,
        /// Packets read before it.
        packets: u64,
    },
    /// A record that does not follow the format.
    #[error("damaged capture at byte {offset}: {reason} ({packets} packets read before it)")]
    Malformed {
        /// Where the record starts.
        offset: u64,
        /// What is wrong.
        reason: String,
        /// Packets read before it.
        packets: u64,
    },
    /// A packet record larger than [`MAX_RECORD`].
    #[error("the packet record at byte {offset} is {len} bytes, more than the {limit}-byte limit ({packets} packets read before it)")]
    TooLarge {
        /// Where the record starts.
        offset: u64,
        /// Its declared length.
        len: u64,
        /// The limit.
        limit: usize,
        /// Packets read before it.
        packets: u64,
    },
}

impl CaptureError {
    /// Packets read successfully before the error (0 for errors at the start of the file).
    pub fn packets_before(&self) -> u64 {
        match self {
            CaptureError::Truncated { packets, .. }
            | CaptureError::Malformed { packets, .. }
            | CaptureError::TooLarge { packets, .. } => *packets,
            _ => 0,
        }
    }
}

/// One captured frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// 1 for the first packet of the file.
    pub number: u64,
    /// The link-layer header type (see [`link`]).
    pub link_type: u32,
    /// Capture time since the Unix epoch (as the file records it).
    pub timestamp: Duration,
    /// The captured bytes, starting with the link-layer header.
    pub data: &'a [u8],
    /// The frame's length on the wire (more than `data.len()` when the snapshot cut it).
    pub original_len: u32,
}

enum State {
    Pcap {
        parser: PcapParser,
        endianness: Endianness,
        link_type: u32,
        nanos: bool,
    },
    PcapNg {
        parser: Option<PcapNgParser>,
        endianness: Endianness,
        interfaces: usize,
    },
}

/// A streaming reader of pcap and pcapng files: call [`CaptureReader::next_frame`] until it
/// returns `Ok(None)`.
pub struct CaptureReader<R: Read> {
    input: R,
    state: State,
    buf: Vec<u8>,
    offset: u64,
    packets: u64,
}

impl CaptureReader<BufReader<File>> {
    /// Opens a capture file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        let file = File::open(path)?;
        Self::new(BufReader::with_capacity(64 * 1024, file))
    }
}

const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_IDB: u32 = 1;
const PCAPNG_PB: u32 = 2;
const PCAPNG_SPB: u32 = 3;
const PCAPNG_EPB: u32 = 6;

fn u32_with(e: Endianness, b: [u8; 4]) -> u32 {
    match e {
        Endianness::Big => u32::from_be_bytes(b),
        Endianness::Little => u32::from_le_bytes(b),
    }
}

fn word(b: &[u8], at: usize) -> [u8; 4] {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        w.copy_from_slice(s);
    }
    w
}

fn pcap_reason(e: PcapError) -> String {
    match e {
        PcapError::InvalidField(f) => f.to_string(),
        PcapError::IncompleteBuffer => "record shorter than its declared length".to_string(),
        other => other.to_string(),
    }
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header (pcap) or the first section header block (pcapng).
    pub fn new(mut input: R) -> Result<Self, CaptureError> {
        let mut magic = [0u8; 4];
        let got = read_full(&mut input, &mut magic)?;
        if got == 0 {
            return Err(CaptureError::Empty);
        }
        if got < 4 {
            return Err(CaptureError::NotACapture(
                magic.get(..got).unwrap_or_default().to_vec(),
            ));
        }
        let mut reader = Self {
            input,
            state: State::PcapNg {
                parser: None,
                endianness: Endianness::Big,
                interfaces: 0,
            },
            buf: Vec::new(),
            offset: 0,
            packets: 0,
        };
        match u32::from_be_bytes(magic) {
            0xA1B2_C3D4 | 0xD4C3_B2A1 | 0xA1B2_3C4D | 0x4D3C_B2A1 => {
                reader.buf.extend_from_slice(&magic);
                reader.fill_to(24, "pcap file header")?;
                let (_, parser) =
                    PcapParser::new(&reader.buf).map_err(|e| CaptureError::Malformed {
                        offset: 0,
                        reason: format!("pcap file header: {}", pcap_reason(e)),
                        packets: 0,
                    })?;
                let h = parser.header();
                reader.state = State::Pcap {
                    endianness: h.endianness,
                    link_type: u32::from(h.datalink),
                    nanos: h.ts_resolution == TsResolution::NanoSecond,
                    parser,
                };
                reader.offset = 24;
                Ok(reader)
            }
            PCAPNG_SHB => {
                reader.buf.extend_from_slice(&magic);
                reader.read_shb()?;
                Ok(reader)
            }
            _ => Err(CaptureError::NotACapture(magic.to_vec())),
        }
    }

    /// The file format.
    pub fn format(&self) -> Format {
        match self.state {
            State::Pcap { .. } => Format::Pcap,
            State::PcapNg { .. } => Format::PcapNg,
        }
    }

    /// Bytes of the file consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Packet records read so far.
    pub fn packets_read(&self) -> u64 {
        self.packets
    }

    /// Reads into `self.buf` until it holds `len` bytes.
    fn fill_to(&mut self, len: usize, what: &'static str) -> Result<(), CaptureError> {
        let have = self.buf.len();
        if have >= len {
            return Ok(());
        }
        self.buf.resize(len, 0);
        let got = read_full(
            &mut self.input,
            self.buf.get_mut(have..).unwrap_or_default(),
        )?;
        if have + got < len {
            return Err(CaptureError::Truncated {
                what,
                offset: self.offset,
                needed: len as u64,
                available: (have + got) as u64,
                packets: self.packets,
            });
        }
        Ok(())
    }

    /// Reads a section header block whose 4-byte type is already in `self.buf`.
    fn read_shb(&mut self) -> Result<(), CaptureError> {
        self.fill_to(12, "pcapng section header")?;
        let endianness = match word(&self.buf, 8) {
            [0x1A, 0x2B, 0x3C, 0x4D] => Endianness::Big,
            [0x4D, 0x3C, 0x2B, 0x1A] => Endianness::Little,
            other => {
                return Err(CaptureError::Malformed {
                    offset: self.offset,
                    reason: format!("section header with byte-order magic {other:02x?}"),
                    packets: self.packets,
                })
            }
        };
        let len = u32_with(endianness, word(&self.buf, 4)) as usize;
        self.check_block_len(len, true)?;
        self.fill_to(len, "pcapng section header")?;
        let (_, parser) = PcapNgParser::new(&self.buf).map_err(|e| self.malformed(e))?;
        self.state = State::PcapNg {
            parser: Some(parser),
            endianness,
            interfaces: 0,
        };
        self.offset += len as u64;
        self.buf.clear();
        Ok(())
    }

    fn malformed(&self, e: PcapError) -> CaptureError {
        CaptureError::Malformed {
            offset: self.offset,
            reason: pcap_reason(e),
            packets: self.packets,
        }
    }

    fn check_block_len(&self, len: usize, is_packet: bool) -> Result<bool, CaptureError> {
        if len < 12 || len % 4 != 0 {
            return Err(CaptureError::Malformed {
                offset: self.offset,
                reason: format!("block length {len} is not a multiple of 4 of at least 12"),
                packets: self.packets,
            });
        }
        if len > MAX_RECORD {
            if is_packet {
                return Err(CaptureError::TooLarge {
                    offset: self.offset,
                    len: len as u64,
                    limit: MAX_RECORD,
                    packets: self.packets,
                });
            }
            return Ok(false);
        }
        Ok(true)
    }

    /// The next frame, `Ok(None)` at the end of the file.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        self.buf.clear();
        match self.state {
            State::Pcap { .. } => self.next_pcap(),
            State::PcapNg { .. } => self.next_pcapng(),
        }
    }

    fn next_pcap(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        let State::Pcap {
            endianness,
            link_type,
            nanos,
            ..
        } = self.state
        else {
            return Ok(None);
        };
        let mut head = [0u8; 16];
        let got = read_full(&mut self.input, &mut head)?;
        if got == 0 {
            return Ok(None);
        }
        if got < 16 {
            return Err(CaptureError::Truncated {
                what: "packet record header",
                offset: self.offset,
                needed: 16,
                available: got as u64,
                packets: self.packets,
            });
        }
        let incl = u32_with(endianness, word(&head, 8)) as usize;
        if incl + 16 > MAX_RECORD {
            return Err(CaptureError::TooLarge {
                offset: self.offset,
                len: incl as u64 + 16,
                limit: MAX_RECORD,
                packets: self.packets,
            });
        }
        self.buf.extend_from_slice(&head);
        self.fill_to(16 + incl, "packet record")?;
        let State::Pcap { parser, .. } = &self.state else {
            return Ok(None);
        };
        let (_, raw) = parser
            .next_raw_packet(&self.buf)
            .map_err(|e| CaptureError::Malformed {
                offset: self.offset,
                reason: pcap_reason(e),
                packets: self.packets,
            })?;
        let frac = if nanos {
            raw.ts_frac
        } else {
            raw.ts_frac.saturating_mul(1000)
        };
        let timestamp =
            Duration::from_secs(u64::from(raw.ts_sec)) + Duration::from_nanos(u64::from(frac));
        let original_len = raw.orig_len;
        self.offset += (16 + incl) as u64;
        self.packets += 1;
        let data = self.buf.get(16..16 + incl).unwrap_or(&[]);
        Ok(Some(Frame {
            number: self.packets,
            link_type,
            timestamp,
            data,
            original_len,
        }))
    }

    fn next_pcapng(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        loop {
            let State::PcapNg { endianness, .. } = self.state else {
                return Ok(None);
            };
            let mut head = [0u8; 8];
            let got = read_full(&mut self.input, &mut head)?;
            if got == 0 {
                return Ok(None);
            }
            if got < 8 {
                return Err(CaptureError::Truncated {
                    what: "block header",
                    offset: self.offset,
                    needed: 8,
                    available: got as u64,
                    packets: self.packets,
                });
            }
            let block_type = u32_with(endianness, word(&head, 0));
            self.buf.clear();
            self.buf.extend_from_slice(&head);
            if block_type == PCAPNG_SHB {
                // A new section (files concatenated, or a capture tool restarted): its byte
                // order may differ, so its length is read again after the byte-order magic.
                self.read_shb()?;
                continue;
            }
            let len = u32_with(endianness, word(&head, 4)) as usize;
            let is_packet = matches!(block_type, PCAPNG_PB | PCAPNG_SPB | PCAPNG_EPB);
            if !self.check_block_len(len, is_packet)? {
                // A large block that carries no packet (name resolution, decryption secrets,
                // custom data): skip it without buffering it.
                let rest = (len - 8) as u64;
                let skipped = io::copy(&mut (&mut self.input).take(rest), &mut io::sink())?;
                if skipped < rest {
                    return Err(CaptureError::Truncated {
                        what: "block",
                        offset: self.offset,
                        needed: len as u64,
                        available: skipped + 8,
                        packets: self.packets,
                    });
                }
                self.offset += len as u64;
                continue;
            }
            let what = if is_packet { "packet block" } else { "block" };
            self.fill_to(len, what)?;
            if block_type == PCAPNG_IDB {
                if let State::PcapNg { interfaces, .. } = &mut self.state {
                    *interfaces += 1;
                    if *interfaces > MAX_INTERFACES {
                        return Err(CaptureError::Malformed {
                            offset: self.offset,
                            reason: format!("more than {MAX_INTERFACES} interfaces in a section"),
                            packets: self.packets,
                        });
                    }
                }
            }
            let offset = self.offset;
            let packets = self.packets;
            let State::PcapNg {
                parser: Some(parser),
                ..
            } = &mut self.state
            else {
                return Ok(None);
            };
            let (_, block) = parser
                .next_block(&self.buf)
                .map_err(|e| CaptureError::Malformed {
                    offset,
                    reason: pcap_reason(e),
                    packets,
                })?;
            // A simple packet block does not record its captured length: its data runs to the
            // end of the block, padding included, and the packet is the first original_len bytes.
            let mut cap_len = usize::MAX;
            let (iface, timestamp, original_len, data) = match block {
                Block::EnhancedPacket(p) => (p.interface_id, p.timestamp, p.original_len, p.data),
                Block::SimplePacket(p) => {
                    cap_len = p.original_len as usize;
                    (0, Duration::ZERO, p.original_len, p.data)
                }
                Block::Packet(p) => (
                    u32::from(p.interface_id),
                    Duration::from_micros(p.timestamp),
                    p.original_len,
                    p.data,
                ),
                _ => {
                    self.offset += len as u64;
                    continue;
                }
            };
            let Some(link_type) = parser
                .interfaces()
                .get(iface as usize)
                .map(|i| u32::from(i.linktype))
            else {
                return Err(CaptureError::Malformed {
                    offset,
                    reason: format!(
                        "packet on interface {iface}, which no interface block describes"
                    ),
                    packets,
                });
            };
            // The packet data is a sub-slice of `self.buf` (the parser borrows, never copies).
            let range = match data {
                Cow::Borrowed(d) => {
                    let start = (d.as_ptr() as usize).saturating_sub(self.buf.as_ptr() as usize);
                    start..start + d.len().min(cap_len)
                }
                Cow::Owned(_) => 0..0,
            };
            self.offset += len as u64;
            self.packets += 1;
            let data = self.buf.get(range).unwrap_or(&[]);
            return Ok(Some(Frame {
                number: self.packets,
                link_type,
                timestamp,
                data,
                original_len,
            }));
        }
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while let Some(rest) = buf.get_mut(n..).filter(|r| !r.is_empty()) {
        match input.read(rest) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Why a frame holds no IPv6 packet to compress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NotIpv6 {
    /// An IPv4 packet.
    Ipv4,
    /// An ARP packet.
    Arp,
    /// Another network protocol (the EtherType or address family).
    Other(u32),
    /// A link type this module does not decode.
    UnsupportedLink(u32),
    /// The frame is shorter than its link-layer header or than an IPv6 header.
    Short,
    /// An IPv6 packet cut short by the capture's snapshot length (fewer bytes captured than its
    /// payload length says).
    Snapped,
}

impl NotIpv6 {
    /// A short name for reports: `ipv4`, `arp`, `other`, `unsupported-link`, `short`, `snapped`.
    pub fn name(self) -> &'static str {
        match self {
            NotIpv6::Ipv4 => "ipv4",
            NotIpv6::Arp => "arp",
            NotIpv6::Other(_) => "other",
            NotIpv6::UnsupportedLink(_) => "unsupported-link",
            NotIpv6::Short => "short",
            NotIpv6::Snapped => "snapped",
        }
    }
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_VLAN: [u16; 3] = [0x8100, 0x88A8, 0x9100];

fn by_ethertype(t: u16, rest: &[u8]) -> Result<&[u8], NotIpv6> {
    match t {
        ETHERTYPE_IPV6 => ipv6_exact(rest),
        ETHERTYPE_IPV4 => Err(NotIpv6::Ipv4),
        ETHERTYPE_ARP => Err(NotIpv6::Arp),
        other => Err(NotIpv6::Other(u32::from(other))),
    }
}

fn by_version(rest: &[u8]) -> Result<&[u8], NotIpv6> {
    match rest.first().map(|b| b >> 4) {
        Some(6) => ipv6_exact(rest),
        Some(4) => Err(NotIpv6::Ipv4),
        Some(v) => Err(NotIpv6::Other(u32::from(v))),
        None => Err(NotIpv6::Short),
    }
}

/// BSD address families of IPv6 (Linux 10, NetBSD/OpenBSD 24, FreeBSD 28, macOS 30) and IPv4.
fn by_family(family: u32, rest: &[u8]) -> Result<&[u8], NotIpv6> {
    match family {
        10 | 24 | 28 | 30 => ipv6_exact(rest),
        2 => Err(NotIpv6::Ipv4),
        other => Err(NotIpv6::Other(other)),
    }
}

/// The IPv6 packet at the start of `data`, trimmed to 40 + its payload length.
fn ipv6_exact(data: &[u8]) -> Result<&[u8], NotIpv6> {
    if data.first().map(|b| b >> 4) != Some(6) {
        return Err(NotIpv6::Other(u32::from(ETHERTYPE_IPV6)));
    }
    let Some(pl) = data.get(4..6).and_then(|s| s.first_chunk::<2>()) else {
        return Err(NotIpv6::Short);
    };
    if data.len() < 40 {
        return Err(NotIpv6::Short);
    }
    let payload = usize::from(u16::from_be_bytes(*pl));
    // Payload length 0 with a Hop-by-Hop header is a jumbogram: keep everything captured.
    if payload == 0 && data.get(6) == Some(&0) {
        return Ok(data);
    }
    data.get(..40 + payload).ok_or(NotIpv6::Snapped)
}

/// The IPv6 packet carried by a frame of link type `link_type`, or why there is none.
pub fn network_packet(link_type: u32, data: &[u8]) -> Result<&[u8], NotIpv6> {
    let at = |a: usize, b: usize| data.get(a..b).ok_or(NotIpv6::Short);
    let be16 = |a: usize| {
        data.get(a..)
            .and_then(|s| s.first_chunk::<2>())
            .map(|s| u16::from_be_bytes(*s))
            .ok_or(NotIpv6::Short)
    };
    let word = |a: usize| {
        data.get(a..)
            .and_then(|s| s.first_chunk::<4>())
            .copied()
            .ok_or(NotIpv6::Short)
    };
    match link_type {
        link::ETHERNET => {
            let mut off = 12;
            let mut t = be16(off)?;
            let mut tags = 0;
            while ETHERTYPE_VLAN.contains(&t) && tags < 4 {
                off += 4;
                t = be16(off)?;
                tags += 1;
            }
            by_ethertype(t, at(off + 2, data.len())?)
        }
        link::LINUX_SLL => by_ethertype(be16(14)?, at(16, data.len())?),
        link::LINUX_SLL2 => by_ethertype(be16(0)?, at(20, data.len())?),
        link::RAW => by_version(data),
        link::IPV4 => Err(NotIpv6::Ipv4),
        link::IPV6 => ipv6_exact(data),
        link::NULL => {
            let f = word(0)?;
            let le = u32::from_le_bytes(f);
            let be = u32::from_be_bytes(f);
            // The family is in the capturing host's byte order: the small one is right.
            by_family(le.min(be), at(4, data.len())?)
        }
        link::LOOP => by_family(u32::from_be_bytes(word(0)?), at(4, data.len())?),
        other => Err(NotIpv6::UnsupportedLink(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv6(payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        p.extend_from_slice(&[17, 64]);
        p.extend_from_slice(&[0u8; 32]);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn ethernet_vlan_padding_and_families() {
        let ip = ipv6(&[1, 2]);
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x81, 0x00, 0, 5, 0x86, 0xDD]);
        eth.extend_from_slice(&ip);
        eth.extend_from_slice(&[0u8; 6]); // Ethernet padding
        assert_eq!(network_packet(link::ETHERNET, &eth), Ok(&ip[..]));
        let mut null = 24u32.to_le_bytes().to_vec();
        null.extend_from_slice(&ip);
        assert_eq!(network_packet(link::NULL, &null), Ok(&ip[..]));
        let mut null_be = 30u32.to_be_bytes().to_vec();
        null_be.extend_from_slice(&ip);
        assert_eq!(network_packet(link::NULL, &null_be), Ok(&ip[..]));
        assert_eq!(network_packet(link::RAW, &[0x45, 0]), Err(NotIpv6::Ipv4));
        assert_eq!(network_packet(link::IPV6, &ip[..41]), Err(NotIpv6::Snapped));
        assert_eq!(network_packet(link::ETHERNET, &[0; 5]), Err(NotIpv6::Short));
        assert_eq!(network_packet(147, &ip), Err(NotIpv6::UnsupportedLink(147)));
    }
}
