//! The network side of SCHC over LoRaWAN (RFC 9011), feature `std`: one context per DevEUI,
//! uplinks decompressed and reassembled, downlinks compressed and fragmented. Sans-IO.
//!
//! A [`Network`] keeps, per device, its rule set (an `Arc<RuleSetBuf>`: one loaded rule set is
//! shared by any number of devices at the cost of a pointer), its IIDs and its downlink MTU.
//! Reassembly sessions are a [`Sessions`] and downlinks a [`Senders`], both
//! keyed by DevEUI, so a Rule ID or a DTag of one device never reaches another device's
//! context or session. The caller owns the clock and the radio side: it hands in uplinks
//! ([`Network::handle_uplink`]) and packets for devices ([`Network::send_downlink`]), calls
//! [`Network::poll`] at [`Network::next_deadline`], and gets [`NetOutput`]s back: downlinks
//! to queue, packets delivered, sessions ended.
//!
//! ```
//! use std::sync::Arc;
//! use lpwan_schc::network::{NetOutput, Network, NetworkLimits};
//! use lpwan_schc::profile::lorawan::{self, Buffers, Device, DeviceAction};
//! use lpwan_schc::rule::RuleSet;
//!
//! let rules = Arc::new(lpwan_schc::json::from_str(include_str!("../rules/lorawan-fragmentation.json"))?);
//! let (dev_eui, app_skey) = ([0x70, 0xB3, 0xD5, 0x7E, 0xD0, 0, 0, 1], [0x2B; 16]);
//! let mut net = Network::new(NetworkLimits::default());
//! net.add_device(dev_eui, rules.clone(), app_skey, 0)?;
//!
//! // A device on the other side of a perfect radio.
//! static DEV_RULES: RuleSet<'static> = RuleSet::new_unchecked(&lorawan::RULES, &[], &[], &[]);
//! let (mut tx, mut rx, mut out) = ([0u8; 1300], [0u8; 1600], [0u8; 1300]);
//! let mut dev = Device::new(DEV_RULES, dev_eui, app_skey, Buffers { tx: &mut tx, rx: &mut rx })?;
//! let packet: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
//! dev.send(&packet, 0)?;
//! let mut got = None;
//! while let DeviceAction::Send { fport, len } = dev.poll(0, &mut out)? {
//!     for o in net.handle_uplink(dev_eui, fport, &out[..len], 0)? {
//!         match o {
//!             NetOutput::Delivered { packet, .. } => got = Some(packet),
//!             NetOutput::Send { fport, payload, .. } => dev.handle_downlink(fport, &payload, 0)?,
//!             _ => {}
//!         }
//!     }
//! }
//! assert_eq!(got.as_deref(), Some(&packet[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::vec;
use std::vec::Vec;

use thiserror::Error;

use crate::codec::{self, CompressError, Config, DecompressError};
use crate::frag::{AbortReason, FragError, Micros};
use crate::gateway::{DownlinkOutput, Eviction, GatewayError, Limits, Output, Senders, Sessions};
use crate::profile::lorawan::{
    check_rules, default_fports, iid, is_schc_fport, rule_id, IidForm, ProfileError, MAX_PAYLOAD,
};
use crate::rule::{Direction, Nature, Rule, RuleSetBuf};

/// A LoRaWAN DevEUI, most significant byte first.
pub type DevEui = [u8; 8];

/// Caps of a [`Network`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkLimits {
    /// Most device contexts at once.
    pub max_devices: usize,
    /// A device silent this long (no uplink, no downlink) loses its context at the next
    /// [`Network::poll`], and may be evicted earlier to make room for a new device when
    /// [`NetworkLimits::max_devices`] are registered. `None`: contexts stay until removed.
    pub device_idle: Option<Micros>,
    /// Caps of the uplink reassembly sessions and, separately, of the downlinks.
    pub sessions: Limits,
    /// Largest packet an uplink may decompress to, in bytes (the buffer each delivery
    /// allocates). RFC 9011's uplink rule carries SCHC packets of up to 2,520 bytes; IPv6 links
    /// need 1,280.
    pub max_packet_size: usize,
}

