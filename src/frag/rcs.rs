//! The reassembly check sequence: CRC32 (the IEEE 802.3 polynomial, reflected, init and final
//! XOR 0xFFFFFFFF; check value 0xCBF43926), sent most significant byte first.
//!
//! Its input is the SCHC packet followed by the padding bits of the fragment carrying the last
//! tile, zero-extended to a whole byte (RFC 8724 §8.2.3).

use crc::{Crc, Table, CRC_32_ISO_HDLC};

use super::wire::Layout;
use crate::rule::RcsAlgorithm;

/// Slice-by-16 tables (16 KiB) where memory is cheap (`std`: gateways), the 1 KiB byte table
/// on devices: the same CRC, about three times faster per byte on the gateway.
#[cfg(feature = "std")]
type CrcTable = Table<16>;
#[cfg(not(feature = "std"))]
type CrcTable = Table<1>;

const CRC32: Crc<u32, CrcTable> = Crc::<u32, CrcTable>::new(&CRC_32_ISO_HDLC);

/// The RCS of the first `bits` bits of `data`, zero-extended to a byte.
pub fn rcs(data: &[u8], bits: usize) -> u32 {
    let whole = bits / 8;
    let mut digest = CRC32.digest();
    digest.update(data.get(..whole).unwrap_or(data));
    let rem = bits % 8;
    if rem > 0 {
        let last = data.get(whole).copied().unwrap_or(0) & (0xFFu8 << (8 - rem));
        digest.update(&[last]);
    }
    digest.finalize()
}

/// The RCS of the first `bits` bits of `data` followed by `pad` zero bits, zero-extended to a
/// byte: what a sender computes when the fragment carrying the last tile has `pad` bits of
/// padding.
pub fn rcs_padded(data: &[u8], bits: usize, pad: usize) -> u32 {
    let whole = bits / 8;
    let mut digest = CRC32.digest();
    digest.update(data.get(..whole).unwrap_or(data));
    let total = (bits + pad).div_ceil(8);
    if total > whole {
        let rem = bits % 8;
        let first = if rem > 0 {
            data.get(whole).copied().unwrap_or(0) & (0xFFu8 << (8 - rem))
        } else {
            0
        };
        digest.update(&[first]);
        for _ in whole + 1..total {
            digest.update(&[0]);
        }
    }
    digest.finalize()
}

/// The RCS a sender puts in the All-1 for the first `bits` bits of `data`, `pad` bits of
/// padding in the fragment carrying the last tile, and `tiles` tiles in all: the CRC32 above,
/// or for RFC 9442's tile count the number of tiles of the last window (1 to WINDOW_SIZE).
pub fn sender_value(l: &Layout, data: &[u8], bits: usize, pad: usize, tiles: usize) -> u32 {
    match l.params.rcs {
        RcsAlgorithm::Crc32 => rcs_padded(data, bits, pad),
        RcsAlgorithm::TileCount => last_window_tiles(l, tiles),
    }
}

/// The RCS a receiver expects for `bits` reassembled bits (padding included) in `tiles`
/// tiles; compare it with the All-1's.
pub fn receiver_value(l: &Layout, data: &[u8], bits: usize, tiles: usize) -> u32 {
    match l.params.rcs {
        RcsAlgorithm::Crc32 => rcs(data, bits),
        RcsAlgorithm::TileCount => last_window_tiles(l, tiles),
    }
}

/// ((tiles − 1) mod WINDOW_SIZE) + 1: a full last window counts WINDOW_SIZE, not 0 (as the
/// RFC 9442 reference implementation computes it).
fn last_window_tiles(l: &Layout, tiles: usize) -> u32 {
    let ws = l.window_size().max(1);
    (tiles.saturating_sub(1) % ws + 1) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        assert_eq!(rcs(b"123456789", 72), 0xCBF4_3926);
    }

    #[test]
    fn partial_byte_is_zero_extended() {
        // V-8724-5: a 12-bit packet `ABC` is checked over bytes AB C0.
        assert_eq!(rcs(&[0xAB, 0xCF], 12), rcs(&[0xAB, 0xC0], 16));
        assert_ne!(rcs(&[0xAB, 0xCF], 12), rcs(&[0xAB, 0xCF], 16));
        assert_eq!(rcs_padded(&[0xAB, 0xCF], 12, 4), rcs(&[0xAB, 0xC0], 16));
        assert_eq!(
            rcs_padded(&[0xAB, 0xCF], 12, 6),
            rcs(&[0xAB, 0xC0, 0x00], 24)
        );
        assert_eq!(rcs_padded(&[0xAB], 8, 0), rcs(&[0xAB], 8));
    }
}
