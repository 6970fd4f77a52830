//! The gateway side of fragmentation (feature `std`): reassembly sessions for many devices at
//! once ([`Sessions`]) and fragment-sender sessions for downlinks ([`Senders`]).
//!
//! Both are sans-IO like [`crate::frag`]: the caller hands in each frame with the device it
//! came from and the current time of its own monotonic clock (microseconds), and gets back what
//! to do: frames to send to devices, packets delivered, sessions ended ([`Output`],
//! [`DownlinkOutput`]). Timers fire when the caller says so ([`Sessions::expire`],
//! [`Senders::poll`]; [`Sessions::next_deadline`] says when).
//!
//! A session is keyed by device, rule ID and DTag ([`SessionKey`]): devices that use the same
//! rule IDs and DTags (every LoRaWAN device fragments under rule 20 with DTag 0) never share a
//! buffer. Memory is bounded by [`Limits`]: a session that would exceed the number of sessions
//! or the total bytes evicts the least recently active ones, and the eviction is reported.
//!
//! ## Sessions own their memory
//!
//! A reassembly session owns a [`Receiver`] over its own `Vec<u8>` buffer
//! ([`Receiver::buffer_len`] bytes); a downlink session owns a [`Sender`] over its own copy of
//! the packet. Both state machines are generic over their buffers, so nothing is borrowed
//! across calls.

use std::collections::BTreeMap;
use std::vec;
use std::vec::Vec;

use thiserror::Error;

use crate::frag::wire::{self, Ack, FragmentKind, Layout};
use crate::frag::{AbortReason, FragError, Micros, Receiver, ReceiverAction, Sender, SenderAction};
use crate::rule::{Direction, FragMode, Nature, Rule, RuleId, RuleSet, RuleSetBuf};

/// Twelve hours in microseconds: RFC 9011's recommended inactivity timer.
pub const TWELVE_HOURS: Micros = 12 * 3600 * 1_000_000;

/// Bytes of scratch for one ACK or abort (a compound ACK of 16 windows of 64 tiles fits).
const ACK_SCRATCH: usize = 256;

/// Most actions one poll loop takes before giving up (a sender's first window at most).
const MAX_DRAIN: usize = 1 << 16;

/// Most ACKs and timer ticks a downlink session takes in: twice what its sender can need, one
/// ACK and MAX_ACK_REQUESTS timer ticks for each tile (ACK-Always windows can be one tile) and
/// the All-1. A device that sends more is flooding, and its session ends.
fn max_downlink_events(tiles: usize, max_ack_requests: u8) -> usize {
    (tiles + 1)
        .saturating_mul(usize::from(max_ack_requests) + 1)
        .saturating_mul(2)
        .max(64)
}

/// Caps on what a session table holds, and its own timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most sessions at once, completed ones that still answer repeats included.
    pub max_sessions: usize,
    /// Most bytes of buffers, packets and journals, all sessions together.
    pub max_bytes: usize,
    /// Largest frame taken in, in bytes; it sizes reassembly buffers
    /// ([`Receiver::buffer_len`]).
    pub max_frame: usize,
    /// How long a session whose rule has no inactivity timer may stay silent. A completed
    /// reassembly keeps answering a repeated All-1 or ACK REQ for its rule's inactivity timer
    /// (this when it has none), and at least (MAX_ACK_REQUESTS + 1) retransmission timers.
    pub idle_timeout: Micros,
}

impl Default for Limits {
    /// 10,000 sessions, 64 MiB, frames of up to 256 bytes (a LoRaWAN FPort and the largest
    /// FRMPayload fit), 12 hours.
    fn default() -> Self {
        Self {
            max_sessions: 10_000,
            max_bytes: 64 << 20,
            max_frame: 256,
            idle_timeout: TWELVE_HOURS,
        }
    }
}

/// What identifies a fragmentation session: the device, the fragmentation rule, the DTag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey<K> {
    /// The device (an opaque key: a DevEUI, an address).
    pub device: K,
    /// The fragmentation rule's ID.
    pub rule: RuleId,
    /// The DTag (0 when the rule has none).
    pub dtag: u32,
}

/// Why a session was evicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Eviction {
    /// A new session needed a place and [`Limits::max_sessions`] were open.
    SessionLimit,
    /// The sessions together would have exceeded [`Limits::max_bytes`].
    ByteLimit,
}

/// A SCHC packet ready for decompression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered<K> {
    /// The device it came from.
    pub device: K,
    /// The rule it came under: the fragmentation rule for a reassembled packet, the packet's
    /// own compression or no-compression rule for one that came in a single frame.
    pub rule: RuleId,
    /// The DTag it was reassembled under; `None` if it was not fragmented.
    pub dtag: Option<u32>,
    /// The SCHC packet, padding of the last frame included (decompression ignores it).
    pub packet: Vec<u8>,
    /// Its length in bits, that padding included.
    pub bits: usize,
}

/// What a reassembly table asks the caller to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<K> {
    /// Send `frame` to `device` (an ACK or a Receiver-Abort), under its rule ID.
    Send {
        /// The device.
        device: K,
        /// The frame, rule ID first.
        frame: Vec<u8>,
    },
    /// A SCHC packet is complete.
    Delivered(Delivered<K>),
    /// A reassembly ended without a packet; its session is gone.
    Aborted {
        /// The session.
        session: SessionKey<K>,
        /// Why.
        reason: AbortReason,
    },
    /// A session was dropped to respect a limit, without telling the device.
    Evicted {
        /// The session.
        session: SessionKey<K>,
        /// Which limit.
        cause: Eviction,
        /// The bytes it held.
        bytes: usize,
    },
    /// The session's receiver refused the frame (a tile beyond the packet's possible size,
    /// an FCN outside the window, ...). The session goes on.
    Rejected {
        /// The session.
        session: SessionKey<K>,
        /// Why.
        error: FragError,
    },
}

