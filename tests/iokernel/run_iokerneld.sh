#!/usr/bin/env bash
# iokerneld end to end, control plane only (--no-port), with iok_test_client
# as the runtime: a registration attaches (with no rx pool) and shows in
# iokernelctl; a taken IP, a wrong version (v1 included, named in the
# refusal), an unsealed region and garbage bytes are refused; a silent peer
# does not hold up others; kill -9 of a runtime detaches it within 1 s and
# frees its IP; (as root) a user not on the allow list is refused by
# SO_PEERCRED even though the socket's mode lets it connect; SIGTERM exits 0
# within 1 s and removes the sockets; a bad config file names its line. As
# root, one more run opens a real DPDK port (net_ring0, --no-huge), hands a
# registering runtime its rx pool (read-only, sealed) and stops cleanly, and
# --pci with an address that has no NIC exits 1 within seconds, naming the
# ports DPDK found and how to bind a NIC.
#   run_iokerneld.sh IOKERNELD IOKERNELCTL IOK_TEST_CLIENT
set -u
iokd=${1:?usage: run_iokerneld.sh IOKERNELD IOKERNELCTL IOK_TEST_CLIENT}
ctl_bin=${2:?}
client=${3:?}
py=/usr/bin/python3
[[ -x $py ]] || py=$(command -v python3 || true)
[[ -n $py ]] || { echo "SKIP: python3 is missing (needed to read iokernelctl --json)"; exit 77; }
work=$(mktemp -d)
chmod 0711 "$work"  # other users may reach the socket; SO_PEERCRED must refuse them
prefix="iokd-test-$$"
failed=0
fail() { echo "FAIL: $*"; failed=1; }
cleanup() {
  for p in ${hold_pid:-} ${iokd_pid:-} ${silent_pid:-}; do kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$work"
  for d in "$prefix" "$prefix-pci"; do [[ -d /var/run/dpdk/$d ]] && rm -rf "/var/run/dpdk/$d"; done
}
trap cleanup EXIT
trap 'exit 143' TERM INT

