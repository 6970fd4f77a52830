//! SCHC over NB-IoT (RFC 9391): the F/R parameter sets of its two header layouts, for SCHC over
//! NIDD (non-IP data delivery) between the device and the application server.
//!
//! | layout | Rule ID | DTag | W | FCN | WINDOW_SIZE | when |
//! |---|---|---|---|---|---|---|
//! | [`HEADER_8`] | 3 bits | 1 | 1 | 3 | 7 | transport blocks of up to 304 bits |
//! | [`HEADER_16`] | 8 bits | 2 | 3 | 3 | 7 | larger transport blocks |
//!
//! RFC 9391 gives ranges (8-bit header: Rule ID 1 to 3 bits, DTag 1, W 1, FCN 3; 16-bit header:
//! Rule ID 8 to 10 bits, DTag 1 or 2, W 2 or 3, FCN 3); these constants fill each header to its
//! size with the widest DTag and W ([`ack_on_error`] builds any other combination).
//! ACK-on-Error (RECOMMENDED), WINDOW_SIZE 2^N − 1, MAX_ACK_REQUESTS 2, one tile per fragment
//! (the transport block decides the MTU), the default CRC32 RCS, an inactivity timer of 3 hours
//! and a retransmission timer of 1 hour (RFC 9391 derives them from the 3GPP power-saving and
//! eDRX timers, N to 3N with N = 1 h or 10 h).
//!
//! Checked against the project's digest, which was written from draft-ietf-lpwan-schc-over-nbiot-13
//! (two revisions before the RFC). Not supported: an RCS "as long as the L2 word" (8 bits), if
//! that is what the RFC means by it; our engine's RCS is CRC32 (or RFC 9442's tile count).

use crate::rule::{
    AckBehavior, BitmapFormat, Direction, FragMode, FragParams, RcsAlgorithm, TileInAll1, Timer,
};

/// One hour in ticks of 2^20 µs.
const ONE_HOUR: Timer = Timer {
    tick_exp: 20,
    ticks: 3433,
};

/// Three hours in ticks of 2^20 µs.
const THREE_HOURS: Timer = Timer {
    tick_exp: 20,
    ticks: 10300,
};

/// ACK-on-Error for `direction` with a DTag of `dtag_bits`, a W of `w_bits` and an FCN of
/// `fcn_bits` bits (windows of 2^N − 1 tiles); the other parameters as the module says.
pub const fn ack_on_error(
    direction: Direction,
    dtag_bits: u8,
    w_bits: u8,
    fcn_bits: u8,
) -> FragParams {
    FragParams {
        mode: FragMode::AckOnError,
        direction,
        l2_word: 8,
        dtag_bits,
        w_bits,
        fcn_bits,
        window_size: (1u16 << fcn_bits) - 1,
        rcs: RcsAlgorithm::Crc32,
        max_packet_size: 1280,
        max_interleaved: 1,
        inactivity_timer: Some(THREE_HOURS),
        retransmission_timer: Some(ONE_HOUR),
        max_ack_requests: 2,
        tile_size: 0,
        tile_in_all1: TileInAll1::Yes,
        ack_behavior: AckBehavior::AfterAll1,
        bitmap_format: BitmapFormat::Rfc8724,
        last_bitmap_compression: true,
    }
}

/// The 8-bit header for uplinks (with a 3-bit Rule ID): DTag 1, W 1, FCN 3 bits.
pub const HEADER_8: FragParams = ack_on_error(Direction::Up, 1, 1, 3);

/// The 16-bit header for uplinks (with an 8-bit Rule ID): DTag 2, W 3, FCN 3 bits.
pub const HEADER_16: FragParams = ack_on_error(Direction::Up, 2, 3, 3);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_validate() {
        HEADER_8.validate().unwrap();
        HEADER_16.validate().unwrap();
        assert_eq!(
            3 + HEADER_8.dtag_bits + HEADER_8.w_bits + HEADER_8.fcn_bits,
            8
        );
        assert_eq!(
            8 + HEADER_16.dtag_bits + HEADER_16.w_bits + HEADER_16.fcn_bits,
            16
        );
        assert_eq!(HEADER_8.window_size, 7);
        assert_eq!(ONE_HOUR.micros() / 1_000_000, 3599);
    }
}
