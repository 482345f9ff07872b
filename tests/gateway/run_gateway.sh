#!/usr/bin/env bash
# slip-gateway end to end in front of slip-worker simulators (Linux sockets on
# 127.0.0.1, simulated time 50x): a stream checked byte by byte; non-stream;
# the official OpenAI Node client; models, health, metrics; every 4xx with an
# OpenAI error body; a client disconnect cancels the request at the worker;
# a worker killed mid-stream gives an error event then [DONE], and later
# requests go elsewhere; retries before the first token; 429 with
# Retry-After when the queue is full or its deadline passes; SIGHUP reload;
# slip-loadgen --proto sse; SIGTERM. As root, the gateway on Slipstream's
# stack (DPDK net_tap in a namespace) in front of workers in the namespace.
#   run_gateway.sh SLIP_GATEWAY SLIP_WORKER [SLIP_LOADGEN]
set -u
gw_bin=${1:?usage: run_gateway.sh SLIP_GATEWAY SLIP_WORKER [SLIP_LOADGEN]}
worker_bin=${2:?usage: run_gateway.sh SLIP_GATEWAY SLIP_WORKER [SLIP_LOADGEN]}
loadgen=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
[[ -x $py ]] || { echo "SKIP: $py is missing"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl is missing"; exit 77; }
work=$(mktemp -d)
model=test-model
key=sk-test-123
failed=0
fail() { echo "FAIL: $*"; failed=1; }
ns="slipgwy$$"
prefix="slip-gateway-$$"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  [[ -d /var/run/dpdk/$prefix ]] && rm -rf "/var/run/dpdk/$prefix"
  rm -rf "$work"
}
trap cleanup EXIT
. "$here/lib.sh"
trap 'exit 143' TERM INT


# start_worker NAME [TIME_SCALE]: a simulator on an ephemeral port; sets wport[NAME] and wpid[NAME].
declare -A wport wpid
start_worker() {
  "$worker_bin" --stack kernel --ip 127.0.0.1 --port 0 --model "$model" --time-scale "${2:-50}" --max-batch 16 --seed 3 \
    >"$work/$1.log" 2>&1 &
  wpid[$1]=$!
  pids+=($!)
  local r
  r=$(wait_ready "$work/$1.log" "${wpid[$1]}" slip-worker) || { fail "worker $1 did not start"; exit 1; }
  wport[$1]=$(port_of "$r")
}
# start_gateway NAME CONFIG: sets gport[NAME] and gpid[NAME].
declare -A gport gpid
start_gateway() {
  "$gw_bin" --stack kernel --config "$2" --port 0 >"$work/$1.log" 2>&1 &
  gpid[$1]=$!
  pids+=($!)
  local r
  r=$(wait_ready "$work/$1.log" "${gpid[$1]}" slip-gateway) || { fail "gateway $1 did not start"; exit 1; }
  echo "$r"
  gport[$1]=$(port_of "$r")
}

start_worker w1
start_worker w2
start_worker w3
cat >"$work/gw.toml" <<TOML
[server]
api_keys = ["$key"]
[routing]
policy = "least_requests"
[health]
interval_ms = 100
eject_after = 1
backoff_min_ms = 200
backoff_max_ms = 1000
[[worker]]
name = "w1"
url = "http://127.0.0.1:${wport[w1]}"
models = ["$model"]
[[worker]]
name = "w2"
url = "http://127.0.0.1:${wport[w2]}"
models = ["$model"]
TOML
start_gateway gw "$work/gw.toml"
url=http://127.0.0.1:${gport[gw]}
A=(-H "Authorization: Bearer $key")
J=(-H 'Content-Type: application/json')

