//! The LoRaWAN device endpoint allocates nothing: a counting global allocator watches this
//! thread during every device call (`send`, `handle_downlink`, `poll`) of a 1,200-byte uplink
//! and a 1,200-byte downlink over a lossy radio (20 % and 10 %), with the device on a static rule set and stack
//! buffers. The network side, which is allowed to allocate, runs between the counted calls.
//!
//! The allocator (`tests/common/counting.rs`) needs `unsafe impl GlobalAlloc`; the crate's
//! `forbid(unsafe_code)` covers the library only.

#![allow(unsafe_code)]

use std::sync::Arc;

use lpwan_schc::network::{NetOutput, Network, NetworkLimits};
use lpwan_schc::profile::lorawan::{self, Buffers, Device, DeviceAction};
use lpwan_schc::rule::{RuleSet, RuleSetBuf};
use lpwan_schc::sim::SplitMix64;

#[path = "common/counting.rs"]
mod counting;

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// Runs `f`, adding this thread's allocations meanwhile to `total`.
fn counted<R>(total: &mut usize, f: impl FnOnce() -> R) -> R {
    let (r, n) = counting::count(f);
    *total += n;
    r
}

/// The device's rule set: RFC 9011's three rules as static tables, as on a device.
static RULES: RuleSet<'static> = RuleSet::new_unchecked(&lorawan::RULES, &[], &[], &[]);

const EUI: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
const KEY: [u8; 16] = [9; 16];

#[test]
fn the_counter_counts() {
    let mut n = 0;
    let v = counted(&mut n, || vec![0u8; 10]);
    assert_eq!(v.len(), 10);
    assert!(n >= 1);
}

/// One exchange over a lossy radio (loss `loss` each frame); returns (delivered up, delivered down, allocations
/// inside device calls, device calls).
fn exchange(up: bool, seed: u64, loss: f64) -> (bool, bool, usize, usize) {
    let net_rules = Arc::new({
        let mut b = RuleSetBuf::new();
        for r in lorawan::RULES {
            match r.nature {
                lpwan_schc::rule::Nature::Fragmentation(p) => b.push_fragmentation(r.id, p),
                _ => b.push_no_compression(r.id),
            }
        }
        b
    });
    let mut net = Network::new(NetworkLimits::default());
    net.add_device(EUI, net_rules, KEY, 0).unwrap();
    let mut tx = [0u8; 1300];
    let mut rx = [0u8; 1600];
    let mut out = [0u8; 1400];
    let mut allocs = 0;
    let mut calls = 0;
    let mut dev = counted(&mut allocs, || {
        Device::new(
            RULES,
            EUI,
            KEY,
            Buffers {
                tx: &mut tx,
                rx: &mut rx,
            },
        )
        .unwrap()
    });
    let mut rng = SplitMix64::new(seed);
    let mut packet = [0u8; 1200];
    rng.fill_bytes(&mut packet);
    let mut down: Vec<(u8, Vec<u8>)> = Vec::new();
    if up {
        counted(&mut allocs, || dev.send(&packet, 0)).unwrap();
    } else {
        for o in net.send_downlink(EUI, &packet, 0).unwrap() {
            if let NetOutput::Send { fport, payload, .. } = o {
                down.push((fport, payload));
            }
        }
    }
    let (mut got_up, mut got_down) = (false, false);
    let mut now = 0u64;
    for _ in 0..10_000 {
        for (fport, p) in std::mem::take(&mut down) {
            now += 1_000_000;
            if rng.next_f64() < loss {
                continue;
            }
            calls += 1;
            counted(&mut allocs, || dev.handle_downlink(fport, &p, now)).unwrap();
        }
        let mut frames: Vec<(u8, Vec<u8>)> = Vec::new();
        let mut wait = None;
        let mut ended = false;
        loop {
            calls += 1;
            let a = counted(&mut allocs, || dev.poll(now, &mut out)).unwrap();
            match a {
                DeviceAction::Send { fport, len } => frames.push((fport, out[..len].to_vec())),
                DeviceAction::Delivered { len } => got_down = out[..len] == packet[..],
                DeviceAction::UplinkDone | DeviceAction::UplinkAborted(_) => ended = true,
                DeviceAction::WaitUntil(t) => {
                    wait = Some(t);
                    break;
                }
                DeviceAction::Idle => break,
                _ => {}
            }
        }
        for (fport, p) in frames.drain(..) {
            now += 1_000_000;
            if rng.next_f64() < loss {
                continue;
            }
            for o in net.handle_uplink(EUI, fport, &p, now).unwrap() {
                match o {
                    NetOutput::Send { fport, payload, .. } => down.push((fport, payload)),
                    NetOutput::Delivered { packet: p, .. } => got_up = p == packet,
                    NetOutput::DownlinkDone { .. } | NetOutput::DownlinkAborted { .. } => {
                        ended = true
                    }
                    _ => {}
                }
            }
        }
        if ended && down.is_empty() {
            break;
        }
        if down.is_empty() {
            let next = [wait, net.next_deadline()].into_iter().flatten().min();
            let Some(t) = next else { break };
            now = now.max(t);
            for o in net.poll(now) {
                if let NetOutput::Send { fport, payload, .. } = o {
                    down.push((fport, payload));
                }
            }
        }
    }
    (got_up, got_down, allocs, calls)
}

#[test]
fn device_uplink_allocates_nothing() {
    for seed in 1..=3 {
        let (up, _, allocs, calls) = exchange(true, seed, 0.2);
        assert!(up, "seed {seed}: not delivered");
        assert!(calls > 30, "{calls} device calls");
        assert_eq!(
            allocs, 0,
            "seed {seed}: {allocs} allocations in {calls} device calls"
        );
    }
}

#[test]
fn device_downlink_allocates_nothing() {
    for seed in 1..=3 {
        let (_, down, allocs, calls) = exchange(false, seed, 0.1);
        assert!(down, "seed {seed}: not delivered");
        assert!(calls > 30, "{calls} device calls");
        assert_eq!(
            allocs, 0,
            "seed {seed}: {allocs} allocations in {calls} device calls"
        );
    }
}

/// The device's own RAM, besides the caller's buffers: its state machines and one frame.
#[test]
fn device_state_is_small() {
    let size = std::mem::size_of::<Device<'static, 'static>>();
    eprintln!("size_of::<Device>() = {size} bytes");
    assert!(size < 2048, "{size} bytes");
}
