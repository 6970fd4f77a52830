//! Zero-copy parsing of the headers SCHC compresses: IPv6, UDP and CoAP.
//!
//! [`Headers::parse`] walks a packet once and records where each layer starts, the CoAP
//! token length and the options; a field is then found as a bit range ([`FieldRef`]) of the
//! caller's buffer, named by its SCHC [`Fid`]: source and destination are mapped to Dev and
//! App by the packet's [`Direction`]. It parses as many layers as are
//! well formed (IPv6, then UDP when Next Header is 17, then CoAP when the UDP payload is a
//! well-formed CoAP message); whatever follows the deepest layer a rule describes is payload.
//! Nothing is copied and nothing can panic.
//!
//! This module owns the wire layouts; it knows nothing about rules.

use thiserror::Error;

use crate::rule::fid::HEADER_PLACES;
use crate::rule::{Direction, Fid, Layer, HEADER_FIELDS};

/// Length of the IPv6 header in bytes.
pub const IPV6_HEADER_LEN: usize = 40;
/// Length of the UDP header in bytes.
pub const UDP_HEADER_LEN: usize = 8;
/// The most CoAP options one packet may carry for compression. A packet with more is treated
/// as carrying no parsable CoAP header (rules with CoAP fields do not match it).
pub const MAX_OPTIONS: usize = 32;

/// Number of distinct field slots of a packet (see [`Headers::field_slot`]): the header fields
/// and up to [`MAX_OPTIONS`] options.
pub const FIELD_SLOTS: usize = HEADER_FIELDS + MAX_OPTIONS;

/// A field's place in the packet: `len` bits from bit `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FieldRef {
    /// Bit offset from the start of the packet.
    pub off: u32,
    /// Length in bits.
    pub len: u32,
}

impl FieldRef {
    const fn new(off: u32, len: u32) -> Self {
        Self { off, len }
    }

    /// The byte range of a byte-aligned field.
    pub fn bytes(self) -> core::ops::Range<usize> {
        let s = self.off as usize / 8;
        s..s + self.len as usize / 8
    }
}

/// One CoAP option instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoapOption {
    /// Option number.
    pub number: u16,
    /// Occurrence of this number in the packet (1 = first).
    pub position: u8,
    /// The option value (byte aligned).
    pub value: FieldRef,
}

/// Why the UDP payload is not a well-formed CoAP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CoapError {
    /// Fewer than 4 bytes.
    #[error("CoAP header truncated at byte {0}")]
    Truncated(usize),
    /// TKL 9 to 15 (reserved).
    #[error("reserved token length {0}")]
    ReservedTkl(u8),
    /// Option delta or length nibble 15 outside a payload marker.
    #[error("reserved option nibble 15 at byte {0}")]
    ReservedNibble(usize),
    /// An option runs past the end of the message.
    #[error("option at byte {0} runs past the end of the message")]
    OptionTruncated(usize),
    /// The option number exceeds 65535.
    #[error("option number overflows 16 bits at byte {0}")]
    OptionNumber(usize),
    /// A payload marker with nothing after it (RFC 7252 §3).
    #[error("payload marker at byte {0} with an empty payload")]
    EmptyPayload(usize),
    /// More options than [`MAX_OPTIONS`].
    #[error("more than {MAX_OPTIONS} options")]
    TooManyOptions,
}

/// The parsed headers of one packet. Header fields are not stored: each is found from its
/// layer's start and a fixed place (`Headers::place`), so parsing records only where
/// the layers start and the CoAP options.
#[derive(Debug, Clone)]
pub struct Headers<'p> {
    data: &'p [u8],
    direction: Direction,
    first: Layer,
    depth: Option<Layer>,
    /// Byte offsets of the IPv6, UDP and CoAP headers (meaningful for the parsed layers; the
    /// fourth entry pads the table to a power of two, so a masked index needs no check).
    start: [usize; 4],
    tkl: u8,
    /// Where the CoAP options start (byte offset) and how many there are: they are walked
    /// again when asked for ([`Headers::options`]), not stored.
    options_at: usize,
    n_options: u8,
    coap_end: usize,
    coap_error: Option<CoapError>,
    /// For plans: the parsed layers, bit `l - 1` for `Layer` `l` (`Layer as u8`).
    present: u8,
    /// For plans: [`Headers::field_count`] up to each layer, index 0 for none, else
    /// `Layer as u8`.
    counts: [u8; 4],
    /// Which lengths hold the value decompression computes ([`LENGTH_IPV6`],
    /// [`LENGTH_UDP`]), when [`Headers::parse_with`] checked them.
    lengths: u8,
}

