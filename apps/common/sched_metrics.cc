#include "sched_metrics.h"

#include <fmt/format.h>

#include "slip/runtime/runtime.h"
#include "slip/runtime/stats.h"

namespace slip::app {

void render_sched_metrics(std::string& out, std::string_view prefix) {
  const rt::SchedStats s = rt::sched_stats();
  auto metric = [&](std::string_view name, const char* type, const char* help, auto value) {
    out += fmt::format("# HELP {0}{1} {2}\n# TYPE {0}{1} {3}\n{0}{1} {4}\n", prefix, name, help, type, value);
  };
  metric("active_kthreads", "gauge", "Kthreads running now (a CPU quota caps them; see the start-up line).",
         rt::active_kthreads());
  metric("kthread_involuntary_switches_total", "counter",
         "Times the kernel preempted a kthread that wanted to run (shared cores).", s.involuntary_switches);
  metric("kthread_runnable_wait_seconds_total", "counter", "Time kthreads were runnable but not running.",
         static_cast<double>(s.runnable_wait_ns) / 1e9);
  if (!s.has_throttling) return;
  metric("cgroup_throttled_periods_total", "counter", "Periods in which the cgroup's CPU quota stopped the process.",
         s.throttled_periods);
  metric("cgroup_throttled_seconds_total", "counter", "Time the cgroup's CPU quota stopped the process.",
         static_cast<double>(s.throttled_ns) / 1e9);
}

}  // namespace slip::app
