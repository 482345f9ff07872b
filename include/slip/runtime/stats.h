// Per-kthread counters, written by their owner kthread and summed on read.
#pragma once

#include <cstdint>
#include <string>
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

// What the kernel did to one kthread's OS thread (/proc/self/task/TID).
struct KthreadSchedStats {
  int tid = 0;
  uint64_t involuntary_switches = 0;  // preempted while it wanted to run (nonvoluntary_ctxt_switches)
  uint64_t voluntary_switches = 0;    // it slept: parked, blocked in a syscall
  uint64_t run_ns = 0;                // time on a CPU (schedstat, 1st field)
  uint64_t runnable_wait_ns = 0;      // time runnable but not running (schedstat, 2nd field)
};

// How much the kernel and the cgroup held the runtime back: on cores shared
// with other work (involuntary switches, runnable wait) and under a CPU
// quota (throttling). Kernel counters since each thread or cgroup began.
struct SchedStats {
  std::vector<KthreadSchedStats> per_kthread;  // empty when no runtime runs
  uint64_t involuntary_switches = 0;           // sums over per_kthread
  uint64_t runnable_wait_ns = 0;
  uint64_t run_ns = 0;
  // The cgroup's cpu.stat (v1 nr_throttled and throttled_time, v2
  // nr_throttled and throttled_usec), at the most throttled level from the
  // process's cgroup up to the mount; has_throttling is false where no cpu.stat could be read.
  bool has_throttling = false;
  uint64_t throttled_periods = 0;
  uint64_t throttled_ns = 0;
};

// Reads the kernel's counters for the running runtime's kthreads and its
// cgroup (a few /proc and cgroupfs reads: for stats output, not hot paths).
SchedStats sched_stats();
// Fields for an app's one-line summary: "involuntary_switches=N
// runnable_wait_ns=N throttled_periods=N throttled_ns=N" ("-" where unknown).
std::string describe(const SchedStats& s);

// Snapshot of every kthread's counters of the running runtime (empty when none runs).
std::vector<KthreadStats> stats();
// Sum over kthreads.
KthreadStats total(const std::vector<KthreadStats>& per_kthread);

}  // namespace slip::rt
