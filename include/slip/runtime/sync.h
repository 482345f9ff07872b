// Blocking synchronization for uthreads. Blocking calls park the uthread, never
// the kthread, and throw NotInUthread outside a uthread. Waiters are served FIFO.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "slip/runtime/spin_park_lock.h"
#include "slip/runtime/time.h"
#include "slip/runtime/wait_queue.h"

namespace slip::rt {

// Mutual exclusion with direct handoff: unlock passes ownership to the oldest
// waiter, so a uthread that keeps re-locking cannot starve the others.
class Mutex {
 public:
  void lock() {
    uint32_t expected = 0;
    if (!state_.compare_exchange_strong(expected, kHeld, std::memory_order_acquire, std::memory_order_relaxed))
      lock_slow();
  }
  bool try_lock() noexcept {
    uint32_t expected = 0;
    return state_.compare_exchange_strong(expected, kHeld, std::memory_order_acquire, std::memory_order_relaxed);
  }
  void unlock() noexcept {
    uint32_t expected = kHeld;
    if (!state_.compare_exchange_strong(expected, 0, std::memory_order_release, std::memory_order_relaxed))
      unlock_slow();
  }

 private:
  static constexpr uint32_t kHeld = 1, kWaiters = 2;
  void lock_slow();
  void unlock_slow() noexcept;
  std::atomic<uint32_t> state_{0};
  SpinParkLock lk_;
  WaitQueue waiters_;
};

enum class WaitStatus { kNotified, kTimeout };

// Condition variable for Mutex; signals are not lost because a waiter is queued
// before it releases the mutex.
class CondVar {
 public:
  void wait(Mutex& m);
  template <class Pred>
  void wait(Mutex& m, Pred pred) {
    while (!pred()) wait(m);
  }
  WaitStatus wait_until(Mutex& m, uint64_t deadline_ns);
  WaitStatus wait_for(Mutex& m, std::chrono::nanoseconds d) {
    return wait_until(m, now_ns() + static_cast<uint64_t>(d.count() < 0 ? 0 : d.count()));
  }
  // Waits until pred() holds or the deadline passes; returns pred().
  template <class Pred>
  bool wait_until(Mutex& m, uint64_t deadline_ns, Pred pred) {
    while (!pred())
      if (wait_until(m, deadline_ns) == WaitStatus::kTimeout) return pred();
    return true;
  }
  void notify_one() noexcept;
  void notify_all() noexcept;

 private:
  SpinParkLock lk_;
  WaitQueue waiters_;
};

// Counting semaphore.
class Semaphore {
 public:
  explicit Semaphore(uint64_t initial = 0) : count_(initial) {}
  void acquire();
  bool try_acquire() noexcept;
  bool acquire_until(uint64_t deadline_ns);
  void release(uint64_t n = 1) noexcept;
  uint64_t available() const noexcept;

 private:
  mutable SpinParkLock lk_;
  uint64_t count_;
  WaitQueue waiters_;
};

// Waits for a group of tasks: add(n) before starting them, done() as each ends,
// wait() parks until the count reaches zero.
class WaitGroup {
 public:
  void add(int64_t n = 1);
  void done() { add(-1); }
  void wait();

 private:
  SpinParkLock lk_;
  int64_t count_ = 0;
  WaitQueue waiters_;
};

// Reader-writer lock that prefers writers: once a writer waits, new readers
// queue behind it, so writers are not starved.
class RwMutex {
 public:
  void lock();
  bool try_lock() noexcept;
  void unlock() noexcept;
  void lock_shared();
  bool try_lock_shared() noexcept;
  void unlock_shared() noexcept;

 private:
  SpinParkLock lk_;
  uint32_t readers_ = 0;
  uint32_t writers_waiting_ = 0;
  bool writer_ = false;
  WaitQueue readers_q_, writers_q_;
};

}  // namespace slip::rt
