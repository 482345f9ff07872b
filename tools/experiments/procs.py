"""Child processes of an experiment: servers waiting for their ready line,
loadgen runs, CPU pinning, and the cleanup of everything they leave behind
(processes, DPDK runtime dirs) however the runner exits."""

import os
import shutil
import signal
import subprocess
import threading
import time
from collections import deque

DPDK_RUN_DIR = "/var/run/dpdk"


def cpu_seconds(pid):
    """utime + stime of a whole process (all its threads) in seconds; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class StartError(RuntimeError):
    """A server that exited or never printed its ready line; the message has its log tail."""


def log_tail(path, lines=20):
    """The last lines of a log file, indented, or a note that it is empty or missing."""
    try:
        with open(path, errors="replace") as f:
            tail = list(deque(f, maxlen=lines))
    except OSError as e:
        return f"  (no log: {e})"
    if not tail:
        return f"  ({path} is empty)"
    return f"  --- last {len(tail)} lines of {path} ---\n" + "".join("  | " + l for l in tail).rstrip("\n")


class CpuPlan:
    """Which CPUs the server and the loadgen get: disjoint sets when the machine has enough."""

    def __init__(self, cpus=None):
        self.cpus = sorted(cpus if cpus is not None else os.sched_getaffinity(0))
        self.taskset = shutil.which("taskset")

    def assign(self, server_n, loadgen_n):
        """(server cpus, loadgen cpus, note); empty lists mean 'not pinned'."""
        if len(self.cpus) < 2:
            return [], [], f"only {len(self.cpus)} CPU: nothing pinned, server and loadgen share it"
        server = self.cpus[:server_n]
        rest = self.cpus[server_n:] or self.cpus[-1:]
        loadgen = rest[:loadgen_n]
        note = "" if not set(server) & set(loadgen) else "not enough CPUs: server and loadgen overlap"
        return server, loadgen, note

    def wrap(self, cmd, cpus):
        """cmd prefixed with taskset for cpus (unchanged when cpus is empty)."""
        if not cpus:
            return list(cmd)
        if self.taskset:
            return [self.taskset, "-c", ",".join(map(str, cpus))] + list(cmd)
        return list(cmd)  # pinned by preexec() instead

    def preexec(self, cpus):
        """A preexec_fn pinning the child when taskset is missing, else None."""
        if not cpus or self.taskset:
            return None
        return lambda: os.sched_setaffinity(0, cpus)


class Janitor:
    """Everything to undo at exit: live children and DPDK file prefixes."""

    def __init__(self):
        self.procs = []
        self.prefixes = set()

    def track(self, proc):
        self.procs.append(proc)

    def prefix(self, name):
        """Registers a DPDK --file-prefix so its runtime dir is removed at cleanup."""
        self.prefixes.add(name)
        return name

    def remove_prefix(self, name):
        path = os.path.join(DPDK_RUN_DIR, name)
        if name and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)

    def cleanup(self):
        for p in self.procs:
            stop(p)
        self.procs.clear()
        for name in sorted(self.prefixes):
            self.remove_prefix(name)


def stop(proc, grace_s=5.0):
    """SIGTERM the process group, then SIGKILL after grace_s; returns the exit status."""
    if proc.poll() is not None:
        return proc.returncode
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            return proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    return proc.poll()


class Server:
    """One server process: started, waited on until its ready line, stopped."""

    def __init__(self, name, cmd, log_path, ready, janitor, preexec=None):
        self.name, self.cmd, self.log_path, self.ready = name, cmd, log_path, ready
        self.janitor, self.preexec = janitor, preexec
        self.proc = None
        self._ready = threading.Event()

    def start(self, timeout_s):
        """Starts the server and waits for its ready line; StartError with its log tail otherwise."""
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        log = open(self.log_path, "w")
        log.write("$ " + " ".join(self.cmd) + "\n")
        log.flush()
        try:
            self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         preexec_fn=self.preexec, text=True, errors="replace")
        except OSError as e:
            log.close()
            raise StartError(f"{self.name}: cannot run {self.cmd[0]}: {e}")
        self.janitor.track(self.proc)
        pump = threading.Thread(target=self._pump, args=(log,), daemon=True)
        pump.start()
        deadline = time.monotonic() + timeout_s
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None:
                pump.join(1.0)  # let the pump drain the last lines into the log
                raise StartError(f"{self.name}: server exited with status {self.proc.returncode} before "
                                 f"printing '{self.ready}'\n{log_tail(self.log_path)}")
            if time.monotonic() > deadline:
                self.stop()
                raise StartError(f"{self.name}: server printed no '{self.ready}' line within {timeout_s} s\n"
                                 f"{log_tail(self.log_path)}")

    def _pump(self, log):
        """Copies the server's output to its log, and notices the ready line."""
        with log:
            for line in self.proc.stdout:
                log.write(line)
                log.flush()
                if line.startswith(self.ready):
                    self._ready.set()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """Stops the server; its exit status (None if never started)."""
        if self.proc is None:
            return None
        rc = stop(self.proc)
        if self.proc in self.janitor.procs:
            self.janitor.procs.remove(self.proc)
        return rc


def run_logged(cmd, log_path, timeout_s, janitor, preexec=None):
    """Runs cmd to completion with its output in log_path; (exit status, seconds).
    Status 124 means it ran past timeout_s and was killed."""
    t0 = time.monotonic()
    with open(log_path, "w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        try:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, preexec_fn=preexec)
        except OSError as e:
            log.write(f"cannot run {cmd[0]}: {e}\n")
            return 127, 0.0
        janitor.track(proc)
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            stop(proc)
            log.write(f"\n[runner] killed after {timeout_s:.0f} s\n")
            rc = 124
        finally:
            if proc in janitor.procs:
                stop(proc)
                janitor.procs.remove(proc)
    return rc, time.monotonic() - t0
