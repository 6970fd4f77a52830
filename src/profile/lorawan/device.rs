//! The end-device side of SCHC over LoRaWAN: compress and fragment uplinks, reassemble and
//! decompress downlinks, answer ACKs and ACK REQs. Sans-IO and heap-free.
//!
//! A [`Device`] borrows a static [`RuleSet`] and two caller-owned buffers ([`Buffers`]); it
//! owns no clock and does no I/O. The radio side hands in downlinks with
//! [`Device::handle_downlink`]`(fport, payload, now)`, the application hands in packets with
//! [`Device::send`], and [`Device::poll`]`(now, out)` says what to do next, one
//! [`DeviceAction`] at a time: send this `(fport, payload)`, a packet was delivered, an uplink
//! was acknowledged or aborted, wait until an instant.
//!
//! ```
//! use lpwan_schc::profile::lorawan::{self, Buffers, Device, DeviceAction};
//! use lpwan_schc::rule::RuleSet;
//!
//! // The RFC 9011 fragmentation and no-compression rules (a real device adds its compression
//! // rules, exported with `schc rules export-rust`).
//! static RULES: RuleSet<'static> = RuleSet::new_unchecked(&lorawan::RULES, &[], &[], &[]);
//! let (mut tx, mut rx) = ([0u8; 1300], [0u8; 1600]);
//! let mut dev = Device::new(RULES, [0x11; 8], [0x22; 16], Buffers { tx: &mut tx, rx: &mut rx })?;
//! dev.set_mtu(51); // the FRMPayload size at the current data rate
//!
//! let packet = [0x55u8; 200]; // not IPv6: goes under the no-compression rule, fragmented
//! dev.send(&packet, 0)?;
//! let mut out = [0u8; 1300];
//! let mut frames = 0;
//! loop {
//!     match dev.poll(0, &mut out)? {
//!         DeviceAction::Send { fport, len } => {
//!             assert_eq!(fport, lorawan::FPORT_UP);
//!             assert!(len <= 51);
//!             frames += 1; // radio.send(fport, &out[..len])
//!         }
//!         DeviceAction::Delivered { len } => { /* app.receive(&out[..len]) */ }
//!         DeviceAction::WaitUntil(_) | DeviceAction::Idle => break, // sleep until then
//!         other => { let _ = other; } // UplinkDone, aborts, MtuTooSmall
//!     }
//! }
//! assert_eq!(frames, 5); // 201 bytes in 10-byte tiles: four fragments and the All-1
//! // Later: a downlink from the radio, then poll again.
//! // dev.handle_downlink(fport, &payload, now)?;
//! # Ok::<(), lpwan_schc::profile::lorawan::DeviceError>(())
//! ```

use thiserror::Error;

use super::{check_rules, default_fports, is_schc_fport, rule_id, IidForm, ProfileError};
use super::{iid, MAX_PAYLOAD};
use crate::codec::{self, CompressError, Config, DecompressError};
use crate::frag::wire::{self, FragmentKind, Layout};
use crate::frag::{AbortReason, FragError, Micros, Receiver, ReceiverAction, Sender, SenderAction};
use crate::rule::{Direction, Nature, Rule, RuleSet};

/// The largest frame: the FPort byte and the largest FRMPayload.
const MAX_FRAME: usize = MAX_PAYLOAD + 1;

/// Bytes of scratch for a downlink ACK or Receiver-Abort (one window of up to 64 tiles).
const ACK_SCRATCH: usize = 32;

/// The caller's memory for a [`Device`].
#[derive(Debug)]
pub struct Buffers<'b> {
    /// Holds an uplink's SCHC packet while it is sent: as large as the largest compressed
    /// packet (at most the uplink rule's maximum packet size; 1,300 bytes cover any IPv6 packet
    /// of 1,280 bytes under the no-compression rule).
    pub tx: &'b mut [u8],
    /// Reassembles downlinks: at least [`Device::rx_buffer_len`] bytes for the rule set.
    pub rx: &'b mut [u8],
}

