#!/usr/bin/python3
"""tools/bench/run neighbour: the runtime and the stack on a shared and on a
throttled CPU (issue 25), each case measured three ways in one run:

  alone      nothing of ours beside it
  neighbour  beside one CPU-bound process (a busy loop) that the scheduler
             places freely on this machine's CPUs
  quota      in a cgroup limited to 1 CPU (quota 100 ms per 100 ms period;
             cgroup v1 cpu.cfs_quota_us, or v2 cpu.max), no neighbour

The cases are those of the real benchmark programs, run as they are:
slip-bench-runtime (ns per op of every runtime case for slip, fiber and
pthread) and slip-bench-net --cases tcp_rtt_64 (p50 and p99 of 64-byte TCP
echoes, slip over DPDK memif in direct mode and Linux sockets). Each rep runs
every condition once, rotating their order so that drift (other work on this
shared machine) hits all alike; the report gives medians with min..max over
reps, each system's slowdown (condition / alone), and the issue's targets.
Needs root (DPDK memif, the cgroup).

Writes build/bench/neighbour.json:
{"cases": {"<case>": {"<system>": {"alone", "neighbour", "quota"}}}, "spread": ..., "slowdown": ...,
 "targets": [...], "conditions": ..., "machine": ...}   (ns; quota null where no cgroup could be made)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join("@SOURCE_ROOT@", "tools", "experiments"))
import procs  # noqa: E402
from sweep import machine  # noqa: E402

RUNTIME, NET = "@RUNTIME@", "@NET@"
CONDITIONS = ["alone", "neighbour", "quota"]
NET_KEYS = {"tcp_rtt_64_p50": "p50_ns", "tcp_rtt_64_p99": "p99_ns"}
QUOTA_US = PERIOD_US = 100_000  # 1 CPU
SLOWDOWN_LIMIT = 1.5  # slip's slowdown against pthread's, per runtime case


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", default="build/bench/neighbour.json")
    p.add_argument("--reps", type=int, default=5, help="runs of every condition (medians want at least 5)")
    p.add_argument("--quick", action="store_true", help="one rep, a tenth of the runtime iterations, 2000 "
                                                        "round trips: a smoke run")
    p.add_argument("--keep", action="store_true", help="keep the work folder with every log")
    a = p.parse_args()
    if a.quick:
        a.reps = 1
    return a


def read_kv(path):
    with open(path) as f:
        return {k: int(v) for k, v in (line.split() for line in f if line.strip())}


def find_cpu_hierarchy():
    """(1 or 2, mount point) of the hierarchy with the cpu controller; v1 first,
    as a controller bound to v1 is absent from v2 (this machine is hybrid)."""
    v2 = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype, opts = fields[fields.index("-") + 1], fields[-1].split(",")
            if fstype == "cgroup" and "cpu" in opts:
                return 1, fields[4]
            if fstype == "cgroup2" and v2 is None:
                v2 = fields[4]
    if v2 and "cpu" in open(os.path.join(v2, "cgroup.controllers")).read().split():
        subtree = os.path.join(v2, "cgroup.subtree_control")
        if "cpu" not in open(subtree).read().split():
            with open(subtree, "w") as f:
                f.write("+cpu")
        return 2, v2
    raise LookupError("no cgroup v1 hierarchy with the cpu controller and no cgroup v2 with cpu is mounted")


class CpuQuota:
    """A cgroup of our own with a 1-CPU quota; measured programs join it as they
    start (so their children are in it too). .error says why there is none."""

    def __init__(self):
        self.path, self.error, self.version = None, None, None
        try:
            self.version, root = find_cpu_hierarchy()
            self.path = os.path.join(root, f"slip-bench-neighbour-{os.getpid()}")
            os.mkdir(self.path)
            if self.version == 1:
                self._write("cpu.cfs_period_us", PERIOD_US)
                self._write("cpu.cfs_quota_us", QUOTA_US)
            else:
                self._write("cpu.max", f"{QUOTA_US} {PERIOD_US}")
        except (OSError, LookupError) as e:
            self.error = f"cannot make a cgroup with a CPU quota: {e}" + ("" if os.geteuid() == 0 else " (not root)")
            self.remove()

    def _write(self, name, value):
        with open(os.path.join(self.path, name), "w") as f:
            f.write(str(value))

    def join(self):
        """preexec_fn: moves the new process into the cgroup before it execs."""
        self._write("cgroup.procs", os.getpid())

    def throttled(self):
        """(periods throttled, ms throttled) so far."""
        s = read_kv(os.path.join(self.path, "cpu.stat"))
        ms = s["throttled_time"] / 1e6 if self.version == 1 else s["throttled_usec"] / 1e3
        return s["nr_throttled"], ms

    def remove(self):
        """Removes the cgroup once what ran in it is gone; '' or why it failed."""
        if not self.path or not os.path.isdir(self.path):
            return ""
        for _ in range(40):
            try:
                os.rmdir(self.path)
                return ""
            except OSError as e:
                err = e
                time.sleep(0.05)
        return f"could not remove {self.path}: {err}"


def start_neighbour():
    # Not pinned: on a 2-vCPU box the realistic noisy neighbour is one busy
    # process the scheduler places (and moves) freely, so it lands on whichever
    # CPU the measured threads leave least loaded. Pinned, it would always hit
    # the same thread (net: only the server, on CPU 0) and spare the other.
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
    # Measure only once it runs steadily: its first tenths of a second (the
    # interpreter starting, the load balancer placing it) fell on whichever
    # case came first and made that case alone look 3x slower.
    deadline = time.monotonic() + 10
    while procs.cpu_seconds(hog.pid) < 0.2 and time.monotonic() < deadline:
        time.sleep(0.01)
    return hog


def summary(v):
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "runs": v} if v else None


class Bench:
    def __init__(self, a):
        self.a = a
        self.work = tempfile.mkdtemp(prefix="slip-bench-neighbour-")
        self.janitor = procs.Janitor()
        self.quota = CpuQuota()
        self.samples = {}  # case -> system -> condition -> [value per rep]
        self.neighbour_cpu, self.throttle, self.errors = [], [], []

    def conditions(self):
        return [c for c in CONDITIONS if c != "quota" or self.quota.path]

    def add(self, case, system, cond, value):
        self.samples.setdefault(case, {}).setdefault(system, {c: [] for c in CONDITIONS})[cond].append(value)

    def program(self, name, cmd, cond, rep):
        """Runs one benchmark program under cond; its JSON, or None (error noted)."""
        out = os.path.join(self.work, f"{name}-{cond}-{rep}")
        pre = self.quota.join if cond == "quota" else None
        try:
            rc, secs = procs.run_logged(cmd + ["--json", out + ".json"], out + ".log", 600, self.janitor, preexec=pre)
        except subprocess.SubprocessError as e:  # preexec_fn failed: it could not join the cgroup
            rc, secs = f"not started ({e})", 0.0
        try:
            with open(out + ".json") as f:
                j = json.load(f)
        except (OSError, ValueError):
            j = None
        if rc != 0 or j is None:
            self.errors.append(f"{name} {cond} rep {rep}: exit status {rc}")
            print(f"  {name} under {cond} FAILED (exit status {rc})\n{procs.log_tail(out + '.log')}", flush=True)
        return j, secs

    def one(self, cond, rep):
        quick = ["--quick"] if self.a.quick else []
        net_size = ["--samples", "2000", "--warmup", "1000"] if self.a.quick else []
        hog = start_neighbour() if cond == "neighbour" else None
        before = self.quota.throttled() if cond == "quota" else None
        t0 = time.monotonic()
        try:
            rt, rt_s = self.program("runtime", [RUNTIME, "--reps", "1"] + quick, cond, rep)
            net, net_s = self.program("net", [NET, "--cases", "tcp_rtt_64", "--reps", "1"] + net_size, cond, rep)
        finally:
            if hog:
                self.neighbour_cpu.append(procs.cpu_seconds(hog.pid) / (time.monotonic() - t0))
                procs.stop(hog)
        for case, r in (rt or {}).get("cases", {}).items():
            for s in ("slip", "fiber", "pthread"):
                self.add(case, s, cond, r[f"{s}_ns"])
        line = f"  rep {rep} {cond:9s} runtime {rt_s:5.1f} s, net {net_s:5.1f} s |"
        tcp = (net or {}).get("cases", {}).get("tcp_rtt_64", {})
        for s in ("slip", "kernel"):
            r = tcp.get(s, {})
            if "error" in r or "p99_ns" not in r:
                self.errors.append(f"tcp_rtt_64 {s} {cond} rep {rep}: {r.get('error', 'no result')}")
                continue
            for case, key in NET_KEYS.items():
                self.add(case, s, cond, r[key])
            line += f" {s} p50 {r['p50_ns'] / 1e3:.1f} p99 {r['p99_ns'] / 1e3:.1f} us"
        if before:
            n, ms = self.quota.throttled()
            self.throttle.append({"periods": n - before[0], "ms": ms - before[1]})
            line += f" | throttled {n - before[0]} periods, {ms - before[1]:.0f} ms"
        print(line, flush=True)

    def run(self):
        conds = self.conditions()
        for rep in range(1, self.a.reps + 1):
            for i in range(len(conds)):
                self.one(conds[(i + rep - 1) % len(conds)], rep)

    def cleanup(self):
        self.janitor.cleanup()
        err = self.quota.remove()
        if err:
            self.errors.append(err)
            print(f"warning: {err}", file=sys.stderr)
        if self.a.keep:
            print(f"logs kept in {self.work}")
        else:
            subprocess.run(["rm", "-rf", self.work])

    def results(self):
        """(medians, spreads, slowdowns), each case -> system -> condition."""
        cases, spread, slowdown = {}, {}, {}
        for case, systems in self.samples.items():
            for s, by_cond in systems.items():
                sm = {c: summary(v) for c, v in by_cond.items()}
                med = {c: x and x["median"] for c, x in sm.items()}
                cases.setdefault(case, {})[s] = med
                spread.setdefault(case, {})[s] = {c: x and {k: x[k] for k in ("min", "max", "runs")} for c, x in sm.items()}
                slowdown.setdefault(case, {})[s] = {c: ratio(med[c], med["alone"]) for c in CONDITIONS[1:]}
        return cases, spread, slowdown


def ratio(a, b):
    return a / b if a is not None and b else None


def verdict(met):
    return "n/a " if met is None else ("PASS" if met else "MISS")


def targets(cases, spread, slowdown):
    """The issue's targets, judged on medians: [{"target", "case", "condition", "met", "detail"}]."""
    out = []
    for case, sd in slowdown.items():
        if case in NET_KEYS or "pthread" not in sd:
            continue
        for cond in CONDITIONS[1:]:
            slip, pth = sd["slip"][cond], sd["pthread"][cond]
            met = None if slip is None or pth is None else slip <= SLOWDOWN_LIMIT * pth
            detail = "no data" if met is None else f"slip {slip:.2f}x, pthread {pth:.2f}x"
            out.append({"target": f"slip's slowdown <= {SLOWDOWN_LIMIT}x pthread's", "case": case, "condition": cond,
                        "met": met, "detail": detail})
    p99, sp = cases.get("tcp_rtt_64_p99", {}), spread.get("tcp_rtt_64_p99", {})
    for cond in CONDITIONS[1:]:
        slip, kern = (p99.get(s, {}).get(cond) for s in ("slip", "kernel"))
        met = None if slip is None or kern is None else slip < kern
        detail = "no data"
        if met is not None:
            a, b = sp["slip"][cond], sp["kernel"][cond]
            clear = a["max"] < b["min"] or a["min"] >= b["max"]
            detail = f"slip {slip / 1e3:.1f} us, kernel {kern / 1e3:.1f} us" + ("" if clear else " (within run-to-run spread)")
        out.append({"target": "slip's p99 < kernel's", "case": "tcp_rtt_64_p99", "condition": cond, "met": met,
                    "detail": detail})
    return out


