//! The bridge's TOML configuration: what it reads, what it checks, and the errors that name
//! the key at fault.
//!
//! ```toml
//! [mqtt]
//! host = "127.0.0.1"
//! port = 1883
//! client_id = "schc-gateway"      # also the persistent session at the broker
//!
//! [network_server]
//! kind = "chirpstack"              # or "tts" (The Things Stack v3, with `tenant`)
//! application_id = "4a8c9a6e-6f4e-4b6c-9b0d-2f7e1b9c1a11"
//!
//! [delivery]
//! kind = "udp"                     # or "tun", with `name`
//! listen = "127.0.0.1:5684"       # downlink IPv6 packets arrive here, one per datagram
//! peer = "127.0.0.1:5683"         # uplink IPv6 packets go there, one per datagram
//!
//! [profiles.sensors]
//! rules = "rules/lorawan-ipv6-udp.json"   # relative to this file
//!
//! [[devices]]
//! dev_eui = "70b3d57ed0004201"
//! app_skey = "616e2d617070736b65792d31362d6279"
//! profile = "sensors"              # or `rules = "..."` for a set of its own
//! ```
//!
//! Every table but `[mqtt]`, `[network_server]` and `[delivery]` is optional; unknown keys are
//! refused, so a misspelt key is an error and not a silently ignored setting.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use crate::gateway::Limits;
use crate::json::{self, JsonError};
use crate::network::{hex, DevEui, NetworkLimits};
use crate::profile::lorawan::{IidForm, MAX_PAYLOAD};
use crate::rule::RuleSetBuf;

/// Why a configuration was refused.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not TOML of the expected shape (a missing or unknown key, a wrong type); the message
    /// gives line and column.
    #[error("{path}: {message}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// toml's message, with the position.
        message: String,
    },
    /// A value that parses but cannot be used.
    #[error("{path}: {key}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key, e.g. `devices[2].app_skey`.
        key: String,
        /// What is wrong.
        problem: String,
    },
    /// A rule file named by the configuration could not be read or is not a valid RFC 9363
    /// rule set for RFC 9011.
    #[error("{key}: rule file {path}: {problem}")]
    Rules {
        /// The key that names it.
        key: String,
        /// The rule file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// The network server whose MQTT integration the bridge speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkServerKind {
    /// ChirpStack v4: `application/{application_id}/device/{dev_eui}/event/up` and
    /// `.../command/down`, JSON as ChirpStack's `json` marshaler writes it.
    ChirpStack {
        /// The application's ID (a UUID in ChirpStack v4).
        application_id: String,
    },
    /// The Things Stack v3: `v3/{application_id}@{tenant}/devices/{device_id}/up` and
    /// `.../down/push`.
    Tts {
        /// The application ID.
        application_id: String,
        /// The tenant (`ttn` on The Things Network).
        tenant: String,
    },
}

/// Where decompressed uplinks go and downlinks come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// IPv6 packets as UDP datagrams, one packet per datagram.
    Udp {
        /// The bridge's socket: downlink packets arrive here, uplinks leave from it.
        listen: SocketAddr,
        /// Where uplink packets are sent.
        peer: SocketAddr,
    },
    /// A TUN interface (Linux; needs CAP_NET_ADMIN): the kernel routes the packets.
    Tun {
        /// The interface name.
        name: String,
        /// Its MTU (at least 1,280, IPv6's minimum).
        mtu: u16,
    },
}

/// MQTT connection settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mqtt {
    /// Broker host name or address.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Client ID; the broker keeps this client's session (subscriptions, QoS 1 messages
    /// not yet acknowledged) across restarts.
    pub client_id: String,
    /// User name and password, if the broker wants them.
    pub credentials: Option<(String, String)>,
    /// MQTT keep-alive.
    pub keep_alive: Duration,
    /// First delay before reconnecting; it doubles after each failed attempt.
    pub retry_initial: Duration,
    /// Longest delay between attempts.
    pub retry_max: Duration,
    /// Consecutive failed attempts after which the bridge gives up (exits with an error);
    /// `None`: never.
    pub max_retries: Option<u32>,
    /// TLS to the broker: the CA certificates (PEM) the broker's certificate must chain to, and
    /// optionally a client certificate and key (PEM) for brokers that authenticate clients.
    pub tls: Option<Tls>,
    /// What to subscribe to.
    pub subscribe: Subscribe,
    /// Subscribe as a member of this shared-subscription group (`$share/{group}/...`): the
    /// broker spreads the messages over the group's members. Only with a broker that keeps a
    /// device's messages on one member (docs/scaling.md).
    pub share_group: Option<String>,
}

