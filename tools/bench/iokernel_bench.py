#!/usr/bin/python3
"""tools/bench/run iokernel: what the IOKernel's core allocation does, in two parts.

Reaction: slip-bench-iokernel (iokernel_bench.cc) times a load step to the
newly granted kthread's first uthread, parked and spinning, and the
machine's floor (an eventfd wake of a parked thread). Its output is kept as
it was and summarised as realloc_us and wake_baseline_us.

Curves: latency against offered load for apps/synthetic (exponential
service time, mean 10 us) driven open loop (Poisson) by slip-loadgen, on
three systems with the same client, service and load ladder:
  iokernel  iokerneld (net_tap in a namespace of the benchmark's own as its
            port) with dynamic cores: the synthetic registers 2 kthreads, 1
            guaranteed and at most 2, that park when idle and are granted
            cores by queueing delay; the loadgen is a second runtime on the
            same daemon, so requests go runtime to runtime through it.
  direct    the synthetic in direct mode on one end of a DPDK net_memif pair,
            1 kthread statically on its core (busy-polling), the loadgen on
            the other end (IX-style: a service that owns its port).
  kernel    both on Linux sockets (--stack kernel) over loopback, the
            synthetic's 1 kthread parking in epoll (how Linux services run).
Per load point: offered and achieved rps, the loadgen's p50/p99/p99.9
(from intended send times), and the CPU seconds the synthetic process used
over the measured window (utime + stime from /proc; for iokernel also the
daemon's). A system's sweep stops once two points in a row achieve less than
80% of the offered load.

Writes one JSON: the reaction part's keys, realloc_us, wake_baseline_us and
curves {"<system>": [{offered_rps, achieved_rps, p50_us, p99_us, p999_us,
cpu_s, ...}, ...]}. Needs root for the namespace, iokerneld and DPDK; without
it the iokernel and direct systems are skipped with the reason, and the
kernel system runs on the host's loopback.
"""
import argparse
import json
import os
import platform
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join("@SOURCE_ROOT@", "tools", "experiments"))
import procs  # noqa: E402
from sweep import should_stop  # noqa: E402

