#!/usr/bin/env python3
"""Runs microschc on the cases of tests/differential.rs.

Input (file argument): JSON lines, one case each:
  {"id": N, "rules": <RFC 9363 document>, "packet_hex": ..., "direction": "up"|"down",
   "ours": {"hex": ..., "bits": N}}
Output (stdout): JSON lines, one per case:
  {"id": N, "compress": {"rule_id": {...}, "bits": N, "hex": ...} | {"unsupported": ...} | {"error": ...},
   "decompress": {"packet_hex": ...} | {"unsupported": ...} | {"error": ...}}
compress is microschc's compression of the packet; decompress is microschc's decompression of
our SCHC packet.
"""
import base64
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle  # noqa: E402


def strip(identity):
    return identity.split(":", 1)[1] if ":" in identity else identity


def b64hex(v):
    return base64.b64decode(v).hex()


def neutral(doc):
    """RFC 9363 JSON (as our library writes it) -> the oracle's neutral rule format."""
    out = []
    for r in doc["ietf-schc:schc"]["rule"]:
        nature = strip(r["rule-nature"])
        rule = {"rule_id": {"value": r["rule-id-value"], "length": r["rule-id-length"]}}
        if nature == "nature-no-compression":
            rule["nature"] = "no-compression"
            out.append(rule)
            continue
        assert nature == "nature-compression", nature
        rule["nature"] = "compression"
        entries = []
        for e in r["entry"]:
            fl = e["field-length"]
            ent = {
                "fid": strip(e["field-id"]),
                "fl": strip(fl) if isinstance(fl, str) else fl,
                "fp": e.get("field-position", 1),
                "di": strip(e["direction-indicator"]),
                "mo": strip(e["matching-operator"]),
                "cda": strip(e["comp-decomp-action"]),
            }
            tvs = sorted(e.get("target-value", []), key=lambda t: t["index"])
            if ent["mo"] == "mo-match-mapping":
                ent["tv"] = [b64hex(t["value"]) for t in tvs]
            elif tvs:
                ent["tv"] = b64hex(tvs[0]["value"])
            if ent["mo"] == "mo-msb":
                (arg,) = e["matching-operator-value"]
                ent["mo_arg"] = int.from_bytes(base64.b64decode(arg["value"]), "big")
            entries.append(ent)
        rule["entries"] = entries
        out.append(rule)
    return oracle.norm_rules(out)


def main():
    micro = oracle.Microschc()
    with open(sys.argv[1]) as f:
        for line in f:
            case = json.loads(line)
            res = {"id": case["id"], "version": micro.version}
            try:
                rules = neutral(case["rules"])
            except oracle.OracleError as exc:
                res["compress"] = res["decompress"] = {"unsupported": str(exc)}
                print(json.dumps(res), flush=True)
                continue
            res["compress"] = oracle.run_compress([micro], rules, case["packet_hex"],
                                                  case["direction"])["microschc"]
            ours = case["ours"]
            res["decompress"] = oracle.run_decompress([micro], rules, ours["hex"], ours["bits"],
                                                      case["direction"])["microschc"]
            print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
