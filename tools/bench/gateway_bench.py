#!/usr/bin/python3
"""tools/bench/run gateway: what a proxy in front of LLM workers costs, and
what prefix-aware routing wins.

Overhead: the same simulated workers (slip-worker), the same open-loop
streaming load (slip-loadgen --proto sse, Poisson) and the same seed, sent
straight to the workers and through slip-gateway on the slip stack (DPDK
net_af_xdp on a veth pair, or net_tap), slip-gateway on Linux sockets, nginx and HAProxy (both configured as
SSE reverse proxies with buffering off, one worker process or thread each, as
the gateway has one kthread; every proxy balances least-connections).
Client-side TTFT and inter-token latency percentiles; repeated, interleaved,
medians of the repetitions reported.

Routing: slip-gateway with round_robin against prefix_aware on a workload
whose prompts share one of many long system prompts, with workers whose KV
cache holds only some of them: TTFT, and the workers' simulated prefill time
per request and prefix-cache hit rate from their /metrics.

Everything runs inside a network namespace the benchmark creates (loopback,
and 198.18.9.0/24 on the veth pair or tap for the slip stack); without root the slip case
is skipped with a note and the rest runs on the host's loopback.
"""
import argparse
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, os.path.join("@SOURCE_ROOT@", "tools", "experiments"))
import procs  # noqa: E402

GATEWAY, WORKER, LOADGEN = "@GATEWAY@", "@WORKER@", "@LOADGEN@"
PROXIES = ["direct", "slip", "kernel", "nginx", "haproxy"]
# Not in the default list: HAProxy in TCP mode, a byte relay that parses no
# HTTP, so what it adds is the floor for any proxy hop on this machine.
EXTRA_PROXIES = ["tcp_relay"]
METRICS = ["ttft_p50_us", "ttft_p99_us", "itl_p50_us", "itl_p99_us", "itl_p999_us"]
MODEL = "bench-model"
NS_TAP_HOST, NS_TAP_GW = "198.18.9.1", "198.18.9.2"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", required=True, help="where to write the results")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--max-batch", type=int, default=8, help="each worker's batch (its capacity in streams)")
    p.add_argument("--load", type=float, default=0.5, help="offered load as a fraction of the workers' capacity")
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--time-scale", type=float, default=1.0,
                   help="workers' simulated seconds per real second (10: ten times faster GPUs, finer timing)")
    p.add_argument("--prompt-tokens", type=int, default=64)
    p.add_argument("--conns", type=int, default=256, help="loadgen connections (more: less head-of-line waiting)")
    p.add_argument("--duration", type=float, default=8)
    p.add_argument("--warmup", type=float, default=2)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--proxies", default=",".join(PROXIES),
                   help=f"comma-separated, from {','.join(PROXIES + EXTRA_PROXIES)}")
    p.add_argument("--skip-routing", action="store_true")
    p.add_argument("--routing-groups", type=int, default=32, help="distinct shared system prompts")
    p.add_argument("--routing-prefix", type=int, default=1000, help="words in each shared prefix")
    p.add_argument("--routing-kv-tokens", type=int, default=20000, help="each worker's KV cache for the routing runs")
    p.add_argument("--routing-rate", type=float, default=8)
    p.add_argument("--routing-duration", type=float, default=12)
    p.add_argument("--routing-warmup", type=float, default=6)
    p.add_argument("--slip-port", choices=["af_xdp", "tap"], default="af_xdp",
                   help="the slip-stack gateway's DPDK port toward the workers and the load generator: "
                        "net_af_xdp on a veth pair (default) or net_tap")
    p.add_argument("--slip-args", default="--nic-poll-us 10",
                   help="more slip-gateway options for the slip case; the default polls the port every 10 us "
                        "while idle, as AF_XDP cannot wake a parked kthread and the stack's default is 100 us")
    p.add_argument("--keep", action="store_true", help="keep the work folder with every log")
    a = p.parse_args()
    unknown = [k for k in a.proxies.split(",") if k and k not in PROXIES + EXTRA_PROXIES]
    if unknown:
        p.error(f"--proxies: unknown {', '.join(unknown)} (known: {', '.join(PROXIES + EXTRA_PROXIES)})")
    return a