REACTION, SYNTHETIC, LOADGEN = "@REACTION@", "@SYNTHETIC@", "@LOADGEN@"
IOKERNELD = "@IOKERNELD@"
SYSTEMS = ["iokernel", "direct", "kernel"]
# Shared mode and direct mode addresses: only inside the daemon or on the memif
# pair, never on a host interface (198.18.0.0/15 is the benchmarking range).
IOK_SERVER_IP, IOK_CLIENT_IP = "198.18.40.1", "198.18.40.2"
MEMIF_SERVER_IP, MEMIF_CLIENT_IP = "198.18.41.1", "198.18.41.2"
MEMIF = "net_memif0,role={role},socket-abstract=yes,mac={mac},socket={sock}"
SHORT = {"loads": [0.1, 0.5, 1.0], "duration": 0.6, "warmup": 0.3, "trials": 30}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="Settings that move both parts together: --short (a smoke run of about "
                                       "half a minute).")
    p.add_argument("--json", required=True, help="where to write the results (tools/bench/run passes it)")
    p.add_argument("--skip-reaction", action="store_true", help="run only the curves")
    p.add_argument("--skip-curves", action="store_true", help="run only the reaction (slip-bench-iokernel)")
    p.add_argument("--systems", default=",".join(SYSTEMS), help="curves to run, comma separated: %(default)s")
    p.add_argument("--capacity-rps", type=float, default=100_000,
                   help="the load the ladder's fractions refer to (default: one core at a 10 us mean service)")
    p.add_argument("--loads", default="0.1,0.25,0.4,0.55,0.7,0.85,1.0,1.2",
                   help="offered loads as fractions of --capacity-rps (default %(default)s)")
    p.add_argument("--rates", help="offered loads in requests/s instead of --loads, comma separated")
    p.add_argument("--duration", type=float, default=4, help="measured seconds per load point")
    p.add_argument("--warmup", type=float, default=1, help="seconds of load before each measurement")
    p.add_argument("--service", default="exp:10us", help="the synthetic's service time (default %(default)s)")
    p.add_argument("--proto", choices=["udp", "tcp"], default="udp")
    p.add_argument("--conns", type=int, default=4, help="loadgen connections (UDP: sockets, i.e. flows)")
    p.add_argument("--reps", type=int, default=1,
                   help="sweeps per system on fresh processes, the order rotating; points are medians with "
                        "[min, max] under spread")
    p.add_argument("--no-stop", action="store_true", help="run every point even past saturation")
    p.add_argument("--core-interval-us", type=float, default=5, help="iokerneld's core allocation interval")
    p.add_argument("--iok-busy-poll", action="store_true",
                   help="iokerneld busy-polls its core (default: --idle-backoff, as a 2-vCPU machine needs)")
    p.add_argument("--iok-server-kthreads", type=int, default=2,
                   help="iokernel: the synthetic's kthreads, its max cores (1 guaranteed); 1 shows the daemon's hop "
                        "without a second core taken from the loadgen and the daemon")
    p.add_argument("--iok-daemon-alone", action="store_true",
                   help="iokernel: iokerneld gets the last CPU to itself (as Shenango's IOKernel has a core); the "
                        "synthetic and the loadgen share the others. On 2 vCPUs the default puts the daemon, the "
                        "loadgen and the synthetic's second kthread on one CPU, and the daemon waits for it")
    p.add_argument("--iok-loadgen-spin", action="store_true",
                   help="iokernel: the loadgen's kthread spins (default: it parks when idle, as it shares "
                        "iokerneld's CPU)")
    p.add_argument("--iok-server-spin", action="store_true",
                   help="iokernel: the synthetic's kthreads spin (the guaranteed one busy-polls, the other polls "
                        "for its grant) instead of parking when idle")
    p.add_argument("--trials", type=int, help="reaction: load steps per configuration (default: its own, 300)")
    p.add_argument("--reaction-args", default="", help="more flags for slip-bench-iokernel, one string")
    p.add_argument("--short", action="store_true",
                   help=f"smoke run: loads {SHORT['loads']}, {SHORT['duration']} s points, {SHORT['trials']} trials")
    p.add_argument("--keep", action="store_true", help="keep the work folder with every log")
    a = p.parse_args(argv)
    if a.short:
        a.loads = ",".join(map(str, SHORT["loads"]))
        a.duration, a.warmup = SHORT["duration"], SHORT["warmup"]
        a.trials = a.trials or SHORT["trials"]
        a.rates = None
    a.systems = [s for s in a.systems.split(",") if s]
    bad = [s for s in a.systems if s not in SYSTEMS]
    if bad:
        p.error(f"--systems: unknown {','.join(bad)}; valid: {','.join(SYSTEMS)}")
    try:
        if a.rates:
            a.rate_list = [float(x) for x in a.rates.split(",") if x]
        else:
            a.rate_list = [round(float(x) * a.capacity_rps) for x in a.loads.split(",") if x]
    except ValueError as e:
        p.error(f"--rates/--loads: {e}")
    if not a.rate_list or min(a.rate_list) <= 0:
        p.error("the load ladder is empty or has a rate <= 0")
    if a.reps < 1:
        p.error("--reps must be at least 1")
    if a.duration <= 0 or a.warmup < 0.2:
        p.error("--duration must be > 0 and --warmup at least 0.2 s")
    return a


def rq_wait_seconds(pid):
    """Seconds the threads of pid spent runnable but waiting for a CPU (schedstat), summed; None once gone.
    On a machine with fewer CPUs than busy threads this is where queueing hides."""
    try:
        total = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1])
        return total / 1e9
    except (OSError, IndexError, ValueError):
        return None