/// [`Headers::lengths_hold`]: the IPv6 payload length is the length after the IPv6 header.
pub(crate) const LENGTH_IPV6: u8 = 1;
/// [`Headers::lengths_hold`]: the UDP length is the length from the UDP header on.
pub(crate) const LENGTH_UDP: u8 = 2;

impl<'p> Headers<'p> {
    /// Parses `data`, an IPv6 packet, going `direction`.
    pub fn parse(data: &'p [u8], direction: Direction) -> Self {
        Self::parse_from(data, direction, Layer::Ipv6)
    }

    /// Parses `data` whose first header is `first`: `Layer::Ipv6` for IPv6 packets,
    /// `Layer::Udp` for a UDP datagram, `Layer::Coap` for a bare CoAP message (as in OSCORE
    /// inner compression or SCHC between CoAP endpoints).
    pub fn parse_from(data: &'p [u8], direction: Direction, first: Layer) -> Self {
        let mut h = Self::unparsed(data, direction, first);
        h.parse_in_place();
        h
    }

    /// The headers of `data` before [`Headers::parse_in_place`]: no layer. Built in the caller's frame
    /// and parsed in place, the (option table sized) struct is never copied.
    #[inline(always)]
    pub(crate) fn unparsed(data: &'p [u8], direction: Direction, first: Layer) -> Self {
        Headers {
            data,
            direction,
            first,
            depth: None,
            start: [0; 4],
            tkl: 0,
            options_at: 0,
            n_options: 0,
            coap_end: data.len(),
            coap_error: None,
            present: 0,
            counts: [0; 4],
            lengths: 0,
        }
    }

    /// Parses the packet of [`Headers::unparsed`] in place.
    // (Not inlined into the device's compress: 16 B less flash there, measured on
    // `nostd-check`.)
    #[inline(never)]
    pub(crate) fn parse_in_place(&mut self) {
        self.parse_with::<false>();
    }

    /// [`Headers::parse_in_place`]; with `PLANS`, also what matching plans ask of every
    /// rule, once: the IPv6 payload length and the UDP length of the layers it parses
    /// against those decompression computes ([`Headers::lengths_hold`]), the parsed layers as
    /// bits ([`Headers::present`]) and the field count up to each ([`Headers::counted`]).
    /// Devices, which have no plans, do not link these.
    pub(crate) fn parse_with<const PLANS: bool>(&mut self) {
        self.parse_layers::<PLANS>();
        let Some(depth) = self.depth.filter(|_| PLANS) else {
            return;
        };
        // The layers from the first to the deepest.
        let (first, depth) = (self.first as u8, depth as u8);
        self.present = ((1u8 << depth) - 1) & !((1u8 << (first - 1)) - 1);
        // (Up to a layer past the deepest too: a plan checks its layers first. Each fits a
        // byte: 10 + 4 + 6 + `MAX_OPTIONS` at most.)
        const _: () = assert!(10 + 4 + 6 + MAX_OPTIONS <= u8::MAX as usize);
        self.counts = [None, Some(Layer::Ipv6), Some(Layer::Udp), Some(Layer::Coap)]
            .map(|l| self.field_count(l) as u8);
    }

    /// [`Headers::parse_with`]: the layers, and with `PLANS` their lengths.
    fn parse_layers<const PLANS: bool>(&mut self) {
        let (data, first) = (self.data, self.first);
        let h = self;
        let mut next = 0usize;
        let len_at = |i: usize| {
            data.get(i..)
                .and_then(|b| b.first_chunk::<2>())
                .map_or(usize::MAX, |b| usize::from(u16::from_be_bytes(*b)))
        };
        if first == Layer::Ipv6 {
            if data.len() < IPV6_HEADER_LEN || data.first().map(|b| b >> 4) != Some(6) {
                return;
            }
            h.depth = Some(Layer::Ipv6);
            if PLANS && len_at(4) == data.len() - IPV6_HEADER_LEN {
                h.lengths |= LENGTH_IPV6;
            }
            if data.get(6) != Some(&17) {
                return;
            }
            next = IPV6_HEADER_LEN;
        }
        if first <= Layer::Udp {
            if data.len() < next + UDP_HEADER_LEN {
                return;
            }
            h.start[1] = next;
            h.depth = Some(Layer::Udp);
            if PLANS && len_at(next + 4) == data.len() - next {
                h.lengths |= LENGTH_UDP;
            }
            next += UDP_HEADER_LEN;
            if data.len() == next {
                return;
            }
        }
        match parse_coap(data, next) {
            Ok((tkl, end, n)) => {
                h.options_at = next + 4 + usize::from(tkl);
                h.n_options = n;
                h.start[2] = next;
                h.tkl = tkl;
                h.coap_end = end;
                h.depth = Some(Layer::Coap);
            }
            Err(e) => {
                h.coap_error = Some(e);
            }
        }
    }

