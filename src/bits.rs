//! Bit-level I/O: the bottom layer.
//!
//! SCHC packets are bit strings, written most significant bit first, with no alignment between
//! residues (RFC 8724 §7.5). This module owns reading and writing such strings over caller-owned
//! byte slices, and the variable-length size prefix of RFC 8724 §7.5.2. It knows nothing about
//! rules or protocols and never allocates or panics: every access is bounds-checked and reports a
//! [`BitError`] that says where it failed.

use thiserror::Error;

/// An error of the bit layer. Offsets are in bits from the start of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum BitError {
    /// Reading past the end of the input.
    #[error("truncated input: {needed} bits needed at bit {at}, {available} available")]
    Truncated {
        /// Bit offset of the read.
        at: usize,
        /// Bits requested.
        needed: usize,
        /// Bits left in the input.
        available: usize,
    },
    /// Writing past the end of the output buffer.
    #[error("output buffer full: {needed} bits to write at bit {at}, room for {available}")]
    BufferFull {
        /// Bit offset of the write.
        at: usize,
        /// Bits to write.
        needed: usize,
        /// Bits left in the buffer.
        available: usize,
    },
    /// A single read or write of more than 64 bits.
    #[error("a single access is limited to 64 bits, {0} requested")]
    TooWide(u32),
    /// A variable-length size that cannot be encoded (more than 65535 units).
    #[error("variable length {0} exceeds the 16-bit size prefix")]
    SizeTooLarge(usize),
}

/// Reads `n` (at most 64) bits at bit offset `off` of `data`, MSB first. Bits past the end of
/// `data` read as zero; callers check bounds first.
// Always inlined on hosts (the compiled matcher calls it per field); devices have the small
// form below (flash).
#[cfg(feature = "std")]
#[inline(always)]
pub fn get_bits(data: &[u8], off: usize, n: u32) -> u64 {
    let n = n.min(64);
    let shift = (off % 8) as u32;
    // Fast path: the bits lie in the 8 bytes from the first one, all inside `data`.
    if n > 0 && n + shift <= 64 {
        if let Some(s) = data.get(off / 8..) {
            let w = match s.first_chunk::<8>() {
                Some(w) => *w,
                // Fewer than 8 bytes left (the end of a packet: its payload, a token): the
                // same word with the bytes past the end read as zero, as the slow path does.
                None => {
                    let mut w = [0u8; 8];
                    w.iter_mut().zip(s).for_each(|(d, b)| *d = *b);
                    w
                }
            };
            return (u64::from_be_bytes(w) << shift) >> (64 - n);
        }
    }
    get_bits_slow(data, off, n)
}

/// [`get_bits`] on devices, for less flash: the bits copied ([`copy_into`]) to the end of an
/// 8-byte word (zero past the end of `data`). (The unit tests run it with
/// `--no-default-features`.)
#[cfg(not(feature = "std"))]
pub fn get_bits(data: &[u8], off: usize, n: u32) -> u64 {
    let n = n.min(64) as usize;
    let mut w = [0u8; 8];
    let _ = copy_into(&mut w, 64 - n, data, off, n);
    u64::from_be_bytes(w)
}

/// [`get_bits`] byte by byte: near the end of `data`, or more than 64 bits from the first byte.
#[cfg_attr(not(feature = "std"), allow(dead_code))]
fn get_bits_slow(data: &[u8], off: usize, n: u32) -> u64 {
    let mut value: u64 = 0;
    let mut pos = off;
    let mut left = n.min(64);
    // Whole bytes from an aligned position.
    while left >= 8 && pos % 8 == 0 {
        let byte = data.get(pos / 8).copied().unwrap_or(0);
        value = (value << 8) | u64::from(byte);
        pos += 8;
        left -= 8;
    }
    while left > 0 {
        let byte = data.get(pos / 8).copied().unwrap_or(0);
        let bit = (pos % 8) as u32;
        let avail = 8 - bit;
        let take = avail.min(left);
        let chunk = (u32::from(byte) >> (avail - take)) & ((1u32 << take) - 1);
        value = (value << take) | u64::from(chunk);
        pos += take as usize;
        left -= take;
    }
    value
}

