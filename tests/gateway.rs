//! The gateway session tables: many devices reassembling at once with the same rule IDs and
//! DTags, limits and eviction, expiry on the caller's clock, repeats after delivery, and
//! downlink senders.

use lpwan_schc::frag::{AbortReason, Micros, Receiver, ReceiverAction, Sender, SenderAction};
use lpwan_schc::gateway::{
    DownlinkOutput, Eviction, GatewayError, Limits, Output, Senders, SessionKey, Sessions,
};
use lpwan_schc::json;
use lpwan_schc::rule::{Rule, RuleId, RuleSetBuf};
use lpwan_schc::sim::SplitMix64;

const UP: RuleId = RuleId::new(20, 8);
const DOWN: RuleId = RuleId::new(21, 8);

fn rules() -> RuleSetBuf {
    json::from_str(include_str!("../rules/lorawan-fragmentation.json")).expect("rules load")
}

fn rule(id: RuleId) -> Rule {
    *rules().as_set().get(id).expect("rule present")
}

fn packet(seed: u64, n: usize) -> Vec<u8> {
    let mut p = vec![0u8; n];
    SplitMix64::new(seed).fill_bytes(&mut p);
    p
}

/// The inactivity timer of rule 20 as the receiver computes it: 46349 ticks of 2^23 µs (about
/// 108 h: nine 12 h retransmission timers, so a lost ACK REQ does not end the session).
const INACTIVITY: Micros = 46349 << 23;

/// A device uplinking one packet: its sender and what it got back.
struct Device<'p> {
    id: u64,
    tx: Sender<&'p [u8]>,
    out: Vec<u8>,
    end: Option<SenderAction>,
    wait: Option<Micros>,
}

impl<'p> Device<'p> {
    fn new(id: u64, packet: &'p [u8], mtu: usize) -> Self {
        let tx = Sender::new(&rule(UP), packet, packet.len() * 8, 0, mtu).expect("sender");
        Self {
            id,
            tx,
            out: vec![0; mtu],
            end: None,
            wait: None,
        }
    }

    /// The next frame the device sends at `now`, if any.
    fn next(&mut self, now: Micros) -> Option<Vec<u8>> {
        if self.end.is_some() {
            return None;
        }
        match self.tx.poll(now, &mut self.out).expect("poll") {
            SenderAction::Send(n) => Some(self.out[..n].to_vec()),
            SenderAction::WaitUntil(t) => {
                self.wait = Some(t);
                None
            }
            a => {
                self.end = Some(a);
                None
            }
        }
    }
}

