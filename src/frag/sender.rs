//! The fragment sender of all three modes (RFC 8724 §8.4), sans-IO.
//!
//! No-ACK and ACK-on-Error cut the packet into tiles once, in [`Sender::new`] (ACK-on-Error with
//! the rule's tile size packs as many tiles per fragment as the current MTU takes). ACK-Always
//! cuts one window at a time, when it starts sending it, filling the MTU current then (RFC 9011:
//! the downlink tile is the current MTU): its tiles are equal, and keep their size when resent.
//! No frame is ever longer than the current MTU: one that would be is refused with
//! [`FragError::MtuTooSmall`] and not sent.

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
    /// The MTU in bytes: no frame is ever longer.
    mtu: usize,
    /// Regular tile size in bits (ACK-Always: of the window being sent).
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
    /// ACK-Always: bit offset of the first tile of `window`.
    base: usize,
    /// ACK-Always: `window` is cut (its tile size chosen and its tiles queued).
    cut: bool,
    /// ACK-Always: the cut `window` is the packet's last.
    final_window: bool,
    attempts: u8,
    /// ACK-on-Error: (first window, tiles missing) of the last failure ACK that showed progress.
    progress: (usize, usize),
    deadline: Micros,
    phase: Phase,
    retrans: Micros,
}

/// ACK-Always tile planning (RFC 8724 §8.4.2: one tile per fragment; tiles of one window are
/// equal, those of different windows need not be, and the RFC 9011 downlink profile makes them
/// the current MTU). Pure arithmetic over bit counts.
#[derive(Debug, Clone, Copy)]
struct Planner {
    header: usize,
    l2: usize,
    ws: usize,
    rcs: usize,
    /// The whole packet, in bits.
    bits: usize,
}

/// One ACK-Always window: `count` tiles of `tile` bits; in the packet's last window the last of
/// them is `last` bits and travels in the All-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cut {
    tile: usize,
    count: usize,
    last: Option<usize>,
}

impl Planner {
    /// At an MTU of `mtu` bytes: the largest regular tile (its fragment a whole number of L2
    /// words) and the largest tile an All-1 carries with its RCS.
    fn sizes(&self, mtu: usize) -> (usize, usize) {
        let top = mtu.saturating_mul(8) / self.l2 * self.l2;
        (
            top.saturating_sub(self.header),
            top.saturating_sub(self.header + self.rcs),
        )
    }

    /// The largest tile size that is at most `hi` and keeps fragments whole L2 words (that is,
    /// congruent to `t_max` modulo the L2 word), at least one L2 word.
    fn align_down(&self, t_max: usize, hi: usize) -> Option<usize> {
        let t = if hi >= t_max {
            t_max
        } else {
            t_max.checked_sub((t_max - hi).div_ceil(self.l2) * self.l2)?
        };
        (t >= self.l2).then_some(t)
    }

    /// The window holding the last `r` bits as the packet's last window, if it can: `k` regular
    /// tiles (at most WINDOW_SIZE − 1, as few as possible, each as large as possible) and a last
    /// tile of one L2 word or more that fits the All-1. Only a whole packet shorter than an L2
    /// word may have a shorter last tile (its padding may still make it visible).
    fn last_window(&self, r: usize, t_max: usize, a: usize) -> Option<Cut> {
        if r <= a && (r >= self.l2 || r == self.bits) {
            return Some(Cut {
                tile: t_max,
                count: 1,
                last: Some(r),
            });
        }
        if r <= a || a < self.l2 || t_max < self.l2 {
            return None;
        }
        let k0 = (r - a).div_ceil(t_max).max(1);
        for k in k0..self.ws {
            // k tiles of t, then r − k·t in [l2, a]: the largest t keeps the last tile smallest.
            let t = self.align_down(t_max, (r - self.l2) / k)?;
            if k * t + a >= r {
                return Some(Cut {
                    tile: t,
                    count: k + 1,
                    last: Some(r - k * t),
                });
            }
        }
        None
    }

    /// Whether the last `r` bits (at least an L2 word) can be sent in windows at this MTU: cut
    /// greedily (full tiles while far from the end), or in tiles of one size; the number of
    /// tiles, if so. Not exhaustive, but whenever it says yes, `cut` finds windows all the way
    /// to the end at this MTU.
    fn finish(&self, r: usize, t_max: usize, a: usize) -> Option<usize> {
        self.greedy(r, t_max, a).or_else(|| {
            let mut t = self.align_down(t_max, t_max)?;
            loop {
                if let Some(n) = self.uniform(r, t, a) {
                    return Some(n);
                }
                t = self.align_down(t_max, t.checked_sub(self.l2)?)?;
            }
        })
    }

