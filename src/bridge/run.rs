//! The bridge as a service: the I/O around [`Bridge`].
//!
//! One task drives the MQTT connection (rumqttc): it connects, subscribes to the uplink topic
//! with QoS 1, and reconnects after a failure with exponential backoff, giving up after
//! `mqtt.max_retries` consecutive failures if that is set. The session at the broker is
//! persistent (`clean_session = false`) and acknowledgements are manual: an uplink is
//! acknowledged to the broker only once the bridge has handled it, so a QoS 1 uplink the
//! bridge had not handled when it stopped is delivered again by the broker. The main task owns
//! the [`Bridge`] and waits on the uplinks from that task, the IPv6 side (a UDP socket or a TUN
//! interface), the next timer, and the shutdown signal. A third task serves `/metrics`.
//!
//! Shutdown: the main task stops waiting for new input, hands over everything already received
//! (uplinks the MQTT task passed on, datagrams or packets queued at the IPv6 side), publishes
//! what that produced, waits for the broker to acknowledge every publication, and
//! disconnects, all within `shutdown.timeout_s`. Reassemblies still in progress are lost.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::config::{Config, Delivery, LogFormat};
use super::metrics::{Failure, Metrics};
use super::{Action, Bridge};

/// Why the service stopped with an error.
#[derive(Debug, Error)]
pub enum RunError {
    /// The UDP socket could not be bound.
    #[error("delivery.listen {addr}: {source}")]
    Udp {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The TUN interface could not be created.
    #[error("delivery: TUN interface {name}: {problem} (Linux only; needs CAP_NET_ADMIN)")]
    Tun {
        /// The interface.
        name: String,
        /// What failed.
        problem: String,
    },
    /// The metrics listener could not be bound.
    #[error("metrics.listen {addr}: {source}")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The broker could not be reached `attempts` times in a row.
    #[error("MQTT broker {host}:{port} unreachable after {attempts} attempts: {last}")]
    Broker {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// Consecutive failed attempts.
        attempts: u32,
        /// The last error.
        last: String,
    },
}

/// Sets up logging on stderr as `cfg` says: text or JSON lines, filtered by `log.level` (the
/// `RUST_LOG` variable, when set, wins). Call it once per process.
pub fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cfg.log_level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match cfg.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

enum MqttIn {
    Uplink(rumqttc::Publish),
    GaveUp(RunError),
}

enum Ipv6Side {
    Udp { socket: UdpSocket, peer: SocketAddr },
    Tun(Box<tun::AsyncDevice>),
}

impl Ipv6Side {
    async fn open(delivery: &Delivery) -> Result<Self, RunError> {
        match delivery {
            Delivery::Udp { listen, peer } => {
                let socket = UdpSocket::bind(listen)
                    .await
                    .map_err(|source| RunError::Udp {
                        addr: *listen,
                        source,
                    })?;
                Ok(Self::Udp {
                    socket,
                    peer: *peer,
                })
            }
            Delivery::Tun { name, mtu } => {
                let mut c = tun::Configuration::default();
                c.tun_name(name).mtu(*mtu).up();
                let dev = tun::create_as_async(&c).map_err(|e| RunError::Tun {
                    name: name.clone(),
                    problem: e.to_string(),
                })?;
                Ok(Self::Tun(Box::new(dev)))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Udp { socket, peer } => format!(
                "UDP {} -> {peer}",
                socket
                    .local_addr()
                    .map_or_else(|_| "?".into(), |a| a.to_string())
            ),
            Self::Tun(_) => "TUN".into(),
        }
    }

    async fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Udp { socket, .. } => socket.recv(buf).await,
            Self::Tun(dev) => dev.recv(buf).await,
        }
    }

    async fn send(&self, packet: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Udp { socket, peer } => socket.send_to(packet, peer).await.map(|_| ()),
            Self::Tun(dev) => dev.send(packet).await.map(|_| ()),
        }
    }
}

