// slip-gateway: an OpenAI-compatible token-streaming gateway in front of
// inference workers (vLLM, SGLang, TGI, llama.cpp's server, slip-worker), on
// Slipstream's stack over a DPDK port or on Linux sockets.
//
// Prints "slip-gateway: ready ..." once it serves; SIGHUP reloads --config;
// SIGTERM or SIGINT ends it (exit 0) after a "slip-gateway: done ..." line.
#include "slip/common/cli11.h"
#include <fmt/format.h>

#include <atomic>
#include <cstdio>
#include <optional>
#include <string>

#include "config.h"
#include "health.h"
#include "http_server.h"
#include "http_upstream.h"
#include "metrics.h"
#include "pool.h"
#include "proxy.h"
#include "lifecycle.h"
#include "stack_options.h"
#include "slip/net/stack.h"
#include "slip/runtime/cpu_limit.h"
#include "slip/runtime/runtime.h"
#include "slip/runtime/stats.h"
#include "slip/runtime/time.h"

namespace slip::gateway {
namespace {

// Set in main() from apps/common: SIGTERM/SIGINT, and SIGHUP.
const std::atomic<bool>* g_stop = nullptr;
std::atomic<bool>* g_reload = nullptr;

struct Args {
  std::string config, policy;
  std::vector<std::string> workers, models;
  int port = -1;
  app::StackOptions net;
};

std::optional<int> parse_args(int argc, char** argv, Args& a) {
  CLI::App cli{"slip-gateway: OpenAI-compatible token-streaming gateway in front of inference workers"};
  cli.add_option("--config", a.config, "TOML file: [server], [routing], [admission], [health], [upstream], "
                                       "[[worker]] (see docs/gateway.md); reloaded on SIGHUP")
      ->check(CLI::ExistingFile);
  cli.add_option("--worker", a.workers, "a worker's base URL, http://IP:PORT (repeatable; added to the config's)");
  cli.add_option("--model", a.models, "models the --worker URLs serve (default: any name)");
  cli.add_option("--policy", a.policy, "routing: round_robin, least_requests, least_tokens, p2c, prefix_aware")
      ->check(CLI::IsMember({"round_robin", "least_requests", "least_tokens", "p2c", "prefix_aware"}));
  cli.add_option("--port", a.port, "HTTP port (default: the config's, else 8080; 0: ephemeral)")->check(CLI::Range(0, 65535));
  app::add_stack_options(cli, a.net);
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = cli.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return std::nullopt;
}

// The config file (if any) with the command line applied on top. Throws ConfigError.
GatewayConfig effective_config(const Args& a) {
  GatewayConfig c = a.config.empty() ? GatewayConfig{} : load_config(a.config);
  for (const auto& url : a.workers) {
    WorkerConfig w;
    try {
      w = parse_worker_url(url);
    } catch (const ConfigError& e) {
      throw ConfigError(std::string("--worker: ") + e.what());
    }
    w.models = a.models;
    c.workers.push_back(std::move(w));
  }
  if (!a.policy.empty()) c.policy = *parse_policy(a.policy);
  if (a.port >= 0) c.port = static_cast<uint16_t>(a.port);
  if (c.workers.empty()) throw ConfigError("no workers: give --worker http://IP:PORT or [[worker]] in --config");
  return c;
}

void serve(net::Stack& st, const Args& a, GatewayConfig first) {
  auto cfg = std::make_shared<const GatewayConfig>(std::move(first));
  Pool pool(*cfg);
  HttpUpstreamOptions uo;
  uo.idle_conns = cfg->idle_conns;
  uo.idle_conn_ns = cfg->idle_conn_ms * 1'000'000;
  uo.max_response = cfg->max_response;
  auto transport = make_http_transport(st, uo);
  GatewayMetrics metrics;
  Gateway gw(pool, *transport, metrics, cfg);
  http::Router router;
  gw.add_routes(router);
  http::ServerOptions so;
  so.port = cfg->port;
  so.limits.max_body = cfg->max_body;
  so.limits.request_timeout_ns = cfg->request_timeout_ms * 1'000'000;
  so.limits.idle_timeout_ns = cfg->idle_timeout_ms * 1'000'000;
  so.max_connections = cfg->max_connections;
  so.stop_flag = g_stop;
  http::HttpServer srv(st, router, so);
  srv.start();
  std::atomic<bool> health_stop{false};
  rt::Mutex cfg_mu;
  auto current = [&] {
    std::lock_guard g(cfg_mu);
    return cfg;
  };
  rt::JoinHandle health = rt::spawn([&] { run_health_checks(pool, *transport, health_stop, current); });
  fmt::print("slip-gateway: ready stack={} ip={} port={} workers={} policy={} kthreads={} cpu_limit=\"{}\"\n",
             app::describe(a.net), a.net.ip.empty() ? "0.0.0.0" : a.net.ip, srv.port(), cfg->workers.size(),
             policy_name(cfg->policy), a.net.kthreads, rt::describe_cpu_limit());
  std::fflush(stdout);
  while (!g_stop->load()) {
    rt::sleep_for(std::chrono::milliseconds(20));
    if (!g_reload->exchange(false)) continue;
    try {
      auto next = std::make_shared<const GatewayConfig>(effective_config(a));
      if (next->port != cfg->port)
        fmt::print(stderr, "slip-gateway: reload: the port stays {} until a restart\n", cfg->port);
      pool.reload(*next);
      gw.set_config(next);
      {
        std::lock_guard g(cfg_mu);
        cfg = next;
      }
      fmt::print("slip-gateway: reloaded workers={} policy={}\n", next->workers.size(), policy_name(next->policy));
    } catch (const std::exception& e) {
      fmt::print(stderr, "slip-gateway: reload failed, keeping the running configuration: {}\n", e.what());
    }
    std::fflush(stdout);
    std::fflush(stderr);
  }
  health_stop.store(true);
  health.join();
  const bool clean = srv.finish(now_ns() + 2'000'000'000);
  const auto& s = srv.stats();
  fmt::print("slip-gateway: done connections={} requests={} bad_requests={} timeouts={} disconnects={} retries={} {}\n",
             s.connections.load(), s.requests.load(), s.bad_requests.load(), s.timeouts.load(),
             metrics.client_disconnects.load(), metrics.retries.load(), rt::describe(rt::sched_stats()));
  std::fflush(stdout);
  app::exit_now_if_unclean("slip-gateway", clean);
}

int run(const Args& a) {
  GatewayConfig first;
  try {
    first = effective_config(a);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "slip-gateway: error: %s\n", e.what());
    return 2;
  }
  return app::run_on_stack("slip-gateway", a.net, net::StackConfig{}, [&](net::Stack& st) { serve(st, a, first); });
}

}  // namespace
}  // namespace slip::gateway

int main(int argc, char** argv) {
  using namespace slip::gateway;
  Args a;
  if (auto rc = parse_args(argc, argv, a)) return *rc;
  g_stop = &slip::app::install_stop_signals();
  g_reload = &slip::app::install_reload_signal();
  try {
    return run(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slip-gateway: error: %s\n", e.what());
    return 1;
  }
}
