//! The gateway bridge (feature `bridge`): a LoRaWAN network server's MQTT integration on one
//! side, IPv6 on the other, SCHC (RFC 9011) in between.
//!
//! - [`config`]: the TOML configuration, checked ([`Config`]).
//! - [`ns`]: the MQTT topics and JSON of ChirpStack v4 (with ChirpStack's own types,
//!   `chirpstack_api`) and The Things Stack v3.
//! - [`metrics`]: counters and their Prometheus exposition.
//! - [`Bridge`] (this module): the sans-IO core. It owns a [`Network`] (a context per DevEUI,
//!   reassembly sessions, fragmented downlinks) and turns MQTT messages, IPv6 packets and the
//!   clock into [`Action`]s: publish this, deliver that. It does no I/O and reads no clock.
//! - [`run`]: the service around it (tokio): the MQTT connection with retry and backoff, the
//!   UDP socket or TUN interface, the timers, `/metrics` over HTTP, and a graceful shutdown.
//!
//! Uplinks: an uplink event's FPort and FRMPayload go to [`Network::handle_uplink`]; a whole
//! SCHC packet (at once, or reassembled) is decompressed and delivered, ACKs for fragmented
//! uplinks are published as downlinks on the fragmentation rule's FPort. Downlinks: the IPv6
//! packet's destination IID names the device (each device's DevIID, from its AppSKey); it is
//! compressed, fragmented if it exceeds the device's downlink MTU, and published; the device's
//! ACKs come back as uplinks.

pub mod config;
pub mod metrics;
pub mod ns;
pub mod run;

use std::collections::HashMap;
use std::sync::Arc;

use tracing::{debug, info, warn};

pub use config::{Config, ConfigError};
use config::{DeviceConfig, NetworkServerKind, Subscribe};
use metrics::{Failure, Metrics};

use crate::frag::Micros;
use crate::network::{hex, DevEui, NetOutput, Network, NetworkError};

/// What the bridge asks its caller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Publish `payload` on `topic` (QoS 1).
    Publish {
        /// The topic.
        topic: String,
        /// The payload (JSON).
        payload: Vec<u8>,
    },
    /// Hand this uplink IPv6 packet to the IPv6 side.
    Deliver {
        /// The device it came from.
        device: DevEui,
        /// The packet.
        packet: Vec<u8>,
    },
}

/// The sans-IO bridge; see the [module documentation](self).
#[derive(Debug)]
pub struct Bridge {
    ns: NetworkServerKind,
    network: Network,
    devices: HashMap<DevEui, DeviceConfig>,
    /// DevIID → DevEUI, for routing downlinks.
    routes: HashMap<[u8; 8], DevEui>,
    /// The Things Stack device IDs, from the configuration and learnt from uplinks.
    device_ids: HashMap<DevEui, String>,
    subscriptions: Vec<String>,
    metrics: Arc<Metrics>,
}

impl Bridge {
    /// A bridge for `cfg`'s network server and devices, counting into `metrics`.
    pub fn new(cfg: &Config, metrics: Arc<Metrics>) -> Self {
        let mut network = Network::new(cfg.limits);
        network.set_iid_form(cfg.iid_form);
        let mut routes = HashMap::new();
        let mut device_ids = HashMap::new();
        for d in &cfg.devices {
            routes.insert(
                crate::profile::lorawan::iid(&d.app_skey, &d.dev_eui, cfg.iid_form),
                d.dev_eui,
            );
            if let Some(id) = &d.tts_device_id {
                device_ids.insert(d.dev_eui, id.clone());
            }
        }
        let ns = &cfg.network_server;
        let filters = match cfg.mqtt.subscribe {
            Subscribe::Application => vec![ns.uplink_filter()],
            Subscribe::Devices => cfg
                .devices
                .iter()
                .filter_map(|d| ns.device_topic(&d.dev_eui, d.tts_device_id.as_deref()))
                .collect(),
        };
        let subscriptions = match &cfg.mqtt.share_group {
            Some(g) => filters.iter().map(|f| format!("$share/{g}/{f}")).collect(),
            None => filters,
        };
        Self {
            ns: cfg.network_server.clone(),
            subscriptions,
            network,
            devices: cfg.devices.iter().map(|d| (d.dev_eui, d.clone())).collect(),
            routes,
            device_ids,
            metrics,
        }
    }

