"""Runs one figure's sweep: for each rep, each system in turn (the order rotates
per rep, so slow drift on a shared machine spreads over all systems) starts
its server, steps the offered load with one slip-loadgen run per step into
RUN/<system>/<rate>/rep<k>/, and stops once the system is saturated. Then it
aggregates the reps (aggregate.py) and draws the figure (plot.py)."""

import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import time

import aggregate
import procs

MARKER = ".slip-experiment"


class SetupError(RuntimeError):
    """The run cannot start: the message names the cause and the fix."""


def step_saturated(offered, achieved, ratio):
    """A step is saturated when it achieved less than ratio * offered (or failed: achieved None)."""
    return achieved is None or achieved < ratio * offered


def should_stop(history, ratio, steps):
    """True once the last `steps` entries of history [(offered, achieved), ...] are all saturated."""
    if steps <= 0 or len(history) < steps:
        return False
    return all(step_saturated(o, a, ratio) for o, a in history[-steps:])


def _fmt_dur(s):
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _krps(x):
    return "-" if x is None else f"{x / 1000:.1f}k"


def _us(x):
    return "-" if x is None else f"{x:.1f}us"


def git_rev(root):
    """HEAD's hash, with '+dirty' when the tree has changes; '?' outside git."""
    try:
        rev = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "?"


def machine():
    """What the machine is: CPU model, CPUs online and usable, kernel."""
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu_model": model, "nproc": os.cpu_count(), "usable_cpus": sorted(os.sched_getaffinity(0)),
            "kernel": platform.release(), "python": platform.python_version()}