/// The 8 bytes of `data` from byte `at`, big-endian, the bytes past the end of `data` read as
/// zero, without a byte loop: from the last 8 bytes of `data` shifted when fewer than 8 are
/// left, or from two overlapping 4- or 2-byte reads when `data` itself is shorter (a SCHC
/// packet of a few bytes). Used by the decompressor, which reads residues and the payload
/// near the end of short packets.
#[cfg(feature = "std")]
#[inline]
pub fn word_at(data: &[u8], at: usize) -> u64 {
    let s = data.get(at..).unwrap_or(&[]);
    if let Some(w) = s.first_chunk::<8>() {
        return u64::from_be_bytes(*w);
    }
    // `n` < 8 bytes are left: they go to the top `n` bytes of the word.
    let n = s.len();
    let pad = (8 * (8 - n)) as u32;
    if let Some(last) = data
        .len()
        .checked_sub(8)
        .and_then(|i| data.get(i..))
        .and_then(|t| t.first_chunk::<8>())
    {
        // The last 8 bytes of `data` end where `s` ends.
        return u64::from_be_bytes(*last).checked_shl(pad).unwrap_or(0);
    }
    // The two reads overlap by the same bytes, so OR keeps them.
    if let (Some(hi), Some(lo)) = (s.first_chunk::<4>(), s.last_chunk::<4>()) {
        return (u64::from(u32::from_be_bytes(*hi)) << 32)
            | (u64::from(u32::from_be_bytes(*lo)) << pad);
    }
    if let (Some(hi), Some(lo)) = (s.first_chunk::<2>(), s.last_chunk::<2>()) {
        return (u64::from(u16::from_be_bytes(*hi)) << 48)
            | (u64::from(u16::from_be_bytes(*lo)) << pad);
    }
    s.first().map_or(0, |&b| u64::from(b) << 56)
}

/// [`word_at`] on devices: byte by byte, for less flash.
#[cfg(not(feature = "std"))]
pub fn word_at(data: &[u8], at: usize) -> u64 {
    let s = data.get(at..).unwrap_or(&[]);
    (0..8).fold(0, |w, i| {
        (w << 8) | u64::from(s.get(i).copied().unwrap_or(0))
    })
}

/// Copies `n` bits of `src` from bit `off` into `dst` from bit `at`, keeping the other bits of
/// the bytes it touches; bits past the end of `src` are read as zero. `None` (after writing what
/// fits) when `dst` ends first. A byte of `dst` per step, with nothing of its own to set up:
/// the one writer of the device's compiled-only codec, which writes SCHC packets in order and
/// rebuilt headers field by field at their places (less flash than a sequential writer with
/// its accumulator).
pub fn copy_into(dst: &mut [u8], at: usize, src: &[u8], off: usize, n: usize) -> Option<()> {
    let byte = |i: usize| u32::from(src.get(i).copied().unwrap_or(0));
    let mut done = 0;
    while done < n {
        let (p, s) = (at + done, off + done);
        // The bits that go into this byte of `dst`, and the bits of it below them.
        let k = (8 - p % 8).min(n - done);
        let low = 8 - p % 8 - k;
        // Those `k` bits of `src`, right-aligned, from the two bytes they lie in.
        let v = (((byte(s / 8) << 8) | byte(s / 8 + 1)) >> (16 - s % 8 - k)) & ((1 << k) - 1);
        let b = dst.get_mut(p / 8)?;
        let mask = ((1u32 << k) - 1) << low;
        *b = ((u32::from(*b) & !mask) | (v << low)) as u8;
        done += k;
    }
    Some(())
}

