//! RFC 9011 through the profile API: the device endpoint and the network endpoint exchange
//! `(FPort, FRMPayload)` pairs.
//!
//! - V-LW-1..5 of `rfc-examples.md` (the IID, the header bytes, the appendix's uplink,
//!   downlink and unfragmented examples). The appendix gives sizes, not packets: its "300-byte
//!   packet" compressed to 8 + 21 + 279 × 8 bits cannot be IPv6/UDP (48 bytes of headers would
//!   leave 252 bytes of payload), so the tests use IPv6/UDP packets with the appendix's payload
//!   sizes (327, 175 and 85 bytes) and `rules/lorawan-ipv6-udp.json`'s rule 1, whose residue is
//!   the appendix's 21 bits: the SCHC packets then have exactly the appendix's sizes.
//! - 1,200-byte uplinks and downlinks over a lossy radio, several seeds.
//! - Two devices fragmenting at once under the same FPort and DTag, and device isolation.

mod common;
#[path = "../examples/lorawan_link/mod.rs"]
mod link;

use std::sync::Arc;

use common::{hex, to_hex};
use lpwan_schc::frag::AbortReason;
use lpwan_schc::network::{NetOutput, Network, NetworkError, NetworkLimits};
use lpwan_schc::profile::lorawan::{
    self, dev_iid, dev_iid_ascii, Buffers, Device, DeviceAction, DeviceError, IidForm,
};
use lpwan_schc::rule::{Nature, RuleSetBuf};
use lpwan_schc::sim::SplitMix64;

const RULES: &str = include_str!("../rules/lorawan-ipv6-udp.json");
const EUI: [u8; 8] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
const KEY: [u8; 16] = [
    0x00, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF, 0x00, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF, 0xAA, 0xBB,
];
const H: u64 = 3_600_000_000;

fn rules() -> Arc<RuleSetBuf> {
    Arc::new(lpwan_schc::json::from_str(RULES).unwrap())
}

/// The rule set with the uplink's last tile always in a regular fragment, as in RFC 9011's
/// appendix.
fn rules_no_tile_in_all1() -> Arc<RuleSetBuf> {
    let text = RULES.replace("all-1-data-sender-choice", "all-1-data-no");
    Arc::new(lpwan_schc::json::from_str(&text).unwrap())
}

struct Bufs {
    tx: Vec<u8>,
    rx: Vec<u8>,
}

impl Bufs {
    fn new() -> Self {
        Self {
            tx: vec![0; 2600],
            rx: vec![0; 1600],
        }
    }
}

fn device<'r, 'b>(set: &'r RuleSetBuf, b: &'b mut Bufs, eui: [u8; 8]) -> Device<'r, 'b> {
    Device::new(
        set.as_set(),
        eui,
        KEY,
        Buffers {
            tx: &mut b.tx,
            rx: &mut b.rx,
        },
    )
    .unwrap()
}

fn network(set: &Arc<RuleSetBuf>, euis: &[[u8; 8]]) -> Network {
    let mut net = Network::new(NetworkLimits::default());
    for e in euis {
        net.add_device(*e, set.clone(), KEY, 0).unwrap();
    }
    net
}

/// Polls the device until it waits; the frames it sends.
fn drain(dev: &mut Device<'_, '_>, now: u64, events: &mut Vec<DeviceAction>) -> Vec<(u8, Vec<u8>)> {
    let mut out = vec![0u8; 2048];
    let mut frames = Vec::new();
    loop {
        let a = dev.poll(now, &mut out).unwrap();
        match a {
            DeviceAction::Send { fport, len } => frames.push((fport, out[..len].to_vec())),
            DeviceAction::WaitUntil(_) | DeviceAction::Idle | DeviceAction::MtuTooSmall => {
                events.push(a);
                return frames;
            }
            DeviceAction::Delivered { len } => {
                events.push(a);
                // Keep the packet where the test can see it.
                frames.push((0, out[..len].to_vec()));
            }
            _ => events.push(a),
        }
    }
}

fn packet(total: usize, up: bool, seed: u64) -> Vec<u8> {
    link::coap_packet(dev_iid(&KEY, &EUI), total, up, &mut SplitMix64::new(seed))
}

// ---------------------------------------------------------------------------------------------
// V-LW-1: the IID

