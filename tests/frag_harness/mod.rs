//! A clocked, scripted, lossy link between our fragment [`Sender`] and [`Receiver`], shared by
//! the fragmentation tests (`tests/frag_rfc.rs`, `tests/frag_props.rs`, `tests/frag.rs`).
//!
//! The link loses the frames a [`Link`] says (by index in each direction, or at random from a
//! seed), the clock only moves when neither side has anything to do (it jumps to the earliest
//! deadline), and every frame is recorded so that a test can compare the exchange with an RFC
//! figure: [`describe`] turns each frame into one line such as `-> W=0 FCN=4 X` (lost) or
//! `<- ACK W=1 C=0 1100001`.

#![allow(dead_code)]

use lpwan_schc::bits::get_bits;
use lpwan_schc::frag::wire::{self, Ack, FragmentKind, Layout};
use lpwan_schc::frag::{FragError, Receiver, ReceiverAction, Sender, SenderAction};
use lpwan_schc::rule::{
    AckBehavior, BitmapFormat, Direction, FragMode, FragParams, Nature, RcsAlgorithm, Rule, RuleId,
    TileInAll1, Timer,
};

/// Retransmission timer of [`params`]: 1 ms.
pub const RETRANS_US: u64 = 1_000;
/// Inactivity timer of [`params`]: 60 ms (longer than MAX_ACK_REQUESTS retransmissions).
pub const INACTIVITY_US: u64 = 60_000;

/// A timer of `us` microseconds (1 µs ticks).
pub fn timer_us(us: u16) -> Timer {
    Timer {
        tick_exp: 0,
        ticks: us,
    }
}

/// Parameters of a fragmentation rule: L2 word 8, no DTag, CRC32, 1280-byte packets,
/// MAX_ACK_REQUESTS 8, 1 ms retransmission and 60 ms inactivity timers, the sender's choice of
/// where the last tile goes, ACKs after the All-1 only, RFC 8724 bitmaps.
pub fn params(mode: FragMode, m: u8, n: u8, window_size: u16) -> FragParams {
    FragParams {
        mode,
        direction: Direction::Up,
        l2_word: 8,
        dtag_bits: 0,
        w_bits: m,
        fcn_bits: n,
        window_size,
        rcs: RcsAlgorithm::Crc32,
        max_packet_size: 1280,
        max_interleaved: 1,
        inactivity_timer: Some(timer_us(INACTIVITY_US as u16)),
        retransmission_timer: Some(timer_us(RETRANS_US as u16)),
        max_ack_requests: 8,
        tile_size: 0,
        tile_in_all1: TileInAll1::SenderChoice,
        ack_behavior: AckBehavior::AfterAll1,
        bitmap_format: BitmapFormat::Rfc8724,
        last_bitmap_compression: false,
    }
}

/// A fragmentation rule.
pub fn frag_rule(value: u32, length: u8, p: FragParams) -> Rule {
    Rule {
        id: RuleId::new(value, length),
        nature: Nature::Fragmentation(p),
    }
}

/// The RFC 9011 uplink rule (FPort 20, ACK-on-Error, M=2, N=6, WINDOW_SIZE 63, 10-byte tiles).
pub fn rfc9011_uplink() -> Rule {
    let mut p = params(FragMode::AckOnError, 2, 6, 63);
    p.tile_size = 80;
    p.max_packet_size = 2520;
    frag_rule(20, 8, p)
}

/// CRC-32 (IEEE 802.3: reflected 0xEDB88320, init and final XOR 0xFFFFFFFF), written out here
/// so that the RCS tests do not depend on the implementation they check.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A deterministic packet of `len` bytes.
pub fn packet(len: usize, seed: u64) -> Vec<u8> {
    let mut r = Seeded::new(seed);
    (0..len).map(|_| r.next() as u8).collect()
}

/// xorshift64*: small, seeded, good enough for loss patterns.
#[derive(Debug, Clone)]
pub struct Seeded(u64);

impl Seeded {
    /// A generator from a seed (any value).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u32) -> bool {
        (self.next() % 100) < u64::from(percent)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Which frames the link loses: by index (each direction counts its own frames from 0), and at
/// random with the given percentages.
#[derive(Debug, Clone)]
pub struct Link {
    /// Indices of the sender's frames that are lost.
    pub lose_s: Vec<usize>,
    /// Indices of the receiver's frames that are lost.
    pub lose_r: Vec<usize>,
    /// Percentage of the sender's frames lost at random.
    pub p_s: u32,
    /// Percentage of the receiver's frames lost at random.
    pub p_r: u32,
    /// The generator for random losses.
    pub rng: Seeded,
}

impl Link {
    /// A link that loses these frames.
    pub fn script(lose_s: &[usize], lose_r: &[usize]) -> Self {
        Self {
            lose_s: lose_s.to_vec(),
            lose_r: lose_r.to_vec(),
            p_s: 0,
            p_r: 0,
            rng: Seeded::new(0),
        }
    }

