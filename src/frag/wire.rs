//! SCHC F/R message formats (RFC 8724 §8.3, RFC 9441 §3): fragments, All-1 with RCS, ACK REQ,
//! Sender-Abort, ACKs with compressed bitmaps, compound ACKs, Receiver-Abort.
//!
//! Parsing takes a frame (bytes, with its padding) whose Rule ID is already known to be a
//! fragmentation rule; writing goes into a caller buffer. Bitmaps are `u64` values whose bit
//! `k` stands for the tile with FCN `k` (so the wire order, leftmost first, is the number written
//! most significant bit first): window sizes of up to 64 tiles.

use heapless::Vec;

use super::FragError;
use crate::bits::{BitReader, BitWriter};
use crate::rule::{FragMode, FragParams, Nature, RcsAlgorithm, Rule, RuleId};

/// The most windows one compound ACK can report here.
pub const MAX_ACK_WINDOWS: usize = 16;

/// Field sizes of a fragmentation rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The rule ID.
    pub rule: RuleId,
    /// The rule's parameters.
    pub params: FragParams,
}

impl Layout {
    /// The layout of a fragmentation rule.
    pub fn new(rule: &Rule) -> Result<Self, FragError> {
        let Nature::Fragmentation(params) = rule.nature else {
            return Err(FragError::NotFragmentation(rule.id));
        };
        params.validate().map_err(|reason| FragError::BadRule {
            rule: rule.id,
            reason,
        })?;
        if params.mode != FragMode::NoAck && params.window_size > 64 {
            return Err(FragError::BadRule {
                rule: rule.id,
                reason: "window sizes above 64 tiles are not supported",
            });
        }
        if params.rcs == RcsAlgorithm::TileCount && params.mode != FragMode::AckOnError {
            return Err(FragError::BadRule {
                rule: rule.id,
                reason: "the tile-count RCS (RFC 9442) is for ACK-on-Error",
            });
        }
        if params.dtag_bits > 32 || params.w_bits > 32 || params.fcn_bits > 32 {
            return Err(FragError::BadRule {
                rule: rule.id,
                reason: "DTag, W and FCN are limited to 32 bits",
            });
        }
        Ok(Self {
            rule: rule.id,
            params,
        })
    }

    /// Bits of a fragment header: Rule ID, DTag, W, FCN.
    pub fn header_bits(&self) -> usize {
        self.rule.length as usize
            + self.params.dtag_bits as usize
            + self.params.w_bits as usize
            + self.params.fcn_bits as usize
    }

    /// Bits of an ACK header: Rule ID, DTag, W, C.
    pub fn ack_header_bits(&self) -> usize {
        self.rule.length as usize + self.params.dtag_bits as usize + self.params.w_bits as usize + 1
    }

    /// The All-1 FCN value.
    pub fn all1(&self) -> u32 {
        ones(self.params.fcn_bits)
    }

    /// W with every bit set (aborts).
    pub fn w_ones(&self) -> u32 {
        ones(self.params.w_bits)
    }

    /// The L2 word in bits.
    pub fn l2(&self) -> usize {
        self.params.l2_word.max(1) as usize
    }

    /// The RCS length in bits: 32 for CRC32, the FCN's width for RFC 9442's tile count.
    pub fn rcs_bits(&self) -> usize {
        match self.params.rcs {
            RcsAlgorithm::Crc32 => 32,
            RcsAlgorithm::TileCount => usize::from(self.params.fcn_bits),
        }
    }

    /// Window size in tiles.
    pub fn window_size(&self) -> usize {
        self.params.window_size as usize
    }

    /// Writes Rule ID, DTag, W and FCN.
    pub fn write_header(
        &self,
        w: &mut BitWriter<'_>,
        dtag: u32,
        window: u32,
        fcn: u32,
    ) -> Result<(), FragError> {
        write_fields(
            w,
            &[
                (self.rule.value, self.rule.length),
                (dtag, self.params.dtag_bits),
                (window, self.params.w_bits),
                (fcn, self.params.fcn_bits),
            ],
        )
    }

    /// Writes Rule ID, DTag and W: the start of every F/R message.
    fn write_prefix(&self, w: &mut BitWriter<'_>, dtag: u32, window: u32) -> Result<(), FragError> {
        write_fields(
            w,
            &[
                (self.rule.value, self.rule.length),
                (dtag, self.params.dtag_bits),
                (window, self.params.w_bits),
            ],
        )
    }