class CpuSampler:
    """Samples the CPU time of some processes every 10 ms on the monotonic clock, so
    the time used inside a window known only afterwards can be interpolated."""

    def __init__(self, pids):
        self.pids = dict(pids)
        self.samples = []  # (t, {name: cpu_s})
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _take(self):
        pids = list(self.pids.items())  # point() adds the loadgen while this runs
        c = {n: procs.cpu_seconds(p) for n, p in pids}
        c.update({n + ":rq": rq_wait_seconds(p) for n, p in pids})
        self.samples.append((time.monotonic(), c))

    def _run(self):
        while not self._stop.is_set():
            self._take()
            self._stop.wait(0.01)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self._take()

    def at(self, name, t):
        """CPU seconds of name at time t, linear between the neighbouring samples."""
        pts = [(s, c[name]) for s, c in self.samples if c.get(name) is not None]
        if not pts or t < pts[0][0] or t > pts[-1][0]:
            return None
        for (t0, c0), (t1, c1) in zip(pts, pts[1:]):
            if t0 <= t <= t1:
                return c0 if t1 == t0 else c0 + (c1 - c0) * (t - t0) / (t1 - t0)
        return pts[-1][1]


class Server(procs.Server):
    """procs.Server, ready when a line *contains* the marker (iokerneld's lines start
    with a timestamp); keeps that line."""

    ready_line = None

    def _pump(self, log):
        with log:
            for line in self.proc.stdout:
                log.write(line)
                log.flush()
                if self.ready_line is None and self.ready in line:
                    self.ready_line = line.strip()
                    self._ready.set()


