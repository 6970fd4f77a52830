//! `schc lorawan iid`: the RFC 9011 DevIID from a DevEUI and an AppSKey.

use clap::{Args, Subcommand};
use lpwan_schc::profile::lorawan::{iid, IidForm};

use super::{parse_hex, print, to_hex};

/// `schc lorawan iid --help`.
pub const IID_HELP: &str = "\
Prints the device's IPv6 interface identifier as RFC 9011 §5.3 defines it: the first 8 bytes \
of AES-128-CMAC(AppSKey, DevEUI), over the 8 DevEUI bytes (most significant first), as 16 \
lowercase hex digits. With --ascii the CMAC runs over the DevEUI written as 16 upper-case \
ASCII hex digits instead, which is how the RFC's printed example (DevEUI 1122334455667788, \
AppSKey 00AABBCCDDEEFF00AABBCCDDEEFFAABB, IID BA59F4B196C6C343) was computed; the binary form \
gives 4e822d9775b26499 for the same keys. Hex may contain spaces and colons.";

/// `schc lorawan ...`.
#[derive(Subcommand)]
pub enum LorawanCommand {
    /// Prints the DevIID (first 8 bytes of AES-CMAC(AppSKey, DevEUI)) in hex.
    #[command(long_about = IID_HELP)]
    Iid(IidArgs),
}

/// `schc lorawan iid` arguments.
#[derive(Args)]
pub struct IidArgs {
    /// The DevEUI: 8 bytes in hex, most significant first.
    #[arg(long)]
    deveui: String,
    /// The AppSKey: 16 bytes in hex.
    #[arg(long)]
    appskey: String,
    /// CMAC over the DevEUI as ASCII hex text (the RFC's printed example), not its 8 bytes.
    #[arg(long)]
    ascii: bool,
}

/// Runs a `schc lorawan` command.
pub fn run(cmd: LorawanCommand) -> Result<(), String> {
    match cmd {
        LorawanCommand::Iid(a) => {
            let eui: [u8; 8] = fixed(&a.deveui, "--deveui")?;
            let key: [u8; 16] = fixed(&a.appskey, "--appskey")?;
            let form = if a.ascii {
                IidForm::Ascii
            } else {
                IidForm::Binary
            };
            print(&format!("{}\n", to_hex(&iid(&key, &eui, form))))
        }
    }
}

fn fixed<const N: usize>(hex: &str, what: &str) -> Result<[u8; N], String> {
    let bytes = parse_hex(hex).map_err(|e| format!("{what}: {e}"))?;
    bytes.as_slice().try_into().map_err(|_| {
        let n = bytes.len();
        let s = if n == 1 { "" } else { "s" };
        format!("{what}: {n} byte{s} given, {N} needed")
    })
}
