//! The bridge's sans-IO core and its configuration, without a broker: routing, refusals and
//! their counters, device contexts coming and going, and configuration errors that name the key.

#[path = "../examples/lorawan_link/mod.rs"]
mod link;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use lpwan_schc::bridge::metrics::{Failure, Metrics};
use lpwan_schc::bridge::{Action, Bridge, Config, ConfigError};
use lpwan_schc::profile::lorawan::dev_iid;
use lpwan_schc::sim::SplitMix64;
use lpwan_schc::{compress, Direction};

const EUI_A: [u8; 8] = [0x70, 0xB3, 0xD5, 0x7E, 0xD0, 0x00, 0x42, 0x01];
const EUI_B: [u8; 8] = [0x70, 0xB3, 0xD5, 0x7E, 0xD0, 0x00, 0x42, 0x02];
const KEY_A: [u8; 16] = *b"an-appskey-16-by";
const KEY_B: [u8; 16] = *b"another-key-16-b";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn config(ns: &str, extra: &str, devices: &str) -> String {
    format!(
        r#"
[mqtt]
host = "127.0.0.1"

{ns}

[delivery]
kind = "udp"
listen = "127.0.0.1:0"
peer = "127.0.0.1:9"

{extra}

[profiles.p]
rules = "rules/lorawan-ipv6-udp.json"

{devices}
"#
    )
}

const CHIRPSTACK: &str = "[network_server]\nkind = \"chirpstack\"\napplication_id = \"app\"";
const TTS: &str = "[network_server]\nkind = \"tts\"\napplication_id = \"app\"\ntenant = \"t\"";

fn two_devices(tts_id_for_a: bool) -> String {
    format!(
        "[[devices]]\ndev_eui = \"{}\"\napp_skey = \"{}\"\nprofile = \"p\"\n{}\n\
         [[devices]]\ndev_eui = \"{}\"\napp_skey = \"{}\"\nprofile = \"p\"\ndownlink_mtu = 242\n",
        hex(&EUI_A),
        hex(&KEY_A),
        if tts_id_for_a {
            "tts_device_id = \"dev-a\""
        } else {
            ""
        },
        hex(&EUI_B),
        hex(&KEY_B)
    )
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Config::parse(text, Path::new("test.toml"), root)
}

fn chirpstack_up(eui: &[u8; 8], fport: u8, data: &[u8]) -> (String, Vec<u8>) {
    let ev = chirpstack_api::integration::UplinkEvent {
        device_info: Some(chirpstack_api::integration::DeviceInfo {
            dev_eui: hex(eui),
            application_id: "app".into(),
            ..Default::default()
        }),
        f_port: u32::from(fport),
        f_cnt: 1,
        data: data.to_vec(),
        ..Default::default()
    };
    (
        format!("application/app/device/{}/event/up", hex(eui)),
        serde_json::to_vec(&ev).unwrap(),
    )
}

/// An uplink packet of the device with `key`, compressed into (FPort, FRMPayload).
fn frame(eui: &[u8; 8], key: &[u8; 16], rng: &mut SplitMix64) -> (Vec<u8>, u8, Vec<u8>) {
    let rules = lpwan_schc::json::from_str(include_str!("../rules/lorawan-ipv6-udp.json")).unwrap();
    let iid = dev_iid(key, eui);
    let p = link::coap_packet(iid, 70, true, rng);
    let cfg = lpwan_schc::Config {
        dev_iid: Some(iid),
        ..Default::default()
    };
    let mut out = [0u8; 128];
    let c = compress(&rules.as_set(), &p, Direction::Up, &cfg, &mut out).unwrap();
    (p, out[0], out[1..c.len].to_vec())
}

