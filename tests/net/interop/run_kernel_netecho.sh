#!/usr/bin/env bash
# The same slip-netecho binary on --stack kernel: curl (keep-alive), nc and a
# Python UDP client talk to it over loopback.
#   run_kernel_netecho.sh SLIP_NETECHO
set -u
netecho=${1:?usage: run_kernel_netecho.sh SLIP_NETECHO}
for t in curl nc python3; do command -v $t >/dev/null || { echo "SKIP: $t is missing: run tools/setup"; exit 77; }; done
base=$((20000 + $$ % 20000))
echo_port=$base http_port=$((base + 1))
"$netecho" --stack kernel --ip 127.0.0.1 --echo-port $echo_port --http-port $http_port --duration 20 >/tmp/kne.$$ 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f /tmp/kne.$$' EXIT
for _ in $(seq 100); do grep -q "http :" /tmp/kne.$$ && break; sleep 0.05; done
failed=0
n=$(curl -s --max-time 5 "http://127.0.0.1:$http_port/" "http://127.0.0.1:$http_port/" | grep -c "hello from slipstream")
[[ $n == 2 ]] || { echo "FAIL: curl keep-alive got $n responses"; failed=1; }
got=$(printf 'abc\n' | nc -N -w 3 127.0.0.1 $echo_port)
[[ $got == abc ]] || { echo "FAIL: nc echo got '$got'"; failed=1; }
python3 - $echo_port <<'PY' || failed=1
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(2)
for i in range(20):
    m = f"dgram {i}".encode()
    u.sendto(m, ("127.0.0.1", int(sys.argv[1])))
    if u.recvfrom(2048)[0] != m:
        sys.exit("FAIL: UDP echo mismatch")
PY
kill $pid; wait $pid; rc=$?
cat /tmp/kne.$$
((rc == 0)) || { echo "FAIL: slip-netecho exited with $rc"; failed=1; }
((failed == 0)) && echo "kernel netecho: all checks passed"
exit $failed
