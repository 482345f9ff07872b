# Sourced by the root tests that run iokerneld on net_tap in a namespace of
# their own: the checks that make them skip (exit 77) with a reason, and the
# helpers they share. Sets py (a python3) and failed; defines fail, wait_for.
[[ $(id -u) == 0 ]] || { echo "SKIP: needs root (a network namespace and a tap device)"; exit 77; }
[[ -c /dev/net/tun ]] || { echo "SKIP: /dev/net/tun is missing (no TUN support)"; exit 77; }
command -v ip >/dev/null || { echo "SKIP: iproute2 (ip) is missing"; exit 77; }
py=/usr/bin/python3
[[ -x $py ]] || py=$(command -v python3 || true)
[[ -n $py ]] || { echo "SKIP: python3 is missing (the test's peer)"; exit 77; }

failed=0
fail() { echo "FAIL: $*"; failed=1; }
# wait_for FILE PATTERN SECONDS: until FILE has a line matching PATTERN.
wait_for() {
  for _ in $(seq $(($3 * 20))); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  return 1
}

# netns_setup TAG: a work directory, the names of the namespace, the tap
# device and the DPDK file prefix, the control socket, and a cleanup at exit
# that kills the processes whose pids are in the variables named in
# cleanup_pids, deletes the namespace and removes what the run left.
netns_setup() {
  work=$(mktemp -d)
  ns=slip$1$$
  dev=s$1$$
  prefix=iok$1$$
  sock=$work/iok.sock
  trap netns_cleanup EXIT
  trap 'exit 143' TERM INT
}
netns_cleanup() {
  local v p
  for v in ${cleanup_pids:-}; do
    p=${!v:-}
    [[ -n $p ]] && kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  ip netns del "$ns" 2>/dev/null
  rm -rf "$work" "/var/run/dpdk/$prefix"
}
