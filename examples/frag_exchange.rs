//! Fragments and reassembles a 1,280-byte packet with the RFC 9011 LoRaWAN uplink rule, no
//! loss, `N` times (first argument, default 1) at an MTU of `MTU` bytes (second, default 242).
//! For instruction counts: run it under `valgrind --tool=callgrind` with two values of `N` and
//! divide the difference by the bytes fragmented in between.

use std::hint::black_box;

use lpwan_schc::frag::{Receiver, ReceiverAction, Sender, SenderAction};
use lpwan_schc::json;
use lpwan_schc::rule::RuleId;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let mtu: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(242);
    let rules = json::from_str(include_str!("../rules/lorawan-fragmentation.json"))
        .expect("the LoRaWAN rules load");
    let rule = *rules.as_set().get(RuleId::new(20, 8)).expect("rule 20/8");
    let packet: Vec<u8> = (0..1280).map(|i| (i * 131 + 7) as u8).collect();
    let mut buf = vec![0u8; Receiver::buffer_len(&rule, mtu)];
    let mut out = vec![0u8; mtu];
    let mut ack = [0u8; 64];
    let mut delivered = 0;
    for _ in 0..n {
        let packet = black_box(&packet[..]);
        let mut tx = Sender::new(&rule, packet, packet.len() * 8, 0, mtu).expect("sender");
        let mut rx = Receiver::new(&rule, &mut buf[..], 0).expect("receiver");
        'exchange: loop {
            match tx.poll(0, &mut out).expect("poll") {
                SenderAction::Send(k) => rx.handle_frame(&out[..k], 0).expect("frame"),
                SenderAction::WaitUntil(_) => {}
                SenderAction::Done | SenderAction::Aborted(_) => break 'exchange,
            }
            loop {
                match rx.poll(0, &mut ack).expect("poll") {
                    ReceiverAction::Send(k) => tx.handle_ack(&ack[..k], 0).expect("ack"),
                    ReceiverAction::Delivered { bits } => delivered += bits / 8,
                    _ => break,
                }
            }
        }
    }
    println!("{delivered} bytes delivered in {n} exchanges at MTU {mtu}");
}
