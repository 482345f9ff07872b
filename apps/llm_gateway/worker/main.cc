// slip-worker: an OpenAI-compatible server that SIMULATES a GPU inference
// engine (vLLM-like continuous batching on simulated time, a KV cache with a
// prefix cache, deterministic output words), for gateway experiments without
// GPUs. Runs on Slipstream's stack over a DPDK port or on Linux sockets.
//
// Prints one "slip-worker: ready ..." line once it serves; SIGTERM or SIGINT
// ends it (exit 0) with a "slip-worker: done ..." line.
#include "slip/common/cli11.h"
#include <fmt/format.h>

#include <atomic>
#include <cstdio>
#include <optional>
#include <string>

#include "api.h"
#include "engine.h"
#include "http_server.h"
#include "profile.h"
#include "lifecycle.h"
#include "stack_options.h"
#include "slip/net/stack.h"
#include "slip/runtime/cpu_limit.h"
#include "slip/runtime/runtime.h"
#include "slip/runtime/stats.h"

namespace slip::gateway::worker {
namespace {

// Set in main() from apps/common: SIGTERM and SIGINT.
const std::atomic<bool>* g_stop = nullptr;

struct Args {
  std::string model, profile;
  app::StackOptions net{"slip"};
  uint16_t port = 8000;
  uint32_t max_batch = 0;
  uint64_t kv_tokens = 0, seed = 1;
  double time_scale = 1.0;
  size_t max_body = 1 << 20;
};

std::optional<int> parse_args(int argc, char** argv, Args& a) {
  CLI::App cli{"slip-worker: OpenAI-compatible server that simulates a GPU inference engine (for gateway experiments)"};
  app::add_stack_options(cli, a.net);
  cli.add_option("--port", a.port, "HTTP port (0: ephemeral, printed in the ready line)")->capture_default_str();
  cli.add_option("--model", a.model, "model name served (default: the profile's)");
  cli.add_option("--profile", a.profile, "TOML timing profile (default: built-in Llama 3 8B on one H200, "
                                         "as apps/llm_gateway/profiles/llama3-8b-h200.toml)")
      ->check(CLI::ExistingFile);
  cli.add_option("--max-batch", a.max_batch, "most requests decoded together (default: the profile's)")
      ->check(CLI::Range(1u, 1u << 20));
  cli.add_option("--kv-tokens", a.kv_tokens, "KV-cache capacity in tokens (default: the profile's)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  cli.add_option("--seed", a.seed, "seed of the generated words")->capture_default_str();
  cli.add_option("--time-scale", a.time_scale, "simulated seconds per real second (100: 100x faster)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cli.add_option("--max-body", a.max_body, "largest request body in bytes (larger: 413)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 30))
      ->capture_default_str();
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = cli.exit(e);
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
  so.stop_flag = g_stop;
  http::HttpServer srv(st, router, so);
  engine.start();
  srv.start();
  fmt::print("slip-worker: ready stack={} ip={} port={} model={} max_batch={} kv_tokens={} time_scale={} kthreads={} "
             "cpu_limit=\"{}\" (a simulator: no model runs)\n",
             app::describe(a.net), a.net.ip.empty() ? "0.0.0.0" : a.net.ip, srv.port(),
             a.model.empty() ? prof.model : a.model, eo.max_batch, eo.kv_tokens, a.time_scale, a.net.kthreads,
             rt::describe_cpu_limit());
  std::fflush(stdout);
  while (!g_stop->load()) rt::sleep_for(std::chrono::milliseconds(20));
  engine.stop();  // waiting handlers see their requests aborted
  const bool clean = srv.finish(now_ns() + 1'000'000'000);
  const auto& s = srv.stats();
  fmt::print("slip-worker: done connections={} requests={} bad_requests={} timeouts={} {}\n", s.connections.load(),
             s.requests.load(), s.bad_requests.load(), s.timeouts.load(), rt::describe(rt::sched_stats()));
  std::fflush(stdout);
  app::exit_now_if_unclean("slip-worker", clean);
}

int run(const Args& a) {
  Profile prof = a.profile.empty() ? Profile{} : load_profile(a.profile);
  return app::run_on_stack("slip-worker", a.net, net::StackConfig{}, [&](net::Stack& st) { serve(st, a, prof); });
}

}  // namespace
}  // namespace slip::gateway::worker

int main(int argc, char** argv) {
  using namespace slip::gateway::worker;
  Args a;
  if (auto rc = parse_args(argc, argv, a)) return *rc;
  g_stop = &slip::app::install_stop_signals();
  try {
    return run(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slip-worker: error: %s\n", e.what());
    return 1;
  }
}
