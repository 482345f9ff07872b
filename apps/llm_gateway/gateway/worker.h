// One upstream inference worker as the gateway sees it. The fields without
// atomics belong to the Pool and change only under its lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "config.h"
#include "prefix_tree.h"

namespace slip::gateway {

struct Worker {
  Worker(WorkerConfig c, uint64_t tree_bytes) : cfg(std::move(c)), tree(tree_bytes) {}
  bool serves(std::string_view model) const {
    if (cfg.models.empty()) return true;
    for (const auto& m : cfg.models)
      if (m == model) return true;
    return false;
  }
  bool has_slot() const { return !ejected && !removed && outstanding < cfg.max_concurrency; }

  WorkerConfig cfg;
  // Under the Pool's lock.
  uint32_t outstanding = 0;
  uint64_t outstanding_tokens = 0;
  uint32_t failures = 0;  // consecutive
  bool ejected = false, removed = false;
  uint64_t eject_until_ns = 0, backoff_ns = 0, last_probe_ns = 0;
  PrefixTree tree;
  // Read by /metrics without the lock.
  std::atomic<uint64_t> requests{0}, failed{0}, ejections{0};
  std::atomic<uint32_t> outstanding_now{0};
  std::atomic<bool> healthy_now{true};
};

}  // namespace slip::gateway
