#!/usr/bin/env python3
"""The slip server's user-space instructions per echo round trip, counted by
valgrind --tool=callgrind: repeatable where time on this VM is not.

slip-netecho serves UDP and TCP echo on a net_tap port in a network namespace
this script makes, under callgrind. A Linux client in the namespace sends
64-byte requests one at a time, with a gap after each reply, so the server is
asleep on the port's receive interrupt before every request and each round
trip takes the same path: wake, receive, the echo uthread's read and write,
transmit, park. A spinning server's idle loop would add instructions in
proportion to wall time instead. Counting starts after a warm-up
(callgrind_control --zero) and ends after the measured round trips (--dump).

Instruction counts give an atomic read-modify-write (a lock-prefixed
instruction, or xchg with memory) the weight of an add, although it costs
tens of cycles alone and far more when another core holds the line, and
atomics are what a per-core design removes. So the script also counts them:
callgrind dumps the cost of every instruction (--dump-instr=yes), and
objdump says which of the executed ones are atomic.

Run it for the binary of each commit to compare (--netecho and
--netecho-before: build the previous commit side by side). Needs root
(namespace, tap), valgrind, objdump and python3; prints why and exits 77
otherwise. Writes {"tcp_rtt_64": {"after": n, "atomics_after": a, ...},
"udp_rtt_64": {...}}, per round trip.
"""
import argparse
import collections
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

CLIENT = r"""
import socket, sys, time
proto, n, gap = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
resent = 0
if proto == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    def rt(msg):
        global resent
        for _ in range(5):  # a datagram lost on the way is sent again, and counted
            s.sendto(msg, ("198.18.0.2", 7))
            try:
                got = s.recvfrom(2048)[0]
            except socket.timeout:
                resent += 1
                continue
            if got != msg: sys.exit(f"udp echo mismatch: {got!r}")
            return
        sys.exit("udp: 5 requests in a row got no echo")
else:
    s = socket.create_connection(("198.18.0.2", 7), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    def rt(msg):
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            chunk = s.recv(len(msg) - len(got))
            if not chunk: sys.exit("tcp echo closed")
            got += chunk
        if got != msg: sys.exit(f"tcp echo mismatch: {got!r}")
msg = b"x" * 64
for _ in range(200): rt(msg); time.sleep(gap)      # warm-up: caches, ARP, the TCP window
print("warm", flush=True)
sys.stdin.readline()                                # the counters are zeroed
resent = 0
for _ in range(n): rt(msg); time.sleep(gap)
print(f"done {resent}", flush=True)
sys.stdin.readline()                                # the counters are dumped
"""


def parse_dump(path):
    """Self cost per instruction address, per object, from a callgrind dump
    with --dump-instr=yes (positions may be relative: +n, -n, *)."""
    names, ob, last, after_call = {}, None, [0, 0], False
    cost = collections.defaultdict(collections.Counter)
    total = 0
    def pos(tok, i):
        if tok == "*":
            return last[i]
        return last[i] + int(tok, 0) if tok[0] in "+-" else int(tok, 0)
    for line in open(path):
        m = re.match(r"(c?ob)=\((\d+)\)(?: (.*))?", line)
        if m:
            if m.group(3):
                names[m.group(2)] = m.group(3).strip()
            if m.group(1) == "ob":
                ob = names[m.group(2)]
            continue
        if line.startswith("calls="):
            after_call = True
            continue
        if line.startswith("summary:"):
            total = int(line.split()[1])
        if not line[:1].isdigit() and line[:1] not in ("+", "-", "*"):
            continue
        parts = line.split()
        if len(parts) < 3:
            continue
        last[0], last[1] = pos(parts[0], 0), pos(parts[1], 1)
        if after_call:  # the inclusive cost of a call, not this instruction's
            after_call = False
            continue
        cost[ob][last[0]] += int(parts[2])
    return total, cost


_atomic_cache = {}


def atomic_addresses(obj):
    """Addresses of obj's atomic read-modify-write instructions."""
    if obj not in _atomic_cache:
        out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", obj], capture_output=True, text=True).stdout
        found = set()
        for line in out.splitlines():
            m = re.match(r"\s*([0-9a-f]+):\s+(\S+)\s*(\S*)", line)
            if m and (m.group(2) == "lock" or (m.group(2).startswith("xchg") and "(" in m.group(3))):
                found.add(int(m.group(1), 16))
        _atomic_cache[obj] = found
    return _atomic_cache[obj]


def count(path):
    total, cost = parse_dump(path)
    atomics = sum(c[a] for ob, c in cost.items() if os.path.exists(ob) for a in atomic_addresses(ob) if a in c)
    return total, atomics


def skip(why):
    print(f"net_instructions: not measured: {why}")
    sys.exit(77)


def sh(*args, **kw):
    return subprocess.run(args, check=True, **kw)


