#!/usr/bin/env bash
# tools/experiments without real servers: hand-written loadgen results are
# aggregated (medians, min, max, failed reps left out) and plotted; a sweep
# over a fake server and a fake loadgen stops at saturation, cleans up its
# server, and reports a server that fails to start with its log tail.
#   test_experiments.sh   (from anywhere; needs /usr/bin/python3 with matplotlib)
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
exp=$root/tools/experiments
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$py" -c 'import matplotlib' 2>/dev/null || fail "/usr/bin/python3 has no matplotlib"

# --- 1. aggregation of hand-written results: 2 systems x 3 rates x 2 reps (+ a failed and a third rep) ---
# result SYSTEM RATE REP ACHIEVED P50 P99 P999 [RC]: one loadgen result.json,
# plus the runner's status.json when RC is given.
result() {
  local d=$tmp/run/$1/$2/rep$3
  mkdir -p "$d"
  cat >"$d/result.json" <<EOF
{"tool":"slip-loadgen","git_rev":"test","started_at":"2026-12-01T00:00:00Z","config":{"rate":$2},
 "offered_rps":$2,"achieved_rps":$4,"duration_s":2,
 "requests":{"sent":1000,"completed":990,"ok":990,"miss":0,"error":0,"timeouts":10,"dropped":0,"conn_errors":0},
 "latency_us":{"min":1,"mean":$5,"p50":$5,"p90":$6,"p99":$6,"p999":$7,"p9999":$7,"max":$7},
 "send_lag_us":{"min":0,"mean":1,"p50":1,"p90":2,"p99":3,"p999":4,"p9999":5,"max":6}}
EOF
  [[ -n ${8:-} ]] && echo "{\"rc\": $8}" >"$d/status.json"
  return 0
}
result alpha 10000 0  9990  10  20  40
result alpha 10000 1 10010  14  30  60
result alpha 20000 0 19900  12  25  50
result alpha 20000 1 19950  16  35  70
result alpha 40000 0 30000 100 900 2000
result alpha 40000 1 32000 300 700 3000
result alpha 40000 2 99999   1   1    1 1   # the loadgen failed: left out of the aggregate
result beta  10000 0 10000  20  40  80
result beta  10000 1 10000  22  44  88
result beta  20000 0 20000  21  50  90
result beta  20000 1 19000  25  60 100
result beta  40000 0 40000  30  80 200
result beta  40000 1 39000  50 120 400
result beta  40000 2 38000 100 100 300   # a third rep: the median is not the mean

"$py" "$exp/run" --aggregate "$tmp/run" >"$tmp/agg.log" 2>&1 || { cat "$tmp/agg.log"; fail "run --aggregate failed"; }
for f in data.json data.csv run.png; do [[ -s $tmp/run/$f ]] || fail "--aggregate wrote no $f"; done

"$py" - "$tmp/run" <<'PY' || exit 1
import csv, json, sys
run = sys.argv[1]
rows = {(r["system"], int(r["offered_rps"])): r for r in csv.DictReader(open(f"{run}/data.csv"))}
def check(sys_, rate, col, want):
    got = float(rows[(sys_, rate)][col])
    if abs(got - want) > 1e-6 * max(1, abs(want)):
        sys.exit(f"FAIL: data.csv {sys_}@{rate} {col} = {got}, want {want}")
if len(rows) != 6:
    sys.exit(f"FAIL: data.csv has {len(rows)} rows, want 6 (2 systems x 3 rates)")
for col, want in [("latency_us.p50.median", 12), ("latency_us.p50.min", 10), ("latency_us.p50.max", 14),
                  ("latency_us.p99.median", 25), ("latency_us.p999.max", 60), ("achieved_rps.median", 10000)]:
    check("alpha", 10000, col, want)
for col, want in [("latency_us.p50.median", 200), ("latency_us.p99.min", 700), ("latency_us.p99.max", 900),
                  ("latency_us.p999.median", 2500), ("achieved_rps.median", 31000), ("achieved_rps.max", 32000),
                  ("n_ok", 2), ("n_failed", 1), ("saturated", 1)]:
    check("alpha", 40000, col, want)
for col, want in [("latency_us.p99.median", 55), ("achieved_rps.min", 19000), ("saturated", 0),
                  ("requests.timeouts.median", 10), ("loss_frac.median", 0.01)]:
    check("beta", 20000, col, want)
