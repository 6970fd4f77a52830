//! Field identifiers (FIDs) and the protocol layers they belong to.

use core::fmt;

/// The protocol layer a field belongs to. Layers are stacked in this order; a rule that
/// describes no field of a layer leaves that layer, and everything after it, as payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    /// IPv6 (RFC 8200), 40 bytes.
    Ipv6 = 1,
    /// UDP (RFC 768), 8 bytes.
    Udp = 2,
    /// CoAP (RFC 7252): header, token, options and payload marker.
    Coap = 3,
}

/// A field identifier. Addresses and ports are named by role (Dev/App), not by source and
/// destination: the direction decides which is which (RFC 8724 §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fid {
    /// IPv6 Version (4 bits).
    Ipv6Version,
    /// IPv6 Traffic Class (8 bits).
    Ipv6TrafficClass,
    /// IPv6 Flow Label (20 bits).
    Ipv6FlowLabel,
    /// IPv6 Payload Length (16 bits).
    Ipv6PayloadLength,
    /// IPv6 Next Header (8 bits).
    Ipv6NextHeader,
    /// IPv6 Hop Limit (8 bits).
    Ipv6HopLimit,
    /// The device's /64 prefix (source uplink, destination downlink).
    Ipv6DevPrefix,
    /// The device's interface identifier (64 bits).
    Ipv6DevIid,
    /// The application's /64 prefix.
    Ipv6AppPrefix,
    /// The application's interface identifier (64 bits).
    Ipv6AppIid,
    /// The device's UDP port (source uplink, destination downlink).
    UdpDevPort,
    /// The application's UDP port.
    UdpAppPort,
    /// UDP Length (16 bits).
    UdpLength,
    /// UDP Checksum (16 bits).
    UdpChecksum,
    /// CoAP Version (2 bits).
    CoapVersion,
    /// CoAP Type (2 bits).
    CoapType,
    /// CoAP Token Length (4 bits).
    CoapTkl,
    /// CoAP Code (8 bits).
    CoapCode,
    /// CoAP Message ID (16 bits).
    CoapMid,
    /// CoAP Token (TKL bytes).
    CoapToken,
    /// A CoAP option, by option number; the field is the option value.
    CoapOption(u16),
}

/// Number of header fields with a fixed place (every FID except CoAP options).
pub const HEADER_FIELDS: usize = 20;

const HEADER_NAMES: [&str; HEADER_FIELDS] = [
    "fid-ipv6-version",
    "fid-ipv6-trafficclass",
    "fid-ipv6-flowlabel",
    "fid-ipv6-payload-length",
    "fid-ipv6-nextheader",
    "fid-ipv6-hoplimit",
    "fid-ipv6-devprefix",
    "fid-ipv6-deviid",
    "fid-ipv6-appprefix",
    "fid-ipv6-appiid",
    "fid-udp-dev-port",
    "fid-udp-app-port",
    "fid-udp-length",
    "fid-udp-checksum",
    "fid-coap-version",
    "fid-coap-type",
    "fid-coap-tkl",
    "fid-coap-code",
    "fid-coap-mid",
    "fid-coap-token",
];

const HEADER_FIDS: [Fid; HEADER_FIELDS] = [
    Fid::Ipv6Version,
    Fid::Ipv6TrafficClass,
    Fid::Ipv6FlowLabel,
    Fid::Ipv6PayloadLength,
    Fid::Ipv6NextHeader,
    Fid::Ipv6HopLimit,
    Fid::Ipv6DevPrefix,
    Fid::Ipv6DevIid,
    Fid::Ipv6AppPrefix,
    Fid::Ipv6AppIid,
    Fid::UdpDevPort,
    Fid::UdpAppPort,
    Fid::UdpLength,
    Fid::UdpChecksum,
    Fid::CoapVersion,
    Fid::CoapType,
    Fid::CoapTkl,
    Fid::CoapCode,
    Fid::CoapMid,
    Fid::CoapToken,
];

