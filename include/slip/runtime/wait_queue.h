// The parking primitive every blocking runtime object is built on: a FIFO of
// parked uthreads guarded by a SpinParkLock that the caller owns.
#pragma once

#include <cstddef>
#include <cstdint>

#include "slip/runtime/spin_park_lock.h"

namespace slip::rt {

class WakeList;

namespace detail {
struct Uthread;
// Parks the calling uthread and releases lk once its context is saved, so a
// waker holding lk can never ready a uthread that is still running.
void park_and_unlock(SpinParkLock& lk);
// Makes a parked uthread runnable again (from any runtime context or thread).
void ready(Uthread* th) noexcept;
// The calling uthread; throws NotInUthread (naming `what`) outside one.
Uthread* current_or_throw(const char* what);
}  // namespace detail

class WaitQueue {
 public:
  WaitQueue() = default;
  WaitQueue(const WaitQueue&) = delete;
  WaitQueue& operator=(const WaitQueue&) = delete;

  // With lk held: parks the caller until woken. Returns with lk released.
  void wait(SpinParkLock& lk);
  // With lk held: parks until woken or now_ns() >= deadline_ns. Returns with lk
  // released; true when woken, false on timeout.
  bool wait_until(SpinParkLock& lk, uint64_t deadline_ns);
  // With lk held: wakes the oldest waiter; false when there was none. The
  // waiter may run at once: use these only where it cannot destroy the object
  // that holds this queue and lk; otherwise take_one/take_all.
  bool wake_one() noexcept;
  // With lk held: wakes every waiter; returns how many.
  size_t wake_all() noexcept;
  // With lk held: moves the oldest waiter (every waiter) to `to`, which
  // readies it once lk is released; false (0) when there was none.
  bool take_one(WakeList& to) noexcept;
  size_t take_all(WakeList& to) noexcept;
  bool empty() const noexcept { return head_ == nullptr; }

  // A parked uthread's entry; lives on the waiter's stack.
  struct Waiter {
    detail::Uthread* th = nullptr;
    Waiter* prev = nullptr;
    Waiter* next = nullptr;
    bool queued = false;
    bool woken = false;
  };

 private:
  void push(Waiter* w) noexcept;
  void remove(Waiter* w) noexcept;
  friend struct WaitQueueTimeout;

  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
};

// Waiters taken off a queue while its lock is held, readied when the list
// goes (or at wake()): after the lock is released. A readied uthread may
// return at once and destroy the object holding the queue and the lock:
// wg.wait() then leaving the scope, or a Mutex's new owner unlocking and
// freeing it. So a waker must be done with both before it readies anyone.
// Declare the list before the lock's guard: the guard goes first.
class WakeList {
 public:
  WakeList() = default;
  WakeList(const WakeList&) = delete;
  WakeList& operator=(const WakeList&) = delete;
  ~WakeList() { wake(); }
  // Readies everyone taken so far, oldest first. Call without the lock.
  void wake() noexcept;

 private:
  friend class WaitQueue;
  void append(WaitQueue::Waiter* w) noexcept;
  WaitQueue::Waiter* head_ = nullptr;
  WaitQueue::Waiter* tail_ = nullptr;
};

}  // namespace slip::rt