    /// Which lengths hold the value decompression computes ([`LENGTH_IPV6`], [`LENGTH_UDP`];
    /// each only when its layer was parsed), when [`Headers::parse_with`] checked them.
    #[inline(always)]
    pub(crate) fn lengths_hold(&self) -> u8 {
        self.lengths
    }

    /// The parsed layers as bits, `1 << (l as u8 - 1)` for each parsed `Layer` `l`, when
    /// [`Headers::parse_with`] recorded them for plans (0 otherwise).
    #[inline(always)]
    pub(crate) fn present(&self) -> u8 {
        self.present
    }

    /// The first layer of the packet.
    pub fn first(&self) -> Layer {
        self.first
    }

    /// The CoAP token length (TKL), 0 when CoAP was not parsed.
    #[inline(always)]
    pub fn tkl(&self) -> u8 {
        self.tkl
    }

    /// Byte offset of the UDP header (when parsed).
    pub fn udp_start(&self) -> usize {
        self.start[1]
    }

    /// The packet.
    #[inline]
    pub fn data(&self) -> &'p [u8] {
        self.data
    }

    /// The direction the packet was parsed for.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The deepest layer parsed (`None` when the packet is not IPv6).
    #[inline]
    pub fn depth(&self) -> Option<Layer> {
        self.depth
    }

    /// Why the UDP payload was not parsed as CoAP, if it was not.
    pub fn coap_error(&self) -> Option<CoapError> {
        self.coap_error
    }

    /// Whether `layer` was parsed.
    #[inline]
    pub fn has(&self, layer: Layer) -> bool {
        layer >= self.first && self.depth.is_some_and(|d| d >= layer)
    }

    /// Byte offset where the payload after `layer` starts (0 for no layer).
    #[inline]
    pub fn layer_end(&self, layer: Option<Layer>) -> usize {
        match layer {
            None => 0,
            Some(Layer::Ipv6) => IPV6_HEADER_LEN,
            Some(Layer::Udp) => self.start[1] + UDP_HEADER_LEN,
            Some(Layer::Coap) => self.coap_end,
        }
    }

    /// Number of fields in the layers from the first up to and including `layer` (a
    /// zero-length token, TKL 0, is not counted: a rule need not describe it).
    #[inline]
    pub fn field_count(&self, layer: Option<Layer>) -> usize {
        let has = |l: Layer| l >= self.first && Some(l) <= layer;
        let mut n = 0;
        if has(Layer::Ipv6) {
            n += 10;
        }
        if has(Layer::Udp) {
            n += 4;
        }
        if has(Layer::Coap) {
            n += 5 + usize::from(self.tkl > 0) + usize::from(self.n_options);
        }
        n
    }

    /// [`Headers::field_count`] up to a parsed `layer`, as [`Headers::parse_with`] counted
    /// it for plans (0 otherwise).
    #[inline(always)]
    pub(crate) fn counted(&self, layer: Option<Layer>) -> usize {
        let i = layer.map_or(0, |l| l as usize);
        usize::from(self.counts.get(i).copied().unwrap_or(0))
    }

    /// The CoAP options, in packet order (none when CoAP was not parsed).
    pub fn options(&self) -> CoapOptions<'p> {
        CoapOptions {
            data: self.data.get(..self.coap_end).unwrap_or(&[]),
            walk: Walk::new(self.options_at),
            left: if self.has(Layer::Coap) {
                self.n_options
            } else {
                0
            },
        }
    }

    /// The byte offset of layer `layer`'s header (0 IPv6, 1 UDP, 2 CoAP); 0 for a layer that
    /// was not parsed.
    #[inline(always)]
    pub(crate) fn layer_start(&self, layer: u8) -> usize {
        // (In bounds: the mask keeps the index below 4, so the check folds away.)
        self.start.get(usize::from(layer) & 3).copied().unwrap_or(0)
    }

    /// Where header field `i` would be, from its layer's start, whether or not the layer was
    /// parsed (a layer that was not starts at bit 0): for a matcher that checks the layers
    /// after the fields.
    #[inline(always)]
    pub(crate) fn place(&self, i: usize) -> FieldRef {
        let Some(p) = HEADER_PLACES.get(i) else {
            return FieldRef::default();
        };
        let len = if p.len == 0 {
            u32::from(self.tkl) * 8
        } else {
            u32::from(p.len)
        };
        let base = (self.layer_start(p.layer) * 8) as u32;
        FieldRef::new(base + u32::from(p.offset(self.direction)), len)
    }

    /// The value of option `number` at position `fp`, if the packet has it.
    #[inline(always)]
    pub(crate) fn option_field(&self, number: u16, fp: u8) -> Option<FieldRef> {
        // The walk of `CoapOptions`, without the iterator: it ends where parsing found the
        // options end, and as options come in number order it stops past `number`.
        if !self.has(Layer::Coap) {
            return None;
        }
        let data = self.data.get(..self.coap_end)?;
        let mut w = Walk::new(self.options_at);
        while w.step(data) == Step::Option {
            if w.number == u32::from(number) && w.position == fp {
                return Some(w.value());
            }
            if w.number > u32::from(number) {
                return None;
            }
        }
        None
    }

    /// The field `fid` at position `fp` (1-based), if the packet has it.
    #[inline]
    pub fn field(&self, fid: Fid, fp: u8) -> Option<FieldRef> {
        self.field_slot(fid, fp).map(|(_, f)| f)
    }

    /// The field `fid` at position `fp` (1-based) and its slot, a number below
    /// [`FIELD_SLOTS`] that no other field of the packet has: the header field's index, or
    /// [`HEADER_FIELDS`] plus the option's index in packet order.
    #[inline]
    pub fn field_slot(&self, fid: Fid, fp: u8) -> Option<(usize, FieldRef)> {
        match fid {
            Fid::CoapOption(n) => {
                if !self.has(Layer::Coap) {
                    return None;
                }
                self.options()
                    .enumerate()
                    .find(|(_, o)| o.number == n && o.position == fp)
                    .map(|(i, o)| (HEADER_FIELDS + i, o.value))
            }
            other => {
                if fp != 1 || !self.has(other.layer()) {
                    return None;
                }
                let i = other.header_index()?;
                Some((i, self.place(i)))
            }
        }
    }
}

