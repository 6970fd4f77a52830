//! The bridge's counters, shared between the bridge and the HTTP task, and their Prometheus
//! text exposition (format 0.0.4).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// What went wrong, counted by kind in `schc_failures_total{kind=...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// An MQTT message on the uplink topic that is not an uplink event of this application.
    BadEvent,
    /// An uplink of a device the configuration does not list.
    UnknownDevice,
    /// An uplink on an FPort without SCHC (0, 224-255) or without a rule of the device's set.
    NotSchc,
    /// A frame the reassembly refused (malformed, or for a session it does not fit).
    BadFrame,
    /// A whole SCHC packet that does not decompress.
    Undecodable,
    /// A reassembly that ended without a packet (the device gave up, or the inactivity timer).
    UplinkAborted,
    /// A reassembly dropped to respect a cap.
    Evicted,
    /// A device refused because the device table is full.
    TooManyDevices,
    /// A downlink IPv6 packet for no configured device (by its destination's DevIID), or not
    /// IPv6.
    NoRoute,
    /// A downlink packet no rule compresses, or too long for one frame without a downlink
    /// fragmentation rule.
    Compress,
    /// A fragmented downlink the device did not acknowledge.
    DownlinkAborted,
    /// A downlink fragment waits for a larger downlink MTU.
    DownlinkMtu,
    /// A downlink for a The Things Stack device whose device ID is not known yet.
    NoDeviceId,
    /// Writing a packet to the IPv6 side failed.
    Delivery,
    /// Publishing to the broker failed.
    Publish,
}

impl Failure {
    /// Every kind, in exposition order.
    pub const ALL: [Failure; 15] = [
        Failure::BadEvent,
        Failure::UnknownDevice,
        Failure::NotSchc,
        Failure::BadFrame,
        Failure::Undecodable,
        Failure::UplinkAborted,
        Failure::Evicted,
        Failure::TooManyDevices,
        Failure::NoRoute,
        Failure::Compress,
        Failure::DownlinkAborted,
        Failure::DownlinkMtu,
        Failure::NoDeviceId,
        Failure::Delivery,
        Failure::Publish,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::BadEvent => "bad_event",
            Failure::UnknownDevice => "unknown_device",
            Failure::NotSchc => "not_schc",
            Failure::BadFrame => "bad_frame",
            Failure::Undecodable => "undecodable",
            Failure::UplinkAborted => "uplink_aborted",
            Failure::Evicted => "evicted",
            Failure::TooManyDevices => "too_many_devices",
            Failure::NoRoute => "no_route",
            Failure::Compress => "compress",
            Failure::DownlinkAborted => "downlink_aborted",
            Failure::DownlinkMtu => "downlink_mtu",
            Failure::NoDeviceId => "no_device_id",
            Failure::Delivery => "delivery",
            Failure::Publish => "publish",
        }
    }
}

/// Counters and gauges. All are relaxed atomics: each is exact, a scrape is not a snapshot.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Uplink frames taken from the broker (FRMPayloads with an FPort).
    pub uplink_frames: AtomicU64,
    /// Their FRMPayload bytes plus one for the FPort: the SCHC side of uplinks.
    pub uplink_frame_bytes: AtomicU64,
    /// Uplink IPv6 packets delivered.
    pub uplink_packets: AtomicU64,
    /// Their bytes: the IPv6 side of uplinks.
    pub uplink_packet_bytes: AtomicU64,
    /// Downlink IPv6 packets taken in and compressed.
    pub downlink_packets: AtomicU64,
    /// Their bytes.
    pub downlink_packet_bytes: AtomicU64,
    /// Downlink frames published (packets, fragments, ACKs for uplinks).
    pub downlink_frames: AtomicU64,
    /// Their FRMPayload bytes plus one for the FPort.
    pub downlink_frame_bytes: AtomicU64,
    /// Fragmented downlinks the devices acknowledged.
    pub downlinks_done: AtomicU64,
    /// Connections to the broker made (the first one included).
    pub mqtt_connections: AtomicU64,
    /// Failed connection attempts.
    pub mqtt_connect_failures: AtomicU64,
    /// 1 while connected to the broker.
    pub mqtt_connected: AtomicU64,
    /// Device contexts dropped (idle, or to make room for another device); the next frame of
    /// the device loads it again.
    pub devices_dropped: AtomicU64,
    /// Device contexts loaded (gauge).
    pub devices: AtomicU64,
    /// Uplink reassembly sessions (gauge).
    pub sessions: AtomicU64,
    /// Bytes held by reassembly sessions (gauge).
    pub session_bytes: AtomicU64,
    /// Fragmented downlinks in progress (gauge).
    pub downlinks_in_progress: AtomicU64,
    failures: [AtomicU64; Failure::ALL.len()],
}

