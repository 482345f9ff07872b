// A test-and-test-and-set spinlock for the runtime's short critical sections
// (wait queues, run-queue overflow, timers). Never held across a blocking call,
// except that park_and_unlock() releases it only after the parked uthread's
// context is saved.
#pragma once

#include <atomic>

namespace slip::rt {

class SpinLock {
 public:
  void lock() noexcept {
    while (locked_.exchange(true, std::memory_order_acquire)) {
      while (locked_.load(std::memory_order_relaxed)) __builtin_ia32_pause();
    }
  }
  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) && !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }
  bool is_locked() const noexcept { return locked_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> locked_{false};
};

// RAII guard for SpinLock (std::lock_guard works too; this one can release early).
class SpinGuard {
 public:
  explicit SpinGuard(SpinLock& l) noexcept : l_(&l) { l_->lock(); }
  ~SpinGuard() { if (l_) l_->unlock(); }
  SpinGuard(const SpinGuard&) = delete;
  SpinGuard& operator=(const SpinGuard&) = delete;
  void release() noexcept { l_ = nullptr; }
  void unlock() noexcept { l_->unlock(); l_ = nullptr; }

 private:
  SpinLock* l_;
};

}  // namespace slip::rt
