// Per-kthread counters, written by their owner kthread and summed on read.
#pragma once

#include <cstdint>
#include <vector>

#include "slip/common/histogram.h"

namespace slip::rt {

struct KthreadStats {
  uint64_t switches = 0;        // context switches into a uthread
  uint64_t spawns = 0;          // uthreads created on this kthread
  uint64_t steals = 0;          // uthreads this kthread took from others' queues
  uint64_t steal_attempts = 0;  // steal passes over the other kthreads
  uint64_t parks = 0;           // times the kthread parked (futex sleep)
  uint64_t wakeups = 0;         // times it was woken from a park by new work or a stop
  uint64_t timers_fired = 0;    // timer callbacks run by this kthread
  uint64_t overflows = 0;       // uthreads that went to the overflow list (run ring full)
  Histogram rq_delay_ns;        // ready-to-run delay, sampled 1 in kRqDelaySampleEvery
};

// One in this many ready events is timestamped for rq_delay_ns, so that the
// histogram costs nothing measurable on the yield path.
inline constexpr unsigned kRqDelaySampleEvery = 64;

// Snapshot of every kthread's counters of the running runtime (empty when none runs).
std::vector<KthreadStats> stats();
// Sum over kthreads.
KthreadStats total(const std::vector<KthreadStats>& per_kthread);

}  // namespace slip::rt
