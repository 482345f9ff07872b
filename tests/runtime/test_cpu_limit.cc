// Container CPU limits from file texts alone: /proc/self/cgroup and
// mountinfo as cgroup v1, v2, Docker and Kubernetes write them, quotas on the
// leaf and on ancestors, Go's rounding, and malformed text (a problem, never a crash).
#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <string>

#include "runtime/proc_text.h"
#include "slip/runtime/cpu_limit.h"

using Catch::Contains;
using slip::rt::Config;
using slip::rt::CpuLimit;
using slip::rt::detect_cpu_limit;
using slip::rt::kthread_limit;

namespace {

// A file system of texts; anything not in it cannot be read.
struct Files {
  std::map<std::string, std::string> text;
  slip::rt::FileReader reader() const {
    return [this](const std::string& path) -> std::optional<std::string> {
      auto it = text.find(path);
      if (it == text.end()) return std::nullopt;
      return it->second;
    };
  }
  CpuLimit detect(unsigned allowed) const { return detect_cpu_limit(reader(), allowed); }
};

// This machine's layout: cgroup v1 with the cpu controller mounted on its own,
// a v2 tree beside it without it (a hybrid host).
const char* kHybridMountinfo =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

Files hybrid_v1(const std::string& quota, const std::string& period = "100000\n") {
  Files f;
  f.text["/proc/self/cgroup"] = "9:name=systemd:/\n4:memory:/process_api/f5ff\n3:cpuset:/\n2:cpuacct:/\n"
                                "1:cpu:/slip-test-1\n0::/\n";
  f.text["/proc/self/mountinfo"] = kHybridMountinfo;
  f.text["/sys/fs/cgroup/cpu/cpu.cfs_quota_us"] = "-1\n";
  f.text["/sys/fs/cgroup/cpu/cpu.cfs_period_us"] = "100000\n";
  f.text["/sys/fs/cgroup/cpu/slip-test-1/cpu.cfs_quota_us"] = quota;
  f.text["/sys/fs/cgroup/cpu/slip-test-1/cpu.cfs_period_us"] = period;
  return f;
}

// A pure v2 host (systemd), with the quota on the slice above the service.
Files v2_slice() {
  Files f;
  f.text["/proc/self/cgroup"] = "0::/system.slice/app.service\n";
  f.text["/proc/self/mountinfo"] =
      "25 1 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec shared:9 - cgroup2 cgroup2 rw,nsdelegate\n";
  f.text["/sys/fs/cgroup/system.slice/app.service/cpu.max"] = "max 100000\n";
  f.text["/sys/fs/cgroup/system.slice/cpu.max"] = "350000 100000\n";
  return f;
}

Config kthreads(unsigned n, unsigned guaranteed = 1, bool follow = true) {
  Config c;
  c.kthreads = n;
  c.guaranteed_kthreads = guaranteed;
  c.follow_cpu_quota = follow;
  return c;
}

}  // namespace

TEST_CASE("kthread_limit rounds as Go 1.25: ceil, at least 2, at most the allowed CPUs", "[cpu_limit]") {
  CHECK(kthread_limit(150000, 100000, 8) == 2);
  CHECK(kthread_limit(100000, 100000, 8) == 2);  // one CPU still gets two
  CHECK(kthread_limit(50000, 100000, 8) == 2);
  CHECK(kthread_limit(200000, 100000, 8) == 2);
  CHECK(kthread_limit(200001, 100000, 8) == 3);
  CHECK(kthread_limit(350000, 100000, 8) == 4);
  CHECK(kthread_limit(350000, 100000, 2) == 2);  // never above the allowed CPUs
  CHECK(kthread_limit(50000, 100000, 1) == 1);   // even below 2
  CHECK(kthread_limit(800000, 100000, 0) == 8);  // allowed CPUs unknown
  CHECK(kthread_limit(UINT64_MAX, 1, 0) == UINT32_MAX);
  CHECK(kthread_limit(1000, 0, 4) == 0);
}