echo "== streamed chat completion through the gateway, byte by byte"
body='{"model":"'$model'","messages":[{"role":"user","content":"tell me a story"}],"max_tokens":12,"stream":true,"stream_options":{"include_usage":true},"temperature":0.7}'
curl -sN -D "$work/stream.head" "${A[@]}" "${J[@]}" -d "$body" "$url/v1/chat/completions" >"$work/stream.out" || fail "curl stream"
"$py" "$here/check_stream.py" "$work/stream.head" "$work/stream.out" 12 "$model" || failed=1
# The gateway relays the worker's bytes unchanged: the same request straight to a worker gives the same events
# apart from id and created.
curl -sN "${J[@]}" -d "$body" "http://127.0.0.1:${wport[w3]}/v1/chat/completions" >"$work/direct.out"
"$py" - "$work/stream.out" "$work/direct.out" <<'PY' || failed=1
import re, sys
norm = lambda b: re.sub(rb'"id":"[^"]*","object"', b'"id":"X","object"', re.sub(rb'"created":\d+', b'"created":0', b))
a, b = norm(open(sys.argv[1], "rb").read()), norm(open(sys.argv[2], "rb").read())
if a != b:
    sys.exit(f"FAIL: the gateway's stream differs from the worker's:\n{a[:400]!r}\n{b[:400]!r}")
print("the gateway's bytes equal the worker's (id and created aside)")
PY

echo "== non-stream: same words"
nbody='{"model":"'$model'","messages":[{"role":"user","content":"tell me a story"}],"max_tokens":12}'
curl -s "${A[@]}" "${J[@]}" -d "$nbody" "$url/v1/chat/completions" >"$work/whole.json"
"$py" -c 'import json,sys; j=json.load(open(sys.argv[1])); c=j["choices"][0]["message"]["content"]; sys.exit(0 if c==open(sys.argv[2]).read() else f"FAIL: non-stream {j}")' \
  "$work/whole.json" "$work/stream.out.text" && echo "non-stream: same words as the stream" || failed=1

echo "== the official OpenAI client library (node)"
node_dir=/var/cache/slip/node
if ! command -v node >/dev/null || [[ ! -d $node_dir/node_modules/openai ]]; then
  fail "the OpenAI node client is not installed: run tools/setup"
else
  NODE_PATH=$node_dir/node_modules node "$here/openai_client.js" "$url" "$model" "$key" || failed=1
fi

echo "== models, health, metrics"
curl -s "${A[@]}" "$url/v1/models" | "$py" -c 'import json,sys; j=json.load(sys.stdin); sys.exit(0 if [m["id"] for m in j["data"]]==["test-model"] else f"FAIL: models {j}")' || failed=1
curl -s "$url/health" | grep -q '"healthy_workers":2' || fail "/health: $(curl -s "$url/health")"
curl -s "$url/metrics" >"$work/metrics.txt"
for m in time_to_first_token_seconds inter_token_latency_seconds e2e_request_latency_seconds request_queue_time_seconds; do
  grep -q "^# TYPE slip_gateway:$m histogram" "$work/metrics.txt" || fail "/metrics lacks $m"
done
ttft_n=$(sed -n 's/^slip_gateway:time_to_first_token_seconds_count \([0-9]*\)$/\1/p' "$work/metrics.txt")
[[ ${ttft_n:-0} -ge 3 ]] || fail "TTFT histogram count ${ttft_n:-missing}, want >= 3"
grep -q '^slip_gateway:requests_total{status="200"} [1-9]' "$work/metrics.txt" || fail "no 200s counted"
# The relay copies a byte once (into its buffer), more only for an event a read cut: 3 per byte before it read in place.
relayed=$(sed -n 's/^slip_gateway:relay_bytes_total \([0-9]*\)$/\1/p' "$work/metrics.txt")
copied=$(sed -n 's/^slip_gateway:relay_copied_bytes_total \([0-9]*\)$/\1/p' "$work/metrics.txt")
if [[ ${relayed:-0} -gt 0 && ${copied:-0} -ge $relayed && $copied -le $((relayed * 3 / 2)) ]]; then
  echo "relay: $copied bytes copied for $relayed relayed"
