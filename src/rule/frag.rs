//! Fragmentation rule parameters (RFC 8724 §8, RFC 9363, RFC 9441), stored with the rule.
//!
//! The fragmentation engine reads these; this module only holds and checks them.

use super::Direction;

/// Fragmentation mode (RFC 8724 §8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FragMode {
    /// No-ACK.
    NoAck,
    /// ACK-Always.
    AckAlways,
    /// ACK-on-Error.
    AckOnError,
}

/// Reassembly check sequence algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RcsAlgorithm {
    /// CRC32 (IEEE 802.3 polynomial), 32 bits, sent most significant byte first.
    Crc32,
    /// RFC 9442 (Sigfox): not a check sequence but the number of tiles in the last window
    /// (1 to WINDOW_SIZE), in a field as wide as the FCN. ACK-on-Error only.
    TileCount,
}

/// Whether the All-1 fragment carries the last tile (RFC 9363 `tile-in-all-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TileInAll1 {
    /// The All-1 carries no tile.
    No,
    /// The All-1 carries the last tile.
    Yes,
    /// The sender chooses per packet.
    SenderChoice,
}

/// When an ACK-on-Error receiver sends ACKs (RFC 9363 `ack-behavior`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckBehavior {
    /// After each All-0 (each window) and the All-1.
    AfterAll0,
    /// Only after the All-1.
    AfterAll1,
    /// Whenever layer 2 offers a chance.
    ByLayer2,
}

/// ACK bitmap format (RFC 9441).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BitmapFormat {
    /// One window per ACK (RFC 8724).
    Rfc8724,
    /// Compound ACK: several windows per ACK (RFC 9441).
    CompoundAck,
}

/// A timer as RFC 9363 encodes it: `ticks` ticks of 2^`tick_exp` microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timer {
    /// Tick duration as a power of two of microseconds (`ticks-duration`, default 20).
    pub tick_exp: u8,
    /// Number of ticks (`ticks-numbers`); 0 disables an inactivity timer.
    pub ticks: u16,
}

impl Timer {
    /// The duration in microseconds (saturating).
    pub const fn micros(self) -> u64 {
        if self.tick_exp >= 64 {
            return u64::MAX;
        }
        (self.ticks as u64).saturating_mul(1u64 << self.tick_exp)
    }
}

/// Parameters of a fragmentation rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragParams {
    /// Mode.
    pub mode: FragMode,
    /// Direction of the fragments.
    pub direction: Direction,
    /// L2 word in bits (default 8).
    pub l2_word: u8,
    /// T: DTag width in bits.
    pub dtag_bits: u8,
    /// M: W width in bits (0 in No-ACK).
    pub w_bits: u8,
    /// N: FCN width in bits.
    pub fcn_bits: u8,
    /// Window size in tiles (default 2^N − 1).
    pub window_size: u16,
    /// RCS algorithm.
    pub rcs: RcsAlgorithm,
    /// Largest reassembled packet in bytes (default 1280).
    pub max_packet_size: u16,
    /// Interleaved frames (RFC 9363 `max-interleaved-frames`, default 1).
    pub max_interleaved: u8,
    /// Inactivity timer.
    pub inactivity_timer: Option<Timer>,
    /// Retransmission timer (windowed modes).
    pub retransmission_timer: Option<Timer>,
    /// MAX_ACK_REQUESTS (windowed modes).
    pub max_ack_requests: u8,
    /// Tile size in bits (ACK-on-Error); 0 = fill the fragment.
    pub tile_size: u16,
    /// Whether the All-1 carries the last tile.
    pub tile_in_all1: TileInAll1,
    /// When ACKs are sent (ACK-on-Error).
    pub ack_behavior: AckBehavior,
    /// ACK bitmap format (RFC 9441).
    pub bitmap_format: BitmapFormat,
    /// Whether the last bitmap of a compound ACK is compressed (RFC 9441).
    pub last_bitmap_compression: bool,
}

impl FragParams {
    /// Checks the parameters; the error says what is inconsistent.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.fcn_bits == 0 || self.fcn_bits > 16 {
            return Err("fcn-size must be 1 to 16 bits");
        }
        if self.dtag_bits > 16 {
            return Err("dtag-size must be at most 16 bits");
        }
        if self.w_bits > 16 {
            return Err("w-size must be at most 16 bits");
        }
        if self.l2_word == 0 {
            return Err("l2-word-size must be at least 1 bit");
        }
        let all_ones = (1u32 << self.fcn_bits) - 1;
        match self.mode {
            FragMode::NoAck => {
                if self.w_bits != 0 {
                    return Err("No-ACK has no W field (w-size must be 0)");
                }
            }
            FragMode::AckAlways | FragMode::AckOnError => {
                if self.w_bits == 0 {
                    return Err("windowed modes need w-size of at least 1");
                }
                if self.window_size == 0 || u32::from(self.window_size) > all_ones {
                    return Err("window-size must be 1 to 2^fcn-size - 1");
                }
                if self.max_ack_requests == 0 {
                    return Err("max-ack-requests must be at least 1");
                }
            }
        }
        if self.mode == FragMode::AckAlways && self.w_bits != 1 {
            return Err("ACK-Always uses a 1-bit W");
        }
        if self.bitmap_format == BitmapFormat::CompoundAck && self.mode != FragMode::AckOnError {
            return Err("compound ACKs are for ACK-on-Error only (RFC 9441)");
        }
        if self.max_packet_size == 0 {
            return Err("maximum-packet-size must be at least 1 byte");
        }
        Ok(())
    }
}
