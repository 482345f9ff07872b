#!/usr/bin/env bash
# Receive interrupts on a net_tap port: slip-netecho, told to poll its port
# only every 2 s, must still answer every UDP and TCP echo from a Linux
# client in a namespace of the test's own, each request arriving while its
# kthread sleeps, and count a wake-up by interrupt for most of them. With
# --no-rx-interrupts the same run counts none (the control: the counter and
# the log line are not given for free).
#   run_rx_interrupts.sh SLIP_NETECHO
# Exits 77 (meson: skipped) with the reason when root, TUN or a tool is missing.
set -u
netecho=${1:?usage: run_rx_interrupts.sh SLIP_NETECHO}
source "$(dirname "$0")/../../iokernel/netns_test_lib.sh"  # skips without root, TUN or python3
netns_setup rxi
tap=$dev
cleanup_pids=slip_pid
ip netns add "$ns" || { echo "SKIP: cannot create a network namespace"; exit 77; }
in_ns() { ip netns exec "$ns" "$@"; }
in_ns ip link set lo up

# One run: netecho with the given flags, 30 UDP and 10 TCP echoes spaced
# 10 ms apart (long enough for its kthread to park between them). Prints the
# number of receive-interrupt wake-ups netecho counted.
run_once() {
  ip netns exec "$ns" "$netecho" --vdev "net_tap0,iface=$tap" --ip 198.18.0.2 --file-prefix "$prefix" \
    --nic-poll-us 2000000 "$@" >"$work/slip.log" 2>&1 &
  slip_pid=$!
  for _ in $(seq 100); do in_ns ip link show "$tap" >/dev/null 2>&1 && break; sleep 0.1; done
  in_ns ip link show "$tap" >/dev/null 2>&1 || { cat "$work/slip.log"; fail "tap device never appeared"; return; }
  in_ns ip addr add 198.18.0.1/24 dev "$tap"
  in_ns ip link set "$tap" up
  wait_for "$work/slip.log" "udp+tcp echo" 10
  in_ns "$py" - <<'PY' || failed=1
import socket, sys, time
bad = 0
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(5)
for i in range(30):
    time.sleep(0.01)
    u.sendto(b"udp %d" % i, ("198.18.0.2", 7))
    try:
        d, _ = u.recvfrom(100)
        bad += d != b"udp %d" % i
    except socket.timeout:
        bad += 1
t = socket.create_connection(("198.18.0.2", 7), timeout=5)
for i in range(10):
    time.sleep(0.01)
    msg = b"tcp %d\n" % i
    t.sendall(msg)
    got = b""
    while len(got) < len(msg):
        got += t.recv(100)
    bad += got != msg
t.close()
print("echoes wrong or missing:", bad)
sys.exit(1 if bad else 0)
PY
  kill "$slip_pid"
  wait "$slip_pid"
  slip_pid=
  cat "$work/slip.log" | grep -E "receive interrupts|frames"
  wakeups=$(sed -n 's/.* \([0-9]*\) receive-interrupt wake-ups.*/\1/p' "$work/slip.log")
}

echo "== with receive interrupts"
run_once
grep -q "receive interrupts on" "$work/slip.log" || fail "netecho did not turn receive interrupts on"
[[ ${wakeups:-0} -ge 20 ]] || fail "only ${wakeups:-none} of 40 requests woke netecho by interrupt"

echo "== control: --no-rx-interrupts"
run_once --no-rx-interrupts
grep -q "receive interrupts off" "$work/slip.log" || fail "netecho did not say receive interrupts are off"
[[ ${wakeups:-x} == 0 ]] || fail "counted ${wakeups:-none} interrupt wake-ups with interrupts off"

[[ $failed == 0 ]] && echo "PASS" || exit 1