else
  fail "relay copies: ${copied:-missing} bytes copied for ${relayed:-missing} relayed; want 1 to 1.5 per byte"
fi

echo "== errors"
chat=$url/v1/chat/completions
expect 401 authentication_error invalid_api_key "${J[@]}" -d "$nbody" "$chat"
expect 401 authentication_error invalid_api_key -H 'Authorization: Bearer nope' "${J[@]}" -d "$nbody" "$chat"
expect 400 invalid_request_error "" "${A[@]}" "${J[@]}" -d '{"model": "test-model", "messages": [' "$chat"
expect 415 invalid_request_error unsupported_media_type "${A[@]}" -H 'Content-Type: text/plain' -d '{}' "$chat"
expect 404 invalid_request_error model_not_found "${A[@]}" "${J[@]}" -d '{"model":"gpt-9","messages":[]}' "$chat"
expect 400 invalid_request_error "" "${A[@]}" "${J[@]}" -d '{"model":"test-model"}' "$chat"
expect 400 invalid_request_error "" "${A[@]}" "${J[@]}" -d '{"model":"test-model","messages":[],"stream":"yes"}' "$chat"
head -c 5000000 /dev/zero | tr '\0' 'a' >"$work/huge"
expect 413 invalid_request_error "" "${A[@]}" "${J[@]}" --data-binary @"$work/huge" "$chat"
expect 404 invalid_request_error "" "$url/v1/nope"
expect 405 invalid_request_error "" "$chat"
# The worker's own 4xx passes through: prompt plus max_tokens over the context.
expect 400 invalid_request_error context_length_exceeded "${A[@]}" "${J[@]}" \
  -d '{"model":"test-model","prompt":"x","max_tokens":100000000}' "$url/v1/completions"

echo "== a client that leaves mid-stream: cancelled at the worker, slot freed"
cancelled_before=$(( $(metric "http://127.0.0.1:${wport[w1]}" 'slip_worker_requests_cancelled_total{model_name="test-model"}') + \
                     $(metric "http://127.0.0.1:${wport[w2]}" 'slip_worker_requests_cancelled_total{model_name="test-model"}') ))
"$py" "$here/stream_client.py" "${gport[gw]}" "$key" leave 5 || failed=1
ok=0
for _ in $(seq 60); do
  c=$(( $(metric "http://127.0.0.1:${wport[w1]}" 'slip_worker_requests_cancelled_total{model_name="test-model"}') + \
        $(metric "http://127.0.0.1:${wport[w2]}" 'slip_worker_requests_cancelled_total{model_name="test-model"}') ))
  ((c > cancelled_before)) && [[ $(metric "$url" slip_gateway:num_requests_running) == 0 ]] && { ok=1; break; }
  sleep 0.05
done
((ok)) && echo "worker cancelled it; gateway running=0, disconnects=$(metric "$url" slip_gateway:client_disconnects_total)" \
  || fail "no cancel at the workers, or the gateway still counts it running ($(metric "$url" slip_gateway:num_requests_running))"

echo "== a worker killed mid-stream"
"$py" "$here/stream_client.py" "${gport[gw]}" "$key" save "$work/killed.out" 3000 &
client=$!
victim=
for _ in $(seq 100); do
  [[ -s $work/killed.out ]] && break
  for w in w1 w2; do
    r=$(metric "$url" "slip_gateway:worker_requests_running{worker=\"$w\"}")
    [[ ${r:-0} -ge 1 ]] && victim=$w
  done
  [[ -n $victim ]] && break
  sleep 0.05
done
sleep 0.2
if [[ -z $victim ]]; then
  fail "the long stream never showed up at a worker"
else
  kill -KILL "${wpid[$victim]}"
  wait "$client"
  "$py" - "$work/killed.out" <<'PY' || failed=1
