#!/bin/bash
# End-to-end: slip-loadgen --proto http and --proto sse (kernel stack) against
# sse_server.py, a real HTTP/1.1 peer streaming 2 ms apart; result.json must
# show completions without errors and plausible streaming latencies.
# Usage: run_http_sse.sh PATH/TO/slip-loadgen
set -euo pipefail
LOADGEN=${1:?usage: run_http_sse.sh PATH/TO/slip-loadgen}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

DELAY_MS=2
/usr/bin/python3 "$HERE/sse_server.py" --port-file "$WORK/port" --delay-ms "$DELAY_MS" &
SERVER_PID=$!
for _ in $(seq 200); do
  [ -s "$WORK/port" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "sse_server.py exited early" >&2; exit 1; }
  sleep 0.05
done
[ -s "$WORK/port" ] || { echo "sse_server.py did not start listening" >&2; exit 1; }
SERVER=127.0.0.1:$(cat "$WORK/port")

COMMON=(--stack kernel --server "$SERVER" --rate 50 --duration 2 --conns 4)
echo "== http against $SERVER"
"$LOADGEN" "${COMMON[@]}" --proto http --path / --out "$WORK/http"
echo "== sse against $SERVER"
"$LOADGEN" "${COMMON[@]}" --proto sse --endpoint chat --max-tokens 8 --prompt-tokens 16 --out "$WORK/sse"

/usr/bin/python3 - "$WORK" "$SERVER" "$DELAY_MS" <<'EOF'
import json, sys, urllib.request

work, server, delay_ms = sys.argv[1], sys.argv[2], float(sys.argv[3])
failures = []

def check(ok, what):
    if not ok:
        failures.append(what)

def load(name):
    with open(f"{work}/{name}/result.json") as f:
        return json.load(f)

def p50(d, what):
    for k in ("p50", "50", "median", "p50_us"):
        if k in d:
            return float(d[k])
    failures.append(f"{what}: no p50 among {sorted(d)}")
    return 0.0

results = {name: load(name) for name in ("http", "sse")}
for name, res in results.items():
    r = res.get("requests", {})
    check(r.get("completed", 0) > 0, f"{name}: no completions")
    for k in ("error", "timeouts", "conn_errors"):
        check(r.get(k, -1) == 0, f"{name}: requests.{k} = {r.get(k)}")
    check(r.get("parse_errors", 0) == 0, f"{name}: requests.parse_errors = {r.get('parse_errors')}")

sse = results["sse"].get("sse")
check(isinstance(sse, dict), "sse: no \"sse\" section in result.json")
if isinstance(sse, dict):
    for k in ("ttft_us", "itl_us", "tpot_us", "e2e_us"):
        check(isinstance(sse.get(k), dict), f"sse: sse.{k} missing")
    check("goodput_rps" in sse, "sse: sse.goodput_rps missing")
    if not failures:
        itl, ttft, e2e = p50(sse["itl_us"], "itl_us"), p50(sse["ttft_us"], "ttft_us"), p50(sse["e2e_us"], "e2e_us")
        # The server sleeps DELAY_MS before every token; allow for timer slop below it.
        check(itl >= 0.75 * delay_ms * 1000, f"sse: itl p50 {itl} us below the server's {delay_ms} ms")
        tpot = p50(sse["tpot_us"], "tpot_us")
        check(tpot >= 0.75 * delay_ms * 1000, f"sse: tpot p50 {tpot} us below the server's {delay_ms} ms")
        check(e2e >= ttft, f"sse: e2e p50 {e2e} < ttft p50 {ttft}")

with urllib.request.urlopen(f"http://{server}/stats", timeout=5) as f:
    counts = json.load(f)
check(counts["get"] >= results["http"]["requests"]["completed"], f"server saw {counts['get']} GETs")
check(counts["chat"] >= results["sse"]["requests"]["completed"], f"server saw {counts['chat']} chat requests")
check(counts["not_found"] == 0, "server answered 404")

for name, res in results.items():
    print(name, json.dumps({"requests": res.get("requests"), "sse": res.get("sse")}))
print("server", json.dumps(counts))
if failures:
    print("FAIL:\n  " + "\n  ".join(failures), file=sys.stderr)
    sys.exit(1)
print("ok")
EOF