    /// A link that loses frames at random.
    pub fn random(p_s: u32, p_r: u32, seed: u64) -> Self {
        Self {
            lose_s: Vec::new(),
            lose_r: Vec::new(),
            p_s,
            p_r,
            rng: Seeded::new(seed),
        }
    }

    fn lose(&mut self, from_sender: bool, idx: usize) -> bool {
        let (list, p) = if from_sender {
            (&self.lose_s, self.p_s)
        } else {
            (&self.lose_r, self.p_r)
        };
        list.contains(&idx) || (p > 0 && self.rng.chance(p))
    }
}

/// One frame on the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Sent by the fragment sender (else by the receiver).
    pub from_sender: bool,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Lost on the link.
    pub lost: bool,
    /// When.
    pub at: u64,
    /// The sender's MTU when it sent this frame (0 for the receiver's frames).
    pub mtu: usize,
}

/// How a run goes.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The MTU the sender starts with.
    pub mtu: usize,
    /// MTU changes: before the sender's frame number `.0` (counting every frame it sent), the
    /// MTU becomes `.1`. When the sender refuses the next frame for the MTU
    /// (`FragError::MtuTooSmall`), the run gives it a larger one, as a later transmission
    /// opportunity would: the largest of the setup, then one byte more at a time (up to 64).
    pub mtu_changes: Vec<(usize, usize)>,
    /// Let the receiver answer after every frame (as a link with immediate feedback would);
    /// otherwise it speaks only when the sender waits.
    pub interleave: bool,
    /// The link.
    pub link: Link,
    /// The most steps before the run is declared stuck.
    pub max_steps: usize,
    /// Receiver buffer length (default: `Receiver::buffer_len`).
    pub rx_buffer: Option<usize>,
}

impl Setup {
    /// MTU `mtu`, no loss, the receiver answering when the sender waits.
    pub fn new(mtu: usize) -> Self {
        Self {
            mtu,
            mtu_changes: Vec::new(),
            interleave: false,
            link: Link::script(&[], &[]),
            max_steps: 100_000,
            rx_buffer: None,
        }
    }

    /// With this link.
    pub fn link(mut self, link: Link) -> Self {
        self.link = link;
        self
    }

    /// With the receiver answering after every frame.
    pub fn interleaved(mut self) -> Self {
        self.interleave = true;
        self
    }
}

/// What a run gave.
#[derive(Debug, Clone)]
pub struct Trace {
    /// Every frame, in order.
    pub events: Vec<Event>,
    /// The reassembled packet and its length in bits (padding of the last fragment included).
    pub delivered: Option<(Vec<u8>, usize)>,
    /// How many times the receiver said `Delivered`.
    pub delivered_count: usize,
    /// How the sender ended.
    pub sender: SenderAction,
    /// How the receiver ended: `Delivered`, `Aborted`, or `Idle` (no timer left).
    pub receiver: ReceiverAction,
    /// Errors the receiver returned for frames.
    pub rx_errors: Vec<FragError>,
    /// Errors the sender returned for ACKs.
    pub tx_errors: Vec<FragError>,
    /// The MTU at each of the sender's refusals of a frame (`FragError::MtuTooSmall`).
    pub mtu_refusals: Vec<usize>,
    /// Loop iterations.
    pub steps: usize,
    /// The clock at the end.
    pub now: u64,
}

impl Trace {
    /// Whether the first `bits` bits of `packet` were delivered, followed only by padding (fewer
    /// than one L2 word of zero bits).
    pub fn delivered_exactly(&self, packet: &[u8], bits: usize, l2: usize) -> bool {
        let Some((b, n)) = &self.delivered else {
            return false;
        };
        if *n < bits || *n - bits >= l2.max(1) {
            return false;
        }
        (0..bits).all(|i| get_bits(b, i, 1) == get_bits(packet, i, 1))
            && (bits..*n).all(|i| get_bits(b, i, 1) == 0)
    }

    /// Frames of one side (`true`: the sender), lost ones included.
    pub fn frames(&self, from_sender: bool) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|e| e.from_sender == from_sender)
            .collect()
    }
}

/// Runs our sender against our receiver for the first `bits` bits of `packet`.
pub fn run(rule: &Rule, packet: &[u8], bits: usize, setup: Setup) -> Trace {
    let sender = Sender::new(rule, packet, bits, 0, setup.mtu).expect("sender");
    run_with(rule, sender, setup)
}

