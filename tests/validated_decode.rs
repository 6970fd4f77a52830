//! Decompression skips, for validated sets, the per-field checks that `RuleSet::validate`
//! already guarantees (target value references resolve, fixed-length target values fit, header
//! fields have their protocol length). That must change nothing: every rule file decompresses
//! any input, well formed or damaged, exactly as an unvalidated copy of the same rules does,
//! which still runs every check.

mod common;

use lpwan_schc::codec::{compress, decompress, Config};
use lpwan_schc::json;
use lpwan_schc::rule::{Direction, Nature, RuleSetBuf};

use common::{hex, root};

/// The rules of `file`, validated (as loaded) and as an unchecked copy.
fn both(file: &str) -> (RuleSetBuf, RuleSetBuf) {
    let text = std::fs::read_to_string(root().join(file)).expect("rule file");
    let checked = json::from_str(&text).expect("rules load");
    let mut unchecked = RuleSetBuf::new();
    for rule in checked.as_set().rules() {
        match rule.nature {
            Nature::Compression(_) => unchecked
                .push_compression(rule.id, &checked.field_specs(rule))
                .unwrap(),
            Nature::NoCompression => unchecked.push_no_compression(rule.id),
            Nature::Fragmentation(p) => unchecked.push_fragmentation(rule.id, p),
        }
    }
    assert!(checked.as_set().is_validated());
    assert!(!unchecked.as_set().is_validated());
    (checked, unchecked)
}

/// A small deterministic generator (xorshift), so that failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Decompresses `schc` with both sets in both directions; the results must be identical.
fn same(checked: &RuleSetBuf, unchecked: &RuleSetBuf, schc: &[u8]) -> bool {
    let cfg = Config {
        dev_iid: Some([0, 0, 0, 0, 0, 0, 0, 3]),
        app_iid: Some([0, 0, 0, 0, 0, 0, 0, 0x20]),
        ..Config::default()
    };
    let mut ok = false;
    for dir in [Direction::Up, Direction::Down] {
        let (mut a, mut b) = ([0u8; 1500], [0u8; 1500]);
        let x = decompress(&checked.as_set(), schc, dir, &cfg, &mut a);
        let y = decompress(&unchecked.as_set(), schc, dir, &cfg, &mut b);
        match (x, y) {
            (Ok(x), Ok(y)) => {
                assert_eq!(x, y, "{schc:02x?} {dir:?}");
                assert_eq!(&a[..x.len], &b[..y.len], "{schc:02x?} {dir:?}");
                ok = true;
            }
            (x, y) => assert_eq!(x, y, "{schc:02x?} {dir:?}"),
        }
    }
    ok
}

#[test]
fn validated_sets_decompress_exactly_as_unchecked_copies() {
    let anchor: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("benches/anchor.json")).unwrap())
            .unwrap();
    let packet = hex(anchor["packet_hex"].as_str().unwrap());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut decoded = 0;
    for file in [
        "rules/anchor.json",
        "rules/example.json",
        "rules/leshan-learned.json",
        "rules/leshan-microschc.json",
        "rules/lorawan-ipv6-udp.json",
    ] {
        let (checked, unchecked) = both(file);
        // Seeds: the anchor packet compressed by this set (when it can be), then each rule's
        // ID followed by random bits.
        let mut seeds = Vec::new();
        let mut out = [0u8; 256];
        if let Ok(c) = compress(
            &checked.as_set(),
            &packet,
            Direction::Up,
            &Config::default(),
            &mut out,
        ) {
            seeds.push(out[..c.len].to_vec());
        }
        for rule in checked.as_set().rules() {
            let mut s: Vec<u8> = (0..24).map(|_| rng.next() as u8).collect();
            let id = rule.id;
            let v = u64::from(id.value) << (64 - u32::from(id.length).max(1));
            for (i, b) in v
                .to_be_bytes()
                .iter()
                .enumerate()
                .take(usize::from(id.length).div_ceil(8))
            {
                let keep = (u32::from(id.length) - (i as u32 * 8).min(u32::from(id.length))).min(8);
                let mask = if keep == 0 { 0 } else { 0xFFu8 << (8 - keep) };
                s[i] = (s[i] & !mask) | (b & mask);
            }
            seeds.push(s);
        }
        for seed in &seeds {
            decoded += usize::from(same(&checked, &unchecked, seed));
            // Damaged copies: flipped bits, cut short.
            for _ in 0..200 {
                let mut s = seed.clone();
                let bit = (rng.next() as usize) % (s.len() * 8);
                s[bit / 8] ^= 0x80 >> (bit % 8);
                let cut = s.len() - (rng.next() as usize) % s.len().min(4);
                s.truncate(cut);
                decoded += usize::from(same(&checked, &unchecked, &s));
            }
        }
    }
    // Most inputs must have decompressed, or the comparison says little.
    eprintln!("{decoded} inputs decompressed");
    assert!(decoded > 500, "only {decoded} inputs decompressed");
}
