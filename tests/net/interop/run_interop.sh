#!/usr/bin/env bash
# Linux interop over a real DPDK port: slip-netecho owns a net_tap device in a
# network namespace made for the test (198.18.0.0/24 inside it); Linux ping,
# curl, nc and Python sockets talk to it, it dials a Linux server, and a tshark
# capture of the whole session must show no malformed packets or bad checksums.
#   run_interop.sh SLIP_NETECHO [NETECHO_FLAGS...]   (e.g. --rtc: the echo run to completion;
#   --mtu N: the port's MTU, which the script then checks end to end)
# Exits 77 (meson: skipped) with the reason when root, TUN or a tool is missing.
set -u
netecho=${1:?usage: run_interop.sh SLIP_NETECHO [NETECHO_FLAGS...]}
shift
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; failed=1; }

[[ $(id -u) -eq 0 ]] || skip "needs root: it creates a network namespace and a tap device"
[[ -c /dev/net/tun ]] || skip "/dev/net/tun is missing: modprobe tun"
for t in ip ping curl nc python3 tshark; do
  command -v $t >/dev/null || skip "$t is missing: run tools/setup"
done

ns="slipio$$"
tap="siotap$(($$ % 10000))"
prefix="slip-interop-$$"
work=$(mktemp -d)
failed=0
cleanup() {
  [[ -n ${slip_pid:-} ]] && kill "$slip_pid" 2>/dev/null && wait "$slip_pid" 2>/dev/null
  [[ -n ${ts_pid:-} ]] && kill "$ts_pid" 2>/dev/null
  [[ -n ${py_pid:-} ]] && kill "$py_pid" 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -rf "$work" "/var/run/dpdk/$prefix" "/var/run/dpdk/$prefix-x"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
ip netns add "$ns" || skip "cannot create a network namespace"
in_ns() { ip netns exec "$ns" "$@"; }
in_ns ip link set lo up

# Background jobs run "ip netns exec" directly (it execs its command), so $!
# is the real process and kill reaches it.
# A Linux TCP echo server for slip to dial.
ip netns exec "$ns" python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9000)); s.listen(4)  # before the tap exists, so any address
while True:
    c, _ = s.accept()
    while (d := c.recv(65536)):
        c.sendall(d)
    c.close()
' 2>/dev/null &
py_pid=$!
for _ in $(seq 100); do in_ns ss -Htln 'sport = :9000' | grep -q . && break; sleep 0.05; done

ip netns exec "$ns" "$netecho" --vdev "net_tap0,iface=$tap" --ip 198.18.0.2 --file-prefix "$prefix" \
  --dial 198.18.0.1:9000 --dial-message "hello linux" "$@" >"$work/slip.log" 2>&1 &
slip_pid=$!
for _ in $(seq 100); do in_ns ip link show "$tap" >/dev/null 2>&1 && break; sleep 0.1; done
in_ns ip link show "$tap" >/dev/null 2>&1 || { cat "$work/slip.log"; fail "tap device never appeared"; exit 1; }
in_ns ip addr add 198.18.0.1/24 dev "$tap"
in_ns ip link set "$tap" up
ip netns exec "$ns" tshark -q -i "$tap" -w "$work/cap.pcapng" 2>"$work/tshark.err" &
ts_pid=$!
# tshark starts slowly (slip's dial retries its SYN meanwhile): wait until it captures.
for _ in $(seq 400); do grep -q "Capturing on" "$work/tshark.err" 2>/dev/null && break; sleep 0.05; done
grep -q "Capturing on" "$work/tshark.err" || fail "tshark did not start capturing in 20 s: $(cat "$work/tshark.err")"

echo "== ping"
in_ns ping -c 3 -i 0.2 -W 2 198.18.0.2 || fail "ping got no replies"

