#!/usr/bin/env bash
# slip-worker end to end on --stack kernel (127.0.0.1), simulated time sped
# up 50x: a streamed chat completion checked byte by byte against vLLM's and
# OpenAI's stream format (curl -N, parsed in Python); stream completions and
# "stop"; non-stream; /v1/models, /health, /metrics; 4xx with OpenAI error
# bodies; a client that leaves mid-stream is cancelled; concurrent streams
# share a batch; slip-loadgen --proto sse runs without errors; SIGTERM with a
# stream open exits 0 promptly. As root, the same server on Slipstream's
# stack (a DPDK net_tap port in a network namespace) serves a stream to curl.
#   run_worker.sh SLIP_WORKER [SLIP_LOADGEN]
set -u
bin=${1:?usage: run_worker.sh SLIP_WORKER [SLIP_LOADGEN]}
loadgen=${2:-}
py=/usr/bin/python3
[[ -x $py ]] || { echo "SKIP: $py is missing"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl is missing"; exit 77; }
work=$(mktemp -d)
model=test-model
failed=0
fail() { echo "FAIL: $*"; failed=1; }
ns="slipgw$$"
prefix="slip-gw-worker-$$"
cleanup() {
  [[ -n ${srv_pid:-} ]] && kill -KILL "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null
  [[ -n ${slip_pid:-} ]] && kill -KILL "$slip_pid" 2>/dev/null && wait "$slip_pid" 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  [[ -d /var/run/dpdk/$prefix ]] && rm -rf "/var/run/dpdk/$prefix"
  rm -rf "$work"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"
trap 'exit 143' TERM INT

"$bin" --stack kernel --ip 127.0.0.1 --port 0 --model "$model" --time-scale 50 --max-batch 16 --seed 3 \
  >"$work/worker.log" 2>&1 &
srv_pid=$!
for _ in $(seq 200); do
  grep -q '^slip-worker: ready' "$work/worker.log" && break
  kill -0 $srv_pid 2>/dev/null || break
  sleep 0.1
done
ready=$(grep '^slip-worker: ready' "$work/worker.log") || { cat "$work/worker.log"; fail "no ready line"; exit 1; }
echo "$ready"
port=$(sed -n 's/.* port=\([0-9]*\).*/\1/p' <<<"$ready")
url=http://127.0.0.1:$port

echo "== streamed chat completion, byte by byte"
body='{"model":"'$model'","messages":[{"role":"user","content":"tell me a story"}],"max_tokens":12,"stream":true,"stream_options":{"include_usage":true},"temperature":0.7}'
curl -sN -D "$work/stream.head" -H 'Content-Type: application/json' -d "$body" "$url/v1/chat/completions" >"$work/stream.out" \
  || fail "curl stream"
"$py" "$(dirname "$0")/check_stream.py" "$work/stream.head" "$work/stream.out" 12 "$model" || failed=1

echo "== same prompt non-stream: same words; completions; stop"
nbody='{"model":"'$model'","messages":[{"role":"user","content":"tell me a story"}],"max_tokens":12}'
curl -s -H 'Content-Type: application/json' -d "$nbody" "$url/v1/chat/completions" >"$work/whole.json" || fail "curl non-stream"
"$py" - "$work/whole.json" "$work/stream.out.text" <<'PY' || failed=1
import json, sys
j = json.load(open(sys.argv[1]))
c = j["choices"][0]
if j["object"] != "chat.completion" or c["message"]["role"] != "assistant" or c["finish_reason"] != "length":
    sys.exit(f"FAIL: non-stream: {j}")
if c["message"]["content"] != open(sys.argv[2]).read():
    sys.exit(f"FAIL: non-stream words differ from the stream's: {c['message']['content']!r}")
if j["usage"]["completion_tokens"] != 12 or j["usage"]["prompt_tokens_details"]["cached_tokens"] < 0:
    sys.exit(f"FAIL: usage {j['usage']}")
print("non-stream: same words, usage", j["usage"])
PY
code=$(curl -s -o "$work/chunked.json" -w '%{http_code}' -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/json' \
  -d "$nbody" "$url/v1/chat/completions")
[[ $code == 200 ]] && grep -q '"object":"chat.completion"' "$work/chunked.json" && echo "chunked request body: 200" \
  || fail "chunked request body: $code $(head -c 200 "$work/chunked.json")"
code=$(curl -s -0 -o /dev/null -w '%{http_code}' "$url/v1/models")
[[ $code == 200 ]] || fail "HTTP/1.0 request: $code"
curl -sN -H 'Content-Type: application/json' \
  -d '{"model":"'$model'","prompt":"a b c","max_tokens":3,"stream":true}' "$url/v1/completions" >"$work/cmpl.out"
"$py" - "$work/cmpl.out" <<'PY' || failed=1
import json, sys
ev = open(sys.argv[1], "rb").read().split(b"\n\n")
if ev[-2:] != [b"data: [DONE]", b""]:
    sys.exit(f"FAIL: completions stream end {ev[-2:]}")
ch = [json.loads(e[6:]) for e in ev[:-2]]
if len(ch) != 4 or any(c["object"] != "text_completion" or not c["id"].startswith("cmpl-") for c in ch) \
   or ch[-1]["choices"][0]["finish_reason"] != "length" or not all(c["choices"][0]["text"] for c in ch[:3]):
    sys.exit(f"FAIL: completions stream {ch}")
print("completions stream: 3 text chunks, finish length, [DONE]")
PY
curl -s -H 'Content-Type: application/json' -d '{"model":"'$model'","prompt":"x","max_tokens":4000}' \
  "$url/v1/completions" >"$work/stop.json"
"$py" -c 'import json,sys; c=json.load(open(sys.argv[1]))["choices"][0]; sys.exit(0 if c["finish_reason"]=="stop" and 16<=len(c["text"].split())<=512 else "FAIL: no stop: %s" % c)' \
  "$work/stop.json" && echo "finish stop before max_tokens" || failed=1

echo "== models, health"
curl -s "$url/v1/models" | "$py" -c 'import json,sys; j=json.load(sys.stdin); sys.exit(0 if j["object"]=="list" and j["data"][0]["id"]=="test-model" else f"FAIL: models {j}")' || failed=1
[[ $(curl -s -o /dev/null -w '%{http_code}' "$url/health") == 200 ]] || fail "/health"

echo "== errors"
J=(-H 'Content-Type: application/json')
expect 400 invalid_request_error "" "${J[@]}" -d '{"model": "test-model", "messages": [' "$url/v1/chat/completions"
expect 415 invalid_request_error "" -H 'Content-Type: text/plain' -d '{}' "$url/v1/chat/completions"
expect 404 invalid_request_error model_not_found "${J[@]}" -d '{"model":"gpt-9","messages":[{"role":"user","content":"x"}]}' "$url/v1/chat/completions"
expect 400 invalid_request_error "" "${J[@]}" -d '{"model":"test-model"}' "$url/v1/chat/completions"
expect 400 invalid_request_error "" "${J[@]}" -d '{"model":"test-model","prompt":"x","max_tokens":0}' "$url/v1/completions"
head -c 2000000 /dev/zero | tr '\0' 'a' >"$work/huge"
expect 413 invalid_request_error "" "${J[@]}" --data-binary @"$work/huge" "$url/v1/chat/completions"
expect 404 invalid_request_error "" "$url/v1/nope"
expect 405 invalid_request_error "" "$url/v1/chat/completions"


echo "== a client that leaves mid-stream is cancelled"
"$py" "$(dirname "$0")/stream_client.py" "$port" - leave 5 || failed=1
for _ in $(seq 40); do [[ $(metric "$url" slip_worker_requests_cancelled_total) -ge 1 ]] && break; sleep 0.05; done
cancelled=$(metric "$url" slip_worker_requests_cancelled_total)
[[ ${cancelled:-0} -ge 1 ]] && echo "cancelled=$cancelled" || fail "cancelled counter is ${cancelled:-missing}"
running=$(metric "$url" vllm:num_requests_running)
[[ $running == 0 ]] || fail "running batch still $running after the cancel"

echo "== concurrent streams share a batch"
"$py" - "$url" <<'PY' || failed=1
import json, sys, threading, urllib.request
url, errs = sys.argv[1], []
def one(i):
    b = json.dumps({"model": "test-model", "prompt": f"req {i}", "max_tokens": 40, "stream": True}).encode()
    r = urllib.request.urlopen(urllib.request.Request(url + "/v1/completions", b, {"Content-Type": "application/json"}), timeout=20)
    if not r.read().endswith(b"data: [DONE]\n\n"):
        errs.append(i)
ts = [threading.Thread(target=one, args=(i,)) for i in range(8)]
[t.start() for t in ts]
[t.join() for t in ts]
if errs:
    sys.exit(f"FAIL: streams {errs} did not end with [DONE]")
PY
batch=$(metric "$url" slip_worker_batch_size_max)
[[ ${batch:-0} -gt 1 ]] && echo "largest batch $batch" || fail "batch never above 1 (${batch:-missing})"
curl -s "$url/metrics" | grep -q '^# TYPE vllm:num_requests_waiting gauge' || fail "/metrics lacks TYPE lines"

echo "== prefix cache: a repeated long prompt hits"
long=$(printf 'w%d ' $(seq 100))
for _ in 1 2; do
  curl -s -H 'Content-Type: application/json' -d '{"model":"'$model'","prompt":"'"$long"'","max_tokens":1}' "$url/v1/completions" >"$work/pc.json"
done
cached=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["usage"]["prompt_tokens_details"]["cached_tokens"])' "$work/pc.json")
[[ $cached -ge 96 ]] && echo "cached_tokens=$cached" || fail "second identical prompt cached_tokens=$cached, want >= 96"

if [[ -n $loadgen && -x $loadgen ]]; then
  echo "== slip-loadgen --proto sse"
  "$loadgen" --stack kernel --proto sse --server 127.0.0.1:$port --model $model --rate 20 --duration 2 --max-tokens 8 \
    --out "$work/lg" >"$work/lg.log" 2>&1 || { cat "$work/lg.log"; fail "slip-loadgen exited $?"; }
  "$py" - "$work/lg/result.json" <<'PY' || { cat "$work/lg.log"; failed=1; }
import json, sys
r = json.load(open(sys.argv[1]))["requests"]
bad = r["error"] + r["timeouts"] + r["conn_errors"] + r["parse_errors"]
if bad or r["ok"] < 20:
    sys.exit(f"FAIL: slip-loadgen: {r}")
print(f"slip-loadgen: {r['ok']} ok, 0 errors")
PY
else
  echo "slip-loadgen not built: skipped"
fi

echo "== SIGTERM with a stream open"
"$py" - "$port" <<'PY' &
import json, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
b = json.dumps({"model": "test-model", "prompt": "x", "max_tokens": 5000, "ignore_eos": True, "stream": True}).encode()
s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(b) + b)
time.sleep(10)
PY
hold=$!
sleep 0.3
t0=$(date +%s%N)
kill -TERM $srv_pid
for _ in $(seq 100); do kill -0 $srv_pid 2>/dev/null || break; sleep 0.05; done
kill -0 $srv_pid 2>/dev/null && kill -KILL $srv_pid
wait $srv_pid
rc=$?
srv_pid=
ms=$((($(date +%s%N) - t0) / 1000000))
kill $hold 2>/dev/null; wait $hold 2>/dev/null
((rc == 0)) || fail "exit status $rc after SIGTERM"
((ms < 2000)) || fail "took $ms ms to stop"
echo "stopped ${ms} ms after SIGTERM"
grep '^slip-worker: done' "$work/worker.log" || fail "no done line"

echo "== slip stack (DPDK net_tap in a namespace)"
if [[ $(id -u) -ne 0 || ! -c /dev/net/tun ]] || ! ip netns add "$ns" 2>/dev/null; then
  echo "slip stack part skipped: needs root, /dev/net/tun and network namespaces"
else
  tap="gwtap$(($$ % 10000))"
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" "$bin" --stack slip --vdev "net_tap0,iface=$tap" --ip 198.18.6.2 --file-prefix "$prefix" \
    --model "$model" --time-scale 50 >"$work/slip.log" 2>&1 &
  slip_pid=$!
  for _ in $(seq 150); do grep -q '^slip-worker: ready' "$work/slip.log" && break; kill -0 $slip_pid 2>/dev/null || break; sleep 0.1; done
  if grep -q '^slip-worker: ready' "$work/slip.log" && ip netns exec "$ns" ip addr add 198.18.6.1/24 dev "$tap" &&
     ip netns exec "$ns" ip link set "$tap" up; then
    ip netns exec "$ns" curl -sN --max-time 20 -H 'Content-Type: application/json' \
      -d '{"model":"'$model'","messages":[{"role":"user","content":"hi"}],"max_tokens":20,"stream":true}' \
      http://198.18.6.2:8000/v1/chat/completions >"$work/slip.out"
    "$py" - "$work/slip.out" <<'PY' || failed=1
import json, sys
ev = open(sys.argv[1], "rb").read().split(b"\n\n")
if ev[-2:] != [b"data: [DONE]", b""]:
    sys.exit(f"FAIL: slip stack: stream did not end with [DONE]: {ev[-3:]}")
ch = [json.loads(e[6:]) for e in ev[:-2]]
if sum(1 for c in ch if c["choices"][0]["delta"].get("content")) != 20 or ch[-1]["choices"][0]["finish_reason"] != "length":
    sys.exit(f"FAIL: slip stack: wrong stream {ch}")
print("slip stack: 20 content chunks, finish length, [DONE]")
PY
    code=$(ip netns exec "$ns" curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://198.18.6.2:8000/v1/nope)
    [[ $code == 404 ]] || fail "slip stack: unknown route gave $code"
    terminate $slip_pid
    rc=$?
    slip_pid=
    ((rc == 0)) || fail "slip stack: exit status $rc after SIGTERM"
    ((failed == 0)) || { echo "-- the worker's log (slip stack):"; tail -n 60 "$work/slip.log"; }
  else
    cat "$work/slip.log"
    fail "slip stack: worker did not start on the tap port"
  fi
fi

((failed == 0)) && echo "gateway worker: all checks passed"
exit $failed
