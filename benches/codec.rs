//! Compression and decompression of the anchor packet (`benches/anchor.json`): the packet and
//! rule on which other SCHC implementations were measured; then with 16 and 1,024 rules (the
//! anchor rule after non-matching decoys, indexed), to show that the cost does not grow with
//! the rule set. Run with `cargo bench --bench codec`.

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use lpwan_schc::codec::{compress, decompress, Config};
use lpwan_schc::json;
use lpwan_schc::rule::Direction;

#[path = "decoys.rs"]
mod decoys;

fn anchor(c: &mut Criterion) {
    let (doc, packet, expected) = decoys::anchor();
    let rules = json::from_value(&doc["rules"]).expect("the anchor rules load");
    rules.validate().expect("the anchor rules are valid");
    let set = rules.as_set();
    let cfg = Config::default();
    let mut schc = [0u8; 128];
    let mut back = [0u8; 1280];

    // Checked once, outside the timed loops.
    let c1 = compress(&set, &packet, Direction::Up, &cfg, &mut schc).expect("compresses");
    assert_eq!(&schc[..c1.len], &expected[..]);
    assert_eq!(
        c1.bits,
        doc["expected_schc_bits"].as_u64().expect("bits") as usize
    );
    let d1 = decompress(&set, &expected, Direction::Up, &cfg, &mut back).expect("decompresses");
    assert_eq!(&back[..d1.len], &packet[..]);

    let mut group = c.benchmark_group("anchor");
    group.bench_function("compress", |b| {
        b.iter(|| {
            compress(
                black_box(&set),
                black_box(&packet),
                Direction::Up,
                &cfg,
                &mut schc,
            )
        })
    });
    group.bench_function("decompress", |b| {
        b.iter(|| {
            decompress(
                black_box(&set),
                black_box(&expected),
                Direction::Up,
                &cfg,
                &mut back,
            )
        })
    });
    group.finish();

    let mut group = c.benchmark_group("anchor-rules");
    for k in [16, 1024] {
        let mut rules = decoys::rules(&doc, Some(k));
        rules.build_index().expect("the decoy rules are valid");
        let set = rules.as_set();
        // Checked once, outside the timed loops.
        let c = compress(&set, &packet, Direction::Up, &cfg, &mut schc).expect("compresses");
        assert_eq!(&schc[..c.len], &expected[..]);
        let d = decompress(&set, &expected, Direction::Up, &cfg, &mut back).expect("decompresses");
        assert_eq!(&back[..d.len], &packet[..]);
        group.bench_function(format!("compress-{k}"), |b| {
            b.iter(|| {
                compress(
                    black_box(&set),
                    black_box(&packet),
                    Direction::Up,
                    &cfg,
                    &mut schc,
                )
            })
        });
        group.bench_function(format!("decompress-{k}"), |b| {
            b.iter(|| {
                decompress(
                    black_box(&set),
                    black_box(&expected),
                    Direction::Up,
                    &cfg,
                    &mut back,
                )
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = anchor
}
criterion_main!(benches);