def cell(x, unit_div):
    """'median [min..max]' in the table's unit."""
    if x is None:
        return "-"
    f = (lambda v: f"{v / unit_div:.1f}") if unit_div > 1 or x["max"] < 100 else (lambda v: f"{v:.0f}")
    return f"{f(statistics.median(x['runs']))} [{f(x['min'])}..{f(x['max'])}]"


def print_report(doc, reps):
    print(f"\nneighbour: median [min..max] of {reps} rep(s); slowdown = condition's median / alone's median")
    print(f"{'case':<18} {'system':<8} {'unit':<5} {'alone':>24} {'neighbour':>24} {'quota':>24} {'nb/alone':>9} "
          f"{'quota/alone':>11}")
    for case, systems in doc["spread"].items():
        div, unit = (1e3, "us") if case in NET_KEYS else (1, "ns")
        for s, by_cond in systems.items():
            sd = doc["slowdown"][case][s]
            r = [f"{sd[c]:.2f}x" if sd[c] is not None else "-" for c in CONDITIONS[1:]]
            print(f"{case:<18} {s:<8} {unit:<5} " + " ".join(f"{cell(by_cond[c], div):>24}" for c in CONDITIONS) +
                  f" {r[0]:>9} {r[1]:>11}")
    c = doc["conditions"]
    nb = c["neighbour"]["cpu_s_per_s"]
    if nb:
        print(f"\nneighbour: one busy loop, not pinned; it got {nb['median']:.2f} CPU s/s (median over runs)")
    q = c["quota"]
    if q["skipped"]:
        print(f"quota: SKIPPED: {q['skipped']}")
    else:
        print(f"quota: cgroup {q['cgroup_version']} {q['quota_us']} us per {q['period_us']} us (1 CPU); throttled "
              f"{q['throttled_periods']} periods, {[round(m) for m in q['throttled_ms']]} ms per run")
        if not any(q["throttled_periods"]):
            print("  (never throttled: what ran in the cgroup never got more than 1 CPU; other work on the machine "
                  "took the rest)")
    print("\ntargets (on medians; a benchmark, so a MISS does not fail the run)")
    for t in doc["targets"]:
        print(f"  {verdict(t['met'])}  {t['case']:<18} {t['condition']:<9} {t['target']}: {t['detail']}")