/// Runs the bridge for `cfg` until `shutdown` completes (then shuts down gracefully) or the
/// broker stays unreachable. Counts into `metrics`; on return every counter is final.
pub async fn run(
    cfg: Config,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let start = Instant::now();
    let now = move || u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    let mut bridge = Bridge::new(&cfg, metrics.clone());
    let ipv6 = Ipv6Side::open(&cfg.delivery).await?;

    if let Some(addr) = cfg.metrics {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| RunError::Metrics { addr, source })?;
        info!(listen = %listener.local_addr().map_or(addr, |a| a), "metrics served at /metrics");
        tokio::spawn(serve_metrics(listener, metrics.clone()));
    }

    let m = &cfg.mqtt;
    let mut opts = MqttOptions::new(&m.client_id, &m.host, m.port);
    opts.set_keep_alive(m.keep_alive)
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_max_packet_size(256 * 1024, 256 * 1024);
    if let Some((u, p)) = &m.credentials {
        opts.set_credentials(u, p);
    }
    if let Some(tls) = &m.tls {
        opts.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Simple {
                ca: tls.ca.clone(),
                alpn: None,
                client_auth: tls.client.clone(),
            },
        ));
    }
    let (client, eventloop) = AsyncClient::new(opts, 256);
    let (tx, mut rx) = mpsc::channel(1024);
    let outstanding = Arc::new(AtomicU64::new(0));
    let mut outbox = Outbox::default();
    let mqtt_task = tokio::spawn(drive_mqtt(
        eventloop,
        client.clone(),
        bridge.subscriptions().to_vec(),
        cfg.mqtt.clone(),
        tx,
        metrics.clone(),
        outstanding.clone(),
    ));
    info!(
        broker = %format!("{}:{}", m.host, m.port),
        topics = %bridge.subscriptions().join(" "),
        ipv6 = %ipv6.describe(),
        devices = cfg.devices.len(),
        "bridge started"
    );

    let mut buf = vec![0u8; 65_536];
    tokio::pin!(shutdown);
    let result = loop {
        let deadline = bridge
            .next_deadline()
            .map(|d| start + Duration::from_micros(d));
        tokio::select! {
            biased;
            () = &mut shutdown => break Ok(()),
            msg = rx.recv() => match msg {
                Some(MqttIn::Uplink(p)) => {
                    take_uplink(&mut bridge, p, now(), &mut outbox, &ipv6, &metrics).await;
                }
                Some(MqttIn::GaveUp(e)) => break Err(e),
                None => break Ok(()),
            },
            r = ipv6.recv(&mut buf) => match r {
                Ok(n) => {
                    let packet = buf.get(..n).unwrap_or(&[]);
                    take_packet(&mut bridge, packet, now(), &mut outbox, &ipv6, &metrics).await;
                }
                Err(e) => warn!(error = %e, "IPv6 side: receive failed"),
            },
            () = sleep_until(deadline) => {
                let actions = bridge.poll(now());
                perform(actions, &mut outbox, &ipv6, &metrics).await;
            }
            () = tokio::time::sleep(Duration::from_millis(1)), if !outbox.is_empty() => {}
        }
        outbox.flush(&client, &metrics, &outstanding);
    };
    if result.is_err() {
        mqtt_task.abort();
        return result;
    }

    // Graceful shutdown: hand over what was received, flush, disconnect.
    info!("shutting down: handing over what was received");
    let grace = tokio::time::sleep(cfg.shutdown_timeout);
    tokio::pin!(grace);
    let handover = async {
        let mut handled = 0usize;
        loop {
            // Uplinks the MQTT task passed on (it may pass more while the client's queue
            // drains: those are handled too, until the timeout).
            while let Ok(msg) = rx.try_recv() {
                if let MqttIn::Uplink(p) = msg {
                    take_uplink(&mut bridge, p, now(), &mut outbox, &ipv6, &metrics).await;
                    outbox.flush(&client, &metrics, &outstanding);
                    handled += 1;
                }
            }
            // Packets queued at the IPv6 side.
            while let Ok(Ok(n)) = tokio::time::timeout(Duration::ZERO, ipv6.recv(&mut buf)).await {
                let packet = buf.get(..n).unwrap_or(&[]);
                take_packet(&mut bridge, packet, now(), &mut outbox, &ipv6, &metrics).await;
                handled += 1;
            }
            outbox.flush(&client, &metrics, &outstanding);
            if outbox.is_empty() && outstanding.load(Relaxed) == 0 && rx.is_empty() {
                break handled;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        handled = handover => info!(handled, "handed over; disconnecting"),
        () = &mut grace => warn!(
            unacknowledged = outstanding.load(Relaxed),
            "shutdown timeout: publications not acknowledged by the broker"
        ),
    }
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), mqtt_task).await;
    metrics.mqtt_connected.store(0, Relaxed);
    info!(
        uplink_packets = metrics.uplink_packets.load(Relaxed),
        downlink_packets = metrics.downlink_packets.load(Relaxed),
        sessions_lost = bridge.network().sessions().len(),
        "stopped"
    );
    Ok(())
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// What the main task hands to the MQTT client, in order. The client's request queue is
/// bounded and drained by the MQTT task, which itself waits when the main task's inbox is
/// full: the main task therefore never waits on the queue (that cycle deadlocks under a flood
/// of uplinks) but keeps what does not fit here and retries.
#[derive(Default)]
struct Outbox {
    queue: std::collections::VecDeque<Out>,
}