/// A reader of MSB-first bit strings over a borrowed byte slice.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> BitReader<'a> {
    /// A reader over every bit of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            end: data.len() * 8,
        }
    }

    /// A reader over the first `bits` bits of `data` (clamped to the slice).
    pub fn with_bit_len(data: &'a [u8], bits: usize) -> Self {
        Self {
            data,
            pos: 0,
            end: bits.min(data.len() * 8),
        }
    }

    /// The underlying bytes.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Current bit offset.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bits left to read.
    pub fn remaining(&self) -> usize {
        self.end - self.pos
    }

    fn check(&self, n: usize) -> Result<(), BitError> {
        if n > self.remaining() {
            Err(BitError::Truncated {
                at: self.pos,
                needed: n,
                available: self.remaining(),
            })
        } else {
            Ok(())
        }
    }

    /// Reads `n` bits (at most 64) as an unsigned number.
    // (Devices: always inlined, into the size prefix's three reads; less flash than a call.)
    #[cfg_attr(feature = "std", inline)]
    #[cfg_attr(not(feature = "std"), inline(always))]
    pub fn read(&mut self, n: u32) -> Result<u64, BitError> {
        if n > 64 {
            return Err(BitError::TooWide(n));
        }
        self.check(n as usize)?;
        let v = get_bits(self.data, self.pos, n);
        self.pos += n as usize;
        Ok(v)
    }

    /// Skips `n` bits, returning the offset where they start.
    pub fn skip(&mut self, n: usize) -> Result<usize, BitError> {
        self.check(n)?;
        let at = self.pos;
        self.pos += n;
        Ok(at)
    }

    /// Reads an RFC 8724 §7.5.2 variable-length size prefix (4, 12 or 28 bits).
    pub fn read_size_prefix(&mut self) -> Result<usize, BitError> {
        let short = self.read(4)?;
        if short < 15 {
            return Ok(short as usize);
        }
        let mid = self.read(8)?;
        if mid < 255 {
            return Ok(mid as usize);
        }
        Ok(self.read(16)? as usize)
    }
}

/// Encodes `size` as an RFC 8724 §7.5.2 size prefix: `(value, bit count)`.
pub fn size_prefix(size: usize) -> Result<(u64, u32), BitError> {
    match size {
        0..=14 => Ok((size as u64, 4)),
        15..=254 => Ok((0xF00 | size as u64, 12)),
        255..=0xFFFF => Ok((0xFFF_0000 | size as u64, 28)),
        _ => Err(BitError::SizeTooLarge(size)),
    }
}

/// Length in bits of the size prefix for `size` (28 for sizes that cannot be encoded; encoding
/// them fails later).
pub fn size_prefix_len(size: usize) -> u32 {
    match size {
        0..=14 => 4,
        15..=254 => 12,
        _ => 28,
    }
}

/// A sequential writer of MSB-first bit strings that gathers bits in a 64-bit accumulator
/// and stores them 8 bytes at a time: for output written once from the start, as a SCHC
/// packet is, each write is a shift and an or. Call [`BitAcc::flush`] to store the last bits
/// (the rest of the last byte zero); bytes past them keep their values (they may be stored
/// back as they were).
#[derive(Debug)]
pub struct BitAcc<'a> {
    buf: &'a mut [u8],
    /// Bytes stored so far.
    stored: usize,
    /// Bits not yet stored, right-aligned (`n` of them, fewer than [`ACC`]).
    acc: Acc,
    n: u32,
}

/// [`BitAcc`]'s accumulator: 64 bits on hosts, 32 on devices, whose 32-bit cores take more
/// code for 64-bit shifts (flash).
#[cfg(feature = "std")]
type Acc = u64;
/// See above.
#[cfg(not(feature = "std"))]
type Acc = u32;
/// The bits of [`Acc`].
const ACC: u32 = Acc::BITS;
/// Its bytes.
const ACC_BYTES: usize = ACC as usize / 8;

