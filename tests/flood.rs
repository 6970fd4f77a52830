//! A network-side endpoint under a flood: 100,000 registered devices each open a reassembly
//! session (an RFC 9011 uplink fragment on FPort 20, DTag 0, the same rule and DTag as the
//! genuine device), while one genuine device sends a 1,200-byte packet through 51-byte
//! payloads. The numbers this test holds:
//!
//! - sessions are capped at 2,000 and 8 MiB: the table never holds more, whatever arrives;
//! - the least recently active sessions are evicted (about 98,000 evictions, each reported);
//! - the genuine device, which sends one frame per 1,000 fake ones (half the cap: a device slower than the
//!   table turns over would lose its session to the flood), keeps its session and its
//!   packet comes out exactly;
//! - the whole heap (a counting allocator) stays under 64 MiB with 100,001 device contexts,
//!   and sessions that outlive their inactivity timer are dropped by `poll`.
//!
//! The allocator needs `unsafe impl GlobalAlloc`; the crate's `forbid(unsafe_code)` covers the
//! library only.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use lpwan_schc::gateway::Limits;
use lpwan_schc::network::{DevEui, NetOutput, Network, NetworkLimits};
use lpwan_schc::profile::lorawan::{self, Buffers, Device, DeviceAction};
use lpwan_schc::rule::RuleSet;

mod common;

/// Live heap bytes and their peak.
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

struct Tracking;

