#!/usr/bin/env bash
# The same slip-netecho binary on --stack kernel: curl (keep-alive), nc and
# Python TCP and UDP clients talk to it over loopback, once with the echo
# served from uthreads and once run to completion (--rtc: udp_serve and
# tcp_serve).
#   run_kernel_netecho.sh SLIP_NETECHO
set -u
netecho=${1:?usage: run_kernel_netecho.sh SLIP_NETECHO}
for t in curl nc python3; do command -v $t >/dev/null || { echo "SKIP: $t is missing: run tools/setup"; exit 77; }; done
failed=0
pid=
trap '[[ -n $pid ]] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -f /tmp/kne.$$' EXIT

# run_checks PORT_BASE [NETECHO_FLAGS...]
run_checks() {
  local base=$1; shift
  local echo_port=$base http_port=$((base + 1))
  "$netecho" --stack kernel --ip 127.0.0.1 --echo-port $echo_port --http-port $http_port --duration 20 "$@" \
    >/tmp/kne.$$ 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q "http :" /tmp/kne.$$ && break; sleep 0.05; done
  local n got
  n=$(curl -s --max-time 5 "http://127.0.0.1:$http_port/" "http://127.0.0.1:$http_port/" | grep -c "hello from slipstream")
  [[ $n == 2 ]] || { echo "FAIL ($*): curl keep-alive got $n responses"; failed=1; }
  # nc -N shuts its side down at EOF: the echo must still come back, then EOF.
  got=$(printf 'abc\n' | nc -N -w 3 127.0.0.1 $echo_port)
  [[ $got == abc ]] || { echo "FAIL ($*): nc echo got '$got'"; failed=1; }
  python3 - $echo_port "$*" <<'PY' || failed=1
import os, socket, sys, threading
port, mode = int(sys.argv[1]), sys.argv[2]
data = os.urandom(2 << 20)
c = socket.create_connection(("127.0.0.1", port), timeout=10)
threading.Thread(target=lambda: (c.sendall(data), c.shutdown(socket.SHUT_WR))).start()
got = bytearray()
while True:
    b = c.recv(1 << 16)
    if not b:
        break
    got += b
if bytes(got) != data:
    sys.exit(f"FAIL ({mode}): TCP echo returned {len(got)} of {len(data)} bytes or different bytes")
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(2)
for i in range(20):
    m = f"dgram {i}".encode()
    u.sendto(m, ("127.0.0.1", port))
    if u.recvfrom(2048)[0] != m:
        sys.exit(f"FAIL ({mode}): UDP echo mismatch")
PY
  kill $pid; wait $pid; local rc=$?
  pid=
  cat /tmp/kne.$$
  ((rc == 0)) || { echo "FAIL ($*): slip-netecho exited with $rc"; failed=1; }
}

base=$((20000 + $$ % 20000))
run_checks $base
run_checks $((base + 2)) --rtc
((failed == 0)) && echo "kernel netecho: all checks passed (uthreads and --rtc)"
exit $failed