    /// The last `r` bits in tiles of `t` bits but the last (one L2 word to `a` bits, in the
    /// All-1): the number of tiles, if they can be.
    fn uniform(&self, r: usize, t: usize, a: usize) -> Option<usize> {
        if a < self.l2 || r < self.l2 {
            return None;
        }
        // q tiles of t before the last: r − q·t in [l2, a].
        let q = r.saturating_sub(a).div_ceil(t);
        (q * t + self.l2 <= r).then_some(q + 1)
    }

    /// `finish` cutting greedily: full windows of the largest tile while far from the end, then
    /// the largest tile that leaves at least an L2 word.
    fn greedy(&self, mut r: usize, t_max: usize, a: usize) -> Option<usize> {
        let mut tiles = 0usize;
        loop {
            if let Some(c) = self.last_window(r, t_max, a) {
                return Some(tiles + c.count);
            }
            if t_max < self.l2 || r < self.l2 {
                return None;
            }
            let whole = self.ws * t_max;
            // Beyond this, the last window cannot hold the rest, and full windows leave more
            // than a window: skip them at once.
            let far = 2 * whole + a;
            if r > far {
                let m = (r - far).div_ceil(whole);
                r -= m * whole;
                tiles = tiles.saturating_add(m * self.ws);
                continue;
            }
            let t = self.align_down(t_max, (r - self.l2) / self.ws)?;
            r -= self.ws * t;
            tiles = tiles.saturating_add(self.ws);
        }
    }

    /// The next window for the last `r` bits at an MTU of `mtu` bytes: the packet's last window
    /// if the rest fits one, else WINDOW_SIZE tiles as large as the MTU allows such that what
    /// remains can still be finished at this MTU (if the rest after full tiles would leave a last
    /// tile shorter than an L2 word or too large for the All-1, the tiles give way by whole L2
    /// words, or one more regular tile is cut).
    fn cut(&self, r: usize, mtu: usize) -> Option<Cut> {
        let (t_max, a) = self.sizes(mtu);
        if let Some(c) = self.last_window(r, t_max, a) {
            return Some(c);
        }
        let mut t = self.align_down(t_max, t_max)?;
        loop {
            if let Some(rest) = r.checked_sub(self.ws * t) {
                if rest >= self.l2 && self.finish(rest, t_max, a).is_some() {
                    return Some(Cut {
                        tile: t,
                        count: self.ws,
                        last: None,
                    });
                }
            }
            t = self.align_down(t_max, t.checked_sub(self.l2)?)?;
        }
    }