/// A walk over the CoAP options of a message: where the next option starts, and the number,
/// position and length of the option decoded last. [`Walk::step`] is the one option decoder:
/// parsing, [`Headers::option_field`] and [`CoapOptions`] all walk with it.
#[derive(Debug, Clone, Copy)]
struct Walk {
    /// Byte offset of the next option (or of the payload marker, or the end).
    i: usize,
    /// The last option's number (0 before the first).
    number: u32,
    /// The last option's position (0 before the first).
    position: u8,
    /// The last option's length in bytes (its value ends at `i`).
    len: usize,
}

impl Walk {
    /// A walk from byte `i`, before the first option.
    const fn new(i: usize) -> Self {
        Walk {
            i,
            number: 0,
            position: 0,
            len: 0,
        }
    }

    /// Decodes the option at the walk's byte and moves past it ([`Step::Option`]); at the
    /// payload marker or the end of `data`, or at a malformed option, the walk stays there.
    #[cfg_attr(feature = "std", inline(always))]
    fn step(&mut self, data: &[u8]) -> Step {
        let at = self.i;
        let b = match data.get(at) {
            None | Some(0xFF) => return Step::End,
            Some(&b) => b,
        };
        // The delta's and then the length's nibble and extension bytes (one loop: one copy
        // of the code), each checked before the next is read: 0 to 12 as they are; 13, one
        // byte plus 13; 14, two bytes (big endian) plus 269 (13 + 256); 15 is reserved.
        let mut i = at + 1;
        let mut delta;
        let (mut len, mut shift) = (0, 4);
        loop {
            let mut v = u32::from(b >> shift & 0x0F);
            if v >= 13 {
                if v == 15 {
                    return Step::Nibble;
                }
                let mut ext = 0;
                for _ in 12..v {
                    let Some(&e) = data.get(i) else {
                        return Step::Truncated;
                    };
                    ext = ext << 8 | u32::from(e);
                    i += 1;
                }
                v = ext + 13 + ((v - 13) << 8);
            }
            // (The delta first, then the length.)
            (delta, len) = (len, v);
            if shift == 0 {
                break;
            }
            shift = 0;
        }
        let len = len as usize;
        let number = self.number + delta;
        if number > u32::from(u16::MAX) {
            return Step::Number;
        }
        if i + len > data.len() {
            return Step::Truncated;
        }
        // The option before has the same number exactly when the delta is 0 (a first
        // option's position is 0 before it: 1 either way).
        self.position = if delta == 0 {
            self.position.saturating_add(1)
        } else {
            1
        };
        self.number = number;
        self.len = len;
        self.i = i + len;
        Step::Option
    }

    /// The last option decoded.
    fn option(&self) -> CoapOption {
        CoapOption {
            // (At most `u16::MAX`: `step` checked it.)
            number: self.number as u16,
            position: self.position,
            value: self.value(),
        }
    }

