#!/usr/bin/env bash
# Keeps `tools/bench/run wake` from rotting: a tiny run of each setup must
# finish and write JSON with latency and CPU numbers, and the slip server on
# receive interrupts must have counted wake-ups by interrupt (the polling
# ones none). It checks that the benchmark works, never how fast anything is.
#   run_wake_smoke.sh SLIP_BENCH_WAKE
set -u
bench=${1:?usage: run_wake_smoke.sh SLIP_BENCH_WAKE}
[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root: the benchmark makes namespaces, a tap and a veth pair"; exit 77; }
[[ -c /dev/net/tun ]] || { echo "SKIP: /dev/net/tun is missing (no TUN support)"; exit 77; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$bench" --json "$out" --reps 1 --duration 0.3 --idle-s 0.2 --settle-s 0.2 || exit 1
python3 - "$out" <<'PY'
import json, sys
cases = json.load(open(sys.argv[1]))["cases"]
num = lambda x: isinstance(x, (int, float)) and not isinstance(x, bool)
for c in ("slip-irq", "slip-poll", "slip-poll10", "kernel"):
    m = cases.get(c)
    if not m:
        sys.exit(f"FAIL: no result for {c}")
    for k in ("p50_us", "p99_us", "p999_us"):
        if not num(m.get(k)) or m[k] <= 0:
            sys.exit(f"FAIL: {c}/{k} is {m.get(k)!r}")
    for k in ("cpu_idle", "cpu_loaded"):
        if not num(m.get(k)) or m[k] < 0:
            sys.exit(f"FAIL: {c}/{k} is {m.get(k)!r}")
if not cases["slip-irq"]["rx_wakeups"]:
    sys.exit(f"FAIL: the slip server on interrupts counted {cases['slip-irq']['rx_wakeups']!r} wake-ups by interrupt")
for c in ("slip-poll", "slip-poll10"):
    if cases[c]["rx_wakeups"] != 0:
        sys.exit(f"FAIL: {c} counted {cases[c]['rx_wakeups']!r} wake-ups by interrupt with interrupts off")
print("PASS")
PY