def measure(netecho, proto, rounds, gap, work, tag):
    ns, tap = f"slipcg{os.getpid()}", f"scg{os.getpid() % 100000}"
    out = os.path.join(work, f"cg.{tag}.{proto}")
    sh("ip", "netns", "add", ns)
    srv = None
    try:
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        srv = subprocess.Popen(
            ["ip", "netns", "exec", ns, "valgrind", "--tool=callgrind", "--dump-instr=yes",
             f"--callgrind-out-file={out}.%p",
             netecho, "--vdev", f"net_tap0,iface={tap}", "--ip", "198.18.0.2",
             "--file-prefix", f"slipcg{os.getpid()}", "--http-port", "8080"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 120
        while subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "show", tap],
                             capture_output=True).returncode != 0:
            if time.time() > deadline or srv.poll() is not None:
                raise RuntimeError(f"{netecho}: no tap device under valgrind: {srv.stdout.read()}")
            time.sleep(0.2)
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", "198.18.0.1/24", "dev", tap)
        sh("ip", "netns", "exec", ns, "ip", "link", "set", tap, "up")
        for line in srv.stdout:  # its ready line: the echo is served
            if "udp+tcp echo" in line:
                break
        pid = int(subprocess.run(["pgrep", "-f", f"callgrind.*--file-prefix slipcg{os.getpid()}"],
                                 capture_output=True, text=True).stdout.split()[0])
        cli = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", CLIENT, proto, str(rounds), str(gap)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if cli.stdout.readline().strip() != "warm":
            raise RuntimeError(f"{proto} client failed in its warm-up")
        sh("callgrind_control", "--zero", str(pid), stdout=subprocess.DEVNULL)
        cli.stdin.write("go\n")
        cli.stdin.flush()
        done = cli.stdout.readline().split()
        if not done or done[0] != "done":
            raise RuntimeError(f"{proto} client failed in the measured round trips")
        if int(done[1]):
            print(f"net_instructions: {tag} {proto}: {done[1]} datagrams sent again after 2 s without an echo",
                  flush=True)
        before = set(glob.glob(f"{out}.{pid}*"))
        sh("callgrind_control", "--dump", str(pid), stdout=subprocess.DEVNULL)
        cli.stdin.write("end\n")
        cli.stdin.flush()
        cli.wait(timeout=30)
        dumps = sorted(set(glob.glob(f"{out}.{pid}*")) - before)
        for path in dumps:
            total, atomics = count(path)
            if total:
                return total / rounds, atomics / rounds
        raise RuntimeError(f"no callgrind dump with a summary in {dumps}")
    finally:
        if srv and srv.poll() is None:
            srv.terminate()
            try:
                srv.wait(timeout=60)
            except subprocess.TimeoutExpired:
                srv.kill()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(f"/var/run/dpdk/slipcg{os.getpid()}", ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--netecho", required=True, help="slip-netecho of the commit under test")
    ap.add_argument("--netecho-before", help="slip-netecho built from the commit to compare with")
    ap.add_argument("--rounds", type=int, default=1000, help="measured round trips per run")
    ap.add_argument("--reps", type=int, default=3, help="runs per binary and protocol (median)")
    ap.add_argument("--gap-ms", type=float, default=2.0, help="pause after each reply, so the server parks")
    ap.add_argument("--json", help="write the result there")
    a = ap.parse_args()
    if os.geteuid() != 0:
        skip("needs root (a network namespace and a tap device)")
    for tool in ("valgrind", "callgrind_control", "ip", "objdump"):
        if not shutil.which(tool):
            skip(f"{tool} is missing (tools/setup installs it)")
    binaries = {"after": a.netecho}
    if a.netecho_before:
        binaries["before"] = a.netecho_before
    result = {}
    with tempfile.TemporaryDirectory() as work:
        for proto, case in (("udp", "udp_rtt_64"), ("tcp", "tcp_rtt_64")):
            for tag, exe in binaries.items():
                runs = [measure(exe, proto, a.rounds, a.gap_ms / 1000, work, tag) for _ in range(a.reps)]
                ins, atom = [r[0] for r in runs], [r[1] for r in runs]
                r = result.setdefault(case, {})
                r[tag] = round(statistics.median(ins))
                r[tag + "_runs"] = [round(x) for x in ins]
                r["atomics_" + tag] = round(statistics.median(atom), 1)
                print(f"{case} {tag}: {statistics.median(ins):.0f} instructions per round trip "
                      f"(runs: {', '.join(f'{x:.0f}' for x in ins)}), {statistics.median(atom):.1f} atomic "
                      f"read-modify-writes", flush=True)
    result["method"] = ("valgrind --tool=callgrind on slip-netecho (net_tap, asleep on receive interrupts between "
                        f"requests), {a.rounds} paced 64-byte round trips from a Linux client, median of {a.reps}; "
                        "atomics: executed lock-prefixed instructions and xchg with memory")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