/// What a downlink table asks the caller to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownlinkOutput<K> {
    /// Send `frame` to `device` (a fragment, an ACK REQ or a Sender-Abort).
    Send {
        /// The device.
        device: K,
        /// The frame, rule ID first.
        frame: Vec<u8>,
    },
    /// The device acknowledged the whole packet (or, in No-ACK, every fragment was sent); the
    /// session is gone.
    Done {
        /// The session.
        session: SessionKey<K>,
    },
    /// The session ended without success; it is gone.
    Aborted {
        /// The session.
        session: SessionKey<K>,
        /// Why.
        reason: AbortReason,
    },
    /// The next frame does not fit the session's current MTU: nothing was sent. The session
    /// tries again when [`Senders::set_mtu`] changes the MTU, and at the next retransmission
    /// timer ([`Senders::poll`]; each try counts against its events, so a device whose MTU stays
    /// too small ends it).
    MtuTooSmall {
        /// The session.
        session: SessionKey<K>,
        /// The MTU that was too small (bytes, Rule ID included).
        mtu: usize,
    },
}

/// Why a frame could not be taken in at all. Nothing changed in the table.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GatewayError {
    /// No rule's ID starts the frame.
    #[error("no rule matches the frame's rule ID")]
    UnknownRule,
    /// The frame is under a downlink fragmentation rule: an ACK for [`Senders::handle_ack`].
    #[error("rule {0} fragments downlinks: an uplink under it is an ACK for a downlink session")]
    AckForDownlink(RuleId),
    /// A downlink was asked of an uplink fragmentation rule, or of a rule that does not
    /// fragment.
    #[error("rule {0} is not a downlink fragmentation rule")]
    NotDownlink(RuleId),
    /// The frame is longer than [`Limits::max_frame`].
    #[error("frame of {len} bytes is over the limit of {max}")]
    FrameTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// One session of this rule needs more than [`Limits::max_bytes`].
    #[error("a session of rule {rule} needs {needed} bytes, over the limit of {max}")]
    SessionTooLarge {
        /// The rule.
        rule: RuleId,
        /// Bytes it needs.
        needed: usize,
        /// The limit.
        max: usize,
    },
    /// A downlink session with the same key is in progress.
    #[error("device already has a downlink session under rule {rule} with DTag {dtag}")]
    Busy {
        /// The rule.
        rule: RuleId,
        /// The DTag.
        dtag: u32,
    },
    /// The downlink table is at [`Limits::max_sessions`] or [`Limits::max_bytes`].
    #[error("the downlink table is full")]
    Full,
    /// No downlink session of this device matches the ACK.
    #[error("no downlink session of this device matches the frame")]
    NoSession,
    /// The frame is not an F/R message of its rule, or the rule cannot be used.
    #[error(transparent)]
    Frag(#[from] FragError),
}

/// What a receiver did in one poll loop.
#[derive(Debug, Default)]
struct RxDrain {
    sent: Vec<Vec<u8>>,
    delivered: Option<(Vec<u8>, usize)>,
    aborted: Option<AbortReason>,
    wait: Option<Micros>,
    error: Option<FragError>,
}

/// Polls `rx` at `now` until it has nothing more to do.
fn drain_rx<B: AsRef<[u8]> + AsMut<[u8]>>(
    rx: &mut Receiver<B>,
    now: Micros,
    scratch: &mut [u8],
) -> RxDrain {
    let mut d = RxDrain::default();
    for _ in 0..MAX_DRAIN {
        match rx.poll(now, scratch) {
            Ok(ReceiverAction::Send(n)) => d.sent.push(scratch.get(..n).unwrap_or(&[]).to_vec()),
            Ok(ReceiverAction::Delivered { bits }) => {
                d.delivered = rx.packet().map(|(b, _)| (b.to_vec(), bits));
            }
            Ok(ReceiverAction::WaitUntil(t)) => {
                d.wait = Some(t);
                break;
            }
            Ok(ReceiverAction::Idle) => break,
            Ok(ReceiverAction::Aborted(r)) => {
                d.aborted = Some(r);
                break;
            }
            Err(e) => {
                d.error = Some(e);
                break;
            }
        }
    }
    d
}

#[derive(Debug)]
enum State {
    /// Reassembling. `deadline` is when the receiver wants to be polled; `all1` the W and RCS
    /// of the last All-1 taken in.
    Active {
        rx: Box<Receiver<Vec<u8>>>,
        deadline: Option<Micros>,
        all1: Option<All1Id>,
    },
    /// Delivered. An ACK REQ, or a repeat of the All-1 that completed it (same W and RCS),
    /// gets `ack` again (the device may have lost it); a regular fragment or another All-1
    /// starts the next packet.
    Completed {
        ack: Option<Vec<u8>>,
        all1: Option<All1Id>,
        until: Micros,
    },
}

/// The W and RCS of an All-1: what tells a repeat from the next packet's.
type All1Id = (u32, u32);

/// A frame for a session, with the W and RCS it carries if it is an All-1.
#[derive(Debug, Clone, Copy)]
struct Incoming<'f> {
    frame: &'f [u8],
    all1: Option<All1Id>,
}

