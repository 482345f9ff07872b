// The gateway's Prometheus metrics, named in vLLM's style
// (slip_gateway:time_to_first_token_seconds beside vllm:time_to_first_token_seconds).
// Lock-free counters and histograms; rendering reads them while they change.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace slip::gateway {

class PromHistogram {
 public:
  explicit PromHistogram(std::vector<double> upper_bounds_s);
  void observe_ns(uint64_t ns) noexcept;
  // # HELP/# TYPE, then _bucket{le=..}, _sum and _count lines.
  void render(std::string& out, const char* name, const char* help) const;
  uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> bounds_ns_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // non-cumulative; +Inf last
  std::atomic<uint64_t> count_{0}, sum_ns_{0};
};

struct GatewayMetrics {
  GatewayMetrics();
  PromHistogram ttft, itl, e2e, queue;
  std::array<std::atomic<uint64_t>, 600> by_status{};  // requests answered, by HTTP status
  std::atomic<uint64_t> client_disconnects{0}, retries{0}, upstream_failures{0}, mid_stream_errors{0},
      tokens{0}, prompt_bytes{0};
  // Event-stream bytes sent to clients, and bytes copied into the relay's buffer on their way.
  std::atomic<uint64_t> relayed_bytes{0}, relay_copied_bytes{0};
};

}  // namespace slip::gateway