impl Default for NetworkLimits {
    /// 100,000 devices, never idle-evicted, [`Limits::default`] sessions, packets of up to
    /// 1,280 bytes.
    fn default() -> Self {
        Self {
            max_devices: 100_000,
            device_idle: None,
            sessions: Limits::default(),
            max_packet_size: 1280,
        }
    }
}

/// What the network side asks the caller to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetOutput {
    /// Queue a downlink to `device`: `fport` and the FRMPayload.
    Send {
        /// The device.
        device: DevEui,
        /// The FPort (Rule ID).
        fport: u8,
        /// The FRMPayload.
        payload: Vec<u8>,
    },
    /// An uplink packet, decompressed.
    Delivered {
        /// The device.
        device: DevEui,
        /// The packet (IPv6).
        packet: Vec<u8>,
    },
    /// An uplink SCHC packet arrived whole but could not be decompressed.
    Undecodable {
        /// The device.
        device: DevEui,
        /// Its reassembled or single-frame SCHC packet.
        schc: Vec<u8>,
        /// Why.
        error: DecompressError,
    },
    /// An uplink reassembly ended without a packet.
    UplinkAborted {
        /// The device.
        device: DevEui,
        /// Why.
        reason: AbortReason,
    },
    /// An uplink reassembly was dropped to respect a limit (the device is not told).
    UplinkEvicted {
        /// The device.
        device: DevEui,
        /// Which limit.
        cause: Eviction,
    },
    /// An uplink frame was refused by its session, which goes on.
    Rejected {
        /// The device.
        device: DevEui,
        /// Why.
        error: FragError,
    },
    /// The device acknowledged the fragmented downlink.
    DownlinkDone {
        /// The device.
        device: DevEui,
    },
    /// The fragmented downlink failed.
    DownlinkAborted {
        /// The device.
        device: DevEui,
        /// Why.
        reason: AbortReason,
    },
    /// The next downlink fragment does not fit the device's downlink MTU: it waits for
    /// [`Network::set_downlink_mtu`].
    DownlinkMtuTooSmall {
        /// The device.
        device: DevEui,
        /// The MTU (FRMPayload bytes).
        mtu: usize,
    },
    /// A device context was dropped: idle, or evicted for a new device.
    DeviceRemoved {
        /// The device.
        device: DevEui,
    },
}

