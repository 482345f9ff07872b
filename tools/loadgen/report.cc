// Tables, JSON and CSV for a load run.
#include "report.h"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <fmt/core.h>

#include "git_rev.h"

namespace slip::loadgen {
namespace {

struct Pct {
  const char* key;
  double p;
};
constexpr Pct kPcts[] = {{"p50", 50}, {"p90", 90}, {"p99", 99}, {"p999", 99.9}, {"p9999", 99.99}};

double us(uint64_t ns) { return static_cast<double>(ns) / 1e3; }

Json hist_json(const Histogram& h) {
  Json j;
  j["count"] = h.count();
  j["min"] = us(h.min());
  j["mean"] = h.mean() / 1e3;
  for (const Pct& p : kPcts) j[p.key] = us(h.percentile(p.p));
  j["max"] = us(h.max());
  return j;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

Json result_json(const LoadConfig& cfg, const LoadResult& r, const Json& config) {
  const Counts& c = r.counts;
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  Json j;
  j["tool"] = "slip-loadgen";
  j["git_rev"] = kGitRev;
  j["started_at"] = utc_now();
  j["host"] = host;
  j["config"] = config;
  j["offered_rps"] = cfg.mode == Mode::open ? cfg.rate : 0.0;
  j["achieved_rps"] = r.measured_s > 0 ? static_cast<double>(c.completed) / r.measured_s : 0.0;
  j["duration_s"] = r.measured_s;
  j["requests"] = {{"scheduled", c.scheduled}, {"sent", c.sent},         {"completed", c.completed},
                   {"ok", c.ok},               {"miss", c.miss},         {"error", c.error},
                   {"timeouts", c.timeouts},   {"dropped", c.dropped},   {"conn_errors", c.conn_errors},
                   {"parse_errors", c.parse_errors}};
  j["latency_us"] = hist_json(r.latency);
  j["send_lag_us"] = hist_json(r.send_lag);
  if (cfg.proto->streaming) {
    j["sse"] = {{"ttft_us", hist_json(r.ttft)},
                {"itl_us", hist_json(r.itl)},
                {"tpot_us", hist_json(r.tpot)},
                {"e2e_us", hist_json(r.e2e)},
                {"goodput_rps", r.measured_s > 0 ? static_cast<double>(c.goodput) / r.measured_s : 0.0},
                {"slo_attainment", c.completed ? static_cast<double>(c.goodput) / static_cast<double>(c.completed) : 0.0},
                {"slo_ttft_ms", cfg.slo_ttft_ms},
                {"slo_tpot_ms", cfg.slo_tpot_ms}};
  }
  return j;
}

void print_table(const LoadConfig& cfg, const LoadResult& r) {
  const Counts& c = r.counts;
  const double achieved = r.measured_s > 0 ? static_cast<double>(c.completed) / r.measured_s : 0;
  fmt::print("slip-loadgen: {} to {} — {}, {} connection(s), {:.1f} s measured\n", cfg.proto->name,
             cfg.servers.size() == 1 ? cfg.servers[0].str() : fmt::format("{} servers", cfg.servers.size()),
             cfg.mode == Mode::open ? fmt::format("open loop {:.0f} req/s offered", cfg.rate)
                                    : fmt::format("closed loop, depth {}", cfg.depth),
             cfg.conns, r.measured_s);
  fmt::print("  achieved {:.0f} req/s; completed {} (ok {}, miss {}, error {}), timeouts {}, dropped {}, "
             "connection errors {}, malformed {}\n",
             achieved, c.completed, c.ok, c.miss, c.error, c.timeouts, c.dropped, c.conn_errors, c.parse_errors);
  auto row = [](const char* name, const Histogram& h) {
    if (h.count() == 0) return;
    fmt::print("  {:<10} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f}\n", name, us(h.percentile(50)),
               us(h.percentile(90)), us(h.percentile(99)), us(h.percentile(99.9)), us(h.percentile(99.99)), us(h.max()));
  };
  fmt::print("  {:<10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}   (us)\n", "", "p50", "p90", "p99", "p99.9", "p99.99", "max");
  row("latency", r.latency);
  row("send lag", r.send_lag);
  row("ttft", r.ttft);
  row("itl", r.itl);
  row("tpot", r.tpot);
  if (cfg.proto->streaming)
    fmt::print("  goodput {:.1f} req/s within SLOs (ttft {} ms, tpot {} ms)\n",
               r.measured_s > 0 ? static_cast<double>(c.goodput) / r.measured_s : 0.0, cfg.slo_ttft_ms, cfg.slo_tpot_ms);
}

void write_run_folder(const std::string& dir, const Json& j) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create " + dir + ": " + ec.message());
  {
    std::ofstream f(dir + "/result.json");
    f << j.dump(2) << "\n";
    if (!f) throw std::runtime_error("cannot write " + dir + "/result.json");
  }
  std::ofstream f(dir + "/result.csv");
  const Json& l = j["latency_us"];
  const Json& q = j["requests"];
  f << "label,proto,stack,mode,conns,offered_rps,achieved_rps,p50_us,p90_us,p99_us,p999_us,p9999_us,max_us,"
       "completed,timeouts,dropped,errors\n";
  f << fmt::format("{},{},{},{},{},{},{:.1f},{},{},{},{},{},{},{},{},{},{}\n", j["config"].value("label", ""),
                   j["config"].value("proto", ""), j["config"].value("stack", ""), j["config"].value("mode", ""),
                   j["config"].value("conns", 0), j["offered_rps"].get<double>(), j["achieved_rps"].get<double>(),
                   l["p50"].get<double>(), l["p90"].get<double>(), l["p99"].get<double>(), l["p999"].get<double>(),
                   l["p9999"].get<double>(), l["max"].get<double>(), q["completed"].get<uint64_t>(),
                   q["timeouts"].get<uint64_t>(), q["dropped"].get<uint64_t>(),
                   q["error"].get<uint64_t>() + q["conn_errors"].get<uint64_t>() + q["parse_errors"].get<uint64_t>());
  if (!f) throw std::runtime_error("cannot write " + dir + "/result.csv");
}

}  // namespace slip::loadgen