fn delivered(actions: &[Action]) -> Vec<Vec<u8>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Deliver { packet, .. } => Some(packet.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn uplinks_route_by_dev_eui_and_downlinks_by_dev_iid() {
    let cfg = parse(&config(CHIRPSTACK, "", &two_devices(false))).unwrap();
    let m = Arc::new(Metrics::default());
    let mut b = Bridge::new(&cfg, m.clone());
    assert_eq!(b.subscriptions()[0], "application/app/device/+/event/up");
    let mut rng = SplitMix64::new(1);
    for (eui, key) in [(EUI_A, KEY_A), (EUI_B, KEY_B)] {
        let (p, fport, data) = frame(&eui, &key, &mut rng);
        let (topic, json) = chirpstack_up(&eui, fport, &data);
        let out = b.handle_mqtt(&topic, &json, 10);
        assert_eq!(delivered(&out), vec![p]);
    }
    // A's frame published under B's DevEUI decompresses with B's DevIID: not A's packet.
    let (p, fport, data) = frame(&EUI_A, &KEY_A, &mut rng);
    let (topic, json) = chirpstack_up(&EUI_B, fport, &data);
    let out = b.handle_mqtt(&topic, &json, 11);
    assert_ne!(delivered(&out), vec![p]);

    // Downlinks: the destination's IID picks the device; B's MTU is 242, so 200 bytes go in
    // one frame under rule 1 to B; to A (51) they are fragmented under FPort 21, whose
    // ACK-Always mode sends one window (one tile) and waits for the ACK.
    for (eui, key, fport) in [(EUI_A, KEY_A, 21), (EUI_B, KEY_B, 1)] {
        let down = link::coap_packet(dev_iid(&key, &eui), 200, false, &mut rng);
        let out = b.handle_ipv6(&down, 20);
        let [Action::Publish { topic, payload }] = &out[..] else {
            panic!("{out:?}");
        };
        assert_eq!(
            *topic,
            format!("application/app/device/{}/command/down", hex(&eui))
        );
        let cmd: chirpstack_api::integration::DownlinkCommand =
            serde_json::from_slice(payload).unwrap();
        assert_eq!(cmd.f_port, fport);
        assert_eq!(cmd.dev_eui, hex(&eui));
    }
    assert_eq!(m.failures(Failure::NoRoute), 0);
}

#[test]
fn refusals_are_counted_by_kind() {
    let cfg = parse(&config(CHIRPSTACK, "", &two_devices(false))).unwrap();
    let m = Arc::new(Metrics::default());
    let mut b = Bridge::new(&cfg, m.clone());
    let mut rng = SplitMix64::new(2);

    // Not an uplink event; the wrong application; JSON that is not ChirpStack's.
    assert!(b
        .handle_mqtt("application/app/device/x/event/up", b"{}", 1)
        .is_empty());
    let (_, json) = chirpstack_up(&EUI_A, 1, &[1]);
    assert!(b
        .handle_mqtt("application/other/device/x/event/up", &json, 1)
        .is_empty());
    assert!(b
        .handle_mqtt(
            &format!("application/app/device/{}/event/up", hex(&EUI_A)),
            b"[1, 2",
            1
        )
        .is_empty());
    assert_eq!(m.failures(Failure::BadEvent), 3);

    // A device the configuration does not list.
    let (topic, json) = chirpstack_up(&[9; 8], 1, &[1, 2]);
    assert!(b.handle_mqtt(&topic, &json, 1).is_empty());
    assert_eq!(m.failures(Failure::UnknownDevice), 1);

    // FPort 0 is MAC only (ignored, not a failure); 224 and a port without a rule are not SCHC.
    let (topic, json) = chirpstack_up(&EUI_A, 0, &[]);
    assert!(b.handle_mqtt(&topic, &json, 1).is_empty());
    for port in [224, 99] {
        let (topic, json) = chirpstack_up(&EUI_A, port, &[1, 2]);
        assert!(b.handle_mqtt(&topic, &json, 1).is_empty());
    }
    assert_eq!(m.failures(Failure::NotSchc), 2);

    // A SCHC packet that does not decompress (rule 1 cut short).
    let (topic, json) = chirpstack_up(&EUI_A, 1, &[]);
    assert!(b.handle_mqtt(&topic, &json, 1).is_empty());
    assert_eq!(m.failures(Failure::Undecodable), 1);

    // Downlinks: not IPv6, too short, and for an IID no device has.
    let stranger = link::coap_packet([7; 8], 80, false, &mut rng);
    for p in [&[0x45u8; 60][..], &[0x60; 20][..], &stranger[..]] {
        assert!(b.handle_ipv6(p, 2).is_empty());
    }
    assert_eq!(m.failures(Failure::NoRoute), 3);

    // A packet no rule compresses: rule 1 pins the application's prefix.
    let mut odd = link::coap_packet(dev_iid(&KEY_A, &EUI_A), 80, false, &mut rng);
    odd[8] ^= 0x80;
    let out = b.handle_ipv6(&odd, 3);
    // The no-compression rule takes it (FPort 22), in two frames' worth: too long for one
    // 51-byte downlink, so it is fragmented.
    assert!(!out.is_empty());
    assert_eq!(m.failures(Failure::Compress), 0);

    let text = m.render();
    assert!(text.contains("schc_failures_total{kind=\"bad_event\"} 3\n"));
    assert!(text.contains("schc_failures_total{kind=\"no_route\"} 3\n"));
}

#[test]
fn tts_downlinks_need_the_device_id_which_uplinks_teach() {
    let cfg = parse(&config(TTS, "", &two_devices(true))).unwrap();
    let m = Arc::new(Metrics::default());
    let mut b = Bridge::new(&cfg, m.clone());
    assert_eq!(b.subscriptions()[0], "v3/app@t/devices/+/up");
    let mut rng = SplitMix64::new(3);
    let to = |eui, key, rng: &mut SplitMix64| link::coap_packet(dev_iid(key, eui), 60, false, rng);
    // A has its ID in the configuration; B's is not known until B's first uplink.
    let out = b.handle_ipv6(&to(&EUI_A, &KEY_A, &mut rng), 1);
    assert!(
        matches!(&out[..], [Action::Publish { topic, .. }] if topic == "v3/app@t/devices/dev-a/down/push")
    );
    assert!(b.handle_ipv6(&to(&EUI_B, &KEY_B, &mut rng), 1).is_empty());
    assert_eq!(m.failures(Failure::NoDeviceId), 1);

    let (p, fport, data) = frame(&EUI_B, &KEY_B, &mut rng);
    let json = serde_json::json!({
        "end_device_ids": {"device_id": "dev-b", "dev_eui": hex(&EUI_B).to_uppercase()},
        "uplink_message": {"f_port": fport, "frm_payload": base64(&data)}
    });
    let out = b.handle_mqtt(
        "v3/app@t/devices/dev-b/up",
        &serde_json::to_vec(&json).unwrap(),
        2,
    );
    assert_eq!(delivered(&out), vec![p]);
    let out = b.handle_ipv6(&to(&EUI_B, &KEY_B, &mut rng), 3);
    assert!(
        matches!(&out[..], [Action::Publish { topic, .. }] if topic == "v3/app@t/devices/dev-b/down/push")
    );
}

fn base64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn device_contexts_are_a_cache_under_the_device_cap() {
    let limits = "[limits]\nmax_devices = 1\ndevice_idle_s = 5";
    let cfg = parse(&config(CHIRPSTACK, limits, &two_devices(false))).unwrap();
    let m = Arc::new(Metrics::default());
    let mut b = Bridge::new(&cfg, m.clone());
    let mut rng = SplitMix64::new(4);
    let s = 1_000_000;
    let mut t = 0;
    for round in 0..3 {
        for (eui, key) in [(EUI_A, KEY_A), (EUI_B, KEY_B)] {
            t += 6 * s; // longer than device_idle: the other context may go
            let (p, fport, data) = frame(&eui, &key, &mut rng);
            let (topic, json) = chirpstack_up(&eui, fport, &data);
            assert_eq!(
                delivered(&b.handle_mqtt(&topic, &json, t)),
                vec![p],
                "round {round}"
            );
            assert_eq!(b.network().devices(), 1);
        }
    }
    assert_eq!(
        m.devices_dropped.load(std::sync::atomic::Ordering::Relaxed),
        5
    );
    // Within the idle time the table is full: the other device is refused, and counted.
    let (_, fport, data) = frame(&EUI_A, &KEY_A, &mut rng);
    let (topic, json) = chirpstack_up(&EUI_A, fport, &data);
    assert!(b.handle_mqtt(&topic, &json, t + 1).is_empty());
    assert_eq!(m.failures(Failure::TooManyDevices), 1);
}

#[test]
fn configuration_errors_name_the_key() {
    let devices = two_devices(false);
    let cases: Vec<(String, &str)> = vec![
        (
            config(CHIRPSTACK, "[limits]\nmax_devies = 3", &devices),
            "unknown field `max_devies`",
        ),
        (
            config(CHIRPSTACK, "", &devices.replace(&hex(&KEY_B), "00ff")),
            "devices[1].app_skey: \"00ff\": 4 hex digits, 32 expected",
        ),
        (
            config(CHIRPSTACK, "", &devices.replace(&hex(&EUI_B), &hex(&EUI_A))),
            "devices[1].dev_eui: 70b3d57ed0004201 is listed twice",
        ),
        (
            config(CHIRPSTACK, "", &devices.replace("profile = \"p\"\n\n", "profile = \"q\"\n\n")),
            "devices[0].profile: no [profiles.q] table",
        ),
        (
            config(CHIRPSTACK, "", &devices.replace("242", "300")),
            "devices[1].downlink_mtu: 300: a LoRaWAN FRMPayload has 11 to 242 bytes",
        ),
        (
            config(CHIRPSTACK, "", &devices).replace("lorawan-ipv6-udp.json", "nope.json"),
            "profiles.p.rules: rule file",
        ),
        (
            config(CHIRPSTACK, "", &devices).replace("lorawan-ipv6-udp.json", "anchor.json"),
            "profiles.p.rules: rule file",
        ),
        (
            config(
                "[network_server]\nkind = \"chirpstack\"\napplication_id = \"a/b\"",
                "",
                &devices,
            ),
            "network_server.application_id: \"a/b\": must be non-empty, without '/', '+', '#' or '@'",
        ),
        (
            config("[network_server]\nkind = \"loriot\"", "", &devices),
            "unknown variant `loriot`",
        ),
        (
            config(CHIRPSTACK, "", &devices).replace("127.0.0.1:9", "localhost"),
            "delivery.peer: \"localhost\"",
        ),
        (
            config(CHIRPSTACK, "", &devices).replace("[mqtt]\nhost = \"127.0.0.1\"", ""),
            "missing field `mqtt`",
        ),
        (
            config(CHIRPSTACK, "", &devices).replace(
                "host = \"127.0.0.1\"",
                "host = \"127.0.0.1\"\ntls = true",
            ),
            "mqtt.ca_file: tls = true needs the CA certificates (PEM)",
        ),
        (
            config(CHIRPSTACK, "", &devices).replace(
                "host = \"127.0.0.1\"",
                "host = \"127.0.0.1\"\ntls = true\nca_file = \"rules/anchor.json\"",
            ),
            "mqtt.ca_file: ",
        ),
        (
            config(CHIRPSTACK, "", &devices).replace(
                "host = \"127.0.0.1\"",
                "host = \"127.0.0.1\"\nca_file = \"x.pem\"",
            ),
            "mqtt.tls: ca_file or a client certificate given, but tls = false",
        ),
    ];
    for (text, want) in cases {
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains(want), "{e:?} should contain {want:?}");
        assert!(e.starts_with("test.toml") || e.contains("rule file"), "{e}");
    }
    // The TOML errors say where.
    let e = parse(&config(
        CHIRPSTACK,
        "[limits]\nmax_devices = \"x\"",
        &devices,
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("line 15, column 15"), "{e}");
}

fn schc(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_schc"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

#[test]
fn cli_checks_the_configuration_and_gives_up_on_an_unreachable_broker() {
    let dir = std::env::temp_dir().join(format!("schc-bridge-core-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let good =
        config(CHIRPSTACK, "", &two_devices(false)).replace("rules/", &format!("{root}/rules/"));
    let path = dir.join("good.toml");
    std::fs::write(&path, &good).unwrap();
    let (code, out, _) = schc(&["gateway", "--config", path.to_str().unwrap(), "--check"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(
            "ok: 2 devices, broker 127.0.0.1:1883, topic application/app/device/+/event/up"
        ),
        "{out}"
    );

    // The shipped example configuration is valid.
    let example = format!("{root}/docs/gateway.example.toml");
    let (code, out, err) = schc(&["gateway", "--config", &example, "--check"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(": ok: 2 devices, broker 127.0.0.1:1883, topic application/"),
        "{out}"
    );

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, good.replace("kind = \"udp\"", "kind = \"pipe\"")).unwrap();
    let (code, _, err) = schc(&["gateway", "--config", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("unknown variant `pipe`"),
        "{err}"
    );

    // Nobody listens on this port: three attempts, then a clear error.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = dir.join("unreachable.toml");
    std::fs::write(
        &unreachable,
        good.replace(
            "host = \"127.0.0.1\"",
            &format!("host = \"127.0.0.1\"\nport = {port}\nmax_retries = 3\nretry_initial_ms = 50"),
        ),
    )
    .unwrap();
    let (code, _, err) = schc(&["gateway", "--config", unreachable.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with(&format!(
            "error: MQTT broker 127.0.0.1:{port} unreachable after 3 attempts: "
        )),
        "{err}"
    );
    // The retries were logged, with their backoff.
    assert!(err.contains("broker unreachable; retrying"), "{err}");
    assert!(err.contains("retry_in_ms=100"), "{err}");
}

/// A fragmented downlink the device never acknowledges: at each retransmission timer the
/// bridge publishes an ACK REQ (the All-1 again) on FPort 21, and after MAX_ACK_REQUESTS it
/// gives up, counted as `downlink_aborted`. The timers come from `next_deadline`.
#[test]
fn unacknowledged_downlink_asks_again_then_aborts() {
    let cfg = parse(&config(CHIRPSTACK, "", &two_devices(false))).unwrap();
    let m = Arc::new(Metrics::default());
    let mut b = Bridge::new(&cfg, m.clone());
    let mut rng = SplitMix64::new(6);
    let down = link::coap_packet(dev_iid(&KEY_A, &EUI_A), 200, false, &mut rng);
    let first = b.handle_ipv6(&down, 0);
    assert_eq!(first.len(), 1);
    let mut asks = 0;
    let mut now = 0;
    while let Some(t) = b.next_deadline() {
        assert!(t > now, "the deadline moves on");
        now = t;
        for a in b.poll(now) {
            let Action::Publish { payload, .. } = a else {
                panic!("{a:?}");
            };
            let cmd: chirpstack_api::integration::DownlinkCommand =
                serde_json::from_slice(&payload).unwrap();
            assert_eq!(cmd.f_port, 21);
            asks += 1;
        }
        if m.failures(Failure::DownlinkAborted) > 0 {
            break;
        }
        assert!(asks < 100, "it never gives up");
    }
    assert_eq!(m.failures(Failure::DownlinkAborted), 1);
    assert!(asks >= 2, "{asks} frames sent again");
    assert_eq!(b.network().senders().len(), 0);
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    fn bridge(tts: bool) -> (Bridge, Arc<Metrics>) {
        let ns = if tts { TTS } else { CHIRPSTACK };
        let cfg = parse(&config(ns, "", &two_devices(true))).unwrap();
        let m = Arc::new(Metrics::default());
        (Bridge::new(&cfg, m.clone()), m)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Arbitrary bytes on the uplink topic, and a valid event with bytes flipped: nothing
        /// panics, and what ChirpStack's type does not parse is counted as a bad event.
        #[test]
        fn arbitrary_messages_are_refused_and_counted(
            payload in proptest::collection::vec(any::<u8>(), 0..600),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
            data in proptest::collection::vec(any::<u8>(), 0..300),
            fport in any::<u8>(),
            tts in any::<bool>(),
        ) {
            let (mut b, m) = bridge(tts);
            let topic = if tts {
                "v3/app@t/devices/dev-a/up".to_string()
            } else {
                format!("application/app/device/{}/event/up", hex(&EUI_A))
            };
            let _ = b.handle_mqtt(&topic, &payload, 1);
            let (_, mut json) = if tts {
                let v = serde_json::json!({
                    "end_device_ids": {"device_id": "dev-a", "dev_eui": hex(&EUI_A)},
                    "uplink_message": {"f_port": fport, "frm_payload": base64(&data)}
                });
                (String::new(), serde_json::to_vec(&v).unwrap())
            } else {
                chirpstack_up(&EUI_A, fport, &data)
            };
            for (at, x) in flips {
                let n = json.len();
                json[at % n] ^= x;
            }
            let before = m.failures(Failure::BadEvent);
            let out = b.handle_mqtt(&topic, &json, 2);
            let typed = serde_json::from_slice::<chirpstack_api::integration::UplinkEvent>(&json);
            if !tts && typed.is_err() {
                prop_assert_eq!(m.failures(Failure::BadEvent), before + 1);
                prop_assert!(out.is_empty());
            }
            // Arbitrary bytes as a downlink packet.
            let _ = b.handle_ipv6(&payload, 3);
            let _ = b.poll(u64::MAX / 2);
        }
    }
}