def main():
    a = parse_args()
    if os.geteuid() != 0:
        print("tools/bench/run neighbour: needs root (DPDK memif's runtime files, and the cgroup for the quota)",
              file=sys.stderr)
        return 2
    b = Bench(a)
    m = machine()
    m["loadavg_at_start"] = open("/proc/loadavg").read().split()[:3]
    conds = b.conditions()
    print(f"== neighbour: {', '.join(conds)}; {a.reps} rep(s){' (--quick)' if a.quick else ''}; "
          f"{m['nproc']} CPUs, load average {' '.join(m['loadavg_at_start'])} (other work on this machine counts "
          "as background in every condition)", flush=True)
    if float(m["loadavg_at_start"][0]) >= 1.0:
        print("note: other work already keeps about a CPU busy here, so 'alone' is not alone: the spreads will be "
              "wide and the quota may never bite (see the throttled periods below)", flush=True)
    if b.quota.error:
        print(f"quota: SKIPPED: {b.quota.error}", flush=True)
    try:
        b.run()
    finally:
        b.cleanup()
    m["loadavg_at_end"] = open("/proc/loadavg").read().split()[:3]
    cases, spread, slowdown = b.results()
    doc = {"cases": cases, "spread": spread, "slowdown": slowdown, "targets": targets(cases, spread, slowdown),
           "units": {"runtime cases": "ns per operation", "tcp_rtt_64_p50, tcp_rtt_64_p99": "ns per round trip"},
           "conditions": {
               "alone": "each program as tools/bench/run runtime and net run it, nothing of ours beside it",
               "neighbour": {"what": "one busy-loop process (python3), not pinned: the scheduler places it",
                             "pinned": False, "cpu_s_per_s": summary(b.neighbour_cpu)},
               "quota": {"skipped": b.quota.error, "cgroup_version": b.quota.version and f"v{b.quota.version}",
                         "quota_us": QUOTA_US, "period_us": PERIOD_US,
                         "what": "the benchmark program and its children (net: client and server) in one cgroup",
                         "throttled_periods": [t["periods"] for t in b.throttle],
                         "throttled_ms": [t["ms"] for t in b.throttle]}},
           "placement": {"runtime": "slip-bench-runtime --reps 1: slip 1 kthread pinned to the first CPU; fiber on "
                                    "the main thread; pthread unpinned (yield_pingpong pinned to the first CPU)",
                         "net": "slip-bench-net --cases tcp_rtt_64 --reps 1: server pinned to CPU 0, client to "
                                "CPU 1, one busy-polling kthread each; slip = DPDK memif (direct mode), kernel = "
                                "Linux sockets on loopback"},
           "reps": a.reps, "quick": a.quick, "machine": m, "errors": b.errors}
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(doc, f, indent=2)
    print_report(doc, a.reps)
    for e in b.errors:
        print(f"error: {e}", file=sys.stderr)
    print(f"wrote {a.json}")
    return 1 if b.errors else 0


if __name__ == "__main__":
    sys.exit(main())
