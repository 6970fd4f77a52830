//! A rule that describes a layer below the configured first layer cannot be decompressed: the
//! error names the first such descriptor. (Decompression only looks for one when the first
//! layer is above IPv6, the lowest.)

mod common;

use lpwan_schc::codec::{decompress, Config, DecompressError};
use lpwan_schc::json;
use lpwan_schc::rule::{Direction, Fid, Layer};

use common::{hex, root};

#[test]
fn ipv6_rule_with_udp_first_layer_is_refused_at_its_first_ipv6_entry() {
    let set = json::from_str(&std::fs::read_to_string(root().join("rules/anchor.json")).unwrap())
        .unwrap();
    let anchor: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("benches/anchor.json")).unwrap())
            .unwrap();
    let schc = hex(anchor["expected_schc_hex"].as_str().unwrap());
    let mut out = [0u8; 256];
    // With IPv6 first (the default) it decompresses to the anchor packet.
    let d = decompress(
        &set.as_set(),
        &schc,
        Direction::Up,
        &Config::default(),
        &mut out,
    )
    .unwrap();
    assert_eq!(
        &out[..d.len],
        &hex(anchor["packet_hex"].as_str().unwrap())[..]
    );
    for first in [Layer::Udp, Layer::Coap] {
        let cfg = Config {
            first_layer: first,
            ..Config::default()
        };
        let e = decompress(&set.as_set(), &schc, Direction::Up, &cfg, &mut out).unwrap_err();
        match e {
            DecompressError::BadField {
                entry, fid, reason, ..
            } => {
                assert_eq!((entry, fid), (0, Fid::Ipv6Version), "{first:?}");
                assert_eq!(
                    reason,
                    "the rule describes a layer below the first layer configured"
                );
            }
            other => panic!("{first:?}: {other:?}"),
        }
    }
}
