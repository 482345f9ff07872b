// Snapshots of the per-kthread counters.
#include "slip/runtime/stats.h"

#include "runtime/defs.h"

namespace slip::rt {

std::vector<KthreadStats> stats() {
  std::vector<KthreadStats> out;
  detail::Runtime* rt = detail::g_runtime.load(std::memory_order_acquire);
  if (!rt) return out;
  for (auto& k : rt->ks) {
    const detail::KthreadCounters& c = k->counters;
    KthreadStats s;
    s.switches = c.switches.load(std::memory_order_relaxed);
    s.spawns = c.spawns.load(std::memory_order_relaxed);
    s.steals = c.steals.load(std::memory_order_relaxed);
    s.steal_attempts = c.steal_attempts.load(std::memory_order_relaxed);
    s.parks = c.parks.load(std::memory_order_relaxed);
    s.wakeups = c.wakeups.load(std::memory_order_relaxed);
    s.timers_fired = c.timers_fired.load(std::memory_order_relaxed);
    s.overflows = c.overflows.load(std::memory_order_relaxed);
    s.rq_delay_ns = c.rq_delay_ns;
    out.push_back(std::move(s));
  }
  return out;
}

KthreadStats total(const std::vector<KthreadStats>& per_kthread) {
  KthreadStats t;
  for (const KthreadStats& s : per_kthread) {
    t.switches += s.switches;
    t.spawns += s.spawns;
    t.steals += s.steals;
    t.steal_attempts += s.steal_attempts;
    t.parks += s.parks;
    t.wakeups += s.wakeups;
    t.timers_fired += s.timers_fired;
    t.overflows += s.overflows;
    t.rq_delay_ns.merge(s.rq_delay_ns);
  }
  return t;
}

}  // namespace slip::rt
