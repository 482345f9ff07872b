// The runtime clock: calibrates the TSC against CLOCK_MONOTONIC once per process.
#include "slip/runtime/time.h"

#include <cpuid.h>
#include <time.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

namespace slip {
namespace detail {

ClockState g_clock;

uint64_t mono_now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

namespace {

constexpr uint64_t kCalibrateNs = 10'000'000;
constexpr int kSampleTries = 8;

struct ClockPair {
  uint64_t tsc;
  uint64_t mono_ns;
};

// Only an invariant TSC ticks at a constant rate through P-states and C-states.
bool tsc_is_invariant() {
  unsigned a, b, c, d;
  if (!__get_cpuid(0x80000007, &a, &b, &c, &d)) return false;
  return (d & (1u << 8)) != 0;
}

// A (tsc, mono) pair taken at nearly the same instant: the mono read is bracketed
// by two rdtsc, the TSC midpoint is used, and the tightest of several tries wins
// so that an interrupt or preemption during one try does not skew calibration.
ClockPair sample_pair() {
  ClockPair best{};
  uint64_t best_width = UINT64_MAX;
  for (int i = 0; i < kSampleTries; i++) {
    const uint64_t t0 = __builtin_ia32_rdtsc();
    const uint64_t m = mono_now_ns();
    const uint64_t t1 = __builtin_ia32_rdtsc();
    if (t1 - t0 < best_width) {
      best_width = t1 - t0;
      best = {t0 + (t1 - t0) / 2, m};
    }
  }
  return best;
}

void calibrate_tsc(ClockState& c) {
  const ClockPair start = sample_pair();
  timespec pause{0, static_cast<long>(kCalibrateNs)};
  while (nanosleep(&pause, &pause) != 0) {
  }
  const ClockPair end = sample_pair();
  const uint64_t dtsc = end.tsc - start.tsc, dmono = end.mono_ns - start.mono_ns;
  // Base at the start pair so a thread on another core whose TSC lags slightly
  // never computes tsc - tsc_base < 0 right after publication.
  c.tsc_base = start.tsc;
  c.mono_base_ns = start.mono_ns;
  c.mult = static_cast<uint64_t>(((static_cast<unsigned __int128>(dmono) << kClockShift) + dtsc / 2) / dtsc);
  c.tsc_hz = static_cast<uint64_t>((static_cast<unsigned __int128>(dtsc) * 1'000'000'000u + dmono / 2) / dmono);
  c.use_tsc = true;
}

void init_once() {
  ClockState& c = g_clock;
  const char* env = std::getenv("SLIP_CLOCK");
  const bool forced_mono = env && std::strcmp(env, "monotonic") == 0;
  if (!forced_mono && tsc_is_invariant()) calibrate_tsc(c);
  __atomic_store_n(&c.ready, true, __ATOMIC_RELEASE);
}

}  // namespace

void init_clock() noexcept {
  static std::once_flag once;
  std::call_once(once, init_once);
}

}  // namespace detail

bool clock_uses_tsc() noexcept {
  detail::init_clock();
  return detail::g_clock.use_tsc;
}

uint64_t tsc_hz() noexcept {
  detail::init_clock();
  return detail::g_clock.tsc_hz;
}

}  // namespace slip
