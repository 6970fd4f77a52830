//! `schc fragment`, `schc reassemble` and `schc simulate`: the fragmentation engine from the
//! command line, on the exchange of `lpwan_schc::sim`.

use std::path::PathBuf;

use clap::Args;
use lpwan_schc::frag::SenderAction;
use lpwan_schc::rule::{Nature, Rule, RuleId};
use lpwan_schc::sim::{self, Link, Reassembled, SplitMix64};
use serde_json::json;

use super::{load, parse_hex, print, to_hex};

/// `schc fragment --help`.
pub const FRAGMENT_HELP: &str = "\
Fragments a SCHC packet with a fragmentation rule and prints the frames the fragment sender \
sends when nothing is lost, one lowercase hex frame per line, in sending order: every \
fragment of every window, the All-1 last. ACK-Always windows are acknowledged by a receiver \
run alongside; its ACKs are not printed. Feed the lines to `schc reassemble` to get the packet \
back.";

/// `schc reassemble --help`.
pub const REASSEMBLE_HELP: &str = "\
Reassembles a SCHC packet from the frames of a fragment sender, given in order, and prints \
the packet in hex on one line. The receiver's own ACKs are produced and dropped. The padding \
of the last fragment (less than one L2 word) is left out when it is less than a byte. Fails, \
with one line on stderr, if a frame cannot be read or the frames do not complete a packet.";

/// `schc simulate --help`.
pub const SIMULATE_HELP: &str = "\
Runs a fragment sender and a fragment receiver against each other over a lossy link and \
reports what it took. The packet is --size pseudo-random bytes; the link loses each frame, in \
either direction, with probability --loss. Both come from one SplitMix64 generator seeded with \
--seed: the packet's bytes first (8 per output, big-endian), then one draw per frame in \
sending order, the frame being lost if (x >> 11) / 2^53 < P. The same arguments always give \
the same run.

The clock is simulated: it starts at 0 and moves only when both sides wait, to the next \
frame's arrival (a frame arrives --delay-ms after it is sent) or the next timer of the rule \
(retransmission, inactivity). At each instant the sender sends first, then frames are \
delivered in sending order, each followed by its recipient's answers. The run ends when the \
sender is done or has aborted and nothing is in flight.

Output (--json: one line, these keys in this order):
  delivered        the receiver delivered a packet
  identical        it is the packet sent (padding under one L2 word aside)
  fragments_sent   frames the fragment sender sent, lost ones included: fragments, All-1s,
                   ACK REQs, Sender-Abort
  acks_sent        frames the receiver sent, lost ones included: ACKs, Receiver-Abort
  bytes_on_air     bytes of all those frames, both directions
  retransmissions  fragments_sent minus the frames of a loss-free run of the same packet
                   (what `schc fragment` prints), or 0: tiles and All-1s sent again, ACK REQs
  rounds           times the sender stopped to wait for an ACK: after each All-1, each ACK
                   REQ, and in ACK-Always each window; 0 in No-ACK
  sim_time_s       the simulated clock at the end, in seconds";

/// A fragmentation rule of a rule file, chosen by ID.
#[derive(Args)]
pub struct RuleChoice {
    /// RFC 9363 JSON rule file.
    #[arg(long, value_name = "FILE")]
    rules: PathBuf,
    /// The fragmentation rule: its ID as VALUE/LENGTH in bits, e.g. 20/8.
    #[arg(long, value_name = "V/L", value_parser = parse_rule_id)]
    rule_id: RuleId,
}

/// `schc fragment`.
#[derive(Args)]
pub struct FragmentArgs {
    #[command(flatten)]
    rule: RuleChoice,
    /// Largest frame in bytes, rule ID included.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u16).range(1..))]
    mtu: u16,
    /// DTag of the packet (it must fit the rule's DTag field).
    #[arg(long, value_name = "N", default_value_t = 0)]
    dtag: u32,
    /// The SCHC packet, in hex (spaces and colons allowed).
    hex: String,
}

/// `schc reassemble`.
#[derive(Args)]
pub struct ReassembleArgs {
    #[command(flatten)]
    rule: RuleChoice,
    /// The frames, in hex, in the order they were sent.
    #[arg(value_name = "FRAME_HEX", required = true, num_args = 1..)]
    frames: Vec<String>,
}

/// `schc simulate`.
#[derive(Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    rule: RuleChoice,
    /// Largest frame in bytes, rule ID included, in both directions.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u16).range(1..))]
    mtu: u16,
    /// Size of the SCHC packet in bytes.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u16).range(1..))]
    size: u16,
    /// Probability, from 0 to 1, that the link loses a frame (each direction).
    #[arg(long, value_name = "P", value_parser = parse_probability)]
    loss: f64,
    /// Seed of the generator of the packet and the losses.
    #[arg(long, value_name = "S")]
    seed: u64,
    /// Time from sending a frame to its arrival, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    delay_ms: u64,
    /// DTag of the packet (it must fit the rule's DTag field).
    #[arg(long, value_name = "N", default_value_t = 0)]
    dtag: u32,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    json: bool,
}

/// `V/L`: a rule ID of L bits (0 to 32) holding V.
fn parse_rule_id(s: &str) -> Result<RuleId, String> {
    let bad = || format!("{s:?} is not VALUE/LENGTH (e.g. 20/8)");
    let (v, l) = s.split_once('/').ok_or_else(bad)?;
    let value: u32 = v.trim().parse().map_err(|_| bad())?;
    let length: u8 = l.trim().parse().map_err(|_| bad())?;
    let id = RuleId::new(value, length);
    if !id.is_well_formed() {
        return Err(format!(
            "rule ID {value}/{length}: {value} does not fit in {length} bits (32 at most)"
        ));
    }
    Ok(id)
}

