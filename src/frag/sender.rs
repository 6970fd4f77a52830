//! The fragment sender of all three modes (RFC 8724 §8.4), sans-IO.

use super::wire::{self, Ack, Layout};
use super::{rcs, AbortReason, FragError, Micros};
use crate::bits::BitWriter;
use crate::rule::{FragMode, Rule, TileInAll1};

/// The most tiles one packet may have (64 windows of 64 tiles).
pub const MAX_TILES: usize = 4096;
const WORDS: usize = MAX_TILES / 64;

/// Retransmission timer used when the rule gives none: 60 s.
pub const DEFAULT_RETRANSMISSION_US: Micros = 60_000_000;

/// What the sender wants done next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderAction {
    /// Send the first `n` bytes of the output buffer, then call `poll` again.
    Send(usize),
    /// Nothing to send: call `poll` again at this instant, or when an ACK arrives.
    WaitUntil(Micros),
    /// The packet was delivered (ACK with C = 1), or, in No-ACK, every fragment was sent.
    Done,
    /// The session ended without success.
    Aborted(AbortReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Sending,
    Waiting,
    Done,
    Aborted(AbortReason),
}

/// A fragment sender for one SCHC packet: borrowed (`&[u8]`) on a device, owned (`Vec<u8>`,
/// `Box<[u8]>`) in a gateway's downlink table.
#[derive(Debug, Clone)]
pub struct Sender<P> {
    l: Layout,
    packet: P,
    bits: usize,
    dtag: u32,
    mtu_bits: usize,
    tile: usize,
    tiles: usize,
    penult_bits: usize,
    last_bits: usize,
    last_in_all1: bool,
    rcs: u32,
    pending: [u64; WORDS],
    all1_pending: bool,
    ack_req_pending: bool,
    abort_pending: Option<AbortReason>,
    last_sent_all1: bool,
    window: usize,
    attempts: u8,
    deadline: Micros,
    phase: Phase,
    retrans: Micros,
}

