// The runtime's scheduler counters (slip::rt::sched_stats) as Prometheus
// samples for an app's /metrics: how often the kernel preempted its
// kthreads, how long they waited runnable, how often the cgroup's CPU quota
// throttled the process, and how many kthreads run under that quota.
#pragma once

#include <string>
#include <string_view>

namespace slip::app {

// Appends # HELP, # TYPE and one sample per metric, each name starting with
// `prefix`, the app's own ("slip_gateway:", "slip_worker_"). Call it on a uthread of the runtime.
void render_sched_metrics(std::string& out, std::string_view prefix);

}  // namespace slip::app