TEST_CASE("cgroup v1 on a hybrid host: the cpu hierarchy, not cpuset or v2", "[cpu_limit]") {
  const CpuLimit l = hybrid_v1("150000\n").detect(2);
  CHECK(l.problem.empty());
  CHECK(l.cgroup_version == 1);
  REQUIRE(l.quota);
  CHECK(l.quota->cpus() == Approx(1.5));
  CHECK(l.quota->dir == "/sys/fs/cgroup/cpu/slip-test-1");
  CHECK(l.cgroup_dirs == std::vector<std::string>{"/sys/fs/cgroup/cpu/slip-test-1", "/sys/fs/cgroup/cpu"});
  CHECK(l.kthread_limit() == 2);
  CHECK(slip::rt::describe(l) == "cgroup v1 quota 1.50 CPUs of 2 allowed");
  CHECK(slip::rt::describe(l, kthreads(4)) == "cgroup v1 quota 1.50 CPUs of 2 allowed -> 2 active kthreads of 4");
}

TEST_CASE("no quota: -1, max, or no cgroup at all", "[cpu_limit]") {
  const CpuLimit l = hybrid_v1("-1\n").detect(2);
  CHECK(l.problem.empty());
  CHECK_FALSE(l.quota);
  CHECK(l.kthread_limit() == 0);
  CHECK(slip::rt::describe(l) == "no CPU quota; 2 CPUs allowed");
  CHECK(slip::rt::describe(l, kthreads(4)) == "no CPU quota; 2 CPUs allowed");
  CHECK(slip::rt::kthreads_allowed(l, kthreads(4)) == 4);

  Files none;
  none.text["/proc/self/cgroup"] = "";
  none.text["/proc/self/mountinfo"] = "";
  const CpuLimit n = none.detect(4);
  CHECK(n.cgroup_version == 0);
  CHECK_FALSE(n.quota);
  CHECK(n.problem.empty());
}

TEST_CASE("Docker on v1: the mount shows the container's cgroup as its root", "[cpu_limit]") {
  Files f;
  f.text["/proc/self/cgroup"] = "12:cpuset:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n";
  f.text["/proc/self/mountinfo"] =
      "1233 1200 0:29 /docker/abc /sys/fs/cgroup/cpuset ro,nosuid master:15 - cgroup cgroup rw,cpuset\n"
      "1234 1200 0:30 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid master:16 - cgroup cgroup rw,cpu,cpuacct\n";
  f.text["/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us"] = "250000\n";
  f.text["/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us"] = "100000\n";
  const CpuLimit l = f.detect(8);
  CHECK(l.problem.empty());
  CHECK(l.cgroup_dirs == std::vector<std::string>{"/sys/fs/cgroup/cpu,cpuacct"});
  REQUIRE(l.quota);
  CHECK(l.kthread_limit() == 3);
}

TEST_CASE("a quota on an ancestor binds: the tightest level wins", "[cpu_limit]") {
  Files f;  // Kubernetes on v1: the pod's quota sits above the container's
  f.text["/proc/self/cgroup"] = "3:cpu,cpuacct:/kubepods/burstable/pod1/ctr\n";
  f.text["/proc/self/mountinfo"] = "40 31 0:33 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpuacct,cpu\n";
  const std::string base = "/sys/fs/cgroup/cpu,cpuacct";
  for (const std::string dir : {"/kubepods/burstable/pod1/ctr", "/kubepods/burstable/pod1", "/kubepods"}) {
    f.text[base + dir + "/cpu.cfs_period_us"] = "100000\n";
    f.text[base + dir + "/cpu.cfs_quota_us"] = "-1\n";
  }
  f.text[base + "/kubepods/burstable/pod1/cpu.cfs_quota_us"] = "50000\n";
  f.text[base + "/kubepods/cpu.cfs_quota_us"] = "400000\n";
  const CpuLimit l = f.detect(4);
  CHECK(l.cgroup_dirs.size() == 5);
  REQUIRE(l.quota);
  CHECK(l.quota->dir == base + "/kubepods/burstable/pod1");
  CHECK(l.quota->cpus() == Approx(0.5));
  CHECK(l.kthread_limit() == 2);
  CHECK_THAT(slip::rt::describe(l), Contains("quota 0.50 CPUs (set on " + base + "/kubepods/burstable/pod1)"));
  CHECK(f.detect(1).kthread_limit() == 1);
}