enum Out {
    Ack(rumqttc::Publish),
    Publish { topic: String, payload: Vec<u8> },
}

impl Outbox {
    fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Hands over as much as the client takes now.
    fn flush(&mut self, client: &AsyncClient, metrics: &Metrics, outstanding: &AtomicU64) {
        while let Some(out) = self.queue.pop_front() {
            // A full queue (`TryRequest`) hands the request back: keep it, in order, for the
            // next flush. The payload moves into the client, and is copied back only then.
            match out {
                Out::Ack(p) => {
                    if let Err(rumqttc::ClientError::TryRequest(_)) = client.try_ack(&p) {
                        self.queue.push_front(Out::Ack(p));
                        return;
                    }
                }
                Out::Publish { topic, payload } => {
                    match client.try_publish(topic.as_str(), QoS::AtLeastOnce, false, payload) {
                        Ok(()) => {
                            outstanding.fetch_add(1, Relaxed);
                        }
                        Err(rumqttc::ClientError::TryRequest(rumqttc::Request::Publish(p))) => {
                            self.queue.push_front(Out::Publish {
                                topic,
                                payload: p.payload.to_vec(),
                            });
                            return;
                        }
                        Err(e) => {
                            metrics.fail(Failure::Publish);
                            error!(%topic, error = %e, "publish failed");
                        }
                    }
                }
            }
        }
    }
}

/// Handles an uplink from the broker; its acknowledgement is queued after what it produced.
async fn take_uplink(
    bridge: &mut Bridge,
    p: rumqttc::Publish,
    now: u64,
    outbox: &mut Outbox,
    ipv6: &Ipv6Side,
    metrics: &Metrics,
) {
    let actions = bridge.handle_mqtt(&p.topic, &p.payload, now);
    perform(actions, outbox, ipv6, metrics).await;
    outbox.queue.push_back(Out::Ack(p));
}

/// Handles a downlink IPv6 packet from the IPv6 side.
async fn take_packet(
    bridge: &mut Bridge,
    packet: &[u8],
    now: u64,
    outbox: &mut Outbox,
    ipv6: &Ipv6Side,
    metrics: &Metrics,
) {
    let actions = bridge.handle_ipv6(packet, now);
    perform(actions, outbox, ipv6, metrics).await;
}

