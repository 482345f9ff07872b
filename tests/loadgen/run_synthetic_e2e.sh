#!/usr/bin/env bash
# slip-loadgen against apps/synthetic, end to end.
#   run_synthetic_e2e.sh LOADGEN SYNTHETIC kernel|slip|errors
# kernel: both on Linux sockets over loopback; slip: both on Slipstream's stack
# over a DPDK memif pair (needs root). Each runs UDP and TCP open loop and a
# closed loop, and checks result.json: every scheduled request answered, the
# achieved rate near the offered one, and latencies that include the 200 us
# the server spins (so the clock measures the server, not a constant).
# errors: bad flags exit 2 with a message; an unreachable server is a clear
# error within the connect timeout; a server killed mid-run is counted as a
# connection error and the run still finishes and writes its results.
set -u
lg=${1:?usage: run_synthetic_e2e.sh LOADGEN SYNTHETIC kernel|slip|errors}
syn=${2:?}
mode=${3:?}
py=/usr/bin/python3
work=$(mktemp -d)
failed=0
pids=()
fail() { echo "FAIL: $*"; failed=1; }
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$work" /tmp/slip-lg-e2e-$$.sock
  rm -rf /var/run/dpdk/slip-lg-e2e-$$-*
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# start_server LOG ARGS...: starts slip-synthetic, waits up to 20 s for its ready line.
start_server() {
  local log=$1; shift
  "$syn" "$@" >"$log" 2>&1 &
  srv=$!
  pids+=("$srv")
  for _ in $(seq 200); do
    grep -q '^slip-synthetic: ready' "$log" && return 0
    kill -0 "$srv" 2>/dev/null || break
    sleep 0.1
  done
  echo "server did not start:"; tail -20 "$log"; return 1
}

# check RESULT_DIR NAME MINLAT_US: the run's counts and latencies make sense.
check() {
  "$py" - "$1/result.json" "$2" "$3" <<'PY' || failed=1
import json, sys
path, name, min_us = sys.argv[1], sys.argv[2], float(sys.argv[3])
r = json.load(open(path))
q, lat = r["requests"], r["latency_us"]
errs = []
if q["completed"] <= 0: errs.append("nothing completed")
# UDP may lose datagrams (a socket buffer overflows while the server is off
# its CPU, as beside a busy neighbour): up to 1% of them may time out, and
# every one sent is either answered or timed out. TCP loses nothing.
lost_ok = q["sent"] // 100 if "udp" in name else 0
if q["timeouts"] > lost_ok: errs.append(f"timeouts = {q['timeouts']} (at most {lost_ok} allowed)")
for k in ("dropped", "conn_errors", "parse_errors", "error"):
    if q[k]: errs.append(f"{k} = {q[k]}")
if q["completed"] + q["timeouts"] != q["sent"]:
    errs.append(f"sent {q['sent']} but completed {q['completed']} and timed out {q['timeouts']}")
if r["offered_rps"] > 0 and not 0.85 * r["offered_rps"] <= r["achieved_rps"] <= 1.15 * r["offered_rps"]:
    errs.append(f"achieved {r['achieved_rps']:.0f} of {r['offered_rps']:.0f} req/s")
if not min_us <= lat["p50"] <= lat["p99"] <= lat["max"]:
    errs.append(f"latency p50 {lat['p50']} p99 {lat['p99']} max {lat['max']} (p50 must be >= {min_us} us)")
if r["config"]["proto"] not in name: errs.append(f"config.proto is {r['config']['proto']}")
if not r["git_rev"]: errs.append("no git_rev")
print(f"{name}: achieved {r['achieved_rps']:.0f}/s completed {q['completed']} p50 {lat['p50']:.0f}us p99 {lat['p99']:.0f}us")
if errs: print(f"FAIL: {name}: " + "; ".join(errs)); sys.exit(1)
PY
}

# run_loads ARGS...: UDP and TCP open loop, then a closed loop, with the given stack flags.
run_loads() {
  local proto
  for proto in synthetic-udp synthetic-tcp; do
    if ! "$lg" "$@" --proto "$proto" --rate 2000 --duration 2 --warmup 0.5 --conns 2 --work const:200us \
        --progress 0 --out "$work/$proto" >"$work/$proto.log" 2>&1; then
      cat "$work/$proto.log"; fail "$proto run failed"; continue
    fi
    check "$work/$proto" "$proto" 200
  done
  if "$lg" "$@" --proto synthetic-tcp --mode closed --conns 2 --depth 2 --duration 1 --warmup 0.2 \
      --work const:200us --progress 0 --out "$work/closed" >"$work/closed.log" 2>&1; then
    check "$work/closed" "synthetic-tcp (closed loop)" 200
  else
    cat "$work/closed.log"; fail "closed-loop run failed"
  fi
}