    /// Reads Rule ID, DTag, W and FCN: the rule must be this one.
    fn read_header(&self, r: &mut BitReader<'_>) -> Result<(u32, u32, u32), FragError> {
        let (t, m, n) = (
            u32::from(self.params.dtag_bits),
            u32::from(self.params.w_bits),
            u32::from(self.params.fcn_bits),
        );
        let total = u32::from(self.rule.length) + t + m + n;
        if total <= 64 && r.remaining() >= total as usize {
            // One read for the whole header (the common case); field by field otherwise, so
            // that a short frame reports the field it is short of.
            let v = r.read(total)?;
            if v >> (t + m + n) != u64::from(self.rule.value) {
                return Err(FragError::WrongRule(self.rule));
            }
            return Ok((
                low(v >> (m + n), t) as u32,
                low(v >> n, m) as u32,
                low(v, n) as u32,
            ));
        }
        self.read_rule(r)?;
        let dtag = r.read(t)? as u32;
        let w = r.read(m)? as u32;
        let fcn = r.read(n)? as u32;
        Ok((dtag, w, fcn))
    }

    fn read_rule(&self, r: &mut BitReader<'_>) -> Result<(), FragError> {
        let id = r.read(u32::from(self.rule.length))?;
        if id != u64::from(self.rule.value) {
            return Err(FragError::WrongRule(self.rule));
        }
        Ok(())
    }
}

/// The low `n` bits of `v`.
fn low(v: u64, n: u32) -> u64 {
    v & u64::MAX.checked_shr(64 - n.min(64)).unwrap_or(0)
}

/// Writes each (value, width) in turn: in one write when they fit 64 bits together.
fn write_fields(w: &mut BitWriter<'_>, fields: &[(u32, u8)]) -> Result<(), FragError> {
    let total: u32 = fields.iter().map(|&(_, n)| u32::from(n)).sum();
    if total <= 64 {
        let v = fields.iter().fold(0u64, |acc, &(v, n)| {
            acc.checked_shl(u32::from(n)).unwrap_or(0) | low(u64::from(v), u32::from(n))
        });
        w.write(v, total)?;
    } else {
        for &(v, n) in fields {
            w.write(u64::from(v), u32::from(n))?;
        }
    }
    Ok(())
}

fn ones(bits: u8) -> u32 {
    if bits >= 32 {
        u32::MAX
    } else {
        (1u32 << bits) - 1
    }
}

/// What a frame received by the fragment receiver is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragmentKind {
    /// A regular fragment (including All-0) carrying tiles.
    Regular,
    /// The All-1 fragment with its RCS; the payload may be empty.
    All1 {
        /// The RCS as sent.
        rcs: u32,
    },
    /// An ACK REQ (FCN 0, no payload).
    AckReq,
    /// A Sender-Abort.
    SenderAbort,
}

/// A parsed fragment-direction frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// DTag.
    pub dtag: u32,
    /// W.
    pub w: u32,
    /// FCN.
    pub fcn: u32,
    /// What it is.
    pub kind: FragmentKind,
    /// Bit offset of the payload in the frame.
    pub payload_off: usize,
    /// Payload length in bits, padding included.
    pub payload_bits: usize,
}

/// Parses a frame sent by a fragment sender (fragment, ACK REQ or Sender-Abort).
pub fn parse_fragment(l: &Layout, frame: &[u8]) -> Result<Fragment, FragError> {
    let mut r = BitReader::new(frame);
    let (dtag, w, fcn) = l.read_header(&mut r)?;
    let w_at = r.position() - usize::from(l.params.fcn_bits) - usize::from(l.params.w_bits);
    let rest = r.remaining();
    let only_padding = rest < l.l2();
    let kind = if fcn == l.all1() {
        if only_padding {
            if w != l.w_ones() {
                return Err(FragError::Malformed {
                    rule: l.rule,
                    bit: w_at,
                    what: "Sender-Abort whose W is not all ones",
                });
            }
            FragmentKind::SenderAbort
        } else {
            let rcs_at = r.position();
            let rcs = r
                .read(l.rcs_bits() as u32)
                .map_err(|_| FragError::Malformed {
                    rule: l.rule,
                    bit: rcs_at,
                    what: "All-1 fragment shorter than its RCS",
                })? as u32;
            FragmentKind::All1 { rcs }
        }
    } else if only_padding {
        if fcn == 0 && l.params.mode != FragMode::NoAck {
            FragmentKind::AckReq
        } else {
            return Err(FragError::Malformed {
                rule: l.rule,
                bit: r.position(),
                what: "fragment without a tile",
            });
        }
    } else {
        FragmentKind::Regular
    };
    Ok(Fragment {
        dtag,
        w,
        fcn,
        kind,
        payload_off: r.position(),
        payload_bits: r.remaining(),
    })
}

