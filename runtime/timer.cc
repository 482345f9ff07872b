// Per-kthread binary min-heaps of timer entries, and the Timer class on top.
#include <algorithm>

#include "runtime/defs.h"
#include "slip/runtime/runtime.h"
#include "slip/runtime/timer.h"

namespace slip::rt {
namespace detail {

void TimerHeap::publish() noexcept {
  next_deadline.store(heap.empty() ? UINT64_MAX : heap[0]->deadline_ns, std::memory_order_release);
}

void TimerHeap::sift_up(size_t i) {
  TimerEntry* e = heap[i];
  while (i > 0) {
    const size_t p = (i - 1) / 2;
    if (heap[p]->deadline_ns <= e->deadline_ns) break;
    heap[i] = heap[p];
    heap[i]->heap_index = static_cast<uint32_t>(i);
    i = p;
  }
  heap[i] = e;
  e->heap_index = static_cast<uint32_t>(i);
}

void TimerHeap::sift_down(size_t i) {
  TimerEntry* e = heap[i];
  const size_t n = heap.size();
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && heap[c + 1]->deadline_ns < heap[c]->deadline_ns) c++;
    if (e->deadline_ns <= heap[c]->deadline_ns) break;
    heap[i] = heap[c];
    heap[i]->heap_index = static_cast<uint32_t>(i);
    i = c;
  }
  heap[i] = e;
  e->heap_index = static_cast<uint32_t>(i);
}

void TimerHeap::insert(TimerEntry* e) {
  heap.push_back(e);
  sift_up(heap.size() - 1);
  publish();
}

void TimerHeap::erase(TimerEntry* e) {
  const size_t i = e->heap_index;
  TimerEntry* last = heap.back();
  heap.pop_back();
  if (last != e) {
    heap[i] = last;
    last->heap_index = static_cast<uint32_t>(i);
    sift_down(i);
    sift_up(last->heap_index);
  }
  publish();
}

TimerEntry* TimerHeap::pop_due(uint64_t now) {
  if (heap.empty() || heap[0]->deadline_ns > now) return nullptr;
  TimerEntry* e = heap[0];
  erase(e);
  return e;
}

void fire_due_timers(Kthread* k, Kthread* owner, uint64_t now) noexcept {
  TimerHeap& h = owner->timers;
  for (;;) {
    if (h.next_deadline.load(std::memory_order_acquire) > now) return;
    if (owner == k) h.lock.lock();
    else if (!h.lock.try_lock()) return;
    TimerEntry* e = h.pop_due(now);
    if (!e) {
      h.lock.unlock();
      return;
    }
    e->running_on.store(k, std::memory_order_relaxed);
    e->state.store(TimerEntry::kIdle, std::memory_order_release);
    h.lock.unlock();
    e->fn(e);
    KthreadCounters::inc(k->counters.timers_fired);
    e->running_on.store(nullptr, std::memory_order_release);  // the last touch of e
  }
}

void timer_arm(TimerEntry* e, uint64_t deadline_ns) {
  Kthread* k = this_kthread();
  if (!k) throw_not_in_uthread("Timer::start_at");
  timer_cancel(e);
  SpinParkGuard g(k->timers.lock);
  e->owner = k;
  e->deadline_ns = deadline_ns;
  e->state.store(TimerEntry::kArmed, std::memory_order_relaxed);
  k->timers.insert(e);
}

bool timer_cancel(TimerEntry* e) noexcept {
  bool stopped = false;
  Kthread* owner = e->owner;
  if (owner && e->state.load(std::memory_order_acquire) == TimerEntry::kArmed) {
    SpinParkGuard g(owner->timers.lock);
    if (e->state.load(std::memory_order_relaxed) == TimerEntry::kArmed) {
      owner->timers.erase(e);
      e->state.store(TimerEntry::kIdle, std::memory_order_relaxed);
      stopped = true;
    }
  }
  // A callback may be mid-flight on another kthread; wait it out (but not our own).
  Kthread* self = this_kthread();
  Backoff backoff;
  for (Kthread* r; (r = e->running_on.load(std::memory_order_acquire)) && r != self;) backoff.pause();
  return stopped;
}

}  // namespace detail

Timer::Timer(std::function<void()> fn) : fn_(std::move(fn)) {
  e_.fn = &Timer::fire;
  e_.arg = this;
}
Timer::~Timer() { cancel(); }
void Timer::start_at(uint64_t deadline_ns) { detail::timer_arm(&e_, deadline_ns); }
bool Timer::cancel() noexcept { return detail::timer_cancel(&e_); }
void Timer::fire(detail::TimerEntry* e) { static_cast<Timer*>(e->arg)->fn_(); }

}  // namespace slip::rt