HAPROXY_HTTP = """  option http-keep-alive
  # Without it HAProxy coalesces a stream's small chunks (MSG_MORE) and tokens arrive in bunches.
  option http-no-delay
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Bench:
    def __init__(self, a):
        self.a = a
        self.work = tempfile.mkdtemp(prefix="slip-bench-gateway-")
        self.janitor = procs.Janitor()
        self.ns = None
        self.notes = []
        if os.geteuid() == 0 and os.path.exists("/dev/net/tun"):
            name = f"slipbench{os.getpid()}"
            if subprocess.run(["ip", "netns", "add", name]).returncode == 0:
                self.ns = name
                subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        if not self.ns:
            self.notes.append("not root (or no netns): the slip-stack gateway case was skipped")
        self.notes.append("no process pinned on Linux sockets: the kernel places workers, loadgen and proxy "
                          f"over {len(os.sched_getaffinity(0))} CPUs")

    def cmd(self, argv):
        return (["ip", "netns", "exec", self.ns] if self.ns else []) + argv

    def server(self, name, argv, ready, timeout=30):
        s = procs.Server(name, self.cmd(argv), os.path.join(self.work, name + ".log"), ready, self.janitor)
        s.start(timeout)
        return s

    def metrics(self, port):
        """A worker's /metrics as {name: value} (labels dropped), read inside the namespace."""
        out = subprocess.run(self.cmd(["curl", "-s", f"http://127.0.0.1:{port}/metrics"]), capture_output=True,
                             text=True, timeout=10).stdout
        vals = {}
        for line in out.splitlines():
            m = re.match(r"^([a-zA-Z_:]+)(\{[^}]*\})? ([0-9.e+-]+)$", line)
            if m:
                vals[m.group(1)] = vals.get(m.group(1), 0.0) + float(m.group(3))
        return vals

    def start_workers(self, kv_tokens=None):
        ws = []
        for i in range(self.a.workers):
            port = free_port()
            argv = [WORKER, "--stack", "kernel", "--port", str(port), "--model", MODEL,
                    "--max-batch", str(self.a.max_batch), "--seed", "7", "--time-scale", str(self.a.time_scale)]
            if kv_tokens:
                argv += ["--kv-tokens", str(kv_tokens)]
            ws.append((self.server(f"worker{i}", argv, "slip-worker: ready"), port))
        return ws

    def slip_veth(self):
        """The veth end the slip gateway's AF_XDP port binds (made once): its peer carries the workers'
        address. One queue each way, so every frame reaches the queue the PMD binds. The peer computes
        its checksums in software: AF_XDP hands over frames as they are, and a veth that offloads
        them sends TCP with the checksum left partial, which the slip stack counts as bad and drops."""
        if getattr(self, "_veth", None):
            return self._veth
        a, b = f"sxa{os.getpid() % 10000}", f"sxb{os.getpid() % 10000}"
        for argv in (["ip", "link", "add", a, "numtxqueues", "1", "numrxqueues", "1", "type", "veth", "peer", "name",
                      b, "numtxqueues", "1", "numrxqueues", "1"],
                     ["ip", "addr", "add", f"{NS_TAP_HOST}/24", "dev", b],
                     ["ethtool", "-K", b, "tx", "off"],
                     ["ip", "link", "set", a, "up"], ["ip", "link", "set", b, "up"]):
            subprocess.run(self.cmd(argv), check=True, stdout=subprocess.DEVNULL)
        self._veth = a
        return a

    def start_proxy(self, kind, worker_ports, policy="least_requests"):
        """(server or None, address clients use)."""
        if kind == "direct":
            return None, None
        port = 8080 if kind == "slip" else free_port()
        if kind in ("slip", "kernel"):
            host = NS_TAP_HOST if kind == "slip" else "127.0.0.1"
            cfg = os.path.join(self.work, f"gw-{kind}-{policy}.toml")
            with open(cfg, "w") as f:
                f.write(f'[routing]\npolicy = "{policy}"\n[health]\ninterval_ms = 1000\n')
                for p in worker_ports:
                    f.write(f'[[worker]]\nurl = "http://{host}:{p}"\nmodels = ["{MODEL}"]\nmax_concurrency = 1000\n')
            argv = [GATEWAY, "--config", cfg, "--port", str(port)]
            if kind == "slip":
                tap = f"sbt{os.getpid() % 10000}"
                vdev = f"net_af_xdp0,iface={self.slip_veth()}" if self.a.slip_port == "af_xdp" else f"net_tap0,iface={tap}"
                prefix = self.janitor.prefix(f"slip-bench-gw-{os.getpid()}")
                argv += ["--stack", "slip", "--vdev", vdev, "--ip", NS_TAP_GW,
                         "--file-prefix", prefix] + self.a.slip_args.split()
                s = self.server(f"gateway-{kind}-{policy}", argv, "slip-gateway: ready")
                if self.a.slip_port == "tap":
                    subprocess.run(self.cmd(["ip", "addr", "add", f"{NS_TAP_HOST}/24", "dev", tap]), check=True)
                    # The kernel's default 1000-frame queue toward the tap overflowed at about 25k frames/s while
                    # the gateway's kthread was busy between polls, and TCP retransmitted what it dropped.
                    subprocess.run(self.cmd(["ip", "link", "set", tap, "txqueuelen", "10000", "up"]), check=True)
                time.sleep(1.5)  # the first health probes find the workers once the port is up
                return s, f"{NS_TAP_GW}:{port}"
            argv += ["--stack", "kernel", "--ip", "127.0.0.1"]
            return self.server(f"gateway-{kind}-{policy}", argv, "slip-gateway: ready"), f"127.0.0.1:{port}"
        if kind == "nginx":
            d = os.path.join(self.work, "nginx")
            os.makedirs(d, exist_ok=True)
            ups = "".join(f"    server 127.0.0.1:{p};\n" for p in worker_ports)
            with open(os.path.join(d, "nginx.conf"), "w") as f:
                f.write(f"""worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  upstream workers {{
    least_conn;
{ups}    keepalive 512;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://workers;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_cache off;
      proxy_read_timeout 600s;
    }}
  }}
}}
""")
            # nginx prints nothing when ready: the wrapper prints once the port answers.
            argv = ["sh", "-c", f"nginx -p {d} -c {d}/nginx.conf & "
                    f"until curl -s -o /dev/null 127.0.0.1:{port}; do sleep 0.05; done; echo proxy ready; wait"]
            return self.server("nginx", argv, "proxy ready"), f"127.0.0.1:{port}"
        if kind in ("haproxy", "tcp_relay"):
            d = os.path.join(self.work, kind)
            os.makedirs(d, exist_ok=True)
            srv = "".join(f"  server w{i} 127.0.0.1:{p}\n" for i, p in enumerate(worker_ports))
            mode = "http" if kind == "haproxy" else "tcp"
            with open(os.path.join(d, "haproxy.cfg"), "w") as f:
                f.write(f"""global
  nbthread 1
  maxconn 4000
defaults
  mode {mode}
  timeout connect 5s
  timeout client 600s
  timeout server 600s
{HAPROXY_HTTP if mode == "http" else ""}frontend fe
  bind 127.0.0.1:{port}
  default_backend workers
backend workers
  balance leastconn
{"  http-reuse always" + chr(10) if mode == "http" else ""}{srv}""")
            argv = ["sh", "-c", f"haproxy -db -f {d}/haproxy.cfg & "
                    f"until curl -s -o /dev/null 127.0.0.1:{port}; do sleep 0.05; done; echo proxy ready; wait"]
            return self.server(kind, argv, "proxy ready"), f"127.0.0.1:{port}"
        raise ValueError(kind)

    def loadgen(self, label, servers, rate, duration, warmup, extra=()):
        out = os.path.join(self.work, "runs", label)
        argv = [LOADGEN, "--stack", "kernel", "--proto", "sse", "--model", MODEL, "--rate", f"{rate:.3f}",
                "--conns", str(max(self.a.conns, len(servers))), "--duration", str(duration), "--warmup", str(warmup),
                "--max-tokens", str(self.a.max_tokens), "--timeout", "60", "--seed", "11", "--progress", "0",
                "--out", out] + [x for s in servers for x in ("--server", s)] + list(extra)
        rc, _ = procs.run_logged(self.cmd(argv), os.path.join(self.work, label + ".loadgen.log"),
                                 duration + warmup + 120, self.janitor)
        if rc != 0:
            raise RuntimeError(f"slip-loadgen ({label}) exited {rc}\n" +
                               procs.log_tail(os.path.join(self.work, label + ".loadgen.log")))
        with open(os.path.join(out, "result.json")) as f:
            return json.load(f)

    def capacity_rate(self):
        """Requests/s at --load of the workers' capacity, from the shipped profile's timings."""
        prefill_ms = 5 + 0.035 * self.a.prompt_tokens * 1.3
        step_ms = 7 + 0.06 * self.a.max_batch * self.a.load
        service_s = (prefill_ms + (self.a.max_tokens + 1) * step_ms) / 1e3 / self.a.time_scale
        return self.a.load * self.a.workers * self.a.max_batch / service_s

    def overhead(self):
        proxies = [p for p in self.a.proxies.split(",") if p]
        if not self.ns and "slip" in proxies:
            proxies.remove("slip")
        rate = self.capacity_rate()
        print(f"== overhead: {self.a.workers} workers x batch {self.a.max_batch}, {rate:.1f} req/s "
              f"({self.a.load:.0%} of capacity), {self.a.reps} reps of {self.a.duration:.0f} s", flush=True)
        workers = self.start_workers()
        ports = [p for _, p in workers]
        runs = {p: [] for p in proxies}
        for rep in range(self.a.reps):
            for kind in proxies:
                proxy, addr = self.start_proxy(kind, ports)
                servers = [f"127.0.0.1:{p}" for p in ports] if kind == "direct" else [addr]
                r = self.loadgen(f"{kind}-{rep}", servers, rate, self.a.duration, self.a.warmup,
                                 ["--prompt-tokens", str(self.a.prompt_tokens)])
                if proxy:
                    proxy.stop()
                req = r["requests"]
                bad = req["error"] + req["timeouts"] + req["conn_errors"] + req["parse_errors"]
                s = r["sse"]
                row = {"ttft_p50_us": s["ttft_us"]["p50"], "ttft_p99_us": s["ttft_us"]["p99"],
                       "itl_p50_us": s["itl_us"]["p50"], "itl_p99_us": s["itl_us"]["p99"],
                       "itl_p999_us": s["itl_us"]["p999"], "ok": req["ok"], "errors": bad,
                       "achieved_rps": r["achieved_rps"]}
                runs[kind].append(row)
                print(f"  rep {rep + 1} {kind:8s} ttft p50 {row['ttft_p50_us']:9.0f} us  p99 {row['ttft_p99_us']:9.0f}"
                      f" | itl p50 {row['itl_p50_us']:7.0f} p99 {row['itl_p99_us']:7.0f} p99.9 {row['itl_p999_us']:7.0f}"
                      f" | ok {req['ok']} errors {bad}", flush=True)
        for w, _ in workers:
            w.stop()
        out = {}
        for kind, rows in runs.items():
            med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
            med["reps"] = len(rows)
            med["errors"] = sum(r["errors"] for r in rows)
            # The repetitions are interleaved, so rep i of every proxy saw the same
            # stretch of machine noise: the median of the per-rep differences from
            # nginx compares two proxies more finely than the difference of medians.
            if kind != "nginx" and "nginx" in runs:
                med["minus_nginx_us"] = {k: statistics.median(r[k] - n[k] for r, n in zip(rows, runs["nginx"]))
                                         for k in METRICS}
            out[kind] = med
        return out, rate

    def routing(self):
        a = self.a
        extra = ["--prompt-tokens", "32", "--shared-prefix", str(a.routing_prefix),
                 "--prefix-groups", str(a.routing_groups)]
        print(f"== routing: {a.routing_groups} shared prefixes of {a.routing_prefix} words, KV cache "
              f"{a.routing_kv_tokens} tokens per worker, {a.routing_rate} req/s", flush=True)
        out = {}
        for policy in ("round_robin", "prefix_aware"):
            rows = []
            for rep in range(a.reps):
                workers = self.start_workers(a.routing_kv_tokens)
                ports = [p for _, p in workers]
                gw, addr = self.start_proxy("kernel", ports, policy)
                # Warm-up requests fill the caches; the counters are read around the measured part only.
                try:
                    self.loadgen(f"routing-{policy}-{rep}-warm", [addr], a.routing_rate, a.routing_warmup, 0, extra)
                    before = [self.metrics(p) for p in ports]
                    r = self.loadgen(f"routing-{policy}-{rep}", [addr], a.routing_rate, a.routing_duration, 0, extra)
                    after = [self.metrics(p) for p in ports]
                finally:
                    gw.stop()
                    for w, _ in workers:
                        w.stop()
                d = lambda k: sum(x.get(k, 0) - y.get(k, 0) for x, y in zip(after, before))
                reqs = d("vllm:request_success_total") or 1
                queries = d("vllm:prefix_cache_queries_total") or 1
                s = r["sse"]
                row = {"ttft_p50_ms": s["ttft_us"]["p50"] / 1e3, "ttft_p99_ms": s["ttft_us"]["p99"] / 1e3,
                       "prefill_ms_per_request": d("slip_worker_prefill_seconds_total") * 1e3 / reqs,
                       "prefix_hit_rate": d("vllm:prefix_cache_hits_total") / queries,
                       "errors": r["requests"]["error"] + r["requests"]["timeouts"] + r["requests"]["conn_errors"]}
                rows.append(row)
                print(f"  rep {rep + 1} {policy:12s} ttft p50 {row['ttft_p50_ms']:7.1f} ms  p99 {row['ttft_p99_ms']:7.1f}"
                      f" | prefill {row['prefill_ms_per_request']:6.1f} ms/request | hit rate "
                      f"{row['prefix_hit_rate']:.2f}", flush=True)
            med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
            med["reps"] = len(rows)
            out[policy] = med
        return out

    def cleanup(self):
        self.janitor.cleanup()
        if self.ns:
            subprocess.run(["ip", "netns", "del", self.ns])
        if not self.a.keep:
            subprocess.run(["rm", "-rf", self.work])
        else:
            print(f"logs kept in {self.work}")