for col, want in [("latency_us.p50.median", 50), ("latency_us.p99.median", 100), ("latency_us.p999.median", 300),
                  ("latency_us.p999.max", 400), ("achieved_rps.median", 39000), ("n_ok", 3)]:
    check("beta", 40000, col, want)
d = json.load(open(f"{run}/data.json"))
if [s["name"] for s in d["systems"]] != ["alpha", "beta"]:
    sys.exit(f"FAIL: data.json systems {d['systems']}")
p = [p for p in d["points"] if p["system"] == "alpha" and p["offered_rps"] == 40000][0]
if p["reps_ok"] != [0, 1] or not p["failures"] or "exited 1" not in p["failures"][0]:
    sys.exit(f"FAIL: the failed rep is not reported: {p['reps_ok']} {p['failures']}")
PY

# A PNG of a real figure: signature, IHDR size, and more bytes than an empty canvas.
check_png() {
  "$py" - "$1" <<'PY' || exit 1
import struct, sys
b = open(sys.argv[1], "rb").read()
if b[:8] != b"\x89PNG\r\n\x1a\n" or b[12:16] != b"IHDR":
    sys.exit(f"FAIL: {sys.argv[1]} is not a PNG")
w, h = struct.unpack(">II", b[16:24])
if w < 800 or h < 400 or len(b) < 30000:
    sys.exit(f"FAIL: {sys.argv[1]} is {w}x{h}, {len(b)} bytes: too small for the figure")
PY
}
check_png "$tmp/run/run.png"
"$py" "$exp/plot.py" "$tmp/run/data.json" "$tmp/alone.png" >/dev/null || fail "plot.py alone failed"
check_png "$tmp/alone.png"

# --- 2. a sweep over fakes: saturation stops it, the server is cleaned up ----
mkdir -p "$tmp/build/apps/synthetic" "$tmp/build/tools/loadgen"
cat >"$tmp/build/apps/synthetic/slip-synthetic" <<'EOF'
#!/usr/bin/env bash
# Fake server: ready at once; on SIGTERM notes it and exits 0. "--fail" exits before ready.
[[ " $* " == *" --fail "* ]] && { echo "boom: cannot bind"; exit 3; }
echo $$ >>"$FAKE_DIR/server.pids"
trap 'echo $$ >>"$FAKE_DIR/server.terms"; exit 0' TERM
echo "slip-synthetic: ready on $*"
while true; do sleep 0.05; done
EOF
cat >"$tmp/build/tools/loadgen/slip-loadgen" <<'EOF'
#!/usr/bin/python3
# Fake loadgen: the server at 127.0.0.1:9002 saturates at 25 krps, 9001 never.
import json, sys
a = dict(zip(sys.argv[1::2], sys.argv[2::2]))
rate = float(a["--rate"])
cap = 25000 if a["--server"].endswith(":9002") else 1e9
ach = min(rate, cap)
lat = {k: 10 + rate / 1000 * (i + 1) for i, k in enumerate(["min", "mean", "p50", "p90", "p99", "p999", "p9999", "max"])}
json.dump({"tool": "slip-loadgen", "config": a, "offered_rps": rate, "achieved_rps": ach, "duration_s": 1,
           "requests": {"sent": int(rate), "completed": int(ach)}, "latency_us": lat, "send_lag_us": lat},
          open(a["--out"] + "/result.json", "w"))
EOF
chmod +x "$tmp/build/apps/synthetic/slip-synthetic" "$tmp/build/tools/loadgen/slip-loadgen"
export FAKE_DIR=$tmp

(cd "$exp" && "$py" - "$tmp" <<'PY') || exit 1
import os, sys
import figures, sweep
tmp = sys.argv[1]

# Unit checks of the stop rule: two saturated steps in a row, a failed step counts as saturated.
S = sweep.should_stop
assert not S([(10, 10), (20, 15)], 0.8, 2), "one saturated step must not stop a sweep"
assert S([(10, 10), (20, 15), (30, 20)], 0.8, 2), "two saturated steps must stop it"
assert not S([(10, 5), (20, 20)], 0.8, 2), "saturated steps must be consecutive"
assert S([(10, 10), (20, None), (30, None)], 0.8, 2), "failed steps count as saturated"
assert not S([(10, 8)], 0.8, 2) and not S([(10, 8.0)], 0.8, 1), "exactly 80% is not saturated"

