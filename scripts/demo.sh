#!/usr/bin/env bash
# The main job on shipped defaults: compress the anchor packet (an IPv6/UDP/CoAP GET /temp,
# `benches/anchor.json`) with the shipped rule set `rules/anchor.json`, decompress the result,
# and check that the packet comes back byte for byte.
set -euo pipefail
cd "$(dirname "$0")/.."

rules=rules/anchor.json
packet=600000000017114020010db8000a0000000000000000000320010db8000a00000000000000000020d10016330017d71e41011234abb474656d70ff01020304

schc() {
    echo "\$ schc $*" >&2
    cargo run --release --quiet --bin schc -- "$@"
}

compressed=$(schc compress --rules "$rules" "$packet")
echo "$compressed"
restored=$(schc decompress --rules "$rules" "$compressed")
echo "$restored"

if [ "$restored" != "$packet" ]; then
    echo "error: the decompressed packet differs from the original" >&2
    exit 1
fi
echo "round trip OK: $(( ${#packet} / 2 )) bytes -> $(( ${#compressed} / 2 )) bytes"
