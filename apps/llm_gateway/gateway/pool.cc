#include "pool.h"

#include <algorithm>
#include <cmath>
#include <mutex>

#include "slip/runtime/time.h"

namespace slip::gateway {
namespace {

// How often a queued request looks at its client's connection.
constexpr uint64_t kGonePollNs = 10'000'000;
constexpr double kEwmaWeight = 0.1;

// Retry-After: whole seconds, at least 1, at most an hour.
uint32_t seconds_up(uint64_t ns) {
  return static_cast<uint32_t>(std::clamp<uint64_t>((ns + 999'999'999) / 1'000'000'000, 1, 3600));
}

}  // namespace

struct Pool::Waiter {
  const Ask& ask;
  const std::vector<const Worker*>& tried;
  uint64_t seq;
  rt::CondVar cv;
  std::shared_ptr<Worker> granted;
};

Pool::Pool(const GatewayConfig& c) { reload(c); }

void Pool::reload(const GatewayConfig& c) {
  std::lock_guard g(mu_);
  std::vector<std::shared_ptr<Worker>> next;
  for (const WorkerConfig& wc : c.workers) {
    auto same = std::find_if(workers_.begin(), workers_.end(), [&](const auto& w) {
      return w->cfg.name == wc.name && w->cfg.ip == wc.ip && w->cfg.port == wc.port;
    });
    if (same != workers_.end()) {
      (*same)->cfg = wc;
      (*same)->tree.set_capacity(c.prefix.tree_chars);
      next.push_back(*same);
    } else {
      next.push_back(std::make_shared<Worker>(wc, c.prefix.tree_chars));
    }
  }
  for (auto& w : workers_)
    if (std::find(next.begin(), next.end(), w) == next.end()) w->removed = true;
  workers_ = std::move(next);
  const bool new_policy = !policy_ || c.policy != cfg_.policy;
  cfg_ = c;
  if (new_policy) policy_ = make_policy(c.policy, c.prefix, 0x5eed);
  dispatch();
}

bool Pool::serves(std::string_view model) const {
  std::lock_guard g(mu_);
  return std::any_of(workers_.begin(), workers_.end(), [&](const auto& w) { return w->serves(model); });
}

std::vector<std::string> Pool::models() const {
  std::lock_guard g(mu_);
  std::vector<std::string> out;
  for (const auto& w : workers_)
    for (const auto& m : w->cfg.models)
      if (std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
  return out;
}

uint64_t Pool::predicted_wait_ns(size_t ahead) const {
  // Slots free at about capacity / mean service time (Little's law).
  const double slots = std::max<double>(1, std::min<double>(cfg_.max_concurrency, static_cast<double>(running_)));
  return static_cast<uint64_t>(static_cast<double>(ahead + 1) * service_ewma_ns_ / slots);
}

bool Pool::grant(Waiter& w) {
  if (running_ >= cfg_.max_concurrency) return false;
  Worker* cand[64];
  std::vector<Worker*> many;
  size_t n = 0;
  for (auto& wk : workers_) {
    if (!wk->has_slot() || !wk->serves(w.ask.model)) continue;
    if (std::find(w.tried.begin(), w.tried.end(), wk.get()) != w.tried.end()) continue;
    if (n < 64) cand[n++] = wk.get();
    else many.push_back(wk.get());
  }
  if (n == 0) return false;
  std::span<Worker* const> span(cand, n);
  if (!many.empty()) {
    many.insert(many.begin(), cand, cand + n);
    span = many;
  }
  Worker* pick = policy_->pick(w.ask.route, span, now_ns());
  pick->outstanding++;
  pick->outstanding_now.store(pick->outstanding, std::memory_order_relaxed);
  pick->outstanding_tokens += w.ask.route.tokens;
  pick->requests.fetch_add(1, std::memory_order_relaxed);
  running_++;
  for (auto& wk : workers_)
    if (wk.get() == pick) w.granted = wk;
  return true;
}

void Pool::dispatch() {
  for (auto it = queue_.begin(); it != queue_.end() && running_ < cfg_.max_concurrency;) {
    if (grant(**it)) {
      (*it)->cv.notify_one();
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
}

Grant Pool::acquire(const Ask& ask, const std::vector<const Worker*>& tried, uint64_t deadline,
                    const std::function<bool()>& gone) {
  std::unique_lock g(mu_);
  Grant out;
  bool any = false, healthy = false;
  uint64_t readmit = UINT64_MAX;
  for (const auto& w : workers_) {
    if (!w->serves(ask.model) || std::find(tried.begin(), tried.end(), w.get()) != tried.end()) continue;
    any = true;
    healthy |= !w->ejected;
    if (w->ejected) readmit = std::min(readmit, w->eject_until_ns);
  }
  if (!any) {
    out.status = tried.empty() ? 404 : 502;
    out.message = tried.empty() ? "The model `" + std::string(ask.model) + "` does not exist."
                                : "every worker serving the model failed before the first token";
    return out;
  }
  if (!healthy) {
    counters_.rejected_unhealthy++;
    out.status = 503;
    out.message = "no healthy worker serves the model `" + std::string(ask.model) + "`; retry later";
    const uint64_t now = now_ns();
    // UINT64_MAX: a probe is under way; its answer comes within the probe timeout.
    out.retry_after_s = readmit == UINT64_MAX ? 1 : seconds_up(readmit > now ? readmit - now : 0);
    return out;
  }
  Waiter w{ask, tried, seq_++, {}, {}};
  // Queue first, then dispatch: a request never overtakes earlier ones of the
  // same or higher priority that could use the same slot.
  auto pos = std::find_if(queue_.begin(), queue_.end(), [&](Waiter* q) { return q->ask.priority > ask.priority; });
  const size_t ahead = static_cast<size_t>(pos - queue_.begin());
  queue_.insert(pos, &w);
  dispatch();
  if (w.granted) {
    out.worker = std::move(w.granted);
    return out;
  }
  auto refuse = [&](int status, std::string msg, uint32_t retry) {
    queue_.erase(std::find(queue_.begin(), queue_.end(), &w));
    out.status = status;
    out.message = std::move(msg);
    out.retry_after_s = retry;
    return out;
  };
  const uint64_t wait_ns = predicted_wait_ns(ahead);
  if (queue_.size() > cfg_.queue_size) {
    counters_.rejected_queue_full++;
    return refuse(429, "the gateway's queue is full (" + std::to_string(cfg_.queue_size) + " waiting); retry later",
                  seconds_up(wait_ns));
  }
  if (cfg_.ttft_slo_ms > 0 && service_ewma_ns_ > 0 &&
      static_cast<double>(wait_ns) + ttft_ewma_ns_ > static_cast<double>(cfg_.ttft_slo_ms) * 1e6) {
    counters_.rejected_slo++;
    return refuse(429, "predicted time to first token exceeds the gateway's SLO of " +
                           std::to_string(cfg_.ttft_slo_ms) + " ms; retry later",
                  seconds_up(wait_ns));
  }
  for (;;) {
    const uint64_t now = now_ns();
    if (now >= deadline) break;
    w.cv.wait_until(mu_, std::min(deadline, now + kGonePollNs));
    if (w.granted) break;
    g.unlock();
    const bool left = gone && gone();
    g.lock();
    if (w.granted || left) break;
  }
  if (w.granted) {
    out.worker = std::move(w.granted);
    return out;
  }
  if (now_ns() < deadline) return refuse(499, "the client closed the connection", 0);
  counters_.rejected_timeout++;
  return refuse(429, "the request waited longer than the gateway's queue timeout (" +
                         std::to_string(cfg_.queue_timeout_ms) + " ms); retry later",
                seconds_up(predicted_wait_ns(0)));
}

void Pool::release(Worker& w, uint64_t tokens) {
  std::lock_guard g(mu_);
  w.outstanding--;
  w.outstanding_now.store(w.outstanding, std::memory_order_relaxed);
  w.outstanding_tokens -= std::min(w.outstanding_tokens, tokens);
  running_--;
  dispatch();
}

void Pool::report(Worker& w, bool ok) {
  std::lock_guard g(mu_);
  const uint64_t now = now_ns();
  w.last_probe_ns = now;
  if (ok) {
    w.failures = 0;
    if (w.ejected) {
      w.ejected = false;
      w.healthy_now.store(true, std::memory_order_relaxed);
      w.backoff_ns = 0;
      dispatch();
    }
    return;
  }
  w.failed.fetch_add(1, std::memory_order_relaxed);
  w.failures++;
  if (w.ejected) {
    w.backoff_ns = std::min(w.backoff_ns * 2, cfg_.backoff_max_ms * 1'000'000);
    w.eject_until_ns = now + w.backoff_ns;
  } else if (w.failures >= cfg_.eject_after) {
    w.ejected = true;
    w.healthy_now.store(false, std::memory_order_relaxed);
    w.ejections.fetch_add(1, std::memory_order_relaxed);
    w.backoff_ns = cfg_.backoff_min_ms * 1'000'000;
    w.eject_until_ns = now + w.backoff_ns;
  }
}

std::vector<std::shared_ptr<Worker>> Pool::due_for_probe() {
  std::lock_guard g(mu_);
  const uint64_t now = now_ns();
  std::vector<std::shared_ptr<Worker>> out;
  for (auto& w : workers_) {
    const bool due = w->ejected ? now >= w->eject_until_ns : now >= w->last_probe_ns + cfg_.health_interval_ms * 1'000'000;
    if (due) {
      w->last_probe_ns = now;  // one probe at a time
      if (w->ejected) w->eject_until_ns = UINT64_MAX;  // until the probe reports
      out.push_back(w);
    }
  }
  return out;
}

std::vector<std::shared_ptr<Worker>> Pool::workers() const {
  std::lock_guard g(mu_);
  return workers_;
}

void Pool::record_ttft(uint64_t ns) {
  std::lock_guard g(mu_);
  ttft_ewma_ns_ = ttft_ewma_ns_ == 0 ? static_cast<double>(ns) : ttft_ewma_ns_ + kEwmaWeight * (static_cast<double>(ns) - ttft_ewma_ns_);
}

void Pool::record_service(uint64_t ns) {
  std::lock_guard g(mu_);
  service_ewma_ns_ = service_ewma_ns_ == 0 ? static_cast<double>(ns)
                                           : service_ewma_ns_ + kEwmaWeight * (static_cast<double>(ns) - service_ewma_ns_);
}

PoolCounters Pool::counters() const {
  std::lock_guard g(mu_);
  PoolCounters c = counters_;
  c.waiting = queue_.size();
  c.running = running_;
  return c;
}

}  // namespace slip::gateway