impl<P: AsRef<[u8]>> Sender<P> {
    /// A sender for the first `bits` bits of `packet` with fragmentation `rule`, DTag `dtag`,
    /// and frames of at most `mtu` bytes.
    pub fn new(
        rule: &Rule,
        packet: P,
        bits: usize,
        dtag: u32,
        mtu: usize,
    ) -> Result<Self, FragError> {
        let l = Layout::new(rule)?;
        let p = l.params;
        let id = l.rule;
        let bytes = packet.as_ref();
        let bits = bits.min(bytes.len() * 8);
        if bits == 0 {
            return Err(FragError::PacketTooLarge {
                rule: id,
                bits,
                max: 0,
            });
        }
        let max_bits = usize::from(p.max_packet_size) * 8;
        if bits > max_bits {
            return Err(FragError::PacketTooLarge {
                rule: id,
                bits,
                max: max_bits,
            });
        }
        let l2 = l.l2();
        let header = l.header_bits();
        let mtu_bits = mtu * 8;
        let all1_room = mtu_bits.checked_sub(header + l.rcs_bits());
        let too_small = FragError::MtuTooSmall { rule: id, mtu };
        let mut penult: Option<usize> = None;
        let mut extra = false;
        let (tile, last_in_all1) = if p.mode == FragMode::AckOnError && p.tile_size > 0 {
            let tile = usize::from(p.tile_size);
            if header + tile > mtu_bits {
                return Err(too_small);
            }
            let last = bits - (bits.div_ceil(tile) - 1) * tile;
            let fits = all1_room.is_some_and(|r| last <= r);
            let in_all1 = match p.tile_in_all1 {
                TileInAll1::Yes => true,
                TileInAll1::No => false,
                // Small last tiles and tiles not whole L2 words travel in the All-1, where their
                // padding is fixed (it is part of the RCS).
                TileInAll1::SenderChoice => fits || last < l2 || tile % l2 != 0,
            };
            if in_all1 && !fits {
                return Err(too_small);
            }
            if !in_all1 && (last < l2 || tile % l2 != 0) {
                return Err(FragError::BadRule {
                    rule: id,
                    reason: "the last tile cannot travel in a regular fragment (shorter than an L2 word, or tiles not whole L2 words)",
                });
            }
            (tile, in_all1)
        } else {
            // One tile per fragment, filling the MTU: the largest size that keeps fragments
            // whole L2 words and lets the last tile (at least one L2 word) fit the All-1.
            let room = all1_room.ok_or(too_small)?;
            let top = (mtu_bits / l2) * l2;
            let mut found = None;
            let mut frag = top;
            while frag > header {
                let t = frag - header;
                let n = bits.div_ceil(t);
                let last = bits - (n - 1) * t;
                if last <= room && (last >= l2 || n == 1) {
                    found = Some(t);
                    break;
                }
                frag -= l2;
            }
            // No-ACK appends tiles in order, so only the penultimate tile needs to give way:
            // keep full tiles (as libschc and openschc do) and shorten the penultimate by whole
            // L2 words until the last tile is at least one L2 word and fits the All-1.
            if p.mode == FragMode::NoAck && top > header + l2 {
                let full = top - header;
                let n = bits.div_ceil(full);
                let last = bits - (n - 1) * full;
                if n >= 2 && last < l2 && full >= 2 * l2 {
                    penult = Some(full - l2);
                    (full, true)
                } else if n >= 2 && last > room && last > l2 {
                    // One more tile: a short regular one, then the last.
                    let mut q = l2;
                    while (last - q) % l2 != full % l2 && q < last {
                        q += 1;
                    }
                    if q <= room && q < last {
                        penult = Some(last - q);
                        extra = true;
                        (full, true)
                    } else {
                        (found.ok_or(too_small)?, true)
                    }
                } else if last <= room && (last >= l2 || n == 1) {
                    (full, true)
                } else {
                    (found.ok_or(too_small)?, true)
                }
            } else {
                (found.ok_or(too_small)?, true)
            }
        };
        // Tile sizes: all `tile` bits, except a shortened penultimate (No-ACK) and the last.
        let (tiles, penult_bits, last_bits) = match penult {
            Some(pb) if extra => {
                let n = bits.div_ceil(tile) + 1;
                (n, pb, bits - (n - 2) * tile - pb)
            }
            Some(pb) => {
                let n = bits.div_ceil(tile);
                (n, pb, bits - (n - 2) * tile - pb)
            }
            None => {
                let n = bits.div_ceil(tile);
                (n, tile, bits - (n - 1) * tile)
            }
        };
        let ws = l.window_size().max(1);
        if tiles > MAX_TILES {
            return Err(FragError::PacketTooLarge {
                rule: id,
                bits,
                max: MAX_TILES * tile,
            });
        }
        if p.mode == FragMode::AckOnError {
            let windows = tiles.div_ceil(ws);
            if p.w_bits < 32 && windows > (1usize << p.w_bits) {
                return Err(FragError::PacketTooLarge {
                    rule: id,
                    bits,
                    max: (1usize << p.w_bits) * ws * tile,
                });
            }
        }
        // RCS over the packet and the padding of the fragment carrying the last tile.
        let carrier = if last_in_all1 {
            header + l.rcs_bits() + last_bits
        } else {
            header + last_bits
        };
        let pad = (l2 - carrier % l2) % l2;
        if last_in_all1 && last_bits + pad < l2 {
            // An All-1 payload shorter than an L2 word reads as padding (RFC 8724 §8.3.1.2):
            // the receiver would never see this tile.
            return Err(FragError::BadRule {
                rule: id,
                reason: "the last tile and its padding would be shorter than an L2 word",
            });
        }
        let rcs = rcs::rcs_padded(bytes, bits, pad);
        let mut s = Self {
            l,
            packet,
            bits,
            dtag,
            mtu_bits,
            tile,
            tiles,
            penult_bits,
            last_bits,
            last_in_all1,
            rcs,
            pending: [0; WORDS],
            all1_pending: false,
            ack_req_pending: false,
            abort_pending: None,
            last_sent_all1: false,
            window: 0,
            attempts: 0,
            deadline: 0,
            phase: Phase::Sending,
            retrans: p
                .retransmission_timer
                .map_or(DEFAULT_RETRANSMISSION_US, |t| t.micros()),
        };
        match p.mode {
            FragMode::AckAlways => s.queue_window(0),
            _ => {
                let regular = if last_in_all1 { tiles - 1 } else { tiles };
                for i in 0..regular {
                    s.mark(i);
                }
                s.all1_pending = true;
            }
        }
        Ok(s)
    }