fn parse_probability(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("{s:?} is not a probability between 0 and 1")),
    }
}

/// Loads the rule file and picks the fragmentation rule.
fn frag_rule(c: &RuleChoice) -> Result<Rule, String> {
    let rules = load(&c.rules)?;
    let set = rules.as_set();
    let name = c.rules.display();
    let id = c.rule_id;
    let rule = set
        .get(id)
        .ok_or_else(|| format!("{name}: there is no rule {id}"))?;
    match rule.nature {
        Nature::Fragmentation(_) => Ok(*rule),
        Nature::Compression(_) => Err(format!(
            "{name}: rule {id} is a compression rule, not a fragmentation rule"
        )),
        Nature::NoCompression => Err(format!(
            "{name}: rule {id} is the no-compression rule, not a fragmentation rule"
        )),
    }
}

fn check_dtag(rule: &Rule, dtag: u32) -> Result<(), String> {
    let Nature::Fragmentation(p) = rule.nature else {
        return Ok(());
    };
    if p.dtag_bits < 32 && u64::from(dtag) >= 1u64 << p.dtag_bits {
        return Err(format!(
            "--dtag {dtag} does not fit the {}-bit DTag of rule {}",
            p.dtag_bits, rule.id
        ));
    }
    Ok(())
}

/// `schc fragment`.
pub fn fragment(args: FragmentArgs) -> Result<(), String> {
    let packet = parse_hex(&args.hex).map_err(|e| format!("packet: {e}"))?;
    if packet.is_empty() {
        return Err("packet: nothing to fragment".into());
    }
    let rule = frag_rule(&args.rule)?;
    check_dtag(&rule, args.dtag)?;
    let frames = sim::lossless_frames(&rule, &packet, args.dtag, usize::from(args.mtu))
        .map_err(|e| format!("cannot fragment: {e}"))?;
    let text: String = frames.iter().map(|f| to_hex(f) + "\n").collect();
    print(&text)
}

/// `schc reassemble`.
pub fn reassemble(args: ReassembleArgs) -> Result<(), String> {
    let frames = args
        .frames
        .iter()
        .enumerate()
        .map(|(i, h)| parse_hex(h).map_err(|e| format!("frame {}: {e}", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    let rule = frag_rule(&args.rule)?;
    match sim::reassemble(&rule, &frames).map_err(|e| format!("cannot reassemble: {e}"))? {
        Reassembled::Packet(bytes, bits) => {
            let whole = bytes.get(..bits / 8).unwrap_or(&bytes);
            print(&format!("{}\n", to_hex(whole)))
        }
        Reassembled::Aborted(reason) => Err(format!("the receiver aborted: {reason}")),
        Reassembled::Incomplete => Err(format!(
            "the {} frame{} do not complete a packet",
            frames.len(),
            if frames.len() == 1 { "" } else { "s" }
        )),
    }
}

/// `schc simulate`.
pub fn simulate(args: SimulateArgs) -> Result<(), String> {
    let rule = frag_rule(&args.rule)?;
    check_dtag(&rule, args.dtag)?;
    let mut rng = SplitMix64::new(args.seed);
    let mut packet = vec![0u8; usize::from(args.size)];
    rng.fill_bytes(&mut packet);
    let link = Link {
        mtu: usize::from(args.mtu),
        loss: args.loss,
        delay: args.delay_ms.saturating_mul(1000),
        dtag: args.dtag,
    };
    let r =
        sim::run(&rule, &packet, &link, &mut rng).map_err(|e| format!("cannot simulate: {e}"))?;
    let seconds = r.sim_time as f64 / 1e6;
    if args.json {
        let j = json!({
            "delivered": r.delivered,
            "identical": r.identical,
            "fragments_sent": r.fragments_sent,
            "acks_sent": r.acks_sent,
            "bytes_on_air": r.bytes_on_air,
            "retransmissions": r.retransmissions,
            "rounds": r.rounds,
            "sim_time_s": seconds,
        });
        return print(&format!("{j}\n"));
    }
    let outcome = match (r.delivered, r.identical) {
        (true, true) => "delivered, identical".to_string(),
        (true, false) => "delivered, NOT identical".to_string(),
        (false, _) => {
            let mut why = Vec::new();
            if let SenderAction::Aborted(reason) = r.sender {
                why.push(format!("the sender aborted: {reason}"));
            }
            if let Some(reason) = r.receiver_aborted {
                why.push(format!("the receiver aborted: {reason}"));
            }
            if why.is_empty() {
                "not delivered".to_string()
            } else {
                format!("not delivered ({})", why.join("; "))
            }
        }
    };
    print(&format!(
        "{outcome}: {size} bytes under rule {id}, MTU {mtu}, loss {loss}, seed {seed}\n\
         {frags} fragments ({retrans} retransmissions), {acks} ACKs, {air} bytes on air, \
         {rounds} rounds, {seconds:.3} s simulated\n",
        size = args.size,
        id = rule.id,
        mtu = args.mtu,
        loss = args.loss,
        seed = args.seed,
        frags = r.fragments_sent,
        retrans = r.retransmissions,
        acks = r.acks_sent,
        air = r.bytes_on_air,
        rounds = r.rounds,
    ))
}