import json, sys
raw = open(sys.argv[1], "rb").read()
body = raw.split(b"\r\n\r\n", 1)[1]
# De-chunk.
out, rest = b"", body
while rest:
    size, rest = rest.split(b"\r\n", 1)
    n = int(size, 16)
    if n == 0:
        break
    out, rest = out + rest[:n], rest[n + 2:]
ev = out.split(b"\n\n")
if ev[-2:] != [b"data: [DONE]", b""]:
    sys.exit(f"FAIL: killed worker: stream does not end with [DONE]: {ev[-3:]}")
err = json.loads(ev[-3][6:])
if set(err) != {"error"} or set(err["error"]) != {"message", "type", "param", "code"}:
    sys.exit(f"FAIL: killed worker: last event before [DONE] is not an error: {ev[-3]!r}")
tokens = sum(1 for e in ev[:-3] if b'"content":"' in e and b'"role"' not in e)
print(f"killed worker: {tokens} tokens, then error event ({err['error']['message']}), then [DONE]")
PY
  for i in 1 2 3 4; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "${A[@]}" "${J[@]}" -d "$nbody" "$chat")
    [[ $code == 200 ]] || fail "request $i after the kill: $code"
  done
  echo "4 requests after the kill: 200"
  for _ in $(seq 40); do
    [[ $(metric "$url" "slip_gateway:worker_healthy{worker=\"$victim\"}") == 0 ]] && break
    sleep 0.05
  done
  [[ $(metric "$url" "slip_gateway:worker_healthy{worker=\"$victim\"}") == 0 ]] && echo "$victim ejected" || fail "$victim not ejected"
fi

echo "== SIGHUP: the killed worker replaced by w3"
survivor=w1
[[ $victim == w1 ]] && survivor=w2
sed -i -e "s/policy = \"least_requests\"/policy = \"round_robin\"/" \
  -e "s/name = \"$victim\"/name = \"w3\"/" -e "s/:${wport[$victim]}\"/:${wport[w3]}\"/" "$work/gw.toml"
kill -HUP "${gpid[gw]}"
for _ in $(seq 100); do grep -q '^slip-gateway: reloaded' "$work/gw.log" && break; sleep 0.05; done
grep '^slip-gateway: reloaded' "$work/gw.log" || fail "no reloaded line"
seen=""
for i in 1 2 3 4; do
  w=$(curl -s -D - -o /dev/null "${A[@]}" "${J[@]}" -d "$nbody" "$chat" | tr -d '\r' | sed -n 's/^X-Slip-Worker: //ip')
  seen="$seen $w"
done
[[ $seen == *w3* && $seen == *$survivor* && $seen != *$victim* ]] && echo "after reload, served by:$seen" \
  || fail "after reload, served by:$seen (want w3 and $survivor, never $victim)"
echo 'this is = not toml [' >"$work/bad.toml"
cp "$work/gw.toml" "$work/good.toml"
cp "$work/bad.toml" "$work/gw.toml"
kill -HUP "${gpid[gw]}"
for _ in $(seq 100); do grep -q 'reload failed' "$work/gw.log" && break; sleep 0.05; done
grep -q 'reload failed, keeping the running configuration' "$work/gw.log" && echo "a broken config is refused on reload" \
  || fail "a broken config on reload was not reported"
[[ $(curl -s -o /dev/null -w '%{http_code}' "${A[@]}" "${J[@]}" -d "$nbody" "$chat") == 200 ]] || fail "serving after a failed reload"
cp "$work/good.toml" "$work/gw.toml"

echo "== retries before the first token, and 429 under overload"
start_worker slow 1  # real time: a long stream holds the only slot for seconds
dead_port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/small.toml" <<TOML
[routing]
policy = "round_robin"
[admission]
max_concurrency = 1
queue_size = 1
queue_timeout_ms = 400
[health]
interval_ms = 60000
eject_after = 1000
[[worker]]
name = "dead"
url = "http://127.0.0.1:$dead_port"
[[worker]]
name = "live"
url = "http://127.0.0.1:${wport[slow]}"
TOML
start_gateway small "$work/small.toml"
surl=http://127.0.0.1:${gport[small]}
for i in 1 2 3 4; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "${J[@]}" -d "$nbody" "$surl/v1/chat/completions")
  [[ $code == 200 ]] || fail "request $i with a dead worker in the pool: $code"