def machine():
    return {"host": platform.node(), "cpus": os.cpu_count(), "kernel": platform.release(),
            "cpu_model": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
                              "?")}


def main():
    a = parse_args()
    b = Bench(a)
    result = {"machine": machine(), "config": vars(a), "notes": b.notes}
    try:
        result["overhead"], result["rate_rps"] = b.overhead()
        if not a.skip_routing:
            result["routing"] = b.routing()
    except (procs.StartError, RuntimeError) as e:
        print(f"tools/bench/run gateway: error: {e}", file=sys.stderr)
        b.cleanup()
        return 1
    b.cleanup()
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(result, f, indent=2)
    ov = result["overhead"]
    print("\nmedians over reps (us)      ttft p50   ttft p99 |  itl p50  itl p99  itl p99.9 | vs direct: ttft p50, itl p99")
    base = ov.get("direct")
    for kind, m in ov.items():
        delta = (f"{m['ttft_p50_us'] - base['ttft_p50_us']:+8.0f} {m['itl_p99_us'] - base['itl_p99_us']:+8.0f}"
                 if base else "")
        print(f"  {kind:24s} {m['ttft_p50_us']:9.0f} {m['ttft_p99_us']:10.0f} | {m['itl_p50_us']:8.0f} "
              f"{m['itl_p99_us']:8.0f} {m['itl_p999_us']:9.0f} | {delta}")
    if "routing" in result:
        for pol, m in result["routing"].items():
            print(f"  routing {pol:14s} ttft p50 {m['ttft_p50_ms']:.1f} ms p99 {m['ttft_p99_ms']:.1f} ms, "
                  f"prefill {m['prefill_ms_per_request']:.1f} ms/request, hit rate {m['prefix_hit_rate']:.2f}")
    paired = [(k, m["minus_nginx_us"]) for k, m in ov.items() if "minus_nginx_us" in m]
    if paired:
        print("\nmedian of per-rep differences from nginx (us; negative: adds less than nginx)")
        print("  " + " " * 24 + "".join(f"{k[:-3]:>12s}" for k in METRICS))
        for kind, d in paired:
            print(f"  {kind:24s}" + "".join(f"{d[k]:+12.0f}" for k in METRICS))
    for n in b.notes:
        print("note:", n)
    print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
