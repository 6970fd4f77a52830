#!/usr/bin/env python3
"""Chooses the inline attributes of the device codec's functions by measuring this crate's
`.text` (BENCHMARKS.md, "Flash", seventh pass): for each function in turn it tries no
attribute, `#[inline(never)]` and `#[inline(always)]`, building `nostd-check` each time, keeps
whatever is smallest, and goes round again until nothing changes. LLVM's size heuristics at
`opt-level = "z"` across the LTO boundary leave hundreds of bytes on the table, and a small
change to `src/codec/device.rs` can move the figure by more than its own code: run this after
changing it, and commit the attributes it leaves in place.

usage (from the repository root, with a clean tree to diff against):
    python3 nostd-check/inline_search.py
It edits the source files in place and prints each improvement and the final choice.
"""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ELF = "target/thumbv7em-none-eabihf/release/nostd-check"

# (name, file, the text the function starts with: unique in its file, from the line start).
SITES = [
    ("device::compress", "src/codec/device.rs", "pub(super) fn compress("),
    ("device::decompress", "src/codec/device.rs", "pub(super) fn decompress("),
    ("Out::put", "src/codec/device.rs", "    fn put(&mut self"),
    ("Scan::rule", "src/codec/device.rs", "    fn rule("),
    ("Scan::computed", "src/codec/device.rs", "    fn computed("),
    ("Rebuild::run", "src/codec/device.rs", "    fn run("),
    ("Rebuild::check", "src/codec/device.rs", "    fn check("),
    ("Rebuild::put", "src/codec/device.rs", "    fn put(&self, out"),
    ("Rebuild::decode", "src/codec/device.rs", "    fn decode("),
    ("nibble", "src/codec/device.rs", "fn nibble("),
    ("bits::copy_into", "src/bits.rs", "pub fn copy_into("),
]
CHOICES = [None, "never", "always"]


def attr_re(anchor):
    """The anchor with an optional inline attribute on the line before it."""
    indent = re.match(r"\s*", anchor).group(0)
    return re.compile(
        r"(?m)^(?:%s#\[inline\((?:never|always)\)\]\n)?%s" % (re.escape(indent), re.escape(anchor))
    )


def current(texts):
    cfg = {}
    for name, file, anchor in SITES:
        m = attr_re(anchor).findall(texts[file])
        if len(m) != 1:
            sys.exit(f"error: {name}: `{anchor}` found {len(m)} times in {file}")
        a = re.search(r"inline\((never|always)\)", m[0])
        cfg[name] = a.group(1) if a else None
    return cfg


def apply(texts, cfg):
    out = dict(texts)
    for name, file, anchor in SITES:
        indent = re.match(r"\s*", anchor).group(0)
        line = f"{indent}#[inline({cfg[name]})]\n" if cfg[name] else ""
        out[file] = attr_re(anchor).sub(lambda _: line + anchor, out[file], count=1)
    for file, text in out.items():
        (ROOT / file).write_text(text)


def size():
    build = subprocess.run(
        ["cargo", "build", "--release", "--target", "thumbv7em-none-eabihf"],
        cwd=ROOT / "nostd-check",
        capture_output=True,
        text=True,
    )
    if build.returncode != 0:
        return None
    out = subprocess.run(
        [sys.executable, str(ROOT / ".ci/elf-size.py"), str(ROOT / "nostd-check" / ELF)],
        capture_output=True,
        text=True,
    ).stdout
    return int(re.search(r"\.text (\d+)", out).group(1))


def main():
    files = {f for _, f, _ in SITES}
    texts = {f: (ROOT / f).read_text() for f in files}
    cfg = current(texts)
    best = size()
    if best is None:
        sys.exit("error: nostd-check does not build as it is")
    print(f"as it is: {best} B of .text", flush=True)
    changed = True
    while changed:
        changed = False
        for name, _, _ in SITES:
            for choice in CHOICES:
                if choice == cfg[name]:
                    continue
                trial = dict(cfg, **{name: choice})
                apply(texts, trial)
                n = size()
                if n is not None and n < best:
                    best, cfg, changed = n, trial, True
                    print(f"{name}: {choice or 'no attribute'} -> {best} B", flush=True)
    apply(texts, cfg)
    size()
    print(f"kept: {best} B; " + ", ".join(f"{k} {v}" for k, v in cfg.items() if v))


if __name__ == "__main__":
    main()
