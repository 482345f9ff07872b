#!/usr/bin/env bash
# Core allocation end to end, as root. iokerneld (2 cores for runtimes,
# pinned with --cpus to the first two CPUs the test may use) owns a
# net_tap port in a namespace the test makes (198.18.0.1/24 on the kernel's
# side); one shared-mode slip-netecho runtime, 198.18.0.2, with 2 kthreads,
# 1 guaranteed and at most 2 cores. Checked through iokernelctl --json, on
# state and counters only, never on time: at rest the runtime holds its
# guaranteed core and its second kthread is parked; under a load step (a UDP
# flood and TCP echo flows from the namespace) the daemon grants the second
# kthread; every TCP flow's bytes come back intact while the active set
# changes; after the load stops the kthread parks and its core is counted
# free again; each granted kthread (threads slip-k0, slip-k1) is pinned to
# the CPU its grant names; SIGTERM exits 0.
#   run_iok_cores.sh IOKERNELD IOKERNELCTL SLIP_NETECHO
set -u
iokd=${1:?usage: run_iok_cores.sh IOKERNELD IOKERNELCTL SLIP_NETECHO}
ctl_bin=${2:?}
echo_bin=${3:?}
source "$(dirname "$0")/netns_test_lib.sh"

netns_setup cores
cleanup_pids="load_pid a_pid iokd_pid"
ip_rt=198.18.0.2

in_ns() { ip netns exec "$ns" "$@"; }
# query EXPR: a Python expression over the stats document d; r is the runtime.
query() {
  "$ctl_bin" --stats-socket "$sock.stats" --json | "$py" -c "import json,sys; d=json.load(sys.stdin)
r=next(x for x in d['runtimes'] if x['ip']=='$ip_rt')
print($1)"
}
# until_true EXPR SECONDS: polls query EXPR (a Python boolean) every 50 ms.
until_true() {
  for _ in $(seq $(($2 * 20))); do [[ $(query "$1" 2>/dev/null) == True ]] && return 0; sleep 0.05; done
  return 1
}

# Two CPUs this test may run on: granted kthreads are pinned to them (--cpus).
cpus=$("$py" -c "import os; c=sorted(os.sched_getaffinity(0)); print(','.join(map(str, c[:2])) if len(c) >= 2 else '')")
if [[ -n $cpus ]]; then
  cores_flag=(--cpus "$cpus")
else
  cores_flag=(--cores 2)
  echo "(one CPU only: pinning is not checked, --cores 2 instead of --cpus)"
fi

echo "== iokerneld on net_tap ($dev) in namespace $ns, 2 cores for runtimes (${cores_flag[*]})"
ip netns add "$ns" || { echo "SKIP: cannot create a network namespace"; exit 77; }
in_ns ip link set lo up
ip netns exec "$ns" "$iokd" --vdev "net_tap0,iface=$dev" --file-prefix "$prefix" --socket "$sock" --idle-backoff \
  "${cores_flag[@]}" >"$work/d.log" 2>&1 &
iokd_pid=$!
if ! wait_for "$work/d.log" "listening on" 20; then
  cat "$work/d.log"
  echo "FAIL: iokerneld did not start"
  exit 1
fi
in_ns ip link set "$dev" up
in_ns ip addr add 198.18.0.1/24 dev "$dev"
"$echo_bin" --iokernel "$sock" --ip "$ip_rt" --prefix-len 24 --kthreads 2 >"$work/a.log" 2>&1 &
a_pid=$!
wait_for "$work/a.log" "udp+tcp echo" 10 || fail "the runtime did not attach: $(cat "$work/a.log")"
in_ns ip neigh replace "$ip_rt" lladdr 02:53:c6:12:00:02 nud permanent dev "$dev"

echo "== at rest: the guaranteed core, the second kthread parked"
until_true "r['cores_granted'] == 1 and r['kthreads'][1]['state'] == 'parked' and not r['kthreads'][1]['granted']" 10 ||
  fail "at rest: $(query "r['cores_granted'], r['kthreads'][1]")"