class Bench:
    def __init__(self, a):
        self.a = a
        self.work = tempfile.mkdtemp(prefix="slip-bench-iokernel-")
        self.janitor = procs.Janitor()
        self.notes = []
        self.ns = None
        self.tag = f"{os.getpid() % 100000}"
        self.root = os.geteuid() == 0
        # The service gets the first CPUs (its first kthread on the first), the loadgen the third or else the
        # last, iokerneld the fourth or else the loadgen's: on 2 vCPUs the daemon, the loadgen and the
        # synthetic's second kthread share the second CPU, and nothing here can avoid that.
        cpus = sorted(os.sched_getaffinity(0))
        self.server_cpu = cpus[0]
        self.synth_cpus = cpus[:2]
        self.client_cpu = cpus[2] if len(cpus) >= 3 else cpus[-1]
        self.daemon_cpu = cpus[3] if len(cpus) >= 4 else self.client_cpu

    # ---- environment -------------------------------------------------------------------------------------------
    def need_root(self, system):
        """None when system can run here, else why not."""
        if system == "kernel":
            return None
        if not self.root:
            what = ("iokerneld's net_tap port in a network namespace of its own" if system == "iokernel" else
                    "DPDK's runtime files in /var/run/dpdk and a network namespace")
            return f"needs root ({what}); run tools/bench/run iokernel as root"
        if system == "iokernel" and not os.path.exists("/dev/net/tun"):
            return "/dev/net/tun is missing: iokerneld's net_tap port cannot be made"
        if self.ns is None:
            return "could not create a network namespace"
        return None

    def make_ns(self):
        if not self.root:
            return
        name = f"slipiokb{self.tag}"
        if subprocess.run(["ip", "netns", "add", name], stderr=subprocess.DEVNULL).returncode != 0:
            self.notes.append("ip netns add failed: the systems that need a namespace were skipped")
            return
        self.ns = name
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)

    def in_ns(self, argv):
        return (["ip", "netns", "exec", self.ns] if self.ns else []) + argv

    def pin(self, argv, cpus):
        return ["taskset", "-c", ",".join(map(str, cpus))] + argv if shutil.which("taskset") else argv

    def server(self, name, argv, ready, timeout=30, preexec=None):
        s = Server(name, argv, os.path.join(self.work, name + ".log"), ready, self.janitor, preexec)
        s.start(timeout)
        return s

    # ---- the three systems: (started processes, loadgen argv prefix, server address, cpu pids, placement) ------
    def synthetic_argv(self, stack_args, kthreads, spin):
        return ([SYNTHETIC, "--port", "0", "--proto", self.a.proto, "--service", self.a.service, "--seed", "1",
                 "--kthreads", str(kthreads)] + (["--spin"] if spin else []) + stack_args)

    def start_iokernel(self):
        a = self.a
        daemon_cpu, synth_cpus, client_cpu = self.daemon_cpu, self.synth_cpus, self.client_cpu
        if a.iok_daemon_alone:
            cpus = sorted(os.sched_getaffinity(0))
            daemon_cpu, rest = cpus[-1], cpus[:-1] or cpus
            synth_cpus, client_cpu = rest[:2], rest[2] if len(rest) >= 3 else rest[-1]
        sock = os.path.join(self.work, "iok.sock")
        prefix = self.janitor.prefix(f"slip-bench-iokd-{self.tag}")
        # --cores: the synthetic's 2 plus the loadgen's 1, so the allocator's capacity is not what limits the
        # synthetic; on 2 vCPUs the machine is (the daemon, 2 kthreads and the loadgen share 2 CPUs).
        argv = [IOKERNELD, "--vdev", f"net_tap0,iface=sib{self.tag}", "--file-prefix", prefix, "--socket", sock,
                "--cores", "3", "--core-interval-us", f"{a.core_interval_us:g}"]
        if not a.iok_busy_poll:
            argv.append("--idle-backoff")
        # With --idle-backoff the daemon sets its own timer slack to 1 ns, so its sleeps are what it asks for.
        daemon = self.server("iokerneld", self.in_ns(self.pin(argv, [daemon_cpu])), "listening on")
        # Shared-mode runtimes need no namespace: they reach the daemon over its Unix socket. The runtime
        # pins kthread i to the i-th CPU it may use.
        srv = self.server("synthetic-iokernel", self.pin(self.synthetic_argv(
            ["--stack", "slip", "--iokernel", sock, "--ip", IOK_SERVER_IP], kthreads=a.iok_server_kthreads,
            spin=a.iok_server_spin),
            synth_cpus), "slip-synthetic: ready")
        lg = ["--stack", "slip", "--iokernel", sock, "--ip", IOK_CLIENT_IP, "--kthreads", "1",
              "--connect-timeout", "15"] + (["--spin"] if a.iok_loadgen_spin else [])
        placement = (f"iokerneld on CPU {daemon_cpu} ({'busy-poll' if a.iok_busy_poll else 'idle backoff'}"
                     f", --cores 3); synthetic {a.iok_server_kthreads} kthreads (1 guaranteed, "
                     f"max {a.iok_server_kthreads}, "
                     f"{'spinning' if a.iok_server_spin else 'park when idle'}) on CPUs "
                     f"{','.join(map(str, synth_cpus))}; loadgen 1 kthread "
                     f"({'spinning' if a.iok_loadgen_spin else 'parks when idle'}) on CPU {client_cpu}")
        return ([daemon, srv], lg, [client_cpu], IOK_SERVER_IP, srv,
                {"service": srv.proc.pid, "daemon": daemon.proc.pid}, placement, sock)

    def start_direct(self):
        sock = f"slipiokb{self.tag}.sock"
        sprefix = self.janitor.prefix(f"slip-bench-iok-s-{self.tag}")
        cprefix = self.janitor.prefix(f"slip-bench-iok-c-{self.tag}")
        vdev = MEMIF.format(role="server", mac="02:00:00:00:29:01", sock=sock)
        srv = self.server("synthetic-direct", self.in_ns(self.pin(self.synthetic_argv(
            ["--stack", "slip", "--vdev", vdev, "--ip", MEMIF_SERVER_IP, "--file-prefix", sprefix],
            kthreads=1, spin=True), [self.server_cpu])), "slip-synthetic: ready")
        lg = ["--stack", "slip", "--vdev", MEMIF.format(role="client", mac="02:00:00:00:29:02", sock=sock),
              "--ip", MEMIF_CLIENT_IP, "--file-prefix", cprefix, "--kthreads", "1", "--spin",
              "--connect-timeout", "15"]
        placement = (f"synthetic 1 kthread busy-polling on CPU {self.server_cpu}; "
                     f"loadgen 1 kthread spinning on CPU {self.client_cpu}")
        return [srv], lg, [self.client_cpu], MEMIF_SERVER_IP, srv, {"service": srv.proc.pid}, placement, None

    def start_kernel(self):
        srv = self.server("synthetic-kernel", self.in_ns(self.pin(self.synthetic_argv(
            ["--stack", "kernel", "--ip", "127.0.0.1"], kthreads=1, spin=False), [self.server_cpu])),
            "slip-synthetic: ready")
        lg = ["--stack", "kernel", "--kthreads", "1", "--spin"]
        where = "the benchmark's namespace's loopback" if self.ns else "the host's loopback"
        placement = (f"synthetic 1 kthread parking in epoll on CPU {self.server_cpu}; loadgen 1 kthread "
                     f"spinning on CPU {self.client_cpu}; over {where}")
        return [srv], lg, [self.client_cpu], "127.0.0.1", srv, {"service": srv.proc.pid}, placement, None

    # ---- one load point ----------------------------------------------------------------------------------------
    def port_of(self, srv):
        key = f"{self.a.proto}_port="
        for tok in (srv.ready_line or "").split():
            if tok.startswith(key):
                return int(tok[len(key):])
        raise RuntimeError(f"no {key} in the synthetic's ready line: {srv.ready_line!r}")

    def iok_stats(self, sock):
        """The daemon's stats document (see docs/iokernel.md), or None."""
        if not sock:
            return None
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(sock + ".stats")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
            return json.loads(data)
        except (OSError, ValueError):
            return None

    def runtime_counters(self, stats, ip):
        """The core-allocation counters of the runtime at ip in a stats document, or None."""
        for r in (stats or {}).get("runtimes", []):
            if r.get("ip") == ip:
                return {k: r.get(k) for k in ("core_grants", "core_revokes", "core_yields", "core_kicks", "rx_dropped")}
        return None

    def point(self, system, rate, lg_args, lg_cpus, addr, port, pids, sock, idx):
        a = self.a
        out = os.path.join(self.work, "runs", system, f"{int(rate)}")
        log_path = os.path.join(self.work, "runs", f"{system}-{int(rate)}.log")
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        progress = max(0.05, min(0.25, a.warmup / 3))
        argv = self.pin([LOADGEN] + lg_args + [
            "--server", f"{addr}:{port}", "--proto", f"synthetic-{a.proto}", "--mode", "open", "--arrival", "poisson",
            "--rate", f"{rate:.0f}", "--conns", str(a.conns), "--duration", f"{a.duration:g}",
            "--warmup", f"{a.warmup:g}", "--timeout", "1", "--seed", str(7 + idx), "--progress", f"{progress:g}",
            "--out", out, "--label", f"{system}-{int(rate)}"], lg_cpus)
        if system != "iokernel":
            argv = self.in_ns(argv)
        before = self.runtime_counters(self.iok_stats(sock), IOK_SERVER_IP)
        starts = []  # loadgen's schedule start on our clock, from each progress line
        t_begin = time.monotonic()
        with open(log_path, "w") as log, CpuSampler(pids) as cpu:
            log.write("$ " + " ".join(argv) + "\n")
            log.flush()
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                    start_new_session=True, text=True, errors="replace")
            self.janitor.track(proc)
            cpu.pids["loadgen"] = proc.pid
            deadline = threading.Timer(a.warmup + a.duration + 60, lambda: procs.stop(proc))
            deadline.start()
            for line in proc.stderr:
                now = time.monotonic()
                log.write(line)
                if line.startswith("[") and "s/" in line:
                    try:
                        starts.append(now - float(line[1:line.index("s/")]))
                    except ValueError:
                        pass
            rc = proc.wait()
            deadline.cancel()
            self.janitor.procs.remove(proc)
        if rc != 0:
            raise RuntimeError(f"slip-loadgen ({system} at {rate:.0f} rps) exited {rc}\n" + procs.log_tail(log_path))
        with open(os.path.join(out, "result.json")) as f:
            r = json.load(f)
        lat, req = r["latency_us"], r["requests"]
        row = {"offered_rps": rate, "achieved_rps": r["achieved_rps"], "p50_us": lat["p50"], "p99_us": lat["p99"],
               "p999_us": lat["p999"], "cpu_s": None}
        # The measured window on our clock: the earliest-seen progress line is the least delayed.
        if starts:
            w0 = min(starts) + a.warmup
            w1 = w0 + a.duration
            for name in list(pids) + ["loadgen"]:
                c0, c1 = cpu.at(name, w0), cpu.at(name, w1)
                key = "cpu_s" if name == "service" else f"{name}_cpu_s"
                row[key] = None if c0 is None or c1 is None else round(c1 - c0, 3)
                q0, q1 = cpu.at(name + ":rq", w0), cpu.at(name + ":rq", w1)
                key = "service" if name == "service" else name
                row[f"{key}_rq_wait_ms"] = None if q0 is None or q1 is None else round((q1 - q0) * 1e3, 1)
        else:
            self.notes.append(f"{system} {rate:.0f}: no progress lines from slip-loadgen, cpu_s unknown")
        row["cores"] = None if row["cpu_s"] is None else round(row["cpu_s"] / a.duration, 3)
        sent = max(1, req["sent"])
        row["lost_frac"] = round((req["sent"] - req["completed"]) / sent, 5)
        row["timeouts"], row["dropped"] = req["timeouts"], req["dropped"]
        row["send_lag_p99_us"] = r["send_lag_us"]["p99"]
        after = self.runtime_counters(self.iok_stats(sock), IOK_SERVER_IP)
        if before and after:
            row["iok_counters"] = {k: (after[k] or 0) - (before[k] or 0) for k in after}
        row["wall_s"] = round(time.monotonic() - t_begin, 2)
        row["loadavg_1m"] = round(os.getloadavg()[0], 2)  # how busy the rest of the machine was
        return row

    # ---- a system's sweep --------------------------------------------------------------------------------------
    def sweep(self, system, rep, meta):
        """One sweep of system's load ladder on fresh processes; its rows, or None when it cannot run here."""
        a = self.a
        why = self.need_root(system)
        if why:
            if rep == 0:
                print(f"== {system}: skipped: {why}", flush=True)
                meta[system] = {"skipped": why}
                self.notes.append(f"{system} skipped: {why}")
            return None
        started, lg, lg_cpus, addr, srv, pids, placement, sock = getattr(self, f"start_{system}")()
        port = self.port_of(srv)
        for name, pid in pids.items():  # wrappers (ip netns exec, taskset) exec, so the pid is the program's
            comm = open(f"/proc/{pid}/comm").read().strip() if os.path.exists(f"/proc/{pid}/comm") else "?"
            if comm not in ("slip-synthetic", "iokerneld"):
                self.notes.append(f"{system}: pid {pid} ({name}) is {comm!r}, so its cpu_s is not the program's")
        meta[system] = {"placement": placement, "server": " ".join(srv.cmd), "loadgen_stack_args": " ".join(lg)}
        for s in started:
            if s is not srv:
                meta[system][s.name] = " ".join(s.cmd)
        if sock:  # what the daemon was told at registration
            regs = {r["ip"]: {k: r.get(k) for k in ("class", "n_kthreads", "guaranteed_cores", "max_cores",
                                                    "delay_threshold_us")}
                    for r in (self.iok_stats(sock) or {}).get("runtimes", [])}
            meta[system]["registration"] = regs.get(IOK_SERVER_IP)
        reps = f" (rep {rep + 1}/{a.reps})" if a.reps > 1 else ""
        print(f"== {system}{reps}: {placement}", flush=True)
        rows, history = [], []
        try:
            for i, rate in enumerate(a.rate_list):
                print(f"  {system:8s} point {i + 1}/{len(a.rate_list)}: offered {rate:9.0f} rps ...", end="",
                      flush=True)
                row = self.point(system, rate, lg, lg_cpus, addr, port, pids, sock, i)
                rows.append(row)
                history.append((rate, row["achieved_rps"]))
                print(f" achieved {row['achieved_rps']:9.0f}  p50 {row['p50_us']:8.1f}  p99 {row['p99_us']:8.1f}  "
                      f"p99.9 {row['p999_us']:8.1f} us  cpu {fmt(row['cpu_s'], '.2f')} s  lost "
                      f"{row['lost_frac']:.1%}", flush=True)
                for s in started:
                    if not s.alive():
                        raise RuntimeError(f"{s.name} exited during the sweep\n{procs.log_tail(s.log_path)}")
                if not a.no_stop and should_stop(history, 0.8, 2):
                    print(f"  {system}: saturated (2 points below 80% of offered), stopping its sweep", flush=True)
                    break
        finally:
            for s in reversed(started):
                s.stop()
        return rows

    def curves(self):
        """{system: [point, ...]} (medians over the reps) and each system's settings or why it did not run."""
        self.make_ns()
        runs, meta, failed = {}, {}, set()
        for rep in range(self.a.reps):
            k = rep % len(self.a.systems)  # rotate the order, so drift on a shared machine spreads over all
            for system in self.a.systems[k:] + self.a.systems[:k]:
                if system in failed:
                    continue
                try:
                    rows = self.sweep(system, rep, meta)
                except (procs.StartError, RuntimeError) as e:
                    print(f"\n  {system}: error: {e}", flush=True)
                    meta.setdefault(system, {})["error"] = str(e).splitlines()[0]
                    self.notes.append(f"{system} failed: {str(e).splitlines()[0]}")
                    failed.add(system)
                    continue
                if rows is not None:
                    runs.setdefault(system, []).append(rows)
        return {s: merge_reps(r) for s, r in runs.items() if s not in failed}, meta

    def cleanup(self):
        self.janitor.cleanup()
        if self.ns:
            subprocess.run(["ip", "netns", "del", self.ns])
        if self.a.keep:
            print(f"logs kept in {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def merge_reps(reps):
    """One row per offered rate: the median of each number over the reps that ran it, and with more
    than one rep, each number's [min, max] under "spread"."""
    by_rate = {}
    for rows in reps:
        for row in rows:
            by_rate.setdefault(row["offered_rps"], []).append(row)
    out = []
    for rate, rows in sorted(by_rate.items()):
        if len(reps) == 1:
            out.append(rows[0])
            continue
        m = {"offered_rps": rate, "reps": len(rows)}
        spread = {}
        for k, v in rows[0].items():
            if k == "offered_rps":
                continue
            if isinstance(v, dict):
                m[k] = {kk: statistics.median(r[k][kk] for r in rows if k in r) for kk in v}
                continue
            vals = [r.get(k) for r in rows if isinstance(r.get(k), (int, float))]
            m[k] = round(statistics.median(vals), 3) if vals else None
            if vals:
                spread[k] = [min(vals), max(vals)]
        m["spread"] = spread
        out.append(m)
    return out


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def reaction(a, work):
    """Runs slip-bench-iokernel; its JSON, unchanged."""
    path = os.path.join(work, "reaction.json")
    argv = [REACTION, "--json", path] + (["--trials", str(a.trials)] if a.trials else []) + shlex.split(
        a.reaction_args)
    print("== reaction: " + " ".join(argv), flush=True)
    if subprocess.run(argv).returncode != 0:
        raise RuntimeError("slip-bench-iokernel failed (its output is above)")
    with open(path) as f:
        return json.load(f)


def us_pair(p):
    return {"p50": round(p["p50_ns"] / 1e3, 2), "p99": round(p["p99_ns"] / 1e3, 2)}


def machine():
    return {"host": platform.node(), "cpus": os.cpu_count(), "kernel": platform.release(),
            "cpu_model": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
                              "?"),
            "loadavg_at_start": os.getloadavg()}