async fn perform(actions: Vec<Action>, outbox: &mut Outbox, ipv6: &Ipv6Side, metrics: &Metrics) {
    for a in actions {
        match a {
            Action::Publish { topic, payload } => {
                outbox.queue.push_back(Out::Publish { topic, payload });
            }
            Action::Deliver { packet, .. } => {
                if let Err(e) = ipv6.send(&packet).await {
                    metrics.fail(Failure::Delivery);
                    error!(error = %e, bytes = packet.len(), "IPv6 side: delivery failed");
                }
            }
        }
    }
}

/// Polls the MQTT event loop: forwards uplinks, (re)subscribes on every connection, counts
/// acknowledged publications, and backs off after failures.
async fn drive_mqtt(
    mut eventloop: EventLoop,
    client: AsyncClient,
    filters: Vec<String>,
    cfg: super::config::Mqtt,
    tx: mpsc::Sender<MqttIn>,
    metrics: Arc<Metrics>,
    outstanding: Arc<AtomicU64>,
) {
    let mut failures = 0u32;
    let mut delay = cfg.retry_initial;
    let mut pending_subacks = 0usize;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                failures = 0;
                delay = cfg.retry_initial;
                metrics.mqtt_connected.store(1, Relaxed);
                Metrics::add(&metrics.mqtt_connections, 1);
                info!(
                    session_present = ack.session_present,
                    "connected to the broker"
                );
                // One SUBSCRIBE per 100 filters (a broker may cap a packet's size).
                for chunk in filters.chunks(100) {
                    let many = chunk
                        .iter()
                        .map(|f| rumqttc::SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
                    if let Err(e) = client.try_subscribe_many(many) {
                        error!(error = %e, "subscribe failed");
                    }
                }
                pending_subacks = filters.len().div_ceil(100);
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                {
                    error!("the broker refused a subscription (check its ACL)");
                }
                pending_subacks = pending_subacks.saturating_sub(1);
                if pending_subacks == 0 {
                    info!(topics = filters.len(), "subscribed");
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if tx.send(MqttIn::Uplink(p)).await.is_err() {
                    return;
                }
            }
            Ok(Event::Incoming(Packet::PubAck(_))) => {
                let _ = outstanding.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                debug!("disconnect sent");
            }
            Ok(_) => {}
            Err(rumqttc::ConnectionError::RequestsDone) => return,
            Err(e) => {
                let was_connected = metrics.mqtt_connected.swap(0, Relaxed) == 1;
                failures += 1;
                Metrics::add(&metrics.mqtt_connect_failures, 1);
                if cfg.max_retries.is_some_and(|max| failures >= max) {
                    let _ = tx
                        .send(MqttIn::GaveUp(RunError::Broker {
                            host: cfg.host.clone(),
                            port: cfg.port,
                            attempts: failures,
                            last: e.to_string(),
                        }))
                        .await;
                    return;
                }
                if was_connected {
                    warn!(error = %e, "connection to the broker lost; reconnecting");
                } else {
                    warn!(
                        broker = %format!("{}:{}", cfg.host, cfg.port),
                        error = %e,
                        attempt = failures,
                        retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "broker unreachable; retrying"
                    );
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(cfg.retry_max);
            }
        }
    }
}

/// Serves `GET /metrics` (Prometheus text format 0.0.4); anything else is a 404.
async fn serve_metrics(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut req = Vec::with_capacity(512);
            let mut chunk = [0u8; 512];
            let read = async {
                while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(chunk.get(..n).unwrap_or(&[])),
                    }
                }
            };
            if tokio::time::timeout(Duration::from_secs(5), read)
                .await
                .is_err()
            {
                return;
            }
            let line = req.split(|&b| b == b'\r').next().unwrap_or(&[]);
            let mut parts = line.split(|&b| b == b' ');
            let (method, path) = (parts.next(), parts.next());
            let (status, ctype, body) = match (method, path) {
                (Some(b"GET"), Some(b"/metrics")) => (
                    "200 OK",
                    "text/plain; version=0.0.4; charset=utf-8",
                    metrics.render(),
                ),
                _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}