/// Runs a prepared sender against a new receiver.
pub fn run_with<P: AsRef<[u8]>>(rule: &Rule, mut sender: Sender<P>, mut setup: Setup) -> Trace {
    let max_mtu = setup
        .mtu_changes
        .iter()
        .map(|c| c.1)
        .chain([setup.mtu])
        .max()
        .unwrap_or(setup.mtu);
    // The largest MTU the run may give the sender after a refusal.
    let cap = max_mtu + 64;
    let len = setup
        .rx_buffer
        .unwrap_or_else(|| Receiver::buffer_len(rule, cap));
    let mut receiver = Receiver::new(rule, vec![0u8; len], 0).expect("receiver");
    let mut out = vec![0u8; cap + 8];
    let mut ack = vec![0u8; 64 * 16 + 64];
    let mut t = Trace {
        events: Vec::new(),
        delivered: None,
        delivered_count: 0,
        sender: SenderAction::WaitUntil(0),
        receiver: ReceiverAction::Idle,
        rx_errors: Vec::new(),
        tx_errors: Vec::new(),
        mtu_refusals: Vec::new(),
        steps: 0,
        now: 0,
    };
    let (mut ns, mut nr) = (0usize, 0usize);
    let mut mtu = setup.mtu;
    let mut changed_before: Option<usize> = None;
    let mut now = 0u64;
    let mut s_end: Option<SenderAction> = None;
    let mut r_end: Option<ReceiverAction> = None;
    loop {
        t.steps += 1;
        assert!(
            t.steps <= setup.max_steps,
            "no progress after {} steps",
            t.steps
        );
        let mut s_wait = None;
        if s_end.is_none() {
            // Each change once: after a refusal, the larger MTU stays until the next change.
            if changed_before != Some(ns) {
                if let Some(&(_, m)) = setup.mtu_changes.iter().find(|c| c.0 == ns) {
                    changed_before = Some(ns);
                    if m != mtu {
                        mtu = m;
                        sender.set_mtu(m);
                    }
                }
            }
            let action = match sender.poll(now, &mut out) {
                Err(FragError::MtuTooSmall { mtu: m, .. }) => {
                    assert_eq!(m, mtu, "the refusal names the current MTU");
                    t.mtu_refusals.push(mtu);
                    mtu = if mtu < max_mtu { max_mtu } else { mtu + 1 };
                    assert!(mtu <= cap, "the sender refuses every MTU up to {cap}");
                    sender.set_mtu(mtu);
                    continue;
                }
                a => a.expect("sender poll"),
            };
            match action {
                SenderAction::Send(n) => {
                    assert!(n <= mtu, "a frame of {n} bytes over the MTU of {mtu}");
                    let lost = setup.link.lose(true, ns);
                    ns += 1;
                    t.events.push(Event {
                        from_sender: true,
                        bytes: out[..n].to_vec(),
                        lost,
                        at: now,
                        mtu,
                    });
                    if !lost && !matches!(r_end, Some(ReceiverAction::Aborted(_))) {
                        if let Err(e) = receiver.handle_frame(&out[..n], now) {
                            t.rx_errors.push(e);
                        }
                    }
                    if setup.interleave {
                        drain(
                            &mut receiver,
                            &mut sender,
                            &mut setup.link,
                            &mut nr,
                            &mut t,
                            &mut ack,
                            now,
                            s_end.is_some(),
                            &mut r_end,
                        );
                    }
                    continue;
                }
                SenderAction::WaitUntil(w) => s_wait = Some(w),
                a => s_end = Some(a),
            }
        }
        let (answered, r_wait) = drain(
            &mut receiver,
            &mut sender,
            &mut setup.link,
            &mut nr,
            &mut t,
            &mut ack,
            now,
            s_end.is_some(),
            &mut r_end,
        );
        if answered {
            continue;
        }
        let next = match (s_end.is_some(), s_wait, r_wait) {
            (false, Some(a), Some(b)) => Some(a.min(b)),
            (false, Some(a), None) => Some(a),
            (_, _, b) => b,
        };
        match next {
            Some(n) => now = now.max(n),
            None => break,
        }
    }
    t.sender = s_end.unwrap_or(SenderAction::WaitUntil(now));
    t.receiver = r_end.unwrap_or(if t.delivered.is_some() {
        ReceiverAction::Delivered {
            bits: t.delivered.as_ref().map_or(0, |d| d.1),
        }
    } else {
        ReceiverAction::Idle
    });
    t.now = now;
    t
}

