// Container CPU limits: the cgroup that holds this process's cpu controller,
// the tightest quota from there up to the hierarchy's mount (a quota on an
// ancestor, as Kubernetes sets on the pod above each container, binds as much
// as one on the leaf), and Go 1.25's rounding of it into a kthread count.
#include "slip/runtime/cpu_limit.h"

#include <sched.h>

#include <fmt/format.h>

#include <algorithm>

#include "runtime/defs.h"
#include "runtime/proc_text.h"

namespace slip::rt {
namespace {

using detail::parse_u64;
using detail::lines;
using detail::quote;
using detail::trim;
using detail::words;

// A hierarchy as mountinfo shows it: the cgroup it exposes (`root`) at `point`.
struct CgroupMount {
  std::string root, point;
};

bool has_item(std::string_view list, std::string_view item) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    if (list.substr(0, comma) == item) return true;
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
  return false;
}

// mountinfo writes a space in a path as \040 (and tab, newline, backslash likewise).
std::string unescape(std::string_view s) {
  auto octal = [](char c) { return c >= '0' && c <= '7'; };
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '\\' && i + 3 < s.size() && octal(s[i + 1]) && octal(s[i + 2]) && octal(s[i + 3])) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// From /proc/self/cgroup: the cpu controller's cgroup path and its version
// (a v1 line "N:cpu,cpuacct:/path" wins over the v2 line "0::/path", since in
// a hybrid setup the controller sits on v1 and the v2 tree has none).
std::optional<std::pair<int, std::string>> cpu_cgroup_path(std::string_view text) {
  std::optional<std::pair<int, std::string>> v2;
  for (std::string_view line : lines(text)) {
    const size_t c1 = line.find(':'), c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    const std::string_view id = line.substr(0, c1), controllers = line.substr(c1 + 1, c2 - c1 - 1);
    const std::string path(line.substr(c2 + 1));
    if (path.empty() || path[0] != '/') continue;
    if (id == "0" && controllers.empty()) v2 = {2, path};
    else if (has_item(controllers, "cpu")) return std::pair{1, path};
  }
  return v2;
}

// From /proc/self/mountinfo: the mount of the v1 hierarchy with the cpu
// controller, or of the v2 hierarchy. Fields: id parent dev root point
// options [optional...] - fstype source super-options.
std::optional<CgroupMount> cgroup_mount(std::string_view text, int version) {
  for (std::string_view line : lines(text)) {
    const std::vector<std::string_view> f = words(line);
    const auto dash = std::find(f.begin() + std::min<size_t>(f.size(), 6), f.end(), "-");
    if (f.end() - dash < 4) continue;
    const std::string_view fstype = dash[1], options = dash[3];
    if (version == 1 ? fstype == "cgroup" && has_item(options, "cpu") : fstype == "cgroup2")
      return CgroupMount{unescape(f[3]), unescape(f[4])};
  }
  return std::nullopt;
}

// The cgroup's directory and its ancestors' up to the mount point; empty
// when the cgroup lies outside the part of the tree the mount shows.
std::vector<std::string> cgroup_dirs(const CgroupMount& m, const std::string& path) {
  std::string rel;
  if (m.root == "/") rel = path == "/" ? "" : path;
  else if (path == m.root) rel = "";
  else if (path.starts_with(m.root + "/")) rel = path.substr(m.root.size());
  else return {};
  const std::string base = m.point == "/" ? "" : m.point;
  std::vector<std::string> dirs;
  for (;;) {
    dirs.push_back(rel.empty() ? m.point : base + rel);
    if (rel.empty()) return dirs;
    rel.erase(rel.rfind('/'));
  }
}

void note(std::string& problem, const std::string& what) {
  if (problem.empty()) problem = what;
}

// One level's quota, nullopt when it sets none. A file that is absent sets
// none (no bandwidth control there); one that says nonsense is a problem.
std::optional<CpuQuota> v1_quota(const FileReader& read, const std::string& dir, std::string& problem) {
  const auto q = read(dir + "/cpu.cfs_quota_us"), p = read(dir + "/cpu.cfs_period_us");
  if (!q || !p || trim(*q) == "-1") return std::nullopt;
  const auto quota = parse_u64(*q), period = parse_u64(*p);
  if (quota && period && *quota > 0 && *period > 0) return CpuQuota{*quota, *period, dir};
  note(problem, dir + "/cpu.cfs_quota_us and cpu.cfs_period_us: expected -1 or microseconds, got " +
                    quote(trim(*q)) + " and " + quote(trim(*p)));
  return std::nullopt;
}

std::optional<CpuQuota> v2_quota(const FileReader& read, const std::string& dir, std::string& problem) {
  const auto text = read(dir + "/cpu.max");
  if (!text) return std::nullopt;
  const std::vector<std::string_view> w = words(*text);
  const auto period = w.size() == 2 ? parse_u64(w[1]) : std::nullopt;
  if (period && *period > 0 && w[0] == "max") return std::nullopt;
  const auto quota = period && *period > 0 ? parse_u64(w[0]) : std::nullopt;
  if (quota && *quota > 0) return CpuQuota{*quota, *period, dir};
  note(problem, dir + "/cpu.max: expected \"max PERIOD\" or \"QUOTA PERIOD\" in microseconds, got " +
                    quote(trim(*text)));
  return std::nullopt;
}

unsigned affinity_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  return sched_getaffinity(0, sizeof(set), &set) == 0 ? static_cast<unsigned>(CPU_COUNT(&set)) : 0;
}

}  // namespace

