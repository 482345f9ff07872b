#!/usr/bin/env bash
# Keeps `tools/bench/run neighbour` from rotting: a --quick run must finish and
# write JSON with a number for every runtime case (slip, fiber, pthread) and
# tcp_rtt_64 p50/p99 (slip, kernel) alone and beside the neighbour, and under
# the quota unless no cgroup could be made (then it says why and skips). It
# checks that the benchmark works, never how fast anything is.
#   run_neighbour_smoke.sh SLIP_BENCH_NEIGHBOUR
set -u
bench=${1:?usage: run_neighbour_smoke.sh SLIP_BENCH_NEIGHBOUR}
[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root: DPDK memif keeps its runtime files in /var/run/dpdk"; exit 77; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$bench" --quick --json "$out" || exit 1
python3 - "$out" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
cases = j["cases"]
num = lambda x: isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0
want = {c: ("slip", "fiber", "pthread") for c in
        ("spawn_join", "yield_pingpong", "condvar_pingpong", "mutex_handoff", "sleep_wake")}
want.update({c: ("slip", "kernel") for c in ("tcp_rtt_64_p50", "tcp_rtt_64_p99")})
skipped = j["conditions"]["quota"]["skipped"]
conds = ("alone", "neighbour") if skipped else ("alone", "neighbour", "quota")
for c, systems in want.items():
    for s in systems:
        cell = cases.get(c, {}).get(s)
        if cell is None:
            sys.exit(f"FAIL: no result for {c}/{s}")
        for cond in conds:
            if not num(cell.get(cond)):
                sys.exit(f"FAIL: {c}/{s}/{cond} is {cell.get(cond)!r}")
        for cond in conds[1:]:
            if not num(j["slowdown"][c][s].get(cond)):
                sys.exit(f"FAIL: slowdown {c}/{s}/{cond} is {j['slowdown'][c][s].get(cond)!r}")
if not all(t["met"] in (True, False) or (skipped and t["condition"] == "quota") for t in j["targets"]):
    sys.exit(f"FAIL: a target has no verdict: {j['targets']}")
for k in ("cpu_model", "nproc", "kernel"):
    if k not in j["machine"]:
        sys.exit(f"FAIL: machine.{k} missing")
if skipped:
    print(f"SKIP: the quota condition: {skipped}")
    sys.exit(77)
print("PASS")
PY
