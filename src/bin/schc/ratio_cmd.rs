//! `schc ratio`, `schc rules learn` and `schc rules convert`: compression studies on captures.

use std::fs::{self, File};
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use lpwan_schc::capture::{network_packet, CaptureError, CaptureReader, Format};
use lpwan_schc::convert;
use lpwan_schc::learn::{LearnOptions, Learner, Report};
use lpwan_schc::ratio::{infer_device, Devices, Outcome, Study, Totals};
use lpwan_schc::rule::{Direction, Nature, RuleSetBuf};
use lpwan_schc::{json, plot};
use serde_json::json;

use super::{load, print};

/// `schc ratio --help`.
pub const RATIO_HELP: &str = "\
Measures how much a rule set saves on a capture: reads every frame of a pcap or pcapng file \
(link types Ethernet with VLAN tags, Linux cooked capture v1/v2, raw IP, BSD loopback), \
compresses every IPv6 packet with the rule set, decompresses it again and checks that the bytes \
come back, and reports per rule and in total. Frames that are not IPv6 are counted as skipped. \
Memory stays flat however large the capture.

Direction: every packet is compressed in the direction its device side gives: from a device \
address it goes up, to one it goes down. The device addresses are --device, else those the \
rules fix on the device side, else inferred from the capture (the endpoint that talks to a CoAP \
server on UDP port 5683/5684 from another port, i.e. the CoAP/LwM2M client); the output says \
which.

Definitions: header bytes in = every header the packet has, whatever the rule (IPv6 40, UDP 8, \
CoAP header, token, options and payload marker, as far as they parse). Header bits out = rule ID \
+ compression residue + the headers the rule does not describe, which travel unchanged (an \
IPv6/UDP rule leaves the CoAP header; the no-compression rule leaves them all); header bytes \
out = bits / 8. Bytes in = IPv6 packets; bytes out = SCHC packets padded to whole bytes. Header \
ratio = header bytes in / header bytes out; total ratio = bytes in / bytes out; savings = \
1 - out/in.

--json prints one object: packets, compressed (sent with a compression rule), uncompressed (the \
no-compression rule), skipped (not IPv6), skipped_by_reason, failed (no rule at all), bytes_in, \
bytes_out, header_bytes_in, header_bits_out, header_bytes_out, residue_bits, header_ratio, \
total_ratio, header_saving, total_saving, roundtrip_failures, direction {up, down, unknown}, \
per_rule {\"value/length\": {...}}, capture, rules, device, seconds, and error when the capture \
is damaged (the packets before the damage are counted; the exit status is then 1).
--csv FILE writes one line per frame. --plot FILE.svg draws header bytes per rule and the \
distribution of packet sizes.";

/// `schc rules learn --help`.
pub const LEARN_HELP: &str = "\
Learns an RFC 9363 rule set from a capture's traffic: packets are grouped by direction, layers \
and CoAP option list (every field of a packet needs a descriptor); per field the cheapest action \
that fits the values seen is chosen (constant: equal/not-sent; lengths and checksum: compute; a \
small stable set: match-mapping; shared high bits: MSB/LSB; otherwise value-sent); groups are \
split on flows, codes, tokens and option lengths while the rule-ID space allows; an IPv6/UDP \
catch-all per direction and a no-compression rule are always added. Every training packet is \
checked to round-trip.

With --holdout F (default 0.5) the first 1-F of the IPv6 packets train and the rest test: both \
ratios are printed, and the rules written are those learned from the training part.";

#[derive(Args)]
pub struct RatioArgs {
    /// RFC 9363 JSON rule file; without it, rules are learned from the capture itself (an
    /// optimistic figure: see `schc rules learn --holdout`).
    #[arg(long, value_name = "FILE")]
    rules: Option<PathBuf>,
    /// The capture, pcap or pcapng.
    capture: PathBuf,
    /// A device's IPv6 address (repeat for several): packets from it go up, to it down.
    #[arg(long, value_name = "IPV6ADDR")]
    device: Vec<Ipv6Addr>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Write one CSV line per frame to FILE (`-` for standard output).
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Draw an SVG chart to FILE.svg.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Skip the first N frames.
    #[arg(long, value_name = "N", default_value_t = 0)]
    skip: u64,
    /// Study at most N frames (after --skip).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
}

#[derive(Args)]
pub struct LearnArgs {
    /// The capture, pcap or pcapng.
    capture: PathBuf,
    /// Where to write the RFC 9363 JSON rule set.
    #[arg(long, short, value_name = "FILE")]
    output: PathBuf,
    /// Most compression rules (default 2^B - 1).
    #[arg(long, value_name = "K")]
    max_rules: Option<usize>,
    /// Rule ID length in bits.
    #[arg(long, value_name = "B", default_value_t = 4,
          value_parser = clap::value_parser!(u8).range(1..=16))]
    rule_id_bits: u8,
    /// Fraction of the IPv6 packets (the last ones) kept out of training to test the rules.
    #[arg(long, value_name = "F", default_value_t = 0.5)]
    holdout: f64,
    /// A device's IPv6 address (repeat for several); default: inferred from the capture.
    #[arg(long, value_name = "IPV6ADDR")]
    device: Vec<Ipv6Addr>,
    /// Send the UDP checksum instead of computing it.
    #[arg(long)]
    send_checksum: bool,
    /// Fewest packets for a rule of its own (default 0.5 % of the training packets, at least 2).
    #[arg(long, value_name = "N")]
    min_support: Option<usize>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Source {
    /// openschc's rule files (RuleID, RuleIDLength, Compression: [{FID, FL, FP, DI, TV, MO, CDA}]).
    Openschc,
    /// microschc's contexts ({"ruleset": [{"id", "field_descriptors"}]}).
    Microschc,
}

