//! A fragment sender and a fragment receiver against each other over a simulated link
//! (feature `std`): each frame, in either direction, is lost with a given probability drawn
//! from a seeded generator, and the clock is simulated. `schc fragment`, `schc simulate` and
//! the fragmentation tests run on it.
//!
//! ## The exchange
//!
//! Time starts at 0 and only moves when both sides wait: to the earliest of the next frame's
//! arrival, the sender's retransmission deadline and the receiver's inactivity deadline.
//! At each instant the sender sends all it wants first; then the frames due are delivered one
//! at a time, in the order they were sent, each followed by the recipient's answers; then the
//! receiver's timers run. A frame sent at `t` arrives at `t + delay`. The exchange ends when
//! the sender is done or has aborted and no frame is in flight.
//!
//! ## The generator
//!
//! [`SplitMix64`] (Steele, Lea and Flood, 2014), seeded with the caller's seed. `schc simulate`
//! draws the packet's bytes first (each output gives 8 bytes, big-endian), then one number per
//! frame sent, in sending order: the frame is lost if `(x >> 11) / 2^53 < loss`.

use std::collections::VecDeque;
use std::vec;
use std::vec::Vec;

use thiserror::Error;

use crate::frag::{AbortReason, FragError, Micros, Receiver, ReceiverAction, Sender, SenderAction};
use crate::rule::{Nature, Rule};

/// The SplitMix64 generator: 64 bits of state, one addition and two multiplications per
/// output. Deterministic for a seed on every platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64-bit output.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in [0, 1): the top 53 bits of the next output over 2^53.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Fills `buf`, 8 bytes per output (big-endian; the last output may be cut).
    pub fn fill_bytes(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_be_bytes();
            chunk.copy_from_slice(bytes.get(..chunk.len()).unwrap_or(&[]));
        }
    }
}

/// The simulated link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// Largest frame, in bytes, in both directions.
    pub mtu: usize,
    /// Probability that a frame is lost, in [0, 1], in both directions.
    pub loss: f64,
    /// Time from sending a frame to its arrival.
    pub delay: Micros,
    /// The DTag the sender uses.
    pub dtag: u32,
}

/// One frame that went on the air.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Sent by the fragment sender (else by the receiver).
    pub from_sender: bool,
    /// When it was sent.
    pub at: Micros,
    /// The frame.
    pub bytes: Vec<u8>,
    /// Whether the link lost it.
    pub lost: bool,
}

/// What happened in one exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The receiver delivered a packet.
    pub delivered: bool,
    /// The packet delivered is the one sent (padding of at most one L2 word aside, all zero).
    pub identical: bool,
    /// Frames the sender sent, lost ones included: fragments, All-1s, ACK REQs, Sender-Aborts.
    pub fragments_sent: usize,
    /// Frames the receiver sent, lost ones included: ACKs and Receiver-Aborts.
    pub acks_sent: usize,
    /// Bytes of all frames sent, both directions, lost ones included.
    pub bytes_on_air: usize,
    /// `fragments_sent` minus the frames a loss-free exchange of the same packet sends (the
    /// frames [`lossless_frames`] returns), or 0 if fewer: tiles and All-1s sent again, and
    /// ACK REQs.
    pub retransmissions: usize,
    /// Times the sender stopped sending to wait for an ACK: once after each All-1, each ACK
    /// REQ, and (ACK-Always) each window's last fragment. 0 in No-ACK.
    pub rounds: usize,
    /// The simulated clock when the exchange ended.
    pub sim_time: Micros,
    /// How the sender ended (`Done` or `Aborted`).
    pub sender: SenderAction,
    /// Why the receiver gave up, if it did.
    pub receiver_aborted: Option<AbortReason>,
    /// Every frame, in sending order.
    pub frames: Vec<Frame>,
}

/// Why a simulation failed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SimError {
    /// The sender or receiver refused the rule, the packet or a frame.
    #[error(transparent)]
    Frag(#[from] FragError),
    /// The exchange neither ended nor waited for anything after this many steps: a bug.
    #[error("the exchange did not end after {0} steps")]
    Stuck(usize),
    /// The loss probability is not in [0, 1].
    #[error("loss probability {0} is not between 0 and 1")]
    BadLoss(f64),
}