/// Writes an ACK REQ for window `window`; returns its length in bytes.
pub fn write_ack_req(
    l: &Layout,
    dtag: u32,
    window: u32,
    out: &mut [u8],
) -> Result<usize, FragError> {
    let mut w = BitWriter::new(out);
    l.write_header(&mut w, dtag, window, 0)?;
    w.pad_to(l.l2() as u32)?;
    Ok(w.byte_len())
}

/// Writes a Sender-Abort; returns its length in bytes.
pub fn write_sender_abort(l: &Layout, dtag: u32, out: &mut [u8]) -> Result<usize, FragError> {
    let mut w = BitWriter::new(out);
    l.write_header(&mut w, dtag, l.w_ones(), l.all1())?;
    w.pad_to(l.l2() as u32)?;
    Ok(w.byte_len())
}

/// A parsed frame sent by a fragment receiver.
// The compound ACK's windows live inline (no heap in the core), hence the size difference.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    /// C = 1: every tile received and the RCS checked.
    Success {
        /// DTag.
        dtag: u32,
        /// W.
        w: u32,
    },
    /// C = 0: the bitmaps of one window (RFC 8724) or of several (RFC 9441 compound ACK), in
    /// increasing window order. Bits missing from a compressed bitmap read as 1.
    Failure {
        /// DTag.
        dtag: u32,
        /// (W, bitmap) pairs.
        windows: Vec<(u32, u64), MAX_ACK_WINDOWS>,
    },
    /// A Receiver-Abort.
    ReceiverAbort {
        /// DTag.
        dtag: u32,
    },
}

/// Parses a frame sent by a fragment receiver: ACK, compound ACK or Receiver-Abort.
pub fn parse_ack(l: &Layout, frame: &[u8]) -> Result<Ack, FragError> {
    let mut r = BitReader::new(frame);
    l.read_rule(&mut r)?;
    let dtag = r.read(u32::from(l.params.dtag_bits))? as u32;
    let w = r.read(u32::from(l.params.w_bits))? as u32;
    let c = r.read(1)?;
    let ws = l.window_size();
    if c == 1 {
        // Receiver-Abort: W all ones, then 1-bits to the boundary and one more all-ones word.
        // What follows is padding (a fixed-size downlink, as Sigfox's 8 bytes, pads it).
        let l2 = l.l2();
        let ones = (l2 - r.position() % l2) % l2 + l2;
        let all_ones = r.remaining() >= ones
            && (0..ones).all(|i| crate::bits::get_bits(frame, r.position() + i, 1) == 1);
        if w == l.w_ones() && all_ones {
            return Ok(Ack::ReceiverAbort { dtag });
        }
        return Ok(Ack::Success { dtag, w });
    }
    let mut windows = Vec::new();
    let compound = l.params.bitmap_format == crate::rule::BitmapFormat::CompoundAck;
    let m = l.params.w_bits as usize;
    let mut window = w;
    // Where the current window's W is.
    let mut w_at = r.position() - 1 - m;
    loop {
        let take = r.remaining().min(ws);
        let got = r.read(take as u32)?;
        // Missing (compressed-away) bits are 1.
        let missing = ws - take;
        let bitmap = got.checked_shl(missing as u32).unwrap_or(0) | mask(missing);
        windows
            .push((window, bitmap & mask(ws)))
            .map_err(|_| FragError::Malformed {
                rule: l.rule,
                bit: w_at,
                what: "compound ACK reports more windows than supported",
            })?;
        if !compound || r.remaining() < m || m == 0 {
            break;
        }
        w_at = r.position();
        let next = r.read(m as u32)? as u32;
        if next == 0 {
            break;
        }
        if next <= window {
            return Err(FragError::Malformed {
                rule: l.rule,
                bit: w_at,
                what: "compound ACK windows are not in increasing order",
            });
        }
        window = next;
    }
    Ok(Ack::Failure { dtag, windows })
}

/// A mask of the low `ws` bits.
pub fn mask(ws: usize) -> u64 {
    if ws >= 64 {
        u64::MAX
    } else {
        (1u64 << ws) - 1
    }
}

