// Routing policies: which of the workers that can take a request now gets it.
// The Pool calls pick() under its lock with a non-empty candidate list, so a
// policy needs no locking of its own.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "config.h"
#include "worker.h"

namespace slip::gateway {

struct RouteInput {
  std::string_view prompt;  // the prompt's text (chat: roles and contents), for prefix matching
  uint64_t tokens = 0;      // estimated prompt plus output tokens, for least_tokens
};

class RoutingPolicy {
 public:
  virtual ~RoutingPolicy() = default;
  // candidates: healthy workers serving the model with a free slot; never empty.
  virtual Worker* pick(const RouteInput& in, std::span<Worker* const> candidates, uint64_t now) = 0;
};

std::unique_ptr<RoutingPolicy> make_policy(Policy p, const PrefixConfig& prefix, uint64_t seed);

}  // namespace slip::gateway