sock=$work/iok.sock
ctl() { "$ctl_bin" --stats-socket "$sock.stats" "$@"; }
# jq_py EXPR: evaluates a Python expression over the stats document `d`.
jq_py() { ctl --json | "$py" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# runtimes: how many runtimes iokernelctl's table says are attached.
runtimes() { ctl 2>/dev/null | sed -n 's/^iokerneld pid [0-9]*, up [0-9.]* s, \([0-9]*\) attached.*/\1/p'; }
# wait_for FILE PATTERN SECONDS: until grep finds it.
wait_for() {
  for _ in $(seq $(($3 * 20))); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  return 1
}
# wait_runtimes N: up to 1 s (by the clock) for iokernelctl to show N runtimes.
wait_runtimes() {
  local end=$(($(date +%s%N) + 1000000000))
  while (($(date +%s%N) < end)); do [[ $(runtimes) == "$1" ]] && return 0; sleep 0.02; done
  return 1
}
# stop PID: SIGTERM; sets stop_rc and stop_ms (SIGKILL after 5 s).
stop() {
  local t0=$(date +%s%N)
  kill -TERM "$1"
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.01; done
  kill -0 "$1" 2>/dev/null && sleep 4.5 && kill -KILL "$1" 2>/dev/null
  wait "$1"
  stop_rc=$?
  stop_ms=$((($(date +%s%N) - t0) / 1000000))
}
reg() { "$client" --socket "$sock" "$@"; }

echo "== iokerneld --no-port on $sock"
"$iokd" --no-port --idle-backoff --socket "$sock" --socket-mode 0666 --stall-timeout 2 >"$work/d.log" 2>&1 &
iokd_pid=$!
if ! wait_for "$work/d.log" "listening on" 5; then
  cat "$work/d.log"
  fail "iokerneld did not start"
  exit 1
fi
grep -q "WARNING: --no-port" "$work/d.log" || fail "--no-port is not announced loudly"
[[ -S $sock && -S $sock.stats ]] || fail "sockets missing"
[[ $(stat -c %a "$sock") == 666 ]] || fail "socket mode $(stat -c %a "$sock"), wanted 666"

echo "== a runtime attaches and stays"
"$client" --socket "$sock" --ip 10.9.0.1 --pool no --hold >"$work/a.out" 2>&1 &  # not via reg: $! must be its pid
hold_pid=$!
wait_for "$work/a.out" "^attached" 5 || fail "first registration: $(cat "$work/a.out")"

echo "== hostile and mistaken registrations are refused"
reg --ip 10.9.0.1 --expect EADDRINUSE || fail "a taken IP was not refused with EADDRINUSE"
reg --ip 10.9.0.5 --version-major 9 --expect EINVAL || fail "a wrong major version was not refused"
reg --ip 10.9.0.5 --version-major 1 --expect EINVAL | grep -q "v1 .*v3" ||
  fail "a v1 runtime's refusal does not name v1 and v3"
reg --ip 10.9.0.6 --unsealed --expect EINVAL | grep -q "sealed against shrinking" ||
  fail "a region not sealed against shrinking was not refused"
reg --garbage --expect EINVAL || fail "HTTP bytes on the socket were not refused"

echo "== a silent peer does not stall the loop"
reg --silent --expect ETIMEDOUT >"$work/silent.out" 2>&1 &
silent_pid=$!
sleep 0.1
t0=$(date +%s%N)
reg --ip 10.9.0.2 || fail "registration next to a silent peer failed"
ms=$((($(date +%s%N) - t0) / 1000000))
((ms < 500)) || fail "registration next to a silent peer took $ms ms"
wait "$silent_pid" || fail "the silent peer was not timed out: $(cat "$work/silent.out")"
silent_pid=

echo "== iokernelctl shows exactly the attached runtime"
wait_runtimes 1 || fail "expected 1 runtime (10.9.0.2 exited), iokernelctl shows $(runtimes)"
got=$(jq_py '(d["port"], [(r["ip"], r["pid"], r["n_kthreads"], len(r["kthreads"]), r["cores_granted"],
  [k["state"] for k in r["kthreads"]], [k["rx_fill"] for k in r["kthreads"]]) for r in d["runtimes"]])')
want="(None, [('10.9.0.1', $hold_pid, 2, 2, 1, ['parked', 'parked'], [0, 0])])"
[[ $got == "$want" ]] || fail "iokernelctl --json: got $got, want $want"
ctl | tee "$work/table.out" | grep -q "10.9.0.1" || fail "the table lacks the runtime: $(cat "$work/table.out")"

echo "== kill -9 of the runtime detaches it within 1 s"
kill -KILL "$hold_pid"
wait "$hold_pid" 2>/dev/null
wait_runtimes 0 || fail "after kill -9, iokernelctl still shows $(runtimes) runtimes"
grep -q "detached runtime id=[0-9]* pid=$hold_pid .*10.9.0.1" "$work/d.log" || fail "the detach of pid $hold_pid is not logged"
hold_pid=
reg --ip 10.9.0.1 || fail "the IP of the killed runtime was not freed"

if [[ $(id -u) == 0 ]] && command -v setpriv >/dev/null; then
  echo "== uid 65534 (not allowed) is refused by SO_PEERCRED"
  install -m 0755 "$client" "$work/client"
  setpriv --reuid=65534 --regid=65534 --clear-groups "$work/client" --socket "$sock" --ip 10.9.0.3 --expect EPERM ||
    fail "uid 65534 was not refused with EPERM"
  grep -q "refused registration from pid=[0-9]* uid=65534: EPERM" "$work/d.log" || fail "the EPERM refusal is not logged"
else
  echo "SKIP (part): the allow-list check needs root and setpriv to connect as another user"
fi

