//! The fragment receiver of all three modes (RFC 8724 §8.4, RFC 9441 §3.2), sans-IO.
//!
//! Tiles are written straight into the caller's buffer at their place (absolute tile index ×
//! tile size); which tiles arrived is kept in a fixed bitmap. The tile carried by the All-1 is
//! kept after the packet area until the packet's length is known. Duplicates, reordering and
//! retransmissions are harmless: a tile is just written again at its place.

use super::sender::MAX_TILES;
use super::wire::{self, FragmentKind, Layout};
use super::{rcs, AbortReason, FragError, Micros};
use crate::bits::{get_bits, BitWriter};
use crate::rule::{AckBehavior, FragMode, Rule};

const WORDS: usize = MAX_TILES / 64;

/// What the receiver wants done next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiverAction {
    /// Send the first `n` bytes of the output buffer (an ACK or a Receiver-Abort), then call
    /// `poll` again.
    Send(usize),
    /// The packet is complete: `bits` bits at the start of the buffer ([`Receiver::packet`]).
    /// Reported once; the receiver keeps answering a repeated All-1 or ACK REQ afterwards.
    Delivered {
        /// Length of the reassembled SCHC packet in bits (padding of the last fragment
        /// included: it is below one L2 word and decompression ignores it).
        bits: usize,
    },
    /// Nothing to do before this instant (the inactivity timer) or the next frame.
    WaitUntil(Micros),
    /// Nothing to do until the next frame (no inactivity timer, or already delivered).
    Idle,
    /// The session ended without a packet.
    Aborted(AbortReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Receiving,
    Done,
    Aborted(AbortReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Last {
    /// The last tile came in a regular fragment at this tile index, this long (with padding).
    Regular { idx: usize, bits: usize },
    /// The last tile came in the All-1; it is stored after the packet area.
    All1 { bits: usize },
    /// The All-1 carried no tile.
    None,
}

/// A fragment receiver for one packet, reassembling into a caller-owned buffer: `&mut [u8]`
/// on a device, an owned `Vec<u8>` or `Box<[u8]>` in a gateway's session table.
#[derive(Debug)]
pub struct Receiver<B> {
    l: Layout,
    buf: B,
    cap_bits: usize,
    tail: usize,
    dtag: Option<u32>,
    tile: usize,
    max_tiles: usize,
    received: [u64; WORDS],
    append_bits: usize,
    /// W of the All-1 (absolute window) and its RCS, once seen.
    all1: Option<(usize, u32)>,
    last: Last,
    /// ACK-on-Error: the padding (tile index, length < an L2 word, bits) after the highest tile
    /// that ended a regular fragment: if that tile is the packet's last, its fragment's padding
    /// is part of the RCS input (RFC 8724 §8.2.3).
    end_pad: Option<(usize, u8, u8)>,
    /// ACK-Always: the absolute window being received.
    window: usize,
    /// ACK-Always: bit offset of the first tile of `window` (tile sizes may change from one
    /// window to the next, RFC 8724 §8.4.2 and the RFC 9011 downlink profile).
    window_base: usize,
    retransmission: bool,
    highest_window: usize,
    ack_pending: Option<usize>,
    abort_pending: Option<AbortReason>,
    attempts: u8,
    inactivity: Option<Micros>,
    deadline: Option<Micros>,
    phase: Phase,
    bits: usize,
    reported: bool,
}

impl Receiver<&mut [u8]> {
    /// The buffer a receiver needs for `rule` when frames are at most `max_frame` bytes: the
    /// maximum packet size, one byte of padding, and room for the All-1's tile.
    pub fn buffer_len(rule: &Rule, max_frame: usize) -> usize {
        match rule.nature {
            crate::rule::Nature::Fragmentation(p) => usize::from(p.max_packet_size) + 1 + max_frame,
            _ => 0,
        }
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Receiver<B> {
    /// A receiver for fragmentation `rule`, reassembling into `buf` (see
    /// [`Receiver::buffer_len`]); `now` starts the inactivity timer.
    pub fn new(rule: &Rule, buf: B, now: Micros) -> Result<Self, FragError> {
        let l = Layout::new(rule)?;
        let p = l.params;
        let packet_bytes = usize::from(p.max_packet_size) + 1;
        let len = buf.as_ref().len();
        if len <= packet_bytes {
            return Err(FragError::BufferTooSmall {
                needed: packet_bytes + 1,
                capacity: len,
            });
        }
        let inactivity = p
            .inactivity_timer
            .filter(|t| t.ticks > 0)
            .map(|t| t.micros());
        let ws = l.window_size().max(1);
        let window_tiles = if p.mode == FragMode::AckOnError && p.w_bits < 32 {
            (1usize << p.w_bits).saturating_mul(ws)
        } else {
            usize::MAX
        };
        Ok(Self {
            l,
            cap_bits: packet_bytes * 8,
            tail: packet_bytes * 8,
            buf,
            dtag: None,
            tile: usize::from(if p.mode == FragMode::AckOnError {
                p.tile_size
            } else {
                0
            }),
            max_tiles: window_tiles.min(MAX_TILES),
            received: [0; WORDS],
            append_bits: 0,
            all1: None,
            last: Last::None,
            end_pad: None,
            window: 0,
            window_base: 0,
            retransmission: false,
            highest_window: 0,
            ack_pending: None,
            abort_pending: None,
            attempts: 0,
            inactivity,
            deadline: inactivity.map(|d| now.saturating_add(d)),
            phase: Phase::Receiving,
            bits: 0,
            reported: false,
        })
    }

    /// The reassembled SCHC packet and its length in bits, once delivered.
    pub fn packet(&self) -> Option<(&[u8], usize)> {
        match self.phase {
            Phase::Done => Some((self.buf.as_ref().get(..self.bits.div_ceil(8))?, self.bits)),
            _ => None,
        }
    }

    /// Gives the buffer back (with the packet at its start once delivered).
    pub fn into_buffer(self) -> B {
        self.buf
    }

    /// The DTag of the session (once a frame arrived).
    pub fn dtag(&self) -> Option<u32> {
        self.dtag
    }

    fn ws(&self) -> usize {
        self.l.window_size().max(1)
    }

    fn has(&self, i: usize) -> bool {
        self.received
            .get(i / 64)
            .is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    fn set(&mut self, i: usize) {
        if let Some(w) = self.received.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    /// Number of tiles received contiguously from tile 0.
    fn contiguous(&self) -> usize {
        (0..self.max_tiles)
            .find(|&i| !self.has(i))
            .unwrap_or(self.max_tiles)
    }

    /// Takes in one frame from the fragment sender.
    pub fn handle_frame(&mut self, frame: &[u8], now: Micros) -> Result<(), FragError> {
        if matches!(self.phase, Phase::Aborted(_)) {
            return Ok(());
        }
        let f = wire::parse_fragment(&self.l, frame)?;
        match self.dtag {
            Some(d) if d != f.dtag => return Ok(()),
            None => self.dtag = Some(f.dtag),
            _ => {}
        }
        self.deadline = self.inactivity.map(|d| now.saturating_add(d));
        if self.phase == Phase::Done {
            // Clean-up: the sender may have lost our ACK.
            if matches!(f.kind, FragmentKind::All1 { .. } | FragmentKind::AckReq)
                && self.l.params.mode != FragMode::NoAck
            {
                self.ack_pending = Some(self.all1.map_or(self.window, |a| a.0));
            }
            return Ok(());
        }
        if f.kind == FragmentKind::SenderAbort {
            self.phase = Phase::Aborted(AbortReason::PeerAborted);
            return Ok(());
        }
        match self.l.params.mode {
            FragMode::NoAck => self.no_ack(frame, &f),
            FragMode::AckOnError => self.ack_on_error(frame, &f),
            FragMode::AckAlways => self.ack_always(frame, &f),
        }
    }

    fn no_ack(&mut self, frame: &[u8], f: &wire::Fragment) -> Result<(), FragError> {
        self.append(frame, f)?;
        if let FragmentKind::All1 { rcs } = f.kind {
            let bits = self.append_bits;
            if rcs::rcs(self.buf.as_ref(), bits) == rcs {
                self.deliver(bits);
            } else {
                self.phase = Phase::Aborted(AbortReason::RcsMismatch);
            }
        }
        Ok(())
    }

    fn append(&mut self, frame: &[u8], f: &wire::Fragment) -> Result<(), FragError> {
        let n = f.payload_bits;
        if self.append_bits + n > self.cap_bits {
            self.phase = Phase::Aborted(AbortReason::InconsistentAck);
            return Err(FragError::PacketTooLarge {
                rule: self.l.rule,
                bits: self.append_bits + n,
                max: self.cap_bits,
            });
        }
        let mut w = BitWriter::new(self.buf.as_mut());
        w.seek(self.append_bits)?;
        w.copy_bits(frame, f.payload_off, n)?;
        self.append_bits += n;
        Ok(())
    }

    /// Writes `n` bits of `frame` from `off` at tile index `idx`.
    fn store_tile(
        &mut self,
        frame: &[u8],
        off: usize,
        n: usize,
        idx: usize,
        f: &wire::Fragment,
    ) -> Result<(), FragError> {
        self.store_run(frame, off, n, idx, 1, f)
    }

    /// Writes `count` tiles of a fragment, `n` bits in all from `off` in `frame`, from tile
    /// index `idx` on: consecutive tiles are consecutive in the packet, so one copy does. Nothing
    /// is written unless every tile fits.
    fn store_run(
        &mut self,
        frame: &[u8],
        off: usize,
        n: usize,
        idx: usize,
        count: usize,
        f: &wire::Fragment,
    ) -> Result<(), FragError> {
        let at = self.tile_offset(idx);
        if idx + count > self.max_tiles || at + n > self.cap_bits {
            return Err(FragError::TileOutOfRange {
                rule: self.l.rule,
                window: f.w,
                fcn: f.fcn,
            });
        }
        let mut w = BitWriter::new(self.buf.as_mut());
        w.seek(at)?;
        w.copy_bits(frame, off, n)?;
        for i in idx..idx + count {
            if !self.has(i) {
                // Progress: MAX_ACK_REQUESTS bounds ACKs sent without new tiles in between, so
                // a lossless exchange with an ACK after every window never runs out of
                // attempts.
                self.attempts = 0;
            }
            self.set(i);
        }
        Ok(())
    }

    fn store_all1_tile(&mut self, frame: &[u8], f: &wire::Fragment) -> Result<(), FragError> {
        let n = f.payload_bits;
        if self.tail + n > self.buf.as_ref().len() * 8 {
            return Err(FragError::BufferTooSmall {
                needed: (self.tail + n).div_ceil(8),
                capacity: self.buf.as_ref().len(),
            });
        }
        let mut w = BitWriter::new(self.buf.as_mut());
        w.seek(self.tail)?;
        w.copy_bits(frame, f.payload_off, n)?;
        self.last = Last::All1 { bits: n };
        Ok(())
    }

    /// Bit offset of tile `idx` in the packet. ACK-Always learns the tile size of each window
    /// from its fragments (windows are received in lock-step, so the earlier ones are complete);
    /// ACK-on-Error tiles all have the rule's size.
    fn tile_offset(&self, idx: usize) -> usize {
        if self.l.params.mode == FragMode::AckAlways {
            let first = self.window * self.ws();
            self.window_base + idx.saturating_sub(first) * self.tile
        } else {
            idx * self.tile
        }
    }

    /// Bit offset of the FCN in a fragment.
    fn fcn_at(&self) -> usize {
        self.l
            .header_bits()
            .saturating_sub(usize::from(self.l.params.fcn_bits))
    }

    /// Index of the first tile of a fragment.
    fn first_index(&self, window: usize, fcn: u32) -> Option<usize> {
        let ws = self.ws();
        let fcn = fcn as usize;
        (fcn < ws).then(|| window * ws + (ws - 1 - fcn))
    }

    fn ack_on_error(&mut self, frame: &[u8], f: &wire::Fragment) -> Result<(), FragError> {
        let l2 = self.l.l2();
        let window = f.w as usize;
        match f.kind {
            FragmentKind::Regular => {
                if self.tile == 0 {
                    // No tile size in the rule: one tile per fragment, learned from the first.
                    self.tile = f.payload_bits;
                }
                let tile = self.tile;
                let Some(first) = self.first_index(window, f.fcn) else {
                    return Err(FragError::Malformed {
                        rule: self.l.rule,
                        bit: self.fcn_at(),
                        what: "FCN outside the window",
                    });
                };
                let k = f.payload_bits / tile;
                let rem = f.payload_bits - k * tile;
                if k > 0 {
                    self.store_run(frame, f.payload_off, k * tile, first, k, f)?;
                }
                if rem >= l2 {
                    // A short tile: the packet's last one (with the fragment's padding).
                    self.store_tile(frame, f.payload_off + k * tile, rem, first + k, f)?;
                    self.last = Last::Regular {
                        idx: first + k,
                        bits: rem,
                    };
                } else if rem > 0 && k > 0 {
                    // Padding after whole tiles. Should the last of them be the packet's last
                    // tile (a whole tile in a regular fragment), this padding belongs to the RCS
                    // input: keep the one after the highest such tile.
                    let end = first + k - 1;
                    if self.end_pad.is_none_or(|(i, _, _)| end >= i) {
                        let v = get_bits(frame, f.payload_off + k * tile, rem as u32);
                        self.end_pad = Some((end, rem as u8, v as u8));
                    }
                }
                let end = first + k.max(1) - 1;
                self.highest_window = self.highest_window.max(end / self.ws());
                let ends_window = (first..=end).any(|i| i % self.ws() == self.ws() - 1);
                if self.all1.is_some() {
                    // A retransmitted tile may complete the packet: say so at once (as RFC 8724
                    // Figure 29 shows) instead of waiting for the sender's ACK REQ.
                    self.try_complete();
                    if self.phase == Phase::Done {
                        self.ack_pending = Some(window);
                    }
                } else if ends_window && self.l.params.ack_behavior == AckBehavior::AfterAll0 {
                    self.ack_pending = Some(end / self.ws());
                }
            }
            FragmentKind::All1 { rcs } => {
                if f.payload_bits >= l2 {
                    if self.tile > 0 && f.payload_bits >= self.tile + l2 {
                        return Err(FragError::Malformed {
                            rule: self.l.rule,
                            bit: f.payload_off,
                            what: "All-1 payload longer than a tile",
                        });
                    }
                    self.store_all1_tile(frame, f)?;
                }
                self.all1 = Some((window, rcs));
                self.highest_window = self.highest_window.max(window);
                self.try_complete();
                self.ack_pending = Some(window);
            }
            FragmentKind::AckReq => {
                self.highest_window = self.highest_window.max(window);
                self.ack_pending = Some(window);
            }
            FragmentKind::SenderAbort => {}
        }
        Ok(())
    }

    fn ack_always(&mut self, frame: &[u8], f: &wire::Fragment) -> Result<(), FragError> {
        let local = (self.window & 1) as u32;
        let in_last = self.all1.is_some_and(|a| a.0 == self.window);
        if f.w != local {
            // A new W means the sender moved to the next window (RFC 8724 §8.4.2.2), unless
            // this window is the last one.
            if !self.retransmission || in_last {
                return Ok(());
            }
            self.window_base += self.ws() * self.tile;
            self.window += 1;
            self.tile = 0;
            self.attempts = 0;
            self.retransmission = false;
        }
        let window = self.window;
        match f.kind {
            FragmentKind::Regular => {
                if self.tile == 0 {
                    self.tile = f.payload_bits;
                }
                if f.payload_bits != self.tile {
                    return Err(FragError::Malformed {
                        rule: self.l.rule,
                        bit: f.payload_off,
                        what: "ACK-Always tiles of different sizes",
                    });
                }
                let Some(idx) = self.first_index(window, f.fcn) else {
                    return Err(FragError::Malformed {
                        rule: self.l.rule,
                        bit: self.fcn_at(),
                        what: "FCN outside the window",
                    });
                };
                if f.fcn == 0 && self.retransmission && in_last {
                    return Ok(());
                }
                self.store_tile(frame, f.payload_off, self.tile, idx, f)?;
                if self.all1.is_some_and(|a| a.0 == window) {
                    // Last window: a retransmitted tile may complete the packet. Only success is
                    // acknowledged here: after a failed check on a fragment that is not the All-1
                    // the receiver stays silent (RFC 8724 §8.4.2.2, Figure 33).
                    if self.window_complete(window) {
                        self.try_complete();
                        if self.phase == Phase::Done {
                            self.ack_pending = Some(window);
                        }
                    }
                } else if f.fcn == 0 || (self.retransmission && self.window_complete(window)) {
                    self.retransmission = true;
                    self.ack_pending = Some(window);
                }
            }
            FragmentKind::All1 { rcs } => {
                if f.payload_bits >= self.l.l2() {
                    self.store_all1_tile(frame, f)?;
                }
                self.all1 = Some((window, rcs));
                self.retransmission = true;
                self.try_complete();
                self.ack_pending = Some(window);
            }
            FragmentKind::AckReq => self.ack_pending = Some(window),
            FragmentKind::SenderAbort => {}
        }
        Ok(())
    }

    /// Whether every tile of `window` (and, for the last window, the tiles before the last
    /// one) has arrived.
    fn window_complete(&self, window: usize) -> bool {
        let ws = self.ws();
        let start = window * ws;
        match self.all1 {
            Some((w, _)) if w == window => {
                let have_last = !matches!(self.last, Last::None);
                // Tiles before the last: the contiguous run must reach the highest one received.
                let highest = (start..start + ws).rev().find(|&i| self.has(i));
                let run_ok = highest.is_none_or(|h| (start..=h).all(|i| self.has(i)));
                have_last && run_ok
            }
            _ => (start..start + ws).all(|i| self.has(i)),
        }
    }

    /// Once the All-1 has arrived: put the last tile in place and check the RCS.
    fn try_complete(&mut self) {
        let Some((_, rcs_sent)) = self.all1 else {
            return;
        };
        let n = self.contiguous();
        let tiles = match self.last {
            Last::Regular { idx, .. } => idx + 1,
            Last::All1 { .. } => n + 1,
            Last::None => n,
        };
        // A tile after the contiguous run means a tile is missing: not complete. (Writing the
        // All-1's tile, up to a tile and an L2 word long with its padding, after the run would
        // also overwrite the start of the next received tile.)
        if (n..self.max_tiles).any(|i| self.has(i)) {
            return;
        }
        let total = match self.last {
            Last::Regular { idx, bits } => {
                if idx + 1 != n {
                    return;
                }
                self.tile_offset(idx) + bits
            }
            Last::All1 { bits } => {
                let at = self.tile_offset(n);
                if at + bits > self.cap_bits {
                    return;
                }
                // Copy the All-1's tile from the tail to its place (the areas do not overlap).
                let mut done = 0;
                while done < bits {
                    let take = (bits - done).min(56);
                    let v = get_bits(self.buf.as_ref(), self.tail + done, take as u32);
                    let mut w = BitWriter::new(self.buf.as_mut());
                    if w.seek(at + done)
                        .and_then(|_| w.write(v, take as u32))
                        .is_err()
                    {
                        return;
                    }
                    done += take;
                }
                at + bits
            }
            Last::None => {
                let at = self.tile_offset(n);
                match self.end_pad {
                    // The last tile was a whole one in a regular fragment with padding: the
                    // padding follows the packet, in the RCS and in what is delivered.
                    Some((i, len, v)) if n > 0 && i + 1 == n => {
                        let len = usize::from(len);
                        let mut w = BitWriter::new(self.buf.as_mut());
                        if at + len > self.cap_bits
                            || w.seek(at)
                                .and_then(|_| w.write(u64::from(v), len as u32))
                                .is_err()
                        {
                            return;
                        }
                        at + len
                    }
                    _ => at,
                }
            }
        };
        if total > 0 && rcs::receiver_value(&self.l, self.buf.as_ref(), total, tiles) == rcs_sent {
            self.deliver(total);
        }
    }

    fn deliver(&mut self, bits: usize) {
        self.bits = bits;
        self.phase = Phase::Done;
    }

    /// The bitmap of `window` (bit k = tile with FCN k; in the All-1's window bit 0 = the last
    /// tile).
    fn bitmap(&self, window: usize) -> u64 {
        let ws = self.ws();
        let mut b = 0u64;
        for fcn in 0..ws {
            if self.has(window * ws + (ws - 1 - fcn)) {
                b |= 1 << fcn;
            }
        }
        if self.all1.is_some_and(|a| a.0 == window) {
            b &= !1;
            if !matches!(self.last, Last::None) {
                b |= 1;
            }
        }
        b
    }

    /// What to do now; ACKs and aborts are written into `out`.
    pub fn poll(&mut self, now: Micros, out: &mut [u8]) -> Result<ReceiverAction, FragError> {
        if let Some(reason) = self.abort_pending.take() {
            let n = wire::write_receiver_abort(&self.l, self.dtag.unwrap_or(0), out)?;
            self.phase = Phase::Aborted(reason);
            return Ok(ReceiverAction::Send(n));
        }
        if let Phase::Aborted(r) = self.phase {
            return Ok(ReceiverAction::Aborted(r));
        }
        if let Some(window) = self.ack_pending.take() {
            if self.l.params.mode != FragMode::NoAck {
                return self.send_ack(window, out);
            }
        }
        if self.phase == Phase::Done {
            if !self.reported {
                self.reported = true;
                return Ok(ReceiverAction::Delivered { bits: self.bits });
            }
            return Ok(ReceiverAction::Idle);
        }
        match self.deadline {
            Some(d) if now >= d => {
                if self.l.params.mode == FragMode::NoAck {
                    self.phase = Phase::Aborted(AbortReason::Inactivity);
                    return Ok(ReceiverAction::Aborted(AbortReason::Inactivity));
                }
                self.abort_pending = Some(AbortReason::Inactivity);
                self.poll(now, out)
            }
            Some(d) => Ok(ReceiverAction::WaitUntil(d)),
            None => Ok(ReceiverAction::Idle),
        }
    }

    fn send_ack(&mut self, window: usize, out: &mut [u8]) -> Result<ReceiverAction, FragError> {
        let dtag = self.dtag.unwrap_or(0);
        let mode = self.l.params.mode;
        let w_field = |w: usize| match mode {
            FragMode::AckAlways => (w & 1) as u32,
            _ => w as u32,
        };
        if self.phase == Phase::Done {
            let w = self.all1.map_or(window, |a| a.0);
            let n = wire::write_ack_success(&self.l, dtag, w_field(w), out)?;
            return Ok(ReceiverAction::Send(n));
        }
        self.attempts = self.attempts.saturating_add(1);
        if self.attempts > self.l.params.max_ack_requests.max(1) {
            self.abort_pending = Some(AbortReason::TooManyAttempts);
            let n = wire::write_receiver_abort(&self.l, dtag, out)?;
            self.abort_pending = None;
            self.phase = Phase::Aborted(AbortReason::TooManyAttempts);
            return Ok(ReceiverAction::Send(n));
        }
        let mut windows: heapless::Vec<(u32, u64), { wire::MAX_ACK_WINDOWS }> =
            heapless::Vec::new();
        match mode {
            FragMode::AckAlways => {
                let _ = windows.push((w_field(window), self.bitmap(window)));
            }
            _ => {
                // The windows up to the last one known; report those with missing tiles, the
                // lowest first (compound ACKs: all of them), else the requested window.
                let last = self.all1.map_or(self.highest_window.max(window), |a| a.0);
                let full = wire::mask(self.ws());
                let compound =
                    self.l.params.bitmap_format == crate::rule::BitmapFormat::CompoundAck;
                for w in 0..=last {
                    let b = self.bitmap(w);
                    let missing = if w == last {
                        b != full || self.all1.is_none()
                    } else {
                        b != full
                    };
                    if missing
                        && (windows.is_empty() || compound)
                        && windows.push((w as u32, b)).is_err()
                    {
                        break;
                    }
                }
                if windows.is_empty() {
                    let _ = windows.push((window as u32, self.bitmap(window)));
                }
            }
        }
        let n = wire::write_ack_failure(&self.l, dtag, &windows, out)?;
        Ok(ReceiverAction::Send(n))
    }
}
