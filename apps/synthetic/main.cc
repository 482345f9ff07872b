// slip-synthetic: the spin server for tail-latency experiments (as in the
// Shenango and Caladan papers). Each request (synthetic_wire.h) is answered
// after the server busy-spins its service time: the time the request names,
// or one drawn from --service. Serves UDP and TCP on Slipstream's stack over
// a DPDK port or on Linux sockets, so the two can be compared under the same
// load (slip-loadgen's `synthetic` protocol).
//
// Prints one "slip-synthetic: ready ..." line once it serves, and a
// "slip-synthetic: done ..." line with its counters when it stops (SIGTERM,
// SIGINT or --duration).
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "server.h"
#include "slip/net/dpdk.h"
#include "slip/net/stack.h"
#include "slip/runtime/runtime.h"

namespace slip::synthetic {
namespace {

std::atomic<bool> g_stop{false};

// The command line, as given; checked and turned into options by validate().
struct Args {
  std::string stack = "slip", vdev, port_name, ip, file_prefix = "slip-synthetic", proto = "both";
  std::string service = "exp:10us";
  int prefix_len = 24;
  unsigned kthreads = 1, udp_workers = 0;  // 0: one per kthread
  uint16_t port = 9000;
  uint64_t seed = 1;
  double duration = 0;
  bool spin = false;
};

// Everything needed to run, after checks that CLI11 cannot do alone.
struct Plan {
  bool kernel = false;
  std::string port_name;
  net::StackConfig sc;
  ServerOptions opt;
};

// The checks across flags; prints the problem and returns nullopt on a bad command line.
std::optional<Plan> validate(const Args& a) {
  auto bad = [](const std::string& m) -> std::optional<Plan> {
    std::fprintf(stderr, "slip-synthetic: error: %s\n", m.c_str());
    return std::nullopt;
  };
  Plan p;
  p.kernel = *net::parse_stack_kind(a.stack) == net::StackKind::kernel;
  if (!p.kernel && a.vdev.empty()) return bad("--stack slip needs --vdev (the DPDK device of its port)");
  if (!p.kernel && a.ip.empty()) return bad("--stack slip needs --ip (this host's address on the port)");
  // "net_memif0,role=server,..." names the ethdev "net_memif0".
  p.port_name = !a.port_name.empty() ? a.port_name : a.vdev.substr(0, a.vdev.find(','));
  if (!a.ip.empty()) {
    auto ip = net::Ipv4Addr::parse(a.ip);
    if (!ip) return bad("--ip " + a.ip + " is not an IPv4 address");
    p.sc.ip = *ip;  // the kernel stack binds to it; unset, it binds to any address
  }
  p.sc.prefix_len = static_cast<uint8_t>(a.prefix_len);
  if (a.service == "none") {
    p.opt.service = Distribution::constant(0);
  } else {
    std::string why;
    auto d = Distribution::parse(a.service, &why);
    if (!d) return bad("--service " + a.service + ": " + why + " (or none)");
    p.opt.service = *d;
  }
  p.opt.udp = a.proto != "tcp";
  p.opt.tcp = a.proto != "udp";
  p.opt.port = a.port;
  p.opt.seed = a.seed;
  p.opt.udp_workers = a.udp_workers ? a.udp_workers : a.kthreads;
  p.opt.stop_flag = &g_stop;
  return p;
}

// Parses argv; returns the exit code when the program should end now (0
// after --help, 2 for a bad flag), nullopt to go on.
std::optional<int> parse_args(int argc, char** argv, Args& a) {
  CLI::App app{"slip-synthetic: spin server for tail-latency experiments (UDP and TCP, slip or kernel stack)"};
  app.add_option("--stack", a.stack, "slip (Slipstream's stack on a DPDK port) or kernel (Linux sockets)")
      ->check(CLI::IsMember({"slip", "kernel"}))
      ->capture_default_str();
  app.add_option("--vdev", a.vdev, "DPDK virtual device for the slip stack, e.g. net_memif0,role=server,socket=/tmp/s.sock");
  app.add_option("--port-name", a.port_name, "ethdev name of the port (default: the --vdev name before the first comma)");
  app.add_option("--ip", a.ip, "this host's IPv4 address (required for slip; kernel binds to any address without it)");
  app.add_option("--prefix-len", a.prefix_len, "subnet prefix length")->check(CLI::Range(0, 32))->capture_default_str();
  app.add_option("--file-prefix", a.file_prefix, "DPDK --file-prefix (unique per process)")->capture_default_str();
  app.add_flag("--spin", a.spin,
               "kthreads busy-poll and never park (as Shenango's and IX's do); without it an idle kthread "
               "parks after 2 us and waking it costs a VM wake-up");
  app.add_option("--kthreads", a.kthreads, "runtime kthreads")->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--port", a.port, "UDP and TCP port (0: ephemeral ports, printed in the ready line)")
      ->capture_default_str();
  app.add_option("--proto", a.proto, "udp, tcp or both")->check(CLI::IsMember({"udp", "tcp", "both"}))->capture_default_str();
  app.add_option("--service", a.service,
                 "service time when a request leaves it to the server: const:5us, exp:10us, "
                 "bimodal:5us:100us:0.1, uniform:5us:15us, or none")
      ->capture_default_str();
  app.add_option("--seed", a.seed, "seed of the service-time RNGs (one per serving uthread)")->capture_default_str();
  app.add_option("--duration", a.duration, "seconds to run (0: until SIGTERM or SIGINT)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--udp-workers", a.udp_workers, "uthreads reading the UDP socket (default: --kthreads)")
      ->check(CLI::Range(1, 1024));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help, or the error with a hint
    return rc == 0 ? 0 : 2;
  }
  return std::nullopt;
}

// Runs the server on st until a signal or the duration, then prints the summary.
void serve(net::Stack& st, const Args& a, const Plan& p) {
  Summary sum;
  {
    Server srv(st, p.opt);
    srv.start();
    auto port = [](bool on, uint16_t n) { return on ? std::to_string(n) : std::string("-"); };
    fmt::print("slip-synthetic: ready stack={} ip={} udp_port={} tcp_port={} proto={} service={} kthreads={} "
               "udp_workers={} seed={}\n",
               a.stack, p.sc.ip.str(), port(p.opt.udp, srv.udp_port()), port(p.opt.tcp, srv.tcp_port()), a.proto,
               a.service, a.kthreads, p.opt.udp ? p.opt.udp_workers : 0, a.seed);
    std::fflush(stdout);
    const uint64_t end = a.duration > 0 ? now_ns() + static_cast<uint64_t>(a.duration * 1e9) : UINT64_MAX;
    while (!g_stop.load() && now_ns() < end) rt::sleep_for(std::chrono::milliseconds(20));
    sum = srv.finish(now_ns() + 500'000'000);
  }
  fmt::print("slip-synthetic: done udp_requests={} tcp_requests={} tcp_connections={} bad_requests={} "
             "served_p50_ns={} served_p99_ns={} served_max_ns={}\n",
             sum.udp_requests, sum.tcp_requests, sum.tcp_connections, sum.bad_requests, sum.served.percentile(50),
             sum.served.percentile(99), sum.served.max());
  std::fflush(stdout);
  if (!sum.all_stopped) {
    // A connection uthread did not end in time and still uses the stack:
    // tearing the stack down under it is worse than leaving it to the kernel.
    std::fprintf(stderr, "slip-synthetic: a connection did not stop in time; exiting without teardown\n");
    std::fflush(stderr);
    ::_exit(0);
  }
}

int run(const Args& a, const Plan& p) {
  rt::Config rc;
  rc.kthreads = a.kthreads;
  if (a.spin) rc.spinning_kthreads = a.kthreads;
  std::string error;
  auto guarded = [&](auto&& body) {
    try {
      body();
    } catch (const std::exception& e) {
      error = e.what();
    }
  };
  guarded([&] {
    if (p.kernel) {
      rt::run(rc, [&] { guarded([&] { serve(*net::make_kernel_stack(p.sc), a, p); }); });
      return;
    }
    net::eal_init(net::eal_args_for_test(a.vdev, a.file_prefix));
    net::DpdkPortConfig pc;
    pc.name = p.port_name;
    net::DpdkPort port(pc);
    rt::run(rc, [&] { guarded([&] { serve(*net::make_slip_stack(port, p.sc), a, p); }); });
  });
  if (error.empty()) return 0;
  std::fprintf(stderr, "slip-synthetic: error: %s\n", error.c_str());
  return 1;
}

}  // namespace
}  // namespace slip::synthetic

int main(int argc, char** argv) {
  using namespace slip::synthetic;
  Args a;
  if (auto rc = parse_args(argc, argv, a)) return *rc;
  auto plan = validate(a);
  if (!plan) return 2;
  std::signal(SIGTERM, [](int) { g_stop.store(true); });
  std::signal(SIGINT, [](int) { g_stop.store(true); });
  std::signal(SIGPIPE, SIG_IGN);  // a client that goes away is an error on its connection, not our death
  return run(a, *plan);
}
