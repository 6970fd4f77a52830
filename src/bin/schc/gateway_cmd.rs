//! `schc gateway --config FILE`: runs the bridge between a LoRaWAN network server's MQTT
//! integration and IPv6 until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use lpwan_schc::bridge::{self, metrics::Metrics, Config};

/// `schc gateway --help`.
pub const GATEWAY_HELP: &str = "\
Bridges a LoRaWAN network server and IPv6 with SCHC (RFC 9011). It connects to the MQTT broker \
of the network server's integration (ChirpStack v4 or The Things Stack v3), takes the uplink \
events of the configured application, reassembles and decompresses them per device (DevEUI) \
and delivers the IPv6 packets to a UDP peer or a TUN interface; IPv6 packets coming back are \
compressed, fragmented when they exceed the device's downlink MTU, and published as downlinks \
on the rule's FPort. ACKs travel both ways. Counters are served in the Prometheus text format \
at http://<metrics.listen>/metrics. SIGINT or SIGTERM stops it after handing over everything \
already received. The configuration is TOML; see the bridge::config module documentation or \
docs/gateway.md for every key.";

/// `schc gateway` arguments.
#[derive(Args)]
pub struct GatewayArgs {
    /// The TOML configuration file.
    #[arg(long)]
    config: PathBuf,
    /// Check the configuration (and the rule files it names), print a summary and exit.
    #[arg(long)]
    check: bool,
}

/// Runs `schc gateway`.
pub fn run(args: GatewayArgs) -> Result<(), String> {
    let cfg = Config::load(&args.config).map_err(|e| e.to_string())?;
    if args.check {
        let bridge = bridge::Bridge::new(&cfg, Arc::new(Metrics::default()));
        let topics = match bridge.subscriptions() {
            [one] => format!("topic {one}"),
            many => format!("{} topics", many.len()),
        };
        println!(
            "{}: ok: {} devices, broker {}:{}, {topics}",
            args.config.display(),
            cfg.devices.len(),
            cfg.mqtt.host,
            cfg.mqtt.port,
        );
        return Ok(());
    }
    bridge::run::init_logging(&cfg);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let metrics = Arc::new(Metrics::default());
        bridge::run::run(cfg, metrics, stop_signal())
            .await
            .map_err(|e| e.to_string())
    })
}

/// Completes on SIGINT or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