/// V-LW-1: RFC 9011 §5.3's inputs. Over the 8 binary DevEUI bytes (what the text specifies)
/// the IID is 4E822D9775B26499; the RFC prints BA59F4B196C6C343, which is the CMAC over the
/// 16 ASCII characters "1122334455667788": offered as `IidForm::Ascii`.
#[test]
fn v_lw_1_iid_binary_and_ascii_forms() {
    assert_eq!(to_hex(&dev_iid(&KEY, &EUI)), "4e822d9775b26499");
    assert_eq!(to_hex(&dev_iid_ascii(&KEY, &EUI)), "ba59f4b196c6c343");
    assert_eq!(
        lorawan::iid(&KEY, &EUI, IidForm::Ascii),
        dev_iid_ascii(&KEY, &EUI)
    );
    // Both endpoints derive the same IID from the same keys.
    let set = rules();
    let mut b = Bufs::new();
    let dev = device(&set, &mut b, EUI);
    let net = network(&set, &[EUI]);
    assert_eq!(dev.config().dev_iid, Some(dev_iid(&KEY, &EUI)));
    assert_eq!(net.dev_iid(&EUI), Some(dev_iid(&KEY, &EUI)));
    // The ASCII form at both ends.
    let mut b2 = Bufs::new();
    let mut dev2 = device(&set, &mut b2, EUI);
    dev2.set_iid_form(IidForm::Ascii);
    dev2.rejoin(KEY);
    let mut net2 = Network::new(NetworkLimits::default());
    net2.set_iid_form(IidForm::Ascii);
    net2.add_device(EUI, set.clone(), KEY, 0).unwrap();
    assert_eq!(dev2.config().dev_iid, Some(dev_iid_ascii(&KEY, &EUI)));
    assert_eq!(net2.dev_iid(&EUI), Some(dev_iid_ascii(&KEY, &EUI)));
}

/// The DevIID action at both ends: a packet from the IID the keys give compresses under rule 1
/// (the IID is not sent) and is rebuilt by the network with it; from another IID (another
/// AppSKey) it does not match rule 1 and travels under the no-compression rule 22, still
/// delivered exactly.
#[test]
fn deviid_action_uses_the_cmac_iid_at_both_ends() {
    let set = rules();
    let mut b = Bufs::new();
    let mut dev = device(&set, &mut b, EUI);
    let mut net = network(&set, &[EUI]);
    let mut ev = Vec::new();
    let p = packet(85, true, 5);
    dev.send(&p, 0).unwrap();
    let frames = drain(&mut dev, 0, &mut ev);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].0, 1);
    let out = net.handle_uplink(EUI, 1, &frames[0].1, 0).unwrap();
    assert_eq!(
        out,
        vec![NetOutput::Delivered {
            device: EUI,
            packet: p
        }]
    );

    // Another session key: the packet's IID is no longer the device's.
    dev.rejoin([0x42; 16]);
    let p = packet(85, true, 6);
    dev.set_mtu(242);
    dev.send(&p, 0).unwrap();
    let frames = drain(&mut dev, 0, &mut ev);
    assert_eq!(frames[0].0, lorawan::FPORT_NO_COMPRESSION);
    let out = net
        .handle_uplink(EUI, frames[0].0, &frames[0].1, 0)
        .unwrap();
    assert_eq!(
        out,
        vec![NetOutput::Delivered {
            device: EUI,
            packet: p
        }]
    );
}

// ---------------------------------------------------------------------------------------------
// V-LW-2: header bytes

