#!/bin/sh
# Checks that a benchmark run's output parses: the JSON has every scenario
# (the TLS ping-pong when built with OpenSSL) with a median for each
# variant, and the SVG is well-formed XML.
set -eu
json=$1 svg=$2
python3 - "$json" "$svg" <<'PY'
import json, sys, xml.etree.ElementTree as ET
r = json.load(open(sys.argv[1]))
scen = {x["scenario"] for x in r["results"]}
need = ["pingpong tcp 1B", "pingpong tcp 1KiB", "pingpong unix 1B", "pingpong unix 1KiB",
        "bulk tcp", "bulk unix", "cancel latency", "token create+cancel+destroy"]
if r.get("openssl"):  # built with OpenSSL (as in CI)
    need.append("tls pingpong 1KiB")
missing = [s for s in need if s not in scen] + [s for s in ["cancel-all"] if not any(x.startswith(s) for x in scen)]
assert not missing, f"missing scenarios: {missing}"
for x in r["results"]:
    assert x["samples"] > 0 and x["median"] > 0, x
    assert any(y["baseline"] for y in r["results"] if y["scenario"] == x["scenario"]), x
assert r["token"]["descriptors"] == 0, r["token"]
ET.parse(sys.argv[2])
print(f"bench output parses: {len(r['results'])} results in {len(scen)} scenarios")
PY
