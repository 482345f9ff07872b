// slip-worker: an OpenAI-compatible server that SIMULATES a GPU inference
// engine (vLLM-like continuous batching on simulated time, a KV cache with a
// prefix cache, deterministic output words), for gateway experiments without
// GPUs. Runs on Slipstream's stack over a DPDK port or on Linux sockets.
//
// Prints one "slip-worker: ready ..." line once it serves; SIGTERM or SIGINT
// ends it (exit 0) with a "slip-worker: done ..." line.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <optional>
#include <string>

#include "../http/server.h"
#include "api.h"
#include "engine.h"
#include "profile.h"
#include "slip/net/dpdk.h"
#include "slip/net/stack.h"
#include "slip/runtime/runtime.h"

namespace slip::gateway::worker {
namespace {

std::atomic<bool> g_stop{false};

struct Args {
  std::string stack = "slip", vdev, port_name, ip, file_prefix = "slip-worker", model, profile;
  int prefix_len = 24;
  unsigned kthreads = 1;
  uint16_t port = 8000;
  uint32_t max_batch = 0;
  uint64_t kv_tokens = 0, seed = 1;
  double time_scale = 1.0;
  size_t max_body = 1 << 20;
};

std::optional<int> parse_args(int argc, char** argv, Args& a) {
  CLI::App app{"slip-worker: OpenAI-compatible server that simulates a GPU inference engine (for gateway experiments)"};
  app.add_option("--stack", a.stack, "slip (Slipstream's stack on a DPDK port) or kernel (Linux sockets)")
      ->check(CLI::IsMember({"slip", "kernel"}))
      ->capture_default_str();
  app.add_option("--vdev", a.vdev, "DPDK virtual device for the slip stack, e.g. net_memif0,role=server,socket=/tmp/s.sock");
  app.add_option("--port-name", a.port_name, "ethdev name of the port (default: the --vdev name before the first comma)");
  app.add_option("--ip", a.ip, "this host's IPv4 address (required for slip; kernel binds to any address without it)");
  app.add_option("--prefix-len", a.prefix_len, "subnet prefix length")->check(CLI::Range(0, 32))->capture_default_str();
  app.add_option("--file-prefix", a.file_prefix, "DPDK --file-prefix (unique per process)")->capture_default_str();
  app.add_option("--kthreads", a.kthreads, "runtime kthreads")->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--port", a.port, "HTTP port (0: ephemeral, printed in the ready line)")->capture_default_str();
  app.add_option("--model", a.model, "model name served (default: the profile's)");
  app.add_option("--profile", a.profile, "TOML timing profile (default: built-in Llama 3 8B on one H200, "
                                         "as apps/llm_gateway/profiles/llama3-8b-h200.toml)")
      ->check(CLI::ExistingFile);
  app.add_option("--max-batch", a.max_batch, "most requests decoded together (default: the profile's)")
      ->check(CLI::Range(1u, 1u << 20));
  app.add_option("--kv-tokens", a.kv_tokens, "KV-cache capacity in tokens (default: the profile's)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  app.add_option("--seed", a.seed, "seed of the generated words")->capture_default_str();
  app.add_option("--time-scale", a.time_scale, "simulated seconds per real second (100: 100x faster)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-body", a.max_body, "largest request body in bytes (larger: 413)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 30))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return std::nullopt;
}

void serve(net::Stack& st, const Args& a, const Profile& prof) {
  EngineOptions eo;
  eo.max_batch = a.max_batch ? a.max_batch : prof.max_batch;
  eo.kv_tokens = a.kv_tokens ? a.kv_tokens : prof.kv_tokens;
  eo.time_scale = a.time_scale;
  Engine engine(prof, eo);
  Api api(engine, prof, ApiOptions{a.model.empty() ? prof.model : a.model, a.seed});
  http::Router router;
  api.add_routes(router);
  http::ServerOptions so;
  so.port = a.port;
  so.limits.max_body = a.max_body;
  so.stop_flag = &g_stop;
  http::HttpServer srv(st, router, so);
  engine.start();
  srv.start();
  fmt::print("slip-worker: ready stack={} ip={} port={} model={} max_batch={} kv_tokens={} time_scale={} kthreads={} "
             "(a simulator: no model runs)\n",
             a.stack, a.ip.empty() ? "0.0.0.0" : a.ip, srv.port(), a.model.empty() ? prof.model : a.model,
             eo.max_batch, eo.kv_tokens, a.time_scale, a.kthreads);
  std::fflush(stdout);
  while (!g_stop.load()) rt::sleep_for(std::chrono::milliseconds(20));
  engine.stop();  // waiting handlers see their requests aborted
  const bool clean = srv.finish(now_ns() + 1'000'000'000);
  const auto& s = srv.stats();
  fmt::print("slip-worker: done connections={} requests={} bad_requests={} timeouts={}\n", s.connections.load(),
             s.requests.load(), s.bad_requests.load(), s.timeouts.load());
  std::fflush(stdout);
  if (!clean) {
    std::fprintf(stderr, "slip-worker: a connection did not stop in time; exiting without teardown\n");
    std::fflush(stderr);
    ::_exit(0);
  }
}

int run(const Args& a) {
  Profile prof = a.profile.empty() ? Profile{} : load_profile(a.profile);
  const bool kernel = *net::parse_stack_kind(a.stack) == net::StackKind::kernel;
  if (!kernel && (a.vdev.empty() || a.ip.empty())) {
    std::fprintf(stderr, "slip-worker: error: --stack slip needs --vdev and --ip\n");
    return 2;
  }
  net::StackConfig sc;
  if (!a.ip.empty()) {
    auto ip = net::Ipv4Addr::parse(a.ip);
    if (!ip) {
      std::fprintf(stderr, "slip-worker: error: --ip %s is not an IPv4 address\n", a.ip.c_str());
      return 2;
    }
    sc.ip = *ip;
  }
  sc.prefix_len = static_cast<uint8_t>(a.prefix_len);
  rt::Config rc;
  rc.kthreads = a.kthreads;
  std::string error;
  auto guarded = [&](auto&& body) {
    try {
      body();
    } catch (const std::exception& e) {
      error = e.what();
    }
  };
  guarded([&] {
    if (kernel) {
      rt::run(rc, [&] { guarded([&] { serve(*net::make_kernel_stack(sc), a, prof); }); });
      return;
    }
    net::eal_init(net::eal_args_for_test(a.vdev, a.file_prefix));
    net::DpdkPortConfig pc;
    pc.name = !a.port_name.empty() ? a.port_name : a.vdev.substr(0, a.vdev.find(','));
    net::DpdkPort port(pc);
    rt::run(rc, [&] { guarded([&] { serve(*net::make_slip_stack(port, sc), a, prof); }); });
  });
  if (error.empty()) return 0;
  std::fprintf(stderr, "slip-worker: error: %s\n", error.c_str());
  return 1;
}

}  // namespace
}  // namespace slip::gateway::worker

int main(int argc, char** argv) {
  using namespace slip::gateway::worker;
  Args a;
  if (auto rc = parse_args(argc, argv, a)) return *rc;
  std::signal(SIGTERM, [](int) { g_stop.store(true); });
  std::signal(SIGINT, [](int) { g_stop.store(true); });
  std::signal(SIGPIPE, SIG_IGN);
  try {
    return run(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slip-worker: error: %s\n", e.what());
    return 1;
  }
}
