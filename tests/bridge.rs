//! `schc gateway` end to end, with a real MQTT broker (mosquitto, started per test on a free
//! loopback port). The test plays the network server (it publishes uplink events built with
//! ChirpStack's own `chirpstack_api` types, or The Things Stack's JSON, and reads the downlink
//! topic), the end device (the crate's heap-free `Device`, which compresses and fragments
//! uplinks and answers downlinks) and the IPv6 application (a UDP socket).
//!
//! Without a `mosquitto` binary the tests are skipped, unless `SCHC_REQUIRE_BROKER=1` (set by
//! `.ci/run`, which installs the Debian package), which makes that a failure.

#[path = "../examples/lorawan_link/mod.rs"]
mod link;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chirpstack_api::integration::{DeviceInfo, DownlinkCommand, UplinkEvent};
use lpwan_schc::frag::Micros;
use lpwan_schc::profile::lorawan::{dev_iid, Buffers, Device, DeviceAction};
use lpwan_schc::sim::SplitMix64;
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

const APP: &str = "6f2a1e0c-3d5b-4c8e-9a7f-0b1c2d3e4f50";
const DEV_EUI: [u8; 8] = [0x70, 0xB3, 0xD5, 0x7E, 0xD0, 0x00, 0x42, 0x01];
const APP_SKEY: [u8; 16] = *b"an-appskey-16-by";
const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/rules/lorawan-ipv6-udp.json");

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn rules() -> lpwan_schc::rule::RuleSetBuf {
    lpwan_schc::json::from_str(&std::fs::read_to_string(RULES).unwrap()).unwrap()
}

/// The test device (`DEV_EUI`, `APP_SKEY`) on `rules`, with buffers `tx` and `rx`.
fn device<'r, 'b>(
    rules: &'r lpwan_schc::rule::RuleSetBuf,
    tx: &'b mut [u8],
    rx: &'b mut [u8],
) -> Device<'r, 'b> {
    Device::new(rules.as_set(), DEV_EUI, APP_SKEY, Buffers { tx, rx }).unwrap()
}

