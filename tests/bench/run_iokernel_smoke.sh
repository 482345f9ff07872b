#!/usr/bin/env bash
# Keeps `tools/bench/run iokernel` from rotting: a tiny run of both parts (a
# few reaction trials, one light load point per system) must finish and write
# JSON of the issue's shape with numbers where they belong. It checks that the
# benchmark works, never how fast anything is. As root all three systems run;
# otherwise iokernel and direct must be skipped with a reason.
#   run_iokernel_smoke.sh SLIP_BENCH_IOKERNEL_ALL
set -u
bench=${1:?usage: run_iokernel_smoke.sh SLIP_BENCH_IOKERNEL_ALL}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$bench" --json "$out" --trials 20 --reaction-args "--wake-samples 200" \
  --rates 5000 --duration 0.3 --warmup 0.2 || exit 1
python3 - "$out" "$(id -u)" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
root = sys.argv[2] == "0"
num = lambda x: isinstance(x, (int, float)) and not isinstance(x, bool)
for part in ("parked", "spinning"):
    for k in ("p50", "p99"):
        if not num(j["realloc_us"][part].get(k)):
            sys.exit(f"FAIL: realloc_us/{part}/{k} is {j['realloc_us'][part].get(k)!r}")
for k in ("p50", "p99"):
    if not num(j["wake_baseline_us"].get(k)) or j["wake_baseline_us"][k] <= 0:
        sys.exit(f"FAIL: wake_baseline_us/{k} is {j['wake_baseline_us'].get(k)!r}")
if "reaction" not in j:
    sys.exit("FAIL: slip-bench-iokernel's own keys (reaction, ...) are missing")
want = ["iokernel", "direct", "kernel"] if root else ["kernel"]
curves, systems = j["curves"], j["curves_config"]["systems"]
for s in want:
    rows = curves.get(s)
    if not rows:
        sys.exit(f"FAIL: no curve for {s}: {systems.get(s)}")
    for r in rows:
        for k in ("offered_rps", "achieved_rps", "p50_us", "p99_us", "p999_us", "cpu_s"):
            if not num(r.get(k)) or (k != "cpu_s" and r[k] <= 0) or r[k] < 0:
                sys.exit(f"FAIL: {s} at {r.get('offered_rps')} rps: {k} is {r.get(k)!r}")
if not root:
    for s in ("iokernel", "direct"):
        if "skipped" not in systems.get(s, {}):
            sys.exit(f"FAIL: not root, yet {s} was not reported as skipped: {systems.get(s)}")
print(f"bench iokernel smoke: reaction and curves for {', '.join(want)} have numbers")
PY
