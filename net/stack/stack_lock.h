// The slip stack's stack-wide locks: the port tables' and the neighbour
// table's. Control paths (bind, listen, dial's port search) and ARP take
// them; the receive path of IP traffic must not, since every kthread runs it
// at once. A StackLock counts each time it is taken while the calling thread
// handles a received IP frame (NetCounters::rx_stack_locks), so a test fails
// when a change puts one back on that path.
#pragma once

#include <atomic>
#include <cstdint>

#include "slip/runtime/spin_park_lock.h"

namespace slip::net::stack {

// Set while this thread handles a received IPv4 frame (IpRxScope).
inline thread_local bool t_ip_rx = false;

class IpRxScope {
 public:
  IpRxScope() noexcept : was_(t_ip_rx) { t_ip_rx = true; }
  ~IpRxScope() { t_ip_rx = was_; }
  IpRxScope(const IpRxScope&) = delete;
  IpRxScope& operator=(const IpRxScope&) = delete;

 private:
  bool was_;
};

class StackLock {
 public:
  explicit StackLock(std::atomic<uint64_t>& rx_hits) noexcept : rx_hits_(rx_hits) {}
  void lock() noexcept {
    if (t_ip_rx) rx_hits_.fetch_add(1, std::memory_order_relaxed);
    lk_.lock();
  }
  void unlock() noexcept { lk_.unlock(); }

 private:
  rt::SpinParkLock lk_;
  std::atomic<uint64_t>& rx_hits_;
};

}  // namespace slip::net::stack
