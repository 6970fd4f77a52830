//! A simulated LoRaWAN radio between one `Device` and a `Network`, shared by the
//! `lorawan_uplink` and `lorawan_downlink` examples and by `tests/lorawan.rs`.
//!
//! Frames cross one at a time, each taking a second of simulated air time, and each is lost
//! with the given probability, drawn from a seeded SplitMix64, in both directions. When
//! neither side has a frame to send, the clock jumps to the earliest timer of either side.
//! Before every network call that may send downlinks, the downlink MTU is drawn from
//! `down_mtus` (RFC 9011: the downlink MTU changes with each downlink's data rate and FOpts),
//! and every frame is checked against the MTU of its moment.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::error::Error;

use lpwan_schc::codec::udp_checksum;
use lpwan_schc::frag::{AbortReason, Micros};
use lpwan_schc::network::{DevEui, NetOutput, Network};
use lpwan_schc::profile::lorawan::{Device, DeviceAction};
use lpwan_schc::sim::SplitMix64;

/// The examples' `main`: runs `one(seed, loss)` for the seed given as the second argument, or
/// seeds 1 to 5, with the loss given as the first argument or `default_loss`; prints each
/// outcome and fails if any seed failed.
pub fn run_seeds(
    default_loss: f64,
    one: impl Fn(u64, f64) -> Result<String, Box<dyn Error>>,
) -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let loss: f64 = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(default_loss);
    let seeds: Vec<u64> = match args.get(1).and_then(|a| a.parse().ok()) {
        Some(s) => vec![s],
        None => (1..=5).collect(),
    };
    let mut failed = 0;
    for seed in seeds {
        match one(seed, loss) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                println!("seed {seed}: FAILED: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}

/// Simulated air time of one frame.
pub const AIR_US: Micros = 1_000_000;

/// The prefixes and ports of `rules/lorawan-ipv6-udp.json`'s rule 1.
pub const DEV_PREFIX: [u8; 8] = [0x20, 0x01, 0x0d, 0xb8, 0x00, 0x0a, 0x00, 0x00];
/// The application's prefix.
pub const APP_PREFIX: [u8; 8] = [0x20, 0x01, 0x0d, 0xb8, 0x00, 0x0b, 0x00, 0x00];
/// The application's IID.
pub const APP_IID: [u8; 8] = [0, 0, 0, 0, 0, 0, 0, 1];

/// An IPv6/UDP/CoAP packet of exactly `total` bytes (at least 60) between the device with IID
/// `dev_iid` and the application, uplink (`up`) or downlink, its content drawn from `rng`: a
/// confirmable CoAP POST to `/temp` with a 2-byte token, and a payload filling the rest.
pub fn coap_packet(dev_iid: [u8; 8], total: usize, up: bool, rng: &mut SplitMix64) -> Vec<u8> {
    assert!(total >= 60, "a packet of {total} bytes is too short");
    let mut p = vec![0u8; total];
    let fl = (rng.next_u64() & 0xF_FFFF) as u32;
    // Version 6, traffic class 0, a random flow label.
    p[0] = 0x60;
    p[1] = (fl >> 16) as u8 & 0x0F;
    p[2] = (fl >> 8) as u8;
    p[3] = fl as u8;
    let pl = (total - 40) as u16;
    p[4..6].copy_from_slice(&pl.to_be_bytes());
    p[6] = 17;
    p[7] = 64;
    let (dev, app) = ((DEV_PREFIX, dev_iid), (APP_PREFIX, APP_IID));
    let (src, dst) = if up { (dev, app) } else { (app, dev) };
    p[8..16].copy_from_slice(&src.0);
    p[16..24].copy_from_slice(&src.1);
    p[24..32].copy_from_slice(&dst.0);
    p[32..40].copy_from_slice(&dst.1);
    let dev_port: u16 = 5684 + (rng.next_u64() & 1) as u16;
    let (sp, dp) = if up {
        (dev_port, 5683)
    } else {
        (5683, dev_port)
    };
    p[40..42].copy_from_slice(&sp.to_be_bytes());
    p[42..44].copy_from_slice(&dp.to_be_bytes());
    p[44..46].copy_from_slice(&pl.to_be_bytes());
    // CoAP: version 1, CON, TKL 2, POST, message ID, token, Uri-Path "temp", payload marker.
    let coap = [
        0x42,
        0x02,
        rng.next_u64() as u8,
        rng.next_u64() as u8,
        0xA1,
        0xB2,
        0xB4,
        b't',
        b'e',
        b'm',
        b'p',
        0xFF,
    ];
    p[48..48 + coap.len()].copy_from_slice(&coap);
    rng.fill_bytes(&mut p[48 + coap.len()..]);
    let sum = udp_checksum(&p);
    p[46..48].copy_from_slice(&sum.to_be_bytes());
    p
}

/// What one simulated exchange did.
#[derive(Debug, Default)]
pub struct Run {
    /// The packet the network delivered (uplink), decompressed.
    pub delivered_up: Option<Vec<u8>>,
    /// The packet the device delivered (downlink), decompressed.
    pub delivered_down: Option<Vec<u8>>,
    /// The device's fragmented uplink was acknowledged.
    pub uplink_done: bool,
    /// It failed.
    pub uplink_aborted: Option<AbortReason>,
    /// The network's fragmented downlink was acknowledged.
    pub downlink_done: bool,
    /// It failed.
    pub downlink_aborted: Option<AbortReason>,
    /// Frames sent up and down, lost ones included.
    pub uplinks: usize,
    /// Downlink frames.
    pub downlinks: usize,
    /// Frames lost.
    pub lost: usize,
    /// Bytes of FRMPayload sent, both ways.
    pub bytes: usize,
    /// The simulated clock at the end.
    pub now: Micros,
    /// Every uplink `(fport, payload)`, in order, lost ones included.
    pub up_frames: Vec<(u8, Vec<u8>)>,
    /// Every downlink `(fport, payload, mtu of its moment)`.
    pub down_frames: Vec<(u8, Vec<u8>, usize)>,
}

/// A lossy radio.
pub struct Radio {
    /// Loss probability, each frame, both directions.
    pub loss: f64,
    /// Draws the losses and the MTUs.
    pub rng: SplitMix64,
    /// Downlink MTUs (FRMPayload bytes) to draw from before each network call.
    pub down_mtus: Vec<usize>,
    /// The uplink MTU (FRMPayload bytes).
    pub up_mtu: usize,
}

impl Radio {
    fn lose(&mut self) -> bool {
        self.loss > 0.0 && self.rng.next_f64() < self.loss
    }

    fn draw_mtu(&mut self) -> usize {
        let n = self.down_mtus.len().max(1) as u64;
        let i = (self.rng.next_u64() % n) as usize;
        self.down_mtus.get(i).copied().unwrap_or(51)
    }
}

fn take(run: &mut Run, outs: Vec<NetOutput>, mtu: usize, down: &mut VecDeque<(u8, Vec<u8>)>) {
    for o in outs {
        match o {
            NetOutput::Send { fport, payload, .. } => {
                assert!(
                    payload.len() <= mtu,
                    "downlink of {} bytes at MTU {mtu}",
                    payload.len()
                );
                run.down_frames.push((fport, payload.clone(), mtu));
                down.push_back((fport, payload));
            }
            NetOutput::Delivered { packet, .. } => run.delivered_up = Some(packet),
            NetOutput::DownlinkDone { .. } => run.downlink_done = true,
            NetOutput::DownlinkAborted { reason, .. } => run.downlink_aborted = Some(reason),
            other => eprintln!("network: {other:?}"),
        }
    }
}

/// Runs the radio between `dev` and `net` (the device is `eui`) from `now` until both the
/// fragmented transfer under way has ended at its sender and nothing is in flight, or
/// nothing more can happen. Start the transfer (`dev.send`, `net.send_downlink`) first and pass
/// the network's outputs of that call as `first`.
pub fn run(
    dev: &mut Device<'_, '_>,
    net: &mut Network,
    eui: DevEui,
    radio: &mut Radio,
    first: Vec<NetOutput>,
    mut now: Micros,
) -> Result<Run, Box<dyn Error>> {
    let mut run = Run::default();
    let mut out = vec![0u8; 2048];
    let mut up: VecDeque<(u8, Vec<u8>)> = VecDeque::new();
    let mut down: VecDeque<(u8, Vec<u8>)> = VecDeque::new();
    let mut mtu = radio.draw_mtu();
    for o in net.set_downlink_mtu(&eui, mtu, now)? {
        take(&mut run, vec![o], mtu, &mut down);
    }
    take(&mut run, first, 51, &mut down);
    dev.set_mtu(radio.up_mtu);
    for _ in 0..1_000_000 {
        let mut dev_wait = None;
        loop {
            match dev.poll(now, &mut out)? {
                DeviceAction::Send { fport, len } => {
                    assert!(len <= radio.up_mtu);
                    up.push_back((fport, out[..len].to_vec()));
                }
                DeviceAction::Delivered { len } => run.delivered_down = Some(out[..len].to_vec()),
                DeviceAction::UplinkDone => run.uplink_done = true,
                DeviceAction::UplinkAborted(r) => run.uplink_aborted = Some(r),
                DeviceAction::DownlinkAborted(r) => eprintln!("device: downlink aborted: {r}"),
                DeviceAction::MtuTooSmall => return Err("uplink MTU too small".into()),
                DeviceAction::WaitUntil(t) => {
                    dev_wait = Some(t);
                    break;
                }
                DeviceAction::Idle => break,
            }
        }
        let moved = !up.is_empty() || !down.is_empty();
        while let Some((fport, payload)) = up.pop_front() {
            now += AIR_US;
            run.uplinks += 1;
            run.bytes += payload.len();
            run.up_frames.push((fport, payload.clone()));
            if radio.lose() {
                run.lost += 1;
                continue;
            }
            mtu = radio.draw_mtu();
            let outs = net.set_downlink_mtu(&eui, mtu, now)?;
            take(&mut run, outs, mtu, &mut down);
            let outs = net.handle_uplink(eui, fport, &payload, now)?;
            take(&mut run, outs, mtu, &mut down);
        }
        while let Some((fport, payload)) = down.pop_front() {
            now += AIR_US;
            run.downlinks += 1;
            run.bytes += payload.len();
            if radio.lose() {
                run.lost += 1;
                continue;
            }
            dev.handle_downlink(fport, &payload, now)?;
        }
        let sender_ended = run.uplink_done
            || run.uplink_aborted.is_some()
            || run.downlink_done
            || run.downlink_aborted.is_some();
        if moved {
            continue;
        }
        if sender_ended {
            break;
        }
        let next = [dev_wait, net.next_deadline()].into_iter().flatten().min();
        let Some(t) = next else { break };
        now = now.max(t);
        mtu = radio.draw_mtu();
        let outs = net.set_downlink_mtu(&eui, mtu, now)?;
        take(&mut run, outs, mtu, &mut down);
        let outs = net.poll(now);
        take(&mut run, outs, mtu, &mut down);
    }
    run.now = now;
    Ok(run)
}