query "'guaranteed', r['guaranteed_cores'], 'max', r['max_cores'], 'granted', r['cores_granted']"
# affinity NAME: the CPUs the runtime's thread NAME (slip-k0, ...) may run on.
affinity() {
  local t
  for t in /proc/"$a_pid"/task/*; do
    [[ $(cat "$t/comm" 2>/dev/null) == "$1" ]] && { awk '/^Cpus_allowed_list/{print $2}' "$t/status"; return; }
  done
}
if [[ -n $cpus ]]; then
  echo "== pinning: the guaranteed kthread runs on the CPU its grant names"
  until_true "r['kthreads'][0]['cpu'] is not None" 5 || fail "kthread 0's grant names no CPU: $(query "r['kthreads'][0]")"
  cpu0=$(query "r['kthreads'][0]['cpu']")
  for _ in $(seq 100); do [[ $(affinity slip-k0) == "$cpu0" ]] && break; sleep 0.05; done
  echo "kthread 0: granted CPU $cpu0, slip-k0 may run on CPUs $(affinity slip-k0)"
  [[ $(affinity slip-k0) == "$cpu0" ]] || fail "slip-k0 did not move to CPU $cpu0: it may run on $(affinity slip-k0)"
fi
before=$(query "r['core_grants'], r['core_yields'] + r['core_revokes'], r['kthreads'][1]['parks']")
read -r g0 y0 p0 < <(tr -d '(),' <<<"$before")

echo "== load step: a UDP flood and 4 TCP echo flows of 512 KiB"
in_ns "$py" - "$ip_rt" "$a_pid" >"$work/load.out" 2>&1 <<'PYEOF' &
import os, signal, socket, subprocess, sys, threading, time
ip, runtime_pid = sys.argv[1], int(sys.argv[2])
# The flows connect before the flood starts: the test is about bytes while
# cores move, not about handshakes lost in a flood.
conns = [socket.create_connection((ip, 7), timeout=30) for _ in range(4)]
stop = time.time() + 4
def flood():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    msg = b"x" * 64
    while time.time() < stop:
        for _ in range(256):
            try:
                s.sendto(msg, (ip, 7))
            except OSError:
                pass
errors = []
# send() by send(): each call has the socket's 30 s timeout, where sendall's
# 30 s would bound the whole transfer (Python 3.5+), which a slow (ASan,
# flooded) run can exceed while bytes still move.
def send_all(i, c, data):
    sent = 0
    try:
        while sent < len(data):
            sent += c.send(data[sent:sent + 65536])
    except OSError as e:
        errors.append(f"flow {i}: sending: {e} after {sent} bytes")
def tcp(i, c):
    data = bytes((j * 7 + i) & 0xff for j in range(512 * 1024))
    got = bytearray()
    try:
        threading.Thread(target=send_all, args=(i, c, data), daemon=True).start()
        while len(got) < len(data):
            chunk = c.recv(65536)
            if not chunk:
                break
            got += chunk
        if bytes(got) != data:
            errors.append(f"flow {i}: {len(got)} of {len(data)} bytes back, intact prefix: {data.startswith(bytes(got))}")
    except OSError as e:
        errors.append(f"flow {i}: {e} after {len(got)} bytes")
ts = [threading.Thread(target=flood) for _ in range(2)] + [threading.Thread(target=tcp, args=(i, c)) for i, c in enumerate(conns)]
for t in ts: t.start()
for t in ts: t.join()
print("tcp errors:", errors if errors else "none")
if errors:
    # Both ends' view of the stalled flows while they are still open: the
    # runtime prints its connections on SIGUSR1, ss shows Linux's timers.
    os.kill(runtime_pid, signal.SIGUSR1)
    print(subprocess.run(["ss", "-tinoe", "dst", ip], capture_output=True, text=True).stdout)
    # Linux's drop counters (checksum, PAWS, out of window) say why it ignored segments.
    rows = [l.split() for l in subprocess.run(["nstat", "-az"], capture_output=True, text=True).stdout.splitlines()[1:]]
    print(" ".join(f"{r[0]}={r[1]}" for r in rows if len(r) > 1 and r[1] != "0" and r[0].startswith(("Tcp", "Ip"))))
    time.sleep(0.5)
sys.exit(1 if errors else 0)
PYEOF
load_pid=$!
until_true "r['core_grants'] > $g0" 15 || fail "no second kthread was granted under load: $(query "r")"
query "'under load: granted', r['cores_granted'], 'active', r['cores_active'], 'grants', r['core_grants'], 'delay_us', r['queue_delay_us']"
wait "$load_pid" || fail "TCP echo under load: $(cat "$work/load.out"); runtime: $(query "r"); port: $(query "d['port']")"
load_pid=
cat "$work/load.out"

echo "== after the load: the second kthread parks and its core is free again"
until_true "r['cores_granted'] == 1 and r['kthreads'][1]['state'] == 'parked' and not r['kthreads'][1]['granted'] and r['core_yields'] + r['core_revokes'] > $y0 and r['kthreads'][1]['parks'] > $p0" 15 ||
  fail "after the load: $(query "r['cores_granted'], r['core_yields'], r['core_revokes'], r['kthreads'][1]")"
query "'at rest again: granted', r['cores_granted'], 'grants', r['core_grants'], 'yields', r['core_yields'], 'revokes', r['core_revokes'], 'kicks', r['core_kicks']"
query "'cores in use', d['cores']['in_use'], 'of', d['cores']['capacity'], 'passes', d['cores']['passes']"
if [[ -n $cpus ]]; then
  # It ran on the CPU its grant named, and parking does not unpin it.
  k1=$(affinity slip-k1)
  echo "slip-k1 may run on CPUs $k1 (listed: $cpus)"
  [[ ,$cpus, == *,$k1,* ]] || fail "slip-k1 was granted but is not pinned to one of $cpus: it may run on $k1"
fi

echo "== SIGTERM"
kill -TERM "$a_pid"
wait "$a_pid" || fail "the runtime exited $? on SIGTERM (its parked kthread must leave its eventfd)"
a_pid=
kill -TERM "$iokd_pid"
wait "$iokd_pid"
rc=$?
iokd_pid=
((rc == 0)) || fail "iokerneld exited $rc on SIGTERM: $(tail -5 "$work/d.log")"
if ((failed)); then
  echo "== runtime log (tail)"; tail -30 "$work/a.log"
  echo "== iokerneld log (tail)"; tail -15 "$work/d.log"
else
  echo "PASS"
fi
exit "$failed"
