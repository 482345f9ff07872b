// The lock the runtime and the stack take for short critical sections (wait
// queues, run-queue overflow, timers, stack shards and tables). It spins a
// little, then parks the calling OS thread on a futex: on a dedicated core
// the holder is running and the spin wins; on a shared or throttled core the
// holder may have lost its CPU, and a waiter that kept spinning would burn
// its own slice (and, on the holder's CPU, delay the holder). Never held
// across a blocking call, except that park_and_unlock() releases it only
// after the parked uthread's context is saved.
#pragma once

#include <atomic>
#include <cstdint>

namespace slip::rt {

class SpinParkLock {
 public:
  void lock() noexcept {
    uint32_t free = kFree;
    if (!state_.compare_exchange_strong(free, kLocked, std::memory_order_acquire, std::memory_order_relaxed))
      lock_contended();
  }
  bool try_lock() noexcept {
    uint32_t free = kFree;
    return state_.load(std::memory_order_relaxed) == kFree &&
           state_.compare_exchange_strong(free, kLocked, std::memory_order_acquire, std::memory_order_relaxed);
  }
  void unlock() noexcept {
    if (state_.exchange(kFree, std::memory_order_release) == kSleepers) wake_one();
  }
  bool is_locked() const noexcept { return state_.load(std::memory_order_relaxed) != kFree; }

 private:
  // kSleepers: held, and a waiter may be asleep on the futex (unlock wakes one).
  static constexpr uint32_t kFree = 0, kLocked = 1, kSleepers = 2;
  void lock_contended() noexcept;
  void wake_one() noexcept;
  std::atomic<uint32_t> state_{kFree};
};

// RAII guard for SpinParkLock (std::lock_guard works too; this one can release early).
class SpinParkGuard {
 public:
  explicit SpinParkGuard(SpinParkLock& l) noexcept : l_(&l) { l_->lock(); }
  ~SpinParkGuard() { if (l_) l_->unlock(); }
  SpinParkGuard(const SpinParkGuard&) = delete;
  SpinParkGuard& operator=(const SpinParkGuard&) = delete;
  void release() noexcept { l_ = nullptr; }
  void unlock() noexcept { l_->unlock(); l_ = nullptr; }

 private:
  SpinParkLock* l_;
};

// How long a contended lock() spins before it parks, in nanoseconds
// (kDefaultLockSpinNs unless the runtime's config says otherwise). Process-wide.
inline constexpr uint64_t kDefaultLockSpinNs = 2000;
void set_lock_spin_ns(uint64_t ns) noexcept;
uint64_t lock_spin_ns() noexcept;

// Process-wide counts of contended acquisitions: those that spun and got the
// lock, those that parked at least once, the futex sleeps, and the time
// contended lock() calls took in all (spinning and asleep).
struct LockStats {
  uint64_t spun = 0;
  uint64_t parked = 0;
  uint64_t parks = 0;
  uint64_t wait_ns = 0;
};
LockStats lock_stats() noexcept;

// Waiting for another thread to leave a short section (a flag or counter it
// clears): spins about as long as a contended lock, then sleeps in growing
// steps up to 1 ms, so that a waiter never burns the time
// slice of a holder that lost its CPU. One per wait; call pause() each look.
class Backoff {
 public:
  void pause() noexcept;

 private:
  uint64_t start_ns_ = 0;
  uint32_t rounds_ = 0;
};

// For loops that spin on purpose (a kthread that never parks, a client
// polling for a grant): call idle() between looks. Every kSpinYieldAfterNs it
// asks the kernel whether this thread was preempted since (its involuntary
// switch count moved), and if so sleeps kGiveWayNs so that the thread it
// shares the CPU with runs; on a core of its own it keeps spinning. Not
// sched_yield: since Linux 6.6 (EEVDF) each yield pushes the caller's
// deadline back a slice, and a loop of yields beside a busy process gets
// about 5% of the CPU (it then notices new work milliseconds late).
// A spinning kthread (Config::spinning_kthreads) starts calling idle() once
// idle kSpinYieldAfterNs; idle() looks that often.
inline constexpr uint64_t kSpinYieldAfterNs = 20'000;
inline constexpr uint64_t kGiveWayNs = 20'000;
class GiveWay {
 public:
  void idle() noexcept;

 private:
  uint64_t checked_ns_ = 0;
  long nivcsw_ = 0;
};

}  // namespace slip::rt
