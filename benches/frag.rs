//! Fragmentation and reassembly of a 1,280-byte SCHC packet with the RFC 9011 LoRaWAN uplink
//! rule (ACK-on-Error, W 2 bits, FCN 6 bits, windows of 63 tiles of 10 bytes), no loss, at MTUs
//! of 242 and 51 bytes: the whole exchange, sender polls, receiver frames, the ACK. Run with
//! `cargo bench --bench frag`.

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use lpwan_schc::frag::{Receiver, ReceiverAction, Sender, SenderAction};
use lpwan_schc::gateway::{Limits, Output, Sessions};
use lpwan_schc::json;
use lpwan_schc::rule::{Rule, RuleId};

const SIZE: usize = 1280;

/// One loss-free exchange; returns the bits delivered.
fn exchange(rule: &Rule, packet: &[u8], mtu: usize, buf: &mut [u8], out: &mut [u8]) -> usize {
    let mut tx = Sender::new(rule, packet, packet.len() * 8, 0, mtu).expect("sender");
    let mut rx = Receiver::new(rule, buf, 0).expect("receiver");
    let mut ack = [0u8; 64];
    let mut bits = 0;
    loop {
        match tx.poll(0, out).expect("poll") {
            SenderAction::Send(n) => rx.handle_frame(&out[..n], 0).expect("frame"),
            SenderAction::WaitUntil(_) => {}
            SenderAction::Done | SenderAction::Aborted(_) => return bits,
        }
        loop {
            match rx.poll(0, &mut ack).expect("poll") {
                ReceiverAction::Send(n) => tx.handle_ack(&ack[..n], 0).expect("ack"),
                ReceiverAction::Delivered { bits: b } => bits = b,
                _ => break,
            }
        }
    }
}

/// The same exchange through a gateway session table (one device).
fn through_gateway(gw: &mut Sessions<u64>, rule: &Rule, packet: &[u8], mtu: usize) -> usize {
    let mut tx = Sender::new(rule, packet, packet.len() * 8, 0, mtu).expect("sender");
    let mut out = vec![0u8; mtu];
    let mut bits = 0;
    loop {
        match tx.poll(0, &mut out).expect("poll") {
            SenderAction::Send(n) => {
                for o in gw.handle_uplink(1, &out[..n], 0).expect("uplink") {
                    match o {
                        Output::Send { frame, .. } => tx.handle_ack(&frame, 0).expect("ack"),
                        Output::Delivered(d) => bits = d.bits,
                        _ => {}
                    }
                }
            }
            SenderAction::WaitUntil(_) => {}
            SenderAction::Done | SenderAction::Aborted(_) => return bits,
        }
    }
}

fn frag(c: &mut Criterion) {
    let rules = json::from_str(include_str!("../rules/lorawan-fragmentation.json"))
        .expect("the LoRaWAN rules load");
    let rule = *rules.as_set().get(RuleId::new(20, 8)).expect("rule 20/8");
    let packet: Vec<u8> = (0..SIZE).map(|i| (i * 131 + 7) as u8).collect();
    let mut group = c.benchmark_group("frag-rfc9011-uplink-1280B");
    group.throughput(Throughput::Bytes(SIZE as u64));
    for mtu in [242usize, 51] {
        let mut buf = vec![0u8; Receiver::buffer_len(&rule, mtu)];
        let mut out = vec![0u8; mtu];
        // Checked once, outside the timed loop.
        let bits = exchange(&rule, &packet, mtu, &mut buf, &mut out);
        assert_eq!(bits, SIZE * 8);
        assert_eq!(&buf[..SIZE], &packet[..]);
        group.bench_function(format!("mtu{mtu}"), |b| {
            b.iter(|| exchange(&rule, black_box(&packet), mtu, &mut buf, &mut out))
        });
    }
    let mut gw = Sessions::new(rules.clone(), Limits::default());
    assert_eq!(through_gateway(&mut gw, &rule, &packet, 51), SIZE * 8);
    group.bench_function("mtu51-gateway-sessions", |b| {
        b.iter(|| through_gateway(&mut gw, &rule, black_box(&packet), 51))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = frag
}
criterion_main!(benches);