    /// The whole plan for the last `r` bits with the MTU staying at `mtu`: the number of tiles,
    /// the last tile's length, and the first window. Counting stops past `MAX_TILES` (the last
    /// tile's length is then 0).
    fn plan(&self, mut r: usize, mtu: usize) -> Option<(usize, usize, Cut)> {
        let first = self.cut(r, mtu)?;
        let mut c = first;
        let mut tiles = 0usize;
        loop {
            tiles = tiles.saturating_add(c.count);
            if let Some(last) = c.last {
                return Some((tiles, last, first));
            }
            if tiles > MAX_TILES {
                return Some((tiles, 0, first));
            }
            r -= self.ws * c.tile;
            c = self.cut(r, mtu)?;
        }
    }
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
        // The longest frame: whole L2 words within the MTU (frames are padded to the L2 word).
        let top = mtu.saturating_mul(8) / l2 * l2;
        let all1_room = top.checked_sub(header + l.rcs_bits());
        let too_small = FragError::MtuTooSmall { rule: id, mtu };
        let planner = Planner {
            header,
            l2,
            ws: l.window_size().max(1),
            rcs: l.rcs_bits(),
            bits,
        };
        let mut penult: Option<usize> = None;
        let mut extra = false;
        let mut ack_always_plan = None;
        let (tile, last_in_all1) = if p.mode == FragMode::AckAlways {
            // Each window is cut when it starts, from the MTU then (`cut_window`); here the plan
            // at this MTU, to refuse a packet that cannot be sent at all and to count its tiles.
            let plan = planner.plan(bits, mtu).ok_or(too_small)?;
            ack_always_plan = Some(plan);
            (plan.2.tile, true)
        } else if p.mode == FragMode::AckOnError && p.tile_size > 0 {
            let tile = usize::from(p.tile_size);
            if header + tile > top {
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
            // No-ACK, and ACK-on-Error without a tile size: one tile per fragment, filling the
            // MTU: the largest size that keeps fragments whole L2 words and lets the last tile
            // (at least one L2 word) fit the All-1.
            let room = all1_room.ok_or(too_small)?;
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
        let (tiles, penult_bits, last_bits) = match (ack_always_plan, penult) {
            (Some((n, last, _)), _) => (n, tile, last),
            (None, Some(pb)) if extra => {
                let n = bits.div_ceil(tile) + 1;
                (n, pb, bits - (n - 2) * tile - pb)
            }
            (None, Some(pb)) => {
                let n = bits.div_ceil(tile);
                (n, pb, bits - (n - 2) * tile - pb)
            }
            (None, None) => {
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
        let rcs = rcs::sender_value(&l, bytes, bits, pad, tiles);
        let mut s = Self {
            l,
            packet,
            bits,
            dtag,
            mtu,
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
            base: 0,
            cut: false,
            final_window: false,
            attempts: 0,
            progress: (0, usize::MAX),
            deadline: 0,
            phase: Phase::Sending,
            retrans: p
                .retransmission_timer
                .map_or(DEFAULT_RETRANSMISSION_US, |t| t.micros()),
        };
        if p.mode != FragMode::AckAlways {
            let regular = if last_in_all1 { tiles - 1 } else { tiles };
            for i in 0..regular {
                s.mark(i);
            }
            s.all1_pending = true;
        }
        Ok(s)
    }

    /// Regular tile size in bits. ACK-Always cuts each window when it starts sending it, from
    /// the MTU then: this is the size of the window being sent (before the first `poll`, the
    /// size the first window has at the MTU given to `new`).
    pub fn tile_bits(&self) -> usize {
        self.tile
    }

    /// Number of tiles. ACK-Always: the windows already cut, and the rest as cut at the MTU
    /// current when the latest window was cut (at `new`'s MTU before the first `poll`); exact once
    /// the last window is cut, and exact throughout if the MTU does not change.
    pub fn tiles(&self) -> usize {
        self.tiles
    }

    /// The RCS sent in the All-1. It covers the padding of the fragment carrying the last tile,
    /// so in ACK-Always, where the last tile's length depends on the MTU when the last window is
    /// cut, it is final only from then on (before, it is the one of the plan at `new`'s MTU).
    pub fn rcs(&self) -> u32 {
        self.rcs
    }

    /// Changes the MTU (bytes) for the frames still to send. No frame is ever longer than the
    /// MTU current when `poll` writes it:
    ///
    /// - ACK-on-Error with a tile size in the rule: a fragment carries as many of the rule's tiles
    ///   as fit;
    /// - ACK-Always: each window's tile size is chosen when the window starts (the first `poll`
    ///   after the previous window's ACK), filling the MTU then; the window's tiles, and their
    ///   retransmissions, keep that size;
    /// - No-ACK, and ACK-on-Error without a tile size: the tiles cut by `new` stay.
    ///
    /// Should a frame not fit (a tile already cut, the All-1 with its RCS and last tile, an ACK
    /// REQ or a Sender-Abort, or no window cut possible), `poll` returns
    /// [`FragError::MtuTooSmall`] and sends nothing: the sender is unchanged, and polling again
    /// after a larger `set_mtu` carries on where it stopped.
    pub fn set_mtu(&mut self, mtu: usize) {
        self.mtu = mtu;
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

    /// Marks (`pending`) or clears tiles `from..to`, a word at a time.
    fn set_range(&mut self, from: usize, to: usize, pending: bool) {
        let mut i = from;
        while i < to {
            let bit = i % 64;
            let n = (64 - bit).min(to - i);
            let mask = (u64::MAX >> (64 - n)) << bit;
            if let Some(w) = self.pending.get_mut(i / 64) {
                if pending {
                    *w |= mask;
                } else {
                    *w &= !mask;
                }
            }
            i += n;
        }
    }

    /// The lowest pending tile.
    fn first_pending(&self) -> Option<usize> {
        let (k, w) = self.pending.iter().enumerate().find(|(_, w)| **w != 0)?;
        Some(k * 64 + w.trailing_zeros() as usize)
    }

    fn ws(&self) -> usize {
        self.l.window_size().max(1)
    }

    fn last_window(&self) -> usize {
        (self.tiles - 1) / self.ws()
    }

    fn planner(&self) -> Planner {
        Planner {
            header: self.l.header_bits(),
            l2: self.l.l2(),
            ws: self.ws(),
            rcs: self.l.rcs_bits(),
            bits: self.bits,
        }
    }

    /// Bytes of a frame of `bits` bits once padded to the L2 word, or `MtuTooSmall` if that is
    /// more than the MTU.
    fn fit(&self, bits: usize) -> Result<usize, FragError> {
        let l2 = self.l.l2();
        let n = (bits.div_ceil(l2) * l2).div_ceil(8);
        if n > self.mtu {
            return Err(FragError::MtuTooSmall {
                rule: self.l.rule,
                mtu: self.mtu,
            });
        }
        Ok(n)
    }

    /// ACK-Always: chooses the tile size of `window` from the current MTU and queues its tiles.
    fn cut_window(&mut self) -> Result<(), FragError> {
        let too_small = FragError::MtuTooSmall {
            rule: self.l.rule,
            mtu: self.mtu,
        };
        let planner = self.planner();
        let ws = self.ws();
        let first = self.window * ws;
        let c = planner
            .cut(self.bits - self.base, self.mtu)
            .ok_or(too_small)?;
        if first + c.count > MAX_TILES {
            return Err(too_small);
        }
        self.tile = c.tile;
        self.penult_bits = c.tile;
        match c.last {
            Some(last) => {
                self.final_window = true;
                self.tiles = first + c.count;
                self.last_bits = last;
                let l2 = self.l.l2();
                let carrier = self.l.header_bits() + self.l.rcs_bits() + last;
                let pad = (l2 - carrier % l2) % l2;
                self.rcs =
                    rcs::sender_value(&self.l, self.packet.as_ref(), self.bits, pad, self.tiles);
            }
            None => {
                self.final_window = false;
                let rest = self.bits - self.base - ws * c.tile;
                let (t_max, a) = planner.sizes(self.mtu);
                let more = planner.finish(rest, t_max, a).unwrap_or(1).max(1);
                self.tiles = (first + ws).saturating_add(more);
            }
        }
        self.cut = true;
        let end = first + c.count;
        if c.last.is_some() && c.count > 0 {
            // The last tile (index tiles − 1 = end − 1) is the All-1's to send.
            self.set_range(first, end - 1, true);
            self.all1_pending = true;
        } else {
            self.set_range(first, end, true);
        }
        Ok(())
    }

    fn tile_len(&self, i: usize) -> usize {
        if self.l.params.mode == FragMode::AckAlways {
            if self.final_window && i + 1 == self.tiles {
                self.last_bits
            } else {
                self.tile
            }
        } else if i + 1 == self.tiles {
            self.last_bits
        } else if i + 2 == self.tiles {
            self.penult_bits
        } else {
            self.tile
        }
    }

    /// Bit offset of tile `i` in the packet (ACK-Always: a tile of the window being sent).
    fn tile_offset(&self, i: usize) -> usize {
        if self.l.params.mode == FragMode::AckAlways {
            self.base + (i - self.window * self.ws()) * self.tile
        } else if i + 1 == self.tiles && self.tiles >= 2 {
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
    ///
    /// Returns [`FragError::MtuTooSmall`], sending nothing and changing nothing, when the next
    /// frame does not fit the current MTU (see [`Sender::set_mtu`]).
    pub fn poll(&mut self, now: Micros, out: &mut [u8]) -> Result<SenderAction, FragError> {
        match self.phase {
            Phase::Done => return Ok(SenderAction::Done),
            Phase::Aborted(r) => return Ok(SenderAction::Aborted(r)),
            _ => {}
        }
        if let Some(reason) = self.abort_pending {
            self.fit(self.l.header_bits())?;
            let n = wire::write_sender_abort(&self.l, self.dtag, out)?;
            self.abort_pending = None;
            self.phase = Phase::Aborted(reason);
            return Ok(SenderAction::Send(n));
        }
        if self.l.params.mode == FragMode::AckAlways && !self.cut {
            self.cut_window()?;
        }
        if let Some(i) = self.first_pending() {
            let n = self.write_regular(i, out)?;
            self.last_sent_all1 = false;
            return Ok(SenderAction::Send(n));
        }
        if self.all1_pending {
            let n = self.write_all1(out)?;
            self.all1_pending = false;
            self.ack_req_pending = false;
            self.last_sent_all1 = true;
            return Ok(self.after_request(now, n));
        }
        if self.ack_req_pending {
            let w = match self.l.params.mode {
                FragMode::AckAlways => self.window,
                _ => self.last_window(),
            };
            self.fit(self.l.header_bits())?;
            let n = wire::write_ack_req(&self.l, self.dtag, self.w_field(w), out)?;
            self.ack_req_pending = false;
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
        if self.attempts >= self.l.params.max_ack_requests {
            self.abort_pending = Some(AbortReason::TooManyAttempts);
            return self.poll(now, out);
        }
        if self.l.params.mode == FragMode::AckAlways {
            self.attempts = self.attempts.saturating_add(1);
        }
        self.ack_req_pending = true;
        self.poll(now, out)
    }

    /// Writes a regular fragment starting with pending tile `first`: one tile, or in
    /// ACK-on-Error with the rule's tile size, as many pending tiles in a row as fit the MTU.
    fn write_regular(&mut self, first: usize, out: &mut [u8]) -> Result<usize, FragError> {
        let ws = self.ws();
        // Several tiles per fragment only with the rule's tile size: without one, the receiver
        // learns the tile size from a fragment's payload, which must then be a single tile.
        let multi = self.l.params.mode == FragMode::AckOnError && self.l.params.tile_size > 0;
        let mut used = self.l.header_bits() + self.tile_len(first);
        self.fit(used)?;
        let mut end = first + 1;
        while multi && end < self.tiles && self.is_pending(end) {
            let len = self.tile_len(end);
            if self.fit(used + len).is_err() {
                break;
            }
            used += len;
            end += 1;
        }
        let mut w = BitWriter::new(out);
        self.l.write_header(
            &mut w,
            self.dtag,
            self.w_field(first / ws),
            self.fcn_of(first),
        )?;
        // Tiles lie end to end in the packet: one copy for the run.
        let payload = used - self.l.header_bits();
        w.copy_bits(self.packet.as_ref(), self.tile_offset(first), payload)?;
        w.pad_to(self.l.l2() as u32)?;
        self.set_range(first, end, false);
        Ok(w.byte_len())
    }

    fn write_all1(&mut self, out: &mut [u8]) -> Result<usize, FragError> {
        let last = self.tiles - 1;
        let tile = if self.last_in_all1 { self.last_bits } else { 0 };
        self.fit(self.l.header_bits() + self.l.rcs_bits() + tile)?;
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
                    // Nothing of a window not cut yet was sent: an ACK for it is stale.
                    if self.cut && w == self.w_field(self.window) {
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

    /// ACK-Always: the window was received; the next one is cut at the next `poll`.
    fn next_window_or_done(&mut self) {
        if self.final_window {
            self.phase = Phase::Done;
        } else {
            let ws = self.ws();
            self.set_range(self.window * ws, (self.window + 1) * ws, false);
            self.all1_pending = false;
            self.ack_req_pending = false;
            self.base += ws * self.tile;
            self.window += 1;
            self.cut = false;
            self.attempts = 0;
            self.phase = Phase::Sending;
        }
    }

    /// Marks the tiles a failure ACK reports missing; returns whether any was.
    fn mark_missing(&mut self, window: usize, bitmap: u64) -> usize {
        let ws = self.ws();
        let last = self.tiles - 1;
        let last_w = self.last_window();
        let mut missing = 0;
        if window > last_w {
            return 0;
        }
        for i in window * ws..((window + 1) * ws).min(self.tiles) {
            let fcn = ws - 1 - i % ws;
            let bit = if i == last { 0 } else { fcn };
            if (bitmap >> bit) & 1 == 0 {
                missing += 1;
                if i == last && self.last_in_all1 {
                    self.all1_pending = true;
                } else {
                    self.mark(i);
                }
            }
        }
        missing
    }

    fn on_failure(&mut self, windows: &[(u32, u64)]) {
        match self.l.params.mode {
            FragMode::AckAlways => {
                let Some(&(w, bitmap)) = windows.first() else {
                    return;
                };
                if !self.cut || w != self.w_field(self.window) {
                    return;
                }
                if self.mark_missing(self.window, bitmap) > 0 {
                    self.attempts = self.attempts.saturating_add(1);
                    self.phase = Phase::Sending;
                } else if !self.final_window {
                    self.next_window_or_done();
                } else {
                    // Every tile received but the RCS failed.
                    self.abort_pending = Some(AbortReason::InconsistentAck);
                }
            }
            _ => {
                let last_w = self.last_window();
                let mut missing = 0;
                let mut last_window_reported = false;
                for &(w, bitmap) in windows {
                    missing += self.mark_missing(w as usize, bitmap);
                    last_window_reported |= w as usize == last_w;
                }
                let any = missing > 0;
                // Progress (a later first window reported, or fewer tiles missing in the same
                // one) resets Attempts: MAX_ACK_REQUESTS then bounds requests without progress,
                // and the session still ends, since progress is bounded.
                let first = windows.first().map_or(0, |&(w, _)| w as usize);
                let (pw, pm) = self.progress;
                if first > pw || (first == pw && missing < pm) {
                    self.attempts = 0;
                    self.progress = (first, missing);
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

    /// Gives the packet back (a device reuses its buffer for the next one).
    pub fn into_packet(self) -> P {
        self.packet
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_R: usize = 1600;

    /// Exhaustively, for every remainder up to `MAX_R` bits: can it be finished in windows at
    /// this MTU (a remainder, not the whole packet: no exception for a last tile below a word)?
    fn exhaustive(p: &Planner, mtu: usize) -> [bool; MAX_R + 1] {
        let (t_max, a) = p.sizes(mtu);
        let g = p.l2;
        let sizes = || (g..=t_max).filter(move |t| (t_max - t) % g == 0);
        let mut ok = [false; MAX_R + 1];
        if a >= g {
            ok[g..=a.min(MAX_R)].fill(true);
            for k in 1..p.ws {
                for t in sizes() {
                    for l in g..=a {
                        if k * t + l <= MAX_R {
                            ok[k * t + l] = true;
                        }
                    }
                }
            }
        }
        for r in 0..=MAX_R {
            if !ok[r] {
                ok[r] = sizes().any(|t| r >= p.ws * t + g && ok[r - p.ws * t]);
            }
        }
        ok
    }

    /// The ACK-Always planner against an exhaustive search: every window it cuts is legal and
    /// leaves a remainder it can finish; it finds a cut whenever tiles of one size would do (the
    /// old planner) and, with room in the All-1 for two L2 words, whenever any cut would do.
    #[test]
    fn ack_always_planner() {
        for header in [2usize, 8, 10, 12, 15] {
            for ws in [1usize, 2, 7, 24] {
                for mtu in 2..=16usize {
                    let p = Planner {
                        header,
                        l2: 8,
                        ws,
                        rcs: 32,
                        bits: usize::MAX,
                    };
                    let ok = exhaustive(&p, mtu);
                    let (t_max, a) = p.sizes(mtu);
                    for (r, &feasible) in ok.iter().enumerate().skip(8) {
                        let got = p.cut(r, mtu);
                        let one_size = (8..=t_max)
                            .filter(|t| (t_max - t) % 8 == 0)
                            .any(|t| p.uniform(r, t, a).is_some());
                        let at = (header, ws, mtu, r);
                        assert!(!one_size || got.is_some(), "{at:?}");
                        assert!(got.is_none() || feasible, "{at:?}");
                        assert!(a < 15 || got.is_some() == feasible, "{at:?}");
                        let mut rest = r;
                        let mut c = got;
                        while let Some(w) = c {
                            assert!((8..=t_max).contains(&w.tile), "{at:?}");
                            assert_eq!((header + w.tile) % 8, 0, "{at:?}");
                            match w.last {
                                Some(l) => {
                                    assert!(w.count <= ws && (8..=a).contains(&l), "{at:?}");
                                    assert_eq!(rest, (w.count - 1) * w.tile + l, "{at:?}");
                                    break;
                                }
                                None => {
                                    assert_eq!(w.count, ws, "{at:?}");
                                    rest -= ws * w.tile;
                                    c = p.cut(rest, mtu);
                                    assert!(c.is_some(), "a dead end: {at:?} at {rest}");
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
