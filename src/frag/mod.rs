//! Fragmentation and reassembly (RFC 8724 §8, RFC 9441): sans-IO, heap-free state machines.
//!
//! A [`Sender`] cuts a SCHC packet (borrowed from the caller) into fragments; a [`Receiver`]
//! reassembles them into a buffer the caller owns. Neither has a clock: every call takes the
//! current time (`now`, in microseconds of any monotonic clock) and answers with what to do
//! next ([`SenderAction`], [`ReceiverAction`]): send this frame, call again at this instant,
//! deliver, or give up with a reason. Memory is bounded by the rule: tiles are tracked in fixed
//! bitmaps, and frames are written into caller buffers.
//!
//! This module owns the F/R message formats ([`wire`]), the RCS ([`rcs`]) and the two state
//! machines. It sits beside the compression engine and uses only the bit layer and the rule
//! model.

pub mod rcs;
pub mod receiver;
pub mod sender;
pub mod wire;

pub use receiver::{Receiver, ReceiverAction};
pub use sender::{Sender, SenderAction};

use thiserror::Error;

use crate::bits::BitError;
use crate::rule::RuleId;

/// Why a fragmentation call failed. Frames that are merely unexpected are ignored, as the RFC
/// says; these errors are for frames that cannot be read and for impossible requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FragError {
    /// The rule is not a fragmentation rule.
    #[error("rule {0} is not a fragmentation rule")]
    NotFragmentation(RuleId),
    /// The rule's parameters cannot be used.
    #[error("rule {rule}: {reason}")]
    BadRule {
        /// The rule.
        rule: RuleId,
        /// Why.
        reason: &'static str,
    },
    /// The frame does not start with this session's rule ID.
    #[error("frame does not carry rule {0}")]
    WrongRule(RuleId),
    /// A frame that cannot be a valid F/R message of this rule.
    #[error("rule {rule}: malformed frame at bit {bit}: {what}")]
    Malformed {
        /// The rule.
        rule: RuleId,
        /// Bit offset in the frame of the field at fault (0 when the fault is in what we were
        /// asked to write, not in a frame).
        bit: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// A tile that falls outside the packet's possible size.
    #[error("rule {rule}: tile at window {window}, FCN {fcn} lies beyond the maximum packet size")]
    TileOutOfRange {
        /// The rule.
        rule: RuleId,
        /// W.
        window: u32,
        /// FCN.
        fcn: u32,
    },
    /// The packet is too large for the rule (windows × tiles, or maximum packet size).
    #[error("rule {rule}: a packet of {bits} bits does not fit the rule ({max} bits at most)")]
    PacketTooLarge {
        /// The rule.
        rule: RuleId,
        /// The packet's length.
        bits: usize,
        /// The most the rule carries.
        max: usize,
    },
    /// The MTU is too small: from [`Sender::new`], no cut of the packet into tiles fits frames
    /// of this MTU; from [`Sender::poll`], the next frame does not fit the current MTU (see
    /// [`Sender::set_mtu`]), and nothing was sent or changed.
    #[error("rule {rule}: an MTU of {mtu} bytes is too small for this rule")]
    MtuTooSmall {
        /// The rule.
        rule: RuleId,
        /// The MTU in bytes.
        mtu: usize,
    },
    /// The caller's buffer is too small.
    #[error("buffer of {capacity} bytes is too small: {needed} needed")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        capacity: usize,
    },
    /// A bit-level read or write failed.
    #[error(transparent)]
    Bits(#[from] BitError),
}

/// Why a session ended without delivering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AbortReason {
    /// MAX_ACK_REQUESTS attempts went unanswered (sender) or were exceeded (receiver).
    #[error("too many attempts (MAX_ACK_REQUESTS reached)")]
    TooManyAttempts,
    /// The peer sent an abort.
    #[error("the peer aborted")]
    PeerAborted,
    /// The RCS did not match the reassembled packet.
    #[error("the reassembly check sequence does not match")]
    RcsMismatch,
    /// No frame arrived within the inactivity timer.
    #[error("inactivity timer expired")]
    Inactivity,
    /// The receiver reported more tiles than were sent, or all tiles but C = 0 where the
    /// profile mandates the last tile in the All-1.
    #[error("the peer's ACK contradicts what was sent")]
    InconsistentAck,
}

/// Time in microseconds of the caller's monotonic clock.
pub type Micros = u64;
