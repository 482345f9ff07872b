// run_load: sets the connections up, runs the schedule, and gathers results.
#include "engine.h"

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <vector>

#include <fmt/core.h>

#include "conn.h"
#include "slip/runtime/runtime.h"

namespace slip::loadgen {
namespace {

uint64_t ns(double s) { return static_cast<uint64_t>(s * 1e9); }

// One status line per interval on stderr: where the run is, the rates over
// the last interval, and the tail so far. Rewritten in place on a terminal.
class Progress {
 public:
  Progress(const LoadConfig& cfg, const Window& w, const std::vector<std::unique_ptr<Conn>>& conns)
      : cfg_(cfg), w_(w), conns_(conns), tty_(isatty(STDERR_FILENO)) {}

  void run(const std::atomic<bool>& stop) {
    uint64_t last_t = now_ns(), last_sent = 0, last_done = 0;
    while (!stop.load()) {
      const uint64_t until = now_ns() + ns(cfg_.progress_s);
      while (!stop.load() && now_ns() < until) rt::sleep_for(std::chrono::milliseconds(20));
      if (stop.load()) break;
      Counts c;
      Histogram h;
      for (const auto& k : conns_) {
        k->counts.add_to(c);
        h.merge(k->latency);
      }
      const uint64_t now = now_ns();
      const double dt = static_cast<double>(now - last_t) / 1e9;
      const char* phase = now < w_.measure_from ? "warm-up" : now < w_.send_until ? "measure" : "drain";
      const double total = static_cast<double>(w_.send_until - w_.start) / 1e9;
      std::fprintf(stderr, "%s[%5.1fs/%.1fs %s] sent %.0f/s done %.0f/s  p50 %.1fus p99 %.1fus  timeouts %lu errors %lu%s",
                   tty_ ? "\r" : "", static_cast<double>(now - w_.start) / 1e9, total, phase,
                   static_cast<double>(c.sent - last_sent) / dt, static_cast<double>(c.completed - last_done) / dt,
                   static_cast<double>(h.percentile(50)) / 1e3, static_cast<double>(h.percentile(99)) / 1e3,
                   c.timeouts, c.error + c.conn_errors + c.parse_errors, tty_ ? "   " : "\n");
      last_t = now;
      last_sent = c.sent;
      last_done = c.completed;
    }
    if (tty_) std::fputc('\n', stderr);
  }

 private:
  const LoadConfig& cfg_;
  const Window& w_;
  const std::vector<std::unique_ptr<Conn>>& conns_;
  bool tty_;
};

}  // namespace

LoadResult run_load(net::Stack& stack, const LoadConfig& cfg) {
  Window w;
  std::vector<std::unique_ptr<Conn>> conns;
  const uint64_t connect_deadline = now_ns() + ns(cfg.connect_timeout_s);
  for (uint32_t i = 0; i < cfg.conns; i++) {
    conns.push_back(std::make_unique<Conn>(cfg, w, i));
    conns.back()->open(stack, connect_deadline);
  }
  conns[0]->probe(now_ns() + ns(cfg.connect_timeout_s));

  // Preload (memcached: set every key) in parallel over the connections.
  const uint64_t pre = conns[0] ? cfg.proto->make(cfg.pcfg, 0)->preload_count() : 0;
  if (pre > 0) {
    std::vector<rt::JoinHandle> hs;
    std::vector<std::string> errors(conns.size());
    for (size_t i = 0; i < conns.size(); i++) {
      hs.push_back(rt::spawn([&, i] {
        try {
          conns[i]->preload(i, pre, conns.size());
        } catch (const LoadError& e) {
          errors[i] = e.what();
        }
      }));
    }
    for (auto& h : hs) h.join();
    for (auto& e : errors)
      if (!e.empty()) throw LoadError(e);
  }

  w.start = now_ns() + 1'000'000;
  w.measure_from = w.start + ns(cfg.warmup_s);
  w.send_until = w.measure_from + ns(cfg.duration_s);
  w.timeout_ns = ns(cfg.timeout_s);
  w.drain_until = w.send_until + w.timeout_ns + 100'000'000;

  std::atomic<bool> stop{false};
  rt::JoinHandle progress;
  Progress prog(cfg, w, conns);
  if (cfg.progress_s > 0) progress = rt::spawn([&] { prog.run(stop); });
  std::vector<rt::JoinHandle> hs;
  for (auto& c : conns) {
    Conn* k = c.get();
    hs.push_back(rt::spawn([k] { k->run_receiver(); }));
    hs.push_back(rt::spawn([k] { k->run_sender(); }));
  }
  for (auto& h : hs) h.join();
  stop = true;
  progress.join();

  LoadResult r;
  r.measured_s = cfg.duration_s;
  for (auto& c : conns) {
    c->finish();
    c->counts.add_to(r.counts);
    r.latency.merge(c->latency);
    r.send_lag.merge(c->send_lag);
    r.ttft.merge(c->ttft);
    r.itl.merge(c->itl);
    r.tpot.merge(c->tpot);
    r.e2e.merge(c->e2e);
  }
  return r;
}

}  // namespace slip::loadgen