/// Lets the receiver speak until it has nothing to say; returns whether it sent anything and
/// its next deadline.
#[allow(clippy::too_many_arguments)]
fn drain<P: AsRef<[u8]>>(
    receiver: &mut Receiver<Vec<u8>>,
    sender: &mut Sender<P>,
    link: &mut Link,
    nr: &mut usize,
    t: &mut Trace,
    ack: &mut [u8],
    now: u64,
    sender_ended: bool,
    r_end: &mut Option<ReceiverAction>,
) -> (bool, Option<u64>) {
    let mut answered = false;
    for _ in 0..1000 {
        match receiver.poll(now, ack).expect("receiver poll") {
            ReceiverAction::Send(n) => {
                answered = true;
                let lost = link.lose(false, *nr);
                *nr += 1;
                t.events.push(Event {
                    from_sender: false,
                    bytes: ack[..n].to_vec(),
                    lost,
                    at: now,
                    mtu: 0,
                });
                if !lost && !sender_ended {
                    if let Err(e) = sender.handle_ack(&ack[..n], now) {
                        t.tx_errors.push(e);
                    }
                }
            }
            ReceiverAction::Delivered { bits } => {
                t.delivered_count += 1;
                let (b, n) = receiver.packet().expect("a delivered packet");
                assert_eq!(n, bits);
                t.delivered = Some((b.to_vec(), bits));
            }
            ReceiverAction::WaitUntil(d) => return (answered, Some(d)),
            ReceiverAction::Idle => return (answered, None),
            a @ ReceiverAction::Aborted(_) => {
                *r_end = Some(a);
                return (answered, None);
            }
        }
    }
    panic!("the receiver keeps sending");
}

/// One line per frame, as the RFC figures show them: `-> W=0 FCN=6`, `-> W=1 All-1`,
/// `-> W=0 ACK REQ`, `-> Sender-Abort`, `<- ACK W=0 C=0 1101011`, `<- ACK W=1 C=1`,
/// `<- Receiver-Abort`; ` X` marks a lost frame. With `tile` (bits), regular fragments of more
/// than one tile say how many: `-> W=0 FCN=27 x4`.
pub fn describe(rule: &Rule, events: &[Event], tile: Option<usize>) -> Vec<String> {
    let l = Layout::new(rule).expect("layout");
    let ws = l.window_size();
    events
        .iter()
        .map(|e| {
            let mut s = if e.from_sender {
                match wire::parse_fragment(&l, &e.bytes) {
                    Ok(f) => match f.kind {
                        FragmentKind::Regular => {
                            let k = tile.map_or(1, |t| (f.payload_bits / t).max(1));
                            if k > 1 {
                                format!("-> W={} FCN={} x{k}", f.w, f.fcn)
                            } else {
                                format!("-> W={} FCN={}", f.w, f.fcn)
                            }
                        }
                        FragmentKind::All1 { .. } => format!("-> W={} All-1", f.w),
                        FragmentKind::AckReq => format!("-> W={} ACK REQ", f.w),
                        FragmentKind::SenderAbort => "-> Sender-Abort".to_string(),
                    },
                    Err(err) => format!("-> ?? {err}"),
                }
            } else {
                match wire::parse_ack(&l, &e.bytes) {
                    Ok(Ack::Success { w, .. }) => format!("<- ACK W={w} C=1"),
                    Ok(Ack::Failure { windows, .. }) => {
                        let parts: Vec<String> = windows
                            .iter()
                            .map(|(w, b)| format!("W={w} {}", bitmap_str(*b, ws)))
                            .collect();
                        let first = parts.first().cloned().unwrap_or_default();
                        let (w, b) = first.split_once(' ').unwrap_or(("", ""));
                        let mut s = format!("<- ACK {w} C=0 {b}");
                        for p in parts.iter().skip(1) {
                            s.push_str(&format!(" + {p}"));
                        }
                        s
                    }
                    Ok(Ack::ReceiverAbort { .. }) => "<- Receiver-Abort".to_string(),
                    Err(err) => format!("<- ?? {err}"),
                }
            };
            if e.lost {
                s.push_str(" X");
            }
            s
        })
        .collect()
}

/// A bitmap as the RFC draws it: `ws` bits, FCN ws−1 on the left.
pub fn bitmap_str(b: u64, ws: usize) -> String {
    (0..ws)
        .rev()
        .map(|k| if (b >> k) & 1 == 1 { '1' } else { '0' })
        .collect()
}

/// A bitmap from the RFC's drawing.
pub fn bitmap(s: &str) -> u64 {
    u64::from_str_radix(s, 2).expect("a bitmap")
}

/// Bytes from a string of '0'/'1' (spaces ignored), zero-padded to a byte.
pub fn bits_to_bytes(s: &str) -> Vec<u8> {
    let bits: Vec<u8> = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '0' => 0,
            '1' => 1,
            _ => panic!("not a bit: {c}"),
        })
        .collect();
    bits.chunks(8)
        .map(|c| {
            c.iter()
                .enumerate()
                .fold(0u8, |a, (i, b)| a | (b << (7 - i)))
        })
        .collect()
}

/// Hex from bytes.
pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Bytes from hex (spaces ignored).
pub fn from_hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}
