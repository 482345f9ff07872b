// The outcome of parsing one protocol layer: a view into the frame, or the one
// reason (counters.h) under which the stack counts and drops the frame.
#pragma once

#include "slip/net/counters.h"

namespace slip::net::proto {

template <typename View>
struct Parsed {
  View view{};
  Drop drop = Drop::kCount;  // kCount: no drop, the view is valid
  bool ok() const noexcept { return drop == Drop::kCount; }
  explicit operator bool() const noexcept { return ok(); }
  static Parsed fail(Drop d) noexcept { return Parsed{View{}, d}; }
  static Parsed good(const View& v) noexcept { return Parsed{v, Drop::kCount}; }
};

}  // namespace slip::net::proto
