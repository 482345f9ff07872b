"""The figures tools/experiments/run knows, one declarative spec per figure.

A figure is a dict:
  title, description      what the plot shows; notes: what this machine cannot show
  steps_rps               offered loads, low to past saturation (rps)
  duration_s, warmup_s    per loadgen run
  reps                    repetitions of the whole sweep (systems alternate order per rep)
  quick                   overrides for --quick (CI): steps_rps, duration_s, warmup_s, reps
  saturation              {"ratio": r, "steps": n}: a sweep stops after n steps in a
                          row whose achieved rate is below r * offered
  loadgen                 {binary, args}: the load generator and the flags every system's run gets
  systems                 list of {name, label, needs_root, server, loadgen}:
      address  the server's IP:PORT, given to the loadgen as --server
      server   {binary, args, ready, ready_timeout_s, cpus}: ready is the start of the
               line the server prints on stdout once it serves; cpus how many it is pinned to
      loadgen  {args, cpus}: flags added for this system
  plot                    {"percentiles": [...]}: latency keys of result.json to draw

Binaries are relative to the build directory. Arguments may use these
placeholders, filled per server start: {sock} (a memif socket name),
{server_prefix} and {loadgen_prefix} (DPDK --file-prefix, unique per process).
The runner adds --server's address, --rate, --duration, --warmup, --seed,
--out and --label to every loadgen run itself.
"""

SERVER_BIN = "apps/synthetic/slip-synthetic"
LOADGEN_BIN = "tools/loadgen/slip-loadgen"

# Memif between two processes; an abstract socket leaves nothing in the file
# system when a process dies (as in tools/bench/net_bench.cc).
_MEMIF = "net_memif0,role={role},socket-abstract=yes,mac={mac},socket={{sock}}"
SLIP_SERVER_VDEV = _MEMIF.format(role="server", mac="02:00:00:00:02:01")
SLIP_CLIENT_VDEV = _MEMIF.format(role="client", mac="02:00:00:00:02:02")
SLIP_SERVER_IP, SLIP_CLIENT_IP = "198.18.0.1", "198.18.0.2"
KERNEL_IP = "127.0.0.1"
PORT = 9000


def _synthetic_system(stack, label, service, proto, spin, name=None):
    """apps/synthetic with one kthread on stack `slip` (memif) or `kernel` (loopback).

    spin: the server's kthread busy-polls instead of parking when idle (how
    Shenango and IX run). The loadgen always spins, so every system is driven
    by the same precise generator."""
    server = ["--stack", stack, "--kthreads", "1", "--port", str(PORT), "--proto", proto,
              "--service", service, "--seed", "1"] + (["--spin"] if spin else [])
    loadgen = ["--stack", stack, "--kthreads", "1", "--spin"]
    if stack == "slip":
        server += ["--vdev", SLIP_SERVER_VDEV, "--ip", SLIP_SERVER_IP, "--file-prefix", "{server_prefix}"]
        # The memif link and ARP come up after start: give the first exchange time.
        loadgen += ["--vdev", SLIP_CLIENT_VDEV, "--ip", SLIP_CLIENT_IP, "--file-prefix", "{loadgen_prefix}",
                    "--connect-timeout", "15"]
        address = SLIP_SERVER_IP
    else:
        server += ["--ip", KERNEL_IP]
        address = KERNEL_IP
    return {
        "name": name or stack,
        "label": label,
        "needs_root": stack == "slip",
        "address": f"{address}:{PORT}",
        "server": {"binary": SERVER_BIN, "args": server, "ready": "slip-synthetic: ready",
                   "ready_timeout_s": 30, "cpus": 1},
        "loadgen": {"args": loadgen, "cpus": 1},
    }


FIGURES = {
    "synthetic-stacks": {
        "title": "apps/synthetic, exp(10 µs) spin, 1 kthread, UDP: slip (memif) vs Linux (loopback)",
        "description": "Open-loop Poisson load against the spin server on one pinned core; "
                       "latency percentiles and achieved rate per offered load, per stack.",
        "notes": "2-core VM shared with other work: server and loadgen each pinned to one core; "
                 "memif is shared memory, so no real-NIC effects are shown.",
        "steps_rps": [10_000, 20_000, 30_000, 40_000, 50_000, 60_000, 70_000,
                      80_000, 90_000, 100_000, 110_000, 120_000],
        "duration_s": 5,
        "warmup_s": 1,
        "reps": 3,
        "quick": {"steps_rps": [10_000, 50_000, 90_000, 120_000], "duration_s": 2, "warmup_s": 1, "reps": 1},
        "saturation": {"ratio": 0.8, "steps": 2},
        "loadgen": {"binary": LOADGEN_BIN,
                    "args": ["--proto", "synthetic-udp", "--arrival", "poisson", "--mode", "open",
                             "--conns", "1", "--timeout", "1"]},
        "systems": [
            _synthetic_system("slip", "slip (DPDK memif, polling)", "exp:10us", "udp", spin=True),
            _synthetic_system("kernel", "Linux sockets (loopback, epoll)", "exp:10us", "udp", spin=False),
            _synthetic_system("kernel", "Linux sockets (loopback, busy-polled epoll)", "exp:10us", "udp",
                              spin=True, name="kernel-spin"),
        ],
        "plot": {"percentiles": ["p50", "p99", "p999"]},
    },
}


def get(name):
    """The figure called name; KeyError naming the known ones otherwise."""
    if name not in FIGURES:
        raise KeyError(f"unknown figure '{name}'; known: {', '.join(sorted(FIGURES))} "
                       f"(see tools/experiments/run --list)")
    return FIGURES[name]


def settings(fig, quick=False, reps=None):
    """Steps, duration, warm-up and reps for one run of fig (--quick, --reps applied)."""
    s = {"steps_rps": list(fig["steps_rps"]), "duration_s": fig["duration_s"],
         "warmup_s": fig["warmup_s"], "reps": fig.get("reps", 3), "quick": quick}
    if quick:
        s.update(fig.get("quick", {}))
        s["steps_rps"] = list(s["steps_rps"])
    if reps is not None:
        s["reps"] = reps
    sat = fig.get("saturation", {})
    s["saturation"] = {"ratio": sat.get("ratio", 0.8), "steps": sat.get("steps", 2)}
    return s
