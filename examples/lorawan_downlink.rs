//! The network side sends a 1,200-byte IPv6/UDP/CoAP packet to an end device (RFC 9011:
//! compression rule 1, then ACK-Always fragmentation under FPort 21) over a lossy radio whose
//! downlink MTU changes from one downlink to the next (51 or 49 bytes: 2 bytes of
//! FOpts, or none); the device must deliver the exact packet.
//!
//! ```sh
//! cargo run --release --example lorawan_downlink            # seeds 1 to 5, 10 % loss
//! cargo run --release --example lorawan_downlink -- 0.2 7   # 20 % loss, seed 7
//! ```
//!
//! Exits non-zero if the packet is not delivered or its bytes differ. The default loss is
//! lower than the uplink example's: RFC 9011's downlink is ACK-Always with one tile per window
//! and MAX_ACK_REQUESTS 8 attempts per window, so at 20 % loss both ways about one 1,200-byte
//! downlink in ten fails (seeds 1 to 20: 18 deliver; at 10 %: 20), and the sender reports it.

#[path = "lorawan_link/mod.rs"]
mod link;

use std::process::ExitCode;
use std::sync::Arc;

use lpwan_schc::network::{Network, NetworkLimits};
use lpwan_schc::profile::lorawan::{dev_iid, Buffers, Device};
use lpwan_schc::sim::SplitMix64;

const DEV_EUI: [u8; 8] = [0x70, 0xB3, 0xD5, 0x7E, 0xD0, 0x00, 0x42, 0x02];
const APP_SKEY: [u8; 16] = *b"another-appskey!";

fn main() -> ExitCode {
    link::run_seeds(0.1, one)
}

fn one(seed: u64, loss: f64) -> Result<String, Box<dyn std::error::Error>> {
    let rules = Arc::new(lpwan_schc::json::from_str(include_str!(
        "../rules/lorawan-ipv6-udp.json"
    ))?);
    let mut net = Network::new(NetworkLimits::default());
    net.add_device(DEV_EUI, rules.clone(), APP_SKEY, 0)?;
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
    let packet = link::coap_packet(dev_iid(&APP_SKEY, &DEV_EUI), 1200, false, &mut rng);
    let first = net.send_downlink(DEV_EUI, &packet, 0)?;
    let mut radio = link::Radio {
        loss,
        rng,
        down_mtus: vec![51, 49],
        up_mtu: 51,
    };
    let run = link::run(&mut dev, &mut net, DEV_EUI, &mut radio, first, 0)?;
    match &run.delivered_down {
        Some(p) if *p == packet => {}
        Some(_) => return Err("the delivered packet differs".into()),
        None => return Err(format!("not delivered: {:?}", run.downlink_aborted).into()),
    }
    if !run.downlink_done {
        return Err(format!(
            "the network never saw the final ACK: {:?}",
            run.downlink_aborted
        )
        .into());
    }
    Ok(format!(
        "seed {seed}: delivered 1200 bytes exactly; {} downlinks, {} uplinks, {} lost, {} payload bytes, {:.0} s simulated",
        run.downlinks,
        run.uplinks,
        run.lost,
        run.bytes,
        run.now as f64 / 1e6
    ))
}