const MAX_STEPS: usize = 10_000_000;

struct InFlight {
    at: Micros,
    to_receiver: bool,
    bytes: Vec<u8>,
}

/// Runs a sender of `packet` (whole bytes) and a receiver of `rule` against each other over
/// `link`, losses drawn from `rng`; `retransmissions` is counted against a second, loss-free
/// exchange.
pub fn run(
    rule: &Rule,
    packet: &[u8],
    link: &Link,
    rng: &mut SplitMix64,
) -> Result<Report, SimError> {
    if !(0.0..=1.0).contains(&link.loss) {
        return Err(SimError::BadLoss(link.loss));
    }
    let mut report = exchange(rule, packet, link, &mut || rng.next_f64() < link.loss)?;
    let baseline = lossless_frames(rule, packet, link.dtag, link.mtu)?.len();
    report.retransmissions = report.fragments_sent.saturating_sub(baseline);
    Ok(report)
}

/// The frames the sender sends when nothing is lost (ACKs answered by a receiver, not shown):
/// every fragment of every window, the All-1 last.
pub fn lossless_frames(
    rule: &Rule,
    packet: &[u8],
    dtag: u32,
    mtu: usize,
) -> Result<Vec<Vec<u8>>, SimError> {
    let link = Link {
        mtu,
        loss: 0.0,
        delay: 0,
        dtag,
    };
    let report = exchange(rule, packet, &link, &mut || false)?;
    Ok(report
        .frames
        .into_iter()
        .filter(|f| f.from_sender)
        .map(|f| f.bytes)
        .collect())
}

/// What [`reassemble`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reassembled {
    /// The packet (its first `bits.div_ceil(8)` bytes) and its length in bits, padding of
    /// the last fragment included.
    Packet(Vec<u8>, usize),
    /// The receiver gave up.
    Aborted(AbortReason),
    /// The frames do not complete a packet.
    Incomplete,
}

/// Feeds `frames` (all from the fragment sender, in order, at time 0) to a receiver of
/// `rule`; its ACKs are produced and dropped.
pub fn reassemble(rule: &Rule, frames: &[Vec<u8>]) -> Result<Reassembled, FragError> {
    let max_frame = frames.iter().map(Vec::len).max().unwrap_or(0);
    let mut rx = Receiver::new(rule, vec![0u8; Receiver::buffer_len(rule, max_frame)], 0)?;
    let mut ack = [0u8; 256];
    let mut got = None;
    for f in frames {
        rx.handle_frame(f, 0)?;
        loop {
            match rx.poll(0, &mut ack)? {
                ReceiverAction::Send(_) => {}
                ReceiverAction::Delivered { bits } => {
                    got = rx.packet().map(|(b, _)| (b.to_vec(), bits));
                }
                ReceiverAction::Aborted(r) => return Ok(Reassembled::Aborted(r)),
                ReceiverAction::WaitUntil(_) | ReceiverAction::Idle => break,
            }
        }
    }
    Ok(got.map_or(Reassembled::Incomplete, |(p, bits)| {
        Reassembled::Packet(p, bits)
    }))
}

/// Whether `got` (`bits` long) is `packet` followed by less than one L2 word of zero bits.
fn same_packet(rule: &Rule, packet: &[u8], got: &[u8], bits: usize) -> bool {
    let l2 = match rule.nature {
        Nature::Fragmentation(p) => usize::from(p.l2_word.max(1)),
        _ => 1,
    };
    let sent = packet.len() * 8;
    bits >= sent
        && bits - sent < l2.max(8)
        && got.get(..packet.len()) == Some(packet)
        && got
            .get(packet.len()..)
            .is_some_and(|t| t.iter().all(|&b| b == 0))
}