#[derive(Debug)]
struct Session {
    rule: Rule,
    last_active: Micros,
    /// Order of the last activity, to break ties between equal times.
    touched: u64,
    bytes: usize,
    state: State,
    /// Its entries in [`Sessions`]' indexes: (last activity, deadline, touched).
    indexed: Option<(Micros, Micros, u64)>,
}

/// Reassembly sessions of many devices: uplink fragments in, ACKs and SCHC packets out.
///
/// ```
/// use lpwan_schc::gateway::{Limits, Output, Sessions};
/// let rules = lpwan_schc::json::from_str(include_str!("../rules/lorawan-fragmentation.json"))?;
/// let mut gw: Sessions<[u8; 8]> = Sessions::new(rules, Limits::default());
/// let dev_eui = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
/// // An unfragmented SCHC packet under the no-compression rule 22 comes straight out.
/// let out = gw.handle_uplink(dev_eui, &[22, 0x60, 0x00], 0)?;
/// assert!(matches!(&out[..], [Output::Delivered(d)] if d.packet == [22, 0x60, 0x00]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Sessions<K> {
    rules: RuleSetBuf,
    limits: Limits,
    /// Ordered by device first, so a device's sessions are one range.
    table: BTreeMap<SessionKey<K>, Session>,
    /// Every session by (last activity, touched): the least recently active first (eviction).
    by_activity: BTreeMap<(Micros, u64), SessionKey<K>>,
    /// Every session by (deadline, touched): the next timer first (expiry).
    by_deadline: BTreeMap<(Micros, u64), SessionKey<K>>,
    bytes: usize,
    clock: u64,
}

/// The keys of every session of `device`, for a range of a table ordered by [`SessionKey`].
fn device_range<K: Clone>(device: &K) -> core::ops::RangeInclusive<SessionKey<K>> {
    let key = |rule, dtag| SessionKey {
        device: device.clone(),
        rule,
        dtag,
    };
    key(RuleId::new(0, 0), 0)..=key(RuleId::new(u32::MAX, u8::MAX), u32::MAX)
}

/// The keys of `device`'s sessions in `table`.
fn device_keys<K: Ord + Clone, V>(
    table: &BTreeMap<SessionKey<K>, V>,
    device: &K,
) -> Vec<SessionKey<K>> {
    table
        .range(device_range(device))
        .map(|(k, _)| k.clone())
        .collect()
}

/// How long a completed session answers repeats: its inactivity timer (else
/// [`Limits::idle_timeout`]), and at least as long as a sender whose success ACKs are all lost
/// keeps asking, (MAX_ACK_REQUESTS + 1) retransmission timers.
fn linger(rule: &Rule, limits: &Limits) -> Micros {
    let Nature::Fragmentation(p) = rule.nature else {
        return limits.idle_timeout;
    };
    let inactivity = p
        .inactivity_timer
        .filter(|t| t.ticks > 0)
        .map_or(limits.idle_timeout, |t| t.micros());
    let asking = p.retransmission_timer.map_or(0, |t| {
        t.micros().saturating_mul(u64::from(p.max_ack_requests) + 1)
    });
    inactivity.max(asking)
}

/// Bytes a completed session holds.
fn completed_bytes(ack: &Option<Vec<u8>>) -> usize {
    core::mem::size_of::<Session>() + ack.as_ref().map_or(0, Vec::len)
}

impl<K: Ord + Clone> Sessions<K> {
    /// An empty table that reads frames with `rules`.
    pub fn new(rules: RuleSetBuf, limits: Limits) -> Self {
        Self {
            rules,
            limits,
            table: BTreeMap::new(),
            by_activity: BTreeMap::new(),
            by_deadline: BTreeMap::new(),
            bytes: 0,
            clock: 0,
        }
    }

    /// The rules frames are read with.
    pub fn rules(&self) -> &RuleSetBuf {
        &self.rules
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Number of sessions, completed ones that still answer repeats included.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether there is no session.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Bytes held by all sessions: receivers with their buffers, completed sessions' ACKs.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Bytes one reassembly session of `rule` holds: its receiver and buffer.
    pub fn session_bytes(&self, rule: &Rule) -> usize {
        core::mem::size_of::<Session>()
            + core::mem::size_of::<Receiver<Vec<u8>>>()
            + Receiver::buffer_len(rule, self.limits.max_frame)
    }

    /// Whether a session with this key exists (reassembling, or completed and answering
    /// repeats).
    pub fn contains(&self, key: &SessionKey<K>) -> bool {
        self.table.contains_key(key)
    }

    /// Whether the session with this key has delivered its packet and only answers repeats.
    pub fn is_completed(&self, key: &SessionKey<K>) -> bool {
        self.table
            .get(key)
            .is_some_and(|s| matches!(s.state, State::Completed { .. }))
    }

    /// The keys of all sessions, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &SessionKey<K>> + '_ {
        self.table.keys()
    }

    /// Drops every session of `device` without telling it; returns how many there were.
    pub fn remove_device(&mut self, device: &K) -> usize {
        let keys = device_keys(&self.table, device);
        for k in &keys {
            self.remove(k);
        }
        keys.len()
    }

    /// Takes in one uplink frame from `device` (a SCHC message: rule ID first, as a LoRaWAN
    /// FPort and FRMPayload). A frame under a compression or no-compression rule is a whole
    /// SCHC packet and is delivered at once; a fragment goes to its session, which it starts if
    /// there is none. An error means the frame was not taken in and nothing changed.
    pub fn handle_uplink(
        &mut self,
        device: K,
        frame: &[u8],
        now: Micros,
    ) -> Result<Vec<Output<K>>, GatewayError> {
        let rule = *self
            .rules
            .as_set()
            .lookup_prefix(frame, frame.len() * 8)
            .ok_or(GatewayError::UnknownRule)?;
        self.handle_rule(rule, device, frame, now)
    }

