#!/usr/bin/python3
"""tools/bench/run wake: how soon an idle Slipstream service answers, and
what idling costs it.

An idle service's kthread parks. What wakes it for the next frame sets the
latency of every request that finds it idle, and how often it wakes with no
work sets its CPU while idle. slip-loadgen (Linux sockets) sends UDP echoes
open loop with constant gaps of --gap-ms, so the server is idle at every
arrival (the client spins, so only the server's wake-up is measured), to
slip-netecho in one of these setups:

  slip-irq       the slip stack on net_tap, asleep on the tap's receive interrupt
  slip-poll      the same with --no-rx-interrupts, polling every 100 us (the default)
  slip-poll10    the same, polling every 10 us
  kernel         slip-netecho --stack kernel (parks in epoll), behind a veth pair

Client and server each get one CPU (server CPU 0, client CPU 1). For each
setup: the server's CPU seconds per second over --idle-s with no traffic,
then latency p50/p99/p99.9 and CPU per second under the spaced load, and
(slip) the wake-ups by interrupt the server counted. --reps runs, interleaved,
medians. Everything runs in network namespaces the benchmark creates, with
198.18.0.0/24 (tap) and 198.18.1.0/24 (veth). Needs root.

Writes build/bench/wake.json:
{"cases": {"<setup>": {"p50_us", "p99_us", "p999_us", "cpu_idle", "cpu_loaded", "rx_wakeups"}}, ...}
where cpu_* are CPU seconds per second.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join("@SOURCE_ROOT@", "tools", "experiments"))
import procs  # noqa: E402
from sweep import machine  # noqa: E402

NETECHO, LOADGEN = "@NETECHO@", "@LOADGEN@"
CASES = ["slip-irq", "slip-poll", "slip-poll10", "kernel"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", default="build/bench/wake.json")
    p.add_argument("--gap-ms", type=float, default=2.0, help="time between requests (open loop, constant)")
    p.add_argument("--duration", type=float, default=4.0, help="measured seconds of spaced load")
    p.add_argument("--idle-s", type=float, default=3.0, help="seconds of no traffic for the idle CPU reading")
    p.add_argument("--settle-s", type=float, default=1.0, help="seconds after start-up before measuring")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {','.join(CASES)}")
    p.add_argument("--keep", action="store_true", help="keep the work folder with every log")
    a = p.parse_args()
    unknown = [c for c in a.cases.split(",") if c not in CASES]
    if unknown:
        p.error(f"--cases: unknown {', '.join(unknown)} (known: {', '.join(CASES)})")
    return a


def sh(*cmd):
    subprocess.run(cmd, check=True)


class Bench:
    def __init__(self, a):
        self.a = a
        self.work = tempfile.mkdtemp(prefix="slip-bench-wake-")
        self.janitor = procs.Janitor()
        tag = os.getpid() % 100000
        self.ns_c, self.ns_s = f"slipwc{tag}", f"slipws{tag}"
        self.tap = f"swk{tag}"
        sh("ip", "netns", "add", self.ns_c)
        sh("ip", "netns", "add", self.ns_s)
        for ns in (self.ns_c, self.ns_s):
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        # The kernel case's path: one veth hop, as the tap is one hop for the slip cases.
        sh("ip", "link", "add", "wkc", "netns", self.ns_c, "type", "veth", "peer", "wks", "netns", self.ns_s)
        sh("ip", "-n", self.ns_c, "addr", "add", "198.18.1.1/24", "dev", "wkc")
        sh("ip", "-n", self.ns_s, "addr", "add", "198.18.1.2/24", "dev", "wks")
        sh("ip", "-n", self.ns_c, "link", "set", "wkc", "up")
        sh("ip", "-n", self.ns_s, "link", "set", "wks", "up")

    def cleanup(self):
        self.janitor.cleanup()
        for ns in (self.ns_c, self.ns_s):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        if not self.a.keep:
            subprocess.run(["rm", "-rf", self.work])
        else:
            print(f"logs kept in {self.work}")

    def server(self, case, rep):
        """Starts slip-netecho for case; (Server, the address to send to)."""
        log = os.path.join(self.work, f"{case}-{rep}-server.log")
        if case == "kernel":
            cmd = ["ip", "netns", "exec", self.ns_s, NETECHO, "--stack", "kernel", "--ip", "198.18.1.2"]
            srv = procs.Server(case, cmd, log, "slip-netecho:", self.janitor, preexec=lambda: os.sched_setaffinity(0, {0}))
            srv.start(15)
            return srv, "198.18.1.2"
        prefix = self.janitor.prefix(f"slipwake{os.getpid()}-{case}-{rep}")
        flags = {"slip-irq": [], "slip-poll": ["--no-rx-interrupts"],
                 "slip-poll10": ["--no-rx-interrupts", "--nic-poll-us", "10"]}[case]
        cmd = ["ip", "netns", "exec", self.ns_c, NETECHO, "--vdev", f"net_tap0,iface={self.tap}", "--ip",
               "198.18.0.2", "--file-prefix", prefix] + flags
        srv = procs.Server(case, cmd, log, "slip-netecho:", self.janitor, preexec=lambda: os.sched_setaffinity(0, {0}))
        srv.start(30)
        sh("ip", "-n", self.ns_c, "addr", "add", "198.18.0.1/24", "dev", self.tap)
        sh("ip", "-n", self.ns_c, "link", "set", self.tap, "up")
        return srv, "198.18.0.2"

    def one(self, case, rep):
        srv, addr = self.server(case, rep)
        try:
            pid = srv.proc.pid
            time.sleep(self.a.settle_s)  # start-up and ARP settle
            c0 = procs.cpu_seconds(pid)
            time.sleep(self.a.idle_s)
            idle = (procs.cpu_seconds(pid) - c0) / self.a.idle_s
            out = os.path.join(self.work, f"{case}-{rep}-loadgen")
            cmd = ["ip", "netns", "exec", self.ns_c, LOADGEN, "--server", f"{addr}:7", "--proto", "echo-udp",
                   "--rate", str(1000.0 / self.a.gap_ms), "--arrival", "constant", "--warmup", str(min(0.5, self.a.duration)),
                   "--duration", str(self.a.duration), "--timeout", "1", "--spin", "--out", out]
            c0 = procs.cpu_seconds(pid)
            rc, secs = procs.run_logged(cmd, out + ".log", self.a.duration + 30, self.janitor,
                                        preexec=lambda: os.sched_setaffinity(0, {1}))
            loaded = (procs.cpu_seconds(pid) - c0) / secs
            if rc != 0:
                raise RuntimeError(f"{case}: slip-loadgen exited {rc}\n{procs.log_tail(out + '.log')}")
            with open(os.path.join(out, "result.json")) as f:
                lat = json.load(f)["latency_us"]
        finally:
            srv.stop()
        m = re.search(r"(\d+) receive-interrupt wake-ups", open(srv.log_path).read())
        return {"p50_us": lat["p50"], "p99_us": lat["p99"], "p999_us": lat["p999"], "cpu_idle": idle,
                "cpu_loaded": loaded, "rx_wakeups": int(m.group(1)) if m and case != "kernel" else None}

    def run(self):
        cases = self.a.cases.split(",")
        runs = {c: [] for c in cases}
        for rep in range(1, self.a.reps + 1):
            for c in cases:
                r = self.one(c, rep)
                runs[c].append(r)
                print(f"  rep {rep} {c:12s} p50 {r['p50_us']:8.1f} us  p99 {r['p99_us']:8.1f}  p99.9 "
                      f"{r['p999_us']:8.1f} | cpu idle {r['cpu_idle']:.3f}  loaded {r['cpu_loaded']:.3f} | "
                      f"wake-ups {r['rx_wakeups']}", flush=True)
        out = {}
        for c, rs in runs.items():
            out[c] = {k: statistics.median(r[k] for r in rs) if rs[0][k] is not None else None for k in rs[0]}
        return out


def main():
    a = parse_args()
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        print("tools/bench/run wake: needs root and /dev/net/tun (it makes namespaces, a tap and a veth pair)",
              file=sys.stderr)
        return 2
    b = Bench(a)
    print(f"== wake: UDP echoes every {a.gap_ms} ms to an otherwise idle slip-netecho, {a.reps} reps of "
          f"{a.duration} s; server CPU 0, client CPU 1")
    try:
        cases = b.run()
    except (procs.StartError, RuntimeError, subprocess.CalledProcessError) as e:
        print(f"tools/bench/run wake: error: {e}", file=sys.stderr)
        b.cleanup()
        return 1
    b.cleanup()
    result = {"machine": machine(), "config": vars(a), "cases": cases}
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(result, f, indent=2)
    print("\nmedians over reps     p50 us    p99 us  p99.9 us | CPU s/s idle  loaded | interrupt wake-ups")
    for c, m in cases.items():
        print(f"  {c:14s} {m['p50_us']:9.1f} {m['p99_us']:9.1f} {m['p999_us']:9.1f} | {m['cpu_idle']:12.3f} "
              f"{m['cpu_loaded']:7.3f} | {m['rx_wakeups'] if m['rx_wakeups'] is not None else '-'}")
    print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
