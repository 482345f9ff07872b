// Bounded multi-producer multi-consumer channel for uthreads, with Go-like close:
// after close(), send fails, and recv drains what is buffered, then returns nullopt.
// Storage is allocated once at construction; send and recv allocate nothing.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <utility>

#include "slip/runtime/spin_park_lock.h"
#include "slip/runtime/wait_queue.h"

namespace slip::rt {

enum class ChannelStatus { kOk, kClosed, kFull, kEmpty, kTimeout };

template <class T>
class Channel {
 public:
  explicit Channel(size_t capacity)
      : cap_(capacity), slots_(capacity ? static_cast<T*>(::operator new(sizeof(T) * capacity, std::align_val_t{alignof(T)})) : nullptr) {
    if (capacity == 0) throw std::invalid_argument("slip::rt::Channel: capacity must be at least 1");
  }
  ~Channel() {
    while (count_) pop_front();
    ::operator delete(slots_, std::align_val_t{alignof(T)});
  }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // Parks while full. Returns false (and drops v) when the channel is closed.
  bool send(T v) { return send_until(std::move(v), UINT64_MAX) == ChannelStatus::kOk; }
  // kOk, kClosed or kTimeout.
  ChannelStatus send_until(T v, uint64_t deadline_ns) {
    lk_.lock();
    for (;;) {
      if (closed_) return unlock_with(ChannelStatus::kClosed);
      if (count_ < cap_) break;
      if (deadline_ns == UINT64_MAX) senders_.wait(lk_);
      else if (!senders_.wait_until(lk_, deadline_ns)) {
        lk_.lock();
        if (closed_) return unlock_with(ChannelStatus::kClosed);
        if (count_ == cap_) return unlock_with(ChannelStatus::kTimeout);
        break;
      }
      lk_.lock();
    }
    push_back(std::move(v));
    WakeList woken;  // after the unlock: a receiver may destroy the channel at once
    receivers_.take_one(woken);
    lk_.unlock();
    return ChannelStatus::kOk;
  }
  // Never parks: kOk, kFull or kClosed. Usable from timer callbacks and foreign threads.
  ChannelStatus try_send(T v) {
    WakeList woken;
    SpinParkGuard g(lk_);
    if (closed_) return ChannelStatus::kClosed;
    if (count_ == cap_) return ChannelStatus::kFull;
    push_back(std::move(v));
    receivers_.take_one(woken);
    return ChannelStatus::kOk;
  }

  // Parks while empty; nullopt once the channel is closed and drained.
  std::optional<T> recv() {
    std::optional<T> out;
    recv_until(out, UINT64_MAX);
    return out;
  }
  // kOk (out set), kClosed (closed and drained) or kTimeout.
  ChannelStatus recv_until(std::optional<T>& out, uint64_t deadline_ns) {
    lk_.lock();
    for (;;) {
      if (count_ > 0) break;
      if (closed_) return unlock_with(ChannelStatus::kClosed);
      if (deadline_ns == UINT64_MAX) receivers_.wait(lk_);
      else if (!receivers_.wait_until(lk_, deadline_ns)) {
        lk_.lock();
        if (count_ == 0) return unlock_with(closed_ ? ChannelStatus::kClosed : ChannelStatus::kTimeout);
        break;
      }
      lk_.lock();
    }
    out.emplace(std::move(slots_[head_]));
    pop_front();
    WakeList woken;
    senders_.take_one(woken);
    lk_.unlock();
    return ChannelStatus::kOk;
  }
  // Never parks: kOk, kEmpty or kClosed.
  ChannelStatus try_recv(std::optional<T>& out) {
    WakeList woken;
    SpinParkGuard g(lk_);
    if (count_ == 0) return closed_ ? ChannelStatus::kClosed : ChannelStatus::kEmpty;
    out.emplace(std::move(slots_[head_]));
    pop_front();
    senders_.take_one(woken);
    return ChannelStatus::kOk;
  }

  // Wakes every parked sender and receiver; idempotent.
  void close() noexcept {
    WakeList woken;
    SpinParkGuard g(lk_);
    closed_ = true;
    senders_.take_all(woken);
    receivers_.take_all(woken);
  }
  bool closed() const noexcept {
    SpinParkGuard g(lk_);
    return closed_;
  }
  size_t size() const noexcept {
    SpinParkGuard g(lk_);
    return count_;
  }
  size_t capacity() const noexcept { return cap_; }

 private:
  ChannelStatus unlock_with(ChannelStatus s) {
    lk_.unlock();
    return s;
  }
  void push_back(T&& v) {
    ::new (&slots_[(head_ + count_) % cap_]) T(std::move(v));
    count_++;
  }
  void pop_front() noexcept {
    slots_[head_].~T();
    head_ = (head_ + 1) % cap_;
    count_--;
  }

  mutable SpinParkLock lk_;
  const size_t cap_;
  T* slots_;
  size_t head_ = 0, count_ = 0;
  bool closed_ = false;
  WaitQueue senders_, receivers_;
};

}  // namespace slip::rt