/// What the device should do next. Frames and packets are in the `out` buffer given to
/// [`Device::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceAction {
    /// Send an uplink on `fport` with the FRMPayload `out[..len]`, then poll again.
    Send {
        /// The FPort (the Rule ID).
        fport: u8,
        /// FRMPayload length.
        len: usize,
    },
    /// A downlink packet arrived whole: `out[..len]` (decompressed), then poll again.
    Delivered {
        /// Packet length in bytes.
        len: usize,
    },
    /// The network acknowledged the fragmented uplink: a new one may be sent.
    UplinkDone,
    /// The fragmented uplink failed; a new one may be sent.
    UplinkAborted(AbortReason),
    /// A downlink reassembly ended without a packet.
    DownlinkAborted(AbortReason),
    /// The next uplink fragment does not fit the current MTU ([`Device::set_mtu`]): nothing
    /// was sent. Poll again once the MTU is larger (RFC 9011: send the uplink with MAC
    /// commands only, or wait for a faster data rate).
    MtuTooSmall,
    /// Nothing to do before this instant, or before the next downlink or packet.
    WaitUntil(Micros),
    /// Nothing to do until the next downlink or packet.
    Idle,
}

/// Why a device call failed. The device is unchanged unless the variant says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DeviceError {
    /// The rule set does not fit the RFC 9011 profile.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// An uplink is still being sent.
    #[error("an uplink is still in progress")]
    Busy,
    /// A downlink under a compression rule arrived before the previous one was polled.
    #[error("the previous downlink has not been polled yet")]
    Unpolled,
    /// FPort 0 (MAC commands) or 224 to 255: not SCHC.
    #[error("FPort {0} does not carry SCHC")]
    NotSchc(u8),
    /// No rule of the set has this FPort as its Rule ID.
    #[error("no rule for FPort {0}")]
    UnknownFPort(u8),
    /// A downlink longer than any LoRaWAN FRMPayload.
    #[error("FRMPayload of {len} bytes is over the LoRaWAN maximum of {max}")]
    PayloadTooLong {
        /// Its length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A caller buffer is too small.
    #[error("{what} buffer of {capacity} bytes is too small: {needed} needed")]
    BufferTooSmall {
        /// Which buffer.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        capacity: usize,
    },
    /// The compressed packet does not fit one frame and the rule set has no uplink
    /// fragmentation rule.
    #[error("the SCHC packet needs {len} bytes, the MTU is {mtu}, and there is no uplink fragmentation rule")]
    NoFragmentation {
        /// SCHC packet bytes (FPort included).
        len: usize,
        /// The current MTU (FRMPayload bytes).
        mtu: usize,
    },
    /// Compression failed.
    #[error(transparent)]
    Compress(#[from] CompressError),
    /// A delivered SCHC packet could not be decompressed; it is dropped.
    #[error(transparent)]
    Decompress(#[from] DecompressError),
    /// A fragmentation frame could not be read, or the packet cannot be fragmented.
    #[error(transparent)]
    Frag(#[from] FragError),
}

// The state machines live inline (no heap in the core), hence the size difference.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Tx<'b> {
    Idle(&'b mut [u8]),
    /// An unfragmented SCHC packet of `len` bytes waiting to be polled out.
    Single(&'b mut [u8], usize),
    Fragmenting(Sender<&'b mut [u8]>),
    /// Only between two states, inside one call.
    Moving,
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Rx<'b> {
    Idle(&'b mut [u8]),
    /// A reassembly; `all1` is the W and RCS of the last All-1 it took in (what tells a repeat
    /// from the next packet's All-1 after delivery); `deadline` its timer.
    Reassembling {
        rx: Receiver<&'b mut [u8]>,
        all1: Option<(u32, u32)>,
        deadline: Option<Micros>,
        aborted: bool,
    },
    Moving,
}

/// The RFC 9011 end-device endpoint: sans-IO, no heap, caller-owned buffers, a static rule set.
/// See the [module documentation](self) for a complete loop.
#[derive(Debug)]
pub struct Device<'r, 'b> {
    rules: RuleSet<'r>,
    cfg: Config,
    dev_eui: [u8; 8],
    form: IidForm,
    up: Option<Rule>,
    down: Option<Rule>,
    mtu: usize,
    tx: Tx<'b>,
    tx_deadline: Option<Micros>,
    rx: Rx<'b>,
    /// A downlink under a compression or no-compression rule, waiting to be decompressed.
    single: [u8; MAX_FRAME],
    /// Its length (at most `MAX_FRAME`, so a `u16` keeps the device small).
    single_len: Option<u16>,
}

impl<'r, 'b> Device<'r, 'b> {
    /// A device with rule set `rules` (8-bit Rule IDs = FPorts), the DevEUI and AppSKey of the
    /// current session (the DevIID is computed from them, [`super::dev_iid`]), and its buffers.
    /// Fragmentation uses the rules at FPorts 20 (uplink) and 21 (downlink) when the set has
    /// them ([`Device::with_fports`] to change). The MTU starts at 51 bytes.
    pub fn new(
        rules: RuleSet<'r>,
        dev_eui: [u8; 8],
        app_skey: [u8; 16],
        buffers: Buffers<'b>,
    ) -> Result<Self, DeviceError> {
        let mut d = Self {
            rules,
            cfg: Config::default(),
            dev_eui,
            form: IidForm::Binary,
            up: None,
            down: None,
            mtu: 51,
            tx: Tx::Idle(buffers.tx),
            tx_deadline: None,
            rx: Rx::Idle(buffers.rx),
            single: [0; MAX_FRAME],
            single_len: None,
        };
        d.cfg.dev_iid = Some(iid(&app_skey, &dev_eui, IidForm::Binary));
        let (up, down) = default_fports(&rules);
        d.set_fports(up, down)?;
        Ok(d)
    }

    /// The same device with fragmentation under other FPorts (`None`: that direction is not
    /// fragmented).
    pub fn with_fports(mut self, up: Option<u8>, down: Option<u8>) -> Result<Self, DeviceError> {
        self.set_fports(up, down)?;
        Ok(self)
    }

    fn set_fports(&mut self, up: Option<u8>, down: Option<u8>) -> Result<(), DeviceError> {
        check_rules(&self.rules, up, down)?;
        self.up = up.and_then(|p| self.rules.get(rule_id(p)).copied());
        self.down = down.and_then(|p| self.rules.get(rule_id(p)).copied());
        if let (Some(rule), Rx::Idle(buf)) = (self.down, &self.rx) {
            let needed = Receiver::buffer_len(&rule, MAX_FRAME);
            if buf.len() < needed {
                return Err(DeviceError::BufferTooSmall {
                    what: "rx",
                    needed,
                    capacity: buf.len(),
                });
            }
        }
        Ok(())
    }

    /// The rx buffer a device with `rules` needs: room to reassemble the largest downlink of
    /// the downlink fragmentation rule at FPort `down` (0 if there is none).
    pub fn rx_buffer_len(rules: &RuleSet<'_>, down: u8) -> usize {
        rules
            .get(rule_id(down))
            .map_or(0, |r| Receiver::buffer_len(r, MAX_FRAME))
    }

    /// A new session key after a (re)join: the DevIID changes with the AppSKey.
    pub fn rejoin(&mut self, app_skey: [u8; 16]) {
        self.cfg.dev_iid = Some(iid(&app_skey, &self.dev_eui, self.form));
    }

    /// Computes the DevIID over the DevEUI in `form` from now on (the ASCII form reproduces RFC
    /// 9011's printed example); takes effect at the next [`Device::rejoin`].
    pub fn set_iid_form(&mut self, form: IidForm) {
        self.form = form;
    }

    /// The application's IID, for rules with the AppIID action.
    pub fn set_app_iid(&mut self, iid: Option<[u8; 8]>) {
        self.cfg.app_iid = iid;
    }

    /// The codec settings: the DevIID in use, the AppIID, the largest packet.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Sets the largest packet decompression may produce (default 1,280 bytes).
    pub fn set_max_packet_size(&mut self, bytes: usize) {
        self.cfg.max_packet_size = bytes;
    }

    /// The FRMPayload size available for the next uplinks (it depends on the data rate and on
    /// the FOpts of pending MAC commands). Frames already cut keep their size.
    pub fn set_mtu(&mut self, payload_bytes: usize) {
        self.mtu = payload_bytes.min(MAX_PAYLOAD);
    }

    /// Whether an uplink is in progress (a new [`Device::send`] would be refused).
    pub fn is_sending(&self) -> bool {
        !matches!(self.tx, Tx::Idle(_))
    }

    /// Compresses `packet` (IPv6) for the uplink and queues it: one frame if it fits the
    /// current MTU, else fragments under the uplink fragmentation rule. Then [`Device::poll`].
    pub fn send(&mut self, packet: &[u8], now: Micros) -> Result<(), DeviceError> {
        let Tx::Idle(buf) = &mut self.tx else {
            return Err(DeviceError::Busy);
        };
        let c = codec::compress(&self.rules, packet, Direction::Up, &self.cfg, buf)?;
        self.queue(c.bits, c.len, now)
    }

    /// Queues an already compressed SCHC packet of `bits` bits (Rule ID first, 8 bits), as
    /// [`Device::send`] does after compressing.
    pub fn send_schc(&mut self, schc: &[u8], bits: usize, now: Micros) -> Result<(), DeviceError> {
        let Tx::Idle(buf) = &mut self.tx else {
            return Err(DeviceError::Busy);
        };
        let len = bits.div_ceil(8);
        let (Some(dst), Some(src)) = (buf.get_mut(..len), schc.get(..len)) else {
            return Err(DeviceError::BufferTooSmall {
                what: if schc.len() < len { "schc" } else { "tx" },
                needed: len,
                capacity: schc.len().min(buf.len()),
            });
        };
        dst.copy_from_slice(src);
        if let Some(last) = dst.last_mut().filter(|_| bits % 8 != 0) {
            *last &= 0xFFu8 << (8 - bits % 8);
        }
        self.queue(bits, len, now)
    }

    fn queue(&mut self, bits: usize, len: usize, _now: Micros) -> Result<(), DeviceError> {
        let Tx::Idle(buf) = &mut self.tx else {
            return Err(DeviceError::Busy);
        };
        let fport = buf.first().copied().unwrap_or(0);
        if !is_schc_fport(fport) {
            return Err(DeviceError::NotSchc(fport));
        }
        if len <= self.mtu + 1 {
            let Tx::Idle(buf) = core::mem::replace(&mut self.tx, Tx::Moving) else {
                return Err(DeviceError::Busy);
            };
            self.tx = Tx::Single(buf, len);
            return Ok(());
        }
        let Some(rule) = self.up else {
            return Err(DeviceError::NoFragmentation { len, mtu: self.mtu });
        };
        // A dry run on a shared borrow: a refused packet leaves the buffer with the device.
        let head = buf.get(..len).ok_or(DeviceError::BufferTooSmall {
            what: "tx",
            needed: len,
            capacity: buf.len(),
        })?;
        Sender::new(&rule, head, bits, 0, self.mtu + 1)?;
        let Tx::Idle(buf) = core::mem::replace(&mut self.tx, Tx::Moving) else {
            return Err(DeviceError::Busy);
        };
        // Same inputs as the dry run: it cannot fail.
        match Sender::new(&rule, buf, bits, 0, self.mtu + 1) {
            Ok(s) => {
                self.tx = Tx::Fragmenting(s);
                self.tx_deadline = None;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Takes in a downlink: `fport` and the FRMPayload. ACKs for the uplink in progress go to
    /// its sender, fragments to the reassembly, a packet under a compression or no-compression
    /// rule is kept for [`Device::poll`] to decompress. Frames that are merely unexpected (a
    /// stale ACK) are ignored, as RFC 8724 says. Then poll.
    pub fn handle_downlink(
        &mut self,
        fport: u8,
        payload: &[u8],
        now: Micros,
    ) -> Result<(), DeviceError> {
        if !is_schc_fport(fport) {
            return Err(DeviceError::NotSchc(fport));
        }
        if payload.len() > MAX_PAYLOAD {
            return Err(DeviceError::PayloadTooLong {
                len: payload.len(),
                max: MAX_PAYLOAD,
            });
        }
        // The FPort and the FRMPayload, as one frame (payload ≤ MAX_PAYLOAD, checked above).
        let mut whole = [0u8; MAX_FRAME];
        let Some(([first, rest @ ..], _)) = whole.split_at_mut_checked(payload.len() + 1) else {
            return Err(DeviceError::PayloadTooLong {
                len: payload.len(),
                max: MAX_PAYLOAD,
            });
        };
        *first = fport;
        rest.copy_from_slice(payload);
        let frame = whole.get(..=payload.len()).unwrap_or_default();
        let rule = *self
            .rules
            .get(rule_id(fport))
            .ok_or(DeviceError::UnknownFPort(fport))?;
        match rule.nature {
            Nature::Fragmentation(_) if Some(rule) == self.up => {
                if let Tx::Fragmenting(s) = &mut self.tx {
                    s.handle_ack(frame, now)?;
                }
                Ok(())
            }
            Nature::Fragmentation(_) if Some(rule) == self.down => {
                self.reassemble(&rule, frame, now)
            }
            // A fragmentation rule not in use here, in the wrong direction.
            Nature::Fragmentation(_) => Err(DeviceError::Profile(ProfileError::BadRule {
                rule: rule.id,
                what: "not this device's downlink fragmentation rule",
            })),
            Nature::Compression(_) | Nature::NoCompression => {
                if self.single_len.is_some() {
                    return Err(DeviceError::Unpolled);
                }
                let Some(dst) = self.single.get_mut(..frame.len()) else {
                    return Err(DeviceError::PayloadTooLong {
                        len: payload.len(),
                        max: MAX_PAYLOAD,
                    });
                };
                dst.copy_from_slice(frame);
                self.single_len = u16::try_from(frame.len()).ok();
                Ok(())
            }
        }
    }

    fn reassemble(&mut self, rule: &Rule, frame: &[u8], now: Micros) -> Result<(), DeviceError> {
        let l = Layout::new(rule)?;
        let f = wire::parse_fragment(&l, frame)?;
        let this_all1 = match f.kind {
            FragmentKind::All1 { rcs } => Some((f.w, rcs)),
            _ => None,
        };
        // After a delivery the receiver answers a repeated All-1 or an ACK REQ (the network may
        // have lost the ACK); anything else starts the next packet.
        let restart = match &self.rx {
            Rx::Reassembling {
                rx, all1, aborted, ..
            } => {
                *aborted
                    || (rx.packet().is_some()
                        && f.kind != FragmentKind::AckReq
                        && (this_all1.is_none() || this_all1 != *all1))
            }
            _ => true,
        };
        if restart {
            if f.kind == FragmentKind::SenderAbort {
                return Ok(());
            }
            let buf = match core::mem::replace(&mut self.rx, Rx::Moving) {
                Rx::Idle(b) => b,
                Rx::Reassembling { rx, .. } => rx.into_buffer(),
                Rx::Moving => return Err(DeviceError::Busy),
            };
            let needed = Receiver::buffer_len(rule, MAX_FRAME);
            if buf.len() < needed {
                let capacity = buf.len();
                self.rx = Rx::Idle(buf);
                return Err(DeviceError::BufferTooSmall {
                    what: "rx",
                    needed,
                    capacity,
                });
            }
            // The rule's layout and the buffer were checked: this cannot fail.
            let rx = Receiver::new(rule, buf, now)?;
            self.rx = Rx::Reassembling {
                rx,
                all1: None,
                deadline: None,
                aborted: false,
            };
        }
        if let Rx::Reassembling { rx, all1, .. } = &mut self.rx {
            if this_all1.is_some() {
                *all1 = this_all1;
            }
            rx.handle_frame(frame, now)?;
        }
        Ok(())
    }

    /// What to do now. `out` receives the FRMPayload of a frame to send, or a delivered packet:
    /// it must hold the MTU plus one byte, and the largest downlink packet (1,280 bytes by
    /// default). Call it after every `send` and `handle_downlink`, and at the instant of the
    /// last [`DeviceAction::WaitUntil`], until it waits.
    pub fn poll(&mut self, now: Micros, out: &mut [u8]) -> Result<DeviceAction, DeviceError> {
        // Downlink reassembly first: ACKs are owed, a packet may be complete.
        if let Some(a) = self.poll_rx(now, out)? {
            return Ok(a);
        }
        if let Some(len) = self.single_len.take() {
            let frame = self.single.get(..usize::from(len)).unwrap_or_default();
            let d = codec::decompress(&self.rules, frame, Direction::Down, &self.cfg, out)?;
            return Ok(DeviceAction::Delivered { len: d.len });
        }
        if let Some(a) = self.poll_tx(now, out)? {
            return Ok(a);
        }
        let rx_deadline = match &self.rx {
            Rx::Reassembling { deadline, .. } => *deadline,
            _ => None,
        };
        Ok(match (rx_deadline, self.tx_deadline) {
            (Some(a), Some(b)) => DeviceAction::WaitUntil(a.min(b)),
            (Some(t), None) | (None, Some(t)) => DeviceAction::WaitUntil(t),
            (None, None) => DeviceAction::Idle,
        })
    }

    fn poll_rx(
        &mut self,
        now: Micros,
        out: &mut [u8],
    ) -> Result<Option<DeviceAction>, DeviceError> {
        let Rx::Reassembling {
            rx,
            deadline,
            aborted,
            ..
        } = &mut self.rx
        else {
            return Ok(None);
        };
        if *aborted {
            return Ok(None);
        }
        let mut scratch = [0u8; ACK_SCRATCH];
        match rx.poll(now, &mut scratch)? {
            ReceiverAction::Send(n) => {
                let frame = scratch.get(..n).unwrap_or(&[]);
                send_frame(frame, out).map(Some)
            }
            ReceiverAction::Delivered { bits } => {
                let (packet, _) = rx.packet().unwrap_or((&[], 0));
                let d = codec::decompress_bits(
                    &self.rules,
                    packet,
                    bits,
                    Direction::Down,
                    &self.cfg,
                    out,
                )?;
                Ok(Some(DeviceAction::Delivered { len: d.len }))
            }
            ReceiverAction::WaitUntil(t) => {
                *deadline = Some(t);
                Ok(None)
            }
            ReceiverAction::Idle => {
                *deadline = None;
                Ok(None)
            }
            ReceiverAction::Aborted(r) => {
                *deadline = None;
                *aborted = true;
                Ok(Some(DeviceAction::DownlinkAborted(r)))
            }
        }
    }

    fn poll_tx(
        &mut self,
        now: Micros,
        out: &mut [u8],
    ) -> Result<Option<DeviceAction>, DeviceError> {
        match &mut self.tx {
            Tx::Idle(_) | Tx::Moving => Ok(None),
            Tx::Single(buf, len) => {
                let action = send_frame(buf.get(..*len).unwrap_or(&[]), out)?;
                if let Tx::Single(buf, _) = core::mem::replace(&mut self.tx, Tx::Moving) {
                    self.tx = Tx::Idle(buf);
                }
                Ok(Some(action))
            }
            Tx::Fragmenting(s) => {
                s.set_mtu(self.mtu + 1);
                let action = match s.poll(now, out) {
                    Err(FragError::MtuTooSmall { .. }) => {
                        return Ok(Some(DeviceAction::MtuTooSmall));
                    }
                    r => r?,
                };
                match action {
                    SenderAction::Send(n) => {
                        // The frame is in `out`: move the FRMPayload over its FPort byte.
                        let fport = out.first().copied().unwrap_or(0);
                        if (1..=out.len()).contains(&n) {
                            out.copy_within(1..n, 0);
                        }
                        Ok(Some(DeviceAction::Send {
                            fport,
                            len: n.saturating_sub(1),
                        }))
                    }
                    SenderAction::WaitUntil(t) => {
                        self.tx_deadline = Some(t);
                        Ok(None)
                    }
                    SenderAction::Done | SenderAction::Aborted(_) => {
                        self.tx_deadline = None;
                        if let Tx::Fragmenting(s) = core::mem::replace(&mut self.tx, Tx::Moving) {
                            self.tx = Tx::Idle(s.into_packet());
                        }
                        Ok(Some(match action {
                            SenderAction::Aborted(r) => DeviceAction::UplinkAborted(r),
                            _ => DeviceAction::UplinkDone,
                        }))
                    }
                }
            }
        }
    }
}

/// The action that sends `frame` (FPort byte first): its FRMPayload copied to `out`.
fn send_frame(frame: &[u8], out: &mut [u8]) -> Result<DeviceAction, DeviceError> {
    let (fport, payload) = frame.split_first().map_or((0, &[][..]), |(f, p)| (*f, p));
    let capacity = out.len();
    let dst = out
        .get_mut(..payload.len())
        .ok_or(DeviceError::BufferTooSmall {
            what: "out",
            needed: payload.len(),
            capacity,
        })?;
    dst.copy_from_slice(payload);
    Ok(DeviceAction::Send {
        fport,
        len: payload.len(),
    })
}