echo "== curl"
body=$(in_ns curl -s --max-time 5 http://198.18.0.2/)
[[ $body == "hello from slipstream" ]] || fail "curl got '$body'"
# Keep-alive: two requests on one connection.
n=$(in_ns curl -s --max-time 5 http://198.18.0.2/ http://198.18.0.2/ | grep -c "hello from slipstream")
[[ $n == 2 ]] || fail "curl keep-alive got $n responses"

echo "== nc (TCP echo)"
got=$(printf 'abc\n' | in_ns nc -N -w 3 198.18.0.2 7)
[[ $got == "abc" ]] || fail "nc echo got '$got'"

echo "== Python TCP (4 MiB round trip) and UDP echo"
in_ns python3 - <<'PY' || failed=1
import os, socket, sys, threading
data = os.urandom(4 << 20)
c = socket.create_connection(("198.18.0.2", 7), timeout=10)
threading.Thread(target=lambda: (c.sendall(data), c.shutdown(socket.SHUT_WR))).start()
got = bytearray()
while len(got) < len(data):
    b = c.recv(1 << 16)
    if not b:
        break
    got += b
if bytes(got) != data:
    sys.exit(f"FAIL: TCP echo returned {len(got)} of {len(data)} bytes or different bytes")
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(2)
for i in range(20):
    msg = f"dgram {i}".encode()
    u.sendto(msg, ("198.18.0.2", 7))
    if u.recvfrom(2048)[0] != msg:
        sys.exit("FAIL: UDP echo mismatch")
print("python: tcp 4 MiB and 20 datagrams echoed")
PY

if [[ " $* " == *" --mtu "* ]]; then
  echo "== the port's MTU"
  want_mtu=$(sed -n 's/.*--mtu \([0-9]*\).*/\1/p' <<<" $* ")
  got_mtu=$(in_ns cat "/sys/class/net/$tap/mtu")
  [[ $got_mtu == "$want_mtu" ]] || fail "the tap's kernel side has MTU $got_mtu, not $want_mtu"
  in_ns python3 - "$want_mtu" <<'PY' || failed=1
import errno, socket, sys
mtu = int(sys.argv[1])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(2)
full = bytes(range(256)) * ((mtu - 28) // 256) + b"j" * ((mtu - 28) % 256)
u.sendto(full, ("198.18.0.2", 7))
if u.recvfrom(65536)[0] != full:
    sys.exit("FAIL: a datagram of exactly one frame did not come back whole")
print(f"python: a {len(full)}-byte datagram (MTU {mtu}) echoed in one frame each way")
PY
  # A second instance on another tap, at an MTU net_tap cannot take: refused with the range.
  out=$(ip netns exec "$ns" timeout 20 "$netecho" --vdev "net_tap0,iface=${tap}x" --ip 198.18.0.3 \
    --file-prefix "$prefix-x" --mtu 9000 --duration 1 2>&1)
  rc=$?
  ((rc != 0)) || fail "slip-netecho --mtu 9000 on net_tap started (net_tap's limit is 1504)"
  grep -q "MTU 9000 is outside what the PMD takes" <<<"$out" || fail "--mtu 9000 on net_tap failed without saying why: $out"
fi

if [[ " $* " == *" --queues "* ]]; then
  # Linux's tun hashes a new flow to one of the tap's queues (and then follows
  # the queue slip answers on): with 16 flows both queues see traffic.
  echo "== 16 TCP flows over the queues"
  in_ns python3 - <<'PY' || failed=1
import socket, sys
for i in range(16):
    c = socket.create_connection(("198.18.0.2", 7), timeout=5)
    msg = f"flow {i} ".encode() * 200
    c.sendall(msg)
    got = b""
    while len(got) < len(msg):
        b = c.recv(65536)
        if not b:
            break
        got += b
    c.close()
    if got != msg:
        sys.exit(f"FAIL: flow {i} echoed {len(got)} of {len(msg)} bytes or different bytes")
print("python: 16 flows echoed")
PY
fi

echo "== slip dials Linux"
for _ in $(seq 50); do grep -q "^dial" "$work/slip.log" && break; sleep 0.1; done
grep -q "dial 198.18.0.1:9000: echo ok" "$work/slip.log" || fail "slip's dial to Linux: $(grep dial "$work/slip.log")"

sleep 0.5
kill "$ts_pid"; wait "$ts_pid" 2>/dev/null; ts_pid=
kill "$slip_pid"; wait "$slip_pid"; rc=$?; slip_pid=
cat "$work/slip.log"
((rc == 0)) || fail "slip-netecho exited with $rc"
if [[ " $* " == *" --queues "* ]]; then
  read -ra rxq <<<"$(sed -n 's/^slip-netecho: rx frames per queue: //p' "$work/slip.log")"
  read -ra txq <<<"$(sed -n 's/^slip-netecho: tx frames per queue: //p' "$work/slip.log")"
  ((${#rxq[@]} >= 2 && ${#txq[@]} == ${#rxq[@]})) || fail "slip-netecho printed no per-queue counts"
  for i in "${!rxq[@]}"; do
    # Every queue received, and answered on itself (not all on queue 0).
    ((rxq[i] > 0)) || fail "receive queue $i got no frames: rx ${rxq[*]}"
    ((txq[i] > 0)) || fail "nothing left on queue $i although it received: rx ${rxq[*]}, tx ${txq[*]}"
  done
fi

echo "== tshark"
frames=$(tshark -r "$work/cap.pcapng" 2>/dev/null | wc -l)
# Linux leaves its own transmit checksums to offload, so judge only what slip sent.
bad=$(tshark -r "$work/cap.pcapng" -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE \
  -Y "ip.src==198.18.0.2 && (ip.checksum.status==0 || tcp.checksum.status==0 || udp.checksum.status==0 || icmp.checksum.status==0)" 2>/dev/null | wc -l)
malformed=$(tshark -r "$work/cap.pcapng" -Y "_ws.malformed || _ws.expert.severity == error" 2>/dev/null | wc -l)
echo "capture: $frames frames, $bad with bad checksums from slip, $malformed malformed"
((frames > 100)) || fail "capture has only $frames frames"
if ((bad > 0)); then
  tshark -r "$work/cap.pcapng" -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE \
    -Y "ip.src==198.18.0.2 && (ip.checksum.status==0 || tcp.checksum.status==0 || udp.checksum.status==0 || icmp.checksum.status==0)" \
    2>/dev/null | head -5
  cp "$work/cap.pcapng" /tmp/slip-interop-failed.pcapng && echo "capture kept: /tmp/slip-interop-failed.pcapng"
  fail "$bad frames from slip have bad checksums"
fi
if [[ " $* " == *" --mtu "* ]]; then
  # Both ends' TCP kept to the MSS the MTU allows, and filled it (slip's data
  # segments leave 12 bytes for a SACK block beside the timestamp).
  for src in 198.18.0.1 198.18.0.2; do
    over=$(tshark -r "$work/cap.pcapng" -Y "ip.src==$src && ip.len > $want_mtu" 2>/dev/null | wc -l)
    full=$(tshark -r "$work/cap.pcapng" -Y "ip.src==$src && tcp && ip.len >= $((want_mtu - 12))" 2>/dev/null | wc -l)
    echo "from $src: $over packets over MTU $want_mtu, $full TCP segments within 12 bytes of it"
    ((over == 0)) || fail "$over packets from $src exceed MTU $want_mtu"
    ((full > 0)) || fail "no TCP segment from $src came near MTU $want_mtu"
  done
fi
((malformed == 0)) || { tshark -r "$work/cap.pcapng" -Y "_ws.malformed || _ws.expert.severity == error" 2>/dev/null | head; fail "$malformed malformed frames"; }

((failed == 0)) && echo "interop: all checks passed"
exit $failed