case $mode in
kernel)
  port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  start_server "$work/srv.log" --stack kernel --ip 127.0.0.1 --port "$port" --service const:1us || exit 1
  run_loads --stack kernel --server "127.0.0.1:$port"
  ;;
slip)
  if [[ $(id -u) -ne 0 ]]; then echo "SKIP: the slip stack on DPDK memif needs root"; exit 77; fi
  sock=/tmp/slip-lg-e2e-$$.sock
  start_server "$work/srv.log" --stack slip --vdev "net_memif0,role=server,socket=$sock" --ip 198.18.0.1 \
    --file-prefix "slip-lg-e2e-$$-srv" --port 9000 --service const:1us || exit 1
  run_loads --stack slip --vdev "net_memif0,role=client,socket=$sock" --ip 198.18.0.2 \
    --file-prefix "slip-lg-e2e-$$-lg" --server 198.18.0.1:9000 --connect-timeout 10
  ;;
errors)
  # Bad flags: exit 2 and a message naming the problem.
  for args in "--rate 100" "--server nowhere --rate 100" "--server 127.0.0.1:9 --proto gopher" \
              "--server 127.0.0.1:9 --rate -5" "--server 127.0.0.1:9 --arrival zipf" \
              "--server 127.0.0.1:9 --work exp:" "--server 127.0.0.1:9 --stack slip"; do
    # shellcheck disable=SC2086
    "$lg" $args >"$work/bad.log" 2>&1
    rc=$?
    if [[ $rc -ne 2 ]] || ! grep -qiE 'error|required|invalid|not|unknown' "$work/bad.log"; then
      cat "$work/bad.log"; fail "'$args' gave exit $rc"
    fi
  done
  # Unreachable: a TCP port nobody listens on, and a UDP one nobody answers.
  free=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  for proto in synthetic-tcp synthetic-udp; do
    t0=$(date +%s)
    "$lg" --server "127.0.0.1:$free" --proto $proto --rate 100 --duration 1 --connect-timeout 2 \
      --out "$work/unreach" >"$work/unreach.log" 2>&1
    rc=$? dt=$(($(date +%s) - t0))
    if [[ $rc -ne 1 ]] || ((dt > 6)) || ! grep -qE 'cannot connect|no answer' "$work/unreach.log"; then
      cat "$work/unreach.log"; fail "$proto to a dead port: exit $rc after ${dt}s"
    else
      echo "unreachable $proto: $(tail -1 "$work/unreach.log")"
    fi
  done
  # The server dies in the middle of a TCP run: counted, and the run finishes.
  start_server "$work/srv.log" --stack kernel --ip 127.0.0.1 --port 0 --service const:1us || exit 1
  port=$(sed -n 's/.* tcp_port=\([0-9]*\).*/\1/p' "$work/srv.log")
  "$lg" --server "127.0.0.1:$port" --proto synthetic-tcp --rate 1000 --duration 3 --warmup 0 --conns 3 \
    --progress 0 --out "$work/killed" >"$work/killed.log" 2>&1 &
  lgpid=$!
  pids+=("$lgpid")
  sleep 1.5
  kill -KILL "$srv"
  wait "$lgpid"
  rc=$?
  "$py" - "$work/killed/result.json" "$rc" <<'PY' || { cat "$work/killed.log"; failed=1; }
import json, sys
rc = int(sys.argv[2])
try:
    q = json.load(open(sys.argv[1]))["requests"]
except OSError as e:
    sys.exit(f"FAIL: no result.json after the server died (exit {rc}): {e}")
print("server killed mid-run:", q)
if rc != 0: sys.exit(f"FAIL: exit {rc}")
if q["conn_errors"] != 3: sys.exit(f"FAIL: conn_errors {q['conn_errors']}, wanted 3")
if q["completed"] <= 0 or q["dropped"] <= 0: sys.exit("FAIL: expected completions before and drops after the kill")
if q["scheduled"] != q["sent"] + q["dropped"] - 0 and q["scheduled"] < q["completed"]: sys.exit("FAIL: counts do not add up")
PY
  ;;
*) echo "unknown mode $mode"; exit 2 ;;
esac
((failed == 0)) && echo "PASS ($mode)"
exit $failed