    /// [`Sessions::handle_uplink`] with the device's own rule set (a gateway may give each
    /// device its own context, reusing rule IDs).
    pub fn handle_uplink_with(
        &mut self,
        rules: &RuleSet<'_>,
        device: K,
        frame: &[u8],
        now: Micros,
    ) -> Result<Vec<Output<K>>, GatewayError> {
        let rule = *rules
            .lookup_prefix(frame, frame.len() * 8)
            .ok_or(GatewayError::UnknownRule)?;
        self.handle_rule(rule, device, frame, now)
    }

    fn touch(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn handle_rule(
        &mut self,
        rule: Rule,
        device: K,
        frame: &[u8],
        now: Micros,
    ) -> Result<Vec<Output<K>>, GatewayError> {
        if frame.len() > self.limits.max_frame {
            return Err(GatewayError::FrameTooLong {
                len: frame.len(),
                max: self.limits.max_frame,
            });
        }
        let params = match rule.nature {
            Nature::Fragmentation(p) => p,
            _ => {
                return Ok(vec![Output::Delivered(Delivered {
                    device,
                    rule: rule.id,
                    dtag: None,
                    packet: frame.to_vec(),
                    bits: frame.len() * 8,
                })])
            }
        };
        if params.direction != Direction::Up {
            return Err(GatewayError::AckForDownlink(rule.id));
        }
        let layout = Layout::new(&rule)?;
        let f = wire::parse_fragment(&layout, frame)?;
        let key = SessionKey {
            device,
            rule: rule.id,
            dtag: f.dtag,
        };
        let mut out = Vec::new();

        // A completed session answers repeats; anything else starts the next packet.
        let repeat = match self.table.get(&key).map(|s| &s.state) {
            Some(State::Completed { ack, all1, .. }) => Some(match f.kind {
                FragmentKind::AckReq => Some(ack.clone()),
                FragmentKind::All1 { rcs } if *all1 == Some((f.w, rcs)) => Some(ack.clone()),
                _ => None,
            }),
            _ => None,
        };
        match repeat {
            Some(Some(ack)) => {
                let touched = self.touch();
                let until = now.saturating_add(linger(&rule, &self.limits));
                if let Some(s) = self.table.get_mut(&key) {
                    s.last_active = now;
                    s.touched = touched;
                    if let State::Completed { until: u, .. } = &mut s.state {
                        *u = until;
                    }
                }
                self.reindex(&key);
                if let Some(frame) = ack {
                    out.push(Output::Send {
                        device: key.device.clone(),
                        frame,
                    });
                }
                return Ok(out);
            }
            Some(None) => {
                self.remove(&key);
            }
            None => {}
        }

        if !self.table.contains_key(&key) {
            if f.kind == FragmentKind::SenderAbort {
                return Ok(out);
            }
            let needed = self.session_bytes(&rule);
            if needed > self.limits.max_bytes {
                return Err(GatewayError::SessionTooLarge {
                    rule: rule.id,
                    needed,
                    max: self.limits.max_bytes,
                });
            }
            let buf = vec![0; Receiver::buffer_len(&rule, self.limits.max_frame)];
            let rx = Receiver::new(&rule, buf, now)?;
            self.make_room(needed, &mut out);
            let touched = self.touch();
            self.table.insert(
                key.clone(),
                Session {
                    rule,
                    last_active: now,
                    touched,
                    bytes: needed,
                    state: State::Active {
                        rx: Box::new(rx),
                        deadline: None,
                        all1: None,
                    },
                    indexed: None,
                },
            );
            self.bytes += needed;
            self.reindex(&key);
        }
        let all1 = match f.kind {
            FragmentKind::All1 { rcs } => Some((f.w, rcs)),
            _ => None,
        };
        self.step(&key, Some(Incoming { frame, all1 }), now, &mut out);
        Ok(out)
    }

    /// Runs one step of an active session (a frame with the W and RCS it carries if it is an
    /// All-1, or a timer tick), applies the result and files the session under its new
    /// activity and deadline.
    fn step(
        &mut self,
        key: &SessionKey<K>,
        frame: Option<Incoming<'_>>,
        now: Micros,
        out: &mut Vec<Output<K>>,
    ) {
        self.step_session(key, frame, now, out);
        self.reindex(key);
    }

    /// Files the session of `key`, if any, under its current activity and deadline.
    fn reindex(&mut self, key: &SessionKey<K>) {
        let Some(s) = self.table.get(key) else {
            return;
        };
        let now = (s.last_active, self.deadline_of(s), s.touched);
        let old = s.indexed;
        if old == Some(now) {
            return;
        }
        if let Some((a, d, t)) = old {
            self.by_activity.remove(&(a, t));
            self.by_deadline.remove(&(d, t));
        }
        self.by_activity.insert((now.0, now.2), key.clone());
        self.by_deadline.insert((now.1, now.2), key.clone());
        if let Some(s) = self.table.get_mut(key) {
            s.indexed = Some(now);
        }
    }

    fn step_session(
        &mut self,
        key: &SessionKey<K>,
        frame: Option<Incoming<'_>>,
        now: Micros,
        out: &mut Vec<Output<K>>,
    ) {
        let touched = self.touch();
        let limits = self.limits;
        let Some(s) = self.table.get_mut(key) else {
            return;
        };
        let rule = s.rule;
        let State::Active { rx, deadline, all1 } = &mut s.state else {
            return;
        };
        let mut scratch = [0u8; ACK_SCRATCH];
        let handled = frame.map(|f| {
            if f.all1.is_some() {
                *all1 = f.all1;
            }
            rx.handle_frame(f.frame, now)
        });
        let mut d = drain_rx(rx, now, &mut scratch);
        if let Some(Err(e)) = handled {
            d.error = Some(e);
        }
        *deadline = d.wait;
        let all1 = *all1;
        if frame.is_some() {
            s.last_active = now;
            s.touched = touched;
        }
        for frame in d.sent.iter().cloned() {
            out.push(Output::Send {
                device: key.device.clone(),
                frame,
            });
        }
        if let Some(error) = d.error {
            out.push(Output::Rejected {
                session: key.clone(),
                error,
            });
        }
        if let Some(reason) = d.aborted {
            self.remove(key);
            out.push(Output::Aborted {
                session: key.clone(),
                reason,
            });
        }
        let Some((packet, bits)) = d.delivered else {
            return;
        };
        out.push(Output::Delivered(Delivered {
            device: key.device.clone(),
            rule: key.rule,
            dtag: Some(key.dtag),
            packet,
            bits,
        }));
        self.remove(key);
        // Windowed modes: stay to answer the device if it missed the success ACK (it is the
        // last frame sent with the delivery). No-ACK has nothing to answer.
        let Nature::Fragmentation(p) = rule.nature else {
            return;
        };
        if p.mode == FragMode::NoAck {
            return;
        }
        let ack = Layout::new(&rule).ok().and_then(|l| {
            d.sent
                .last()
                .filter(|a| matches!(wire::parse_ack(&l, a), Ok(Ack::Success { .. })))
                .cloned()
        });
        let bytes = completed_bytes(&ack);
        self.table.insert(
            key.clone(),
            Session {
                rule,
                last_active: now,
                touched,
                bytes,
                state: State::Completed {
                    ack,
                    all1,
                    until: now.saturating_add(linger(&rule, &limits)),
                },
                indexed: None,
            },
        );
        self.bytes += bytes;
    }

    fn remove(&mut self, key: &SessionKey<K>) -> Option<Session> {
        let s = self.table.remove(key)?;
        self.bytes = self.bytes.saturating_sub(s.bytes);
        if let Some((a, d, t)) = s.indexed {
            self.by_activity.remove(&(a, t));
            self.by_deadline.remove(&(d, t));
        }
        Some(s)
    }

    /// Evicts the least recently active sessions until one more session of `extra_bytes`
    /// fits.
    fn make_room(&mut self, extra_bytes: usize, out: &mut Vec<Output<K>>) {
        loop {
            let cause = if self.table.len() >= self.limits.max_sessions {
                Eviction::SessionLimit
            } else if self.bytes + extra_bytes > self.limits.max_bytes {
                Eviction::ByteLimit
            } else {
                return;
            };
            let victim = self.by_activity.first_key_value().map(|(_, k)| k.clone());
            let Some(victim) = victim else { return };
            if let Some(s) = self.remove(&victim) {
                out.push(Output::Evicted {
                    session: victim,
                    cause,
                    bytes: s.bytes,
                });
            }
        }
    }

    /// The earliest instant at which [`Sessions::expire`] has something to do.
    pub fn next_deadline(&self) -> Option<Micros> {
        self.by_deadline.first_key_value().map(|(&(d, _), _)| d)
    }

    fn deadline_of(&self, s: &Session) -> Micros {
        match &s.state {
            State::Active {
                deadline: Some(d), ..
            } => *d,
            State::Active { deadline: None, .. } => {
                s.last_active.saturating_add(self.limits.idle_timeout)
            }
            State::Completed { until, .. } => *until,
        }
    }

    /// Runs the timers due at `now`: reassemblies silent for their inactivity timer (or
    /// [`Limits::idle_timeout`] when their rule has none) end with a Receiver-Abort to the
    /// device and [`Output::Aborted`]; completed sessions stop answering repeats and are
    /// forgotten. Its cost is that of the sessions due: call it at [`Sessions::next_deadline`]
    /// or periodically.
    pub fn expire(&mut self, now: Micros) -> Vec<Output<K>> {
        let due: Vec<SessionKey<K>> = self
            .by_deadline
            .range(..=(now, u64::MAX))
            .map(|(_, k)| k.clone())
            .collect();
        let mut out = Vec::new();
        for key in due {
            let Some(s) = self.table.get(&key) else {
                continue;
            };
            match &s.state {
                State::Completed { .. } => {
                    self.remove(&key);
                }
                State::Active {
                    deadline: Some(_), ..
                } => {
                    self.step(&key, None, now, &mut out);
                }
                State::Active { deadline: None, .. } => {
                    // The rule has no inactivity timer: the gateway's own timeout.
                    let rule = s.rule;
                    self.remove(&key);
                    let mut buf = [0u8; ACK_SCRATCH];
                    let abort = Layout::new(&rule).ok().and_then(|l| {
                        (l.params.mode != FragMode::NoAck)
                            .then(|| wire::write_receiver_abort(&l, key.dtag, &mut buf).ok())
                            .flatten()
                    });
                    if let Some(n) = abort {
                        out.push(Output::Send {
                            device: key.device.clone(),
                            frame: buf.get(..n).unwrap_or(&[]).to_vec(),
                        });
                    }
                    out.push(Output::Aborted {
                        session: key,
                        reason: AbortReason::Inactivity,
                    });
                }
            }
        }
        out
    }
}

/// What a sender did in one poll loop.
#[derive(Debug, Default)]
struct TxDrain {
    sent: Vec<Vec<u8>>,
    done: bool,
    aborted: Option<AbortReason>,
    wait: Option<Micros>,
    /// The next frame did not fit the MTU.
    blocked: bool,
}

/// Polls `tx` at `now` until it waits or ends; keeps the frames if `keep`.
fn drain_tx(tx: &mut Sender<Vec<u8>>, now: Micros, scratch: &mut [u8], keep: bool) -> TxDrain {
    let mut d = TxDrain::default();
    for _ in 0..MAX_DRAIN {
        match tx.poll(now, scratch) {
            Ok(SenderAction::Send(n)) => {
                if keep {
                    d.sent.push(scratch.get(..n).unwrap_or(&[]).to_vec());
                }
            }
            Ok(SenderAction::WaitUntil(t)) => {
                d.wait = Some(t);
                break;
            }
            Ok(SenderAction::Done) => {
                d.done = true;
                break;
            }
            Ok(SenderAction::Aborted(r)) => {
                d.aborted = Some(r);
                break;
            }
            Err(FragError::MtuTooSmall { .. }) => {
                d.blocked = true;
                break;
            }
            // Only a scratch buffer smaller than the MTU fails; it is sized to it.
            Err(_) => break,
        }
    }
    d
}

/// A downlink session: a sender over its own copy of the packet.
#[derive(Debug)]
struct Outgoing {
    rule: Rule,
    tx: Sender<Vec<u8>>,
    /// Its entry in the deadline index: (deadline, its number in the table).
    filed: Option<(Micros, u64)>,
    /// Its number, unique in the table (orders equal deadlines).
    id: u64,
    mtu: usize,
    packet_len: usize,
    /// ACKs and timer ticks taken in so far, against a flood.
    events: usize,
    max_events: usize,
    deadline: Option<Micros>,
    /// Waiting for a larger MTU.
    blocked: bool,
}

impl Outgoing {
    fn bytes(&self) -> usize {
        self.packet_len
    }

