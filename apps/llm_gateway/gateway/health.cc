#include "health.h"

#include <chrono>

#include "slip/runtime/runtime.h"
#include "slip/runtime/time.h"

namespace slip::gateway {
namespace {

// Whether one GET /health answered 200 within the timeout.
bool probe(Transport& t, const Worker& w, uint64_t timeout_ns) {
  const uint64_t deadline = now_ns() + timeout_ns;
  auto call = t.call(w, UpstreamRequest{"GET", "/health", {}, false, {}}, deadline);
  if (!call) return false;
  auto h = (*call)->head(deadline);
  if (!h) return false;
  std::string body;
  for (;;) {
    auto r = (*call)->read_body_to(body, deadline);
    if (!r) return false;
    if (!*r) break;
    if (body.size() > 64 * 1024) return false;
  }
  return h->status == 200;
}

}  // namespace

void run_health_checks(Pool& pool, Transport& t, const std::atomic<bool>& stop,
                       const std::function<std::shared_ptr<const GatewayConfig>()>& cfg) {
  while (!stop.load(std::memory_order_relaxed)) {
    const auto c = cfg();
    for (auto& w : pool.due_for_probe()) {
      // Probes run one after another: a dead worker costs at most the timeout per round.
      const bool ok = probe(t, *w, c->health_timeout_ms * 1'000'000);
      if (!ok) t.forget(*w);
      pool.report(*w, ok);
    }
    rt::sleep_for(std::chrono::milliseconds(std::min<uint64_t>(c->health_interval_ms, 50)));
  }
}

}  // namespace slip::gateway
