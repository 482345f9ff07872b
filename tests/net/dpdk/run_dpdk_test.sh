#!/usr/bin/env bash
# Runs one DPDK test scenario in its own process:
#   run_dpdk_test.sh ring|tap|eal_errors EXE
# Gives it a unique --file-prefix (SLIP_DPDK_PREFIX); for tap, a network
# namespace and interface name (SLIP_TAP_IFACE). Exits 77 (meson: skipped) with
# the reason when something it needs is missing, and removes the namespace and
# the EAL runtime files on every exit.
set -u
mode=${1:?usage: run_dpdk_test.sh ring|tap|eal_errors TEST_EXE}
exe=${2:?usage: run_dpdk_test.sh ring|tap|eal_errors TEST_EXE}

skip() { echo "SKIP: $*"; exit 77; }

export SLIP_DPDK_PREFIX="slipdpdk-$mode-$$"
ns="slipdpdk$$"
made_ns=0
cleanup() {
  ((made_ns)) && ip netns del "$ns" 2>/dev/null
  rm -rf "/var/run/dpdk/$SLIP_DPDK_PREFIX" "${XDG_RUNTIME_DIR:-/tmp}/dpdk/$SLIP_DPDK_PREFIX" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 143' TERM INT

case $mode in
  ring | eal_errors)
    "$exe" "[$mode]"
    rc=$?
    ;;
  tap)
    [[ $(id -u) -eq 0 ]] || skip "the tap test needs root: it creates a network namespace and a tap device"
    [[ -c /dev/net/tun ]] || skip "/dev/net/tun is missing: load the tun module (modprobe tun)"
    command -v ip >/dev/null || skip "ip (iproute2) is missing: apt-get install iproute2"
    ip netns add "$ns" 2>/dev/null || skip "cannot create network namespace $ns (no netns support?)"
    made_ns=1
    export SLIP_TAP_IFACE="sliptap$(($$ % 100000))"
    ip netns exec "$ns" "$exe" '[tap]'
    rc=$?
    ;;
  *)
    echo "run_dpdk_test.sh: unknown scenario '$mode' (ring, tap or eal_errors)" >&2
    exit 2
    ;;
esac
exit $rc