kill -0 "$iokd_pid" 2>/dev/null || fail "iokerneld died"
echo "== SIGTERM: exit 0 within 1 s, sockets removed"
"$client" --socket "$sock" --ip 10.9.0.4 --hold >"$work/b.out" 2>&1 &
hold_pid=$!
wait_for "$work/b.out" "^attached" 5 || fail "registration before SIGTERM: $(cat "$work/b.out")"
stop "$iokd_pid"
iokd_pid=
((stop_rc == 0)) || fail "iokerneld exited $stop_rc on SIGTERM"
((stop_ms < 1000)) || fail "iokerneld took $stop_ms ms to stop"
[[ ! -e $sock && ! -e $sock.stats ]] || fail "sockets left behind"
grep -q "detached runtime .*10.9.0.4: the IOKernel is shutting down" "$work/d.log" || fail "shutdown did not detach"
wait_for "$work/b.out" "^daemon hung up" 1 || fail "the attached runtime did not see the daemon hang up"
wait "$hold_pid" || fail "the attached runtime exited $?"
hold_pid=
out=$(ctl 2>&1)
rc=$?
((rc == 1)) && grep -q "Is iokerneld running" <<<"$out" || fail "iokernelctl without a daemon: rc $rc: $out"

echo "== a bad config file names its line"
printf '[iokernel]\nno_port = true\nsocket_mod = "0600"\n' >"$work/bad.toml"
out=$("$iokd" --config "$work/bad.toml" --socket "$work/c.sock" 2>&1)
rc=$?
((rc == 2)) && grep -q "bad.toml:3:1: iokernel.socket_mod: unknown key" <<<"$out" || fail "bad config: rc $rc: $out"

if [[ $(id -u) == 0 ]]; then
  echo "== a real DPDK port (net_ring0, --no-huge) starts and stops"
  sock=$work/p.sock
  "$iokd" --vdev net_ring0 --file-prefix "$prefix" --socket "$sock" --idle-backoff >"$work/p.log" 2>&1 &
  iokd_pid=$!
  if wait_for "$work/p.log" "listening on" 20; then
    [[ $(jq_py 'd["port"]["name"]') == net_ring0 ]] || fail "port name: $(ctl --json)"
    reg --ip 10.9.0.9 --pool yes || fail "registration with a port: no read-only, sealed rx pool"
    stop "$iokd_pid"
    ((stop_rc == 0)) || fail "iokerneld with a port exited $stop_rc"
    ((stop_ms < 1000)) || fail "iokerneld with a port took $stop_ms ms to stop"
    grep -q "port net_ring0 closed" "$work/p.log" || fail "the port was not closed"
  else
    fail "iokerneld with net_ring0 did not start"
  fi
  iokd_pid=
  ((failed)) && cat "$work/p.log"

  nic=0000:00:1f.7
  if [[ -e /sys/bus/pci/devices/$nic ]]; then
    echo "SKIP (part): $nic is a PCI device on this host; the no-NIC check needs an address without one"
  else
    echo "== --pci $nic (no NIC there) exits 1 within 5 s and says how to bind one"
    t0=$(date +%s%N)
    out=$(timeout 10 "$iokd" --pci "${nic#0000:}" --file-prefix "$prefix-pci" --socket "$work/n.sock" 2>&1)
    rc=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    ((rc == 1)) || fail "--pci $nic: rc $rc, wanted 1: $out"
    ((ms < 5000)) || fail "--pci $nic took $ms ms to fail"
    grep -q "no DPDK port named \"$nic\" found; ports DPDK found (0): none; there is no PCI device $nic" <<<"$out" &&
      grep -q "bind the device to vfio-pci (dpdk-devbind.py -b vfio-pci $nic) or, for mlx5, keep the kernel driver" \
        <<<"$out" || fail "--pci $nic: the error does not list the ports found and how to bind: $out"
    [[ ! -e $work/n.sock ]] || fail "--pci $nic: the control socket was created though the port failed"
  fi
else
  echo "SKIP (part): a DPDK port needs root here"
fi

((failed)) && { echo "--- daemon log"; cat "$work/d.log"; }
((failed)) && exit 1
echo "PASS"
