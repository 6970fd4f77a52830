//! The `schc` command: compress and decompress packets with an RFC 9363 rule file, check rule
//! files, and export them as static tables for devices.
//!
//! Every failure exits with status 1 (2 for a malformed command line) after printing exactly
//! one line, `error: ...`, on stderr.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{Args, Parser, Subcommand, ValueEnum};
use lpwan_schc::codec::{self, CompressError, Config};
use lpwan_schc::rule::{Direction, RuleId, RuleSetBuf};
use lpwan_schc::{export, json};
use serde_json::json;

#[path = "schc/frag_cmd.rs"]
mod frag_cmd;
#[path = "schc/gateway_cmd.rs"]
mod gateway_cmd;
#[path = "schc/lorawan_cmd.rs"]
mod lorawan_cmd;
#[path = "schc/ratio_cmd.rs"]
mod ratio_cmd;
use ratio_cmd::RATIO_HELP;

/// SCHC (RFC 8724) header compression with RFC 9363 rule files.
#[derive(Parser)]
#[command(name = "schc", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compresses an IPv6/UDP/CoAP packet; prints the SCHC packet in hex.
    Compress(CompressArgs),
    /// Decompresses a SCHC packet; prints the packet in hex.
    Decompress(DecompressArgs),
    /// Checks, exports, learns or converts rule files.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Measures how much a rule set saves on a capture (pcap or pcapng).
    #[command(long_about = RATIO_HELP)]
    Ratio(ratio_cmd::RatioArgs),
    /// Fragments a SCHC packet; prints the frames of a loss-free exchange in hex, one a line.
    #[command(long_about = frag_cmd::FRAGMENT_HELP)]
    Fragment(frag_cmd::FragmentArgs),
    /// Reassembles a SCHC packet from fragments; prints the packet in hex.
    #[command(long_about = frag_cmd::REASSEMBLE_HELP)]
    Reassemble(frag_cmd::ReassembleArgs),
    /// Runs a fragment sender and receiver over a seeded lossy link; reports the cost.
    #[command(long_about = frag_cmd::SIMULATE_HELP)]
    Simulate(frag_cmd::SimulateArgs),
    /// RFC 9011 (SCHC over LoRaWAN) helpers: the DevIID.
    #[command(subcommand)]
    Lorawan(lorawan_cmd::LorawanCommand),
    /// Bridges a LoRaWAN network server (MQTT: ChirpStack v4, The Things Stack v3) and IPv6.
    #[command(long_about = gateway_cmd::GATEWAY_HELP)]
    Gateway(gateway_cmd::GatewayArgs),
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Validates a rule file and prints how many rules of each nature it holds.
    Check {
        /// RFC 9363 JSON rule file.
        file: PathBuf,
    },
    /// Prints the rule set as Rust `static` tables for a `no_std` device.
    ExportRust {
        /// Leave out the descriptor tables: the compiled form only, for a device that calls
        /// `compress_compiled` and `decompress_compiled` (14 bytes a field).
        #[arg(long)]
        compiled_only: bool,
        /// RFC 9363 JSON rule file.
        file: PathBuf,
    },
    /// Learns an RFC 9363 rule set from the traffic of a capture.
    #[command(long_about = ratio_cmd::LEARN_HELP)]
    Learn(ratio_cmd::LearnArgs),
    /// Converts an openschc or microschc rule file to RFC 9363 JSON.
    Convert(ratio_cmd::ConvertArgs),
}

/// Options shared by compression and decompression.
#[derive(Args)]
struct Common {
    /// RFC 9363 JSON rule file.
    #[arg(long, value_name = "FILE")]
    rules: PathBuf,
    /// Direction of the packet.
    #[arg(long, value_enum, default_value_t = Dir::Up)]
    direction: Dir,
    /// The device's IPv6 IID (8 bytes in hex), for rules with the DevIID action.
    #[arg(long, value_name = "HEX")]
    dev_iid: Option<String>,
    /// The application's IPv6 IID (8 bytes in hex), for rules with the AppIID action.
    #[arg(long, value_name = "HEX")]
    app_iid: Option<String>,
    /// Print one JSON object instead of the hex alone.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CompressArgs {
    #[command(flatten)]
    common: Common,
    /// L2 word in bits: the SCHC packet is zero-padded to a multiple of it.
    #[arg(long, value_name = "BITS", default_value_t = 8,
          value_parser = clap::value_parser!(u8).range(1..))]
    l2_word: u8,
    /// Also tell, on standard error, which rules match and, for each that does not, the
    /// first entry that fails (field and bit offset).
    #[arg(long)]
    explain: bool,
    /// The packet, in hex (spaces and colons allowed).
    hex: String,
}