done
retries=$(metric "$surl" slip_gateway:upstream_retries_total)
[[ ${retries:-0} -ge 1 ]] && echo "4 x 200 with a dead worker; retries=$retries" || fail "no retries counted (${retries:-missing})"
curl -sN "${J[@]}" -d '{"model":"'$model'","prompt":"hold","max_tokens":3000,"ignore_eos":true,"stream":true}' \
  "$surl/v1/completions" >"$work/hold.out" &
hold=$!
for _ in $(seq 100); do [[ $(metric "$surl" slip_gateway:num_requests_running) == 1 ]] && break; sleep 0.02; done
curl -s -o "$work/queued.json" -w '%{http_code}' "${J[@]}" -d "$nbody" "$surl/v1/chat/completions" >"$work/queued.code" &
queued=$!
for _ in $(seq 100); do [[ $(metric "$surl" slip_gateway:num_requests_waiting) == 1 ]] && break; sleep 0.02; done
code=$(curl -s -D "$work/full.head" -o "$work/full.json" -w '%{http_code}' "${J[@]}" -d "$nbody" "$surl/v1/chat/completions")
grep -qi '^Retry-After: [1-9]' "$work/full.head" && [[ $code == 429 ]] && grep -q '"type":"rate_limit_error"' "$work/full.json" \
  && echo "queue full: 429 rate_limit_error with Retry-After" || fail "queue full: $code $(cat "$work/full.json")"
wait $queued
[[ $(cat "$work/queued.code") == 429 ]] && grep -q 'queue timeout' "$work/queued.json" && echo "queue deadline: 429" \
  || fail "queued request: $(cat "$work/queued.code") $(cat "$work/queued.json")"
kill $hold 2>/dev/null; wait $hold 2>/dev/null
for _ in $(seq 60); do [[ $(metric "$surl" slip_gateway:num_requests_running) == 0 ]] && break; sleep 0.05; done
[[ $(metric "$surl" slip_gateway:num_requests_running) == 0 ]] || fail "slot leaked after the holder left"
grep -q 'slip_gateway:rejected_total{reason="queue_full"} 1' <(curl -s "$surl/metrics") || fail "queue_full not counted"

if [[ -n $loadgen && -x $loadgen ]]; then
  echo "== slip-loadgen --proto sse through the gateway"
  "$loadgen" --stack kernel --proto sse --server 127.0.0.1:${gport[gw]} --model $model --api-key "$key" --rate 20 \
    --duration 2 --max-tokens 8 --out "$work/lg" >"$work/lg.log" 2>&1 || { cat "$work/lg.log"; fail "slip-loadgen exited $?"; }
  "$py" - "$work/lg/result.json" <<'PY' || { cat "$work/lg.log"; failed=1; }
import json, sys
r = json.load(open(sys.argv[1]))["requests"]
bad = r["error"] + r["timeouts"] + r["conn_errors"] + r["parse_errors"]
if bad or r["ok"] < 20:
    sys.exit(f"FAIL: slip-loadgen: {r}")
print(f"slip-loadgen: {r['ok']} ok, 0 errors")
PY
fi