TEST_CASE("cgroup v2: cpu.max on the leaf and up the tree", "[cpu_limit]") {
  Files f = v2_slice();
  const CpuLimit l = f.detect(16);
  CHECK(l.problem.empty());
  CHECK(l.cgroup_version == 2);
  CHECK(l.cgroup_dirs ==
        std::vector<std::string>{"/sys/fs/cgroup/system.slice/app.service", "/sys/fs/cgroup/system.slice",
                                 "/sys/fs/cgroup"});
  REQUIRE(l.quota);
  CHECK(l.quota->dir == "/sys/fs/cgroup/system.slice");
  CHECK(l.kthread_limit() == 4);
  CHECK(f.detect(2).kthread_limit() == 2);

  f.text["/sys/fs/cgroup/system.slice/app.service/cpu.max"] = "150000 100000\n";
  CHECK(f.detect(16).quota->dir == "/sys/fs/cgroup/system.slice/app.service");

  Files ns;  // inside a cgroup namespace the process sees itself at the root
  ns.text["/proc/self/cgroup"] = "0::/\n";
  ns.text["/proc/self/mountinfo"] = "700 600 0:40 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw\n";
  ns.text["/sys/fs/cgroup/cpu.max"] = "200000 100000\n";
  const CpuLimit n = ns.detect(8);
  REQUIRE(n.quota);
  CHECK(n.quota->cpus() == Approx(2.0));
  CHECK(n.cgroup_dirs == std::vector<std::string>{"/sys/fs/cgroup"});
}

TEST_CASE("mount points with escaped spaces", "[cpu_limit]") {
  Files f;
  f.text["/proc/self/cgroup"] = "0::/a b\n";
  f.text["/proc/self/mountinfo"] = "25 1 0:22 / /mnt/my\\040cgroup rw - cgroup2 cgroup2 rw\n";
  f.text["/mnt/my cgroup/a b/cpu.max"] = "300000 100000\n";
  const CpuLimit l = f.detect(8);
  REQUIRE(l.quota);
  CHECK(l.quota->dir == "/mnt/my cgroup/a b");
}

TEST_CASE("kthreads_allowed: the limit, the guarantee, and the override", "[cpu_limit]") {
  const CpuLimit l = hybrid_v1("150000\n").detect(2);
  CHECK(slip::rt::kthreads_allowed(l, kthreads(4)) == 2);
  CHECK(slip::rt::kthreads_allowed(l, kthreads(1)) == 1);
  CHECK(slip::rt::kthreads_allowed(l, kthreads(4, 3)) == 3);
  CHECK(slip::rt::kthreads_allowed(l, kthreads(4, 1, false)) == 4);
  CHECK(slip::rt::describe(l, kthreads(4, 3)) ==
        "cgroup v1 quota 1.50 CPUs of 2 allowed -> 3 active kthreads of 4 (guaranteed_kthreads = 3)");
  CHECK(slip::rt::describe(l, kthreads(4, 1, false)) ==
        "cgroup v1 quota 1.50 CPUs of 2 allowed, not followed (--ignore-cpu-quota or follow_cpu_quota = false): "
        "4 active kthreads of 4");
}

