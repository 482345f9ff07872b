#!/usr/bin/env bash
# iokerneld's data path end to end, as root. The test makes a network
# namespace; iokerneld runs in it and owns a net_tap port (198.18.0.1/24 on
# the kernel's side). Two slip-netecho runtimes in shared mode (198.18.0.2
# with 2 kthreads, 198.18.0.3) attach over the control socket; they need no
# DPDK. Checked: ping, UDP and TCP echo to each through the port; each
# runtime gets only its own traffic (iokernelctl's per-runtime counters); a
# frame for no runtime is a counted drop (no_runtime); a third runtime dials
# the first and their TCP echo goes runtime to runtime without the port;
# kill -9 of a runtime in the middle of TCP transfers to both leaves the
# other's transfer intact (SHA-256) and every rx buffer back in the pool;
# SIGTERM exits 0.
#   run_iok_datapath.sh IOKERNELD IOKERNELCTL SLIP_NETECHO
set -u
iokd=${1:?usage: run_iok_datapath.sh IOKERNELD IOKERNELCTL SLIP_NETECHO}
ctl_bin=${2:?}
echo_bin=${3:?}
source "$(dirname "$0")/netns_test_lib.sh"

netns_setup iok
cleanup_pids="a_pid b_pid c_pid sa_pid sb_pid iokd_pid"

