#include "routing.h"

#include <algorithm>

#include "slip/common/dist.h"

namespace slip::gateway {
namespace {

Worker* least_requests(std::span<Worker* const> c) {
  return *std::min_element(c.begin(), c.end(), [](Worker* a, Worker* b) { return a->outstanding < b->outstanding; });
}

class RoundRobin final : public RoutingPolicy {
 public:
  Worker* pick(const RouteInput&, std::span<Worker* const> c, uint64_t) override { return c[next_++ % c.size()]; }

 private:
  uint64_t next_ = 0;
};

class LeastRequests final : public RoutingPolicy {
 public:
  Worker* pick(const RouteInput&, std::span<Worker* const> c, uint64_t) override { return least_requests(c); }
};

class LeastTokens final : public RoutingPolicy {
 public:
  Worker* pick(const RouteInput&, std::span<Worker* const> c, uint64_t) override {
    return *std::min_element(c.begin(), c.end(),
                             [](Worker* a, Worker* b) { return a->outstanding_tokens < b->outstanding_tokens; });
  }
};

// Two random candidates, the less loaded wins: near least-loaded balance
// without herding onto one worker between load updates.
class PowerOfTwo final : public RoutingPolicy {
 public:
  explicit PowerOfTwo(uint64_t seed) : state_(seed) {}
  Worker* pick(const RouteInput&, std::span<Worker* const> c, uint64_t) override {
    if (c.size() == 1) return c[0];
    const size_t a = splitmix64(++state_) % c.size();
    size_t b = splitmix64(++state_) % (c.size() - 1);
    if (b >= a) b++;
    return c[a]->outstanding <= c[b]->outstanding ? c[a] : c[b];
  }

 private:
  uint64_t state_;
};

// SGLang's cache-aware routing, per worker: when load is imbalanced, the
// least-loaded worker; otherwise the worker whose tree matches the longest
// prefix if that covers cache_threshold of the prompt, else the worker with
// the smallest tree (the most cache room). The prompt is then remembered for
// the chosen worker.
class PrefixAware final : public RoutingPolicy {
 public:
  explicit PrefixAware(const PrefixConfig& c) : c_(c) {}
  Worker* pick(const RouteInput& in, std::span<Worker* const> c, uint64_t now) override {
    Worker* w = choose(in, c, now);
    if (!in.prompt.empty()) w->tree.insert(in.prompt, now);
    return w;
  }

 private:
  Worker* choose(const RouteInput& in, std::span<Worker* const> c, uint64_t now) {
    auto [lo, hi] = std::minmax_element(c.begin(), c.end(),
                                        [](Worker* a, Worker* b) { return a->outstanding < b->outstanding; });
    const double min_load = (*lo)->outstanding, max_load = (*hi)->outstanding;
    if (max_load - min_load > c_.balance_abs && max_load > min_load * c_.balance_rel) return *lo;
    if (in.prompt.empty()) return least_requests(c);
    Worker* best = nullptr;
    size_t best_len = 0;
    for (Worker* w : c) {
      const size_t len = w->tree.match(in.prompt, now);
      if (len > best_len || (len == best_len && best && w->outstanding < best->outstanding)) best = w, best_len = len;
    }
    if (best && static_cast<double>(best_len) >= c_.cache_threshold * static_cast<double>(in.prompt.size()))
      return best;
    return *std::min_element(c.begin(), c.end(), [](Worker* a, Worker* b) {
      return a->tree.bytes() != b->tree.bytes() ? a->tree.bytes() < b->tree.bytes() : a->outstanding < b->outstanding;
    });
  }

  const PrefixConfig c_;
};

}  // namespace

std::unique_ptr<RoutingPolicy> make_policy(Policy p, const PrefixConfig& prefix, uint64_t seed) {
  switch (p) {
    case Policy::round_robin: return std::make_unique<RoundRobin>();
    case Policy::least_requests: return std::make_unique<LeastRequests>();
    case Policy::least_tokens: return std::make_unique<LeastTokens>();
    case Policy::p2c: return std::make_unique<PowerOfTwo>(seed);
    case Policy::prefix_aware: return std::make_unique<PrefixAware>(prefix);
  }
  return std::make_unique<LeastRequests>();
}

}  // namespace slip::gateway