#[derive(Args)]
struct DecompressArgs {
    #[command(flatten)]
    common: Common,
    /// Largest packet to rebuild, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1280,
          value_parser = clap::value_parser!(u32).range(1..=MAX_IPV6_PACKET))]
    max_packet_size: u32,
    /// Length of the SCHC packet in bits, when its padding is longer than 7 bits.
    #[arg(long, value_name = "N")]
    bits: Option<usize>,
    /// The SCHC packet, in hex (spaces and colons allowed).
    hex: String,
}

/// The largest IPv6 packet without a jumbo payload: header and 65535 payload bytes.
const MAX_IPV6_PACKET: i64 = 40 + 65535;

#[derive(Clone, Copy, ValueEnum)]
enum Dir {
    /// Device to application.
    Up,
    /// Application to device.
    Down,
}

impl From<Dir> for Direction {
    fn from(d: Dir) -> Self {
        match d {
            Dir::Up => Direction::Up,
            Dir::Down => Direction::Down,
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            // Help and version go to stdout with status 0.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprintln!("error: a command is missing (see schc --help)");
            return ExitCode::from(2);
        }
        Err(e) => {
            // clap's message, its hints joined on one line; the usage block is left out.
            let text = e.render().to_string();
            let msg: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .filter(|l| !l.is_empty())
                .collect();
            let msg = msg.join(" ").replace(" tip: ", "; tip: ");
            let msg = msg.strip_prefix("error: ").unwrap_or(&msg);
            eprintln!("error: {msg} (see schc --help)");
            return ExitCode::from(2);
        }
    };
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("error: {}", one_line(&msg));
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Compress(args) => compress(args),
        Command::Decompress(args) => decompress(args),
        Command::Rules(RulesCommand::Check { file }) => {
            let rules = load(&file)?;
            let summary = export::summary(&rules.as_set());
            print(&format!("{}: {summary}\n", file.display()))
        }
        Command::Rules(RulesCommand::ExportRust {
            file,
            compiled_only,
        }) => {
            let set = load(&file)?;
            print(&if compiled_only {
                export::to_rust_compiled(&set)
            } else {
                export::to_rust(&set)
            })
        }
        Command::Rules(RulesCommand::Learn(args)) => ratio_cmd::learn(args),
        Command::Rules(RulesCommand::Convert(args)) => ratio_cmd::convert(args),
        Command::Ratio(args) => ratio_cmd::ratio(args),
        Command::Fragment(args) => frag_cmd::fragment(args),
        Command::Reassemble(args) => frag_cmd::reassemble(args),
        Command::Simulate(args) => frag_cmd::simulate(args),
        Command::Lorawan(cmd) => lorawan_cmd::run(cmd),
        Command::Gateway(args) => gateway_cmd::run(args),
    }
}

fn compress(args: CompressArgs) -> Result<(), String> {
    let packet = parse_hex(&args.hex).map_err(|e| format!("packet: {e}"))?;
    let c = &args.common;
    let cfg = Config {
        l2_word: args.l2_word,
        ..config(c)?
    };
    let rules = load(&c.rules)?;
    // Generous: a SCHC packet is the packet's fields (or less), plus the rule ID (4 bytes at
    // most), size prefixes and padding (32 bytes at most). A shortfall would be an error.
    let mut out = vec![0u8; packet.len() * 2 + 64];
    let (set, dir) = (rules.as_set(), c.direction.into());
    // Which rule matches, and why the others do not.
    let why = || {
        let mut s = String::new();
        codec::explain(&set, &packet, dir, &cfg, |id, r| {
            s += &match r {
                Ok(bits) => format!("rule {id}: matches, {bits} bits of residue\n"),
                Err(m) => format!("rule {id}: {m}\n"),
            };
        });
        s
    };
    if args.explain {
        eprint!("{}", why());
    }
    let done = codec::compress(&set, &packet, dir, &cfg, &mut out).map_err(|e| match e {
        // One line: why each rule (the first eight) does not match.
        CompressError::NoMatch if !args.explain => {
            let why = why();
            let lines: Vec<&str> = why.lines().collect();
            let more = lines.len().saturating_sub(8);
            let mut reasons = lines[..lines.len() - more].join("; ");
            if more > 0 {
                reasons += &format!("; {more} more rules");
            }
            format!("cannot compress: {e}: {reasons}")
        }
        e => format!("cannot compress: {e}"),
    })?;
    out.truncate(done.len);
    let hex = to_hex(&out);
    if c.json {
        let j = json!({ "rule_id": rule_id_json(done.rule_id), "bits": done.bits, "hex": hex });
        print(&format!("{j}\n"))
    } else {
        print(&format!("{hex}\n"))
    }
}