def system(name, port, extra=(), root=False):
    return {"name": name, "label": name, "needs_root": root, "address": f"127.0.0.1:{port}",
            "server": {"binary": figures.SERVER_BIN, "args": ["--port", str(port), *extra, "--p", "{server_prefix}"],
                       "ready": "slip-synthetic: ready", "ready_timeout_s": 10},
            "loadgen": {"args": ["--file-prefix", "{loadgen_prefix}"]}}

fig = {"title": "fake", "steps_rps": [10000, 20000, 30000, 40000, 50000, 60000], "duration_s": 1, "warmup_s": 0,
       "reps": 2, "saturation": {"ratio": 0.8, "steps": 2},
       "loadgen": {"binary": figures.LOADGEN_BIN, "args": []},
       "systems": [system("fast", 9001), system("slow", 9002), system("rooty", 9003, root=True)],
       "plot": {"percentiles": ["p50", "p99"]}}
run = f"{tmp}/sweep"
lines = []
e = sweep.Experiment("fake", fig, figures.settings(fig), run, f"{tmp}/build", tmp, is_root=False, out=lines.append)
e.check()
e.prepare_dir()
data = e.run()
e.janitor.cleanup()
log = "\n".join(lines)
has = lambda *p: os.path.exists(os.path.join(run, *p))
for rep in (0, 1):
    for rate in fig["steps_rps"]:
        assert has("fast", str(rate), f"rep{rep}", "result.json"), f"fast {rate} rep{rep} missing\n{log}"
    # slow: 30k achieves 25k (>= 80%), 40k and 50k do not: the sweep stops after 50k.
    for rate in (10000, 20000, 30000, 40000, 50000):
        assert has("slow", str(rate), f"rep{rep}", "result.json"), f"slow {rate} rep{rep} missing\n{log}"
    assert not has("slow", "60000"), f"slow ran past saturation\n{log}"
assert not has("rooty"), "a root-only system ran without root"
st = {s["name"]: s for s in data["systems"]}
assert st["rooty"]["status"] == "skipped" and "root" in st["rooty"]["reason"], st
assert st["fast"]["status"] == "ok" and st["slow"]["status"] == "ok", st
assert "slow: saturated" in log and "ETA" in log, log
sat = [p["offered_rps"] for p in data["points"] if p["system"] == "slow" and p["saturated"]]
assert sat == [40000, 50000], sat
# Every server started was stopped with SIGTERM and is gone.
pids = open(f"{tmp}/server.pids").read().split()
terms = open(f"{tmp}/server.terms").read().split()
assert len(pids) == 4 and sorted(pids) == sorted(terms), (pids, terms)
for pid in pids:
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z", pid
for f in ("data.json", "data.csv", "meta.json", "run.json"):
    assert has(f), f
import json
meta = json.load(open(os.path.join(run, "meta.json")))
assert meta["machine"]["nproc"] >= 1 and "cpu_model" in meta["machine"] and "fast" in meta["placement"], meta

# A server that fails to start: the system is marked as an error, with its log tail.
fig["systems"] = [system("broken", 9001, extra=["--fail"])]
lines.clear()
e = sweep.Experiment("fake", fig, figures.settings(fig, quick=True, reps=1), f"{tmp}/broken", f"{tmp}/build", tmp,
                     out=lines.append)
e.check()
e.prepare_dir()
data = e.run()
e.janitor.cleanup()
log = "\n".join(lines)
assert data["systems"][0]["status"] == "error", data["systems"]
assert "exited with status 3" in log and "boom: cannot bind" in log, log
PY
check_png_sweep() { "$py" "$exp/plot.py" "$tmp/sweep/data.json" "$tmp/sweep.png" >/dev/null && check_png "$tmp/sweep.png"; }
check_png_sweep || fail "plot of the fake sweep"

# --- 3. the command line's errors --------------------------------------------
out=$("$py" "$exp/run" no-such-figure 2>&1); rc=$?
[[ $rc -eq 2 && $out == *"unknown figure 'no-such-figure'"* && $out == *synthetic-stacks* ]] ||
  fail "unknown figure: rc $rc: $out"
mkdir -p "$tmp/empty-build"
out=$("$py" "$exp/run" synthetic-stacks --quick --build "$tmp/empty-build" --out "$tmp/x" 2>&1); rc=$?
[[ $rc -eq 1 && $out == *"build first: ninja -C"* ]] || fail "missing binaries: rc $rc: $out"
out=$("$py" "$exp/run" --list 2>&1) && [[ $out == synthetic-stacks* ]] || fail "--list: $out"

echo "experiments: aggregation, plot, saturation stop, server cleanup and errors all as expected"
