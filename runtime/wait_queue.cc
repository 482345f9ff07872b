// WaitQueue: FIFO parking with optional deadlines.
#include "slip/runtime/wait_queue.h"

#include "runtime/defs.h"
#include "slip/runtime/runtime.h"
#include "slip/runtime/timer.h"

namespace slip::rt {

void WaitQueue::push(Waiter* w) noexcept {
  w->queued = true;
  w->next = nullptr;
  w->prev = tail_;
  if (tail_) tail_->next = w;
  else head_ = w;
  tail_ = w;
}

void WaitQueue::remove(Waiter* w) noexcept {
  if (w->prev) w->prev->next = w->next;
  else head_ = w->next;
  if (w->next) w->next->prev = w->prev;
  else tail_ = w->prev;
  w->queued = false;
  w->prev = w->next = nullptr;
}

// Outside a uthread: drop the caller's lock, then throw, so nothing deadlocks.
static detail::Uthread* current_or_unlock_throw(SpinParkLock& lk, const char* what) {
  if (!in_uthread()) {
    lk.unlock();
    detail::throw_not_in_uthread(what);
  }
  return detail::current_or_throw(what);
}

void WaitQueue::wait(SpinParkLock& lk) {
  Waiter w;
  w.th = current_or_unlock_throw(lk, "wait");
  push(&w);
  detail::park_and_unlock(lk);
}

// What a deadline's timer needs to pull its waiter out of the queue.
struct WaitQueueTimeout {
  detail::TimerEntry e;
  WaitQueue* q;
  SpinParkLock* lk;
  WaitQueue::Waiter* w;

  static void fire(detail::TimerEntry* e) {
    auto* t = static_cast<WaitQueueTimeout*>(e->arg);
    t->lk->lock();
    if (t->w->queued) {
      t->q->remove(t->w);
      detail::ready(t->w->th);
    }
    t->lk->unlock();
  }
};

bool WaitQueue::wait_until(SpinParkLock& lk, uint64_t deadline_ns) {
  Waiter w;
  w.th = current_or_unlock_throw(lk, "wait_until");
  if (now_ns() >= deadline_ns) {
    lk.unlock();
    return false;
  }
  push(&w);
  WaitQueueTimeout t{{}, this, &lk, &w};
  t.e.fn = &WaitQueueTimeout::fire;
  t.e.arg = &t;
  detail::timer_arm(&t.e, deadline_ns);  // it fires no earlier than lk is released
  detail::park_and_unlock(lk);
  detail::timer_cancel(&t.e);
  return w.woken;
}

// take_one/take_all with a list that readies as it goes: still under the
// caller's lock.
bool WaitQueue::wake_one() noexcept {
  WakeList woken;
  return take_one(woken);
}

size_t WaitQueue::wake_all() noexcept {
  WakeList woken;
  return take_all(woken);
}

bool WaitQueue::take_one(WakeList& to) noexcept {
  Waiter* w = head_;
  if (!w) return false;
  remove(w);
  w->woken = true;  // a deadline that fires now finds it gone and leaves it parked for us
  to.append(w);
  return true;
}

size_t WaitQueue::take_all(WakeList& to) noexcept {
  size_t n = 0;
  while (take_one(to)) n++;
  return n;
}

void WakeList::append(WaitQueue::Waiter* w) noexcept {
  if (tail_) tail_->next = w;
  else head_ = w;
  tail_ = w;
}

void WakeList::wake() noexcept {
  while (WaitQueue::Waiter* w = head_) {
    // w lives on its uthread's stack: read it all before that uthread runs.
    head_ = w->next;
    detail::Uthread* th = w->th;
    w->next = nullptr;
    detail::ready(th);
  }
  tail_ = nullptr;
}

}  // namespace slip::rt