impl<'a> BitAcc<'a> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self {
            buf,
            stored: 0,
            acc: 0,
            n: 0,
        }
    }

    /// Bits written so far.
    #[inline(always)]
    pub fn position(&self) -> usize {
        self.stored * 8 + self.n as usize
    }

    /// Writes the low `n` bits of `value` (`n` at most 64).
    #[cfg_attr(feature = "std", inline(always))]
    pub fn write(&mut self, value: u64, n: u32) -> Result<(), BitError> {
        if n > 64 {
            return Err(BitError::TooWide(n));
        }
        let value = if n == 64 {
            value
        } else {
            value & ((1u64 << n) - 1)
        };
        // Wider than the accumulator (devices): the high bits first.
        if n > ACC {
            self.put(value.checked_shr(ACC).unwrap_or(0) as Acc, n - ACC)?;
            return self.put(value as Acc, ACC);
        }
        self.put(value as Acc, n)
    }

    /// [`BitAcc::write`] of a `value` below 2^`n` (`n` at most [`ACC`]).
    #[cfg_attr(feature = "std", inline(always))]
    fn put(&mut self, value: Acc, n: u32) -> Result<(), BitError> {
        let free = ACC - self.n;
        if n < free {
            self.acc = (self.acc << n) | value;
            self.n += n;
            return Ok(());
        }
        // Fill the accumulator, store it, keep the rest.
        let rest = n - free;
        let word = self.acc.checked_shl(free).unwrap_or(0) | (value >> rest);
        let at = self.stored;
        match self
            .buf
            .get_mut(at..)
            .and_then(|s| s.first_chunk_mut::<ACC_BYTES>())
        {
            Some(w) => *w = word.to_be_bytes(),
            None => return Err(self.full(n)),
        }
        self.stored += ACC_BYTES;
        self.acc = if rest == 0 {
            0
        } else {
            value & ((1 << rest) - 1)
        };
        self.n = rest;
        Ok(())
    }

    #[cold]
    fn full(&self, n: u32) -> BitError {
        BitError::BufferFull {
            at: self.position(),
            needed: n as usize,
            available: (self.buf.len() * 8).saturating_sub(self.position()),
        }
    }

    /// Writes an RFC 8724 §7.5.2 size prefix for `size`.
    pub fn write_size_prefix(&mut self, size: usize) -> Result<(), BitError> {
        let (v, n) = size_prefix(size)?;
        self.write(v, n)
    }

    /// Copies `n` bits starting at bit `off` of `src`. Bits past the end of `src` are zero.
    #[cfg_attr(feature = "std", inline(always))]
    pub fn copy_bits(&mut self, src: &[u8], off: usize, n: usize) -> Result<(), BitError> {
        // Hosts: up to 56 bits (a short payload, a residue) inline, more in the loop.
        // (Devices write through `write`'s one body: less flash.)
        #[cfg(feature = "std")]
        if n <= 56 {
            // (The run has no bits above the `n` it puts.)
            return match n {
                0 => Ok(()),
                _ => self.put(read_run(src, off, n), n as u32),
            };
        }
        self.copy_long(src, off, n)
    }

    /// [`BitAcc::copy_bits`] in runs of up to 56 bits.
    fn copy_long(&mut self, src: &[u8], mut off: usize, mut n: usize) -> Result<(), BitError> {
        while n > 0 {
            let take = n.min(56);
            self.write(read_run(src, off, take), take as u32)?;
            off += take;
            n -= take;
        }
        Ok(())
    }

    /// Writes zero bits up to the next multiple of `word` bits (no-op for `word` 0 or 1).
    pub fn pad_to(&mut self, word: u32) -> Result<(), BitError> {
        if word > 1 {
            let rem = (self.position() % word as usize) as u32;
            let mut n = if rem == 0 { 0 } else { word - rem };
            while n > 0 {
                let take = n.min(64);
                self.write(0, take)?;
                n -= take;
            }
        }
        Ok(())
    }

    /// Stores the bits still in the accumulator (whole bytes, the last one zero-padded) and
    /// returns the length written in bytes.
    #[cfg_attr(feature = "std", inline(always))]
    pub fn flush(&mut self) -> Result<usize, BitError> {
        let bytes = self.n.div_ceil(8) as usize;
        if bytes == 0 {
            return Ok(self.stored);
        }
        let word = self.acc << (ACC - self.n);
        let (at, end) = (self.stored, self.stored + bytes);
        // Hosts: one 8-byte read-modify-write that puts the new bytes in place and stores the
        // others back as they were: from `at` when the buffer has 8 bytes there, else ending
        // at `end` when 8 bytes precede it. Devices, and a short buffer: byte by byte.
        #[cfg(feature = "std")]
        {
            let keep = u64::MAX.checked_shr(8 * bytes as u32).unwrap_or(0);
            if let Some(t) = self
                .buf
                .get_mut(at..)
                .and_then(|t| t.first_chunk_mut::<8>())
            {
                let old = u64::from_be_bytes(*t) & keep;
                *t = (old | (word & !keep)).to_be_bytes();
                return Ok(end);
            }
            if let Some(t) = end
                .checked_sub(8)
                .and_then(|i| self.buf.get_mut(i..end))
                .and_then(|t| t.first_chunk_mut::<8>())
            {
                let low = u64::MAX >> (64 - 8 * bytes as u32);
                let old = u64::from_be_bytes(*t) & !low;
                *t = (old | (word >> (64 - 8 * bytes as u32))).to_be_bytes();
                return Ok(end);
            }
        }
        let Some(dst) = self.buf.get_mut(at..end) else {
            return Err(self.full(0));
        };
        // (One by one from the top of the word: a copy of a length known only at run time
        // would link `memcpy` on devices.)
        let mut word = word;
        for d in dst {
            *d = (word >> (ACC - 8)) as u8;
            word <<= 8;
        }
        Ok(end)
    }
}