    /// The topic filters to subscribe to: the application's uplinks, or each configured
    /// device's (`mqtt.subscribe`), in a shared-subscription group if configured.
    pub fn subscriptions(&self) -> &[String] {
        &self.subscriptions
    }

    /// The network side (contexts, sessions, downlinks), for inspection.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Loads the device's context unless it is loaded (contexts are dropped when idle or to make
    /// room, and come back on the device's next frame).
    fn ensure(&mut self, dev: DevEui, now: Micros, out: &mut Vec<Action>) -> bool {
        if self.network.contains(&dev) {
            return true;
        }
        let Some(d) = self.devices.get(&dev) else {
            self.metrics.fail(Failure::UnknownDevice);
            warn!(dev_eui = %hex(&dev), "frame of a device the configuration does not list");
            return false;
        };
        let (rules, key, mtu, app_iid) = (d.rules.clone(), d.app_skey, d.downlink_mtu, d.app_iid);
        let removed = match self.network.add_device(dev, rules, key, now) {
            Ok(o) => o,
            Err(e) => {
                self.metrics.fail(Failure::TooManyDevices);
                warn!(dev_eui = %hex(&dev), error = %e, "device context refused");
                return false;
            }
        };
        let _ = self.network.set_app_iid(&dev, app_iid);
        let more = self
            .network
            .set_downlink_mtu(&dev, mtu, now)
            .unwrap_or_default();
        debug!(dev_eui = %hex(&dev), "device context loaded");
        self.outputs(removed.into_iter().chain(more), out);
        true
    }

    /// Takes an MQTT message from the uplink subscription.
    pub fn handle_mqtt(&mut self, topic: &str, payload: &[u8], now: Micros) -> Vec<Action> {
        let mut out = Vec::new();
        let up = match self.ns.parse_uplink(topic, payload) {
            Ok(u) => u,
            Err(e) => {
                self.metrics.fail(Failure::BadEvent);
                warn!(error = %e, "MQTT message ignored");
                return out;
            }
        };
        if let Some(id) = &up.device_id {
            if self.device_ids.get(&up.dev_eui) != Some(id) {
                self.device_ids.insert(up.dev_eui, id.clone());
            }
        }
        let Some(fport) = up.fport else {
            debug!(dev_eui = %hex(&up.dev_eui), "uplink without FPort (MAC only)");
            return out;
        };
        if !self.ensure(up.dev_eui, now, &mut out) {
            return out;
        }
        Metrics::add(&self.metrics.uplink_frames, 1);
        Metrics::add(&self.metrics.uplink_frame_bytes, up.payload.len() + 1);
        debug!(dev_eui = %hex(&up.dev_eui), fport, bytes = up.payload.len(), f_cnt = up.f_cnt, "uplink");
        match self
            .network
            .handle_uplink(up.dev_eui, fport, &up.payload, now)
        {
            Ok(o) => self.outputs(o, &mut out),
            Err(e) => self.network_error(up.dev_eui, e),
        }
        self.gauges();
        out
    }

    /// Takes an IPv6 packet from the IPv6 side, for the device its destination names.
    pub fn handle_ipv6(&mut self, packet: &[u8], now: Micros) -> Vec<Action> {
        let mut out = Vec::new();
        let dst_iid: Option<[u8; 8]> = packet
            .get(32..40)
            .filter(|_| packet.first().is_some_and(|b| b >> 4 == 6))
            .and_then(|s| s.try_into().ok());
        let Some(dev) = dst_iid.and_then(|iid| self.routes.get(&iid).copied()) else {
            self.metrics.fail(Failure::NoRoute);
            warn!(
                bytes = packet.len(),
                "downlink packet for no configured device"
            );
            return out;
        };
        if !self.ensure(dev, now, &mut out) {
            return out;
        }
        match self.network.send_downlink(dev, packet, now) {
            Ok(o) => {
                Metrics::add(&self.metrics.downlink_packets, 1);
                Metrics::add(&self.metrics.downlink_packet_bytes, packet.len());
                debug!(dev_eui = %hex(&dev), bytes = packet.len(), "downlink packet");
                self.outputs(o, &mut out);
            }
            Err(e) => self.network_error(dev, e),
        }
        self.gauges();
        out
    }

    /// Runs the timers due at `now`.
    pub fn poll(&mut self, now: Micros) -> Vec<Action> {
        let mut out = Vec::new();
        let o = self.network.poll(now);
        self.outputs(o, &mut out);
        self.gauges();
        out
    }

