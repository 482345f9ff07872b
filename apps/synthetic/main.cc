// slip-synthetic: the spin server for tail-latency experiments (as in the
// Shenango and Caladan papers). Each request (slip/proto/synthetic.h) is answered
// after the server busy-spins its service time: the time the request names,
// or one drawn from --service. Serves UDP and TCP on Slipstream's stack over
// a DPDK port or on Linux sockets, so the two can be compared under the same
// load (slip-loadgen's `synthetic` protocol).
//
// Prints one "slip-synthetic: ready ..." line once it serves, and a
// "slip-synthetic: done ..." line with its counters when it stops (SIGTERM,
// SIGINT or --duration).
#include "slip/common/cli11.h"
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "server.h"
#include "lifecycle.h"
#include "stack_options.h"
#include "slip/net/stack.h"
#include "slip/runtime/cpu_limit.h"
#include "slip/runtime/runtime.h"
#include "slip/runtime/stats.h"

namespace slip::synthetic {
namespace {

// Set in main() from apps/common: SIGTERM and SIGINT.
const std::atomic<bool>* g_stop = nullptr;

// The command line, as given; checked and turned into options by validate().
struct Args {
  std::string proto = "both", service = "exp:10us";
  app::StackOptions net{"slip"};
  unsigned udp_workers = 0;  // 0: one per kthread
  uint16_t port = 9000;
  uint64_t seed = 1;
  double duration = 0;
};

// Everything needed to run, after checks that CLI11 cannot do alone.
struct Plan {
  ServerOptions opt;
};

// The checks across flags; prints the problem and returns nullopt on a bad command line.
std::optional<Plan> validate(const Args& a) {
  auto bad = [](const std::string& m) -> std::optional<Plan> {
    std::fprintf(stderr, "slip-synthetic: error: %s\n", m.c_str());
    return std::nullopt;
  };
  Plan p;
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
  p.opt.udp_workers = a.udp_workers ? a.udp_workers : a.net.kthreads;
  p.opt.stop_flag = g_stop;
  return p;
}

// Parses argv; returns the exit code when the program should end now (0
// after --help, 2 for a bad flag), nullopt to go on.
std::optional<int> parse_args(int argc, char** argv, Args& a) {
  CLI::App cli{"slip-synthetic: spin server for tail-latency experiments (UDP and TCP, slip or kernel stack)"};
  app::add_stack_options(cli, a.net, /*offer_spin=*/true);
  cli.add_option("--port", a.port, "UDP and TCP port (0: ephemeral ports, printed in the ready line)")
      ->capture_default_str();
  cli.add_option("--proto", a.proto, "udp, tcp or both")->check(CLI::IsMember({"udp", "tcp", "both"}))->capture_default_str();
  cli.add_option("--service", a.service,
                 "service time when a request leaves it to the server: const:5us, exp:10us, "
                 "bimodal:5us:100us:0.1, uniform:5us:15us, or none")
      ->capture_default_str();
  cli.add_option("--seed", a.seed, "seed of the service-time RNGs (one per serving uthread)")->capture_default_str();
  cli.add_option("--duration", a.duration, "seconds to run (0: until SIGTERM or SIGINT)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cli.add_option("--udp-workers", a.udp_workers, "uthreads reading the UDP socket (default: --kthreads)")
      ->check(CLI::Range(1, 1024));
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = cli.exit(e);  // prints help, or the error with a hint
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
               "udp_workers={} seed={} cpu_limit=\"{}\"\n",
               app::describe(a.net), st.ip().str(), port(p.opt.udp, srv.udp_port()), port(p.opt.tcp, srv.tcp_port()),
               a.proto, a.service, a.net.kthreads, p.opt.udp ? p.opt.udp_workers : 0, a.seed,
               rt::describe_cpu_limit());
    std::fflush(stdout);
    const uint64_t end = a.duration > 0 ? now_ns() + static_cast<uint64_t>(a.duration * 1e9) : UINT64_MAX;
    while (!g_stop->load() && now_ns() < end) rt::sleep_for(std::chrono::milliseconds(20));
    sum = srv.finish(now_ns() + 500'000'000);
  }
  fmt::print("slip-synthetic: done udp_requests={} tcp_requests={} tcp_connections={} bad_requests={} "
             "served_p50_ns={} served_p99_ns={} served_max_ns={} {}\n",
             sum.udp_requests, sum.tcp_requests, sum.tcp_connections, sum.bad_requests, sum.served.percentile(50),
             sum.served.percentile(99), sum.served.max(), rt::describe(rt::sched_stats()));
  std::fflush(stdout);
  app::exit_now_if_unclean("slip-synthetic", sum.all_stopped);
}

int run(const Args& a, const Plan& p) {
  return app::run_on_stack("slip-synthetic", a.net, net::StackConfig{}, [&](net::Stack& st) { serve(st, a, p); });
}

}  // namespace
}  // namespace slip::synthetic

int main(int argc, char** argv) {
  using namespace slip::synthetic;
  Args a;
  if (auto rc = parse_args(argc, argv, a)) return *rc;
  auto plan = validate(a);
  if (!plan) return 2;
  g_stop = &slip::app::install_stop_signals();
  return run(a, *plan);
}