TEST_CASE("malformed quota files are a problem and no quota, not a crash", "[cpu_limit]") {
  for (const char* bad : {"abc\n", "", "0\n", "-2\n", "1.5\n", "150000 100000\n", "99999999999999999999999\n"}) {
    const CpuLimit l = hybrid_v1(bad).detect(2);
    CHECK_FALSE(l.quota);
    CHECK_THAT(l.problem, Contains("/sys/fs/cgroup/cpu/slip-test-1/cpu.cfs_quota_us"));
    CHECK_THAT(slip::rt::describe(l), Contains("CPU quota unknown; 2 CPUs allowed ("));
  }
  CHECK_THAT(hybrid_v1("150000\n", "0\n").detect(2).problem, Contains("got \"150000\" and \"0\""));
  for (const char* bad : {"150000\n", "0 100000\n", "max\n", "max 0\n", "1 2 3\n", "x 100000\n", "\x01\xff\n"}) {
    Files f = v2_slice();
    f.text["/sys/fs/cgroup/system.slice/app.service/cpu.max"] = bad;
    const CpuLimit l = f.detect(16);
    CHECK_THAT(l.problem, Contains("app.service/cpu.max: expected"));
    REQUIRE(l.quota);  // the slice's quota still counts
    CHECK(l.quota->dir == "/sys/fs/cgroup/system.slice");
  }
}

TEST_CASE("missing or strange /proc files leave no quota and say why", "[cpu_limit]") {
  CHECK_THAT(Files{}.detect(2).problem, Contains("cannot read /proc/self/cgroup"));
  Files f = hybrid_v1("150000\n");
  f.text["/proc/self/mountinfo"] = "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n1 2 3\n-\n";
  CHECK_THAT(f.detect(2).problem, Contains("cgroup v1 hierarchy with the cpu controller is not mounted"));
  Files outside;
  outside.text["/proc/self/cgroup"] = "4:cpu:/elsewhere\n";
  outside.text["/proc/self/mountinfo"] = "1 2 0:30 /docker/abc /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
  CHECK_THAT(outside.detect(2).problem, Contains("/elsewhere lies outside"));
  Files garbage;
  garbage.text["/proc/self/cgroup"] = "hello\n::::\n:cpu\n5:cpu:relative\n";
  garbage.text["/proc/self/mountinfo"] = "\n\n - - - -\n";
  const CpuLimit g = garbage.detect(2);
  CHECK_FALSE(g.quota);
  CHECK(g.cgroup_version == 0);
}

TEST_CASE("random bytes in every file never throw", "[cpu_limit]") {
  std::mt19937 rng(25);
  const std::string alphabet = "0123456789 :-/\\\n,abcmaxcpu\t";
  auto noise = [&] {
    std::string s(rng() % 120, ' ');
    for (char& c : s) c = rng() % 4 ? alphabet[rng() % alphabet.size()] : static_cast<char>(rng());
    return s;
  };
  for (int i = 0; i < 2000; i++) {
    Files f = i % 2 ? hybrid_v1(noise(), noise()) : v2_slice();
    if (i % 3 == 0) f.text["/proc/self/cgroup"] = noise();
    if (i % 5 == 0) f.text["/proc/self/mountinfo"] = noise();
    if (i % 2 == 0) f.text["/sys/fs/cgroup/system.slice/cpu.max"] = noise();
    CpuLimit l;
    REQUIRE_NOTHROW(l = f.detect(static_cast<unsigned>(rng() % 4)));
    REQUIRE_NOTHROW(slip::rt::describe(l, kthreads(4)));
  }
}

TEST_CASE("cpu.stat and /proc status fields by key", "[cpu_limit]") {
  using slip::rt::detail::keyed_value;
  const char* v1 = "nr_periods 120\nnr_throttled 7\nthrottled_time 91000000\nnr_bursts 0\n";
  const char* v2 = "usage_usec 5\nnr_periods 3\nnr_throttled 2\nthrottled_usec 1500\n";
  CHECK(keyed_value(v1, "nr_throttled") == 7u);
  CHECK(keyed_value(v1, "throttled_time") == 91000000u);
  CHECK_FALSE(keyed_value(v1, "throttled_usec"));
  CHECK(keyed_value(v2, "throttled_usec") == 1500u);
  const char* status = "voluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n";
  CHECK(keyed_value(status, "voluntary_ctxt_switches") == 12u);
  CHECK(keyed_value(status, "nonvoluntary_ctxt_switches") == 3u);
  CHECK_FALSE(keyed_value("nr_throttled x\n", "nr_throttled"));
  CHECK_FALSE(keyed_value("nr_throttled_more 4\n", "nr_throttled"));
}