    /// When [`Bridge::poll`] next has work.
    pub fn next_deadline(&self) -> Option<Micros> {
        self.network.next_deadline()
    }

    fn gauges(&self) {
        let m = &self.metrics;
        Metrics::set(&m.devices, self.network.devices());
        Metrics::set(&m.sessions, self.network.sessions().len());
        Metrics::set(&m.session_bytes, self.network.sessions().bytes());
        Metrics::set(&m.downlinks_in_progress, self.network.senders().len());
    }

    fn network_error(&self, dev: DevEui, e: NetworkError) {
        let kind = match &e {
            NetworkError::UnknownDevice(_) => Failure::UnknownDevice,
            NetworkError::TooManyDevices => Failure::TooManyDevices,
            NetworkError::NotSchc(_) | NetworkError::UnknownFPort { .. } => Failure::NotSchc,
            NetworkError::NoFragmentation { .. } | NetworkError::Compress(_) => Failure::Compress,
            NetworkError::PayloadTooLong { .. }
            | NetworkError::Gateway(_)
            | NetworkError::Profile(_) => Failure::BadFrame,
        };
        self.metrics.fail(kind);
        warn!(dev_eui = %hex(&dev), error = %e, kind = kind.as_str(), "refused");
    }

    fn outputs(&mut self, outputs: impl IntoIterator<Item = NetOutput>, out: &mut Vec<Action>) {
        let m = &self.metrics;
        for o in outputs {
            match o {
                NetOutput::Send {
                    device,
                    fport,
                    payload,
                } => {
                    let id = self.device_ids.get(&device).map(String::as_str);
                    match self.ns.downlink(&device, id, fport, &payload) {
                        Some(p) => {
                            Metrics::add(&m.downlink_frames, 1);
                            Metrics::add(&m.downlink_frame_bytes, payload.len() + 1);
                            debug!(dev_eui = %hex(&device), fport, bytes = payload.len(), "downlink frame");
                            out.push(Action::Publish {
                                topic: p.topic,
                                payload: p.payload,
                            });
                        }
                        None => {
                            m.fail(Failure::NoDeviceId);
                            warn!(dev_eui = %hex(&device), "downlink dropped: The Things Stack device ID not known yet (set tts_device_id, or wait for an uplink)");
                        }
                    }
                }
                NetOutput::Delivered { device, packet } => {
                    Metrics::add(&m.uplink_packets, 1);
                    Metrics::add(&m.uplink_packet_bytes, packet.len());
                    info!(dev_eui = %hex(&device), bytes = packet.len(), "uplink packet delivered");
                    out.push(Action::Deliver { device, packet });
                }
                NetOutput::Undecodable {
                    device,
                    schc,
                    error,
                } => {
                    m.fail(Failure::Undecodable);
                    warn!(dev_eui = %hex(&device), schc = %hex(&schc), error = %error, "SCHC packet does not decompress");
                }
                NetOutput::UplinkAborted { device, reason } => {
                    m.fail(Failure::UplinkAborted);
                    warn!(dev_eui = %hex(&device), reason = ?reason, "uplink reassembly aborted");
                }
                NetOutput::UplinkEvicted { device, cause } => {
                    m.fail(Failure::Evicted);
                    warn!(dev_eui = %hex(&device), cause = ?cause, "uplink reassembly evicted");
                }
                NetOutput::Rejected { device, error } => {
                    m.fail(Failure::BadFrame);
                    warn!(dev_eui = %hex(&device), error = %error, "uplink frame refused");
                }
                NetOutput::DownlinkDone { device } => {
                    Metrics::add(&m.downlinks_done, 1);
                    info!(dev_eui = %hex(&device), "fragmented downlink acknowledged");
                }
                NetOutput::DownlinkAborted { device, reason } => {
                    m.fail(Failure::DownlinkAborted);
                    warn!(dev_eui = %hex(&device), reason = ?reason, "fragmented downlink aborted");
                }
                NetOutput::DownlinkMtuTooSmall { device, mtu } => {
                    m.fail(Failure::DownlinkMtu);
                    warn!(dev_eui = %hex(&device), mtu, "downlink fragment waits for a larger MTU");
                }
                NetOutput::DeviceRemoved { device } => {
                    Metrics::add(&m.devices_dropped, 1);
                    info!(dev_eui = %hex(&device), "device context dropped");
                }
            }
        }
    }
}