/// Why a network call failed. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NetworkError {
    /// No context for this DevEUI.
    #[error("unknown device {}", hex(.0))]
    UnknownDevice(DevEui),
    /// [`NetworkLimits::max_devices`] contexts are registered and none has been idle long
    /// enough to be evicted.
    #[error("the device table is full")]
    TooManyDevices,
    /// The rule set does not fit RFC 9011.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// FPort 0 or 224 to 255.
    #[error("FPort {0} does not carry SCHC")]
    NotSchc(u8),
    /// No rule of the device's set has this FPort.
    #[error("device {}: no rule for FPort {fport}", hex(.device))]
    UnknownFPort {
        /// The device.
        device: DevEui,
        /// The FPort.
        fport: u8,
    },
    /// An uplink longer than any LoRaWAN FRMPayload.
    #[error("FRMPayload of {len} bytes is over the LoRaWAN maximum of {max}")]
    PayloadTooLong {
        /// Its length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The compressed downlink does not fit one frame and the device has no downlink
    /// fragmentation rule.
    #[error("the SCHC packet needs {len} bytes with its FPort, the downlink MTU is {mtu}, and there is no downlink fragmentation rule")]
    NoFragmentation {
        /// SCHC packet bytes, FPort included.
        len: usize,
        /// The downlink MTU (FRMPayload bytes).
        mtu: usize,
    },
    /// Compression of a downlink failed.
    #[error(transparent)]
    Compress(#[from] CompressError),
    /// The reassembly or downlink table refused the frame or the packet.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
}

/// Lowercase hex, for messages and topics.
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One device's context.
#[derive(Debug, Clone)]
struct Context {
    rules: Arc<RuleSetBuf>,
    cfg: Config,
    down: Option<Rule>,
    downlink_mtu: usize,
    last_active: Micros,
    touched: u64,
}

/// The RFC 9011 network-side endpoint; see the [module documentation](self).
#[derive(Debug)]
pub struct Network {
    limits: NetworkLimits,
    devices: HashMap<DevEui, Context>,
    /// Every device by (last activity, touched): the least recently active first, for idle
    /// eviction and expiry without a scan.
    by_activity: BTreeMap<(Micros, u64), DevEui>,
    sessions: Sessions<DevEui>,
    senders: Senders<DevEui>,
    form: IidForm,
    clock: u64,
}

impl Network {
    /// An empty network side.
    pub fn new(limits: NetworkLimits) -> Self {
        Self {
            limits,
            devices: HashMap::new(),
            by_activity: BTreeMap::new(),
            sessions: Sessions::new(RuleSetBuf::new(), limits.sessions),
            senders: Senders::new(limits.sessions),
            form: IidForm::Binary,
            clock: 0,
        }
    }

    /// Computes DevIIDs over the DevEUI in `form` for the devices added from now on (the ASCII
    /// form reproduces RFC 9011's printed example).
    pub fn set_iid_form(&mut self, form: IidForm) {
        self.form = form;
    }

    /// Registers `device` (or replaces its context after a rejoin) with its rule set and the
    /// AppSKey of its session, from which its DevIID is computed. Uplink fragmentation uses the
    /// set's rule at FPort 20 and downlinks the one at 21, when the set has them. When the table
    /// is full, the least recently active device idle for [`NetworkLimits::device_idle`] is
    /// dropped ([`NetOutput::DeviceRemoved`]), else the call fails.
    pub fn add_device(
        &mut self,
        device: DevEui,
        rules: Arc<RuleSetBuf>,
        app_skey: [u8; 16],
        now: Micros,
    ) -> Result<Vec<NetOutput>, NetworkError> {
        let set = rules.as_set();
        let (up, down) = default_fports(&set);
        check_rules(&set, up, down)?;
        let down = down.and_then(|p| set.get(rule_id(p)).copied());
        let mut out = Vec::new();
        if !self.devices.contains_key(&device) && self.devices.len() >= self.limits.max_devices {
            let idle = self
                .limits
                .device_idle
                .ok_or(NetworkError::TooManyDevices)?;
            let victim = self
                .by_activity
                .first_key_value()
                .filter(|((last, _), _)| now.saturating_sub(*last) >= idle)
                .map(|(_, k)| *k)
                .ok_or(NetworkError::TooManyDevices)?;
            self.drop_device(&victim);
            out.push(NetOutput::DeviceRemoved { device: victim });
        }
        let cfg = Config {
            dev_iid: Some(iid(&app_skey, &device, self.form)),
            max_packet_size: self.limits.max_packet_size,
            ..Config::default()
        };
        let old = self.devices.get(&device);
        let ctx = Context {
            rules,
            cfg: Config {
                app_iid: old.and_then(|c| c.cfg.app_iid),
                ..cfg
            },
            down,
            downlink_mtu: old.map_or(51, |c| c.downlink_mtu),
            last_active: now,
            touched: self.tick(),
        };
        self.by_activity
            .insert((ctx.last_active, ctx.touched), device);
        if let Some(old) = self.devices.insert(device, ctx) {
            self.by_activity.remove(&(old.last_active, old.touched));
        }
        Ok(out)
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn drop_device(&mut self, device: &DevEui) {
        if let Some(c) = self.devices.remove(device) {
            self.by_activity.remove(&(c.last_active, c.touched));
        }
        self.sessions.remove_device(device);
        self.senders.remove_device(device);
    }

    /// Forgets `device`: its context, reassemblies and downlinks. Returns whether it was known.
    pub fn remove_device(&mut self, device: &DevEui) -> bool {
        let known = self.devices.contains_key(device);
        self.drop_device(device);
        known
    }

    /// Number of device contexts.
    pub fn devices(&self) -> usize {
        self.devices.len()
    }

    /// Whether `device` has a context.
    pub fn contains(&self, device: &DevEui) -> bool {
        self.devices.contains_key(device)
    }

    /// The device's DevIID, as used by its DevIID actions.
    pub fn dev_iid(&self, device: &DevEui) -> Option<[u8; 8]> {
        self.devices.get(device).and_then(|c| c.cfg.dev_iid)
    }

    /// Sets the application IID of `device`, for rules with the AppIID action.
    pub fn set_app_iid(
        &mut self,
        device: &DevEui,
        app_iid: Option<[u8; 8]>,
    ) -> Result<(), NetworkError> {
        let c = self
            .devices
            .get_mut(device)
            .ok_or(NetworkError::UnknownDevice(*device))?;
        c.cfg.app_iid = app_iid;
        Ok(())
    }

    /// The reassembly sessions (keyed by DevEUI).
    pub fn sessions(&self) -> &Sessions<DevEui> {
        &self.sessions
    }

    /// The downlinks in progress (keyed by DevEUI).
    pub fn senders(&self) -> &Senders<DevEui> {
        &self.senders
    }

    /// The FRMPayload size of the device's next downlinks (its data rate, less FOpts); 51 bytes
    /// until set. A fragmented downlink cuts its next window to it; frames it was waiting to
    /// send ([`NetOutput::DownlinkMtuTooSmall`]) are returned.
    pub fn set_downlink_mtu(
        &mut self,
        device: &DevEui,
        payload_bytes: usize,
        now: Micros,
    ) -> Result<Vec<NetOutput>, NetworkError> {
        let c = self
            .devices
            .get_mut(device)
            .ok_or(NetworkError::UnknownDevice(*device))?;
        let mtu = payload_bytes.min(MAX_PAYLOAD);
        c.downlink_mtu = mtu;
        let mut out = Vec::new();
        for o in self.senders.set_mtu(device, mtu + 1, now) {
            push_downlink(o, &mut out);
        }
        Ok(out)
    }

    /// Takes in an uplink of `device`: its FPort and FRMPayload. Fragments go to the device's
    /// reassembly session, ACKs (under the downlink fragmentation FPort) to its downlink, whole
    /// SCHC packets to decompression with the device's rules and IIDs.
    pub fn handle_uplink(
        &mut self,
        device: DevEui,
        fport: u8,
        payload: &[u8],
        now: Micros,
    ) -> Result<Vec<NetOutput>, NetworkError> {
        if !is_schc_fport(fport) {
            return Err(NetworkError::NotSchc(fport));
        }
        if payload.len() > MAX_PAYLOAD {
            return Err(NetworkError::PayloadTooLong {
                len: payload.len(),
                max: MAX_PAYLOAD,
            });
        }
        let touched = self.tick();
        let c = self
            .devices
            .get_mut(&device)
            .ok_or(NetworkError::UnknownDevice(device))?;
        let set = c.rules.as_set();
        let rule = *set
            .get(rule_id(fport))
            .ok_or(NetworkError::UnknownFPort { device, fport })?;
        let mut frame = Vec::with_capacity(payload.len() + 1);
        frame.push(fport);
        frame.extend_from_slice(payload);
        let mut out = Vec::new();
        if matches!(rule.nature, Nature::Fragmentation(_)) && Some(rule) == c.down {
            // An ACK for this device's downlink; a stale one (no session) is ignored.
            match self.senders.handle_ack(device, &frame, now) {
                Ok(os) => os.into_iter().for_each(|o| push_downlink(o, &mut out)),
                Err(GatewayError::NoSession) => {}
                Err(e) => return Err(e.into()),
            }
        } else {
            let outputs = self
                .sessions
                .handle_uplink_with(&set, device, &frame, now)?;
            for o in outputs {
                match o {
                    Output::Send { device, frame } => out.push(send(device, &frame)),
                    Output::Delivered(d) => out.push(decompress(c, d.device, &d.packet, d.bits)),
                    Output::Aborted { session, reason } => out.push(NetOutput::UplinkAborted {
                        device: session.device,
                        reason,
                    }),
                    Output::Evicted { session, cause, .. } => out.push(NetOutput::UplinkEvicted {
                        device: session.device,
                        cause,
                    }),
                    Output::Rejected { session, error } => out.push(NetOutput::Rejected {
                        device: session.device,
                        error,
                    }),
                }
            }
        }
        refile(&mut self.by_activity, c, device, now, touched);
        Ok(out)
    }

    /// Compresses `packet` (IPv6) for `device` and sends it: one downlink if it fits the
    /// device's downlink MTU, else a fragmented downlink under its downlink fragmentation rule.
    pub fn send_downlink(
        &mut self,
        device: DevEui,
        packet: &[u8],
        now: Micros,
    ) -> Result<Vec<NetOutput>, NetworkError> {
        let touched = self.tick();
        let c = self
            .devices
            .get_mut(&device)
            .ok_or(NetworkError::UnknownDevice(device))?;
        let set = c.rules.as_set();
        let mut schc = vec![0u8; packet.len() + 16];
        let comp = codec::compress(&set, packet, Direction::Down, &c.cfg, &mut schc)?;
        schc.truncate(comp.len);
        let mut out = Vec::new();
        if comp.len <= c.downlink_mtu + 1 {
            out.push(send(device, &schc));
        } else {
            let rule = c.down.ok_or(NetworkError::NoFragmentation {
                len: comp.len,
                mtu: c.downlink_mtu,
            })?;
            let mtu = c.downlink_mtu + 1;
            for o in self
                .senders
                .start_bits(device, &rule, &schc, comp.bits, 0, mtu, now)?
            {
                push_downlink(o, &mut out);
            }
        }
        refile(&mut self.by_activity, c, device, now, touched);
        Ok(out)
    }

    /// Runs the timers due at `now`: reassembly inactivity (Receiver-Aborts), downlink
    /// retransmissions (ACK REQs, Sender-Aborts), idle device contexts.
    pub fn poll(&mut self, now: Micros) -> Vec<NetOutput> {
        let mut out = Vec::new();
        for o in self.sessions.expire(now) {
            match o {
                Output::Send { device, frame } => out.push(send(device, &frame)),
                Output::Aborted { session, reason } => out.push(NetOutput::UplinkAborted {
                    device: session.device,
                    reason,
                }),
                _ => {}
            }
        }
        for o in self.senders.poll(now) {
            push_downlink(o, &mut out);
        }
        if let Some(idle) = self.limits.device_idle {
            let gone: Vec<DevEui> = self
                .by_activity
                .range(..=(now.saturating_sub(idle), u64::MAX))
                .filter(|((last, _), _)| now.saturating_sub(*last) >= idle)
                .map(|(_, k)| *k)
                .collect();
            for device in gone {
                self.drop_device(&device);
                out.push(NetOutput::DeviceRemoved { device });
            }
        }
        out
    }

    /// When [`Network::poll`] next has something to do.
    pub fn next_deadline(&self) -> Option<Micros> {
        let idle = self.limits.device_idle.and_then(|idle| {
            self.by_activity
                .first_key_value()
                .map(|((last, _), _)| last.saturating_add(idle))
        });
        [
            self.sessions.next_deadline(),
            self.senders.next_deadline(),
            idle,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// Records activity of `device` at `now`: moves its entry in the activity index.
fn refile(
    by_activity: &mut BTreeMap<(Micros, u64), DevEui>,
    c: &mut Context,
    device: DevEui,
    now: Micros,
    touched: u64,
) {
    by_activity.remove(&(c.last_active, c.touched));
    c.last_active = now;
    c.touched = touched;
    by_activity.insert((now, touched), device);
}

fn send(device: DevEui, frame: &[u8]) -> NetOutput {
    NetOutput::Send {
        device,
        fport: frame.first().copied().unwrap_or(0),
        payload: frame.get(1..).unwrap_or(&[]).to_vec(),
    }
}

fn decompress(c: &Context, device: DevEui, schc: &[u8], bits: usize) -> NetOutput {
    let mut packet = vec![0u8; c.cfg.max_packet_size];
    match codec::decompress_bits(
        &c.rules.as_set(),
        schc,
        bits,
        Direction::Up,
        &c.cfg,
        &mut packet,
    ) {
        Ok(d) => {
            packet.truncate(d.len);
            NetOutput::Delivered { device, packet }
        }
        Err(error) => NetOutput::Undecodable {
            device,
            schc: schc.to_vec(),
            error,
        },
    }
}

fn push_downlink(o: DownlinkOutput<DevEui>, out: &mut Vec<NetOutput>) {
    out.push(match o {
        DownlinkOutput::Send { device, frame } => send(device, &frame),
        DownlinkOutput::Done { session } => NetOutput::DownlinkDone {
            device: session.device,
        },
        DownlinkOutput::Aborted { session, reason } => NetOutput::DownlinkAborted {
            device: session.device,
            reason,
        },
        DownlinkOutput::MtuTooSmall { session, mtu } => NetOutput::DownlinkMtuTooSmall {
            device: session.device,
            mtu: mtu.saturating_sub(1),
        },
    });
}