    /// Regular tile size in bits.
    pub fn tile_bits(&self) -> usize {
        self.tile
    }

    /// Number of tiles.
    pub fn tiles(&self) -> usize {
        self.tiles
    }

    /// The RCS sent in the All-1.
    pub fn rcs(&self) -> u32 {
        self.rcs
    }

    /// Changes the MTU for the frames still to send (ACK-on-Error with a tile size in the rule
    /// packs as many tiles as fit; otherwise the tile size stays).
    pub fn set_mtu(&mut self, mtu: usize) {
        self.mtu_bits = mtu * 8;
    }

    fn mark(&mut self, i: usize) {
        if let Some(w) = self.pending.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    fn is_pending(&self, i: usize) -> bool {
        self.pending
            .get(i / 64)
            .is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    fn clear(&mut self, i: usize) {
        if let Some(w) = self.pending.get_mut(i / 64) {
            *w &= !(1 << (i % 64));
        }
    }

    fn ws(&self) -> usize {
        self.l.window_size().max(1)
    }

    fn last_window(&self) -> usize {
        (self.tiles - 1) / self.ws()
    }

    fn queue_window(&mut self, w: usize) {
        self.window = w;
        let ws = self.ws();
        let end = ((w + 1) * ws).min(self.tiles);
        for i in w * ws..end {
            if i + 1 == self.tiles && self.last_in_all1 {
                self.all1_pending = true;
            } else {
                self.mark(i);
            }
        }
    }

    fn tile_len(&self, i: usize) -> usize {
        if i + 1 == self.tiles {
            self.last_bits
        } else if i + 2 == self.tiles {
            self.penult_bits
        } else {
            self.tile
        }
    }

    /// Bit offset of tile `i` in the packet.
    fn tile_offset(&self, i: usize) -> usize {
        if i + 1 == self.tiles && self.tiles >= 2 {
            (i - 1) * self.tile + self.penult_bits
        } else {
            i * self.tile
        }
    }

    fn w_field(&self, window: usize) -> u32 {
        match self.l.params.mode {
            FragMode::AckAlways => (window & 1) as u32,
            _ => window as u32,
        }
    }

    fn fcn_of(&self, i: usize) -> u32 {
        match self.l.params.mode {
            FragMode::NoAck => 0,
            _ => (self.ws() - 1 - i % self.ws()) as u32,
        }
    }

    /// What to do now; frames are written into `out`, which must hold one MTU.
    pub fn poll(&mut self, now: Micros, out: &mut [u8]) -> Result<SenderAction, FragError> {
        match self.phase {
            Phase::Done => return Ok(SenderAction::Done),
            Phase::Aborted(r) => return Ok(SenderAction::Aborted(r)),
            _ => {}
        }
        if let Some(reason) = self.abort_pending.take() {
            let n = wire::write_sender_abort(&self.l, self.dtag, out)?;
            self.phase = Phase::Aborted(reason);
            return Ok(SenderAction::Send(n));
        }
        if let Some(i) = (0..self.tiles).find(|&i| self.is_pending(i)) {
            let n = self.write_regular(i, out)?;
            self.last_sent_all1 = false;
            return Ok(SenderAction::Send(n));
        }
        if self.all1_pending {
            self.all1_pending = false;
            self.ack_req_pending = false;
            let n = self.write_all1(out)?;
            self.last_sent_all1 = true;
            return Ok(self.after_request(now, n));
        }
        if self.ack_req_pending {
            self.ack_req_pending = false;
            let w = match self.l.params.mode {
                FragMode::AckAlways => self.window,
                _ => self.last_window(),
            };
            let n = wire::write_ack_req(&self.l, self.dtag, self.w_field(w), out)?;
            self.last_sent_all1 = false;
            return Ok(self.after_request(now, n));
        }
        match self.l.params.mode {
            FragMode::NoAck => {
                self.phase = Phase::Done;
                Ok(SenderAction::Done)
            }
            FragMode::AckAlways if self.phase == Phase::Sending => {
                // A window was sent (its All-0, or the All-1 above): wait for its ACK.
                self.phase = Phase::Waiting;
                self.deadline = now.saturating_add(self.retrans);
                Ok(SenderAction::WaitUntil(self.deadline))
            }
            _ => {
                if now >= self.deadline {
                    self.on_timeout(now, out)
                } else {
                    Ok(SenderAction::WaitUntil(self.deadline))
                }
            }
        }
    }

    /// After an All-1 or an ACK REQ: count the attempt and arm the timer.
    fn after_request(&mut self, now: Micros, n: usize) -> SenderAction {
        if self.l.params.mode != FragMode::NoAck {
            self.phase = Phase::Waiting;
            if self.l.params.mode == FragMode::AckOnError {
                self.attempts = self.attempts.saturating_add(1);
            }
            self.deadline = now.saturating_add(self.retrans);
        }
        SenderAction::Send(n)
    }

    fn on_timeout(&mut self, now: Micros, out: &mut [u8]) -> Result<SenderAction, FragError> {
        let max = self.l.params.max_ack_requests;
        let exhausted = match self.l.params.mode {
            FragMode::AckOnError => self.attempts >= max,
            _ => self.attempts >= max,
        };
        if exhausted {
            self.abort_pending = Some(AbortReason::TooManyAttempts);
            return self.poll(now, out);
        }
        if self.l.params.mode == FragMode::AckAlways {
            self.attempts = self.attempts.saturating_add(1);
        }
        self.ack_req_pending = true;
        self.poll(now, out)
    }

    fn write_regular(&mut self, first: usize, out: &mut [u8]) -> Result<usize, FragError> {
        let ws = self.ws();
        let header = self.l.header_bits();
        let mut w = BitWriter::new(out);
        self.l.write_header(
            &mut w,
            self.dtag,
            self.w_field(first / ws),
            self.fcn_of(first),
        )?;
        // Several tiles per fragment only with the rule's tile size: without one, the receiver
        // learns the tile size from a fragment's payload, which must then be a single tile.
        let multi = self.l.params.mode == FragMode::AckOnError && self.l.params.tile_size > 0;
        let mut used = header;
        let mut i = first;
        while i < self.tiles && self.is_pending(i) {
            let len = self.tile_len(i);
            if used + len > self.mtu_bits && i != first {
                break;
            }
            // ACK-Always: never cross into the next window.
            if i != first && (!multi || (self.l.params.mode == FragMode::AckAlways && i % ws == 0))
            {
                break;
            }
            w.copy_bits(self.packet.as_ref(), self.tile_offset(i), len)?;
            used += len;
            self.clear(i);
            i += 1;
            if !multi {
                break;
            }
        }
        w.pad_to(self.l.l2() as u32)?;
        Ok(w.byte_len())
    }

    fn write_all1(&mut self, out: &mut [u8]) -> Result<usize, FragError> {
        let last = self.tiles - 1;
        let mut w = BitWriter::new(out);
        self.l.write_header(
            &mut w,
            self.dtag,
            self.w_field(last / self.ws()),
            self.l.all1(),
        )?;
        w.write(u64::from(self.rcs), self.l.rcs_bits() as u32)?;
        if self.last_in_all1 {
            w.copy_bits(self.packet.as_ref(), self.tile_offset(last), self.last_bits)?;
        }
        w.pad_to(self.l.l2() as u32)?;
        Ok(w.byte_len())
    }

    /// Takes in a frame from the receiver (ACK, compound ACK or Receiver-Abort). Frames for
    /// another DTag or window are ignored, as RFC 8724 says.
    pub fn handle_ack(&mut self, frame: &[u8], now: Micros) -> Result<(), FragError> {
        let _ = now;
        if matches!(self.phase, Phase::Done | Phase::Aborted(_))
            || self.l.params.mode == FragMode::NoAck
        {
            return Ok(());
        }
        let ack = wire::parse_ack(&self.l, frame)?;
        match ack {
            Ack::ReceiverAbort { dtag } if dtag == self.dtag => {
                self.phase = Phase::Aborted(AbortReason::PeerAborted);
            }
            Ack::Success { dtag, w } if dtag == self.dtag => match self.l.params.mode {
                FragMode::AckAlways => {
                    if w == self.w_field(self.window) {
                        self.next_window_or_done();
                    }
                }
                // C = 1 means the RCS was checked: done, whatever W it names (openschc names
                // the window of the last fragment it handled).
                _ => self.phase = Phase::Done,
            },
            Ack::Failure { dtag, windows } if dtag == self.dtag => {
                self.on_failure(&windows);
            }
            _ => {}
        }
        Ok(())
    }

    fn next_window_or_done(&mut self) {
        if self.window >= self.last_window() {
            self.phase = Phase::Done;
        } else {
            self.attempts = 0;
            self.phase = Phase::Sending;
            self.queue_window(self.window + 1);
        }
    }

    /// Marks the tiles a failure ACK reports missing; returns whether any was.
    fn mark_missing(&mut self, window: usize, bitmap: u64) -> bool {
        let ws = self.ws();
        let last = self.tiles - 1;
        let last_w = self.last_window();
        let mut any = false;
        if window > last_w {
            return false;
        }
        for i in window * ws..((window + 1) * ws).min(self.tiles) {
            let fcn = ws - 1 - i % ws;
            let bit = if i == last { 0 } else { fcn };
            if (bitmap >> bit) & 1 == 0 {
                any = true;
                if i == last && self.last_in_all1 {
                    self.all1_pending = true;
                } else {
                    self.mark(i);
                }
            }
        }
        any
    }

    fn on_failure(&mut self, windows: &[(u32, u64)]) {
        match self.l.params.mode {
            FragMode::AckAlways => {
                let Some(&(w, bitmap)) = windows.first() else {
                    return;
                };
                if w != self.w_field(self.window) {
                    return;
                }
                if self.mark_missing(self.window, bitmap) {
                    self.attempts = self.attempts.saturating_add(1);
                    self.phase = Phase::Sending;
                } else if self.window < self.last_window() {
                    self.next_window_or_done();
                } else {
                    // Every tile received but the RCS failed.
                    self.abort_pending = Some(AbortReason::InconsistentAck);
                }
            }
            _ => {
                let last_w = self.last_window();
                let mut any = false;
                let mut last_window_reported = false;
                for &(w, bitmap) in windows {
                    any |= self.mark_missing(w as usize, bitmap);
                    last_window_reported |= w as usize == last_w;
                }
                if !any {
                    if !last_window_reported {
                        return;
                    }
                    if self.l.params.tile_in_all1 == TileInAll1::Yes {
                        self.abort_pending = Some(AbortReason::InconsistentAck);
                    } else {
                        self.all1_pending = true;
                    }
                } else if !self.all1_pending {
                    if last_window_reported && !self.last_in_all1 {
                        // The last tile travels in a regular fragment, and the receiver reports
                        // the last window incomplete: it may never have had the All-1, which
                        // alone tells it where the packet ends. End the retransmission with the
                        // All-1 rather than an ACK REQ (RFC 8724 §8.4.3.1 allows either).
                        self.all1_pending = true;
                    } else {
                        self.ack_req_pending = true;
                    }
                }
            }
        }
    }

    /// The packet's length in bits.
    pub fn packet_bits(&self) -> usize {
        self.bits
    }
}