    /// Keeps the sender's timer, or, when the next frame did not fit the MTU, retries after a
    /// retransmission timer (the MTU may have grown by then; each retry counts against the
    /// session's events, so a device stuck at a small MTU ends the session).
    fn settle(&mut self, d: &TxDrain, now: Micros) {
        self.blocked = d.blocked;
        self.deadline =
            if d.blocked {
                let retrans = match self.rule.nature {
                    Nature::Fragmentation(p) => p.retransmission_timer.map(|t| t.micros()),
                    _ => None,
                };
                Some(now.saturating_add(
                    retrans.unwrap_or(crate::frag::sender::DEFAULT_RETRANSMISSION_US),
                ))
            } else {
                d.wait
            };
    }

    /// Takes in `ack` (an empty one is a timer tick) at `now` and polls the sender; `None` is
    /// the first call, right after the start.
    fn step(&mut self, ack: Option<&[u8]>, now: Micros) -> Result<TxDrain, FragError> {
        let mut scratch = vec![0u8; self.mtu.max(ACK_SCRATCH)];
        if let Some(ack) = ack {
            if !ack.is_empty() {
                self.tx.handle_ack(ack, now)?;
            }
            self.events += 1;
        }
        Ok(drain_tx(&mut self.tx, now, &mut scratch, true))
    }
}

/// Downlink fragment senders, one per device, rule and DTag: packets in, fragments out, ACKs
/// from devices in.
#[derive(Debug)]
pub struct Senders<K> {
    limits: Limits,
    /// Ordered by device first, so a device's downlinks are one range.
    table: BTreeMap<SessionKey<K>, Outgoing>,
    /// Every downlink with a timer, by (deadline, id): the next timer first.
    by_deadline: BTreeMap<(Micros, u64), SessionKey<K>>,
    bytes: usize,
    next_id: u64,
}

impl<K: Ord + Clone> Senders<K> {
    /// An empty table; [`Limits::max_sessions`] and [`Limits::max_bytes`] apply.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            table: BTreeMap::new(),
            by_deadline: BTreeMap::new(),
            bytes: 0,
            next_id: 0,
        }
    }

    /// Files the downlink of `key`, if any, under its current deadline.
    fn refile(&mut self, key: &SessionKey<K>) {
        let Some(o) = self.table.get_mut(key) else {
            return;
        };
        let now = o.deadline.map(|d| (d, o.id));
        if o.filed == now {
            return;
        }
        if let Some(old) = core::mem::replace(&mut o.filed, now) {
            self.by_deadline.remove(&old);
        }
        if let Some(at) = now {
            self.by_deadline.insert(at, key.clone());
        }
    }

    /// Removes the downlink of `key` from the table, the index and the byte count.
    fn detach(&mut self, key: &SessionKey<K>) -> Option<Outgoing> {
        let o = self.table.remove(key)?;
        self.bytes = self.bytes.saturating_sub(o.bytes());
        if let Some(at) = o.filed {
            self.by_deadline.remove(&at);
        }
        Some(o)
    }

    /// Number of downlinks in progress.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no downlink is in progress.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Bytes held (the packets).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Starts sending `packet` (a SCHC packet, whole bytes) to `device` with downlink
    /// fragmentation `rule`, DTag `dtag` and frames of at most `mtu` bytes; returns the first
    /// frames to send.
    pub fn start(
        &mut self,
        device: K,
        rule: &Rule,
        packet: &[u8],
        dtag: u32,
        mtu: usize,
        now: Micros,
    ) -> Result<Vec<DownlinkOutput<K>>, GatewayError> {
        self.start_bits(device, rule, packet, packet.len() * 8, dtag, mtu, now)
    }

    /// [`Senders::start`] for the first `bits` bits of `packet`: a compressed SCHC packet is
    /// not a whole number of bytes, and must be fragmented without its padding (RFC 8724 §8:
    /// padding is added to L2 frames only), else the receiver's packet ends with the padding of
    /// both and may gain a byte.
    #[allow(clippy::too_many_arguments)]
    pub fn start_bits(
        &mut self,
        device: K,
        rule: &Rule,
        packet: &[u8],
        bits: usize,
        dtag: u32,
        mtu: usize,
        now: Micros,
    ) -> Result<Vec<DownlinkOutput<K>>, GatewayError> {
        match rule.nature {
            Nature::Fragmentation(p) if p.direction == Direction::Down => {}
            _ => return Err(GatewayError::NotDownlink(rule.id)),
        }
        let key = SessionKey {
            device,
            rule: rule.id,
            dtag,
        };
        if self.table.contains_key(&key) {
            return Err(GatewayError::Busy {
                rule: rule.id,
                dtag,
            });
        }
        if self.table.len() >= self.limits.max_sessions
            || self.bytes + packet.len() > self.limits.max_bytes
        {
            return Err(GatewayError::Full);
        }
        let bits = bits.min(packet.len() * 8);
        let whole = packet.get(..bits.div_ceil(8)).unwrap_or(packet);
        let tx = Sender::new(rule, whole.to_vec(), bits, dtag, mtu)?;
        let max_ack = match rule.nature {
            Nature::Fragmentation(p) => p.max_ack_requests,
            _ => 0,
        };
        self.next_id += 1;
        let mut o = Outgoing {
            rule: *rule,
            max_events: max_downlink_events(tx.tiles(), max_ack),
            tx,
            filed: None,
            id: self.next_id,
            mtu,
            packet_len: bits.div_ceil(8),
            events: 0,
            deadline: None,
            blocked: false,
        };
        let d = o.step(None, now)?;
        o.settle(&d, now);
        let mut out = Vec::new();
        let ended = d.done || d.aborted.is_some();
        Self::emit(&key, d, mtu, &mut out);
        if !ended {
            self.bytes += o.bytes();
            self.table.insert(key.clone(), o);
            self.refile(&key);
        }
        Ok(out)
    }

    fn emit(key: &SessionKey<K>, d: TxDrain, mtu: usize, out: &mut Vec<DownlinkOutput<K>>) {
        for frame in d.sent {
            out.push(DownlinkOutput::Send {
                device: key.device.clone(),
                frame,
            });
        }
        if d.done {
            out.push(DownlinkOutput::Done {
                session: key.clone(),
            });
        } else if let Some(reason) = d.aborted {
            out.push(DownlinkOutput::Aborted {
                session: key.clone(),
                reason,
            });
        } else if d.blocked {
            out.push(DownlinkOutput::MtuTooSmall {
                session: key.clone(),
                mtu,
            });
        }
    }

    /// Takes in a frame from `device` under a downlink fragmentation rule: an ACK or a
    /// Receiver-Abort for one of its sessions. A session that took in twice the ACKs its sender
    /// can need ends with [`AbortReason::TooManyAttempts`].
    pub fn handle_ack(
        &mut self,
        device: K,
        frame: &[u8],
        now: Micros,
    ) -> Result<Vec<DownlinkOutput<K>>, GatewayError> {
        let rule = self
            .table
            .range(device_range(&device))
            .map(|(_, o)| o.rule)
            .find(|r| {
                let n = usize::from(r.id.length);
                n <= frame.len() * 8
                    && crate::bits::get_bits(frame, 0, u32::from(r.id.length))
                        == u64::from(r.id.value)
            })
            .ok_or(GatewayError::NoSession)?;
        let layout = Layout::new(&rule)?;
        let dtag = match wire::parse_ack(&layout, frame)? {
            Ack::Success { dtag, .. } | Ack::Failure { dtag, .. } | Ack::ReceiverAbort { dtag } => {
                dtag
            }
        };
        let key = SessionKey {
            device,
            rule: rule.id,
            dtag,
        };
        let mut out = Vec::new();
        self.step(&key, frame, now, &mut out)?;
        Ok(out)
    }

    fn step(
        &mut self,
        key: &SessionKey<K>,
        frame: &[u8],
        now: Micros,
        out: &mut Vec<DownlinkOutput<K>>,
    ) -> Result<(), GatewayError> {
        let o = self.table.get_mut(key).ok_or(GatewayError::NoSession)?;
        if o.events >= o.max_events {
            self.detach(key);
            out.push(DownlinkOutput::Aborted {
                session: key.clone(),
                reason: AbortReason::TooManyAttempts,
            });
            return Ok(());
        }
        let before = o.bytes();
        let d = o.step(Some(frame), now)?;
        o.settle(&d, now);
        let after = o.bytes();
        self.bytes = (self.bytes + after).saturating_sub(before);
        let ended = d.done || d.aborted.is_some();
        let mtu = o.mtu;
        Self::emit(key, d, mtu, out);
        if ended {
            self.detach(key);
        } else {
            self.refile(key);
        }
        Ok(())
    }

    /// Sets the MTU (bytes, Rule ID included) of the next frames of every downlink of
    /// `device`: RFC 9011 downlinks have the MTU of their data rate, less the FOpts of the
    /// moment. ACK-Always cuts each window from the MTU current when it starts it; a frame
    /// already cut that no longer fits waits ([`DownlinkOutput::MtuTooSmall`]). Sessions that
    /// were waiting for a larger MTU go on: their frames are returned.
    pub fn set_mtu(&mut self, device: &K, mtu: usize, now: Micros) -> Vec<DownlinkOutput<K>> {
        let keys = device_keys(&self.table, device);
        let mut out = Vec::new();
        for key in keys {
            let Some(o) = self.table.get_mut(&key) else {
                continue;
            };
            o.mtu = mtu;
            o.tx.set_mtu(mtu);
            if !o.blocked {
                continue;
            }
            o.blocked = false;
            // No ACK and no tick: the sender carries on where the MTU stopped it.
            let Ok(d) = o.step(None, now) else { continue };
            o.settle(&d, now);
            let ended = d.done || d.aborted.is_some();
            Self::emit(&key, d, mtu, &mut out);
            if ended {
                self.detach(&key);
            } else {
                self.refile(&key);
            }
        }
        out
    }

    /// Drops every downlink of `device` without telling it; returns how many there were.
    pub fn remove_device(&mut self, device: &K) -> usize {
        let keys = device_keys(&self.table, device);
        for key in &keys {
            self.detach(key);
        }
        keys.len()
    }

    /// The earliest instant at which [`Senders::poll`] has something to do.
    pub fn next_deadline(&self) -> Option<Micros> {
        self.by_deadline.first_key_value().map(|(&(d, _), _)| d)
    }

    /// Runs the retransmission timers due at `now`: ACK REQs, or Sender-Aborts after
    /// MAX_ACK_REQUESTS attempts.
    pub fn poll(&mut self, now: Micros) -> Vec<DownlinkOutput<K>> {
        let due: Vec<SessionKey<K>> = self
            .by_deadline
            .range(..=(now, u64::MAX))
            .map(|(_, k)| k.clone())
            .collect();
        let mut out = Vec::new();
        for key in due {
            // The rule was checked when the session started: it does not fail now.
            let _ = self.step(&key, &[], now, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SplitMix64;

    impl<K: Ord + Clone + core::fmt::Debug> Sessions<K> {
        /// The indexes agree with the table: every session filed once under its current
        /// activity and deadline, nothing else filed, the byte count the sum of the sessions'.
        fn check(&self) {
            assert_eq!(self.by_activity.len(), self.table.len());
            assert_eq!(self.by_deadline.len(), self.table.len());
            let mut bytes = 0;
            for (k, s) in &self.table {
                let (a, d, t) = s.indexed.expect("filed");
                assert_eq!((a, t), (s.last_active, s.touched), "{k:?}");
                assert_eq!(d, self.deadline_of(s), "{k:?}");
                assert_eq!(self.by_activity.get(&(a, t)), Some(k));
                assert_eq!(self.by_deadline.get(&(d, t)), Some(k));
                bytes += s.bytes;
            }
            assert_eq!(bytes, self.bytes);
            let min = self.table.values().map(|s| self.deadline_of(s)).min();
            assert_eq!(self.next_deadline(), min);
        }
    }

    /// Random frames of 24 devices under tight caps, timers, expiry and removals: after every
    /// call the indexes still describe the table exactly.
    #[test]
    fn the_indexes_follow_every_change() {
        let rules = crate::json::from_str(include_str!("../rules/lorawan-fragmentation.json"))
            .expect("rules");
        let limits = Limits {
            max_sessions: 12,
            max_bytes: 10 * 4_096,
            ..Limits::default()
        };
        let mut gw: Sessions<u8> = Sessions::new(rules, limits);
        let mut rng = SplitMix64::new(9);
        let mut now: Micros = 0;
        let (mut most, mut evicted) = (0, 0);
        for _ in 0..4_000 {
            now += rng.next_u64() % 3_600_000_000;
            let device = (rng.next_u64() % 24) as u8;
            let r = rng.next_u64();
            let w = (r & 3) as u8;
            let frame: Vec<u8> = match (r >> 2) % 8 {
                // A regular fragment with one or two tiles.
                0..=3 => {
                    let fcn = ((r >> 5) % 63) as u8;
                    let mut f = vec![20, w << 6 | fcn];
                    f.extend((0..10 * (1 + (r >> 12) % 2)).map(|i| i as u8));
                    f
                }
                // An All-1 with an RCS and maybe a tile.
                4 => {
                    let mut f = vec![20, w << 6 | 0x3F];
                    f.extend(((r >> 16) as u32).to_be_bytes());
                    f.extend((0..(r >> 8) % 11).map(|i| i as u8));
                    f
                }
                5 => vec![20, w << 6],
                6 => {
                    gw.expire(now);
                    gw.check();
                    continue;
                }
                _ => {
                    gw.remove_device(&device);
                    gw.check();
                    continue;
                }
            };
            if let Ok(out) = gw.handle_uplink(device, &frame, now) {
                evicted += out
                    .iter()
                    .filter(|o| matches!(o, Output::Evicted { .. }))
                    .count();
            }
            gw.check();
            most = most.max(gw.len());
        }
        // The run reached the cap and evicted, so the indexes were exercised where it matters.
        assert!(most >= 10, "at most {most} sessions");
        assert!(evicted > 100, "{evicted} evictions");
        gw.expire(Micros::MAX);
        gw.check();
        assert!(gw.is_empty());
    }
}