in_ns() { ip netns exec "$ns" "$@"; }
ctl() { "$ctl_bin" --stats-socket "$sock.stats" "$@"; }
# query EXPR: a Python expression over the stats document d; rt(ip) is that runtime.
query() {
  ctl --json | "$py" -c "import json,sys; d=json.load(sys.stdin)
rt=lambda ip: next(r for r in d['runtimes'] if r['ip']==ip)
print($1)"
}
# peer MODE IP COUNT: from the namespace, MODE udp sends COUNT datagrams (one
# at a time, 1 s each) and tcp sends COUNT KiB on one connection; exits 0
# when every byte came back from IP's echo port.
peer() {
  in_ns "$py" - "$@" <<'EOF'
import socket, sys
mode, ip, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    for i in range(n):
        msg = f"{ip} datagram {i}".encode()
        s.sendto(msg, (ip, 7))
        got, frm = s.recvfrom(2048)
        if got != msg or frm[0] != ip:
            sys.exit(f"udp {ip}: sent {msg!r}, got {got!r} from {frm}")
elif mode == "blind":  # no reply expected
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(n):
        s.sendto(b"anyone?", (ip, 7))
elif mode == "stream":  # n KiB each way at once; prints "echoed MiB" as it goes
    import hashlib, random, threading
    c = socket.create_connection((ip, 7), timeout=5)
    gen, sent_hash, got_hash = random.Random(n), hashlib.sha256(), hashlib.sha256()
    def send():
        for _ in range(n // 64):
            block = gen.randbytes(65536)
            sent_hash.update(block)
            c.sendall(block)
    t = threading.Thread(target=send)
    t.start()
    got, mark = 0, 1 << 20
    while got < n * 1024:
        chunk = c.recv(65536)
        if not chunk:
            sys.exit(f"stream {ip}: connection closed after {got} of {n * 1024} bytes")
        got_hash.update(chunk)
        got += len(chunk)
        if got >= mark:
            print(f"echoed {got >> 20} MiB", flush=True)
            mark += 1 << 20
    t.join()
    if got_hash.digest() != sent_hash.digest():
        sys.exit(f"stream {ip}: {got} bytes came back but their SHA-256 differs from what was sent")
    print(f"stream {ip}: {got} bytes, SHA-256 equal", flush=True)
else:
    data = bytes((i * 7 + 3) & 0xff for i in range(n * 1024))
    c = socket.create_connection((ip, 7), timeout=5)
    c.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = c.recv(65536)
        if not chunk:
            break
        got += chunk
    if got != data:
        sys.exit(f"tcp {ip}: sent {len(data)} bytes, got {len(got)} back (equal prefix: {data.startswith(got)})")
EOF
}
runtime() {  # runtime IP LOG [args]: a shared-mode slip-netecho in the background
  local ip=$1 log=$2
  shift 2
  "$echo_bin" --iokernel "$sock" --ip "$ip" --prefix-len 24 "$@" >"$log" 2>&1 &
}

echo "== iokerneld on net_tap ($dev) in namespace $ns"
ip netns add "$ns" || { echo "SKIP: cannot create a network namespace"; exit 77; }
in_ns ip link set lo up
ip netns exec "$ns" "$iokd" --vdev "net_tap0,iface=$dev" --file-prefix "$prefix" --socket "$sock" --idle-backoff >"$work/d.log" 2>&1 &
iokd_pid=$!
if ! wait_for "$work/d.log" "listening on" 20; then
  cat "$work/d.log"
  fail "iokerneld did not start"
  exit 1
fi
in_ns ip link set "$dev" up
in_ns ip addr add 198.18.0.1/24 dev "$dev"

runtime 198.18.0.2 "$work/a.log" --kthreads 2
a_pid=$!
runtime 198.18.0.3 "$work/b.log"
b_pid=$!
wait_for "$work/a.log" "udp+tcp echo" 10 && wait_for "$work/b.log" "udp+tcp echo" 10 ||
  fail "runtimes did not attach: $(cat "$work/a.log" "$work/b.log")"

echo "== ping, UDP and TCP echo to each runtime through the port"
for ip in 198.18.0.2 198.18.0.3; do
  in_ns ping -c 3 -i 0.2 -W 2 "$ip" >"$work/ping.out" 2>&1 || fail "ping $ip: $(cat "$work/ping.out")"
  peer udp "$ip" 20 || fail "UDP echo from $ip"
  peer tcp "$ip" 256 || fail "TCP echo of 256 KiB from $ip"
done

echo "== each runtime gets only its own traffic"
in_ns ip neigh replace 198.18.0.2 lladdr 02:53:c6:12:00:02 nud permanent dev "$dev"  # no ARP from here on
in_ns ip neigh replace 198.18.0.3 lladdr 02:53:c6:12:00:03 nud permanent dev "$dev"
in_ns ip neigh replace 198.18.0.9 lladdr 02:53:c6:12:00:09 nud permanent dev "$dev"
sleep 0.2
before=$(query "rt('198.18.0.2')['rx_frames'], rt('198.18.0.3')['rx_frames'], d['port']['drops']['no_runtime']")
peer udp 198.18.0.2 30 || fail "UDP echo from 198.18.0.2 (isolation run)"
mid=$(query "rt('198.18.0.2')['rx_frames'], rt('198.18.0.3')['rx_frames'], d['port']['drops']['no_runtime']")
peer udp 198.18.0.3 30 || fail "UDP echo from 198.18.0.3 (isolation run)"
peer blind 198.18.0.9 5
sleep 0.2
after=$(query "rt('198.18.0.2')['rx_frames'], rt('198.18.0.3')['rx_frames'], d['port']['drops']['no_runtime']")
read -r a0 b0 n0 < <(tr -d '(),' <<<"$before")
read -r a1 b1 n1 < <(tr -d '(),' <<<"$mid")
read -r a2 b2 n2 < <(tr -d '(),' <<<"$after")
echo "rx frames a: $a0 -> $a1 -> $a2, b: $b0 -> $b1 -> $b2; no_runtime drops $n0 -> $n2"
((a1 - a0 == 30 && b1 == b0)) || fail "30 datagrams to .2: .2 got $((a1 - a0)), .3 got $((b1 - b0)) (want 30 and 0)"
((b2 - b1 == 30 && a2 == a1)) || fail "30 datagrams to .3: .3 got $((b2 - b1)), .2 got $((a2 - a1)) (want 30 and 0)"
((n2 - n0 == 5)) || fail "5 datagrams to 198.18.0.9 (no runtime): no_runtime drops went up by $((n2 - n0))"

echo "== runtime to runtime: 198.18.0.4 dials 198.18.0.2 without the port"
before=$(query "d['port']['tx_frames'], d['port']['local_frames']")
runtime 198.18.0.4 "$work/c.log" --duration 3 --dial 198.18.0.2:7 --dial-message "runtime-to-runtime"
c_pid=$!
wait_for "$work/c.log" "^dial" 10
grep -q "dial 198.18.0.2:7: echo ok" "$work/c.log" || fail "runtime-to-runtime echo: $(cat "$work/c.log")"
after=$(query "d['port']['tx_frames'], d['port']['local_frames']")
read -r t0 l0 < <(tr -d '(),' <<<"$before")
read -r t1 l1 < <(tr -d '(),' <<<"$after")
echo "port tx $t0 -> $t1, local $l0 -> $l1"
((l1 - l0 >= 6)) || fail "runtime-to-runtime: only $((l1 - l0)) frames delivered locally"
((t1 - t0 <= 2)) || fail "runtime-to-runtime: $((t1 - t0)) frames went out of the port (want only the newcomer's gratuitous ARP)"
wait "$c_pid"
c_pid=

echo "== kill -9 of one runtime in the middle of TCP transfers; the other's completes intact"
# Every rx pool buffer is free, in the NIC's queue, or held by a runtime:
# what is free plus what runtimes hold must be the same before and after.
pool_before=$(query "d['port']['rx_pool_free'] + rt('198.18.0.2')['rx_held'] + rt('198.18.0.3')['rx_held']")
peer stream 198.18.0.2 8192 >"$work/stream_a.out" 2>&1 &
sa_pid=$!
peer stream 198.18.0.3 262144 >"$work/stream_b.out" 2>&1 &
sb_pid=$!
wait_for "$work/stream_b.out" "echoed 2 MiB" 30 || fail "the transfer to 198.18.0.3 did not get going: $(cat "$work/stream_b.out")"
grep -q "echoed" "$work/stream_a.out" || echo "(the transfer to 198.18.0.2 had not echoed 1 MiB yet at the kill)"
kill -KILL "$b_pid"
wait "$b_pid" 2>/dev/null
b_pid=
wait "$sa_pid" || fail "the transfer to 198.18.0.2 failed after the other runtime died: $(tail -3 "$work/stream_a.out")"
sa_pid=
tail -1 "$work/stream_a.out"
kill -KILL "$sb_pid" 2>/dev/null
wait "$sb_pid" 2>/dev/null
sb_pid=
echo "transfer to the killed runtime: $(grep -c echoed "$work/stream_b.out") MiB echoed before the kill"
wait_for "$work/d.log" "detached runtime .*198.18.0.3" 5 || fail "the killed runtime was not detached"
grep "detached runtime .*198.18.0.3" "$work/d.log"
sleep 0.3
pool_after=$(query "d['port']['rx_pool_free'] + rt('198.18.0.2')['rx_held']")
echo "rx pool buffers free or held: $pool_before before, $pool_after after"
((pool_after == pool_before)) || fail "rx pool buffers leaked or double-freed: $pool_before before, $pool_after after"
peer udp 198.18.0.2 10 || fail "UDP echo from 198.18.0.2 after the other runtime died"
peer tcp 198.18.0.2 64 || fail "TCP echo from 198.18.0.2 after the other runtime died"
ctl | tee "$work/table.out" | grep -q "drops:.*no_runtime [1-9]" || fail "iokernelctl lacks the drop counters: $(cat "$work/table.out")"

echo "== SIGTERM"
kill -TERM "$a_pid"
wait "$a_pid" || fail "runtime 198.18.0.2 exited $?"
a_pid=
kill -TERM "$iokd_pid"
wait "$iokd_pid"
rc=$?
iokd_pid=
((rc == 0)) || fail "iokerneld exited $rc"
grep -q "port net_tap0 closed" "$work/d.log" || fail "the port was not closed"

((failed)) && { echo "--- daemon log"; cat "$work/d.log"; echo "--- runtimes"; cat "$work"/[abc].log; }
((failed)) && exit 1
echo "PASS"