if [[ -n $loadgen && -x $loadgen ]]; then
  echo "== slip-loadgen spreads its connections over several --server values; shared prompt prefixes"
  before2=$(metric "http://127.0.0.1:${wport[w2]}" slip_worker_requests_total)
  before3=$(metric "http://127.0.0.1:${wport[w3]}" slip_worker_requests_total)
  hits3=$(metric "http://127.0.0.1:${wport[w3]}" vllm:prefix_cache_hits_total)
  "$loadgen" --stack kernel --proto sse --server 127.0.0.1:${wport[w2]} --server 127.0.0.1:${wport[w3]} --conns 4 \
    --model $model --rate 40 --duration 1 --max-tokens 4 --shared-prefix 64 --prefix-groups 1 --prompt-tokens 8 \
    --out "$work/lg2" >"$work/lg2.log" 2>&1 || { cat "$work/lg2.log"; fail "slip-loadgen with two servers exited $?"; }
  d2=$(( $(metric "http://127.0.0.1:${wport[w2]}" slip_worker_requests_total) - before2 ))
  d3=$(( $(metric "http://127.0.0.1:${wport[w3]}" slip_worker_requests_total) - before3 ))
  h3=$(( $(metric "http://127.0.0.1:${wport[w3]}" vllm:prefix_cache_hits_total) - hits3 ))
  ((d2 >= 10 && d3 >= 10 && h3 >= 48)) && echo "two servers: $d2 and $d3 requests; shared prefix hit $h3 tokens at one" \
    || fail "two servers: $d2 and $d3 requests (want >= 10 each), prefix hits $h3 (want >= 48)"
fi

echo "== SIGTERM"
for g in gw small; do
  terminate "${gpid[$g]}"
  rc=$?
  ((rc == 0)) && grep -q '^slip-gateway: done' "$work/$g.log" && echo "$g: exit 0 with a done line" || fail "$g: exit $rc"
done

echo "== slip stack: the gateway on a DPDK net_tap port, workers and curl in a namespace"
if [[ $(id -u) -ne 0 || ! -c /dev/net/tun ]] || ! ip netns add "$ns" 2>/dev/null; then
  echo "slip stack part skipped: needs root, /dev/net/tun and network namespaces"
else
  tap="gwy$(($$ % 10000))"
  ip netns exec "$ns" ip link set lo up
  # The worker binds any address: the tap's address appears only once the gateway has made the port.
  ip netns exec "$ns" "$worker_bin" --stack kernel --port 8001 --model "$model" --time-scale 50 \
    >"$work/nsw.log" 2>&1 &
  pids+=($!)
  printf '[server]\napi_keys = ["%s"]\n[[worker]]\nurl = "http://198.18.7.1:8001"\nmodels = ["%s"]\n' "$key" "$model" \
    >"$work/ns.toml"
  ip netns exec "$ns" "$gw_bin" --stack slip --vdev "net_tap0,iface=$tap" --ip 198.18.7.2 --file-prefix "$prefix" \
    --config "$work/ns.toml" --port 8080 >"$work/nsg.log" 2>&1 &
  nsg=$!
  pids+=($nsg)
  if wait_ready "$work/nsg.log" $nsg slip-gateway >/dev/null && ip netns exec "$ns" ip addr add 198.18.7.1/24 dev "$tap" &&
     ip netns exec "$ns" ip link set "$tap" up; then
    ip netns exec "$ns" curl -sN --max-time 20 -D "$work/ns.head" "${A[@]}" "${J[@]}" -d "$body" \
      http://198.18.7.2:8080/v1/chat/completions >"$work/ns.out"
    "$py" "$here/check_stream.py" "$work/ns.head" "$work/ns.out" 12 "$model" || fail "slip stack: stream: $(head -c 300 "$work/ns.out")"
    if [[ -d $node_dir/node_modules/openai ]]; then
      NODE_PATH=$node_dir/node_modules ip netns exec "$ns" node "$here/openai_client.js" http://198.18.7.2:8080 "$model" "$key" \
        || fail "slip stack: the OpenAI client"
    fi
    terminate $nsg
    rc=$?
    ((rc == 0)) || fail "slip stack: exit status $rc after SIGTERM"
  else
    cat "$work/nsg.log"
    fail "slip stack: the gateway did not start on the tap port"
  fi
fi

((failed == 0)) && echo "gateway: all checks passed"
exit $failed
