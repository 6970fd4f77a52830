//! The network-side endpoint at scale: uplinks decompressed with 100,000 device contexts
//! loaded (one shared rule set, each device its own AES-CMAC DevIID), against one context.
//! Each iteration takes one compressed uplink (FPort 1, `rules/lorawan-ipv6-udp.json`: IPv6
//! and UDP, the DevIID rebuilt from the device's context) from the next of 1,024 devices and
//! gets the IPv6 packet back. Run with `cargo bench --bench gateway`; the memory per context
//! is measured by `tests/flood.rs`.

use std::sync::Arc;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use lpwan_schc::codec::{self, udp_checksum, Config};
use lpwan_schc::json;
use lpwan_schc::network::{DevEui, NetOutput, Network, NetworkLimits};
use lpwan_schc::rule::Direction;

const RULES: &str = include_str!("../rules/lorawan-ipv6-udp.json");

fn dev_eui(i: u32) -> DevEui {
    let b = i.to_be_bytes();
    [0x70, 0xB3, 0xD5, 0x7E, b[0], b[1], b[2], b[3]]
}

/// An IPv6/UDP uplink from a device with this IID, matching rule 1 of the rule file.
fn packet(iid: [u8; 8], i: u32) -> Vec<u8> {
    let payload: Vec<u8> = (0..24u32).map(|k| (k * 7 + i) as u8).collect();
    let udp_len = (8 + payload.len()) as u16;
    let mut p = vec![0x60, 0, 0, 0];
    p.extend(udp_len.to_be_bytes());
    p.extend([17, 64]);
    p.extend([0x20, 0x01, 0x0d, 0xb8, 0x00, 0x0a, 0, 0]);
    p.extend(iid);
    p.extend([
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    ]);
    p.extend((0x1634u16 + (i % 2) as u16).to_be_bytes()); // MSB(15): two ports
    p.extend(0x1633u16.to_be_bytes());
    p.extend(udp_len.to_be_bytes());
    p.extend([0, 0]);
    p.extend(payload);
    let ck = udp_checksum(&p);
    p[46..48].copy_from_slice(&ck.to_be_bytes());
    p
}

/// A device's uplink: its DevEUI, the FPort, the FRMPayload, and the packet it carries.
type Uplink = (DevEui, u8, Vec<u8>, Vec<u8>);

/// A network side with `devices` contexts and the uplinks of the first 1,024 (or fewer).
fn setup(devices: u32) -> (Network, Vec<Uplink>) {
    let rules = Arc::new(json::from_str(RULES).expect("rules"));
    let mut net = Network::new(NetworkLimits {
        max_devices: devices as usize,
        ..NetworkLimits::default()
    });
    for i in 0..devices {
        let key = [(i % 251) as u8; 16];
        net.add_device(dev_eui(i), rules.clone(), key, 0)
            .expect("add device");
    }
    let set = rules.as_set();
    let uplinks = (0..devices.min(1024))
        .map(|i| {
            let dev = dev_eui(i);
            let iid = net.dev_iid(&dev).expect("a DevIID");
            let p = packet(iid, i);
            let cfg = Config {
                dev_iid: Some(iid),
                ..Config::default()
            };
            let mut out = [0u8; 256];
            let c = codec::compress(&set, &p, Direction::Up, &cfg, &mut out).expect("compress");
            assert_eq!(
                out[0], 1,
                "rule 1 (FPort 1) compresses uplink {i}: {p:02x?}"
            );
            (dev, out[0], out[1..c.len].to_vec(), p)
        })
        .collect();
    (net, uplinks)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("network uplink decompression");
    g.throughput(Throughput::Elements(1));
    for devices in [1u32, 100_000] {
        let (mut net, uplinks) = setup(devices);
        // Checked once outside the timed loop: every uplink gives its packet back.
        for (dev, fport, payload, p) in &uplinks {
            let out = net.handle_uplink(*dev, *fport, payload, 0).expect("uplink");
            assert!(
                matches!(&out[..], [NetOutput::Delivered { packet, .. }] if packet == p),
                "{out:?}"
            );
        }
        let mut k = 0;
        g.bench_function(format!("{devices} device contexts"), |b| {
            b.iter(|| {
                let (dev, fport, payload, _) = &uplinks[k % uplinks.len()];
                k += 1;
                black_box(net.handle_uplink(*dev, *fport, black_box(payload), 0))
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