#[derive(Args)]
pub struct ConvertArgs {
    /// The format of FILE.
    #[arg(long, value_enum)]
    from: Source,
    /// The rule file to convert.
    file: PathBuf,
    /// The device's IPv6 address (microschc: rules from it become uplink rules, rules to it
    /// downlink rules); default: inferred from the rules.
    #[arg(long, value_name = "IPV6ADDR")]
    device: Option<Ipv6Addr>,
    /// Write the RFC 9363 JSON here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

fn open(path: &Path) -> Result<CaptureReader<io::BufReader<File>>, String> {
    CaptureReader::open(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The device side: `--device`, else the rules', else inferred from the capture.
fn devices(
    given: &[Ipv6Addr],
    rules: Option<&RuleSetBuf>,
    capture: &Path,
) -> Result<Devices, String> {
    if !given.is_empty() {
        return Ok(Devices::new(given.to_vec(), "given with --device"));
    }
    if let Some(d) = rules.and_then(|r| Devices::from_rules(&r.as_set())) {
        return Ok(d);
    }
    let mut reader = open(capture)?;
    match infer_device(&mut reader) {
        Ok(Some((a, why))) => Ok(Devices::new(
            vec![a],
            format!("inferred from the capture: {}", why.explain()),
        )),
        Ok(None) => Ok(Devices::new(
            Vec::new(),
            "none found (every packet is taken as uplink)",
        )),
        // A damaged capture: the study reports the error with its position.
        Err(_) => Ok(Devices::new(
            Vec::new(),
            "none found (every packet is taken as uplink)",
        )),
    }
}

fn addresses(d: &Devices) -> String {
    if d.addresses.is_empty() {
        return "none".to_string();
    }
    d.addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

struct Progress(Option<ProgressBar>);

impl Progress {
    fn new(path: &Path) -> Self {
        if !io::stderr().is_terminal() {
            return Self(None);
        }
        let len = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let bar = ProgressBar::new(len);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta})")
        {
            bar.set_style(style);
        }
        Self(Some(bar))
    }

    fn update(&self, pos: u64, packets: u64) {
        if let Some(b) = &self.0 {
            b.set_position(pos);
            b.set_message(format!("{packets} packets"));
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

/// Learns rules from the IPv6 packets numbered `[from, to)` (0-based, counting IPv6 packets).
fn learn_from(
    capture: &Path,
    devices: &Devices,
    opts: LearnOptions,
    range: (u64, u64),
) -> Result<(RuleSetBuf, Report), String> {
    let mut learner = Learner::new(opts).map_err(|e| e.to_string())?;
    let mut reader = open(capture)?;
    let mut k = 0u64;
    loop {
        let frame = match reader.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(format!("{}: {e}", capture.display())),
        };
        let Ok(p) = network_packet(frame.link_type, frame.data) else {
            continue;
        };
        if k >= range.0 && k < range.1 {
            learner.add(p, devices.direction(p).0);
        }
        k += 1;
    }
    learner
        .learn()
        .map_err(|e| format!("{}: {e}", capture.display()))
}

fn count_ipv6(capture: &Path) -> Result<u64, String> {
    let mut reader = open(capture)?;
    let mut n = 0;
    loop {
        match reader.next_frame() {
            Ok(Some(f)) => n += u64::from(network_packet(f.link_type, f.data).is_ok()),
            Ok(None) => return Ok(n),
            Err(e) => return Err(format!("{}: {e}", capture.display())),
        }
    }
}

pub fn ratio(args: RatioArgs) -> Result<(), String> {
    let cap = &args.capture;
    // Fail early on a file that is no capture at all.
    let format = open(cap)?.format();
    let (rules, rules_name) = match &args.rules {
        Some(path) => (load(path)?, path.display().to_string()),
        None => {
            let devices = devices(&args.device, None, cap)?;
            let (rules, _) = learn_from(cap, &devices, LearnOptions::default(), (0, u64::MAX))?;
            (rules, "learned from this capture".to_string())
        }
    };
    let devices = devices(&args.device, Some(&rules), cap)?;
    let set = rules.as_set();
    let mut study = Study::new(set, devices.clone());
    let mut csv: Option<Box<dyn Write>> = match &args.csv {
        None => None,
        Some(p) if p.as_os_str() == "-" => Some(Box::new(BufWriter::new(io::stdout().lock()))),
        Some(p) => Some(Box::new(BufWriter::new(
            File::create(p).map_err(|e| format!("{}: {e}", p.display()))?,
        ))),
    };
    let csv_err = |e: io::Error| format!("writing the CSV: {e}");
    if let Some(w) = csv.as_mut() {
        writeln!(w, "frame,direction,rule,nature,packet_bytes,header_bytes_in,header_bits_out,residue_bits,schc_bits,schc_bytes,roundtrip")
            .map_err(csv_err)?;
    }
    let progress = Progress::new(cap);
    let start = Instant::now();
    let mut reader = open(cap)?;
    let mut damage: Option<CaptureError> = None;
    let mut seen = 0u64;
    loop {
        let frame = match reader.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                damage = Some(e);
                break;
            }
        };
        if frame.number <= args.skip {
            continue;
        }
        if args.count.is_some_and(|c| seen >= c) {
            break;
        }
        seen += 1;
        let number = frame.number;
        let outcome = study.add_frame(&frame);
        if let Some(w) = csv.as_mut() {
            let line = match outcome {
                Outcome::Packet(r) => format!(
                    "{number},{},{},{},{},{},{},{},{},{},{}",
                    match (r.direction, r.direction_known) {
                        (_, false) => "unknown",
                        (Direction::Up, true) => "up",
                        (Direction::Down, true) => "down",
                    },
                    r.rule_id,
                    if r.compressed {
                        "compression"
                    } else {
                        "no-compression"
                    },
                    r.packet_bytes,
                    r.header_bytes_in,
                    r.header_bits_out,
                    r.residue_bits,
                    r.schc_bits,
                    r.schc_bytes,
                    if r.roundtrip_ok { "ok" } else { "FAILED" },
                ),
                Outcome::Skipped(why) => format!("{number},,,skipped:{},,,,,,,", why.name()),
                Outcome::Failed(_) => format!("{number},,,failed,,,,,,,"),
            };
            writeln!(w, "{line}").map_err(csv_err)?;
        }
        if number % 512 == 0 {
            progress.update(reader.offset(), number);
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    progress.finish();
    if let Some(mut w) = csv {
        w.flush().map_err(csv_err)?;
    }
    let totals = study.totals().clone();
    let error = damage.map(|e| format!("{}: {e}", cap.display()));
    if let Some(path) = &args.plot {
        let title = format!(
            "{} with {}",
            file_name(cap),
            args.rules
                .as_deref()
                .map_or_else(|| rules_name.clone(), file_name)
        );
        let svg = plot::ratio_chart(&totals, &title).map_err(|e| e.to_string())?;
        fs::write(path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let fmt = match format {
        Format::Pcap => "pcap",
        Format::PcapNg => "pcapng",
    };
    if args.json {
        let mut j = totals.to_json();
        if let Some(o) = j.as_object_mut() {
            o.insert(
                "capture".into(),
                json!({"file": cap.display().to_string(), "format": fmt}),
            );
            o.insert("rules".into(), json!(rules_name));
            o.insert(
                "device".into(),
                json!({"addresses": devices.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(), "source": devices.source}),
            );
            o.insert("seconds".into(), json!(seconds));
            if let Some(e) = &error {
                o.insert("error".into(), json!(e));
            }
        }
        if args.csv.as_deref().is_none_or(|p| p.as_os_str() != "-") {
            print(&format!("{j}\n"))?;
        }
    } else if args.csv.as_deref().is_none_or(|p| p.as_os_str() != "-") {
        print(&summary(
            cap,
            fmt,
            &rules_name,
            &rules,
            &devices,
            &totals,
            seconds,
        ))?;
    }
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn saving(out: f64, inp: f64) -> String {
    if out <= 0.0 || inp <= 0.0 {
        return "n/a".to_string();
    }
    format!(
        "{:.1}x smaller, saves {:.1} %",
        inp / out,
        100.0 * (1.0 - out / inp)
    )
}

fn summary(
    cap: &Path,
    fmt: &str,
    rules_name: &str,
    rules: &RuleSetBuf,
    devices: &Devices,
    t: &Totals,
    seconds: f64,
) -> String {
    let mut s = String::new();
    let set = rules.as_set();
    let n_rules = set.rules().len();
    s += &format!(
        "capture  {} ({fmt}, {} frames)\n",
        cap.display(),
        thousands(t.packets)
    );
    s += &format!("rules    {rules_name} ({n_rules} rules)\n");
    s += &format!(
        "device   {} ({}): {} packets up, {} down{}\n\n",
        addresses(devices),
        devices.source,
        thousands(t.up),
        thousands(t.down),
        if t.direction_unknown > 0 {
            format!(", {} neither (taken as up)", thousands(t.direction_unknown))
        } else {
            String::new()
        }
    );
    s += "rule       packets  header in  header out   residue   ratio  round trip\n";
    for (id, r) in &t.per_rule {
        let n = r.packets.max(1) as f64;
        let nature = match set.get(*id).map(|r| r.nature) {
            Some(Nature::NoCompression) => " (no-compression)",
            _ => "",
        };
        s += &format!(
            "{:<9} {:>8}  {:>7.1} B  {:>8.2} B  {:>5.1} bit  {:>5.1}x  {}{}\n",
            id.to_string(),
            thousands(r.packets),
            r.header_bytes_in as f64 / n,
            r.header_bits_out as f64 / 8.0 / n,
            r.residue_bits as f64 / n,
            if r.header_bits_out == 0 {
                0.0
            } else {
                r.header_bytes_in as f64 * 8.0 / r.header_bits_out as f64
            },
            if r.roundtrip_failures == 0 {
                "ok".to_string()
            } else {
                format!("{} FAILED", r.roundtrip_failures)
            },
            nature
        );
    }
    s += "(header in/out and residue: averages per packet)\n\n";
    let skipped = t.skipped_total();
    s += &format!(
        "packets  {} IPv6: {} compressed, {} no-compression{}; {} skipped (not IPv6){}\n",
        thousands(t.compressed + t.uncompressed + t.failed),
        thousands(t.compressed),
        thousands(t.uncompressed),
        if t.failed > 0 {
            format!(", {} not compressible", thousands(t.failed))
        } else {
            String::new()
        },
        thousands(skipped),
        if skipped > 0 {
            let parts: Vec<String> = t.skipped.iter().map(|(k, v)| format!("{k} {v}")).collect();
            format!(": {}", parts.join(", "))
        } else {
            String::new()
        }
    );
    s += &format!(
        "headers  {} B -> {} B: {}\n",
        thousands(t.header_bytes_in),
        thousands(t.header_bits_out.div_ceil(8)),
        saving(t.header_bytes_out(), t.header_bytes_in as f64)
    );
    s += &format!(
        "total    {} B -> {} B: {}\n",
        thousands(t.bytes_in),
        thousands(t.bytes_out),
        saving(t.bytes_out as f64, t.bytes_in as f64)
    );
    let ok = t.compressed + t.uncompressed - t.roundtrip_failures;
    s += &format!(
        "check    {} of {} packets decompress to the original bytes\n",
        thousands(ok),
        thousands(t.compressed + t.uncompressed)
    );
    s += &format!("time     {seconds:.2} s\n");
    s
}

fn ratio_line(t: &Totals) -> String {
    format!(
        "{} packets, headers {}, total {}, {} no-compression, {} round-trip failures",
        thousands(t.compressed + t.uncompressed),
        saving(t.header_bytes_out(), t.header_bytes_in as f64),
        saving(t.bytes_out as f64, t.bytes_in as f64),
        thousands(t.uncompressed),
        t.roundtrip_failures
    )
}

pub fn learn(args: LearnArgs) -> Result<(), String> {
    let cap = &args.capture;
    if !(0.0..1.0).contains(&args.holdout) {
        return Err(format!(
            "--holdout {} must be at least 0 and below 1",
            args.holdout
        ));
    }
    open(cap)?;
    let devices = devices(&args.device, None, cap)?;
    let total = count_ipv6(cap)?;
    let train_n = ((total as f64) * (1.0 - args.holdout)).round() as u64;
    let opts = LearnOptions {
        rule_id_bits: args.rule_id_bits,
        max_rules: args.max_rules,
        min_support: args.min_support,
        send_checksum: args.send_checksum,
        ..LearnOptions::default()
    };
    let (rules, report) = learn_from(cap, &devices, opts, (0, train_n.max(1)))?;
    // Test on the held-out packets.
    let mut test: Option<Totals> = None;
    if train_n < total {
        let mut study = Study::new(rules.as_set(), devices.clone());
        let mut reader = open(cap)?;
        let mut k = 0u64;
        while let Some(frame) = reader
            .next_frame()
            .map_err(|e| format!("{}: {e}", cap.display()))?
        {
            let Ok(p) = network_packet(frame.link_type, frame.data) else {
                continue;
            };
            if k >= train_n {
                study.add_ipv6(p);
            }
            k += 1;
        }
        test = Some(study.totals().clone());
    }
    let text = json::to_string_pretty(&rules);
    fs::write(&args.output, text).map_err(|e| format!("{}: {e}", args.output.display()))?;
    if args.json {
        let rules_json: Vec<_> = report
            .rules
            .iter()
            .map(|r| json!({"rule_id": r.id.to_string(), "packets": r.packets, "residue_bits": r.residue_bits, "description": r.description}))
            .collect();
        let j = json!({
            "capture": cap.display().to_string(),
            "output": args.output.display().to_string(),
            "device": {"addresses": devices.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(), "source": devices.source},
            "train_packets": report.samples,
            "test_packets": total - train_n.min(total),
            "rules": rules_json,
            "no_compression": report.no_compression.to_string(),
            "train": report.train.to_json(),
            "test": test.as_ref().map(Totals::to_json),
        });
        return print(&format!("{j}\n"));
    }
    let mut s = String::new();
    s += &format!("device   {} ({})\n", addresses(&devices), devices.source);
    s += &format!(
        "learned  {} compression rules ({}-bit IDs) from IPv6 packets 1 to {} of {}{}\n\n",
        report.rules.len(),
        args.rule_id_bits,
        thousands(train_n.min(total)),
        thousands(total),
        if train_n < total {
            format!(
                "; packets {} to {} test them",
                thousands(train_n + 1),
                thousands(total)
            )
        } else {
            String::new()
        }
    );
    s += "rule       packets   residue  what\n";
    for r in &report.rules {
        s += &format!(
            "{:<9} {:>8}  {:>5.1} bit  {}\n",
            r.id.to_string(),
            thousands(r.packets as u64),
            r.residue_bits,
            r.description
        );
    }
    s += &format!(
        "{:<9} {:>8}             no-compression\n\n",
        report.no_compression.to_string(),
        ""
    );
    s += &format!("train    {}\n", ratio_line(&report.train));
    if let Some(t) = &test {
        s += &format!("test     {}\n", ratio_line(t));
    }
    s += &format!("wrote    {}\n", args.output.display());
    print(&s)
}

pub fn convert(args: ConvertArgs) -> Result<(), String> {
    let name = args.file.display();
    let mut text = String::new();
    File::open(&args.file)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|e| format!("{name}: {e}"))?;
    let converted = match args.from {
        Source::Microschc => convert::from_microschc(&text, args.device),
        Source::Openschc => {
            if args.device.is_some() {
                return Err("--device applies to microschc rules only (openschc names device and application)".to_string());
            }
            convert::from_openschc(&text)
        }
    }
    .map_err(|e| format!("{name}: {e}"))?;
    for w in &converted.warnings {
        eprintln!("warning: {name}: {w}");
    }
    let out = json::to_string_pretty(&converted.rules);
    match &args.output {
        Some(p) => fs::write(p, out).map_err(|e| format!("{}: {e}", p.display())),
        None => print(&out),
    }
}
