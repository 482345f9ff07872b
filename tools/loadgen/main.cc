// slip-loadgen: open-loop (or closed-loop) load against a server, measured
// from each request's intended send time, on the Slipstream runtime over
// either stack. Prints a table, writes result.json and result.csv to a run
// folder, and shows a progress line while it runs.
#include "slip/common/cli11.h"

#include <sys/prctl.h>

#include <cstdio>
#include <ctime>
#include <string>

#include <fmt/core.h>

#include "engine.h"
#include "report.h"
#include "stack_options.h"
#include "slip/net/stack.h"
#include "slip/runtime/runtime.h"

namespace net = slip::net;
namespace rt = slip::rt;
using namespace slip::loadgen;

namespace {

struct Options {
  std::vector<std::string> servers;
  std::string proto = "synthetic-udp", mode = "open", arrival = "poisson", work, out, label;
  double rate = 1000, duration = 5, warmup = 1, timeout = 1, connect_timeout = 3, progress = 1;
  double slo_ttft_ms = 0, slo_tpot_ms = 0;
  uint32_t conns = 1, depth = 1, max_outstanding = 65536;
  uint64_t seed = 1;
  slip::app::StackOptions net;
  ProtocolConfig p;
};

std::string proto_help() {
  std::string s = "protocol:";
  for (const ProtocolInfo& p : protocols()) s += fmt::format("\n  {:<17} {}", p.name, p.help);
  return s;
}

void add_flags(CLI::App& app, Options& o) {
  app.add_option("--server", o.servers, "server IP:PORT; repeat it to spread the connections over several, round robin")
      ->required();
  app.add_option("--proto", o.proto, proto_help())->check([](const std::string& s) {
    return find_protocol(s) ? std::string() : "unknown protocol '" + s + "' (see --help)";
  });
  app.add_option("--mode", o.mode, "open (a schedule at --rate) or closed (--depth outstanding per connection)")
      ->check(CLI::IsMember({"open", "closed"}));
  app.add_option("--rate", o.rate, "open loop: offered requests/s over all connections")->check(CLI::Range(0.001, 1e9));
  app.add_option("--arrival", o.arrival,
                 "inter-arrival process: poisson, constant, or bimodal:P:R (a fraction P of gaps R times longer; "
                 "the mean stays 1/rate)");
  app.add_option("--conns", o.conns, "connections (UDP: sockets)")->check(CLI::Range(1u, 100000u));
  app.add_option("--depth", o.depth, "closed loop: outstanding requests per connection")->check(CLI::Range(1u, 65536u));
  app.add_option("--duration", o.duration, "measured seconds")->check(CLI::Range(0.001, 1e6));
  app.add_option("--warmup", o.warmup, "seconds of load before measuring")->check(CLI::Range(0.0, 1e6));
  app.add_option("--timeout", o.timeout, "a response later than this many seconds counts as a timeout")
      ->check(CLI::Range(1e-6, 3600.0));
  app.add_option("--connect-timeout", o.connect_timeout, "seconds to reach the server before giving up")
      ->check(CLI::Range(0.01, 600.0));
  app.add_option("--max-outstanding", o.max_outstanding, "per connection; requests beyond it are dropped, not sent")
      ->check(CLI::Range(1u, 1u << 24));
  app.add_option("--seed", o.seed, "seed for arrivals, keys and payloads");
  app.add_option("--progress", o.progress, "seconds between progress lines on stderr (0: none)")->check(CLI::Range(0.0, 3600.0));
  app.add_option("--out", o.out, "run folder for result.json and result.csv (default: runs/<time>-<proto>)");
  app.add_option("--label", o.label, "a name for this run in the outputs");
  // Stacks.
  slip::app::add_stack_options(app, o.net, /*offer_spin=*/true);
  // Protocols.
  app.add_option("--req-size", o.p.req_size, "synthetic/echo: request bytes")->check(CLI::Range(8u, 65536u));
  app.add_option("--work", o.work, "synthetic: service time to ask for, e.g. exp:10us (default: the server's)");
  app.add_option("--keys", o.p.keys, "memcached: key space")->check(CLI::Range(uint64_t{1}, uint64_t{1} << 32));
  app.add_option("--key-size", o.p.key_size, "memcached: key bytes")->check(CLI::Range(4u, 250u));
  app.add_option("--value-size", o.p.value_size, "memcached: value bytes")->check(CLI::Range(0u, 1u << 20));
  app.add_option("--get-ratio", o.p.get_ratio, "memcached: fraction of gets (the rest are sets)")->check(CLI::Range(0.0, 1.0));
  app.add_flag("!--no-preload", o.p.preload, "memcached: do not set every key before the run");
  app.add_option("--host", o.p.host, "http/sse: Host header");
  app.add_option("--path", o.p.path, "http: GET path");
  app.add_option("--endpoint", o.p.endpoint, "sse: chat or completions")->check(CLI::IsMember({"chat", "completions"}));
  app.add_option("--model", o.p.model, "sse: model name");
  app.add_option("--prompt-tokens", o.p.prompt_tokens, "sse: prompt length in words (after the shared prefix)")
      ->check(CLI::Range(1u, 1u << 20));
  app.add_option("--shared-prefix", o.p.shared_prefix,
                 "sse: words of a prefix every prompt of its group starts with (a system prompt; 0: none)")
      ->check(CLI::Range(0u, 1u << 20));
  app.add_option("--prefix-groups", o.p.prefix_groups, "sse: how many distinct shared prefixes; each request picks one")
      ->check(CLI::Range(1u, 1u << 20));
  app.add_option("--max-tokens", o.p.max_tokens, "sse: max_tokens")->check(CLI::Range(1u, 1u << 20));
  app.add_option("--api-key", o.p.api_key, "sse: sent as Authorization: Bearer");
  app.add_option("--slo-ttft", o.slo_ttft_ms, "sse goodput: TTFT SLO in ms (0: none)")->check(CLI::Range(0.0, 1e7));
  app.add_option("--slo-tpot", o.slo_tpot_ms, "sse goodput: TPOT SLO in ms (0: none)")->check(CLI::Range(0.0, 1e7));
}

// Turns options into a LoadConfig; returns an error message, empty when fine.
std::string make_config(const Options& o, LoadConfig& c) {
  for (const std::string& srv : o.servers) {
    auto ep = net::Endpoint::parse(srv);
    if (!ep || ep->port == 0) return "--server " + srv + " is not IP:PORT";
    c.servers.push_back(*ep);
  }
  if (o.conns < c.servers.size()) return "--conns must be at least the number of --server values";
  c.proto = find_protocol(o.proto);
  c.pcfg = o.p;
  c.pcfg.name = o.proto;
  c.pcfg.seed = o.seed;
  if (!o.work.empty()) {
    std::string why;
    auto d = slip::Distribution::parse(o.work, &why);
    if (!d) return "--work " + o.work + ": " + why;
    c.pcfg.work = *d;
  }
  c.mode = o.mode == "open" ? Mode::open : Mode::closed;
  c.rate = o.rate;
  if (o.arrival == "poisson") {
    c.arrival = slip::Distribution::exponential(1);
  } else if (o.arrival == "constant") {
    c.arrival = slip::Distribution::constant(1);
  } else if (o.arrival.rfind("bimodal:", 0) == 0) {
    double p = 0, ratio = 0;
    char tail = 0;
    if (std::sscanf(o.arrival.c_str(), "bimodal:%lf:%lf%c", &p, &ratio, &tail) != 2 || !(p >= 0 && p <= 1) ||
        !(ratio > 0 && ratio < 1e6))
      return "--arrival " + o.arrival + ": bimodal wants P:R, P in [0,1] and R > 0 (e.g. bimodal:0.1:10)";
    c.arrival = slip::Distribution::bimodal(1, ratio, p);
  } else {
    return "--arrival " + o.arrival + ": use poisson, constant or bimodal:P:R";
  }
  c.conns = o.conns;
  c.depth = o.depth;
  c.duration_s = o.duration;
  c.warmup_s = o.warmup;
  c.timeout_s = o.timeout;
  c.connect_timeout_s = o.connect_timeout;
  c.seed = o.seed;
  c.max_outstanding = o.max_outstanding;
  c.progress_s = o.progress;
  c.slo_ttft_ms = o.slo_ttft_ms;
  c.slo_tpot_ms = o.slo_tpot_ms;
  return {};
}

Json config_json(const CLI::App& app) {
  Json j;
  for (const CLI::Option* opt : app.get_options()) {
    std::string name = opt->get_name();
    if (name.rfind("--", 0) != 0) continue;
    name = name.substr(2);
    const auto res = opt->results();
    std::string joined;  // a repeated option (--server) keeps every value
    for (const auto& r : res) joined += (joined.empty() ? "" : ",") + r;
    j[name] = res.empty() ? opt->get_default_str() : opt->get_expected_max() > 1 ? joined : res.back();
  }
  return j;
}

std::string default_out(const std::string& proto) {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return fmt::format("runs/{}-{}", buf, proto);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"slip-loadgen: open-loop load generator; latency from intended send times (no coordinated omission)"};
  Options o;
  add_flags(app, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help exits 0; every usage error exits 2, as the other Slipstream tools do.
    return app.exit(e) == 0 ? 0 : 2;
  }
  LoadConfig cfg;
  if (const std::string e = make_config(o, cfg); !e.empty()) {
    fmt::print(stderr, "slip-loadgen: error: {}\n", e);
    return 2;
  }
  Json config = config_json(app);
  config["proto"] = o.proto;
  config["stack"] = o.net.stack;
  config["mode"] = o.mode;
  config["label"] = o.label;
  config["conns"] = o.conns;
  const std::string out = o.out.empty() ? default_out(o.proto) : o.out;

  // Timer expiries (a parked sender's wake-up) are otherwise rounded up by up to 50 us.
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  int rc_exit = 0;
  auto body = [&](net::Stack& st) {
    try {
      const LoadResult r = run_load(st, cfg);
      print_table(cfg, r);
      write_run_folder(out, result_json(cfg, r, config));
      fmt::print("  results in {}/result.json\n", out);
    } catch (const std::exception& e) {
      fmt::print(stderr, "slip-loadgen: error: {}\n", e.what());
      rc_exit = 1;
    }
    std::fflush(stdout);
  };
  const int rc_stack = slip::app::run_on_stack("slip-loadgen", o.net, net::StackConfig{}, body);
  return rc_stack ? rc_stack : rc_exit;
}