    /// The last option's value.
    fn value(&self) -> FieldRef {
        // (`len` is at most `i`: both 0, or `i` moved past the value.)
        FieldRef::new(((self.i - self.len) * 8) as u32, (self.len * 8) as u32)
    }
}

/// What [`Walk::step`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// An option, now the walk's last.
    Option,
    /// The payload marker or the end of the message.
    End,
    /// A reserved nibble ([`CoapError::ReservedNibble`]).
    Nibble,
    /// An option running past the end ([`CoapError::OptionTruncated`]).
    Truncated,
    /// An option number past 16 bits ([`CoapError::OptionNumber`]).
    Number,
}

/// The CoAP options of a parsed packet, in packet order ([`Headers::options`]): decoded
/// again from the packet, which parsing checked.
#[derive(Debug, Clone)]
pub struct CoapOptions<'p> {
    data: &'p [u8],
    walk: Walk,
    left: u8,
}

impl Iterator for CoapOptions<'_> {
    type Item = CoapOption;

    #[inline]
    fn next(&mut self) -> Option<CoapOption> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        if self.walk.step(self.data) == Step::Option {
            Some(self.walk.option())
        } else {
            self.left = 0;
            None
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.left)))
    }
}

/// Parses a CoAP message starting at byte `start`; returns the TKL, the byte offset where
/// the payload starts (after the payload marker, or the end when there is no payload), and
/// the number of options.
#[cfg_attr(feature = "std", inline(always))]
fn parse_coap(data: &[u8], start: usize) -> Result<(u8, usize, u8), CoapError> {
    let first = *data.get(start).ok_or(CoapError::Truncated(start))?;
    if data.len() < start + 4 {
        return Err(CoapError::Truncated(data.len()));
    }
    let tkl = first & 0x0F;
    if tkl > 8 {
        return Err(CoapError::ReservedTkl(tkl));
    }
    let mut w = Walk::new(start + 4 + tkl as usize);
    if w.i > data.len() {
        return Err(CoapError::Truncated(data.len()));
    }
    let mut n = 0u8;
    loop {
        let error = match w.step(data) {
            Step::Option if usize::from(n) == MAX_OPTIONS => CoapError::TooManyOptions,
            Step::Option => {
                n += 1;
                continue;
            }
            Step::End => break,
            // (A malformed option leaves the walk at its start.)
            Step::Nibble => CoapError::ReservedNibble(w.i),
            Step::Truncated => CoapError::OptionTruncated(w.i),
            Step::Number => CoapError::OptionNumber(w.i),
        };
        return Err(error);
    }
    let i = w.i;
    match data.get(i) {
        None => Ok((tkl, data.len(), n)),
        Some(_) if i + 1 >= data.len() => Err(CoapError::EmptyPayload(i)),
        Some(_) => Ok((tkl, i + 1, n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> std::vec::Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The option decoder and CoAP parser before the walk was shared (`Walk::step`), kept to
    /// check that the new one finds the same options and reports the same errors.
    mod reference {
        fn option_ext(
            data: &[u8],
            nibble: u8,
            i: &mut usize,
            at: usize,
        ) -> Result<u32, super::CoapError> {
            match nibble {
                0..=12 => Ok(u32::from(nibble)),
                13 => {
                    let b = *data.get(*i).ok_or(super::CoapError::OptionTruncated(at))?;
                    *i += 1;
                    Ok(u32::from(b) + 13)
                }
                14 => {
                    let hi = *data.get(*i).ok_or(super::CoapError::OptionTruncated(at))?;
                    let lo = *data
                        .get(*i + 1)
                        .ok_or(super::CoapError::OptionTruncated(at))?;
                    *i += 2;
                    Ok(u32::from(u16::from_be_bytes([hi, lo])) + 269)
                }
                _ => Err(super::CoapError::ReservedNibble(at)),
            }
        }

        fn next_option(
            data: &[u8],
            i: &mut usize,
            number: &mut u32,
            last: &mut Option<u8>,
        ) -> Result<Option<super::CoapOption>, super::CoapError> {
            let at = *i;
            let b = match data.get(at) {
                None | Some(0xFF) => return Ok(None),
                Some(&b) => b,
            };
            *i += 1;
            let delta = option_ext(data, b >> 4, i, at)?;
            let len = option_ext(data, b & 0x0F, i, at)? as usize;
            *number += delta;
            let num = u16::try_from(*number).map_err(|_| super::CoapError::OptionNumber(at))?;
            if *i + len > data.len() {
                return Err(super::CoapError::OptionTruncated(at));
            }
            // The option before has the same number exactly when the delta is 0.
            let position = match *last {
                Some(p) if delta == 0 => p.saturating_add(1),
                _ => 1,
            };
            *last = Some(position);
            let value = super::FieldRef::new((*i * 8) as u32, (len * 8) as u32);
            *i += len;
            Ok(Some(super::CoapOption {
                number: num,
                position,
                value,
            }))
        }

        pub(super) fn parse_coap(
            data: &[u8],
            start: usize,
        ) -> Result<(u8, usize, u8), super::CoapError> {
            let first = *data.get(start).ok_or(super::CoapError::Truncated(start))?;
            if data.len() < start + 4 {
                return Err(super::CoapError::Truncated(data.len()));
            }
            let tkl = first & 0x0F;
            if tkl > 8 {
                return Err(super::CoapError::ReservedTkl(tkl));
            }
            let mut i = start + 4 + tkl as usize;
            if i > data.len() {
                return Err(super::CoapError::Truncated(data.len()));
            }
            let (mut number, mut last, mut n) = (0u32, None, 0u8);
            while next_option(data, &mut i, &mut number, &mut last)?.is_some() {
                if usize::from(n) == super::MAX_OPTIONS {
                    return Err(super::CoapError::TooManyOptions);
                }
                n += 1;
            }
            match data.get(i) {
                None => Ok((tkl, data.len(), n)),
                Some(_) if i + 1 >= data.len() => Err(super::CoapError::EmptyPayload(i)),
                Some(_) => Ok((tkl, i + 1, n)),
            }
        }

        /// The options a parse found, walked as `Headers::options` did.
        pub(super) fn options(data: &[u8], at: usize, n: u8) -> std::vec::Vec<super::CoapOption> {
            let (mut i, mut number, mut last) = (at, 0, None);
            (0..n)
                .map_while(|_| next_option(data, &mut i, &mut number, &mut last).ok()?)
                .collect()
        }
    }

    /// A small deterministic generator (xorshift) for the differential test.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// A CoAP message near the edges the parser checks: TKLs up to 15, options with every
    /// nibble (extensions, reserved 15, deltas that overflow 16 bits), more options than
    /// `MAX_OPTIONS`, payload markers with and without payload, cut anywhere.
    fn near_coap(r: &mut Rng) -> std::vec::Vec<u8> {
        let tkl = if r.below(8) == 0 {
            r.below(16)
        } else {
            r.below(9)
        } as u8;
        let mut m = std::vec![0x40 | tkl, r.next() as u8, r.next() as u8, r.next() as u8];
        m.extend((0..tkl).map(|_| r.next() as u8));
        // Many options (about `MAX_OPTIONS`) mostly well formed, or a few of any kind.
        let many = r.below(6) == 0;
        let options = if many { 30 + r.below(6) } else { r.below(6) };
        let nibble = |r: &mut Rng| match r.below(if many { 400 } else { 20 }) {
            12..=14 => 13,
            15..=17 => 14,
            18 => 15,
            _ => r.below(13) as u8,
        };
        for _ in 0..options {
            let (d, l) = (nibble(r), nibble(r));
            if (d, l) == (15, 15) {
                continue;
            }
            m.push(d << 4 | l);
            for n in [d, l] {
                match n {
                    13 => m.push(r.next() as u8),
                    14 => m.extend_from_slice(&[
                        if r.below(2) == 0 {
                            0xFF
                        } else {
                            r.next() as u8 % 4
                        },
                        r.next() as u8,
                    ]),
                    _ => {}
                }
            }
            let len = match l {
                13 => usize::from(m[m.len() - 1]) + 13,
                14 => 300,
                l => usize::from(l),
            };
            m.extend((0..len.min(40)).map(|_| r.next() as u8));
        }
        if r.below(2) == 0 {
            m.push(0xFF);
            m.extend((0..r.below(3)).map(|_| r.next() as u8));
        }
        if r.below(3) == 0 {
            m.truncate(r.below(m.len() as u64 + 1) as usize);
        }
        m
    }

    #[test]
    fn the_shared_walk_parses_as_the_reference_did() {
        let mut r = Rng(0x9E37_79B9_7F4A_7C15);
        let mut seen = std::collections::BTreeMap::<&str, usize>::new();
        for _ in 0..200_000 {
            let coap = near_coap(&mut r);
            // After a few bytes of other layers, as in a packet.
            let skip = r.below(3) as usize;
            let mut data = std::vec![0u8; skip];
            data.extend_from_slice(&coap);
            let got = parse_coap(&data, skip);
            let want = reference::parse_coap(&data, skip);
            assert_eq!(got, want, "{data:02x?} from {skip}");
            *seen
                .entry(match want {
                    Ok(_) => "ok",
                    Err(CoapError::Truncated(_)) => "truncated",
                    Err(CoapError::ReservedTkl(_)) => "tkl",
                    Err(CoapError::ReservedNibble(_)) => "nibble",
                    Err(CoapError::OptionTruncated(_)) => "option truncated",
                    Err(CoapError::OptionNumber(_)) => "number",
                    Err(CoapError::EmptyPayload(_)) => "empty payload",
                    Err(CoapError::TooManyOptions) => "too many",
                })
                .or_default() += 1;
            let h = Headers::parse_from(&coap, Direction::Up, Layer::Coap);
            let want = reference::parse_coap(&coap, 0);
            assert_eq!(h.coap_error(), want.err());
            let Ok((tkl, end, n)) = want else {
                assert_eq!(h.options().count(), 0);
                assert_eq!(h.option_field(11, 1), None);
                continue;
            };
            let o = reference::options(&coap[..end], 4 + usize::from(tkl), n);
            assert_eq!(o.len(), usize::from(n));
            assert_eq!(h.options().collect::<std::vec::Vec<_>>(), o);
            for (k, x) in o.iter().enumerate() {
                let first = o
                    .iter()
                    .position(|y| (y.number, y.position) == (x.number, x.position));
                assert_eq!(first, Some(k));
                assert_eq!(h.option_field(x.number, x.position), Some(x.value));
                assert_eq!(
                    h.field_slot(Fid::CoapOption(x.number), x.position),
                    Some((HEADER_FIELDS + k, x.value))
                );
                for (number, fp) in [
                    (x.number, x.position.wrapping_add(1)),
                    (x.number, 0),
                    (x.number.wrapping_add(1), 1),
                    (x.number.wrapping_sub(1), 1),
                ] {
                    let want = o
                        .iter()
                        .find(|y| (y.number, y.position) == (number, fp))
                        .map(|y| y.value);
                    assert_eq!(h.option_field(number, fp), want);
                }
            }
        }
        // Every outcome was reached, and not rarely.
        assert_eq!(seen.len(), 8, "{seen:?}");
        assert!(seen.values().all(|&n| n >= 200), "{seen:?}");
    }

    #[test]
    fn coap_get_with_token_and_uri_path() {
        // V-CO-2 GET inside IPv6/UDP.
        let mut p = hex("600000000011114020010db8000a000b000000000000005720010db8000100020000000000000401f0b11633001100004101000182bb74656d7065726174757265");
        p.truncate(48 + 17);
        let h = Headers::parse(&p, Direction::Up);
        assert_eq!(h.depth(), Some(Layer::Coap));
        assert_eq!(h.field(Fid::CoapTkl, 1), Some(FieldRef::new(388, 4)));
        assert_eq!(h.field(Fid::CoapToken, 1), Some(FieldRef::new(416, 8)));
        let o: std::vec::Vec<CoapOption> = h.options().collect();
        assert_eq!(o.len(), 1);
        assert_eq!((o[0].number, o[0].position), (11, 1));
        assert_eq!(&p[o[0].value.bytes()], b"temperature");
        assert_eq!(h.layer_end(Some(Layer::Coap)), p.len());
        assert_eq!(h.field_count(Some(Layer::Coap)), 21);
        assert_eq!(
            (h.field_count(None), h.field_count(Some(Layer::Ipv6))),
            (0, 10)
        );
        assert_eq!(h.field_count(Some(Layer::Udp)), 14);
        let mut full = Headers::unparsed(&p, Direction::Up, Layer::Ipv6);
        full.parse_with::<true>();
        assert_eq!(full.present(), 0b111);
        assert_eq!(full.counted(Some(Layer::Udp)), 14);
        assert_eq!(full.counted(Some(Layer::Coap)), 21);
        let lengths = |q: &[u8], first| {
            let mut h = Headers::unparsed(q, Direction::Up, first);
            h.parse_with::<true>();
            h.lengths_hold()
        };
        // The lengths against those decompression computes: the packet was cut to 65 bytes,
        // so neither 17 (0x11) holds; 25 in both does ...
        assert_eq!(lengths(&p, Layer::Ipv6), 0);
        let mut q = p.clone();
        q[4..6].copy_from_slice(&25u16.to_be_bytes());
        q[44..46].copy_from_slice(&25u16.to_be_bytes());
        assert_eq!(lengths(&q, Layer::Ipv6), LENGTH_IPV6 | LENGTH_UDP);
        // ... and a wrong UDP length is found too.
        q[44..46].copy_from_slice(&18u16.to_be_bytes());
        assert_eq!(lengths(&q, Layer::Ipv6), LENGTH_IPV6);
        // From the UDP header on: UDP and CoAP only, counted from UDP (the UDP length, 18,
        // is still wrong).
        let planned = |q: &[u8], first| {
            let mut h = Headers::unparsed(q, Direction::Up, first);
            h.parse_with::<true>();
            (h.present(), h.counted(Some(Layer::Coap)), h.lengths_hold())
        };
        assert_eq!(planned(&q[40..], Layer::Udp), (0b110, 11, 0));
        q[44..46].copy_from_slice(&25u16.to_be_bytes());
        assert_eq!(planned(&q[40..], Layer::Udp), (0b110, 11, LENGTH_UDP));
        let u = Headers::parse_from(&q[40..], Direction::Up, Layer::Udp);
        assert_eq!(u.field_count(Some(Layer::Coap)), 11);
        // A packet that is not IPv6 has no layer and no field.
        assert_eq!(planned(&q[1..], Layer::Ipv6), (0, 0, 0));
    }

    #[test]
    fn dev_and_app_follow_direction() {
        let p = hex("600000000008114020010db8000a000b000000000000005720010db8000100020000000000000401f0b1f0b20008be97");
        let up = Headers::parse(&p, Direction::Up);
        let down = Headers::parse(&p, Direction::Down);
        assert_eq!(up.field(Fid::Ipv6DevIid, 1).unwrap().off, 128);
        assert_eq!(down.field(Fid::Ipv6DevIid, 1).unwrap().off, 256);
        assert_eq!(up.field(Fid::UdpDevPort, 1).unwrap().off, 320);
        assert_eq!(down.field(Fid::UdpDevPort, 1).unwrap().off, 336);
        assert_eq!(up.depth(), Some(Layer::Udp));
        assert_eq!((up.udp_start(), up.layer_end(Some(Layer::Udp))), (40, 48));
        let udp = Headers::parse_from(&p[40..], Direction::Up, Layer::Udp);
        assert_eq!((udp.udp_start(), udp.layer_end(Some(Layer::Udp))), (0, 8));
        assert_eq!(Headers::parse(&p[..44], Direction::Up).udp_start(), 0);
        assert_eq!(up.field(Fid::CoapVersion, 1), None);
        assert_eq!(up.field(Fid::Ipv6Version, 2), None);
    }

    #[test]
    fn extended_deltas_lengths_repeats_and_zero_length() {
        // Options: Observe(6) len 0; Uri-Path(11) x2 ("a", "bc"); option 300 (delta 289 via
        // 14-form) with a 20-byte value (13-form length); then payload.
        let mut coap = std::vec![0x40, 0x01, 0x00, 0x01];
        coap.push(0x60); // delta 6, len 0
        coap.extend_from_slice(&[0x51, b'a']); // delta 5 -> 11
        coap.extend_from_slice(&[0x02, b'b', b'c']); // delta 0 -> 11 again
                                                     // 0xE = 14-form delta (2 bytes: 289 - 269 = 20), 0xD = 13-form length (1 byte: 7 + 13 = 20)
        coap.extend_from_slice(&[0xED, 0x00, 20, 7]);
        coap.extend_from_slice(&[0xAA; 20]);
        coap.extend_from_slice(&[0xFF, 1, 2]);
        let (tkl, end, n) = parse_coap(&coap, 0).unwrap();
        assert_eq!((tkl, n), (0, 4));
        assert_eq!(end, coap.len() - 2);
        let h = Headers::parse_from(&coap, Direction::Up, Layer::Coap);
        let got: std::vec::Vec<(u16, u8, u32)> = h
            .options()
            .map(|o| (o.number, o.position, o.value.len))
            .collect();
        assert_eq!(got, [(6, 1, 0), (11, 1, 8), (11, 2, 16), (300, 1, 160)]);
    }

    #[test]
    fn malformed_coap_is_reported_not_parsed() {
        assert_eq!(parse_coap(&[0x40, 1], 0), Err(CoapError::Truncated(2)));
        assert_eq!(
            parse_coap(&[0x49, 1, 0, 0], 0),
            Err(CoapError::ReservedTkl(9))
        );
        assert_eq!(
            parse_coap(&[0x40, 1, 0, 0, 0xFF], 0),
            Err(CoapError::EmptyPayload(4))
        );
        assert_eq!(
            parse_coap(&[0x40, 1, 0, 0, 0xF1, 0], 0),
            Err(CoapError::ReservedNibble(4))
        );
        assert_eq!(
            parse_coap(&[0x40, 1, 0, 0, 0x13, 0], 0),
            Err(CoapError::OptionTruncated(4))
        );
        let mut many = std::vec![0x40, 1, 0, 0];
        many.extend(core::iter::repeat_n(0x10, MAX_OPTIONS + 1));
        assert_eq!(parse_coap(&many, 0), Err(CoapError::TooManyOptions));
    }
}