def print_table(result, a):
    r = result.get("realloc_us")
    if r:
        w = result["wake_baseline_us"]
        print("\nreaction (us)     p50      p99")
        for k in ("parked", "spinning"):
            print(f"  {k:12s} {r[k]['p50']:8.1f} {r[k]['p99']:8.1f}")
        print(f"  {'wake floor':12s} {w['p50']:8.1f} {w['p99']:8.1f}")
    curves = result.get("curves")
    if curves is None:
        return
    print(f"\nlatency against load: {a.service}, {a.proto}, {a.conns} conns, {a.duration:g} s points after "
          f"{a.warmup:g} s warm-up; cpu_s = the synthetic's CPU seconds in the window, cores = cpu_s / duration")
    print(f"  {'system':9s} {'offered':>9s} {'achieved':>9s} {'p50 us':>9s} {'p99 us':>9s} {'p99.9 us':>9s} "
          f"{'cpu_s':>7s} {'cores':>6s} {'lost':>6s}  extra")
    for system, rows in curves.items():
        for row in rows:
            extra = ""
            if row.get("service_rq_wait_ms") is not None:
                extra = f"service waited for a CPU {row['service_rq_wait_ms']:.0f} ms"
            if row.get("loadgen_rq_wait_ms") is not None:
                extra += f", loadgen {row['loadgen_rq_wait_ms']:.0f} ms"
            if "daemon_cpu_s" in row:
                extra += (f"; iokerneld cpu {fmt(row['daemon_cpu_s'], '.2f')} s, waited for a CPU "
                          f"{fmt(row.get('daemon_rq_wait_ms'), '.0f')} ms")
            if row.get("iok_counters"):
                extra += f", grants {row['iok_counters'].get('core_grants')}"
            print(f"  {system:9s} {row['offered_rps']:9.0f} {row['achieved_rps']:9.0f} {row['p50_us']:9.1f} "
                  f"{row['p99_us']:9.1f} {row['p999_us']:9.1f} {fmt(row['cpu_s'], '7.2f')} "
                  f"{fmt(row['cores'], '6.2f')} {row['lost_frac']:6.1%}  {extra}")


