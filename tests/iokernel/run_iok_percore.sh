#!/usr/bin/env bash
# The per-core dataplane in shared mode, as root: iokerneld on net_tap in a
# namespace the test makes, one slip-netecho runtime with 2 kthreads, both
# always granted and spinning, so iokerneld steers every flow over both
# rings. Linux peers in the namespace run TCP and UDP flows into it while it
# dials 16 connections to a Linux echo server from both kthreads. Checked
# from the runtime's own counters at stop: both rings carried frames, no
# segment arrived on another kthread's ring than its flow's, no stack-wide
# lock was taken on the receive path, and every dialed connection lives on
# the kthread that dialed it. With `parallel`, also that some bursts ran at
# the same moment on both kthreads and that most frames were handled by
# their ring's own kthread: that needs a CPU for each party (iokerneld, two
# kthreads, the peers), so it exits 77 on a machine with fewer than 4.
#   run_iok_percore.sh IOKERNELD SLIP_NETECHO [parallel]
set -u
iokd=${1:?usage: run_iok_percore.sh IOKERNELD SLIP_NETECHO [parallel]}
echo_bin=${2:?}
mode=${3:-}
if [[ $mode == parallel ]] && (($(nproc) < 4)); then
  echo "SKIP: $(nproc) CPUs: iokerneld, two spinning kthreads and the Linux peers need 4 to run at once;" \
       "here they take turns, and an owner that waits for a CPU has its ring stolen (see iokerneld_percore's" \
       "counters: most frames stolen, bursts seldom or never concurrent)"
  exit 77
fi
source "$(dirname "$0")/netns_test_lib.sh"

netns_setup pc
cleanup_pids="rt_pid srv_pid iokd_pid"
in_ns() { ip netns exec "$ns" "$@"; }

echo "== iokerneld on net_tap ($dev) in namespace $ns"
ip netns add "$ns" || { echo "SKIP: cannot create a network namespace"; exit 77; }
in_ns ip link set lo up
ip netns exec "$ns" "$iokd" --vdev "net_tap0,iface=$dev" --file-prefix "$prefix" --socket "$sock" --idle-backoff \
  >"$work/d.log" 2>&1 &
iokd_pid=$!
wait_for "$work/d.log" "listening on" 20 || { cat "$work/d.log"; fail "iokerneld did not start"; exit 1; }
in_ns ip link set "$dev" up
in_ns ip addr add 198.18.0.1/24 dev "$dev"

# A Linux echo server for the runtime's dials.
ip netns exec "$ns" "$py" -c '
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.0.1", 9000)); s.listen(64)
def echo(c):
    while True:
        d = c.recv(65536)
        if not d: break
        c.sendall(d)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=echo, args=(c,), daemon=True).start()
' &
srv_pid=$!
# Wait for the listener (the deadline only catches hangs; the dials below fail without it).
for _ in $(seq 400); do in_ns ss -Htln 'sport = :9000' | grep -q . && break; sleep 0.05; done

"$echo_bin" --iokernel "$sock" --ip 198.18.0.2 --kthreads 2 --guaranteed-cores 2 --spin \
  --dial 198.18.0.1:9000 --dial-count 16 --dial-message "per-core dial" >"$work/rt.log" 2>&1 &
rt_pid=$!
wait_for "$work/rt.log" "udp+tcp echo" 10 || { cat "$work/rt.log"; fail "the runtime did not attach"; exit 1; }
# Wait for all 16 dials to report (the deadline only catches hangs; dials_ok below checks them).
for _ in $(seq 400); do (($(grep -c "^dial" "$work/rt.log") >= 16)) && break; sleep 0.05; done

echo "== 8 TCP flows and 4 UDP flows from Linux at once"
in_ns "$py" - <<'EOF' || fail "Linux flows into the runtime"
import socket, sys, threading
errors = []
def tcp(i):
    try:
        data = bytes((i * 31 + k) & 0xff for k in range(256 * 1024))
        c = socket.create_connection(("198.18.0.2", 7), timeout=10)
        got = bytearray()
        def send():
            for off in range(0, len(data), 16384):
                c.sendall(data[off:off + 16384])
        t = threading.Thread(target=send)
        t.start()
        while len(got) < len(data):
            chunk = c.recv(65536)
            if not chunk:
                break
            got += chunk
        t.join()
        c.close()
        if bytes(got) != data:
            errors.append(f"tcp flow {i}: {len(got)} of {len(data)} bytes, equal prefix {data.startswith(bytes(got))}")
    except Exception as e:
        errors.append(f"tcp flow {i}: {e}")
def udp(i):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    done = 0
    for n in range(400):
        msg = f"flow {i} datagram {n}".encode()
        s.sendto(msg, ("198.18.0.2", 7))
        try:
            if s.recvfrom(2048)[0] == msg:
                done += 1
        except socket.timeout:
            pass
    if done < 390:
        errors.append(f"udp flow {i}: {done} of 400 echoed")
ts = [threading.Thread(target=tcp, args=(i,)) for i in range(8)] + [threading.Thread(target=udp, args=(i,)) for i in range(4)]
for t in ts: t.start()
for t in ts: t.join()
for e in errors: print(e)
sys.exit(1 if errors else 0)
EOF

kill -TERM "$rt_pid"
wait "$rt_pid" || fail "the runtime exited $?"
rt_pid=

echo "== the runtime's counters"
grep -E "^slip-netecho: (queue|stack-wide)" "$work/rt.log"
dials_ok=$(grep -c "^dial 198.18.0.1:9000: echo ok" "$work/rt.log")
((dials_ok == 16)) || fail "$dials_ok of 16 dials echoed: $(grep '^dial' "$work/rt.log")"
# "from kthread K, connection on queue Q of kthread K2": Q and K2 must be K.
mismatch=$(grep "^dial" "$work/rt.log" | awk '{k=$7; sub(",", "", k); if ($11 != k || $14 != k) print}')
[[ -z $mismatch ]] || fail "dialed connections not on their dialing kthread: $mismatch"
for k in 0 1; do
  grep -q "from kthread $k," "$work/rt.log" || fail "no dial ran on kthread $k"
done
read -r frames stolen concurrent crossed < <(awk '/^slip-netecho: queue/ {
    for (i = 1; i <= NF; i++) v[$i] = $(i + 1)
    f += v["rx"]; s += v["stolen"]; c += v["concurrent"]; x += v["from-other-queue"]
    if (v["rx"] == 0) print "idle" > "/dev/stderr"
  } END { print f + 0, s + 0, c + 0, x + 0 }' "$work/rt.log" 2>"$work/idle")
echo "frames $frames, stolen $stolen, concurrent samples $concurrent, from another queue $crossed"
[[ -s $work/idle ]] && fail "a kthread's queue handled no frames"
(($(grep -c "^slip-netecho: queue" "$work/rt.log") == 2)) || fail "the runtime did not report two queues"
((crossed == 0)) || fail "$crossed segments arrived on another kthread's ring than their flow's"
if [[ $mode == parallel ]]; then
  ((concurrent > 0)) || fail "no sampled burst ran while the other kthread was in one"
  ((stolen * 2 < frames)) || fail "$stolen of $frames frames were stolen from their kthread"
fi
grep -q "^slip-netecho: stack-wide locks on the receive path 0$" "$work/rt.log" || fail "stack-wide locks on the receive path"

kill -TERM "$iokd_pid"
wait "$iokd_pid"
iokd_pid=
((failed)) && { echo "--- daemon log"; cat "$work/d.log"; echo "--- runtime"; cat "$work/rt.log"; exit 1; }
echo "PASS"
