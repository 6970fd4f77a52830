//! An end device sends a 1,200-byte IPv6/UDP/CoAP packet to the network side through 51-byte
//! LoRaWAN payloads over a lossy radio (RFC 9011: compression rule 1, then ACK-on-Error
//! fragmentation under FPort 20), and the network side must deliver the exact packet.
//!
//! ```sh
//! cargo run --release --example lorawan_uplink            # seeds 1 to 5, 20 % loss both ways
//! cargo run --release --example lorawan_uplink -- 0.3 7   # 30 % loss, seed 7
//! ```
//!
//! Exits non-zero if a packet is not delivered or its bytes differ.

#[path = "lorawan_link/mod.rs"]
mod link;

use std::process::ExitCode;
use std::sync::Arc;

use lpwan_schc::network::{Network, NetworkLimits};
use lpwan_schc::profile::lorawan::{dev_iid, Buffers, Device};
use lpwan_schc::sim::SplitMix64;

const DEV_EUI: [u8; 8] = [0x70, 0xB3, 0xD5, 0x7E, 0xD0, 0x00, 0x42, 0x01];
const APP_SKEY: [u8; 16] = *b"an-appskey-16-by";

fn main() -> ExitCode {
    link::run_seeds(0.2, one)
}

fn one(seed: u64, loss: f64) -> Result<String, Box<dyn std::error::Error>> {
    // The network side: one rule set, shared by every device that uses it.
    let rules = Arc::new(lpwan_schc::json::from_str(include_str!(
        "../rules/lorawan-ipv6-udp.json"
    ))?);
    let mut net = Network::new(NetworkLimits::default());
    net.add_device(DEV_EUI, rules.clone(), APP_SKEY, 0)?;

    // The device: its rule set, two buffers, the keys of its session.
    let (mut tx, mut rx) = (vec![0u8; 1300], vec![0u8; 1600]);
    let mut dev = Device::new(
        rules.as_set(),
        DEV_EUI,
        APP_SKEY,
        Buffers {
            tx: &mut tx,
            rx: &mut rx,
        },
    )?;

    let mut rng = SplitMix64::new(seed);
    let packet = link::coap_packet(dev_iid(&APP_SKEY, &DEV_EUI), 1200, true, &mut rng);
    dev.send(&packet, 0)?;
    let mut radio = link::Radio {
        loss,
        rng,
        down_mtus: vec![51],
        up_mtu: 51,
    };
    let run = link::run(&mut dev, &mut net, DEV_EUI, &mut radio, Vec::new(), 0)?;
    match &run.delivered_up {
        Some(p) if *p == packet => {}
        Some(_) => return Err("the delivered packet differs".into()),
        None => return Err(format!("not delivered ({run:?})").into()),
    }
    if !run.uplink_done {
        return Err(format!(
            "the device never saw the final ACK: {:?}",
            run.uplink_aborted
        )
        .into());
    }
    Ok(format!(
        "seed {seed}: delivered 1200 bytes exactly; {} uplinks, {} downlinks, {} lost, {} payload bytes, {:.0} s simulated",
        run.uplinks,
        run.downlinks,
        run.lost,
        run.bytes,
        run.now as f64 / 1e6
    ))
}