/// An uplink IPv6/UDP/CoAP packet of `len` bytes from the device with `iid`, and the SCHC
/// packet of one frame that carries it (its first byte the FPort).
fn single_frame(
    rules: &lpwan_schc::rule::RuleSetBuf,
    iid: [u8; 8],
    len: usize,
    rng: &mut SplitMix64,
) -> (Vec<u8>, Vec<u8>) {
    let p = link::coap_packet(iid, len, true, rng);
    let cfg = lpwan_schc::Config {
        dev_iid: Some(iid),
        ..Default::default()
    };
    let mut schc = [0u8; 128];
    let c = lpwan_schc::compress(
        &rules.as_set(),
        &p,
        lpwan_schc::Direction::Up,
        &cfg,
        &mut schc,
    )
    .unwrap();
    (p, schc[..c.len].to_vec())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh folder for a test's files, removed when dropped.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("schc-bridge-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

/// A mosquitto on a free loopback port, killed on drop.
struct Broker {
    child: Child,
    port: u16,
}

impl Broker {
    fn start(dir: &Path) -> Option<Broker> {
        Self::start_with(dir, "", None)
    }

    /// With `extra` configuration lines, and another listener that must come up.
    fn start_with(dir: &Path, extra: &str, also: Option<u16>) -> Option<Broker> {
        let bin = ["mosquitto", "/usr/sbin/mosquitto"]
            .into_iter()
            .find(|b| Command::new(b).arg("-h").output().is_ok());
        let Some(bin) = bin else {
            if std::env::var("SCHC_REQUIRE_BROKER").as_deref() == Ok("1") {
                panic!("SCHC_REQUIRE_BROKER=1 but no mosquitto binary was found");
            }
            eprintln!("SKIPPED: no mosquitto broker (apt-get install mosquitto)");
            return None;
        };
        let port = free_port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 max_queued_messages 0\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n\
                 {extra}"
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("mosquitto.log")).unwrap())
            .spawn()
            .unwrap();
        let b = Broker { child, port };
        let t0 = Instant::now();
        for p in std::iter::once(port).chain(also) {
            while TcpStream::connect(("127.0.0.1", p)).is_err() {
                assert!(
                    t0.elapsed() < Duration::from_secs(10),
                    "mosquitto did not start:\n{}",
                    std::fs::read_to_string(dir.join("mosquitto.log")).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Some(b)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `schc gateway` as a child process; its JSON log lines are collected.
struct Gateway {
    child: Child,
    log: mpsc::Receiver<String>,
    lines: Vec<String>,
}

impl Gateway {
    fn start(config: &Path) -> Gateway {
        let mut child = Command::new(env!("CARGO_BIN_EXE_schc"))
            .args(["gateway", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Gateway {
            child,
            log,
            lines: Vec::new(),
        }
    }

    /// Waits for a log line containing `needle`; returns it.
    fn wait_log(&mut self, needle: &str, timeout: Duration) -> String {
        if let Some(l) = self.lines.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        let t0 = Instant::now();
        loop {
            let left = timeout.saturating_sub(t0.elapsed());
            match self.log.recv_timeout(left) {
                Ok(line) => {
                    self.lines.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no log line with {needle:?} within {timeout:?}; log so far:\n{}",
                    self.lines.join("\n")
                ),
            }
        }
    }

    /// SIGTERM, then the exit status and the rest of the log.
    fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "the gateway did not stop"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(l) = self.log.recv_timeout(Duration::from_millis(200)) {
            self.lines.push(l);
        }
        status
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The network server's side of the broker: publishes uplinks, collects downlinks.
struct NetworkServer {
    client: Client,
    downlinks: mpsc::Receiver<(String, Vec<u8>)>,
    f_cnt: u32,
}

impl NetworkServer {
    fn connect(port: u16, downlink_filter: &str) -> NetworkServer {
        let mut opts = MqttOptions::new(format!("ns-{}", std::process::id()), "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(30));
        let (client, mut connection) = Client::new(opts, 256);
        client.subscribe(downlink_filter, QoS::AtLeastOnce).unwrap();
        let (tx, downlinks) = mpsc::channel();
        let (ready_tx, ready) = mpsc::channel();
        std::thread::spawn(move || {
            for ev in connection.iter() {
                match ev {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = ready_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx.send((p.topic.clone(), p.payload.to_vec())).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("network server's MQTT connection: {e}");
                        break;
                    }
                }
            }
        });
        ready
            .recv_timeout(Duration::from_secs(10))
            .expect("the network server's subscription");
        NetworkServer {
            client,
            downlinks,
            f_cnt: 0,
        }
    }

    /// An uplink event of the test's device as ChirpStack v4 publishes it.
    fn chirpstack_uplink(&mut self, fport: u8, payload: &[u8]) {
        self.chirpstack_uplink_of(&DEV_EUI, fport, payload);
    }

    /// An uplink event of device `eui` as ChirpStack v4 publishes it, built with its own types.
    fn chirpstack_uplink_of(&mut self, eui: &[u8; 8], fport: u8, payload: &[u8]) {
        self.f_cnt += 1;
        let ev = UplinkEvent {
            deduplication_id: format!("00000000-0000-0000-0000-{:012}", self.f_cnt),
            device_info: Some(DeviceInfo {
                tenant_id: "52f14cd4-c6f1-4fbd-8f87-4025e1d49242".into(),
                tenant_name: "ChirpStack".into(),
                application_id: APP.into(),
                application_name: "schc".into(),
                device_name: "sensor-1".into(),
                dev_eui: hex(eui),
                ..Default::default()
            }),
            dev_addr: "01ab5c3d".into(),
            dr: 0,
            f_cnt: self.f_cnt,
            f_port: u32::from(fport),
            data: payload.to_vec(),
            ..Default::default()
        };
        let json = serde_json::to_vec(&ev).unwrap();
        self.client
            .publish(
                format!("application/{APP}/device/{}/event/up", hex(eui)),
                QoS::AtLeastOnce,
                false,
                json,
            )
            .unwrap();
    }

    fn tts_uplink(&mut self, fport: u8, payload: &[u8]) {
        use base64::Engine as _;
        self.f_cnt += 1;
        let json = serde_json::json!({
            "end_device_ids": {"device_id": "sensor-1", "application_ids": {"application_id": "schc-app"},
                "dev_eui": hex(&DEV_EUI).to_uppercase(), "dev_addr": "01AB5C3D"},
            "received_at": "2026-11-27T10:00:00Z",
            "uplink_message": {"f_port": fport, "f_cnt": self.f_cnt,
                "frm_payload": base64::engine::general_purpose::STANDARD.encode(payload),
                "rx_metadata": [{"gateway_ids": {"gateway_id": "gw-1"}, "rssi": -42}]}
        });
        self.client
            .publish(
                "v3/schc-app@acme/devices/sensor-1/up",
                QoS::AtLeastOnce,
                false,
                serde_json::to_vec(&json).unwrap(),
            )
            .unwrap();
    }
}

fn write_config(
    dir: &Path,
    broker: u16,
    ns: &str,
    udp_listen: u16,
    app: u16,
    metrics: u16,
) -> PathBuf {
    let text = format!(
        r#"
iid_form = "binary"

[mqtt]
host = "127.0.0.1"
port = {broker}
client_id = "schc-gw-{pid}"
retry_initial_ms = 100
retry_max_ms = 1000

{ns}

[delivery]
kind = "udp"
listen = "127.0.0.1:{udp_listen}"
peer = "127.0.0.1:{app}"

[limits]
max_devices = 10
max_sessions = 16

[metrics]
listen = "127.0.0.1:{metrics}"

[log]
format = "json"
level = "debug"

[profiles.sensors]
rules = "{RULES}"
downlink_mtu = 51

[[devices]]
dev_eui = "{eui}"
app_skey = "{key}"
profile = "sensors"
tts_device_id = "sensor-1"
"#,
        pid = std::process::id(),
        eui = hex(&DEV_EUI),
        key = hex(&APP_SKEY),
    );
    let path = dir.join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn scrape(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("Content-Type: text/plain; version=0.0.4"));
    out
}

fn metric(text: &str, sample: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {sample} in\n{text}"))
}

struct Setup {
    _broker: Broker,
    gateway: Gateway,
    ns: NetworkServer,
    app: UdpSocket,
    gw_udp: u16,
    metrics: u16,
    config: PathBuf,
    _dir: Scratch,
}

fn setup(name: &str, tts: bool) -> Option<Setup> {
    let dir = scratch(name);
    let broker = Broker::start(&dir)?;
    let app = UdpSocket::bind("127.0.0.1:0").unwrap();
    app.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (gw_udp, metrics) = (free_port(), free_port());
    let ns_table = if tts {
        "[network_server]\nkind = \"tts\"\napplication_id = \"schc-app\"\ntenant = \"acme\""
            .to_string()
    } else {
        format!("[network_server]\nkind = \"chirpstack\"\napplication_id = \"{APP}\"")
    };
    let config = write_config(
        &dir,
        broker.port,
        &ns_table,
        gw_udp,
        app.local_addr().unwrap().port(),
        metrics,
    );
    let mut gateway = Gateway::start(&config);
    gateway.wait_log("\"message\":\"subscribed\"", Duration::from_secs(60));
    let filter = if tts {
        "v3/schc-app@acme/devices/+/down/push".to_string()
    } else {
        format!("application/{APP}/device/+/command/down")
    };
    let ns = NetworkServer::connect(broker.port, &filter);
    Some(Setup {
        _broker: broker,
        gateway,
        ns,
        app,
        gw_udp,
        metrics,
        config,
        _dir: dir,
    })
}

/// A downlink command from the bridge: (FPort, FRMPayload).
fn parse_downlink(tts: bool, topic: &str, payload: &[u8]) -> (u8, Vec<u8>) {
    if tts {
        use base64::Engine as _;
        assert_eq!(topic, "v3/schc-app@acme/devices/sensor-1/down/push");
        let v: serde_json::Value = serde_json::from_slice(payload).unwrap();
        let d = &v["downlinks"][0];
        let data = base64::engine::general_purpose::STANDARD
            .decode(d["frm_payload"].as_str().unwrap())
            .unwrap();
        (d["f_port"].as_u64().unwrap() as u8, data)
    } else {
        assert_eq!(
            topic,
            format!("application/{APP}/device/{}/command/down", hex(&DEV_EUI))
        );
        let cmd: DownlinkCommand = serde_json::from_slice(payload).unwrap();
        assert_eq!(cmd.dev_eui, hex(&DEV_EUI));
        (u8::try_from(cmd.f_port).unwrap(), cmd.data)
    }
}

/// Runs the device until `done` says so: its uplinks go to the broker (except those `drop_up`
/// picks, by index), downlinks from the broker come back to it (except those `drop_down`
/// picks). When the device waits, the test waits up to `quiet` for a downlink, then jumps the
/// device's clock to its timer. Returns the packets the device delivered.
#[allow(clippy::too_many_arguments)]
fn drive(
    s: &mut Setup,
    dev: &mut Device<'_, '_>,
    tts: bool,
    drop_up: &dyn Fn(usize) -> bool,
    drop_down: &dyn Fn(usize) -> bool,
    until_done: bool,
    stats: &mut (usize, usize, usize),
) -> Vec<Vec<u8>> {
    let mut now: Micros = 1;
    let mut out = vec![0u8; 1600];
    let mut delivered = Vec::new();
    let quiet = Duration::from_millis(1500);
    let t0 = Instant::now();
    loop {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the exchange did not end"
        );
        match dev.poll(now, &mut out).unwrap() {
            DeviceAction::Send { fport, len } => {
                let i = stats.0;
                stats.0 += 1;
                if drop_up(i) {
                    continue;
                }
                if tts {
                    s.ns.tts_uplink(fport, &out[..len]);
                } else {
                    s.ns.chirpstack_uplink(fport, &out[..len]);
                }
            }
            DeviceAction::Delivered { len } => delivered.push(out[..len].to_vec()),
            DeviceAction::UplinkDone if until_done => return delivered,
            DeviceAction::UplinkAborted(r) => panic!("uplink aborted: {r:?}"),
            DeviceAction::DownlinkAborted(r) => panic!("downlink aborted: {r:?}"),
            DeviceAction::UplinkDone => {}
            DeviceAction::MtuTooSmall => panic!("MTU too small"),
            a @ (DeviceAction::WaitUntil(_) | DeviceAction::Idle) => {
                if !until_done && !delivered.is_empty() {
                    // Let the device's last ACK reach the bridge.
                    std::thread::sleep(Duration::from_millis(300));
                    return delivered;
                }
                let wait = if until_done || !delivered.is_empty() || stats.1 > 0 {
                    quiet
                } else {
                    // A single-frame uplink: nothing comes back.
                    Duration::from_millis(300)
                };
                match s.ns.downlinks.recv_timeout(wait) {
                    Ok((topic, payload)) => {
                        let i = stats.1;
                        stats.1 += 1;
                        if drop_down(i) {
                            stats.2 += 1;
                            continue;
                        }
                        let (fport, data) = parse_downlink(tts, &topic, &payload);
                        dev.handle_downlink(fport, &data, now).unwrap();
                    }
                    Err(_) => match a {
                        DeviceAction::WaitUntil(t) => now = now.max(t),
                        _ if !until_done => return delivered,
                        _ => panic!("the device is idle and no downlink came"),
                    },
                }
            }
        }
    }
}

fn uplink_and_downlink(tts: bool) {
    let Some(mut s) = setup(if tts { "tts" } else { "chirpstack" }, tts) else {
        return;
    };
    let rules = rules();
    let (mut tx, mut rx) = (vec![0u8; 1300], vec![0u8; 1600]);
    let mut dev = device(&rules, &mut tx, &mut rx);
    let mut rng = SplitMix64::new(7);
    let iid = dev_iid(&APP_SKEY, &DEV_EUI);

    // 1. A 1,200-byte uplink through 51-byte payloads, losing fragments 3, 11 and 17 and the
    //    first ACK the bridge sends down: the device re-sends what the ACK lists, and asks for
    //    the lost ACK again (ACK REQ) when its timer fires.
    let packet = link::coap_packet(iid, 1200, true, &mut rng);
    dev.send(&packet, 1).unwrap();
    let mut stats = (0, 0, 0);
    drive(
        &mut s,
        &mut dev,
        tts,
        &|i| [3, 11, 17].contains(&i),
        &|i| i == 0,
        true,
        &mut stats,
    );
    let mut got = vec![0u8; 2000];
    let n = s.app.recv(&mut got).unwrap();
    assert_eq!(&got[..n], &packet[..], "the application got other bytes");
    // The device may have asked twice (All-1 again, ACK REQ): a late ACK still comes down; the
    // device ignores it.
    while let Ok((topic, payload)) = s.ns.downlinks.recv_timeout(Duration::from_millis(500)) {
        let (fport, data) = parse_downlink(tts, &topic, &payload);
        dev.handle_downlink(fport, &data, 1).unwrap();
        stats.1 += 1;
    }
    let (frames_up, acks_down, dropped_down) = stats;
    assert!(frames_up > 25, "{frames_up} uplink frames");
    assert!(acks_down >= 2 && dropped_down == 1, "{stats:?}");

    // 2. A single-frame uplink: 80 bytes compress to one frame.
    let small = link::coap_packet(iid, 80, true, &mut rng);
    dev.send(&small, 2).unwrap();
    let mut st = (0, 0, 0);
    drive(
        &mut s,
        &mut dev,
        tts,
        &|_| false,
        &|_| false,
        false,
        &mut st,
    );
    assert_eq!(st, (1, 0, 0), "one frame up, nothing down");
    let n = s.app.recv(&mut got).unwrap();
    assert_eq!(&got[..n], &small[..]);

    // 3. A 400-byte downlink from the application: compressed, fragmented under FPort 21
    //    (ACK-Always), each fragment published and acknowledged by the device.
    let down = link::coap_packet(iid, 400, false, &mut rng);
    s.app.send_to(&down, ("127.0.0.1", s.gw_udp)).unwrap();
    let mut st = (0, 0, 0);
    let delivered = drive(
        &mut s,
        &mut dev,
        tts,
        &|_| false,
        &|_| false,
        false,
        &mut st,
    );
    assert_eq!(delivered, vec![down.clone()], "the device got other bytes");
    assert!(st.1 >= 8, "{} downlink frames for 400 bytes", st.1);

    // 4. Counters, over HTTP in the Prometheus text format.
    let m = scrape(s.metrics);
    assert_eq!(metric(&m, "schc_packets_total{direction=\"up\"}"), 2);
    assert_eq!(
        metric(&m, "schc_packet_bytes_total{direction=\"up\"}"),
        1280
    );
    assert_eq!(metric(&m, "schc_packets_total{direction=\"down\"}"), 1);
    assert_eq!(
        metric(&m, "schc_packet_bytes_total{direction=\"down\"}"),
        400
    );
    assert_eq!(
        metric(&m, "schc_frames_total{direction=\"up\"}"),
        (frames_up - 3 + 1 + st.0) as u64
    );
    assert_eq!(metric(&m, "schc_downlinks_acknowledged_total"), 1);
    assert_eq!(metric(&m, "schc_mqtt_connected"), 1);
    for kind in [
        "bad_event",
        "undecodable",
        "no_route",
        "publish",
        "delivery",
    ] {
        assert_eq!(
            metric(&m, &format!("schc_failures_total{{kind=\"{kind}\"}}")),
            0
        );
    }

    // 5. Structured logs: one JSON object a line.
    let line = s
        .gateway
        .wait_log("uplink packet delivered", Duration::from_secs(1));
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["dev_eui"], hex(&DEV_EUI));
    assert_eq!(v["bytes"], 1200);
    assert_eq!(v["level"], "INFO");

    // 6. Graceful stop.
    let status = s.gateway.terminate();
    assert!(status.success(), "{status:?}");
    s.gateway
        .wait_log("\"message\":\"stopped\"", Duration::from_secs(1));
}

#[test]
fn chirpstack_uplink_with_losses_downlink_and_metrics() {
    uplink_and_downlink(false);
}

#[test]
fn the_things_stack_uplink_with_losses_downlink_and_metrics() {
    uplink_and_downlink(true);
}

/// Uplinks already received when SIGTERM arrives are all delivered, and those published while
/// the bridge is down are delivered by the next run: each exactly once.
#[test]
fn sigterm_loses_no_received_packet() {
    let Some(mut s) = setup("sigterm", false) else {
        return;
    };
    let rules = rules();
    let iid = dev_iid(&APP_SKEY, &DEV_EUI);
    let mut rng = SplitMix64::new(3);
    let mut sent = Vec::new();
    let mut publish = |s: &mut Setup, sent: &mut Vec<Vec<u8>>, n: usize| {
        for _ in 0..n {
            let len = 60 + (rng.next_u64() % 20) as usize;
            let (p, schc) = single_frame(&rules, iid, len, &mut rng);
            s.ns.chirpstack_uplink(schc[0], &schc[1..]);
            sent.push(p);
        }
    };
    publish(&mut s, &mut sent, 1000);
    // The application reads all the time (a UDP socket's buffer holds a few hundred
    // datagrams: a slow reader loses packets, whatever the bridge does).
    let app = s.app.try_clone().unwrap();
    app.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (received, stop) = (received.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut got = vec![0u8; 2000];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(n) = app.recv(&mut got) {
                    received.lock().unwrap().push(got[..n].to_vec());
                }
            }
        })
    };
    let count = || received.lock().unwrap().len();
    // Until `n` arrived, or nothing came for `quiet`.
    let wait_for = |n: usize, quiet: Duration| {
        let (mut last, mut since) = (count(), Instant::now());
        while last < n && since.elapsed() < quiet {
            std::thread::sleep(Duration::from_millis(5));
            if count() > last {
                (last, since) = (count(), Instant::now());
            }
        }
    };
    // Stop the bridge as soon as it has delivered a first packet, with the rest in flight.
    wait_for(1, Duration::from_secs(10));
    let status = s.gateway.terminate();
    assert!(status.success(), "{status:?}");
    assert!(s.gateway.lines.iter().any(|l| l.contains("handed over")));
    std::thread::sleep(Duration::from_millis(300));
    let first = count();
    // While the bridge is down, uplinks go on: the broker keeps them for the bridge's
    // persistent session (QoS 1), with whatever the first run had not acknowledged (it
    // acknowledges an uplink only once handled); a second run with the same client ID gets them.
    publish(&mut s, &mut sent, 500);
    let mut again = Gateway::start(&s.config);
    wait_for(sent.len(), Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    reader.join().unwrap();
    let received = received.lock().unwrap().clone();
    assert!(again.terminate().success());
    // The bridge's own count, from each run's last log line: every uplink delivered exactly
    // once over the two runs.
    let delivered = |g: &Gateway| -> u64 {
        let line = g
            .lines
            .iter()
            .find(|l| l.contains("\"message\":\"stopped\""))
            .expect("the stopped line");
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["uplink_packets"]
            .as_u64()
            .unwrap_or_else(|| panic!("{line}"))
    };
    let (one, two) = (delivered(&s.gateway), delivered(&again));
    assert_eq!(
        one + two,
        sent.len() as u64,
        "{one} + {two}: none lost, none repeated"
    );
    // What the application read: in order, intact, no repeats. A UDP socket drops what
    // overflows its buffer during a burst (the first run hands over at full speed): that is
    // the application's loss, reported, not the bridge's.
    let mut rest = sent.iter();
    for p in &received {
        assert!(
            rest.any(|q| q == p),
            "a packet out of order, altered or repeated"
        );
    }
    eprintln!(
        "the bridge delivered {one} before SIGTERM and {two} after the restart; the application read {} of {}",
        received.len(),
        sent.len()
    );
    let _ = first;
}

/// Whether this process may create TUN interfaces (root with /dev/net/tun and `ip`), or must
/// (`SCHC_REQUIRE_TUN=1`, which `.ci/run` sets when it can create one).
fn tun_possible() -> bool {
    let ok = Path::new("/dev/net/tun").exists()
        && Command::new("ip")
            .args(["link", "show"])
            .output()
            .is_ok_and(|o| o.status.success())
        && Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !ok {
        assert!(
            std::env::var("SCHC_REQUIRE_TUN").as_deref() != Ok("1"),
            "SCHC_REQUIRE_TUN=1 but TUN interfaces cannot be made here"
        );
        eprintln!("SKIPPED: TUN needs root, /dev/net/tun and iproute2");
    }
    ok
}

fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// With `delivery.kind = "tun"` the kernel is the IPv6 side: an uplink reaches a UDP socket
/// bound to the application's address, and that socket's reply is routed into the interface,
/// compressed, and published.
#[test]
fn tun_delivery_through_the_kernel() {
    if !tun_possible() {
        return;
    }
    let dir = scratch("tun");
    let Some(broker) = Broker::start(&dir) else {
        return;
    };
    let name = format!("schct{}", std::process::id() % 100_000);
    let config = write_config(
        &dir,
        broker.port,
        &format!("[network_server]\nkind = \"chirpstack\"\napplication_id = \"{APP}\""),
        0,
        9,
        free_port(),
    );
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace(
        "kind = \"udp\"\nlisten = \"127.0.0.1:0\"\npeer = \"127.0.0.1:9\"",
        &format!("kind = \"tun\"\nname = \"{name}\""),
    );
    assert!(text.contains("kind = \"tun\""));
    std::fs::write(&config, text).unwrap();
    let mut gateway = Gateway::start(&config);
    gateway.wait_log("\"message\":\"subscribed\"", Duration::from_secs(60));
    // The application's address on the interface, the devices' prefix routed into it.
    ip(&[
        "-6",
        "addr",
        "add",
        "2001:db8:b::1/128",
        "dev",
        &name,
        "nodad",
    ]);
    ip(&["-6", "route", "add", "2001:db8:a::/64", "dev", &name]);
    let app = UdpSocket::bind("[2001:db8:b::1]:5683").unwrap();
    app.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut ns = NetworkServer::connect(
        broker.port,
        &format!("application/{APP}/device/+/command/down"),
    );

    let rules = rules();
    let iid = dev_iid(&APP_SKEY, &DEV_EUI);
    let (mut tx, mut rx) = (vec![0u8; 1300], vec![0u8; 1600]);
    let mut dev = device(&rules, &mut tx, &mut rx);
    let mut rng = SplitMix64::new(11);
    let packet = link::coap_packet(iid, 90, true, &mut rng);
    dev.send(&packet, 1).unwrap();
    let mut out = vec![0u8; 1600];
    while let DeviceAction::Send { fport, len } = dev.poll(2, &mut out).unwrap() {
        ns.chirpstack_uplink(fport, &out[..len]);
    }
    let mut got = [0u8; 2000];
    let (n, from) = app.recv_from(&mut got).unwrap();
    assert_eq!(
        &got[..n],
        &packet[48..],
        "the UDP payload the kernel delivered"
    );
    let mut dev_addr = [0u8; 16];
    dev_addr[..8].copy_from_slice(&link::DEV_PREFIX);
    dev_addr[8..].copy_from_slice(&iid);
    assert_eq!(
        from,
        std::net::SocketAddr::from((dev_addr, u16::from_be_bytes([packet[40], packet[41]])))
    );

    // The reply: the kernel builds the IPv6/UDP packet and routes it into the interface.
    let reply = b"\x62\x45\x12\x34\xAB\xCD\xFFtemperature=21.5";
    app.send_to(reply, from).unwrap();
    let t0 = Instant::now();
    let packet = loop {
        assert!(t0.elapsed() < Duration::from_secs(20), "no downlink");
        if let Ok((topic, payload)) = ns.downlinks.recv_timeout(Duration::from_millis(500)) {
            let (fport, data) = parse_downlink(false, &topic, &payload);
            dev.handle_downlink(fport, &data, 3).unwrap();
        }
        match dev.poll(3, &mut out).unwrap() {
            DeviceAction::Delivered { len } => break out[..len].to_vec(),
            DeviceAction::Send { fport, len } => ns.chirpstack_uplink(fport, &out[..len]),
            _ => {}
        }
    };
    assert_eq!(
        &packet[8..24],
        &[0x20, 0x01, 0x0d, 0xb8, 0, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    );
    assert_eq!(&packet[24..40], &dev_addr);
    assert_eq!(
        &packet[48..],
        reply,
        "the device got the application's reply"
    );
    assert!(gateway.terminate().success());
}

/// 5,000 single-frame uplinks published back to back are all delivered, in order and intact
/// (this found a deadlock between the MQTT task and the main task under a flood). The rate is
/// printed (`-- --nocapture`) for docs/scaling.md; it is not asserted.
#[test]
fn five_thousand_uplinks_none_lost() {
    let Some(mut s) = setup("load", false) else {
        return;
    };
    let rules = rules();
    let iid = dev_iid(&APP_SKEY, &DEV_EUI);
    let mut rng = SplitMix64::new(5);
    let mut sent = Vec::new();
    let mut frames = Vec::new();
    for _ in 0..5000 {
        let len = 60 + (rng.next_u64() % 20) as usize;
        let (p, schc) = single_frame(&rules, iid, len, &mut rng);
        frames.push(schc);
        sent.push(p);
    }
    let t0 = Instant::now();
    let reader = {
        let app = s.app.try_clone().unwrap();
        app.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let n = sent.len();
        std::thread::spawn(move || {
            let mut got = vec![0u8; 2000];
            let mut received = Vec::with_capacity(n);
            while received.len() < n {
                match app.recv(&mut got) {
                    Ok(k) => received.push(got[..k].to_vec()),
                    Err(_) => break, // quiet for 3 s: what UDP dropped is not coming
                }
            }
            received
        })
    };
    for f in &frames {
        s.ns.chirpstack_uplink(f[0], &f[1..]);
    }
    let received = reader.join().unwrap();
    let secs = t0.elapsed().as_secs_f64();
    // The bridge delivered every one, once (its counter)...
    let m = scrape(s.metrics);
    assert_eq!(metric(&m, "schc_packets_total{direction=\"up\"}"), 5000);
    assert_eq!(metric(&m, "schc_failures_total{kind=\"delivery\"}"), 0);
    // ...and what the application read is in order, intact, without repeats (a UDP socket
    // drops what overflows its buffer when its reader falls behind: reported, not asserted).
    let mut rest = sent.iter();
    for p in &received {
        assert!(
            rest.any(|q| q == p),
            "a packet out of order, altered or repeated"
        );
    }
    eprintln!(
        "5,000 uplinks through mosquitto and the bridge in {secs:.2} s: {:.0} uplinks/s; the \
         application read {}",
        5000.0 / secs,
        received.len()
    );
    assert!(s.gateway.terminate().success());
}

/// Two instances split the devices between them (`mqtt.subscribe = "devices"`): each receives
/// only its own devices' uplinks from the broker, so neither sees, refuses or counts the other's.
#[test]
fn two_instances_split_the_devices() {
    let dir = scratch("split");
    let Some(broker) = Broker::start(&dir) else {
        return;
    };
    const EUI_B: [u8; 8] = [0x70, 0xB3, 0xD5, 0x7E, 0xD0, 0x00, 0x42, 0x02];
    let keys = [APP_SKEY, *b"another-key-16-b"];
    let euis = [DEV_EUI, EUI_B];
    let mut gateways = Vec::new();
    let mut apps = Vec::new();
    for k in 0..2 {
        let app = UdpSocket::bind("127.0.0.1:0").unwrap();
        app.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let metrics = free_port();
        let text = format!(
            r#"
[mqtt]
host = "127.0.0.1"
port = {port}
client_id = "schc-split-{k}-{pid}"
subscribe = "devices"

[network_server]
kind = "chirpstack"
application_id = "{APP}"

[delivery]
kind = "udp"
listen = "127.0.0.1:0"
peer = "127.0.0.1:{app}"

[metrics]
listen = "127.0.0.1:{metrics}"

[log]
format = "json"

[[devices]]
dev_eui = "{eui}"
app_skey = "{key}"
rules = "{RULES}"
"#,
            port = broker.port,
            pid = std::process::id(),
            app = app.local_addr().unwrap().port(),
            eui = hex(&euis[k]),
            key = hex(&keys[k]),
        );
        let path = dir.join(format!("gateway-{k}.toml"));
        std::fs::write(&path, text).unwrap();
        let mut g = Gateway::start(&path);
        g.wait_log("\"message\":\"subscribed\"", Duration::from_secs(60));
        gateways.push((g, metrics));
        apps.push(app);
    }
    let rules = rules();
    let mut ns = NetworkServer::connect(
        broker.port,
        &format!("application/{APP}/device/+/command/down"),
    );
    let mut rng = SplitMix64::new(9);
    let mut sent: [Vec<Vec<u8>>; 2] = Default::default();
    for _ in 0..40 {
        let k = (rng.next_u64() % 2) as usize;
        let (p, schc) = single_frame(&rules, dev_iid(&keys[k], &euis[k]), 64, &mut rng);
        ns.chirpstack_uplink_of(&euis[k], schc[0], &schc[1..]);
        sent[k].push(p);
    }
    let mut got = vec![0u8; 2000];
    for k in 0..2 {
        for want in &sent[k] {
            let n = apps[k].recv(&mut got).unwrap();
            assert_eq!(&got[..n], &want[..], "instance {k}");
        }
        let m = scrape(gateways[k].1);
        assert_eq!(
            metric(&m, "schc_frames_total{direction=\"up\"}"),
            sent[k].len() as u64,
            "instance {k} saw only its device's frames"
        );
        assert_eq!(
            metric(&m, "schc_failures_total{kind=\"unknown_device\"}"),
            0
        );
    }
    for (g, _) in &mut gateways {
        assert!(g.terminate().success());
    }
}

/// TLS to the broker: the bridge checks the broker's certificate against `mqtt.ca_file` (here
/// a CA made for the test), and refuses a broker whose certificate does not chain to it.
#[test]
fn tls_to_the_broker() {
    let dir = scratch("tls");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "lpwan-schc test CA");
    let ca = ca.self_signed(&ca_key).unwrap();
    let srv_key = rcgen::KeyPair::generate().unwrap();
    let srv = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])
        .unwrap()
        .signed_by(&srv_key, &ca, &ca_key)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), srv.pem()).unwrap();
    std::fs::write(dir.join("server.key"), srv_key.serialize_pem()).unwrap();
    // Another CA, which did not sign the broker's certificate.
    let other_key = rcgen::KeyPair::generate().unwrap();
    let mut other = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    other.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let other = other.self_signed(&other_key).unwrap();
    std::fs::write(dir.join("other-ca.pem"), other.pem()).unwrap();

    // The TLS listener for the bridge; a plain one for the test's network server.
    let plain = free_port();
    let Some(broker) = Broker::start_with(
        &dir,
        &format!(
            "cafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\n\
             listener {plain} 127.0.0.1\n",
            d = dir.display()
        ),
        Some(plain),
    ) else {
        return;
    };
    let app = UdpSocket::bind("127.0.0.1:0").unwrap();
    app.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let config = write_config(
        &dir,
        broker.port,
        &format!("[network_server]\nkind = \"chirpstack\"\napplication_id = \"{APP}\""),
        free_port(),
        app.local_addr().unwrap().port(),
        free_port(),
    );
    let text = std::fs::read_to_string(&config).unwrap();
    let tls = text.replace(
        "retry_initial_ms = 100",
        &format!(
            "retry_initial_ms = 100\ntls = true\nca_file = \"{}/ca.pem\"",
            dir.display()
        ),
    );
    std::fs::write(&config, &tls).unwrap();
    let mut gateway = Gateway::start(&config);
    gateway.wait_log("\"message\":\"subscribed\"", Duration::from_secs(60));
    let mut ns = NetworkServer::connect(plain, &format!("application/{APP}/device/+/command/down"));

    let iid = dev_iid(&APP_SKEY, &DEV_EUI);
    let (p, schc) = single_frame(&rules(), iid, 64, &mut SplitMix64::new(1));
    ns.chirpstack_uplink(schc[0], &schc[1..]);
    let mut got = [0u8; 2000];
    let n = app.recv(&mut got).unwrap();
    assert_eq!(&got[..n], &p[..]);
    assert!(gateway.terminate().success());

    // A CA that did not sign the broker's certificate: refused, and said so.
    let wrong = tls.replace("/ca.pem", "/other-ca.pem").replace(
        "retry_max_ms = 1000",
        "retry_max_ms = 1000\nmax_retries = 2",
    );
    std::fs::write(&config, wrong).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_schc"))
        .args(["gateway", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.starts_with(&format!(
            "error: MQTT broker 127.0.0.1:{} unreachable after 2 attempts: ",
            broker.port
        )) && last.contains("certificate"),
        "{err}"
    );
}