/// `take` bits (1 to 56) of `src` from bit `off`, right-aligned, zero past its end. With the
/// shift within the first byte they lie in one word: hosts read it with `word_at` (whole
/// inside `src`, zero-padded at its end); devices through `get_bits`, which they link anyway.
#[inline(always)]
fn read_run(src: &[u8], off: usize, take: usize) -> u64 {
    #[cfg(feature = "std")]
    return (word_at(src, off / 8) << (off % 8)) >> (64 - take);
    #[cfg(not(feature = "std"))]
    return get_bits(src, off, take as u32);
}

/// A writer of MSB-first bit strings into a caller-owned byte slice. Every bit it writes is set
/// or cleared, so the buffer need not be zeroed first.
#[derive(Debug)]
pub struct BitWriter<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> BitWriter<'a> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bits written so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bits of room left.
    pub fn remaining(&self) -> usize {
        self.buf.len() * 8 - self.pos
    }

    /// Moves the cursor to bit `pos` (which must lie within the buffer).
    pub fn seek(&mut self, pos: usize) -> Result<(), BitError> {
        if pos > self.buf.len() * 8 {
            return Err(BitError::BufferFull {
                at: pos,
                needed: 0,
                available: 0,
            });
        }
        self.pos = pos;
        Ok(())
    }

    fn check(&self, n: usize) -> Result<(), BitError> {
        if n > self.remaining() {
            Err(BitError::BufferFull {
                at: self.pos,
                needed: n,
                available: self.remaining(),
            })
        } else {
            Ok(())
        }
    }

    /// Writes the `n` (at most 64) low bits of `value`, most significant first.
    #[inline]
    pub fn write(&mut self, value: u64, n: u32) -> Result<(), BitError> {
        if n > 64 {
            return Err(BitError::TooWide(n));
        }
        self.check(n as usize)?;
        let shift = (self.pos % 8) as u32;
        // Fast path: one read-modify-write of the 8 bytes from the first one touched.
        if n > 0 && n + shift <= 64 {
            if let Some(w) = self
                .buf
                .get_mut(self.pos / 8..)
                .and_then(|s| s.first_chunk_mut::<8>())
            {
                let mask = (u64::MAX << (64 - n)) >> shift;
                let bits = (value << (64 - n)) >> shift;
                *w = ((u64::from_be_bytes(*w) & !mask) | bits).to_be_bytes();
                self.pos += n as usize;
                return Ok(());
            }
        }
        self.write_slow(value, n);
        Ok(())
    }

    /// [`BitWriter::write`] byte by byte, once the bounds are checked.
    fn write_slow(&mut self, value: u64, n: u32) {
        let mut left = n;
        while left > 0 {
            let idx = self.pos / 8;
            let bit = (self.pos % 8) as u32;
            let room = 8 - bit;
            let take = room.min(left);
            let chunk = ((value >> (left - take)) & ((1u64 << take) - 1)) as u8;
            let shift = room - take;
            let mask = (((1u16 << take) - 1) as u8) << shift;
            if let Some(b) = self.buf.get_mut(idx) {
                *b = (*b & !mask) | (chunk << shift);
            }
            self.pos += take as usize;
            left -= take;
        }
    }

    /// Copies `n` bits starting at bit `off` of `src`. Bits past the end of `src` are zero.
    pub fn copy_bits(&mut self, src: &[u8], off: usize, n: usize) -> Result<(), BitError> {
        self.check(n)?;
        // A short run (a residue, a small payload): one read and one write.
        if n <= 56 {
            return self.write(get_bits(src, off, n as u32), n as u32);
        }
        if self.pos % 8 == 0 && off % 8 == 0 {
            let whole = n / 8;
            let start = self.pos / 8;
            let from = off / 8;
            let avail = src.len().saturating_sub(from).min(whole);
            if let (Some(dst), Some(s)) = (
                self.buf.get_mut(start..start + avail),
                src.get(from..from + avail),
            ) {
                dst.copy_from_slice(s);
                self.pos += avail * 8;
                let rest = n - avail * 8;
                return self.copy_bits_slow(src, off + avail * 8, rest);
            }
        }
        self.copy_bits_slow(src, off, n)
    }

    fn copy_bits_slow(&mut self, src: &[u8], mut off: usize, mut n: usize) -> Result<(), BitError> {
        while n > 0 {
            let take = n.min(56) as u32;
            self.write(get_bits(src, off, take), take)?;
            off += take as usize;
            n -= take as usize;
        }
        Ok(())
    }

    /// Writes whole bytes (at any bit position).
    pub fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), BitError> {
        self.copy_bits(bytes, 0, bytes.len() * 8)
    }

    /// Writes an RFC 8724 §7.5.2 size prefix for `size`.
    pub fn write_size_prefix(&mut self, size: usize) -> Result<(), BitError> {
        let (v, n) = size_prefix(size)?;
        self.write(v, n)
    }

    /// Writes zero bits up to the next multiple of `word` bits (no-op for `word` 0 or 1).
    pub fn pad_to(&mut self, word: u32) -> Result<(), BitError> {
        if word > 1 {
            let rem = (self.pos % word as usize) as u32;
            if rem != 0 {
                let mut n = word - rem;
                while n > 0 {
                    let take = n.min(64);
                    self.write(0, take)?;
                    n -= take;
                }
            }
        }
        Ok(())
    }

    /// Bytes touched so far (the bit length rounded up).
    pub fn byte_len(&self) -> usize {
        self.pos.div_ceil(8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `copy_into` sets exactly the bits a bit-by-bit copy sets, reads zeros past the end of
    /// the source, keeps every other bit, and refuses a copy past the end of `dst`.
    #[test]
    fn copy_into_is_a_bit_by_bit_copy() {
        let src: std::vec::Vec<u8> = (0..9u8).map(|i| i.wrapping_mul(0x9D) ^ 0x3C).collect();
        let bit = |d: &[u8], i: usize| d.get(i / 8).map_or(0, |b| (b >> (7 - i % 8)) & 1);
        for at in 0..20 {
            for off in [0, 1, 5, 8, 13, 40, 67, 72, 75] {
                for n in 0..=90 {
                    let mut dst = [0xA5u8; 12];
                    let r = copy_into(&mut dst, at, &src, off, n);
                    if at + n > dst.len() * 8 {
                        assert_eq!(r, None, "at {at} off {off} n {n}");
                        continue;
                    }
                    assert_eq!(r, Some(()), "at {at} off {off} n {n}");
                    for i in 0..dst.len() * 8 {
                        let want = if (at..at + n).contains(&i) {
                            bit(&src, off + i - at)
                        } else {
                            bit(&[0xA5; 12], i)
                        };
                        assert_eq!(bit(&dst, i), want, "at {at} off {off} n {n} bit {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn word_at_pads_with_zeros_at_every_length_and_offset() {
        // Every slice of 0..=20 bytes, every start 0..=len+2: the 8 bytes from there, zero past
        // the end, as a byte-by-byte build gives them.
        let bytes: [u8; 20] = core::array::from_fn(|i| 0x11u8.wrapping_mul(i as u8 + 1) | 0x80);
        for len in 0..=bytes.len() {
            let data = &bytes[..len];
            for at in 0..=len + 2 {
                let mut want = 0u64;
                for i in 0..8 {
                    want = (want << 8) | u64::from(data.get(at + i).copied().unwrap_or(0));
                }
                assert_eq!(word_at(data, at), want, "len {len} at {at}");
            }
        }
        assert_eq!(word_at(&[], usize::MAX), 0);
    }

    #[test]
    fn size_prefix_table_of_rfc8724() {
        // V-8724-1 in the shared RFC examples.
        let cases: &[(usize, u64, u32)] = &[
            (0, 0x0, 4),
            (1, 0x1, 4),
            (14, 0xE, 4),
            (15, 0xF0F, 12),
            (16, 0xF10, 12),
            (254, 0xFFE, 12),
            (255, 0xFFF00FF, 28),
            (256, 0xFFF0100, 28),
            (1280, 0xFFF0500, 28),
        ];
        for &(size, value, bits) in cases {
            assert_eq!(size_prefix(size).unwrap(), (value, bits), "size {size}");
            assert_eq!(size_prefix_len(size), bits);
            let mut buf = [0u8; 4];
            let mut w = BitWriter::new(&mut buf);
            w.write_size_prefix(size).unwrap();
            assert_eq!(w.position(), bits as usize);
            let mut r = BitReader::with_bit_len(&buf, bits as usize);
            assert_eq!(r.read_size_prefix().unwrap(), size);
            assert_eq!(r.remaining(), 0);
        }
        assert_eq!(size_prefix(65536), Err(BitError::SizeTooLarge(65536)));
    }

    #[test]
    fn escape_1111_11111111_is_not_255_in_12_bits() {
        // 1111 11111111 followed by nothing: the 16-bit size is missing.
        let buf = [0xFF, 0xF0];
        let mut r = BitReader::with_bit_len(&buf, 12);
        assert!(matches!(
            r.read_size_prefix(),
            Err(BitError::Truncated {
                at: 12,
                needed: 16,
                ..
            })
        ));
        // A truncated 4-bit prefix.
        let mut r = BitReader::with_bit_len(&buf, 3);
        assert!(r.read_size_prefix().is_err());
    }

    #[test]
    fn read_write_across_byte_boundaries() {
        let mut buf = [0xAAu8; 8];
        let mut w = BitWriter::new(&mut buf);
        w.write(0b101, 3).unwrap();
        w.write(0x1234, 13).unwrap(); // crosses two boundaries
        w.write(0xFFFF_FFFF, 32).unwrap();
        w.write(0, 0).unwrap();
        w.write(1, 1).unwrap();
        assert_eq!(w.position(), 49);
        let mut r = BitReader::new(&buf);
        assert_eq!(r.read(3).unwrap(), 0b101);
        assert_eq!(r.read(13).unwrap(), 0x1234);
        assert_eq!(r.read(32).unwrap(), 0xFFFF_FFFF);
        assert_eq!(r.read(0).unwrap(), 0);
        assert_eq!(r.read(1).unwrap(), 1);
    }

    #[test]
    fn full_64_bit_values_and_limits() {
        let mut buf = [0u8; 9];
        let mut w = BitWriter::new(&mut buf);
        w.write(1, 4).unwrap();
        w.write(0xDEAD_BEEF_0123_4567, 64).unwrap();
        assert_eq!(w.write(0, 65), Err(BitError::TooWide(65)));
        assert!(matches!(w.write(0, 5), Err(BitError::BufferFull { .. })));
        let mut r = BitReader::new(&buf);
        r.read(4).unwrap();
        assert_eq!(r.read(64).unwrap(), 0xDEAD_BEEF_0123_4567);
        assert!(matches!(r.read(5), Err(BitError::Truncated { at: 68, .. })));
    }

    #[test]
    fn copy_bits_unaligned_both_sides() {
        let src = [0x12, 0x34, 0x56, 0x78, 0x9A];
        for shift in 0..8 {
            let mut out = [0xFFu8; 8];
            let mut w = BitWriter::new(&mut out);
            w.write(0, shift).unwrap();
            w.copy_bits(&src, 4, 36).unwrap();
            let got = get_bits(&out, shift as usize, 36);
            assert_eq!(got, get_bits(&src, 4, 36), "shift {shift}");
        }
    }

    #[test]
    fn word_paths_agree_with_the_bytewise_ones() {
        // Every offset and width near both ends of a buffer: the 8-byte fast paths must give
        // what the byte-by-byte paths give, and leave the other bits alone.
        let data: [u8; 19] = core::array::from_fn(|i| (i as u8).wrapping_mul(167) ^ 0x5A);
        for off in 0..data.len() * 8 + 4 {
            for n in 0..=64u32 {
                assert_eq!(
                    get_bits(&data, off, n),
                    get_bits_slow(&data, off, n),
                    "get_bits at {off}, {n} bits"
                );
                let value = 0xF0E1_D2C3_B4A5_9687u64.rotate_left(off as u32);
                let (mut a, mut b) = (data, data);
                let mut wa = BitWriter::new(&mut a);
                let mut wb = BitWriter::new(&mut b);
                let (ra, rb) = (wa.seek(off), wb.seek(off));
                assert_eq!(ra, rb);
                if ra.is_err() {
                    continue;
                }
                let fits = wb.check(n as usize).is_ok();
                assert_eq!(wa.write(value, n).is_ok(), fits, "write at {off}, {n} bits");
                if fits {
                    wb.write_slow(value, n);
                }
                assert_eq!(wa.position(), wb.position());
                assert_eq!(a, b, "write at {off}, {n} bits");
            }
        }
    }

    #[test]
    fn pad_to_word() {
        let mut buf = [0xFFu8; 4];
        let mut w = BitWriter::new(&mut buf);
        w.write(1, 1).unwrap();
        w.pad_to(8).unwrap();
        assert_eq!(w.position(), 8);
        w.pad_to(8).unwrap();
        assert_eq!(w.position(), 8);
        w.write(1, 3).unwrap();
        w.pad_to(16).unwrap();
        assert_eq!(w.position(), 16);
        assert_eq!(&buf[..2], &[0x80, 0x20]);
    }

    /// The accumulating writer writes what the read-modify-write writer writes, for runs of
    /// every width at every alignment, copies from both alignments, and padding, and stores
    /// nothing past its last byte.
    #[test]
    fn accumulator_agrees_with_the_writer() {
        let src: std::vec::Vec<u8> = (0..200u32).map(|i| (i * 37 + 11) as u8).collect();
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for _ in 0..500 {
            let mut a = [0xA5u8; 700];
            let mut b = [0u8; 700];
            let mut acc = BitAcc::new(&mut a);
            let mut wr = BitWriter::new(&mut b);
            for _ in 0..next(12) {
                match next(3) {
                    0 => {
                        let n = next(65) as u32;
                        let v = next(u64::MAX);
                        acc.write(v, n).unwrap();
                        let v = if n == 64 { v } else { v & ((1u64 << n) - 1) };
                        wr.write(v, n).unwrap();
                    }
                    1 => {
                        let (off, n) = (next(400) as usize, next(400) as usize);
                        acc.copy_bits(&src, off, n).unwrap();
                        wr.copy_bits(&src, off, n).unwrap();
                    }
                    _ => {
                        let off = next(100) as usize * 8;
                        let n = next(60) as usize * 8;
                        acc.copy_bits(&src, off, n).unwrap();
                        wr.copy_bits(&src, off, n).unwrap();
                    }
                }
                assert_eq!(acc.position(), wr.position());
            }
            acc.pad_to(8).unwrap();
            wr.pad_to(8).unwrap();
            let len = acc.flush().unwrap();
            assert_eq!(len, wr.byte_len());
            assert_eq!(a[..len], b[..len]);
            assert!(
                a[len..].iter().all(|&x| x == 0xA5),
                "bytes past the end untouched"
            );
        }
        // Flush in every buffer shape: 8 bytes from the last store, 8 bytes before the end
        // only, fewer than 8 in all; bytes past the end keep their values.
        for bits in 1..=80u32 {
            let len = bits.div_ceil(8) as usize;
            for spare in 0..10 {
                let mut a = std::vec![0xA5u8; len + spare];
                let mut b = std::vec![0u8; len];
                let mut acc = BitAcc::new(&mut a);
                let mut wr = BitWriter::new(&mut b);
                let v = next(u64::MAX);
                let (hi, lo) = (bits.saturating_sub(64), bits.min(64));
                acc.write(v, hi).unwrap();
                acc.write(v.rotate_left(7), lo).unwrap();
                wr.write(v & ((1u64 << hi) - 1), hi).unwrap();
                let lo_v = v.rotate_left(7);
                wr.write(
                    if lo == 64 {
                        lo_v
                    } else {
                        lo_v & ((1u64 << lo) - 1)
                    },
                    lo,
                )
                .unwrap();
                assert_eq!(acc.flush().unwrap(), len, "{bits} bits");
                assert_eq!(a[..len], b[..], "{bits} bits, {spare} spare");
                assert!(
                    a[len..].iter().all(|&x| x == 0xA5),
                    "{bits} bits, {spare} spare"
                );
            }
        }
        // A full buffer is an error, not a panic.
        let mut small = [0u8; 3];
        let mut acc = BitAcc::new(&mut small);
        assert!(acc.write(u64::MAX, 64).is_err());
        acc.write(0x5, 20).unwrap();
        assert_eq!(acc.flush().unwrap(), 3);
        assert!(BitAcc::new(&mut small[..2]).copy_bits(&src, 3, 64).is_err());
    }
}