fn exchange(
    rule: &Rule,
    packet: &[u8],
    link: &Link,
    lost: &mut dyn FnMut() -> bool,
) -> Result<Report, SimError> {
    let mut sender = Sender::new(rule, packet, packet.len() * 8, link.dtag, link.mtu)?;
    let buf = vec![0u8; Receiver::buffer_len(rule, link.mtu)];
    let mut receiver = Receiver::new(rule, buf, 0)?;
    let mut out = vec![0u8; link.mtu.max(16)];
    let mut ack = [0u8; 256];
    let mut queue: VecDeque<InFlight> = VecDeque::new();
    let mut r = Report {
        delivered: false,
        identical: false,
        fragments_sent: 0,
        acks_sent: 0,
        bytes_on_air: 0,
        retransmissions: 0,
        rounds: 0,
        sim_time: 0,
        sender: SenderAction::WaitUntil(0),
        receiver_aborted: None,
        frames: Vec::new(),
    };
    let mut now: Micros = 0;
    let mut sender_end: Option<SenderAction> = None;
    let mut sender_wait: Option<Micros> = None;
    let mut sent_since_wait = false;

    // Puts a frame on the air.
    let mut transmit = |r: &mut Report,
                        queue: &mut VecDeque<InFlight>,
                        now: Micros,
                        from_sender: bool,
                        bytes: &[u8]| {
        let is_lost = lost();
        if from_sender {
            r.fragments_sent += 1;
        } else {
            r.acks_sent += 1;
        }
        r.bytes_on_air += bytes.len();
        r.frames.push(Frame {
            from_sender,
            at: now,
            bytes: bytes.to_vec(),
            lost: is_lost,
        });
        if !is_lost {
            queue.push_back(InFlight {
                at: now.saturating_add(link.delay),
                to_receiver: from_sender,
                bytes: bytes.to_vec(),
            });
        }
    };

    for _ in 0..MAX_STEPS {
        // The sender first.
        if sender_end.is_none() {
            loop {
                match sender.poll(now, &mut out)? {
                    SenderAction::Send(n) => {
                        transmit(&mut r, &mut queue, now, true, out.get(..n).unwrap_or(&[]));
                        sent_since_wait = true;
                    }
                    SenderAction::WaitUntil(t) => {
                        if sent_since_wait {
                            r.rounds += 1;
                            sent_since_wait = false;
                        }
                        sender_wait = Some(t);
                        break;
                    }
                    a @ (SenderAction::Done | SenderAction::Aborted(_)) => {
                        sender_end = Some(a);
                        sender_wait = None;
                        break;
                    }
                }
            }
        }
        // Then one frame due, and the answers of its recipient.
        let due = queue.front().is_some_and(|f| f.at <= now);
        if due {
            let Some(f) = queue.pop_front() else { break };
            if f.to_receiver {
                receiver.handle_frame(&f.bytes, now)?;
            } else if sender_end.is_none() {
                sender.handle_ack(&f.bytes, now)?;
            }
        }
        // The receiver: answers to that frame, or its own timers.
        let receiver_wait = loop {
            match receiver.poll(now, &mut ack)? {
                ReceiverAction::Send(n) => {
                    transmit(&mut r, &mut queue, now, false, ack.get(..n).unwrap_or(&[]));
                }
                ReceiverAction::Delivered { bits } => {
                    if let Some((got, _)) = receiver.packet() {
                        r.delivered = true;
                        r.identical = same_packet(rule, packet, got, bits);
                    }
                }
                ReceiverAction::WaitUntil(t) => break Some(t),
                ReceiverAction::Idle => break None,
                ReceiverAction::Aborted(reason) => {
                    r.receiver_aborted = Some(reason);
                    break None;
                }
            }
        };
        if due || queue.front().is_some_and(|f| f.at <= now) {
            continue;
        }
        if sender_end.is_some() && queue.is_empty() {
            r.sender = sender_end.unwrap_or(SenderAction::Done);
            r.sim_time = now;
            return Ok(r);
        }
        // Everyone waits: time moves to the next event.
        let next = [queue.front().map(|f| f.at), sender_wait, receiver_wait]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(t) if t > now => now = t,
            // Nothing to wait for, or a deadline that does not move: the machines are stuck.
            _ => return Err(SimError::Stuck(r.frames.len())),
        }
    }
    Err(SimError::Stuck(MAX_STEPS))
}