fn decompress(args: DecompressArgs) -> Result<(), String> {
    let schc = parse_hex(&args.hex).map_err(|e| format!("SCHC packet: {e}"))?;
    let c = &args.common;
    let max = args.max_packet_size as usize;
    let cfg = Config {
        max_packet_size: max,
        ..config(c)?
    };
    let rules = load(&c.rules)?;
    let mut out = vec![0u8; max];
    let set = rules.as_set();
    let dir = c.direction.into();
    let done = match args.bits {
        None => codec::decompress(&set, &schc, dir, &cfg, &mut out),
        Some(bits) if bits <= schc.len() * 8 => {
            codec::decompress_bits(&set, &schc, bits, dir, &cfg, &mut out)
        }
        Some(bits) => {
            let have = schc.len() * 8;
            return Err(format!(
                "--bits {bits} is longer than the {have} bits given"
            ));
        }
    }
    .map_err(|e| format!("cannot decompress: {e}"))?;
    out.truncate(done.len);
    let hex = to_hex(&out);
    if c.json {
        let j = json!({ "rule_id": rule_id_json(done.rule_id), "len": done.len, "hex": hex });
        print(&format!("{j}\n"))
    } else {
        print(&format!("{hex}\n"))
    }
}

/// The codec settings from the shared options (defaults for the rest).
fn config(c: &Common) -> Result<Config, String> {
    let iid = |name: &str, hex: &Option<String>| -> Result<Option<[u8; 8]>, String> {
        let Some(hex) = hex else { return Ok(None) };
        let bytes = parse_hex(hex).map_err(|e| format!("--{name}: {e}"))?;
        let n = bytes.len();
        <[u8; 8]>::try_from(bytes)
            .map(Some)
            .map_err(|_| format!("--{name}: an IID is 8 bytes, got {n}"))
    };
    Ok(Config {
        dev_iid: iid("dev-iid", &c.dev_iid)?,
        app_iid: iid("app-iid", &c.app_iid)?,
        ..Config::default()
    })
}

/// Reads a rule file (`json::from_str` validates it); errors start with the file name.
fn load(path: &Path) -> Result<RuleSetBuf, String> {
    let name = path.display();
    let text = fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    json::from_str(&text).map_err(|e| format!("{name}: {e}"))
}

/// Bytes from hex digits, ignoring whitespace and colons, in either case.
fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<(usize, char)> = s
        .chars()
        .enumerate()
        .filter(|(_, c)| !c.is_whitespace() && *c != ':')
        .collect();
    let value = |&(i, c): &(usize, char)| {
        c.to_digit(16)
            .ok_or_else(|| format!("invalid hex digit {c:?} at character {}", i + 1))
    };
    let bytes = digits
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Ok(((value(hi)? << 4) | value(lo)?) as u8),
            [single] => {
                value(single).and(Err(format!("odd number of hex digits ({})", digits.len())))
            }
            _ => Err("empty hex pair".to_string()),
        })
        .collect::<Result<Vec<u8>, String>>()?;
    Ok(bytes)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn rule_id_json(id: RuleId) -> serde_json::Value {
    json!({ "value": id.value, "length": id.length })
}

/// Writes to stdout; a closed pipe (`schc ... | head`) ends the output quietly.
fn print(text: &str) -> Result<(), String> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(format!("writing the output: {e}")),
        _ => Ok(()),
    }
}

/// A message on one line: any line breaks from lower layers become spaces.
fn one_line(msg: &str) -> String {
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
}
