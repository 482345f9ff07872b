// Sources of work that kthreads poll themselves, run to completion: NIC receive
// queues (IX style), the IOKernel's rings, the kernel backend's epoll. A kthread
// polls while idle and now and then between uthreads while busy (below), so
// packets are handled on the core whose uthreads they wake.
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

  // A poller with a kernel wait object (the kernel backend's epoll) lets one
  // idle kthread sleep in it instead of on its futex, the way Go's netpoller
  // does, so socket readiness wakes a kthread without a polling delay.
  virtual bool can_block() const noexcept { return false; }
  // Waits up to timeout_ns for events, handles them as poll() does, and
  // returns early once interrupt() is called (even if that came first).
  virtual unsigned block(unsigned /*kthread*/, uint64_t /*timeout_ns*/) noexcept { return 0; }
  // Makes a concurrent or the next block() return; callable from any thread.
  virtual void interrupt() noexcept {}
  // Kthread `kthread` is about to park, or lost its core, and polls nothing
  // until it runs again: a poller with queues of its own may let the
  // kthreads still polling take them over now.
  virtual void parking(unsigned /*kthread*/) noexcept {}
};

// A busy kthread polls between uthreads every kPollEverySwitches switches,
// and, while another kthread spins idle, at the first switch
// kPollIntervalNs after its last poll: its own receive queue then never
// waits on a long run of short uthreads, so the idle one has no reason to
// take it over (SlipStack's steal_after_ns).
inline constexpr unsigned kPollEverySwitches = 64;
inline constexpr uint64_t kPollIntervalNs = 5'000;
inline constexpr unsigned kMaxPollers = 8;

// Registers p with the running runtime; p must stay alive until removed (or the
// runtime ends). Throws std::logic_error with no runtime or when kMaxPollers are in use.
void add_poller(Poller* p);
// Unregisters p; returns once no kthread is inside p->poll().
void remove_poller(Poller* p) noexcept;

// Returns once every kthread that was inside a poller call (poll, block,
// max_park_ns, parking) when this was called has left it; a kthread asleep
// in block() is interrupted. What a poller unpublished before calling this
// (a socket taken out of its table) is then used by no poll any more and may
// be freed: the receive path looks such objects up without a lock or a
// reference count, the way RCU readers do. Not from inside a poller call
// whose caller another kthread is waiting for (two would wait for each other).
void synchronize_pollers() noexcept;

}  // namespace slip::rt
