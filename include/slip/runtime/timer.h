// One-shot timers on the calling kthread's timer heap (O(log n) arm and cancel).
// A timer fires on its kthread, or on an idle kthread that steals expired
// timers, within a few microseconds of its deadline when a core is free.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>

#include "slip/runtime/time.h"

namespace slip::rt {

namespace detail {
struct Kthread;
// Intrusive heap entry; embedded in whatever needs a wake-up.
struct TimerEntry {
  enum State : uint8_t { kIdle, kArmed };
  uint64_t deadline_ns = 0;
  void (*fn)(TimerEntry*) = nullptr;
  void* arg = nullptr;  // fn's context
  Kthread* owner = nullptr;
  uint32_t heap_index = 0;
  std::atomic<uint8_t> state{kIdle};       // kArmed while in a heap; guarded by its lock
  std::atomic<Kthread*> running_on{nullptr};  // the kthread running fn right now
};
// Arms e on the calling kthread. Requires a runtime kthread context.
void timer_arm(TimerEntry* e, uint64_t deadline_ns);
// Disarms e; if its callback is running, waits until it returns. True when
// the call stopped the callback from running.
bool timer_cancel(TimerEntry* e) noexcept;
}  // namespace detail

// A one-shot timer whose callback runs on a kthread outside any uthread: it must
// not block (spawn(), Channel::try_send() and WaitQueue wakes are fine).
// The destructor cancels and waits for a running callback.
class Timer {
 public:
  explicit Timer(std::function<void()> fn);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // (Re)arms the timer; callable from uthreads and timer callbacks.
  void start_at(uint64_t deadline_ns);
  void start_after(std::chrono::nanoseconds d) {
    start_at(now_ns() + static_cast<uint64_t>(d.count() < 0 ? 0 : d.count()));
  }
  // True when this call prevented the callback from running.
  bool cancel() noexcept;
  bool armed() const noexcept { return e_.state.load(std::memory_order_acquire) == detail::TimerEntry::kArmed; }

 private:
  static void fire(detail::TimerEntry* e);
  detail::TimerEntry e_;
  std::function<void()> fn_;
};

}  // namespace slip::rt
