# Shared by the gateway tests (sourced): waiting for a ready line, reading a
# Prometheus sample, and checking a 4xx with its OpenAI error body. Expects
# $py, $work, fail() and failed.

# wait_ready LOG PID PROGRAM: prints the ready line, or the log and returns 1.
wait_ready() {
  for _ in $(seq 200); do
    grep -q "^$3: ready" "$1" && break
    kill -0 "$2" 2>/dev/null || break
    sleep 0.05
  done
  grep "^$3: ready" "$1" || { cat "$1"; return 1; }
}
port_of() { sed -n 's/.* port=\([0-9]*\).*/\1/p' <<<"$1"; }
# metric URL NAME: the value of the first sample named NAME (exactly, labels
# included, or NAME with any labels) on URL/metrics.
metric() { curl -s "$1/metrics" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 { print $2; exit }'; }
# expect STATUS TYPE CODE CURL-ARGS...: the status and an OpenAI error body of that type and code.
expect() {
  local want=$1 type=$2 code=$3
  shift 3
  local got
  got=$(curl -s -o "$work/err.json" -w '%{http_code}' "$@")
  [[ $got == "$want" ]] || { fail "$* -> $got, want $want"; return; }
  "$py" - "$work/err.json" "$type" "$code" <<'PY' || fail "$* -> bad error body: $(head -c 300 "$work/err.json")"
import json, sys
e = json.load(open(sys.argv[1]))["error"]
assert set(e) == {"message", "type", "param", "code"} and e["message"] and e["type"] == sys.argv[2], e
assert (e["code"] or "") == sys.argv[3], e
PY
  echo "$want $type ${code:-null}"
}
# terminate PID: SIGTERM, up to 5 s for it to exit (then SIGKILL); returns its exit status.
terminate() {
  kill -TERM "$1"
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$1" 2>/dev/null && kill -KILL "$1"
  wait "$1"
}