/// Where a header field lies in its layer's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Place {
    /// The layer: 0 IPv6, 1 UDP, 2 CoAP.
    pub layer: u8,
    /// Bit offset from the layer's start when the packet goes up.
    pub up: u16,
    /// The same going down (Dev and App addresses and ports swap places).
    pub down: u16,
    /// Length in bits; 0 for the token, whose length is TKL bytes.
    pub len: u8,
}

impl Place {
    const fn new(layer: u8, up: u16, down: u16, len: u8) -> Self {
        Self {
            layer,
            up,
            down,
            len,
        }
    }

    /// The bit offset from the layer's start going `dir`.
    #[inline(always)]
    pub fn offset(&self, dir: super::Direction) -> u16 {
        if dir == super::Direction::Up {
            self.up
        } else {
            self.down
        }
    }
}

/// Where each header field (by [`Fid::header_index`]) lies (RFC 8200 §3, RFC 768, RFC 7252
/// §3): the device's address and port are the source uplink and the destination downlink.
pub(crate) const HEADER_PLACES: [Place; HEADER_FIELDS] = [
    Place::new(0, 0, 0, 4),
    Place::new(0, 4, 4, 8),
    Place::new(0, 12, 12, 20),
    Place::new(0, 32, 32, 16),
    Place::new(0, 48, 48, 8),
    Place::new(0, 56, 56, 8),
    Place::new(0, 64, 192, 64),
    Place::new(0, 128, 256, 64),
    Place::new(0, 192, 64, 64),
    Place::new(0, 256, 128, 64),
    Place::new(1, 0, 16, 16),
    Place::new(1, 16, 0, 16),
    Place::new(1, 32, 32, 16),
    Place::new(1, 48, 48, 16),
    Place::new(2, 0, 0, 2),
    Place::new(2, 2, 2, 2),
    Place::new(2, 4, 4, 4),
    Place::new(2, 8, 8, 8),
    Place::new(2, 16, 16, 16),
    Place::new(2, 32, 32, 0),
];

impl Fid {
    /// The index of a header field (0..[`HEADER_FIELDS`]), `None` for CoAP options.
    pub const fn header_index(self) -> Option<usize> {
        Some(match self {
            Fid::Ipv6Version => 0,
            Fid::Ipv6TrafficClass => 1,
            Fid::Ipv6FlowLabel => 2,
            Fid::Ipv6PayloadLength => 3,
            Fid::Ipv6NextHeader => 4,
            Fid::Ipv6HopLimit => 5,
            Fid::Ipv6DevPrefix => 6,
            Fid::Ipv6DevIid => 7,
            Fid::Ipv6AppPrefix => 8,
            Fid::Ipv6AppIid => 9,
            Fid::UdpDevPort => 10,
            Fid::UdpAppPort => 11,
            Fid::UdpLength => 12,
            Fid::UdpChecksum => 13,
            Fid::CoapVersion => 14,
            Fid::CoapType => 15,
            Fid::CoapTkl => 16,
            Fid::CoapCode => 17,
            Fid::CoapMid => 18,
            Fid::CoapToken => 19,
            Fid::CoapOption(_) => return None,
        })
    }

    /// The header field with index `i` (inverse of [`Fid::header_index`]).
    pub fn from_header_index(i: usize) -> Option<Fid> {
        HEADER_FIDS.get(i).copied()
    }

    /// The layer of this field.
    pub const fn layer(self) -> Layer {
        match self {
            Fid::Ipv6Version
            | Fid::Ipv6TrafficClass
            | Fid::Ipv6FlowLabel
            | Fid::Ipv6PayloadLength
            | Fid::Ipv6NextHeader
            | Fid::Ipv6HopLimit
            | Fid::Ipv6DevPrefix
            | Fid::Ipv6DevIid
            | Fid::Ipv6AppPrefix
            | Fid::Ipv6AppIid => Layer::Ipv6,
            Fid::UdpDevPort | Fid::UdpAppPort | Fid::UdpLength | Fid::UdpChecksum => Layer::Udp,
            _ => Layer::Coap,
        }
    }

