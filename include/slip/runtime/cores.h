// Core allocation from outside the process: an arbiter (the IOKernel, in
// shared mode) decides which kthreads hold a core, Shenango style. Kthreads
// below guaranteed() always run; the others run only while granted, and an
// idle one gives its core back instead of sleeping on it. Without an arbiter
// the runtime schedules over set_active_kthreads() as before.
#pragma once

#include <atomic>
#include <cstdint>

namespace slip::rt {

class CoreArbiter {
 public:
  virtual ~CoreArbiter() = default;
  // Kthreads [0, guaranteed()) always hold a core.
  virtual unsigned guaranteed() const noexcept = 0;
  // Whether kthread k may hold a core now, and the grant's sequence number
  // (it changes with every new grant). Cheap: read between uthreads.
  virtual bool granted(unsigned k) const noexcept = 0;
  virtual uint32_t grant_seq(unsigned k) const noexcept = 0;
  // Kthread k holds no core from here: publishes that, then waits until it
  // is woken (a kick from the arbiter, unpark(k)), *wake differs from seen,
  // the grant sequence differs from grant_seen, or timeout_ns passed; spin:
  // polls the two sequences instead of sleeping. The caller decides what the
  // wake meant. Publishes k as running on return.
  virtual void park(unsigned k, const std::atomic<uint32_t>& wake, uint32_t seen, uint32_t grant_seen,
                    uint64_t timeout_ns, bool spin) noexcept = 0;
  // Makes a park(k) return soon; callable from any thread.
  virtual void unpark(unsigned k) noexcept = 0;
  // Kthread k's run queue has held ready uthreads since since_ns without
  // draining (0: empty): the congestion signal the arbiter samples.
  virtual void report_ready(unsigned k, uint64_t since_ns) noexcept = 0;
};

// Installs a for the running runtime (nullptr removes it; removal returns
// once no kthread is inside the old arbiter, and every kthread may run
// again). Throws std::logic_error when no runtime runs.
void set_core_arbiter(CoreArbiter* a);
// The installed arbiter, or nullptr.
CoreArbiter* core_arbiter() noexcept;

}  // namespace slip::rt
