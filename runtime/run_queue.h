// Per-kthread run queue: a bounded single-producer, multi-consumer FIFO ring
// (the design of Go's per-P runq). The owner pushes with a plain release store;
// the owner and thieves pop by CAS on head, so stealing needs no lock.
#pragma once

#include <atomic>
#include <cstdint>

namespace slip::rt::detail {

struct Uthread;

class RunQueue {
 public:
  static constexpr uint32_t kSize = 256;

  // Owner only. False when full (the caller spills to the overflow list).
  bool push(Uthread* th) noexcept {
    const uint32_t t = tail_.load(std::memory_order_relaxed);
    const uint32_t h = head_.load(std::memory_order_acquire);
    if (t - h >= kSize) return false;
    slots_[t % kSize].store(th, std::memory_order_relaxed);
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }

  // Owner (or anyone): oldest entry, or nullptr when empty.
  Uthread* pop() noexcept {
    uint32_t h = head_.load(std::memory_order_acquire);
    for (;;) {
      const uint32_t t = tail_.load(std::memory_order_acquire);
      if (h == t) return nullptr;
      Uthread* th = slots_[h % kSize].load(std::memory_order_relaxed);
      if (head_.compare_exchange_weak(h, h + 1, std::memory_order_acq_rel, std::memory_order_acquire)) return th;
    }
  }

  // Thief: moves half of this queue (rounded up) onto `to`, which must be empty
  // and owned by the caller; returns one of the moved uthreads to run at once.
  Uthread* steal_into(RunQueue& to) noexcept {
    const uint32_t to_t = to.tail_.load(std::memory_order_relaxed);
    for (;;) {
      uint32_t h = head_.load(std::memory_order_acquire);
      const uint32_t t = tail_.load(std::memory_order_acquire);
      const uint32_t n = t - h - (t - h) / 2;
      if (n == 0) return nullptr;
      if (n > kSize / 2 + 1) continue;  // torn read of head/tail; retry
      for (uint32_t i = 0; i < n; i++)
        to.slots_[(to_t + i) % kSize].store(slots_[(h + i) % kSize].load(std::memory_order_relaxed),
                                            std::memory_order_relaxed);
      if (!head_.compare_exchange_strong(h, h + n, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      Uthread* first = to.slots_[(to_t + n - 1) % kSize].load(std::memory_order_relaxed);
      if (n > 1) to.tail_.store(to_t + n - 1, std::memory_order_release);
      return first;
    }
  }

  uint32_t size() const noexcept {
    const uint32_t h = head_.load(std::memory_order_acquire);
    const uint32_t t = tail_.load(std::memory_order_acquire);
    return t - h;
  }
  bool empty() const noexcept { return size() == 0; }

 private:
  alignas(64) std::atomic<uint32_t> head_{0};
  alignas(64) std::atomic<uint32_t> tail_{0};
  std::atomic<Uthread*> slots_[kSize] = {};
};

}  // namespace slip::rt::detail