/// Routes the gateway's outputs: frames to their device's sender (unless `drop_acks` says to
/// lose it), packets into `delivered`; returns the other outputs.
fn route(
    outputs: Vec<Output<u64>>,
    devices: &mut [Device<'_>],
    delivered: &mut Vec<(u64, Vec<u8>)>,
    now: Micros,
    drop_acks: &mut dyn FnMut() -> bool,
) -> Vec<Output<u64>> {
    let mut rest = Vec::new();
    for o in outputs {
        match o {
            Output::Send { device, frame } => {
                if !drop_acks() {
                    let d = devices
                        .iter_mut()
                        .find(|d| d.id == device)
                        .expect("known device");
                    d.tx.handle_ack(&frame, now).expect("ack");
                }
            }
            Output::Delivered(d) => {
                assert_eq!(d.rule, UP);
                assert_eq!(d.dtag, Some(0));
                delivered.push((d.device, d.packet[..d.bits / 8].to_vec()));
            }
            other => rest.push(other),
        }
    }
    rest
}

/// Packets delivered, with the device they came from.
type Packets = Vec<(u64, Vec<u8>)>;

/// Runs the devices against the gateway, one frame of each in turn, until all are done;
/// `lose_frame` and `lose_ack` decide losses.
fn run(
    gw: &mut Sessions<u64>,
    devices: &mut [Device<'_>],
    lose_frame: &mut dyn FnMut(u64) -> bool,
    lose_ack: &mut dyn FnMut() -> bool,
) -> (Packets, Vec<Output<u64>>) {
    let mut now = 0;
    let mut delivered = Vec::new();
    let mut other = Vec::new();
    for _ in 0..100_000 {
        let mut sent = false;
        for i in 0..devices.len() {
            if let Some(f) = devices[i].next(now) {
                sent = true;
                if !lose_frame(devices[i].id) {
                    let out = gw.handle_uplink(devices[i].id, &f, now).expect("uplink");
                    other.extend(route(out, devices, &mut delivered, now, lose_ack));
                }
            }
        }
        if devices.iter().all(|d| d.end.is_some()) {
            return (delivered, other);
        }
        if !sent {
            // The devices have had their say at `now`; the gateway's timers run, then time
            // moves to the next deadline (as in `lpwan_schc::sim`, the device wins a tie).
            let out = gw.expire(now);
            let answered = out.iter().any(|o| matches!(o, Output::Send { .. }));
            other.extend(route(out, devices, &mut delivered, now, lose_ack));
            if answered {
                continue;
            }
            let next = devices
                .iter()
                .filter(|d| d.end.is_none())
                .filter_map(|d| d.wait)
                .chain(gw.next_deadline())
                .min()
                .expect("someone waits");
            now = next.max(now + 1);
        }
    }
    panic!("no end");
}

#[test]
fn devices_sharing_rule_and_dtag_never_mix_their_data() {
    let mut gw = Sessions::new(rules(), Limits::default());
    let packets: Vec<Vec<u8>> = (0..4).map(|i| packet(i, 200 + 150 * i as usize)).collect();
    let mut devices: Vec<Device<'_>> = packets
        .iter()
        .enumerate()
        .map(|(i, p)| Device::new(100 + i as u64, p, 51))
        .collect();
    // Device 101 loses its second and fifth frames: its ACK reports only its own gaps.
    let mut count = [0usize; 4];
    let mut lose = |dev: u64| {
        let i = (dev - 100) as usize;
        count[i] += 1;
        dev == 101 && (count[i] == 2 || count[i] == 5)
    };
    let (delivered, other) = run(&mut gw, &mut devices, &mut lose, &mut || false);
    assert!(other.is_empty(), "{other:?}");
    assert_eq!(delivered.len(), 4);
    for (i, p) in packets.iter().enumerate() {
        let got: Vec<_> = delivered
            .iter()
            .filter(|(d, _)| *d == 100 + i as u64)
            .collect();
        assert_eq!(got.len(), 1, "device {i} delivered once");
        assert_eq!(&got[0].1, p, "device {i}: its own packet");
    }
    for d in &devices {
        assert_eq!(d.end, Some(SenderAction::Done), "device {}", d.id);
    }
    // All four sessions completed under the same key but for the device.
    assert_eq!(gw.len(), 4);
    for i in 0..4 {
        let key = SessionKey {
            device: 100 + i,
            rule: UP,
            dtag: 0,
        };
        assert!(gw.is_completed(&key));
    }
}

#[test]
fn an_unfragmented_packet_comes_straight_out() {
    let mut gw = Sessions::new(rules(), Limits::default());
    let out = gw.handle_uplink(7u64, &[22, 1, 2, 3], 0).unwrap();
    match &out[..] {
        [Output::Delivered(d)] => {
            assert_eq!(d.device, 7);
            assert_eq!(d.rule, RuleId::new(22, 8));
            assert_eq!(d.dtag, None);
            assert_eq!(d.packet, [22, 1, 2, 3]);
            assert_eq!(d.bits, 32);
        }
        other => panic!("{other:?}"),
    }
    assert!(gw.is_empty());
}

#[test]
fn frames_that_cannot_be_taken_in_change_nothing() {
    let mut gw = Sessions::new(rules(), Limits::default());
    assert_eq!(
        gw.handle_uplink(1u64, &[], 0),
        Err(GatewayError::UnknownRule)
    );
    assert_eq!(
        gw.handle_uplink(1, &[99, 0], 0),
        Err(GatewayError::UnknownRule)
    );
    // Rule 21 fragments downlinks: an uplink under it is an ACK for a downlink session.
    assert_eq!(
        gw.handle_uplink(1, &[21, 0x80], 0),
        Err(GatewayError::AckForDownlink(DOWN))
    );
    let long = vec![20u8; 300];
    assert!(matches!(
        gw.handle_uplink(1, &long, 0),
        Err(GatewayError::FrameTooLong { len: 300, max: 256 })
    ));
    // A fragment header with no tile: malformed.
    assert!(matches!(
        gw.handle_uplink(1, &[20, 0x05], 0),
        Err(GatewayError::Frag(_))
    ));
    assert!(gw.is_empty());
    assert_eq!(gw.bytes(), 0);
}

#[test]
fn random_frames_never_panic_and_memory_stays_bounded() {
    let limits = Limits {
        max_sessions: 16,
        ..Limits::default()
    };
    let mut gw = Sessions::new(rules(), limits);
    let mut rng = SplitMix64::new(42);
    let mut now = 0;
    for _ in 0..20_000 {
        let len = (rng.next_u64() % 60) as usize;
        let mut f = vec![0u8; len];
        rng.fill_bytes(&mut f);
        if len > 0 && rng.next_u64() % 2 == 0 {
            f[0] = 20; // mostly fragments of rule 20
        }
        let dev = rng.next_u64() % 40;
        now += rng.next_u64() % 10_000_000_000;
        let _ = gw.handle_uplink(dev, &f, now);
        if rng.next_u64() % 100 == 0 {
            let _ = gw.expire(now);
        }
        assert!(gw.len() <= 16);
        assert!(gw.bytes() <= limits.max_bytes);
    }
}

#[test]
fn the_session_limit_evicts_the_least_recently_active() {
    let limits = Limits {
        max_sessions: 2,
        ..Limits::default()
    };
    let mut gw = Sessions::new(rules(), limits);
    let p = packet(1, 300);
    let first = |dev: u64| {
        let mut d = Device::new(dev, &p, 51);
        d.next(0).unwrap()
    };
    let f1 = first(1);
    let f2 = first(2);
    let f3 = first(3);
    assert!(gw.handle_uplink(1u64, &f1, 10).unwrap().is_empty());
    assert!(gw.handle_uplink(2, &f2, 20).unwrap().is_empty());
    // Device 1 is active again after device 2: device 2 is now the least recent.
    assert!(gw.handle_uplink(1, &f1, 30).unwrap().is_empty());
    let out = gw.handle_uplink(3, &f3, 40).unwrap();
    let bytes = gw.session_bytes(&rule(UP));
    assert_eq!(
        out,
        [Output::Evicted {
            session: SessionKey {
                device: 2,
                rule: UP,
                dtag: 0
            },
            cause: Eviction::SessionLimit,
            bytes,
        }]
    );
    assert_eq!(gw.len(), 2);
    assert_eq!(gw.bytes(), 2 * bytes);
}

#[test]
fn the_byte_limit_evicts_too() {
    let probe = Sessions::<u64>::new(rules(), Limits::default());
    let one = probe.session_bytes(&rule(UP));
    let limits = Limits {
        max_bytes: one * 5 / 2,
        ..Limits::default()
    };
    let mut gw = Sessions::new(rules(), limits);
    let p = packet(1, 300);
    let f = Device::new(0, &p, 51).next(0).unwrap();
    assert!(gw.handle_uplink(1u64, &f, 1).unwrap().is_empty());
    assert!(gw.handle_uplink(2, &f, 2).unwrap().is_empty());
    let out = gw.handle_uplink(3, &f, 3).unwrap();
    assert!(
        matches!(&out[..], [Output::Evicted { session, cause: Eviction::ByteLimit, bytes }]
            if session.device == 1 && *bytes == one),
        "{out:?}"
    );
    // One session larger than the whole budget is refused.
    let tiny = Limits {
        max_bytes: 100,
        ..Limits::default()
    };
    let mut gw = Sessions::new(rules(), tiny);
    assert!(matches!(
        gw.handle_uplink(1u64, &f, 0),
        Err(GatewayError::SessionTooLarge { .. })
    ));
}

#[test]
fn silent_sessions_expire_on_the_callers_clock() {
    let mut gw = Sessions::new(rules(), Limits::default());
    let p = packet(1, 300);
    let f = Device::new(0, &p, 51).next(0).unwrap();
    gw.handle_uplink(5u64, &f, 1_000).unwrap();
    assert_eq!(gw.next_deadline(), Some(1_000 + INACTIVITY));
    assert!(gw.expire(1_000 + INACTIVITY - 1).is_empty());
    assert_eq!(gw.len(), 1);
    let out = gw.expire(1_000 + INACTIVITY);
    assert_eq!(
        out,
        [
            // Receiver-Abort: rule 20, W = 11, C = 1, ones to the byte, one more byte of ones.
            Output::Send {
                device: 5,
                frame: vec![0x14, 0xFF, 0xFF]
            },
            Output::Aborted {
                session: SessionKey {
                    device: 5,
                    rule: UP,
                    dtag: 0
                },
                reason: AbortReason::Inactivity,
            }
        ]
    );
    assert!(gw.is_empty());
    assert_eq!(gw.bytes(), 0);
    assert_eq!(gw.next_deadline(), None);
}

#[test]
fn a_lost_success_ack_is_answered_again_without_a_second_delivery() {
    let mut gw = Sessions::new(rules(), Limits::default());
    let p = packet(3, 500);
    let mut devices = vec![Device::new(9, &p, 51)];
    // The first ACK (the success ACK after the All-1) is lost.
    let mut acks = 0;
    let mut lose_ack = || {
        acks += 1;
        acks == 1
    };
    let (delivered, other) = run(&mut gw, &mut devices, &mut |_| false, &mut lose_ack);
    assert!(other.is_empty(), "{other:?}");
    assert_eq!(delivered, [(9, p.clone())]);
    assert_eq!(devices[0].end, Some(SenderAction::Done));
    assert_eq!(
        acks, 2,
        "the ACK REQ after the timeout got the success ACK again"
    );
    // The completed session is forgotten after the inactivity timer.
    let key = SessionKey {
        device: 9,
        rule: UP,
        dtag: 0,
    };
    assert!(gw.is_completed(&key));
    let t = gw.next_deadline().unwrap();
    assert!(gw.expire(t).is_empty());
    assert!(gw.is_empty());
}

#[test]
fn the_next_packet_of_a_device_after_completion_is_reassembled() {
    let mut gw = Sessions::new(rules(), Limits::default());
    // Several packets in a row from one device, DTag 0 each time (RFC 9011: T = 0), some small
    // enough for a single All-1.
    for (i, n) in [300usize, 5, 700, 5, 6].into_iter().enumerate() {
        let p = packet(10 + i as u64, n);
        let mut devices = vec![Device::new(4, &p, 51)];
        let (delivered, other) = run(&mut gw, &mut devices, &mut |_| false, &mut || false);
        assert!(other.is_empty(), "{other:?}");
        assert_eq!(delivered, [(4, p.clone())], "packet {i}");
        assert_eq!(gw.len(), 1);
    }
}

#[test]
fn lossy_uplinks_deliver_through_the_table() {
    // Each frame and each ACK is lost with probability 0.2 (32 of the 40 uplinks get through:
    // the others run out of MAX_ACK_REQUESTS, or lose an ACK REQ when the gateway's 12 h
    // inactivity timer is as long as the device's retransmission timer).
    let mut ok = 0;
    for seed in 0..20 {
        let mut gw = Sessions::new(rules(), Limits::default());
        let p = packet(seed, 1280);
        let mut devices = vec![Device::new(1, &p, 51), Device::new(2, &p, 242)];
        let rng = std::cell::RefCell::new(SplitMix64::new(seed));
        let (delivered, _) = run(
            &mut gw,
            &mut devices,
            &mut |_| rng.borrow_mut().next_f64() < 0.2,
            &mut || rng.borrow_mut().next_f64() < 0.2,
        );
        for (dev, got) in &delivered {
            assert_eq!(got, &p, "seed {seed}, device {dev}");
        }
        for d in &devices {
            let done = d.end == Some(SenderAction::Done);
            let got = delivered.iter().any(|(dev, _)| *dev == d.id);
            assert!(
                !done || got,
                "seed {seed}: device {} done but nothing delivered",
                d.id
            );
            ok += usize::from(done);
        }
    }
    assert!(ok >= 30, "only {ok} of 40 uplinks delivered at 20% loss");
}

#[test]
fn per_device_rule_sets_reuse_rule_ids() {
    // Device 1 knows rule 20 as the RFC 9011 uplink rule; device 2 as its no-compression rule.
    let mut gw = Sessions::new(RuleSetBuf::new(), Limits::default());
    let set1 = rules();
    let mut set2 = RuleSetBuf::new();
    set2.push_no_compression(UP);
    let p = packet(1, 300);
    let f = Device::new(0, &p, 51).next(0).unwrap();
    assert!(gw
        .handle_uplink_with(&set1.as_set(), 1u64, &f, 0)
        .unwrap()
        .is_empty());
    let out = gw.handle_uplink_with(&set2.as_set(), 2, &f, 0).unwrap();
    assert!(
        matches!(&out[..], [Output::Delivered(d)] if d.device == 2 && d.dtag.is_none() && d.packet == f),
        "{out:?}"
    );
    assert_eq!(gw.len(), 1);
    assert_eq!(gw.handle_uplink(1, &f, 0), Err(GatewayError::UnknownRule));
}

/// A device receiving downlinks: its receiver over its own buffer.
fn device_rx() -> Receiver<Vec<u8>> {
    let r = rule(DOWN);
    Receiver::new(&r, vec![0; Receiver::buffer_len(&r, 64)], 0).expect("receiver")
}

#[test]
fn downlinks_to_several_devices() {
    let mut gw: Senders<u64> = Senders::new(Limits::default());
    let r = rule(DOWN);
    let packets: Vec<Vec<u8>> = (0..3)
        .map(|i| packet(20 + i, 60 + 40 * i as usize))
        .collect();
    let mut rxs: Vec<Receiver<Vec<u8>>> = (0..3).map(|_| device_rx()).collect();
    let mut queue: Vec<(u64, Vec<u8>)> = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        for o in gw.start(i as u64, &r, p, 0, 30, 0).unwrap() {
            match o {
                DownlinkOutput::Send { device, frame } => queue.push((device, frame)),
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(gw.len(), 3);
    assert!(matches!(
        gw.start(1, &r, &packets[0], 0, 30, 0),
        Err(GatewayError::Busy { .. })
    ));
    let mut done = Vec::new();
    let mut delivered = vec![None; 3];
    let mut ack = [0u8; 64];
    let mut steps = 0;
    // Frames are lost on the way down once in a while; the retransmission timer recovers.
    let mut rng = SplitMix64::new(5);
    let mut now = 0;
    while done.len() < 3 {
        steps += 1;
        assert!(steps < 10_000, "no end");
        if queue.is_empty() {
            now = gw.next_deadline().expect("a timer");
            for o in gw.poll(now) {
                match o {
                    DownlinkOutput::Send { device, frame } => queue.push((device, frame)),
                    other => panic!("{other:?}"),
                }
            }
            continue;
        }
        let (dev, frame) = queue.remove(0);
        if rng.next_f64() < 0.15 {
            continue;
        }
        let rx = &mut rxs[dev as usize];
        rx.handle_frame(&frame, now).unwrap();
        loop {
            let n = match rx.poll(now, &mut ack).unwrap() {
                ReceiverAction::Send(n) => n,
                ReceiverAction::Delivered { bits } => {
                    let (b, _) = rx.packet().expect("delivered");
                    delivered[dev as usize] = Some(b[..bits / 8].to_vec());
                    continue;
                }
                _ => break,
            };
            if rng.next_f64() < 0.15 {
                continue; // the ACK is lost on the way up
            }
            for o in gw.handle_ack(dev, &ack[..n], now).unwrap_or_default() {
                match o {
                    DownlinkOutput::Send { device, frame } => queue.push((device, frame)),
                    DownlinkOutput::Done { session } => done.push(session.device),
                    other => panic!("{other:?}"),
                }
            }
        }
    }
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(delivered[i].as_ref(), Some(p), "device {i}");
    }
    assert!(gw.is_empty());
    assert_eq!(gw.bytes(), 0);
    assert_eq!(gw.next_deadline(), None);
}

#[test]
fn downlink_mistakes() {
    let mut gw: Senders<u64> = Senders::new(Limits {
        max_sessions: 1,
        ..Limits::default()
    });
    let p = packet(1, 100);
    assert_eq!(
        gw.start(1, &rule(UP), &p, 0, 51, 0),
        Err(GatewayError::NotDownlink(UP))
    );
    let nocomp = *rules().as_set().get(RuleId::new(22, 8)).unwrap();
    assert_eq!(
        gw.start(1, &nocomp, &p, 0, 51, 0),
        Err(GatewayError::NotDownlink(RuleId::new(22, 8)))
    );
    assert!(matches!(
        gw.start(1, &rule(DOWN), &p, 0, 3, 0),
        Err(GatewayError::Frag(_))
    ));
    gw.start(1, &rule(DOWN), &p, 0, 51, 0).unwrap();
    assert_eq!(
        gw.start(2, &rule(DOWN), &p, 0, 51, 0),
        Err(GatewayError::Full)
    );
    assert_eq!(
        gw.handle_ack(2, &[21, 0xC0], 0),
        Err(GatewayError::NoSession)
    );
    // The device gives up: Receiver-Abort.
    let out = gw.handle_ack(1, &[21, 0xFF, 0xFF], 5).unwrap();
    assert_eq!(
        out,
        [DownlinkOutput::Aborted {
            session: SessionKey {
                device: 1,
                rule: DOWN,
                dtag: 0
            },
            reason: AbortReason::PeerAborted
        }]
    );
    assert!(gw.is_empty());
}

#[test]
fn an_unanswered_downlink_gives_up_after_max_ack_requests() {
    let mut gw: Senders<u64> = Senders::new(Limits::default());
    let p = packet(1, 100);
    let first = gw.start(1, &rule(DOWN), &p, 0, 51, 0).unwrap();
    assert_eq!(
        first.len(),
        1,
        "ACK-Always: one window of one tile, then wait"
    );
    let mut asked = 0;
    let mut aborts = 0;
    let mut end = None;
    while let Some(t) = gw.next_deadline() {
        for o in gw.poll(t) {
            match o {
                // ACK REQ: rule 21, W, FCN 0. Sender-Abort: W 1, FCN 1.
                DownlinkOutput::Send { frame, .. } if frame == [21, 0xC0] => aborts += 1,
                DownlinkOutput::Send { frame, .. } => {
                    assert!(frame.len() == 2 && frame[1] & 0x40 == 0, "{frame:?}");
                    asked += 1;
                }
                DownlinkOutput::Aborted { reason, .. } => end = Some(reason),
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(asked, 8, "MAX_ACK_REQUESTS ACK REQs");
    assert_eq!(aborts, 1, "then a Sender-Abort");
    assert_eq!(end, Some(AbortReason::TooManyAttempts));
    assert!(gw.is_empty());
}

#[test]
fn a_device_flooding_acks_ends_its_downlink() {
    let mut gw: Senders<u64> = Senders::new(Limits::default());
    let p = packet(1, 20);
    gw.start(1, &rule(DOWN), &p, 0, 51, 0).unwrap();
    // A failure ACK for the other window: ignored by the sender, again and again.
    let mut end = None;
    for i in 0..1000 {
        let out = gw.handle_ack(1, &[21, 0x80], i).unwrap_or_default();
        if let Some(DownlinkOutput::Aborted { reason, .. }) = out.last() {
            end = Some((i, *reason));
            break;
        }
    }
    let (i, reason) = end.expect("the session ends");
    assert_eq!(reason, AbortReason::TooManyAttempts);
    assert!(i < 100, "after {i} ACKs");
    assert!(gw.is_empty());
}

/// A long uplink over a bad link is not cut short while it advances: the sender counts
/// MAX_ACK_REQUESTS between ACKs that show progress, the receiver between new tiles. With the
/// shipped RFC 9011 uplink rule (MAX_ACK_REQUESTS 8, 108 h gateway inactivity), 1,200 bytes at
/// MTU 51 and 30 % loss both ways, every one of these seeds delivers the identical packet; when
/// every ACK REQ counted, eight of the twelve aborted.
#[test]
fn a_long_uplink_over_a_bad_link_delivers_while_it_advances() {
    use lpwan_schc::sim::{self, Link, SplitMix64};
    let set = rules();
    let rule = *set.as_set().get(RuleId::new(20, 8)).unwrap();
    for seed in 1..=12u64 {
        let mut rng = SplitMix64::new(seed);
        let mut packet = vec![0u8; 1200];
        rng.fill_bytes(&mut packet);
        let link = Link {
            mtu: 51,
            loss: 0.3,
            delay: 0,
            dtag: 0,
        };
        let r = sim::run(&rule, &packet, &link, &mut rng).unwrap();
        assert!(r.delivered && r.identical, "seed {seed}: {:?}", r.sender);
    }
}
