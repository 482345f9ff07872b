// The CPU a container lets the runtime use: the tightest cgroup CPU quota on
// the path from the process's cgroup up to its hierarchy's mount, and the
// allowed CPU set. Kthreads beyond the quota do not add CPU, they get the
// whole cgroup throttled until the next period; so, as Go 1.25 does for
// GOMAXPROCS, the runtime reads the limit at start and by default runs no
// more kthreads than it allows (Config::follow_cpu_quota).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "slip/runtime/config.h"

namespace slip::rt {

// `quota_us` of CPU time every `period_us`, set on the cgroup directory `dir`.
struct CpuQuota {
  uint64_t quota_us = 0, period_us = 0;
  std::string dir;
  double cpus() const noexcept { return static_cast<double>(quota_us) / static_cast<double>(period_us); }
};

// What detect_cpu_limit() found.
struct CpuLimit {
  int cgroup_version = 0;                // the cpu controller's hierarchy: 1, 2, or 0 when none was found
  std::optional<CpuQuota> quota;         // the tightest on the path; none: no quota
  std::vector<std::string> cgroup_dirs;  // the process's cgroup directory, then its ancestors up to the mount
  unsigned allowed_cpus = 0;             // CPUs in the affinity mask; 0: unknown
  std::string problem;                   // why a quota could not be read (malformed text, no mount); empty when none
  // Kthreads the quota allows (kthread_limit below); 0 without a quota.
  unsigned kthread_limit() const noexcept;
};

// Go 1.25's rounding: ceil(quota / period), at least 2 (a fraction of a CPU
// still gets two threads a share each), never more than allowed_cpus (when known).
unsigned kthread_limit(uint64_t quota_us, uint64_t period_us, unsigned allowed_cpus) noexcept;

// A file's whole text, or nullopt when it cannot be read.
using FileReader = std::function<std::optional<std::string>(const std::string& path)>;

// The pure part, so tests can feed it any text: finds the cpu controller's
// cgroup from /proc/self/cgroup and /proc/self/mountinfo (as `read` returns
// them), reads the quota of that cgroup and of each ancestor (cgroup v1
// cpu.cfs_quota_us and cpu.cfs_period_us, v2 cpu.max) and keeps the
// tightest. Malformed text becomes a problem and no quota from that file; it never throws.
CpuLimit detect_cpu_limit(const FileReader& read, unsigned allowed_cpus);
// The same on this process's files and sched_getaffinity().
CpuLimit read_cpu_limit();

// How many of cfg.kthreads run under `limit`: all of them without a quota or
// when !cfg.follow_cpu_quota, else the quota's limit, but never fewer than
// cfg.guaranteed_kthreads (asked for explicitly, so it wins).
unsigned kthreads_allowed(const CpuLimit& limit, const Config& cfg) noexcept;

// A spinning kthread (Config::spinning_kthreads) under a quota smaller than
// the kthreads that run parks after this long idle, scaled by its share of
// the quota: spinning forever would spend the period's quota and stall the
// whole service until the next period.
inline constexpr uint64_t kQuotaSpinNs = 100'000;

// "cgroup v1 quota 1.50 CPUs of 2 allowed", "no CPU quota; 2 CPUs allowed".
std::string describe(const CpuLimit& limit);
// The same, then what the runtime did: "... -> 2 active kthreads of 4".
std::string describe(const CpuLimit& limit, const Config& cfg);
// For start-up lines: the running runtime's limit and what it did about it
// (read at its start); without a runtime, what read_cpu_limit() finds now.
std::string describe_cpu_limit();

}  // namespace slip::rt
