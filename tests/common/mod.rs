//! Helpers shared by the integration tests.
#![allow(dead_code)]

/// CoAP options (RFC 7252 §3.1) as a message carries them, in the order given (sorted by
/// number): each its delta and length nibbles, their extension bytes (13: one byte, the value
/// minus 13; 14: two, minus 269), then its value.
pub fn coap_options(options: &[(u16, Vec<u8>)]) -> Vec<u8> {
    fn nibble(v: usize) -> (u8, Vec<u8>) {
        match v {
            0..=12 => (v as u8, vec![]),
            13..=268 => (13, vec![(v - 13) as u8]),
            _ => (14, ((v - 269) as u16).to_be_bytes().to_vec()),
        }
    }
    let mut out = Vec::new();
    let mut prev = 0;
    for (n, v) in options {
        let (d, dx) = nibble(usize::from(n - prev));
        let (l, lx) = nibble(v.len());
        out.push((d << 4) | l);
        out.extend(dx);
        out.extend(lx);
        out.extend_from_slice(v);
        prev = *n;
    }
    out
}

/// Bytes from hex (whitespace ignored); panics on malformed test data.
pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(s.len() % 2 == 0, "odd hex {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Lowercase hex of bytes.
pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

use std::path::Path;
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the `schc` binary from the repository root.
pub fn schc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_schc"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the schc binary runs")
}

/// A command's standard output.
pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

/// A command's standard error.
pub fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

/// Runs a command that must succeed quietly; returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let out = schc(args);
    assert!(
        out.status.success(),
        "schc {args:?} failed: {}",
        stderr(&out)
    );
    assert_eq!(stderr(&out), "", "schc {args:?} wrote to stderr");
    stdout(&out)
}

/// Runs a command that must fail with exactly one `error: ` line on stderr; returns it.
pub fn fails(args: &[&str]) -> String {
    let out = schc(args);
    let err = stderr(&out);
    assert!(!out.status.success(), "schc {args:?} succeeded");
    assert_eq!(
        err.lines().count(),
        1,
        "schc {args:?}: stderr is not one line: {err:?}"
    );
    assert!(err.starts_with("error: "), "schc {args:?}: {err:?}");
    assert!(!err.contains("panicked"), "schc {args:?} panicked: {err:?}");
    assert_eq!(stdout(&out), "", "schc {args:?} printed output");
    err
}

/// The interop vector files (`tests/vectors/*.json`), sorted by name.
pub fn vector_files() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(root().join("tests/vectors"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}