def main(argv=None):
    a = parse_args(argv)
    if a.skip_reaction and a.skip_curves:
        print("tools/bench/run iokernel: --skip-reaction and --skip-curves leave nothing to run", file=sys.stderr)
        return 2
    result = {}
    b = Bench(a)
    rc = 0
    try:
        if not a.skip_reaction:
            try:
                result.update(reaction(a, b.work))
                result["realloc_us"] = {k: us_pair(v) for k, v in result["reaction"].items()}
                result["wake_baseline_us"] = us_pair(result["wake_baseline"])
            except (OSError, RuntimeError, KeyError, ValueError) as e:
                print(f"tools/bench/run iokernel: reaction: {e}", file=sys.stderr)
                rc = 1
        if not a.skip_curves:
            curves, meta = b.curves()
            result["curves"] = curves
            result["curves_config"] = {
                "service": a.service, "proto": a.proto, "conns": a.conns, "duration_s": a.duration,
                "warmup_s": a.warmup, "reps": a.reps, "offered_rps": a.rate_list, "capacity_rps": a.capacity_rps,
                "client": "slip-loadgen, open loop, Poisson arrivals, latency from intended send times",
                "saturation_stop": None if a.no_stop else "2 points in a row below 80% of offered",
                "systems": meta, "machine": machine(),
                "cpu_s": "utime+stime of the synthetic process (all threads) over the measured window, from "
                         "/proc/PID/stat sampled every 10 ms and interpolated at the window's ends"}
            if any("error" in m for m in meta.values()):
                rc = 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        rc = 130
    finally:
        b.cleanup()
    result["notes"] = b.notes
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(result, f, indent=2)
    print_table(result, a)
    for n in b.notes:
        print("note:", n)
    print(f"wrote {a.json}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
