// What the kernel did to the runtime's kthreads (/proc/self/task/TID) and how
// often the cgroup's CPU quota stopped them (cpu.stat): the evidence for a
// runtime that runs on shared or throttled cores.
#include <fmt/format.h>

#include <algorithm>
#include <string>

#include "runtime/defs.h"
#include "runtime/proc_text.h"
#include "slip/runtime/stats.h"

namespace slip::rt {
namespace {

using detail::keyed_value;
using detail::read_text_file;

KthreadSchedStats thread_stats(int tid) {
  KthreadSchedStats s;
  s.tid = tid;
  const std::string task = "/proc/self/task/" + std::to_string(tid);
  if (const auto status = read_text_file(task + "/status")) {
    s.involuntary_switches = keyed_value(*status, "nonvoluntary_ctxt_switches").value_or(0);
    s.voluntary_switches = keyed_value(*status, "voluntary_ctxt_switches").value_or(0);
  }
  // "run_ns wait_ns timeslices"; absent without CONFIG_SCHED_INFO.
  if (const auto schedstat = read_text_file(task + "/schedstat")) {
    const auto w = detail::words(*schedstat);
    if (w.size() >= 2) {
      s.run_ns = detail::parse_u64(w[0]).value_or(0);
      s.runnable_wait_ns = detail::parse_u64(w[1]).value_or(0);
    }
  }
  return s;
}

// The most throttled level: a quota on an ancestor throttles there, and
// the leaf's own cpu.stat then shows nothing.
void add_throttling(const CpuLimit& limit, SchedStats& out) {
  for (const std::string& dir : limit.cgroup_dirs) {
    const auto text = read_text_file(dir + "/cpu.stat");
    if (!text) continue;
    const auto periods = keyed_value(*text, "nr_throttled");
    auto ns = keyed_value(*text, "throttled_time");  // v1, in ns
    if (!ns)
      if (const auto us = keyed_value(*text, "throttled_usec")) ns = *us * 1000;
    if (!periods || !ns) continue;
    out.has_throttling = true;
    out.throttled_periods = std::max(out.throttled_periods, *periods);
    out.throttled_ns = std::max(out.throttled_ns, *ns);
  }
}

}  // namespace

SchedStats sched_stats() {
  SchedStats out;
  const detail::Runtime* rt = detail::g_runtime.load(std::memory_order_acquire);
  if (!rt) {
    add_throttling(read_cpu_limit(), out);
    return out;
  }
  for (const auto& k : rt->ks) {
    const int tid = k->tid.load(std::memory_order_acquire);
    if (tid == 0) continue;  // not started yet
    out.per_kthread.push_back(thread_stats(tid));
    out.involuntary_switches += out.per_kthread.back().involuntary_switches;
    out.runnable_wait_ns += out.per_kthread.back().runnable_wait_ns;
    out.run_ns += out.per_kthread.back().run_ns;
  }
  add_throttling(rt->cpu_limit, out);
  return out;
}

std::string describe(const SchedStats& s) {
  const auto known = [&](uint64_t v) { return s.has_throttling ? std::to_string(v) : std::string("-"); };
  return fmt::format("involuntary_switches={} runnable_wait_ns={} throttled_periods={} throttled_ns={}",
                     s.involuntary_switches, s.runnable_wait_ns, known(s.throttled_periods), known(s.throttled_ns));
}

}  // namespace slip::rt