/// V-LW-2 through the endpoints: the device's ACK REQ `00` and Sender-Abort `FF` on FPort 20,
/// the network's success ACK `20` (W 0) and `E0` (W 3), and its Receiver-Abort `FF FF`.
#[test]
fn v_lw_2_header_bytes_through_the_endpoints() {
    let set = rules();
    // The device asks (ACK REQ, W 0) at each retransmission timer, then gives up: the All-1
    // and 7 ACK REQs are MAX_ACK_REQUESTS (8) attempts (RFC 8724 §8.4.3.1).
    let mut b = Bufs::new();
    let mut dev = device(&set, &mut b, EUI);
    let mut ev = Vec::new();
    dev.send(&packet(200, true, 1), 0).unwrap();
    let frames = drain(&mut dev, 0, &mut ev);
    assert_eq!(
        frames.last().unwrap().1[0],
        0x3f,
        "the All-1 ends the window"
    );
    let DeviceAction::WaitUntil(mut t) = *ev.last().unwrap() else {
        panic!("{ev:?}")
    };
    let mut asked = Vec::new();
    for _ in 0..9 {
        let f = drain(&mut dev, t, &mut ev);
        asked.extend(f);
        match ev.last() {
            Some(DeviceAction::WaitUntil(next)) => t = *next,
            _ => break,
        }
    }
    let mut want: Vec<(u8, Vec<u8>)> = vec![(20, vec![0x00]); 7];
    want.push((20, vec![0xff]));
    assert_eq!(asked, want);
    assert!(ev.contains(&DeviceAction::UplinkAborted(AbortReason::TooManyAttempts)));

    // The network's success ACK for a one-window packet.
    let mut b = Bufs::new();
    let mut dev = device(&set, &mut b, EUI);
    let mut net = network(&set, &[EUI]);
    dev.send(&packet(200, true, 2), 0).unwrap();
    let mut acks = Vec::new();
    for (fport, p) in drain(&mut dev, 0, &mut ev) {
        for o in net.handle_uplink(EUI, fport, &p, 0).unwrap() {
            if let NetOutput::Send { fport, payload, .. } = o {
                acks.push((fport, payload));
            }
        }
    }
    assert_eq!(acks, vec![(20, vec![0x20])]);

    // W 3: a SCHC packet of more than three windows (190 tiles of 10 bytes).
    let mut dev = device(&set, &mut b, EUI);
    let mut schc = vec![22u8; 1900];
    SplitMix64::new(3).fill_bytes(&mut schc[1..]);
    dev.send_schc(&schc, 1900 * 8, 0).unwrap();
    dev.set_mtu(242);
    let mut acks = Vec::new();
    for (fport, p) in drain(&mut dev, 0, &mut ev) {
        for o in net.handle_uplink(EUI, fport, &p, 0).unwrap() {
            match o {
                NetOutput::Send { fport, payload, .. } => acks.push((fport, payload)),
                // Over the 1,280-byte decompression limit: reassembled, not decompressed.
                NetOutput::Undecodable { schc: s, .. } => assert_eq!(&s[..1900], &schc[..]),
                o => panic!("{o:?}"),
            }
        }
    }
    assert_eq!(acks, vec![(20, vec![0xe0])]);

    // The Receiver-Abort after the gateway's inactivity timer.
    let mut dev = device(&set, &mut b, EUI);
    dev.send(&packet(200, true, 4), 0).unwrap();
    let first = drain(&mut dev, 0, &mut ev).remove(0);
    assert!(net
        .handle_uplink(EUI, first.0, &first.1, 0)
        .unwrap()
        .is_empty());
    let t = net.next_deadline().unwrap();
    assert!(t > 100 * H, "about 108 h: {t}");
    let out = net.poll(t);
    assert_eq!(
        out,
        vec![
            NetOutput::Send {
                device: EUI,
                fport: 20,
                payload: vec![0xff, 0xff]
            },
            NetOutput::UplinkAborted {
                device: EUI,
                reason: AbortReason::Inactivity
            }
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// V-LW-3: the appendix's uplink

/// V-LW-3: a SCHC packet of 8 + 21 + 279 × 8 = 2261 bits, 29 tiles. The device's MTU is 11
/// bytes for the first uplink (one tile, FRMPayload 11 bytes), then 11 with 2 bytes of FOpts
/// (no tile fits: the device says so and sends nothing), then 242 with 4 bytes of FOpts (23
/// tiles, 231 bytes), then 242 (the last 5 tiles, 44 bytes), then the All-1 with the RCS only
/// (5 bytes, not the RFC's misprinted 44), and the network's ACK on FPort 20 is 1 byte (`20`).
#[test]
fn v_lw_3_uplink_example_through_the_profile() {
    let set = rules_no_tile_in_all1();
    let mut b = Bufs::new();
    let mut dev = device(&set, &mut b, EUI);
    let mut net = network(&set, &[EUI]);
    let p = packet(40 + 8 + 279, true, 9011);
    let mut ev = Vec::new();
    let mut out = vec![0u8; 2048];
    dev.set_mtu(11);
    dev.send(&p, 0).unwrap();
    let mut sent = Vec::new();
    let step = |dev: &mut Device<'_, '_>, mtu: usize, out: &mut Vec<u8>| -> DeviceAction {
        dev.set_mtu(mtu);
        dev.poll(0, out).unwrap()
    };
    // One frame per uplink, at the MTU of that uplink.
    for mtu in [11, 9, 238, 242, 242] {
        match step(&mut dev, mtu, &mut out) {
            DeviceAction::Send { fport, len } => sent.push((fport, out[..len].to_vec())),
            a => {
                assert_eq!((mtu, a), (9, DeviceAction::MtuTooSmall));
                ev.push(a);
            }
        }
    }
    let sizes: Vec<usize> = sent.iter().map(|f| f.1.len()).collect();
    assert_eq!(sizes, vec![11, 231, 44, 5]);
    assert!(sent.iter().all(|f| f.0 == 20));
    let first: Vec<u8> = sent.iter().map(|f| f.1[0]).collect();
    assert_eq!(to_hex(&first), "3e3d263f");
    // The first tile: the Rule ID (FPort 1 of the compressed packet), 21 bits of residue, and
    // the payload's first 6 bytes 3 bits.
    assert_eq!(sent[0].1[1], 0x01);
    let mut delivered = None;
    let mut acks = Vec::new();
    for (fport, f) in &sent {
        for o in net.handle_uplink(EUI, *fport, f, 0).unwrap() {
            match o {
                NetOutput::Send { fport, payload, .. } => acks.push((fport, payload)),
                NetOutput::Delivered { packet, .. } => delivered = Some(packet),
                o => panic!("{o:?}"),
            }
        }
    }
    assert_eq!(acks, vec![(20, vec![0x20])]);
    assert_eq!(delivered, Some(p));
    dev.handle_downlink(20, &[0x20], 0).unwrap();
    assert_eq!(dev.poll(0, &mut out).unwrap(), DeviceAction::UplinkDone);
    assert!(!dev.is_sending());
}

// ---------------------------------------------------------------------------------------------
// V-LW-4: the appendix's downlink

/// V-LW-4: a SCHC packet of 8 + 21 + 127 × 8 = 1045 bits sent down under FPort 21 with a
/// downlink MTU of 51 bytes, then 49 (2 bytes of FOpts): fragments of 51 and 49 bytes and the
/// All-1 of 36 (RFC 9011 prints 51, 49 and 37, the last with the FPort counted), W 0, 1, 0.
/// Our device answers the intermediate windows with C = 0 and a full bitmap (`20`, `A0`:
/// RFC 8724's Figures 31 and 32; the RFC 9011 appendix shows C = 1) and the last with `40`.
#[test]
fn v_lw_4_downlink_example_through_the_profile() {
    let set = rules();
    let mut b = Bufs::new();
    let mut dev = device(&set, &mut b, EUI);
    let mut net = network(&set, &[EUI]);
    let p = packet(40 + 8 + 127, false, 4);
    net.set_downlink_mtu(&EUI, 51, 0).unwrap();
    let mut frames = Vec::new();
    let mut acks = Vec::new();
    let mut delivered = None;
    let mut done = false;
    let mut queue: Vec<NetOutput> = net.send_downlink(EUI, &p, 0).unwrap();
    let mut ev = Vec::new();
    while let Some(o) = queue.pop() {
        match o {
            NetOutput::Send { fport, payload, .. } => {
                frames.push((fport, payload.clone()));
                dev.handle_downlink(fport, &payload, 0).unwrap();
                // The next downlinks carry 2 bytes of FOpts.
                net.set_downlink_mtu(&EUI, 49, 0).unwrap();
                for (fport, f) in drain(&mut dev, 0, &mut ev) {
                    if fport == 0 {
                        delivered = Some(f);
                        continue;
                    }
                    acks.push((fport, f.clone()));
                    queue.extend(net.handle_uplink(EUI, fport, &f, 0).unwrap());
                }
            }
            NetOutput::DownlinkDone { .. } => done = true,
            o => panic!("{o:?}"),
        }
    }
    let sizes: Vec<usize> = frames.iter().map(|f| f.1.len()).collect();
    assert_eq!(sizes, vec![51, 49, 36]);
    assert!(frames.iter().all(|f| f.0 == 21));
    let wf: Vec<u8> = frames.iter().map(|f| f.1[0] >> 6).collect();
    assert_eq!(wf, vec![0b00, 0b10, 0b01], "W/FCN: 0/0, 1/0, 0/1");
    assert_eq!(
        acks,
        vec![(21, hex("20")), (21, hex("a0")), (21, hex("40"))]
    );
    assert_eq!(delivered, Some(p));
    assert!(done);
    assert!(net.senders().is_empty());
}

// ---------------------------------------------------------------------------------------------
// V-LW-5: no fragmentation

/// V-LW-5: a packet with a 37-byte payload compresses under rule 1 (FPort 1) to the 21-bit
/// residue, the payload and 3 bits of padding: a 40-byte FRMPayload, delivered exactly.
#[test]
fn v_lw_5_uplink_without_fragmentation() {
    let set = rules();
    let mut b = Bufs::new();
    let mut dev = device(&set, &mut b, EUI);
    let mut net = network(&set, &[EUI]);
    let p = packet(40 + 8 + 37, true, 5);
    dev.send(&p, 0).unwrap();
    let mut ev = Vec::new();
    let frames = drain(&mut dev, 0, &mut ev);
    assert_eq!(frames.len(), 1);
    assert_eq!((frames[0].0, frames[0].1.len()), (1, 40));
    assert_eq!(frames[0].1[39] & 0x07, 0, "3 zero padding bits");
    assert_eq!(ev, vec![DeviceAction::Idle]);
    assert_eq!(
        net.handle_uplink(EUI, 1, &frames[0].1, 0).unwrap(),
        vec![NetOutput::Delivered {
            device: EUI,
            packet: p.clone()
        }]
    );
    // And the same packet down: one frame, delivered by the device.
    let mut down = packet(40 + 8 + 37, false, 5);
    down[48..].copy_from_slice(&p[48..]);
    let sum = lpwan_schc::codec::udp_checksum(&down);
    down[46..48].copy_from_slice(&sum.to_be_bytes());
    let out = net.send_downlink(EUI, &down, 0).unwrap();
    let [NetOutput::Send { fport, payload, .. }] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!((*fport, payload.len()), (1, 40));
    dev.handle_downlink(*fport, payload, 0).unwrap();
    let mut buf = vec![0u8; 1500];
    assert_eq!(
        dev.poll(0, &mut buf).unwrap(),
        DeviceAction::Delivered { len: 85 }
    );
    assert_eq!(&buf[..85], &down[..]);
}

// ---------------------------------------------------------------------------------------------
// Lossy exchanges

fn lossy_uplink(seed: u64, loss: f64) -> link::Run {
    let set = rules();
    let mut b = Bufs::new();
    let mut dev = device(&set, &mut b, EUI);
    let mut net = network(&set, &[EUI]);
    let mut rng = SplitMix64::new(seed);
    let p = link::coap_packet(dev_iid(&KEY, &EUI), 1200, true, &mut rng);
    dev.send(&p, 0).unwrap();
    let mut radio = link::Radio {
        loss,
        rng,
        down_mtus: vec![51],
        up_mtu: 51,
    };
    let run = link::run(&mut dev, &mut net, EUI, &mut radio, Vec::new(), 0).unwrap();
    assert_eq!(run.delivered_up.as_ref(), Some(&p), "seed {seed}");
    run
}

/// 1,200 bytes up through 51-byte payloads, 20 % loss both ways, seeds 1 to 8: delivered
/// exactly, the device sees the final ACK, and frames were really lost.
#[test]
fn uplink_1200_bytes_lossy_seeds() {
    let mut lost = 0;
    for seed in 1..=8 {
        let run = lossy_uplink(seed, 0.2);
        assert!(run.uplink_done, "seed {seed}: {:?}", run.uplink_aborted);
        assert!(run.up_frames.iter().all(|f| f.1.len() <= 51));
        lost += run.lost;
    }
    assert!(lost > 20, "{lost} frames lost in all");
}

/// Without loss: 1,200 bytes compress to 9,245 bits (Rule ID, 21-bit residue, 1,152 bytes),
/// 116 tiles of 10 bytes (the last 45 bits), 5 tiles per 51-byte fragment: 23 fragments, the
/// All-1 with the last tile, one ACK.
#[test]
fn uplink_1200_bytes_no_loss_frame_count() {
    let run = lossy_uplink(1, 0.0);
    assert_eq!((run.uplinks, run.downlinks, run.lost), (24, 1, 0));
    let last = &run.up_frames.last().unwrap().1;
    // W 1, All-1, the RCS, the 45-bit tile and 3 bits of padding.
    assert_eq!((last[0], last.len()), (0x7f, 1 + 4 + 6));
    assert!(run.uplink_done);
}

/// 1,200 bytes down, the downlink MTU drawn per downlink among 51 and 49 bytes (2 bytes of
/// FOpts or none), 20 % loss both ways, seeds 1 to 8. Every downlink fits the MTU of its moment
/// (the link checks it). ACK-Always allows MAX_ACK_REQUESTS (8) attempts per one-tile window,
/// so at 20 % loss both ways a window fails now and then (seeds 1 to 20 of the example: 18
/// deliver); a failed run must end with the sender's TooManyAttempts and deliver nothing wrong.
#[test]
fn downlink_1200_bytes_lossy_seeds_variable_mtu() {
    let mut delivered = 0;
    let mut sizes = Vec::new();
    for seed in 1..=8u64 {
        let set = rules();
        let mut b = Bufs::new();
        let mut dev = device(&set, &mut b, EUI);
        let mut net = network(&set, &[EUI]);
        let mut rng = SplitMix64::new(seed);
        let p = link::coap_packet(dev_iid(&KEY, &EUI), 1200, false, &mut rng);
        let first = net.send_downlink(EUI, &p, 0).unwrap();
        let mut radio = link::Radio {
            loss: 0.2,
            rng,
            down_mtus: vec![51, 49],
            up_mtu: 51,
        };
        let run = link::run(&mut dev, &mut net, EUI, &mut radio, first, 0).unwrap();
        sizes.extend(run.down_frames.iter().map(|f| f.1.len()));
        if run.downlink_done {
            assert_eq!(run.delivered_down.as_ref(), Some(&p), "seed {seed}");
            delivered += 1;
        } else {
            assert_eq!(
                run.downlink_aborted,
                Some(AbortReason::TooManyAttempts),
                "seed {seed}"
            );
            assert!(run.delivered_down.is_none());
        }
    }
    assert!(sizes.contains(&51) && sizes.contains(&49));
    assert!(delivered >= 6, "{delivered} of 8");
}

/// With an MTU too small for the next fragment, the downlink waits and says so; a larger MTU
/// releases it.
#[test]
fn downlink_waits_for_an_mtu_that_fits() {
    let set = rules();
    let mut b = Bufs::new();
    let mut dev = device(&set, &mut b, EUI);
    let mut net = network(&set, &[EUI]);
    let p = packet(400, false, 8);
    let out = net.send_downlink(EUI, &p, 0).unwrap();
    let [NetOutput::Send { fport, payload, .. }] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(payload.len(), 51);
    dev.handle_downlink(*fport, payload, 0).unwrap();
    let mut ev = Vec::new();
    let ack = drain(&mut dev, 0, &mut ev).remove(0);
    // One byte of FRMPayload cannot hold a tile of an L2 word after the 10-bit header.
    net.set_downlink_mtu(&EUI, 1, 0).unwrap();
    let out = net.handle_uplink(EUI, ack.0, &ack.1, 0).unwrap();
    assert_eq!(
        out,
        vec![NetOutput::DownlinkMtuTooSmall {
            device: EUI,
            mtu: 1
        }]
    );
    let out = net.set_downlink_mtu(&EUI, 20, 0).unwrap();
    let [NetOutput::Send { payload, .. }] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(payload.len(), 20);
}

// ---------------------------------------------------------------------------------------------
// Two devices, isolation

/// Two devices fragment 1,200-byte packets at once under the same FPort (20) and DTag (none):
/// their frames interleave at the network, which keeps two sessions and delivers each device's
/// own bytes.
#[test]
fn two_devices_same_fport_and_dtag_at_once() {
    let set = rules();
    let other: [u8; 8] = [0x70, 0xB3, 0xD5, 0x7E, 0xD0, 0, 0, 2];
    let (mut b1, mut b2) = (Bufs::new(), Bufs::new());
    let mut d1 = device(&set, &mut b1, EUI);
    let mut d2 = device(&set, &mut b2, other);
    let mut net = network(&set, &[EUI, other]);
    let p1 = packet(1200, true, 1);
    let p2 = link::coap_packet(dev_iid(&KEY, &other), 1200, true, &mut SplitMix64::new(2));
    d1.send(&p1, 0).unwrap();
    d2.send(&p2, 0).unwrap();
    let mut ev = Vec::new();
    let f1 = drain(&mut d1, 0, &mut ev);
    let f2 = drain(&mut d2, 0, &mut ev);
    assert_eq!(f1.len(), f2.len());
    assert!(f1.iter().chain(&f2).all(|f| f.0 == 20));
    let mut got = Vec::new();
    for (i, (a, b)) in f1.iter().zip(&f2).enumerate() {
        for (eui, f) in [(EUI, a), (other, b)] {
            for o in net.handle_uplink(eui, f.0, &f.1, i as u64).unwrap() {
                match o {
                    NetOutput::Delivered { device, packet } => got.push((device, packet)),
                    NetOutput::Send {
                        device,
                        fport,
                        payload,
                    } => {
                        // 116 tiles: the success ACK names the last window, W 1.
                        assert_eq!((fport, payload.as_slice()), (20, &[0x60][..]));
                        let d = if device == EUI { &mut d1 } else { &mut d2 };
                        d.handle_downlink(fport, &payload, 0).unwrap();
                    }
                    o => panic!("{o:?}"),
                }
            }
        }
        if i == 3 {
            assert_eq!(net.sessions().len(), 2);
        }
    }
    assert_eq!(got, vec![(EUI, p1), (other, p2)]);
    let mut out = vec![0u8; 64];
    assert_eq!(d1.poll(0, &mut out).unwrap(), DeviceAction::UplinkDone);
    assert_eq!(d2.poll(0, &mut out).unwrap(), DeviceAction::UplinkDone);
}

/// A frame of one device never touches another's context: each device has its own rule set
/// (the second lacks rule 1), its own IID, its own reassembly and its own downlink; an ACK
/// from one device leaves the other's downlink where it was.
#[test]
fn one_device_never_touches_another() {
    let full = rules();
    let mut bare = RuleSetBuf::new();
    for r in lorawan::RULES {
        match r.nature {
            Nature::Fragmentation(p) => bare.push_fragmentation(r.id, p),
            _ => bare.push_no_compression(r.id),
        }
    }
    let bare = Arc::new(bare);
    let other: [u8; 8] = [9; 8];
    let mut net = Network::new(NetworkLimits::default());
    net.add_device(EUI, full.clone(), KEY, 0).unwrap();
    net.add_device(other, bare.clone(), [7; 16], 0).unwrap();
    assert_ne!(net.dev_iid(&EUI), net.dev_iid(&other));
    // Rule 1 exists for the first device only.
    let mut b = Bufs::new();
    let mut d1 = device(&full, &mut b, EUI);
    let p = packet(85, true, 1);
    d1.send(&p, 0).unwrap();
    let mut ev = Vec::new();
    let f = drain(&mut d1, 0, &mut ev).remove(0);
    assert_eq!(
        net.handle_uplink(other, f.0, &f.1, 0),
        Err(NetworkError::UnknownFPort {
            device: other,
            fport: 1
        })
    );
    assert!(matches!(
        &net.handle_uplink(EUI, f.0, &f.1, 0).unwrap()[..],
        [NetOutput::Delivered { .. }]
    ));
    // A fragment of the first device's uplink, then the same bytes from the second: two
    // sessions; the second device's abort ends only its own.
    let mut d1 = device(&full, &mut b, EUI);
    d1.send(&packet(600, true, 2), 0).unwrap();
    let frag = drain(&mut d1, 0, &mut ev).remove(0);
    net.handle_uplink(EUI, frag.0, &frag.1, 0).unwrap();
    net.handle_uplink(other, frag.0, &frag.1, 0).unwrap();
    assert_eq!(net.sessions().len(), 2);
    assert_eq!(
        net.handle_uplink(other, 20, &[0xff], 0).unwrap(),
        vec![NetOutput::UplinkAborted {
            device: other,
            reason: AbortReason::PeerAborted
        }]
    );
    assert_eq!(net.sessions().len(), 1);
    assert!(net.sessions().keys().all(|k| k.device == EUI));
    // Downlinks to both; an ACK from the second moves only the second's.
    let d = packet(400, false, 3);
    let s1 = net.send_downlink(EUI, &d, 0).unwrap();
    let s2 = net.send_downlink(other, &[22u8; 300], 0).unwrap();
    assert_eq!((s1.len(), s2.len()), (1, 1));
    assert_eq!(net.senders().len(), 2);
    let out = net.handle_uplink(other, 21, &[0x20], 1).unwrap();
    assert!(out
        .iter()
        .all(|o| matches!(o, NetOutput::Send { device, .. } if *device == other)));
    // The first device's downlink still waits for its own ACK: its timer has not moved.
    let out = net.poll(1);
    assert!(out.is_empty());
    // Unknown devices are refused.
    assert_eq!(
        net.handle_uplink([1; 8], 20, &[0], 0),
        Err(NetworkError::UnknownDevice([1; 8]))
    );
}

// ---------------------------------------------------------------------------------------------
// Limits and bad input

/// The device table is capped; idle devices make room and are dropped at poll with their
/// sessions.
#[test]
fn device_cap_and_idle_eviction() {
    let set = rules();
    let limits = NetworkLimits {
        max_devices: 2,
        device_idle: Some(10 * H),
        ..NetworkLimits::default()
    };
    let mut net = Network::new(limits);
    net.add_device([1; 8], set.clone(), KEY, 0).unwrap();
    net.add_device([2; 8], set.clone(), KEY, 5 * H).unwrap();
    assert_eq!(
        net.add_device([3; 8], set.clone(), KEY, 6 * H),
        Err(NetworkError::TooManyDevices)
    );
    // Device 1 has been idle for 10 h at 10 h: it makes room.
    assert_eq!(
        net.add_device([3; 8], set.clone(), KEY, 10 * H).unwrap(),
        vec![NetOutput::DeviceRemoved { device: [1; 8] }]
    );
    assert!(!net.contains(&[1; 8]));
    // A fragment from device 2 opens a session; when device 2 has been idle long enough, poll
    // drops it and its session.
    net.handle_uplink([2; 8], 20, &[0x3e; 11], 11 * H).unwrap();
    assert_eq!(net.sessions().len(), 1);
    assert_eq!(net.next_deadline(), Some(20 * H));
    let out = net.poll(21 * H);
    assert!(out.contains(&NetOutput::DeviceRemoved { device: [2; 8] }));
    assert!(out.contains(&NetOutput::DeviceRemoved { device: [3; 8] }));
    assert_eq!((net.devices(), net.sessions().len()), (0, 0));
}

/// Malformed input is refused with typed errors, at both ends, and leaves them working.
#[test]
fn bad_input_is_refused_and_harmless() {
    let set = rules();
    let mut b = Bufs::new();
    let mut dev = device(&set, &mut b, EUI);
    let mut net = network(&set, &[EUI]);
    assert_eq!(
        dev.handle_downlink(0, &[1], 0),
        Err(DeviceError::NotSchc(0))
    );
    assert_eq!(
        dev.handle_downlink(224, &[1], 0),
        Err(DeviceError::NotSchc(224))
    );
    assert_eq!(
        dev.handle_downlink(30, &[1], 0),
        Err(DeviceError::UnknownFPort(30))
    );
    assert!(matches!(
        dev.handle_downlink(21, &[0u8; 243], 0),
        Err(DeviceError::PayloadTooLong { len: 243, .. })
    ));
    assert!(matches!(
        net.handle_uplink(EUI, 21, &[], 0),
        Err(NetworkError::Gateway(_)) | Ok(_)
    ));
    assert_eq!(
        net.handle_uplink(EUI, 0, &[1], 0),
        Err(NetworkError::NotSchc(0))
    );
    // Random frames on every FPort in both directions never panic, and the endpoints still
    // carry a packet afterwards.
    let mut rng = SplitMix64::new(77);
    let mut out = vec![0u8; 2048];
    for i in 0..3000u64 {
        let fport = [1u8, 20, 21, 22][(rng.next_u64() % 4) as usize];
        let mut p = vec![0u8; (rng.next_u64() % 60) as usize];
        rng.fill_bytes(&mut p);
        let _ = dev.handle_downlink(fport, &p, i);
        while let Ok(a) = dev.poll(i, &mut out) {
            if matches!(a, DeviceAction::WaitUntil(_) | DeviceAction::Idle) {
                break;
            }
        }
        let _ = net.handle_uplink(EUI, fport, &p, i);
        let _ = net.poll(i);
    }
    assert!(net.sessions().len() <= 1);
    let mut net = network(&set, &[EUI]);
    let mut b = Bufs::new();
    let mut dev = device(&set, &mut b, EUI);
    let run = {
        let p = packet(700, true, 1);
        dev.send(&p, 0).unwrap();
        let mut radio = link::Radio {
            loss: 0.0,
            rng: SplitMix64::new(1),
            down_mtus: vec![51],
            up_mtu: 51,
        };
        let r = link::run(&mut dev, &mut net, EUI, &mut radio, Vec::new(), 0).unwrap();
        assert_eq!(r.delivered_up, Some(p));
        r
    };
    assert!(run.uplink_done);
}

/// The profile's constants are the shipped rule file's parameters.
#[test]
fn profile_constants_match_the_rule_file() {
    let set =
        lpwan_schc::json::from_str(include_str!("../rules/lorawan-fragmentation.json")).unwrap();
    let got: Vec<_> = set.as_set().rules().to_vec();
    assert_eq!(got, lorawan::RULES.to_vec());
}

/// RFC 9011's uplink rule carries SCHC packets of up to 2,520 bytes: a 2,400-byte IPv6 packet
/// comes out whole when the network side allows packets that large, and is refused as
/// undecodable (not truncated) under the default 1,280-byte limit.
#[test]
fn uplinks_larger_than_1280_bytes_follow_the_network_limit() {
    let set = rules();
    let p = packet(2400, true, 7);
    for (max, whole) in [(4096, true), (1280, false)] {
        let mut net = Network::new(NetworkLimits {
            max_packet_size: max,
            ..NetworkLimits::default()
        });
        net.add_device(EUI, set.clone(), KEY, 0).unwrap();
        let mut b = Bufs::new();
        let mut dev = device(&set, &mut b, EUI);
        dev.send(&p, 0).unwrap();
        let (mut delivered, mut refused) = (None, false);
        let mut events = Vec::new();
        for (fport, payload) in drain(&mut dev, 0, &mut events) {
            for o in net.handle_uplink(EUI, fport, &payload, 0).unwrap() {
                match o {
                    NetOutput::Delivered { packet, .. } => delivered = Some(packet),
                    NetOutput::Undecodable { .. } => refused = true,
                    _ => {}
                }
            }
        }
        if whole {
            assert_eq!(delivered.as_deref(), Some(&p[..]), "limit {max}");
        } else {
            assert!(refused && delivered.is_none(), "limit {max}");
        }
    }
}