/// TLS settings, read from the files the configuration names.
#[derive(Clone, PartialEq, Eq)]
pub struct Tls {
    /// CA certificates, PEM.
    pub ca: Vec<u8>,
    /// Client certificate chain and private key, PEM.
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

impl fmt::Debug for Tls {
    /// Leaves the key out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("ca_bytes", &self.ca.len())
            .field("client_auth", &self.client.is_some())
            .finish()
    }
}

/// Which uplink topics the bridge subscribes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Subscribe {
    /// Every device of the application (one wildcard subscription).
    Application,
    /// Only the configured devices, one subscription each: instances that split the devices
    /// between them each receive only their own (docs/scaling.md).
    Devices,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// One device the bridge serves.
#[derive(Clone)]
pub struct DeviceConfig {
    /// The DevEUI.
    pub dev_eui: DevEui,
    /// The AppSKey of its session (for the RFC 9011 DevIID).
    pub app_skey: [u8; 16],
    /// Its rule set (shared by the devices of a profile).
    pub rules: Arc<RuleSetBuf>,
    /// The FRMPayload size of its downlinks.
    pub downlink_mtu: usize,
    /// The application IID for rules with the AppIID action.
    pub app_iid: Option<[u8; 8]>,
    /// The Things Stack device ID, when known before its first uplink.
    pub tts_device_id: Option<String>,
}

impl fmt::Debug for DeviceConfig {
    /// Leaves the key out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceConfig")
            .field("dev_eui", &hex(&self.dev_eui))
            .field("rules", &self.rules.as_set().rules().len())
            .field("downlink_mtu", &self.downlink_mtu)
            .finish_non_exhaustive()
    }
}

/// A checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The broker.
    pub mqtt: Mqtt,
    /// The network server.
    pub network_server: NetworkServerKind,
    /// The IPv6 side.
    pub delivery: Delivery,
    /// Caps on devices, sessions, bytes and packet size.
    pub limits: NetworkLimits,
    /// How DevIIDs are computed.
    pub iid_form: IidForm,
    /// Where `/metrics` is served, if anywhere.
    pub metrics: Option<SocketAddr>,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter (`tracing-subscriber` syntax, e.g. `info` or `lpwan_schc=debug`).
    pub log_level: String,
    /// How long a shutdown may take to hand over what was received.
    pub shutdown_timeout: Duration,
    /// The devices, in file order.
    pub devices: Vec<DeviceConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    mqtt: RawMqtt,
    network_server: RawNetworkServer,
    delivery: RawDelivery,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    iid_form: Option<String>,
    #[serde(default)]
    metrics: Option<RawMetrics>,
    #[serde(default)]
    log: Option<RawLog>,
    #[serde(default)]
    shutdown: Option<RawShutdown>,
    #[serde(default)]
    profiles: BTreeMap<String, RawProfile>,
    #[serde(default)]
    devices: Vec<RawDevice>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMqtt {
    host: String,
    #[serde(default = "default_port")]
    port: u16,
    #[serde(default = "default_client_id")]
    client_id: String,
    username: Option<String>,
    password: Option<String>,
    #[serde(default = "default_keep_alive")]
    keep_alive_s: u64,
    #[serde(default = "default_retry_initial")]
    retry_initial_ms: u64,
    #[serde(default = "default_retry_max")]
    retry_max_ms: u64,
    #[serde(default)]
    max_retries: u32,
    subscribe: Option<Subscribe>,
    share_group: Option<String>,
    #[serde(default)]
    tls: bool,
    ca_file: Option<PathBuf>,
    client_cert_file: Option<PathBuf>,
    client_key_file: Option<PathBuf>,
}

fn default_port() -> u16 {
    1883
}
fn default_client_id() -> String {
    "schc-gateway".into()
}
fn default_keep_alive() -> u64 {
    30
}
fn default_retry_initial() -> u64 {
    500
}
fn default_retry_max() -> u64 {
    30_000
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "lowercase")]
enum RawNetworkServer {
    Chirpstack {
        application_id: String,
    },
    Tts {
        application_id: String,
        tenant: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "lowercase")]
enum RawDelivery {
    Udp {
        listen: String,
        peer: String,
    },
    Tun {
        name: String,
        #[serde(default = "default_tun_mtu")]
        mtu: u16,
    },
}

