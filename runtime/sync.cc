// Mutex, CondVar, Semaphore, WaitGroup and RwMutex on WaitQueue. Every waker
// readies through a WakeList, after it has released the object's lock: a
// woken uthread may destroy the object at once.
#include "slip/runtime/sync.h"

#include <stdexcept>

#include "slip/runtime/runtime.h"

namespace slip::rt {

void Mutex::lock_slow() {
  detail::current_or_throw("Mutex::lock");  // before any state changes
  lk_.lock();
  for (;;) {
    uint32_t s = state_.load(std::memory_order_relaxed);
    if (!(s & kHeld)) {
      if (state_.compare_exchange_weak(s, s | kHeld, std::memory_order_acquire, std::memory_order_relaxed)) {
        lk_.unlock();
        return;
      }
      continue;
    }
    if (state_.compare_exchange_weak(s, s | kWaiters, std::memory_order_relaxed, std::memory_order_relaxed)) break;
  }
  // Ownership is handed to us by unlock_slow before we are woken.
  waiters_.wait(lk_);
}

void Mutex::unlock_slow() noexcept {
  WakeList next_owner;  // readied after lk_ is released: it may free the mutex at once
  SpinParkGuard g(lk_);
  // Only kHeld|kWaiters reaches here; the waiters bit is stable under lk_.
  if (waiters_.take_one(next_owner)) {
    if (waiters_.empty()) state_.store(kHeld, std::memory_order_release);
  } else {
    state_.store(0, std::memory_order_release);
  }
}

void CondVar::wait(Mutex& m) {
  detail::current_or_throw("CondVar::wait");
  lk_.lock();
  m.unlock();  // after we are queued under lk_, so a notify cannot slip between
  waiters_.wait(lk_);
  m.lock();
}

WaitStatus CondVar::wait_until(Mutex& m, uint64_t deadline_ns) {
  detail::current_or_throw("CondVar::wait_until");
  lk_.lock();
  m.unlock();
  const bool woken = waiters_.wait_until(lk_, deadline_ns);
  m.lock();
  return woken ? WaitStatus::kNotified : WaitStatus::kTimeout;
}

void CondVar::notify_one() noexcept {
  WakeList woken;
  SpinParkGuard g(lk_);
  waiters_.take_one(woken);
}

void CondVar::notify_all() noexcept {
  WakeList woken;
  SpinParkGuard g(lk_);
  waiters_.take_all(woken);
}

// A woken Semaphore waiter owns the unit that release() handed to it.
void Semaphore::acquire() {
  lk_.lock();
  if (count_ > 0) {
    count_--;
    lk_.unlock();
    return;
  }
  waiters_.wait(lk_);
}

bool Semaphore::try_acquire() noexcept {
  SpinParkGuard g(lk_);
  if (count_ == 0) return false;
  count_--;
  return true;
}

bool Semaphore::acquire_until(uint64_t deadline_ns) {
  lk_.lock();
  if (count_ > 0) {
    count_--;
    lk_.unlock();
    return true;
  }
  return waiters_.wait_until(lk_, deadline_ns);
}

void Semaphore::release(uint64_t n) noexcept {
  WakeList woken;
  SpinParkGuard g(lk_);
  for (; n > 0; n--)
    if (!waiters_.take_one(woken)) break;
  count_ += n;
}

uint64_t Semaphore::available() const noexcept {
  SpinParkGuard g(lk_);
  return count_;
}

void WaitGroup::add(int64_t n) {
  WakeList woken;
  SpinParkGuard g(lk_);
  count_ += n;
  if (count_ < 0) throw std::logic_error("slip::rt::WaitGroup: done() called more times than add()");
  if (count_ == 0) waiters_.take_all(woken);
}

void WaitGroup::wait() {
  lk_.lock();
  if (count_ == 0) {
    lk_.unlock();
    return;
  }
  // The last done() readies us only after it has let go of the group (a
  // WakeList), so we may destroy it as soon as this returns.
  waiters_.wait(lk_);
}

void RwMutex::lock() {
  lk_.lock();
  if (!writer_ && readers_ == 0) {
    writer_ = true;
    lk_.unlock();
    return;
  }
  if (!in_uthread()) {
    lk_.unlock();
    detail::throw_not_in_uthread("RwMutex::lock");
  }
  writers_waiting_++;
  writers_q_.wait(lk_);  // woken as the owner (writer_ already set for us)
}

bool RwMutex::try_lock() noexcept {
  SpinParkGuard g(lk_);
  if (writer_ || readers_) return false;
  writer_ = true;
  return true;
}

void RwMutex::unlock() noexcept {
  WakeList woken;
  SpinParkGuard g(lk_);
  if (writers_waiting_) {
    writers_waiting_--;
    writers_q_.take_one(woken);  // writer_ stays set: handed over
    return;
  }
  writer_ = false;
  readers_ += static_cast<uint32_t>(readers_q_.take_all(woken));
}

void RwMutex::lock_shared() {
  lk_.lock();
  if (!writer_ && writers_waiting_ == 0) {
    readers_++;
    lk_.unlock();
    return;
  }
  readers_q_.wait(lk_);  // woken with readers_ already counting us
}

bool RwMutex::try_lock_shared() noexcept {
  SpinParkGuard g(lk_);
  if (writer_ || writers_waiting_) return false;
  readers_++;
  return true;
}

void RwMutex::unlock_shared() noexcept {
  WakeList woken;
  SpinParkGuard g(lk_);
  if (--readers_ == 0 && writers_waiting_) {
    writers_waiting_--;
    writer_ = true;
    writers_q_.take_one(woken);
  }
}

}  // namespace slip::rt