fn grew(n: usize) {
    let live = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counters are atomics.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        grew(new_size);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

static DEVICE_RULES: RuleSet<'static> = RuleSet::new_unchecked(&lorawan::RULES, &[], &[], &[]);

const FAKES: u32 = 100_000;
const MAX_SESSIONS: usize = 2_000;
const MAX_BYTES: usize = 8 << 20;
const HEAP_CAP: usize = 64 << 20;
const GENUINE: DevEui = [0xA0, 0, 0, 0, 0, 0, 0, 1];

fn fake(i: u32) -> DevEui {
    let b = i.to_be_bytes();
    [0xF0, 0, 0, 0, b[0], b[1], b[2], b[3]]
}

#[test]
fn a_flood_of_fake_devices_stays_under_its_caps_and_a_genuine_packet_gets_through() {
    let rules = Arc::new(
        lpwan_schc::json::from_str(include_str!("../rules/lorawan-fragmentation.json"))
            .expect("shipped rules"),
    );
    let limits = NetworkLimits {
        max_devices: FAKES as usize + 1,
        device_idle: None,
        sessions: Limits {
            max_sessions: MAX_SESSIONS,
            max_bytes: MAX_BYTES,
            ..Limits::default()
        },
        ..NetworkLimits::default()
    };
    let mut net = Network::new(limits);
    let key = [0x2B; 16];
    net.add_device(GENUINE, rules.clone(), key, 0).unwrap();
    for i in 0..FAKES {
        net.add_device(fake(i), rules.clone(), key, 0).unwrap();
    }
    let registered = LIVE.load(Ordering::Relaxed);

    // The genuine device: RFC 9011 rules as static tables, stack buffers.
    let (mut tx, mut rx, mut out) = ([0u8; 1300], [0u8; 1600], [0u8; 256]);
    let mut dev = Device::new(
        DEVICE_RULES,
        GENUINE,
        key,
        Buffers {
            tx: &mut tx,
            rx: &mut rx,
        },
    )
    .unwrap();
    let packet: Vec<u8> = (0..1200u32).map(|i| (i * 31 + 7) as u8).collect();
    dev.send(&packet, 0).unwrap();

    let (mut evicted, mut genuine_frames, mut now) = (0usize, 0usize, 0u64);
    let mut delivered = None;
    let mut max_sessions_seen = 0;
    // A regular fragment: W = 0, FCN = 62, one 10-byte tile.
    let mut frag = [0x3Eu8; 11];
    for i in 0..FAKES {
        now += 1_000; // a frame every millisecond
        frag[1..5].copy_from_slice(&i.to_be_bytes());
        for o in net.handle_uplink(fake(i), 20, &frag, now).unwrap() {
            match o {
                NetOutput::UplinkEvicted { device, .. } => {
                    // Once delivered, the genuine session only lingers to answer repeats.
                    assert!(
                        device != GENUINE || delivered.is_some(),
                        "the genuine session was evicted at frame {i}"
                    );
                    evicted += 1;
                }
                NetOutput::Delivered { device, .. } => panic!("{device:02x?} delivered a packet"),
                _ => {}
            }
        }
        max_sessions_seen = max_sessions_seen.max(net.sessions().len());
        assert!(net.sessions().bytes() <= MAX_BYTES);
        if i % 1_000 == 999 {
            // One frame of the genuine device, and what the network answers it.
            if let DeviceAction::Send { fport, len } = dev.poll(now, &mut out).unwrap() {
                genuine_frames += 1;
                for o in net.handle_uplink(GENUINE, fport, &out[..len], now).unwrap() {
                    match o {
                        NetOutput::Delivered { device, packet } => {
                            assert_eq!(device, GENUINE);
                            delivered = Some(packet);
                        }
                        NetOutput::Send {
                            device,
                            fport,
                            payload,
                        } => {
                            assert_eq!(device, GENUINE, "an ACK for a fake went to the genuine");
                            dev.handle_downlink(fport, &payload, now).unwrap();
                        }
                        // Its session takes the place of the least recently active one.
                        NetOutput::UplinkEvicted { device, .. } if device != GENUINE => {
                            evicted += 1;
                        }
                        other => panic!("genuine device: {other:?}"),
                    }
                }
            }
        }
    }
    let peak = PEAK.load(Ordering::Relaxed);
    eprintln!(
        "{FAKES} fake devices: {evicted} sessions evicted, at most {max_sessions_seen} at once \
         ({} bytes of sessions at the end); genuine device: {genuine_frames} frames; heap {} \
         bytes after registering {} devices ({} per device), peak {peak}",
        net.sessions().bytes(),
        registered,
        FAKES + 1,
        registered / (FAKES as usize + 1),
    );
    assert_eq!(
        delivered.as_deref(),
        Some(&packet[..]),
        "the genuine packet"
    );
    assert!(max_sessions_seen <= MAX_SESSIONS);
    assert!(evicted >= FAKES as usize - MAX_SESSIONS);
    assert!(peak < HEAP_CAP, "peak heap {peak} bytes");

    // Inactivity: the fake sessions end with their rule's inactivity timer (about 108 h for
    // the RFC 9011 uplink rule), after which nothing is left.
    let later = now + 200 * 3600 * 1_000_000;
    let ended = net.poll(later);
    assert!(ended.len() >= MAX_SESSIONS - 1, "{} outputs", ended.len());
    assert_eq!(net.sessions().len(), 0);
    assert_eq!(net.sessions().bytes(), 0);
}

/// What the bridge adds per configured device on top of the network's context: its
/// configuration entry and its downlink route. Runs after the flood in the same test binary
/// only as its own test when asked (`-- --ignored`), since the allocator counts every thread.
#[cfg(feature = "bridge")]
#[test]
#[ignore = "measures the process heap: run alone with `-- --ignored --nocapture`"]
fn bridge_bytes_per_configured_device() {
    use lpwan_schc::bridge::config::{
        Config, Delivery, DeviceConfig, LogFormat, Mqtt, NetworkServerKind, Subscribe,
    };
    use lpwan_schc::bridge::{metrics::Metrics, Bridge};
    use std::time::Duration;
    let rules = Arc::new(
        lpwan_schc::json::from_str(include_str!("../rules/lorawan-ipv6-udp.json")).unwrap(),
    );
    const N: u32 = 100_000;
    let devices: Vec<DeviceConfig> = (0..N)
        .map(|i| DeviceConfig {
            dev_eui: fake(i),
            app_skey: [i as u8; 16],
            rules: rules.clone(),
            downlink_mtu: 51,
            app_iid: None,
            tts_device_id: None,
        })
        .collect();
    let cfg = Config {
        mqtt: Mqtt {
            host: "h".into(),
            port: 1883,
            client_id: "c".into(),
            credentials: None,
            keep_alive: Duration::from_secs(30),
            retry_initial: Duration::from_millis(1),
            retry_max: Duration::from_millis(1),
            max_retries: None,
            tls: None,
            subscribe: Subscribe::Application,
            share_group: None,
        },
        network_server: NetworkServerKind::ChirpStack {
            application_id: "a".into(),
        },
        delivery: Delivery::Udp {
            listen: "127.0.0.1:0".parse().unwrap(),
            peer: "127.0.0.1:9".parse().unwrap(),
        },
        limits: NetworkLimits::default(),
        iid_form: lorawan::IidForm::Binary,
        metrics: None,
        log_format: LogFormat::Text,
        log_level: "off".into(),
        shutdown_timeout: Duration::from_secs(1),
        devices,
    };
    let before = LIVE.load(Ordering::Relaxed);
    let bridge = Bridge::new(&cfg, Arc::new(Metrics::default()));
    let after = LIVE.load(Ordering::Relaxed);
    let per = (after - before) / N as usize;
    eprintln!(
        "Bridge::new with {N} configured devices: {} bytes, {per} per device",
        after - before
    );
    assert!(per < 512, "{per} bytes per configured device");
    drop(bridge);
}