fn default_tun_mtu() -> u16 {
    1280
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(default = "default_max_devices")]
    max_devices: usize,
    #[serde(default)]
    device_idle_s: u64,
    #[serde(default = "default_max_sessions")]
    max_sessions: usize,
    #[serde(default = "default_max_session_bytes")]
    max_session_bytes: usize,
    #[serde(default = "default_max_packet_size")]
    max_packet_size: usize,
}

impl Default for RawLimits {
    fn default() -> Self {
        Self {
            max_devices: default_max_devices(),
            device_idle_s: 0,
            max_sessions: default_max_sessions(),
            max_session_bytes: default_max_session_bytes(),
            max_packet_size: default_max_packet_size(),
        }
    }
}

fn default_max_devices() -> usize {
    NetworkLimits::default().max_devices
}
fn default_max_sessions() -> usize {
    Limits::default().max_sessions
}
fn default_max_session_bytes() -> usize {
    Limits::default().max_bytes
}
fn default_max_packet_size() -> usize {
    NetworkLimits::default().max_packet_size
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<LogFormat>,
    level: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShutdown {
    timeout_s: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    rules: PathBuf,
    downlink_mtu: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    dev_eui: String,
    app_skey: String,
    profile: Option<String>,
    rules: Option<PathBuf>,
    downlink_mtu: Option<usize>,
    app_iid: Option<String>,
    tts_device_id: Option<String>,
}

impl Config {
    /// Reads and checks the file at `path`; relative rule paths are taken from its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, path, base)
    }

    /// Checks configuration `text`; `path` names it in errors and `base` is the folder relative
    /// rule paths start from.
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Toml {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " | "),
        })?;
        let invalid = |key: &str, problem: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            problem,
        };

        let m = raw.mqtt;
        if m.host.trim().is_empty() {
            return Err(invalid("mqtt.host", "empty".into()));
        }
        if m.client_id.is_empty() || m.client_id.len() > 23 {
            return Err(invalid(
                "mqtt.client_id",
                format!(
                    "{} bytes; MQTT 3.1.1 brokers must accept 1 to 23",
                    m.client_id.len()
                ),
            ));
        }
        if m.retry_initial_ms == 0 || m.retry_max_ms < m.retry_initial_ms {
            return Err(invalid(
                "mqtt.retry_max_ms",
                "retry_initial_ms must be at least 1 and at most retry_max_ms".into(),
            ));
        }
        let credentials = match (m.username, m.password) {
            (Some(u), Some(p)) => Some((u, p)),
            (None, None) => None,
            (Some(u), None) => Some((u, String::new())),
            (None, Some(_)) => {
                return Err(invalid("mqtt.password", "given without a username".into()))
            }
        };
        let read_pem = |key: &str, rel: &Path| -> Result<Vec<u8>, ConfigError> {
            let full = base.join(rel);
            let bytes = std::fs::read(&full)
                .map_err(|e| invalid(key, format!("{}: {e}", full.display())))?;
            if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
                return Err(invalid(key, format!("{}: not a PEM file", full.display())));
            }
            Ok(bytes)
        };
        let tls = match (m.tls, &m.ca_file, &m.client_cert_file, &m.client_key_file) {
            (false, None, None, None) => None,
            (false, ..) => {
                return Err(invalid(
                    "mqtt.tls",
                    "ca_file or a client certificate given, but tls = false".into(),
                ))
            }
            (true, None, ..) => {
                return Err(invalid(
                    "mqtt.ca_file",
                    "tls = true needs the CA certificates (PEM), e.g. /etc/ssl/certs/ca-certificates.crt".into(),
                ))
            }
            (true, Some(ca), cert, key) => Some(Tls {
                ca: read_pem("mqtt.ca_file", ca)?,
                client: match (cert, key) {
                    (Some(c), Some(k)) => Some((
                        read_pem("mqtt.client_cert_file", c)?,
                        read_pem("mqtt.client_key_file", k)?,
                    )),
                    (None, None) => None,
                    _ => {
                        return Err(invalid(
                            "mqtt.client_key_file",
                            "give both client_cert_file and client_key_file, or neither".into(),
                        ))
                    }
                },
            }),
        };
        let mqtt = Mqtt {
            host: m.host,
            port: m.port,
            client_id: m.client_id,
            credentials,
            keep_alive: Duration::from_secs(m.keep_alive_s.max(5)),
            retry_initial: Duration::from_millis(m.retry_initial_ms),
            retry_max: Duration::from_millis(m.retry_max_ms),
            max_retries: (m.max_retries > 0).then_some(m.max_retries),
            tls,
            subscribe: m.subscribe.unwrap_or(Subscribe::Application),
            share_group: m.share_group,
        };

        let topic_safe = |key: &str, v: &str| {
            if v.is_empty() || v.contains(['/', '+', '#', '@']) {
                Err(invalid(
                    key,
                    format!("{v:?}: must be non-empty, without '/', '+', '#' or '@'"),
                ))
            } else {
                Ok(())
            }
        };
        if let Some(g) = &mqtt.share_group {
            topic_safe("mqtt.share_group", g)?;
        }
        let network_server = match raw.network_server {
            RawNetworkServer::Chirpstack { application_id } => {
                topic_safe("network_server.application_id", &application_id)?;
                NetworkServerKind::ChirpStack { application_id }
            }
            RawNetworkServer::Tts {
                application_id,
                tenant,
            } => {
                topic_safe("network_server.application_id", &application_id)?;
                topic_safe("network_server.tenant", &tenant)?;
                NetworkServerKind::Tts {
                    application_id,
                    tenant,
                }
            }
        };

        let delivery = match raw.delivery {
            RawDelivery::Udp { listen, peer } => Delivery::Udp {
                listen: listen
                    .parse()
                    .map_err(|e| invalid("delivery.listen", format!("{listen:?}: {e}")))?,
                peer: peer
                    .parse()
                    .map_err(|e| invalid("delivery.peer", format!("{peer:?}: {e}")))?,
            },
            RawDelivery::Tun { name, mtu } => {
                if name.is_empty() || name.len() > 15 {
                    return Err(invalid(
                        "delivery.name",
                        "an interface name has 1 to 15 bytes".into(),
                    ));
                }
                if mtu < 1280 {
                    return Err(invalid(
                        "delivery.mtu",
                        format!("{mtu}: IPv6 needs at least 1280"),
                    ));
                }
                Delivery::Tun { name, mtu }
            }
        };

        let l = raw.limits;
        if l.max_devices == 0 || l.max_sessions == 0 {
            return Err(invalid(
                "limits",
                "max_devices and max_sessions must be at least 1".into(),
            ));
        }
        if !(40..=65_535).contains(&l.max_packet_size) {
            return Err(invalid(
                "limits.max_packet_size",
                format!("{}: must be 40 to 65,535 bytes", l.max_packet_size),
            ));
        }
        let limits = NetworkLimits {
            max_devices: l.max_devices,
            device_idle: (l.device_idle_s > 0).then(|| l.device_idle_s.saturating_mul(1_000_000)),
            sessions: Limits {
                max_sessions: l.max_sessions,
                max_bytes: l.max_session_bytes,
                ..Limits::default()
            },
            max_packet_size: l.max_packet_size,
        };

        let iid_form = match raw.iid_form.as_deref() {
            None | Some("binary") => IidForm::Binary,
            Some("ascii") => IidForm::Ascii,
            Some(other) => {
                return Err(invalid(
                    "iid_form",
                    format!("{other:?}: \"binary\" or \"ascii\""),
                ))
            }
        };
        let metrics = raw
            .metrics
            .map(|m| {
                m.listen
                    .parse()
                    .map_err(|e| invalid("metrics.listen", format!("{:?}: {e}", m.listen)))
            })
            .transpose()?;
        let (log_format, log_level) = match raw.log {
            Some(l) => (
                l.format.unwrap_or(LogFormat::Text),
                l.level.unwrap_or_else(|| "info".into()),
            ),
            None => (LogFormat::Text, "info".into()),
        };
        let shutdown_timeout = Duration::from_secs(raw.shutdown.map_or(10, |s| s.timeout_s));

        // Rule files: each loaded once, shared by every device that names it.
        let mut loaded: HashMap<PathBuf, Arc<RuleSetBuf>> = HashMap::new();
        let mut load = |key: &str, rel: &Path| -> Result<Arc<RuleSetBuf>, ConfigError> {
            let full = base.join(rel);
            if let Some(r) = loaded.get(&full) {
                return Ok(r.clone());
            }
            let rules_err = |problem: String| ConfigError::Rules {
                key: key.to_string(),
                path: full.clone(),
                problem,
            };
            let text = std::fs::read_to_string(&full).map_err(|e| rules_err(e.to_string()))?;
            let set = json::from_str(&text).map_err(|e: JsonError| rules_err(e.to_string()))?;
            let (up, down) = crate::profile::lorawan::default_fports(&set.as_set());
            crate::profile::lorawan::check_rules(&set.as_set(), up, down)
                .map_err(|e| rules_err(e.to_string()))?;
            let set = Arc::new(set);
            loaded.insert(full, set.clone());
            Ok(set)
        };
        let mut profiles = HashMap::new();
        for (name, p) in &raw.profiles {
            let key = format!("profiles.{name}");
            let rules = load(&format!("{key}.rules"), &p.rules)?;
            let mtu = check_mtu(&format!("{key}.downlink_mtu"), p.downlink_mtu, &invalid)?;
            profiles.insert(name.clone(), (rules, mtu));
        }

        let mut devices = Vec::with_capacity(raw.devices.len());
        let mut seen = HashSet::new();
        for (i, d) in raw.devices.into_iter().enumerate() {
            let key = |k: &str| format!("devices[{i}].{k}");
            let dev_eui: DevEui = parse_hex(&d.dev_eui).map_err(|p| invalid(&key("dev_eui"), p))?;
            if !seen.insert(dev_eui) {
                return Err(invalid(
                    &key("dev_eui"),
                    format!("{} is listed twice", hex(&dev_eui)),
                ));
            }
            let app_skey: [u8; 16] =
                parse_hex(&d.app_skey).map_err(|p| invalid(&key("app_skey"), p))?;
            let app_iid = d
                .app_iid
                .as_deref()
                .map(|s| parse_hex::<8>(s).map_err(|p| invalid(&key("app_iid"), p)))
                .transpose()?;
            let (rules, profile_mtu) = match (&d.profile, &d.rules) {
                (Some(name), None) => profiles.get(name).cloned().ok_or_else(|| {
                    invalid(&key("profile"), format!("no [profiles.{name}] table"))
                })?,
                (None, Some(path)) => (load(&key("rules"), path)?, None),
                _ => {
                    return Err(invalid(
                        &key("profile"),
                        "give exactly one of `profile` and `rules`".into(),
                    ))
                }
            };
            let mtu = check_mtu(&key("downlink_mtu"), d.downlink_mtu, &invalid)?;
            if let Some(id) = &d.tts_device_id {
                topic_safe(&key("tts_device_id"), id)?;
            }
            devices.push(DeviceConfig {
                dev_eui,
                app_skey,
                rules,
                downlink_mtu: mtu.or(profile_mtu).unwrap_or(51),
                app_iid,
                tts_device_id: d.tts_device_id,
            });
        }
        if mqtt.subscribe == Subscribe::Devices {
            if devices.is_empty() {
                return Err(invalid(
                    "mqtt.subscribe",
                    "\"devices\" with no [[devices]]: nothing to subscribe to".into(),
                ));
            }
            if matches!(network_server, NetworkServerKind::Tts { .. }) {
                if let Some(i) = devices.iter().position(|d| d.tts_device_id.is_none()) {
                    return Err(invalid(
                        &format!("devices[{i}].tts_device_id"),
                        "mqtt.subscribe = \"devices\" with The Things Stack needs every device's ID (its topics name it)".into(),
                    ));
                }
            }
        }
        Ok(Config {
            mqtt,
            network_server,
            delivery,
            limits,
            iid_form,
            metrics,
            log_format,
            log_level,
            shutdown_timeout,
            devices,
        })
    }
}

fn check_mtu(
    key: &str,
    mtu: Option<usize>,
    invalid: &impl Fn(&str, String) -> ConfigError,
) -> Result<Option<usize>, ConfigError> {
    match mtu {
        Some(m) if !(11..=MAX_PAYLOAD).contains(&m) => Err(invalid(
            key,
            format!("{m}: a LoRaWAN FRMPayload has 11 to {MAX_PAYLOAD} bytes"),
        )),
        m => Ok(m),
    }
}

/// `N` bytes from hex (either case, `-` and `:` separators allowed), or what is wrong.
pub(crate) fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], String> {
    let digits: Vec<u8> = s.bytes().filter(|b| !matches!(b, b'-' | b':')).collect();
    if digits.len() != 2 * N {
        return Err(format!(
            "{s:?}: {} hex digits, {} expected",
            digits.len(),
            2 * N
        ));
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let text = std::str::from_utf8(pair).unwrap_or("");
        *o = u8::from_str_radix(text, 16).map_err(|_| format!("{s:?}: not hexadecimal"))?;
    }
    Ok(out)
}
