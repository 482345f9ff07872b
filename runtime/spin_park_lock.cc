// SpinParkLock's contended path and Backoff. The state word is Drepper's
// three-state futex mutex ("Futexes Are Tricky", mutex 2) with a spin phase
// before the first sleep.
#include "slip/runtime/spin_park_lock.h"

#include <linux/futex.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "slip/runtime/time.h"

namespace slip::rt {
namespace {

std::atomic<uint64_t> g_spin_ns{kDefaultLockSpinNs};
std::atomic<uint64_t> g_spun{0}, g_parked{0}, g_parks{0}, g_wait_ns{0};

inline void cpu_pause() noexcept { __builtin_ia32_pause(); }

}  // namespace

void set_lock_spin_ns(uint64_t ns) noexcept { g_spin_ns.store(ns, std::memory_order_relaxed); }
uint64_t lock_spin_ns() noexcept { return g_spin_ns.load(std::memory_order_relaxed); }

LockStats lock_stats() noexcept {
  return {g_spun.load(std::memory_order_relaxed), g_parked.load(std::memory_order_relaxed),
          g_parks.load(std::memory_order_relaxed), g_wait_ns.load(std::memory_order_relaxed)};
}

void SpinParkLock::lock_contended() noexcept {
  // Spin while the holder runs, reading the clock every 8 looks. Once a
  // waiter sleeps (kSleepers) a newcomer joins it instead of spinning, so
  // sleepers are not overtaken forever.
  const uint64_t start = now_ns(), budget = g_spin_ns.load(std::memory_order_relaxed);
  for (unsigned i = 1;; i++) {
    uint32_t seen = state_.load(std::memory_order_relaxed);
    if (seen == kSleepers) break;
    if (seen == kFree &&
        state_.compare_exchange_weak(seen, kLocked, std::memory_order_acquire, std::memory_order_relaxed)) {
      g_spun.fetch_add(1, std::memory_order_relaxed);
      g_wait_ns.fetch_add(now_ns() - start, std::memory_order_relaxed);
      return;
    }
    if ((i & 7) == 0 && now_ns() - start >= budget) break;
    cpu_pause();
  }
  g_parked.fetch_add(1, std::memory_order_relaxed);
  // Taking the lock from here on leaves kSleepers, so our unlock wakes the
  // next sleeper (at worst one futex wake with nobody asleep).
  while (state_.exchange(kSleepers, std::memory_order_acquire) != kFree) {
    g_parks.fetch_add(1, std::memory_order_relaxed);
    syscall(SYS_futex, &state_, FUTEX_WAIT_PRIVATE, kSleepers, nullptr, nullptr, 0);
  }
  g_wait_ns.fetch_add(now_ns() - start, std::memory_order_relaxed);
}

void SpinParkLock::wake_one() noexcept { syscall(SYS_futex, &state_, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0); }

void Backoff::pause() noexcept {
  const uint64_t now = now_ns();
  if (start_ns_ == 0) start_ns_ = now;
  if (now - start_ns_ < g_spin_ns.load(std::memory_order_relaxed)) {
    for (int i = 0; i < 8; i++) cpu_pause();
    return;
  }
  // Past the spin: sleeps of 1, 2, 4 ... up to 1024 µs, which let a holder
  // on this CPU run and keep the waiter's fair share. Not sched_yield: under
  // EEVDF (Linux 6.6+) each yield pushes the caller's deadline back a slice,
  // and a holder on another busy CPU gains nothing from it.
  const uint64_t us = uint64_t{1} << std::min<uint32_t>(rounds_++, 10);
  const timespec ts{0, static_cast<long>(us * 1000)};
  nanosleep(&ts, nullptr);
}

void GiveWay::idle() noexcept {
  const uint64_t now = now_ns();
  if (now - checked_ns_ < kSpinYieldAfterNs) return;
  const bool first = checked_ns_ == 0;
  checked_ns_ = now;
  rusage u{};
  if (getrusage(RUSAGE_THREAD, &u) != 0) return;
  const bool preempted = u.ru_nivcsw != nivcsw_;
  nivcsw_ = u.ru_nivcsw;
  if (!preempted || first) return;
  const timespec ts{0, static_cast<long>(kGiveWayNs)};
  nanosleep(&ts, nullptr);
  if (getrusage(RUSAGE_THREAD, &u) == 0) nivcsw_ = u.ru_nivcsw;
}

}  // namespace slip::rt
