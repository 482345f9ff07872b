#!/usr/bin/env bash
# slip-synthetic end to end. On --stack kernel (loopback) a Python client
# checks the wire format over UDP and TCP: ids and work_ns echoed, len 32,
# served_ns at least the work asked for, server-chosen service times,
# pipelined requests answered in order, padding and split headers, and that
# garbage is dropped (UDP) or closes only its own connection (TCP). Then
# SIGTERM, with a 1 s spin in progress and an idle connection open, must end
# it promptly with exit 0 and a summary whose counts match what was sent.
# As root, --stack slip on a DPDK memif port must start, print its ready line
# and exit 0 on SIGTERM (memif has no Linux peer; slip-loadgen's test drives it).
# A build without DPDK (no-dpdk) must refuse --vdev and --pci instead, saying why.
#   run_synthetic_smoke.sh SLIP_SYNTHETIC [dpdk|no-dpdk]
set -u
bin=${1:?usage: run_synthetic_smoke.sh SLIP_SYNTHETIC [dpdk|no-dpdk]}
dpdk=${2:-dpdk}
py=/usr/bin/python3
[[ -x $py ]] || { echo "SKIP: $py is missing"; exit 77; }
work=$(mktemp -d)
prefix="slip-synth-smoke-$$"
failed=0
fail() { echo "FAIL: $*"; failed=1; }
cleanup() {
  for p in ${srv_pid:-} ${idle_pid:-} ${slip_pid:-}; do kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$work"
  [[ -d /var/run/dpdk/$prefix ]] && rm -rf "/var/run/dpdk/$prefix"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# wait_ready LOG PID: up to 20 s for the ready line; fails at once if PID died.
wait_ready() {
  for _ in $(seq 200); do
    grep -q '^slip-synthetic: ready' "$1" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# stop PID: SIGTERM, then up to 5 s for it to exit (SIGKILL after). Sets
# stop_rc to its exit status and stop_ms to how long it took.
stop() {
  local t0=$(date +%s%N)
  kill -TERM "$1"
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$1" 2>/dev/null && kill -KILL "$1"
  wait "$1"
  stop_rc=$?
  stop_ms=$((($(date +%s%N) - t0) / 1000000))
}

# field NAME LINE: the value of NAME=value in a summary or ready line.
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

echo "== kernel stack on 127.0.0.1"
"$bin" --stack kernel --ip 127.0.0.1 --port 0 --kthreads 1 --udp-workers 2 --service const:50us --seed 7 \
  >"$work/kernel.log" 2>&1 &
srv_pid=$!
if ! wait_ready "$work/kernel.log" $srv_pid; then
  cat "$work/kernel.log"
  fail "kernel: no ready line"
  exit 1
fi
ready=$(grep '^slip-synthetic: ready' "$work/kernel.log")
echo "$ready"
udp_port=$(field udp_port "$ready") tcp_port=$(field tcp_port "$ready")

"$py" - "$udp_port" "$tcp_port" "$work/expect" <<'PY' || failed=1
import socket, struct, sys, time
HOST, UDP, TCP, OUT = "127.0.0.1", int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
MAGIC, CHOOSE, US = 0x53504C53, 2**64 - 1, 1000
n = {"udp": 0, "tcp": 0, "conns": 0, "bad": 0}
def req(i, work, length=32, magic=MAGIC):
    return struct.pack("<IIQQQ", magic, length, i, work, 0) + bytes(max(0, length - 32))
def check(raw, i, work, least):
    if len(raw) != 32:
        sys.exit(f"FAIL: reply to {i} is {len(raw)} bytes, not 32")
    magic, length, rid, rwork, served = struct.unpack("<IIQQQ", raw)
    if (magic, length, rid, rwork) != (MAGIC, 32, i, work):
        sys.exit(f"FAIL: reply to {i}: magic {magic:#x} len {length} id {rid} work {rwork}")
    if not least <= served < 10**9:
        sys.exit(f"FAIL: reply to {i}: served_ns {served}, wanted at least {least}")
def tcp():
    n["conns"] += 1
    c = socket.create_connection((HOST, TCP), timeout=5)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return c
def recv_n(c, k):
    b = b""
    while len(b) < k:
        d = c.recv(k - len(b))
        if not d:
            sys.exit(f"FAIL: tcp closed after {len(b)} of {k} bytes")
        b += d
    return b
def closed(c):  # the server closes it: EOF or RST, not a timeout
    try:
        return c.recv(64) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False

u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)
def udp(i, work, length=32, least=None):
    u.sendto(req(i, work, length), (HOST, UDP)); n["udp"] += 1
    check(u.recvfrom(2048)[0], i, work, work if least is None else least)
for i in range(20):
    udp(i, 200 * US)
udp(100, 0)
udp(101, 200 * US, length=1200)           # padding after the header
udp(102, CHOOSE, least=50 * US)           # --service const:50us
for g in [b"garbage", req(1, 0, magic=0x1234), struct.pack("<IIQQQ", MAGIC, 40, 2, 0, 0), req(3, 2 * 10**9), req(4, 0, length=70000)[:64]]:
    u.sendto(g, (HOST, UDP)); n["bad"] += 1   # bad magic, len != datagram, work too large, len too large
udp(103, 100 * US)                        # first reply after the garbage is this one's
print(f"udp: {n['udp']} requests answered, {n['bad']} bad datagrams dropped")

a = tcp()
for i in range(10):
    a.sendall(req(200 + i, 200 * US)); n["tcp"] += 1
    check(recv_n(a, 32), 200 + i, 200 * US, 200 * US)
works = [(300 + i, CHOOSE if i % 5 == 0 else 20 * US * (i % 3), 32 + 100 * (i % 4)) for i in range(50)]
a.sendall(b"".join(req(i, w, l) for i, w, l in works)); n["tcp"] += len(works)
got = recv_n(a, 32 * len(works))
for k, (i, w, _) in enumerate(works):
    check(got[32 * k:32 * k + 32], i, w, 50 * US if w == CHOOSE else w)
m = req(400, 100 * US, length=65536)      # the largest request, header split over three sends
for piece in (m[:5], m[5:20], m[20:]):
    a.sendall(piece); time.sleep(0.02)
n["tcp"] += 1
check(recv_n(a, 32), 400, 100 * US, 100 * US)
print(f"tcp: 10 sequential, 50 pipelined in order, a split 64 KiB request")

for g in [req(1, 0, magic=0x1234), req(2, 0, length=65537)[:32], req(3, 2 * 10**9), req(4, 0, length=16)]:
    b = tcp(); b.sendall(g); n["bad"] += 1
    if not closed(b):
        sys.exit(f"FAIL: tcp connection not closed after garbage {g[:16].hex()}")
b = tcp(); b.sendall(req(500, 0) + b"\xff" * 32); n["tcp"] += 1; n["bad"] += 1
check(recv_n(b, 32), 500, 0, 0)           # the good request before the garbage is answered
if not closed(b):
    sys.exit("FAIL: tcp connection not closed after a good request then garbage")
a.sendall(req(501, 50 * US)); n["tcp"] += 1
check(recv_n(a, 32), 501, 50 * US, 50 * US)
c = tcp(); c.sendall(req(502, 0)); n["tcp"] += 1
check(recv_n(c, 32), 502, 0, 0)
udp(503, 0)
print("garbage: 5 tcp connections closed, the others and udp still served")
open(OUT, "w").write(" ".join(f"{k}={v}" for k, v in n.items()))
PY

# An idle connection and a 1 s spin in progress must not hold up SIGTERM.
"$py" - "$tcp_port" <<'PY' &
import socket, struct, sys, time
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
c.sendall(struct.pack("<IIQQQ", 0x53504C53, 32, 900, 10**9, 0))
time.sleep(30)
PY
idle_pid=$!
sleep 0.3
stop $srv_pid; srv_pid=
kill $idle_pid 2>/dev/null; wait $idle_pid 2>/dev/null; idle_pid=
cat "$work/kernel.log"
((stop_rc == 0)) || fail "kernel: exit status $stop_rc after SIGTERM"
echo "kernel: stopped ${stop_ms} ms after SIGTERM"
((stop_ms < 2000)) || fail "kernel: took ${stop_ms} ms to stop (want well under 1 s)"
done_line=$(grep '^slip-synthetic: done' "$work/kernel.log")
[[ -n $done_line ]] || fail "kernel: no summary line"
if [[ -s $work/expect ]]; then
  read -r e_udp e_tcp e_conns e_bad < <(sed 's/[a-z]*=//g' "$work/expect")
  # +1 request and connection: the 1 s spin cut short by SIGTERM.
  [[ $(field udp_requests "$done_line") == "$e_udp" ]] || fail "kernel: udp_requests, want $e_udp"
  [[ $(field tcp_requests "$done_line") == "$((e_tcp + 1))" ]] || fail "kernel: tcp_requests, want $((e_tcp + 1))"
  [[ $(field tcp_connections "$done_line") == "$((e_conns + 1))" ]] || fail "kernel: tcp_connections, want $((e_conns + 1))"
  [[ $(field bad_requests "$done_line") == "$e_bad" ]] || fail "kernel: bad_requests, want $e_bad"
  p50=$(field served_p50_ns "$done_line")
  ((p50 >= 20000 && p50 < 1000000)) || fail "kernel: served p50 $p50 ns is not plausible"
fi

echo "== bad flags"
"$bin" --stack kernel --service bogus:1us >/dev/null 2>&1; rc=$?
((rc == 2)) || fail "--service bogus:1us exited $rc, want 2"
"$bin" --stack kernel --proto sctp >/dev/null 2>&1; rc=$?
((rc == 2)) || fail "--proto sctp exited $rc, want 2"
"$bin" --stack slip --ip 10.0.0.1 >/dev/null 2>&1; rc=$?
((rc == 2)) || fail "--stack slip without --vdev exited $rc, want 2"
out=$("$bin" --stack slip --vdev net_ring0 --pci 3b:00.0 --ip 10.0.0.1 2>&1); rc=$?
((rc == 2)) && grep -q "exactly one of --vdev" <<<"$out" || fail "--vdev with --pci: rc $rc, want 2: $out"
if [[ $dpdk == no-dpdk ]]; then
  for dev in "--vdev net_ring0" "--pci 3b:00.0"; do
    # shellcheck disable=SC2086
    out=$("$bin" --stack slip $dev --ip 10.0.0.1 2>&1); rc=$?
    ((rc == 2)) && grep -q "built without DPDK: .*; use --iokernel (shared mode, behind iokerneld) or --stack kernel" \
      <<<"$out" || fail "$dev without DPDK: rc $rc, want 2 and the reason: $out"
  done
  ((failed == 0)) && echo "synthetic smoke: all checks passed (built without DPDK: no slip-stack start/stop)"
  exit $failed
fi
out=$("$bin" --stack slip --pci 3b:00.0 --eal-args "-n '4'" --ip 10.0.0.1 2>&1); rc=$?
((rc == 2)) && grep -q "quotes are not interpreted" <<<"$out" || fail "--eal-args with quotes: rc $rc, want 2: $out"
out=$("$bin" --stack slip --pci 3b:00 --ip 10.0.0.1 2>&1); rc=$?
((rc == 1)) && grep -q '"3b:00" is not a PCI address' <<<"$out" || fail "--pci 3b:00: rc $rc, want 1: $out"

echo "== slip stack on DPDK memif"
if [[ $(id -u) -ne 0 ]]; then
  echo "slip stack part skipped: needs root (DPDK keeps its runtime files in /var/run/dpdk)"
  ((failed == 0)) || exit 1
  echo "SKIP: kernel-stack checks passed; the slip-stack start/stop needs root"
  exit 77
fi
"$bin" --stack slip --vdev "net_memif0,role=server,socket-abstract=yes,socket=/run/slip-synth-smoke-$$.sock" \
  --ip 198.18.2.1 --file-prefix "$prefix" --port 9000 >"$work/slip.log" 2>&1 &
slip_pid=$!
if wait_ready "$work/slip.log" $slip_pid; then
  sleep 0.3
  stop $slip_pid
  ((stop_rc == 0)) || fail "slip: exit status $stop_rc after SIGTERM"
  echo "slip: stopped ${stop_ms} ms after SIGTERM"
  ((stop_ms < 2000)) || fail "slip: took ${stop_ms} ms to stop"
  grep -q '^slip-synthetic: done udp_requests=0 tcp_requests=0' "$work/slip.log" || fail "slip: no summary line"
else
  fail "slip: no ready line"
fi
slip_pid=
cat "$work/slip.log"

((failed == 0)) && echo "synthetic smoke: all checks passed"
exit $failed
