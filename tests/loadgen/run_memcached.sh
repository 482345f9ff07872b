#!/usr/bin/env bash
# slip-loadgen against a real memcached (one thread, loopback, kernel stack),
# text and binary protocols at a modest open-loop rate: every request answered
# without errors, timeouts or misses (the keys are preloaded), the achieved
# rate within 10% of the offered one, and memcached's own cmd_get + cmd_set
# grown by at least what slip-loadgen says it completed.
#   run_memcached.sh SLIP_LOADGEN
set -u
bin=${1:?usage: run_memcached.sh SLIP_LOADGEN}
py=/usr/bin/python3
mc=/usr/bin/memcached
for p in $py $mc; do [[ -x $p ]] || { echo "SKIP: $p is missing"; exit 77; }; done
work=$(mktemp -d)
failed=0
fail() { echo "FAIL: $*"; failed=1; }
cleanup() {
  [[ -n ${mc_pid:-} ]] && kill -TERM "$mc_pid" 2>/dev/null && wait "$mc_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
user=()
[[ $(id -u) == 0 ]] && user=(-u root)  # memcached refuses to run as root without -u
$mc -l 127.0.0.1 -p "$port" -t 1 -U 0 -m 64 "${user[@]}" >"$work/memcached.log" 2>&1 &
mc_pid=$!

# stats: "cmd_get cmd_set" from memcached's own counters.
stats() {
  $py - "$port" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"stats\r\n")
buf = b""
while not buf.endswith(b"END\r\n"):
    chunk = s.recv(65536)
    if not chunk:
        sys.exit("memcached closed the stats connection")
    buf += chunk
st = dict(l.split(" ")[1:3] for l in buf.decode().splitlines() if l.startswith("STAT "))
print(st["cmd_get"], st["cmd_set"])
EOF
}

up=0
for _ in $(seq 100); do
  stats >/dev/null 2>&1 && { up=1; break; }
  kill -0 "$mc_pid" 2>/dev/null || break
  sleep 0.1
done
if [[ $up != 1 ]]; then
  cat "$work/memcached.log"
  echo "FAIL: memcached did not start on 127.0.0.1:$port"
  exit 1
fi

rate=2000
for proto in memcached memcached-binary; do
  echo "== $proto at $rate/s"
  read -r get0 set0 < <(stats)
  out="$work/$proto"
  if ! "$bin" --stack kernel --server "127.0.0.1:$port" --proto "$proto" --rate $rate --duration 2 --warmup 0.5 \
      --conns 4 --keys 1000 --out "$out" >"$work/$proto.log" 2>&1; then
    cat "$work/$proto.log"
    fail "$proto: slip-loadgen exited non-zero"
    continue
  fi
  read -r get1 set1 < <(stats)
  grown=$(((get1 - get0) + (set1 - set0)))
  if ! $py - "$out/result.json" "$rate" "$grown" <<'EOF'; then
import json, sys
r = json.load(open(sys.argv[1]))
offered, grown = float(sys.argv[2]), int(sys.argv[3])
q = r["requests"]
print(f"  offered {r['offered_rps']:.0f}/s achieved {r['achieved_rps']:.0f}/s completed {q['completed']} "
      f"ok {q['ok']} miss {q['miss']} error {q['error']} timeouts {q['timeouts']}; "
      f"memcached cmd_get+cmd_set grew {grown}; p50 {r['latency_us']['p50']} us")
bad = []
if q["completed"] <= 0: bad.append("nothing completed")
for k in ("error", "timeouts", "miss", "conn_errors"):
    if q.get(k, 0) != 0: bad.append(f"{k} = {q[k]}")
if abs(r["achieved_rps"] - offered) > 0.10 * offered:
    bad.append(f"achieved {r['achieved_rps']:.0f}/s is not within 10% of {offered:.0f}/s")
if grown < q["completed"]:
    bad.append(f"memcached saw {grown} commands, fewer than the {q['completed']} completed")
for b in bad: print("  " + b)
sys.exit(1 if bad else 0)
EOF
    cat "$work/$proto.log"
    fail "$proto: result checks"
  fi
done

kill -0 "$mc_pid" 2>/dev/null || fail "memcached died"
[[ $failed == 0 ]] && echo "PASS"
exit $failed
