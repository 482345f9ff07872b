// Monotonic time for the runtime: a TSC clock calibrated once per process against
// CLOCK_MONOTONIC, falling back to CLOCK_MONOTONIC where the TSC is not invariant.
#pragma once

#include <cstdint>

namespace slip {

namespace detail {
// Conversion state for now_ns(); written once by init_clock(), read-only afterwards.
// `ready` is published with a release store; readers load it with acquire.
struct ClockState {
  bool ready = false;
  bool use_tsc = false;
  uint64_t tsc_base = 0;  // TSC value that maps to mono_base_ns
  uint64_t mono_base_ns = 0;
  uint64_t mult = 0;      // ns = ((tsc - tsc_base) * mult) >> kShift
  uint64_t tsc_hz = 0;
};
inline constexpr unsigned kClockShift = 24;
extern ClockState g_clock;
void init_clock() noexcept;
uint64_t mono_now_ns() noexcept;
}  // namespace detail

// Nanoseconds on the CLOCK_MONOTONIC time line; cheap enough for per-packet use.
inline uint64_t now_ns() noexcept {
  const detail::ClockState& c = detail::g_clock;
  if (__builtin_expect(!__atomic_load_n(&c.ready, __ATOMIC_ACQUIRE), 0)) detail::init_clock();
  if (!c.use_tsc) return detail::mono_now_ns();
  const uint64_t d = __builtin_ia32_rdtsc() - c.tsc_base;
  return c.mono_base_ns + static_cast<uint64_t>((static_cast<unsigned __int128>(d) * c.mult) >> detail::kClockShift);
}

// True when now_ns() reads the TSC; false when it falls back to clock_gettime.
bool clock_uses_tsc() noexcept;
// Calibrated TSC frequency in Hz (0 when the TSC is not used).
uint64_t tsc_hz() noexcept;

}  // namespace slip