    /// The fixed length in bits of a header field; `None` for the token and options, whose
    /// length comes from the packet.
    pub fn fixed_len(self) -> Option<u16> {
        match self.header_index() {
            Some(i) => HEADER_PLACES
                .get(i)
                .map(|p| u16::from(p.len))
                .filter(|&l| l > 0),
            None => None,
        }
    }

    /// Whether a `compute` CDA is defined for this field (lengths and checksum).
    pub const fn is_computable(self) -> bool {
        matches!(
            self,
            Fid::Ipv6PayloadLength | Fid::UdpLength | Fid::UdpChecksum
        )
    }

    /// The RFC 9363 identity name (without module prefix), if the field has one.
    pub fn rfc9363_name(self) -> Option<&'static str> {
        match self {
            Fid::CoapOption(n) => COAP_OPTION_NAMES
                .iter()
                .find(|(num, _)| *num == n)
                .map(|p| p.1),
            other => other
                .header_index()
                .and_then(|i| HEADER_NAMES.get(i).copied()),
        }
    }

    /// Parses an RFC 9363 identity name (qualified `ietf-schc:` or not).
    pub fn from_rfc9363_name(name: &str) -> Option<Fid> {
        let short = name.strip_prefix("ietf-schc:").unwrap_or(name);
        if let Some(i) = HEADER_NAMES.iter().position(|n| *n == short) {
            return HEADER_FIDS.get(i).copied();
        }
        COAP_OPTION_NAMES
            .iter()
            .find(|(_, n)| *n == short)
            .map(|(num, _)| Fid::CoapOption(*num))
    }
}

/// CoAP option numbers with an RFC 9363 identity, and the identity names.
pub const COAP_OPTION_NAMES: [(u16, &str); 20] = [
    (1, "fid-coap-option-if-match"),
    (3, "fid-coap-option-uri-host"),
    (4, "fid-coap-option-etag"),
    (5, "fid-coap-option-if-none-match"),
    (6, "fid-coap-option-observe"),
    (7, "fid-coap-option-uri-port"),
    (8, "fid-coap-option-location-path"),
    (11, "fid-coap-option-uri-path"),
    (12, "fid-coap-option-content-format"),
    (14, "fid-coap-option-max-age"),
    (15, "fid-coap-option-uri-query"),
    (17, "fid-coap-option-accept"),
    (20, "fid-coap-option-location-query"),
    (23, "fid-coap-option-block2"),
    (27, "fid-coap-option-block1"),
    (28, "fid-coap-option-size2"),
    (35, "fid-coap-option-proxy-uri"),
    (39, "fid-coap-option-proxy-scheme"),
    (60, "fid-coap-option-size1"),
    (258, "fid-coap-option-no-response"),
];

impl fmt::Display for Fid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.rfc9363_name(), self) {
            (Some(name), _) => f.write_str(name),
            (None, Fid::CoapOption(n)) => write!(f, "fid-coap-option({n})"),
            (None, other) => write!(f, "{other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for i in 0..HEADER_FIELDS {
            let fid = Fid::from_header_index(i).unwrap();
            assert_eq!(fid.header_index(), Some(i));
            let name = fid.rfc9363_name().unwrap();
            assert_eq!(Fid::from_rfc9363_name(name), Some(fid));
            let qualified = ["ietf-schc:", name].concat();
            assert_eq!(Fid::from_rfc9363_name(&qualified), Some(fid));
        }
        for (n, _) in COAP_OPTION_NAMES {
            let fid = Fid::CoapOption(n);
            assert_eq!(
                Fid::from_rfc9363_name(fid.rfc9363_name().unwrap()),
                Some(fid)
            );
        }
        assert_eq!(Fid::CoapOption(2048).rfc9363_name(), None);
        assert_eq!(Fid::from_rfc9363_name("fid-ipv6-nope"), None);
    }
}
