// The workers, and who may use them: admission (a global and per-worker
// concurrency limit, a bounded priority queue with a deadline, a TTFT
// prediction against the SLO), routing among the workers that have room,
// and health (ejection with backoff, readmission). One lock guards it all;
// it is taken a few times per request, never per token.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "routing.h"
#include "slip/runtime/sync.h"
#include "worker.h"

namespace slip::gateway {

struct Ask {
  std::string_view model;
  RouteInput route;
  int64_t priority = 0;  // lower is served first, as vLLM's priority field
};

// A slot on a worker, or why there is none: status 429 (queue full, SLO,
// queue deadline), 503 (no healthy worker serves the model), 404 (no worker
// serves it at all), 502 (every serving worker was tried), 499 (the client left).
struct Grant {
  std::shared_ptr<Worker> worker;
  int status = 0;
  std::string message;
  uint32_t retry_after_s = 0;
};

struct PoolCounters {
  uint64_t waiting = 0, running = 0;
  uint64_t rejected_queue_full = 0, rejected_slo = 0, rejected_timeout = 0, rejected_unhealthy = 0;
};

class Pool {
 public:
  explicit Pool(const GatewayConfig& c);
  // Applies a new configuration: workers with the same name and address keep
  // their state and in-flight requests; removed ones finish what they run.
  void reload(const GatewayConfig& c);

  bool serves(std::string_view model) const;
  std::vector<std::string> models() const;
  // Parks until a slot is granted or refused. `gone` is polled while waiting.
  Grant acquire(const Ask& ask, const std::vector<const Worker*>& tried, uint64_t deadline,
                const std::function<bool()>& gone);
  void release(Worker& w, uint64_t tokens);

  // Health: a probe's or a request's outcome. Failures eject after
  // eject_after in a row; an ejected worker is probed again after a backoff
  // that doubles up to backoff_max; a success readmits it.
  void report(Worker& w, bool ok);
  // Workers a health probe is due for now.
  std::vector<std::shared_ptr<Worker>> due_for_probe();
  std::vector<std::shared_ptr<Worker>> workers() const;

  // Predictor inputs, from finished requests.
  void record_ttft(uint64_t ns);
  void record_service(uint64_t ns);
  PoolCounters counters() const;

 private:
  struct Waiter;
  void dispatch();  // grants queued requests while slots allow; under mu_
  bool grant(Waiter& w);
  uint64_t predicted_wait_ns(size_t ahead) const;

  mutable rt::Mutex mu_;
  GatewayConfig cfg_;
  std::vector<std::shared_ptr<Worker>> workers_;
  std::unique_ptr<RoutingPolicy> policy_;
  std::vector<Waiter*> queue_;  // by (priority, seq)
  uint64_t seq_ = 0, running_ = 0;
  double ttft_ewma_ns_ = 0, service_ewma_ns_ = 0;
  PoolCounters counters_;
};

}  // namespace slip::gateway