unsigned kthread_limit(uint64_t quota_us, uint64_t period_us, unsigned allowed_cpus) noexcept {
  if (period_us == 0) return 0;
  const uint64_t ceil = quota_us / period_us + (quota_us % period_us != 0);
  const unsigned n = static_cast<unsigned>(std::clamp<uint64_t>(ceil, 2, UINT32_MAX));
  return allowed_cpus ? std::min(n, allowed_cpus) : n;
}

unsigned CpuLimit::kthread_limit() const noexcept {
  return quota ? rt::kthread_limit(quota->quota_us, quota->period_us, allowed_cpus) : 0;
}

CpuLimit detect_cpu_limit(const FileReader& read, unsigned allowed_cpus) {
  CpuLimit out;
  out.allowed_cpus = allowed_cpus;
  const auto cgroup = read("/proc/self/cgroup"), mountinfo = read("/proc/self/mountinfo");
  if (!cgroup || !mountinfo) {
    out.problem = "cannot read /proc/self/cgroup and /proc/self/mountinfo";
    return out;
  }
  const auto path = cpu_cgroup_path(*cgroup);
  if (!path) return out;  // no cgroup holds the cpu controller: nothing limits us
  out.cgroup_version = path->first;
  const auto mount = cgroup_mount(*mountinfo, path->first);
  if (!mount) {
    out.problem = fmt::format("the cgroup v{} hierarchy with the cpu controller is not mounted here", path->first);
    return out;
  }
  out.cgroup_dirs = cgroup_dirs(*mount, path->second);
  if (out.cgroup_dirs.empty())
    out.problem = fmt::format("cgroup {} lies outside the mounted part {} of the hierarchy", path->second, mount->root);
  for (const std::string& dir : out.cgroup_dirs) {
    auto q = path->first == 1 ? v1_quota(read, dir, out.problem) : v2_quota(read, dir, out.problem);
    if (q && (!out.quota || q->cpus() < out.quota->cpus())) out.quota = std::move(q);
  }
  return out;
}

CpuLimit read_cpu_limit() { return detect_cpu_limit(&detail::read_text_file, affinity_cpus()); }

unsigned kthreads_allowed(const CpuLimit& limit, const Config& cfg) noexcept {
  const unsigned quota_limit = limit.kthread_limit();
  if (!cfg.follow_cpu_quota || quota_limit == 0) return cfg.kthreads;
  return std::min(cfg.kthreads, std::max(quota_limit, cfg.guaranteed_kthreads));
}

std::string describe(const CpuLimit& limit) {
  std::string out;
  const std::string allowed = limit.allowed_cpus ? std::to_string(limit.allowed_cpus) : "?";
  if (limit.quota) {
    out = fmt::format("cgroup v{} quota {:.2f} CPUs", limit.cgroup_version, limit.quota->cpus());
    if (limit.cgroup_dirs.empty() || limit.quota->dir != limit.cgroup_dirs.front())
      out += " (set on " + limit.quota->dir + ")";
    out += " of " + allowed + " allowed";
  } else {
    out = (limit.problem.empty() ? "no CPU quota; " : "CPU quota unknown; ") + allowed + " CPUs allowed";
  }
  if (!limit.problem.empty()) out += " (" + limit.problem + ")";
  return out;
}

std::string describe(const CpuLimit& limit, const Config& cfg) {
  if (!limit.quota) return describe(limit);
  if (!cfg.follow_cpu_quota)
    return describe(limit) + fmt::format(", not followed (--ignore-cpu-quota or follow_cpu_quota = false): {0} "
                                         "active kthreads of {0}",
                                         cfg.kthreads);
  const unsigned active = kthreads_allowed(limit, cfg);
  std::string out = describe(limit) + fmt::format(" -> {} active kthreads of {}", active, cfg.kthreads);
  if (active > limit.kthread_limit()) out += fmt::format(" (guaranteed_kthreads = {})", cfg.guaranteed_kthreads);
  return out;
}

std::string describe_cpu_limit() {
  const detail::Runtime* rt = detail::g_runtime.load(std::memory_order_acquire);
  return rt ? describe(rt->cpu_limit, rt->cfg) : describe(read_cpu_limit());
}

}  // namespace slip::rt
