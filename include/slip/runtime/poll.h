// Sources of work that kthreads poll themselves, run to completion: NIC receive
// queues (IX style), the IOKernel's rings, the kernel backend's epoll. A kthread
// polls while idle and every kPollEverySwitches switches while busy, so packets
// are handled on the core whose uthreads they wake.
#pragma once

#include <cstdint>

namespace slip::rt {

class Poller {
 public:
  virtual ~Poller() = default;
  // Handles what is ready for kthread `kthread` without blocking; returns how
  // much work it did (0: nothing), which keeps an idle kthread from parking.
  virtual unsigned poll(unsigned kthread) noexcept = 0;
  // Longest a kthread may park while this poller is registered: a NIC without
  // interrupts must still be polled now and then. UINT64_MAX: no limit.
  virtual uint64_t max_park_ns() const noexcept { return UINT64_MAX; }
};

inline constexpr unsigned kPollEverySwitches = 64;
inline constexpr unsigned kMaxPollers = 8;

// Registers p with the running runtime; p must stay alive until removed (or the
// runtime ends). Throws std::logic_error with no runtime or when kMaxPollers are in use.
void add_poller(Poller* p);
// Unregisters p; returns once no kthread is inside p->poll().
void remove_poller(Poller* p) noexcept;

}  // namespace slip::rt