impl Metrics {
    /// Counts one failure of `kind`.
    pub fn fail(&self, kind: Failure) {
        if let Some(c) = self.failures.get(kind as usize) {
            c.fetch_add(1, Relaxed);
        }
    }

    /// Failures of `kind` so far.
    pub fn failures(&self, kind: Failure) -> u64 {
        self.failures
            .get(kind as usize)
            .map_or(0, |c| c.load(Relaxed))
    }

    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Relaxed);
    }

    /// Sets a gauge.
    pub fn set(gauge: &AtomicU64, n: usize) {
        gauge.store(n as u64, Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(4096);
        let mut one = |name: &str, kind: &str, help: &str, samples: &[(&str, &AtomicU64)]| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in samples {
                let _ = writeln!(s, "{name}{labels} {}", v.load(Relaxed));
            }
        };
        one(
            "schc_frames_total",
            "counter",
            "LoRaWAN frames carrying SCHC (FRMPayloads with their FPort).",
            &[
                ("{direction=\"up\"}", &self.uplink_frames),
                ("{direction=\"down\"}", &self.downlink_frames),
            ],
        );
        one(
            "schc_frame_bytes_total",
            "counter",
            "Bytes of those frames, FPort included: the compressed side.",
            &[
                ("{direction=\"up\"}", &self.uplink_frame_bytes),
                ("{direction=\"down\"}", &self.downlink_frame_bytes),
            ],
        );
        one(
            "schc_packets_total",
            "counter",
            "IPv6 packets: uplinks delivered, downlinks compressed.",
            &[
                ("{direction=\"up\"}", &self.uplink_packets),
                ("{direction=\"down\"}", &self.downlink_packets),
            ],
        );
        one(
            "schc_packet_bytes_total",
            "counter",
            "Bytes of those IPv6 packets: the uncompressed side.",
            &[
                ("{direction=\"up\"}", &self.uplink_packet_bytes),
                ("{direction=\"down\"}", &self.downlink_packet_bytes),
            ],
        );
        one(
            "schc_downlinks_acknowledged_total",
            "counter",
            "Fragmented downlinks the device acknowledged.",
            &[("", &self.downlinks_done)],
        );
        one(
            "schc_device_contexts_dropped_total",
            "counter",
            "Device contexts dropped (idle, or to make room); reloaded on the next frame.",
            &[("", &self.devices_dropped)],
        );
        one(
            "schc_mqtt_connections_total",
            "counter",
            "Connections made to the broker.",
            &[("", &self.mqtt_connections)],
        );
        one(
            "schc_mqtt_connect_failures_total",
            "counter",
            "Failed connection attempts to the broker.",
            &[("", &self.mqtt_connect_failures)],
        );
        one(
            "schc_mqtt_connected",
            "gauge",
            "1 while connected to the broker.",
            &[("", &self.mqtt_connected)],
        );
        one(
            "schc_devices",
            "gauge",
            "Device contexts loaded.",
            &[("", &self.devices)],
        );
        one(
            "schc_sessions",
            "gauge",
            "Uplink reassembly sessions.",
            &[("", &self.sessions)],
        );
        one(
            "schc_session_bytes",
            "gauge",
            "Bytes held by uplink reassembly sessions.",
            &[("", &self.session_bytes)],
        );
        one(
            "schc_downlinks_in_progress",
            "gauge",
            "Fragmented downlinks in progress.",
            &[("", &self.downlinks_in_progress)],
        );
        let labels: Vec<String> = Failure::ALL
            .iter()
            .map(|f| format!("{{kind=\"{}\"}}", f.as_str()))
            .collect();
        let samples: Vec<(&str, &AtomicU64)> = labels
            .iter()
            .map(String::as_str)
            .zip(self.failures.iter())
            .collect();
        one(
            "schc_failures_total",
            "counter",
            "Failures by kind.",
            &samples,
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_every_failure_kind() {
        let m = Metrics::default();
        m.fail(Failure::NoRoute);
        m.fail(Failure::NoRoute);
        Metrics::add(&m.uplink_frames, 3);
        let text = m.render();
        assert!(text.contains("schc_failures_total{kind=\"no_route\"} 2\n"));
        assert!(text.contains("schc_frames_total{direction=\"up\"} 3\n"));
        for f in Failure::ALL {
            assert!(text.contains(&format!("kind=\"{}\"", f.as_str())));
            assert_eq!(Failure::ALL[f as usize], f);
        }
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = line.rsplit_once(' ').unwrap();
            v.parse::<u64>().unwrap();
        }
    }
}