/// Writes a success ACK (C = 1); returns its length in bytes.
pub fn write_ack_success(
    l: &Layout,
    dtag: u32,
    window: u32,
    out: &mut [u8],
) -> Result<usize, FragError> {
    let mut w = BitWriter::new(out);
    write_ack_header(l, &mut w, dtag, window, 1)?;
    w.pad_to(l.l2() as u32)?;
    Ok(w.byte_len())
}

fn write_ack_header(
    l: &Layout,
    w: &mut BitWriter<'_>,
    dtag: u32,
    window: u32,
    c: u64,
) -> Result<(), FragError> {
    l.write_prefix(w, dtag, window)?;
    w.write(c, 1)?;
    Ok(())
}

/// Writes a bitmap of `ws` bits compressed per RFC 8724 §8.3.2.1: cut after the last 0, moved
/// right to the next L2 word boundary of the whole message (or the end of the bitmap). Returns
/// whether bits were cut (the message then ends on a boundary and needs no padding).
fn write_compressed_bitmap(
    l: &Layout,
    w: &mut BitWriter<'_>,
    bitmap: u64,
) -> Result<bool, FragError> {
    let ws = l.window_size();
    let start = w.position();
    // Index (from the left, 0-based) of the last 0 bit, if any.
    let last_zero = (0..ws).rev().find(|&i| (bitmap >> (ws - 1 - i)) & 1 == 0);
    let cut = start + last_zero.map_or(0, |i| i + 1);
    let l2 = l.l2();
    let aligned = cut.div_ceil(l2) * l2;
    if aligned >= start + ws {
        w.write(bitmap & mask(ws), ws as u32)?;
        Ok(false)
    } else {
        // An all-ones bitmap after a header that ends on a boundary keeps no bit at all (and
        // a shift by 64 would overflow).
        let keep = aligned - start;
        if keep > 0 {
            w.write((bitmap & mask(ws)) >> (ws - keep), keep as u32)?;
        }
        Ok(true)
    }
}

/// Writes a failure ACK (C = 0) reporting `windows` (W, bitmap), increasing W. With the
/// RFC 8724 format only the first window is written; with compound ACKs (RFC 9441) every one,
/// the last compressed if the rule says so, then an M-bit zero terminator when room allows.
pub fn write_ack_failure(
    l: &Layout,
    dtag: u32,
    windows: &[(u32, u64)],
    out: &mut [u8],
) -> Result<usize, FragError> {
    let Some(&(first_w, first_bitmap)) = windows.first() else {
        return Err(FragError::Malformed {
            rule: l.rule,
            bit: 0,
            what: "a failure ACK needs at least one window",
        });
    };
    let ws = l.window_size();
    let mut w = BitWriter::new(out);
    write_ack_header(l, &mut w, dtag, first_w, 0)?;
    if l.params.bitmap_format != crate::rule::BitmapFormat::CompoundAck {
        write_compressed_bitmap(l, &mut w, first_bitmap)?;
        w.pad_to(l.l2() as u32)?;
        return Ok(w.byte_len());
    }
    let m = u32::from(l.params.w_bits);
    for (i, &(win, bitmap)) in windows.iter().enumerate() {
        if i > 0 {
            w.write(u64::from(win), m)?;
        }
        if i + 1 == windows.len() && l.params.last_bitmap_compression {
            if write_compressed_bitmap(l, &mut w, bitmap)? {
                return Ok(w.byte_len());
            }
        } else {
            w.write(bitmap & mask(ws), ws as u32)?;
        }
    }
    finish_compound(l, w)
}

fn finish_compound(l: &Layout, mut w: BitWriter<'_>) -> Result<usize, FragError> {
    let l2 = l.l2();
    let m = l.params.w_bits as usize;
    let pad = (l2 - w.position() % l2) % l2;
    if pad >= m && m > 0 {
        w.write(0, m as u32)?;
    }
    w.pad_to(l2 as u32)?;
    Ok(w.byte_len())
}

/// Writes a Receiver-Abort: W all ones, C = 1, ones to the L2 boundary, one more L2 word of ones.
pub fn write_receiver_abort(l: &Layout, dtag: u32, out: &mut [u8]) -> Result<usize, FragError> {
    let mut w = BitWriter::new(out);
    write_ack_header(l, &mut w, dtag, l.w_ones(), 1)?;
    let l2 = l.l2();
    let pad = (l2 - w.position() % l2) % l2 + l2;
    for _ in 0..pad {
        w.write(1, 1)?;
    }
    Ok(w.byte_len())
}
