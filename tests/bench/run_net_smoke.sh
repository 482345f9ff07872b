#!/usr/bin/env bash
# Keeps `tools/bench/run net` from rotting: a tiny run of every case on both
# stacks must finish and write well-formed JSON with numbers in every cell.
# It checks that the benchmark works, never how fast anything is.
#   run_net_smoke.sh SLIP_BENCH_NET
set -u
bench=${1:?usage: run_net_smoke.sh SLIP_BENCH_NET}
[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root: DPDK memif keeps its runtime files in /var/run/dpdk"; exit 77; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$bench" --samples 300 --warmup 200 --reps 1 --bulk-reps 1 --seconds 0.2 --window 0.4 --json "$out" || exit 1
python3 - "$out" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
cases = j["cases"]
want = ["udp_rtt_64", "udp_rtt_64_rtc", "tcp_rtt_64", "udp_rtt_1k", "tcp_rtt_1k", "tcp_bulk", "tcp_rtt_64_2k"]
missing = [c for c in want if c not in cases]
if missing:
    sys.exit(f"FAIL: cases missing from the JSON: {missing}")
for c in want:
    for stack in ("slip", "kernel"):
        r = cases[c][stack]
        keys = ["gbps"] if c == "tcp_bulk" else ["p50_ns", "p99_ns", "p999_ns"]
        if c == "tcp_rtt_64_2k":
            keys.append("rps")
        for k in keys:
            if not isinstance(r.get(k), (int, float)) or r[k] <= 0:
                sys.exit(f"FAIL: {c}/{stack}/{k} is {r.get(k)!r}")
print("bench net smoke: every case produced numbers on both stacks")
PY
