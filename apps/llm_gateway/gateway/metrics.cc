#include "metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace slip::gateway {
namespace {

// vLLM's buckets for the same histograms, so dashboards line up.
const std::vector<double> kTtftBuckets = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
                                          0.75,  1.0,   2.5,  5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0};
const std::vector<double> kItlBuckets = {0.00001, 0.0001, 0.001, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,
                                         0.3,     0.4,    0.5,   0.75, 1.0,   2.5,  5.0,   7.5, 10.0};
const std::vector<double> kE2eBuckets = {0.01, 0.05, 0.1,  0.3,  0.5,  0.8,  1.0,   1.5,   2.0,  2.5,  5.0,
                                         10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0};

}  // namespace

PromHistogram::PromHistogram(std::vector<double> b)
    : bounds_(std::move(b)), buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (double s : bounds_) bounds_ns_.push_back(static_cast<uint64_t>(s * 1e9));
  for (size_t i = 0; i <= bounds_.size(); i++) buckets_[i].store(0, std::memory_order_relaxed);
}

void PromHistogram::observe_ns(uint64_t ns) noexcept {
  const size_t i = static_cast<size_t>(std::lower_bound(bounds_ns_.begin(), bounds_ns_.end(), ns) - bounds_ns_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(ns, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

void PromHistogram::render(std::string& out, const char* name, const char* help) const {
  out += fmt::format("# HELP {0} {1}\n# TYPE {0} histogram\n", name, help);
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); i++) {
    cum += buckets_[i].load(std::memory_order_relaxed);
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cum);
  }
  cum += buckets_[bounds_.size()].load(std::memory_order_relaxed);
  // count_ may run ahead of the buckets read above; +Inf and _count agree with each other.
  out += fmt::format("{0}_bucket{{le=\"+Inf\"}} {1}\n{0}_sum {2}\n{0}_count {1}\n", name, cum,
                     static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9);
}

GatewayMetrics::GatewayMetrics() : ttft(kTtftBuckets), itl(kItlBuckets), e2e(kE2eBuckets), queue(kE2eBuckets) {}

}  // namespace slip::gateway
