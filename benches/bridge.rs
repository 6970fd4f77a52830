//! The bridge's core per message: an uplink event as ChirpStack v4 publishes it (JSON with
//! radio metadata, about 900 bytes) parsed with ChirpStack's types, the device's context found,
//! the SCHC packet decompressed, the delivery returned; and a downlink IPv6 packet routed by
//! its IID, compressed and serialised as a ChirpStack downlink command. With 1 and with 100,000
//! configured devices (one shared rule set, each its own DevIID). Run with
//! `cargo bench --bench bridge`. MQTT and socket I/O are not included: they are the broker's
//! and the kernel's cost.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use lpwan_schc::bridge::config::{
    Config, Delivery, DeviceConfig, LogFormat, Mqtt, NetworkServerKind, Subscribe,
};
use lpwan_schc::bridge::metrics::Metrics;
use lpwan_schc::bridge::{Action, Bridge};
use lpwan_schc::codec::{self, udp_checksum};
use lpwan_schc::network::{DevEui, NetworkLimits};
use lpwan_schc::profile::lorawan::{iid, IidForm};
use lpwan_schc::rule::Direction;

const RULES: &str = include_str!("../rules/lorawan-ipv6-udp.json");

fn dev_eui(i: u32) -> DevEui {
    let b = i.to_be_bytes();
    [0x70, 0xB3, 0xD5, 0x7E, b[0], b[1], b[2], b[3]]
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An IPv6/UDP packet between the device with `iid` and the application, matching rule 1.
fn packet(iid: [u8; 8], i: u32, up: bool) -> Vec<u8> {
    let payload: Vec<u8> = (0..24u32).map(|k| (k * 7 + i) as u8).collect();
    let udp_len = (8 + payload.len()) as u16;
    let mut p = vec![0x60, 0, 0, 0];
    p.extend(udp_len.to_be_bytes());
    p.extend([17, 64]);
    let mut dev = vec![0x20, 0x01, 0x0d, 0xb8, 0x00, 0x0a, 0, 0];
    dev.extend(iid);
    let app = [
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    ];
    let (src, dst) = if up {
        (&dev[..], &app[..])
    } else {
        (&app[..], &dev[..])
    };
    p.extend(src);
    p.extend(dst);
    let (dp, ap) = (0x1634u16 + (i % 2) as u16, 0x1633u16);
    let (sp, dpt) = if up { (dp, ap) } else { (ap, dp) };
    p.extend(sp.to_be_bytes());
    p.extend(dpt.to_be_bytes());
    p.extend(udp_len.to_be_bytes());
    p.extend([0, 0]);
    p.extend(payload);
    let ck = udp_checksum(&p);
    p[46..48].copy_from_slice(&ck.to_be_bytes());
    p
}

fn event(eui: &DevEui, fport: u8, data: &[u8], f_cnt: u32) -> String {
    format!(
        r#"{{"deduplicationId":"3ac7e3c4-4401-4b8d-9386-a5c902f9202d","time":"2026-11-27T09:34:15.775023242+00:00","deviceInfo":{{"tenantId":"52f14cd4-c6f1-4fbd-8f87-4025e1d49242","tenantName":"ChirpStack","applicationId":"app","applicationName":"Sensors","deviceProfileId":"cf2aec2f-03e1-4a60-a32c-0faeef5730d8","deviceProfileName":"SCHC class A","deviceName":"sensor-{f_cnt}","devEui":"{eui}","deviceClassEnabled":"CLASS_A","tags":{{}}}},"devAddr":"00189440","adr":true,"dr":5,"fCnt":{f_cnt},"fPort":{fport},"confirmed":false,"data":"{data}","rxInfo":[{{"gatewayId":"0016c001f153a14c","uplinkId":4217106255,"gwTime":"2026-11-27T09:34:15.775023242+00:00","rssi":-36,"snr":10.5,"channel":2,"location":{{}},"context":"E3OWOQ==","metadata":{{"region_common_name":"EU868","region_config_id":"eu868"}},"crcStatus":"CRC_OK"}}],"txInfo":{{"frequency":867100000,"modulation":{{"lora":{{"bandwidth":125000,"spreadingFactor":7,"codeRate":"CR_4_5"}}}}}},"regionConfigId":"eu868"}}"#,
        eui = hex(eui),
        data = base64::engine::general_purpose::STANDARD.encode(data),
    )
}

/// A bridge with `devices` configured devices, and (topic, event) uplinks and downlink packets
/// of the first 1,024.
/// (topic, JSON) of an uplink event.
type Event = (String, Vec<u8>);

fn setup(devices: u32) -> (Bridge, Vec<Event>, Vec<Vec<u8>>) {
    let rules = Arc::new(lpwan_schc::json::from_str(RULES).expect("rules"));
    let cfg = Config {
        mqtt: Mqtt {
            host: "127.0.0.1".into(),
            port: 1883,
            client_id: "bench".into(),
            credentials: None,
            keep_alive: Duration::from_secs(30),
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            max_retries: None,
            tls: None,
            subscribe: Subscribe::Application,
            share_group: None,
        },
        network_server: NetworkServerKind::ChirpStack {
            application_id: "app".into(),
        },
        delivery: Delivery::Udp {
            listen: "127.0.0.1:0".parse().expect("addr"),
            peer: "127.0.0.1:9".parse().expect("addr"),
        },
        limits: NetworkLimits {
            max_devices: devices as usize,
            ..NetworkLimits::default()
        },
        iid_form: IidForm::Binary,
        metrics: None,
        log_format: LogFormat::Text,
        log_level: "off".into(),
        shutdown_timeout: Duration::from_secs(1),
        devices: (0..devices)
            .map(|i| DeviceConfig {
                dev_eui: dev_eui(i),
                app_skey: [(i % 251) as u8; 16],
                rules: rules.clone(),
                downlink_mtu: 51,
                app_iid: None,
                tts_device_id: None,
            })
            .collect(),
    };
    let mut bridge = Bridge::new(&cfg, Arc::new(Metrics::default()));
    let set = rules.as_set();
    let mut ups = Vec::new();
    let mut downs = Vec::new();
    for i in 0..devices.min(1024) {
        let dev = dev_eui(i);
        let iid = iid(&[(i % 251) as u8; 16], &dev, IidForm::Binary);
        let p = packet(iid, i, true);
        let c_cfg = codec::Config {
            dev_iid: Some(iid),
            ..codec::Config::default()
        };
        let mut out = [0u8; 256];
        let c = codec::compress(&set, &p, Direction::Up, &c_cfg, &mut out).expect("compress");
        assert_eq!(out[0], 1, "rule 1");
        let topic = format!("application/app/device/{}/event/up", hex(&dev));
        let json = event(&dev, out[0], &out[1..c.len], i).into_bytes();
        // Checked once, outside the timing: the packet comes back.
        let actions = bridge.handle_mqtt(&topic, &json, 1);
        assert!(
            matches!(&actions[..], [Action::Deliver { packet, .. }] if *packet == p),
            "{actions:?}"
        );
        ups.push((topic, json));
        downs.push(packet(iid, i, false));
    }
    (bridge, ups, downs)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("bridge");
    g.throughput(Throughput::Elements(1));
    for devices in [1u32, 100_000] {
        let (mut bridge, ups, downs) = setup(devices);
        let mut k = 0usize;
        g.bench_function(format!("uplink-event/{devices}-devices"), |b| {
            b.iter(|| {
                let (topic, json) = &ups[k % ups.len()];
                k += 1;
                black_box(bridge.handle_mqtt(topic, json, 2))
            })
        });
        let mut k = 0usize;
        g.bench_function(format!("downlink-packet/{devices}-devices"), |b| {
            b.iter(|| {
                let p = &downs[k % downs.len()];
                k += 1;
                let out = bridge.handle_ipv6(p, 3);
                debug_assert_eq!(out.len(), 1);
                black_box(out)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