class Experiment:
    """One run of one figure into run_dir."""

    def __init__(self, name, fig, settings, run_dir, build_dir, root, is_root=None, out=None):
        self.name, self.fig, self.s = name, fig, settings
        self.run_dir, self.build_dir, self.root = run_dir, build_dir, root
        self.is_root = (os.geteuid() == 0) if is_root is None else is_root
        self.out = out or (lambda msg: print(msg, flush=True))
        self.janitor = procs.Janitor()
        self.cpus = procs.CpuPlan()
        self.systems = []     # [{"name", "label", "status", "reason"}] for data.json
        self.placement = {}   # system -> {"server": cpus, "loadgen": cpus, "note"}
        self.counter = 0
        self.done = 0
        self.planned = 0
        self.t0 = None

    # --- setup -------------------------------------------------------------

    def binary(self, rel):
        return os.path.join(self.build_dir, rel)

    def check(self):
        """Decides which systems run (skipping root-only ones when not root); SetupError when
        a binary is missing."""
        missing = []
        for sys_ in self.fig["systems"]:
            entry = {"name": sys_["name"], "label": sys_.get("label", sys_["name"]), "status": "ok", "reason": ""}
            if sys_.get("needs_root") and not self.is_root:
                entry.update(status="skipped", reason="needs root (DPDK keeps its runtime files in /var/run/dpdk)")
                self.out(f"skipping {sys_['name']}: {entry['reason']}")
            else:
                for rel in (sys_["server"]["binary"], self.fig["loadgen"]["binary"]):
                    path = self.binary(rel)
                    if not (os.path.isfile(path) and os.access(path, os.X_OK)) and path not in missing:
                        missing.append(path)
            self.systems.append(entry)
        if missing:
            raise SetupError("missing: " + ", ".join(missing) + f"\nbuild first: ninja -C {self.build_dir}")
        runnable = [s for s in self.systems if s["status"] == "ok"]
        self.planned = self.s["reps"] * len(self.s["steps_rps"]) * len(runnable)

    def prepare_dir(self):
        """Makes run_dir ready: refuses a non-empty directory that is not a run dir, and clears
        the previous run of this figure from one that is."""
        d = self.run_dir
        if os.path.isdir(d) and os.listdir(d) and not os.path.exists(os.path.join(d, MARKER)):
            raise SetupError(f"{d} is not empty and holds no earlier experiment run ({MARKER}); "
                             f"pick another --out")
        os.makedirs(d, exist_ok=True)
        for sys_ in self.fig["systems"]:
            shutil.rmtree(os.path.join(d, sys_["name"]), ignore_errors=True)
        shutil.rmtree(os.path.join(d, "logs"), ignore_errors=True)
        for f in ("data.json", "data.csv", "meta.json", "run.json", f"{self.name}.png"):
            if os.path.exists(os.path.join(d, f)):
                os.remove(os.path.join(d, f))
        with open(os.path.join(d, MARKER), "w") as f:
            f.write(self.name + "\n")

    def info(self):
        """run.json: what aggregation and plotting need to know about this run."""
        return {"figure": self.name, "title": self.fig.get("title", ""), "notes": self.fig.get("notes", ""),
                "systems": self.systems, "settings": self.s,
                "plot": self.fig.get("plot", {"percentiles": aggregate.DEFAULT_PERCENTILES})}

    def meta(self, finished=False):
        m = {"figure": self.name, "git_rev": git_rev(self.root),
             "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
             "machine": machine(), "settings": self.s, "placement": self.placement,
             "systems": self.systems, "notes": self.fig.get("notes", ""),
             "commands": {s["name"]: {"server": [s["server"]["binary"]] + s["server"]["args"],
                                      "loadgen": [self.fig["loadgen"]["binary"]] + self.fig["loadgen"]["args"]
                                      + s["loadgen"]["args"]} for s in self.fig["systems"]}}
        if finished:
            m["elapsed_s"] = round(time.monotonic() - self.t0, 1)
        return m

    def _write_json(self, name, obj):
        with open(os.path.join(self.run_dir, name), "w") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")

    # --- running ------------------------------------------------------------

    def _ids(self):
        """Fresh memif socket name and DPDK prefixes for one server start."""
        self.counter += 1
        tag = f"{os.getpid()}-{self.counter}"
        return {"sock": f"/run/slip-exp-{tag}.sock", "server_prefix": self.janitor.prefix(f"slipexp{tag}s"),
                "loadgen_prefix": self.janitor.prefix(f"slipexp{tag}c")}

    def _start_server(self, sys_, rep, ids, cpus):
        spec = sys_["server"]
        cmd = [self.binary(spec["binary"])] + [a.format(**ids) for a in spec["args"]]
        log = os.path.join(self.run_dir, "logs", f"{sys_['name']}-server-rep{rep}-{self.counter}.log")
        srv = procs.Server(sys_["name"], self.cpus.wrap(cmd, cpus), log, spec.get("ready", "ready"),
                           self.janitor, self.cpus.preexec(cpus))
        srv.start(spec.get("ready_timeout_s", 30))
        return srv

    def _run_loadgen(self, sys_, rate, rep, ids, cpus):
        """One loadgen run; (achieved rps or None, result dict or None, exit status)."""
        rep_dir = os.path.join(self.run_dir, sys_["name"], str(rate), f"rep{rep}")
        os.makedirs(rep_dir, exist_ok=True)
        lg = self.fig["loadgen"]
        args = lg["args"] + sys_["loadgen"]["args"] + [
            "--server", sys_["address"], "--rate", str(rate), "--duration", str(self.s["duration_s"]),
            "--warmup", str(self.s["warmup_s"]), "--seed", str(1 + rep), "--out", rep_dir,
            "--label", f"{sys_['name']}/{rate}/rep{rep}"]
        cmd = self.cpus.wrap([self.binary(lg["binary"])] + [a.format(**ids) for a in args], cpus)
        limit = self.s["warmup_s"] + self.s["duration_s"] + 60
        log = os.path.join(rep_dir, "loadgen.log")
        rc, elapsed = procs.run_logged(cmd, log, limit, self.janitor, self.cpus.preexec(cpus))
        self.janitor.remove_prefix(ids["loadgen_prefix"])
        res = aggregate.read_json(os.path.join(rep_dir, "result.json"))
        with open(os.path.join(rep_dir, "status.json"), "w") as f:
            json.dump({"rc": rc, "elapsed_s": round(elapsed, 2), "cmd": cmd}, f, indent=1)
        if rc != 0 or not aggregate.valid_result(res):
            why = f"exit status {rc}" if rc != 0 else "no valid result.json"
            self.out(f"  {sys_['name']} @ {_krps(rate)}: loadgen run failed ({why})\n{procs.log_tail(log, 8)}")
            return None, None, rc
        return res["achieved_rps"], res, rc

    def _progress(self, sys_, rate, rep, achieved, res):
        self.done += 1
        el = time.monotonic() - self.t0
        eta = el / self.done * max(0, self.planned - self.done)
        lat = (res or {}).get("latency_us", {})
        self.out(f"[{self.done:3d}/{self.planned}] {sys_['name']:<10} rep {rep + 1}/{self.s['reps']}  "
                 f"offered {_krps(rate):>7}  achieved {_krps(achieved):>7}  "
                 f"p50 {_us(lat.get('p50')):>9}  p99 {_us(lat.get('p99')):>9}  "
                 f"elapsed {_fmt_dur(el)}  ETA <= {_fmt_dur(eta)}")

    def sweep_system(self, sys_, rep):
        """One rep of one system: server up, loads stepped until saturated, server down.
        Returns an error string, or None."""
        place = self.placement[sys_["name"]]
        ids = self._ids()
        self.out(f"{sys_['name']}: starting server (rep {rep + 1}/{self.s['reps']})")
        srv = self._start_server(sys_, rep, ids, place["server"])
        history, restarted = [], False
        sat = self.s["saturation"]
        steps = self.s["steps_rps"]
        try:
            for i, rate in enumerate(steps):
                if not srv.alive():
                    self.out(f"{sys_['name']}: server died (status {srv.proc.returncode})\n"
                             f"{procs.log_tail(srv.log_path)}")
                    if restarted:
                        return "server died twice"
                    restarted = True
                    self.janitor.remove_prefix(ids["server_prefix"])
                    srv = self._start_server(sys_, rep, ids, place["server"])
                achieved, res, _ = self._run_loadgen(sys_, rate, rep, ids, place["loadgen"])
                self._progress(sys_, rate, rep, achieved, res)
                history.append((rate, achieved))
                if should_stop(history, sat["ratio"], sat["steps"]) and i + 1 < len(steps):
                    self.out(f"{sys_['name']}: saturated ({sat['steps']} steps below {sat['ratio']:.0%} of "
                             f"offered), skipping {len(steps) - i - 1} higher step(s)")
                    self.planned -= len(steps) - i - 1
                    break
        finally:
            rc = srv.stop()
            self.janitor.remove_prefix(ids["server_prefix"])
            if rc not in (0, None, -signal.SIGTERM):
                self.out(f"{sys_['name']}: server exited with status {rc} on SIGTERM (see {srv.log_path})")
        return None

    def run(self):
        """The whole figure; returns the aggregated data."""
        self.t0 = time.monotonic()
        runnable = [s for s, e in zip(self.fig["systems"], self.systems) if e["status"] == "ok"]
        for s in runnable:
            srv, lg, note = self.cpus.assign(s["server"].get("cpus", 1), s["loadgen"].get("cpus", 1))
            self.placement[s["name"]] = {"server": srv, "loadgen": lg, "runner": "not pinned", "note": note}
            if note:
                self.out(f"{s['name']}: {note}")
        self._write_json("run.json", self.info())
        self._write_json("meta.json", self.meta())
        status = {e["name"]: e for e in self.systems}
        for rep in range(self.s["reps"]):
            k = rep % max(1, len(runnable))
            for sys_ in runnable[k:] + runnable[:k]:
                if status[sys_["name"]]["status"] != "ok":
                    continue
                before = (self.done, self.planned)
                try:
                    err = self.sweep_system(sys_, rep)
                except procs.StartError as e:
                    err = str(e)
                    self.out(err)
                if err:
                    # This system is done for: drop the runs it would still have made from the plan.
                    status[sys_["name"]].update(status="error", reason=err.splitlines()[0])
                    ran, dropped = self.done - before[0], before[1] - self.planned
                    self.planned -= len(self.s["steps_rps"]) * (self.s["reps"] - rep) - ran - dropped
        return self.finish()

    def finish(self):
        """Aggregates what ran, writes data.json, data.csv, meta.json and the PNG."""
        self._write_json("run.json", self.info())
        data = aggregate.aggregate(self.run_dir, self.info())
        aggregate.write_data(self.run_dir, data)
        self._write_json("meta.json", self.meta(finished=True))
        return data


def print_summary(data, out=print):
    """A table of the medians per system and rate."""
    out(f"{'system':<10} {'offered':>8} {'achieved':>9} {'p50':>9} {'p99':>9} {'p99.9':>9}  reps")
    for p in data["points"]:
        lat = p.get("latency_us", {})
        med = lambda k: (lat.get(k) or {}).get("median")  # noqa: E731
        ach = (p.get("achieved_rps") or {}).get("median")
        flag = " saturated" if p.get("saturated") else ""
        out(f"{p['system']:<10} {_krps(p['offered_rps']):>8} {_krps(ach):>9} {_us(med('p50')):>9} "
            f"{_us(med('p99')):>9} {_us(med('p999')):>9}  {p['n_ok']}/{p['n_ok'] + p['n_failed']}{flag}")
    for s in data["systems"]:
        if s.get("status") != "ok":
            out(f"{s['name']}: {s['status']}: {s.get('reason', '')}")


def install_signal_handlers():
    """SIGTERM and SIGHUP end the runner like Ctrl-C, so its cleanup runs."""
    def handler(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)

