// The CPU quota and the scheduler counters against the real kernel. The first
// argument names the part: cgroup-v1 and cgroup-v2 create a cgroup with a
// quota and run a child runtime in it; hog runs a CPU-bound process on a
// pinned kthread's CPU. Each is its own meson test, and one that cannot run
// here (not root, no such hierarchy, no schedstat) exits 77 with the reason.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "runtime/proc_text.h"
#include "slip/runtime/cpu_limit.h"
#include "slip/runtime/runtime.h"
#include "slip/runtime/stats.h"

using Catch::Contains;
using slip::rt::detail::read_text_file;

namespace {

constexpr uint64_t kHangNs = 60'000'000'000;  // only catches a hang; nothing waits this long when it works

// Some CPU time the optimizer cannot remove.
void burn() {
  for (int i = 0; i < 100000; i++) asm volatile("" ::: "memory");
}

bool write_file(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  return ::close(fd) == 0 && ok;
}

// A cgroup directory made for the test, removed at scope exit (its processes must have exited).
class TempCgroup {
 public:
  explicit TempCgroup(std::string dir) : dir_(std::move(dir)) {
    if (::mkdir(dir_.c_str(), 0755) != 0) FAIL("mkdir " << dir_ << ": " << std::strerror(errno));
  }
  ~TempCgroup() {
    if (::rmdir(dir_.c_str()) != 0) std::fprintf(stderr, "rmdir %s: %s\n", dir_.c_str(), std::strerror(errno));
  }
  TempCgroup(const TempCgroup&) = delete;
  TempCgroup& operator=(const TempCgroup&) = delete;
  void set(const std::string& file, const std::string& text) const {
    INFO(dir_ << "/" << file << " <- " << text);
    REQUIRE(write_file(dir_ + "/" + file, text));
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

// What a child runtime saw, one "key value" per line.
using Report = std::map<std::string, std::string>;

// Forks a child that joins `cgroup`, runs a runtime with cfg and reports
// through a pipe what `probe` (on a uthread) returned; the parent waits for it.
Report run_in_cgroup(const std::string& cgroup, const slip::rt::Config& cfg, std::function<Report()> probe) {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string out;
    try {
      if (!write_file(cgroup + "/cgroup.procs", "0\n")) throw std::runtime_error("cannot join " + cgroup);
      Report r;
      slip::rt::run(cfg, [&] { r = probe(); });
      for (const auto& [k, v] : r) out += k + " " + v + "\n";
    } catch (const std::exception& e) {
      out += std::string("error ") + e.what() + "\n";
    }
    const bool ok = ::write(fds[1], out.data(), out.size()) == static_cast<ssize_t>(out.size());
    ::_exit(ok ? 0 : 1);
  }
  ::close(fds[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) != 0;)
    if (n > 0) text.append(buf, static_cast<size_t>(n));
    else if (errno != EINTR) break;
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  INFO("child said: " << text);
  REQUIRE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  Report r;
  for (std::string_view line : slip::rt::detail::lines(text)) {
    const size_t sp = line.find(' ');
    if (sp != std::string_view::npos) r[std::string(line.substr(0, sp))] = std::string(line.substr(sp + 1));
  }
  REQUIRE(r.count("error") == 0);
  return r;
}

slip::rt::Config four_kthreads(bool follow = true) {
  slip::rt::Config c;
  c.kthreads = 4;
  c.guaranteed_kthreads = 1;
  c.pin_kthreads = false;
  c.follow_cpu_quota = follow;
  return c;
}

// What the runtime in the child made of its quota; then whether a grant of
// all 4 kthreads stays within it, and work sent to the last kthread still runs.
Report limit_report() {
  const slip::rt::CpuLimit l = slip::rt::read_cpu_limit();
  Report r{{"active", std::to_string(slip::rt::active_kthreads())},
           {"version", std::to_string(l.cgroup_version)},
           {"describe", slip::rt::describe_cpu_limit()}};
  if (l.quota) r["quota_dir"] = l.quota->dir, r["quota_cpus"] = std::to_string(l.quota->cpus());
  slip::rt::set_active_kthreads(4);
  r["active_after_grant"] = std::to_string(slip::rt::active_kthreads());
  int ran_on = -1;
  slip::rt::spawn_on(3, [&] { ran_on = slip::rt::kthread_index(); }).join();
  r["spawn_on_3_ran_on"] = std::to_string(ran_on);
  return r;
}

unsigned allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  REQUIRE(sched_getaffinity(0, sizeof set, &set) == 0);
  return static_cast<unsigned>(CPU_COUNT(&set));
}

// Where the test makes its cgroups: the mount of the hierarchy that holds
// this process's cpu controller, if it is cgroup `version`; otherwise empty,
// with the reason in *why.
std::string cgroup_base(int version, std::string* why) {
  if (::geteuid() != 0) {
    *why = "creating a cgroup needs root";
    return "";
  }
  const slip::rt::CpuLimit here = slip::rt::read_cpu_limit();
  if (here.cgroup_version != version || here.cgroup_dirs.empty()) {
    *why = "this process's cpu controller is not on cgroup v" + std::to_string(version) + " (" +
           (here.problem.empty() ? "/proc/self/cgroup:\n" + read_text_file("/proc/self/cgroup").value_or("?")
                                 : here.problem) +
           ")";
    return "";
  }
  const std::string base = here.cgroup_dirs.back();
  // A child's cpu.max exists only with cpu in the parent's subtree_control;
  // it is left on (turning it off could disturb other cgroups).
  const std::string subtree = read_text_file(base + "/cgroup.subtree_control").value_or("");
  if (version == 2 && subtree.find("cpu") == std::string::npos &&
      !write_file(base + "/cgroup.subtree_control", "+cpu\n")) {
    *why = "the cgroup v2 root " + base + " cannot enable the cpu controller for its children: " + std::strerror(errno);
    return "";
  }
  const std::string probe = base + "/slip-probe-" + std::to_string(::getpid());
  if (::mkdir(probe.c_str(), 0755) != 0) {
    *why = "mkdir " + probe + ": " + std::strerror(errno);
    return "";
  }
  ::rmdir(probe.c_str());
  return base;
}

std::string g_base;  // set by main for the cgroup parts

std::string quota_text(int version, uint64_t quota_us) {
  if (version == 1) return std::to_string(quota_us) + "\n";
  return (quota_us ? std::to_string(quota_us) : std::string("max")) + " 100000\n";
}

// The quota cases, the same on both versions.
void quota_cases(int version) {
  const std::string quota_file = version == 1 ? "cpu.cfs_quota_us" : "cpu.max";
  const std::string name = g_base + "/slip-quota-" + std::to_string(::getpid());

  SECTION("1.5 CPUs: 2 of 4 kthreads run") {
    TempCgroup cg(name);
    cg.set(quota_file, quota_text(version, 150000));
    const Report r = run_in_cgroup(cg.dir(), four_kthreads(), limit_report);
    INFO(r.at("describe"));
    CHECK(r.at("version") == std::to_string(version));
    CHECK(r.at("quota_dir") == cg.dir());
    CHECK(r.at("quota_cpus") == "1.500000");
    const unsigned limit = slip::rt::kthread_limit(150000, 100000, allowed_cpus());
    CHECK(r.at("active") == std::to_string(limit));
    CHECK_THAT(r.at("describe"), Contains("quota 1.50 CPUs") && Contains("active kthreads of 4"));
    CHECK(r.at("active_after_grant") == std::to_string(limit));
    CHECK(std::stoi(r.at("spawn_on_3_ran_on")) < static_cast<int>(limit));
  }
  SECTION("a quota on the parent binds a child cgroup without one") {
    TempCgroup cg(name);
    cg.set(quota_file, quota_text(version, 150000));
    if (version == 2) cg.set("cgroup.subtree_control", "+cpu\n");
    TempCgroup inner(name + "/inner");
    const Report r = run_in_cgroup(inner.dir(), four_kthreads(), limit_report);
    INFO(r.at("describe"));
    CHECK(r.at("quota_dir") == cg.dir());
    CHECK(r.at("active") == std::to_string(slip::rt::kthread_limit(150000, 100000, allowed_cpus())));
  }
  SECTION("3.5 CPUs: no more kthreads than the allowed CPUs") {
    TempCgroup cg(name);
    cg.set(quota_file, quota_text(version, 350000));
    const Report r = run_in_cgroup(cg.dir(), four_kthreads(), limit_report);
    INFO(r.at("describe"));
    CHECK(r.at("active") == std::to_string(std::min(4u, slip::rt::kthread_limit(350000, 100000, allowed_cpus()))));
  }
  SECTION("follow_cpu_quota = false runs all 4") {
    TempCgroup cg(name);
    cg.set(quota_file, quota_text(version, 150000));
    const Report r = run_in_cgroup(cg.dir(), four_kthreads(false), limit_report);
    CHECK(r.at("active") == "4");
    CHECK_THAT(r.at("describe"), Contains("not followed"));
    CHECK(r.at("active_after_grant") == "4");
  }
  SECTION("spinning kthreads park under a quota they would overrun") {
    TempCgroup cg(name);
    cg.set(quota_file, quota_text(version, 150000));
    slip::rt::Config c = four_kthreads();
    c.spinning_kthreads = 4;
    const Report r = run_in_cgroup(cg.dir(), c, [] {
      const uint64_t give_up = slip::now_ns() + kHangNs;
      while (slip::rt::stats().at(1).parks == 0 && slip::now_ns() < give_up)
        slip::rt::sleep_for(std::chrono::milliseconds(1));
      return Report{{"parks", std::to_string(slip::rt::stats().at(1).parks)}};
    });
    CHECK(std::stoull(r.at("parks")) > 0);
  }
  SECTION("a tight quota shows up as throttled periods") {
    TempCgroup cg(name);
    cg.set(quota_file, quota_text(version, 5000));  // 5 ms every 100 ms
    slip::rt::Config c = four_kthreads();
    c.kthreads = 1;
    const Report r = run_in_cgroup(cg.dir(), c, [] {
      const uint64_t give_up = slip::now_ns() + kHangNs;
      slip::rt::SchedStats s = slip::rt::sched_stats();
      while (s.throttled_periods < 2 && slip::now_ns() < give_up) {  // spin: burn the quota
        burn();
        s = slip::rt::sched_stats();
      }
      return Report{{"has", std::to_string(s.has_throttling)},
                    {"periods", std::to_string(s.throttled_periods)},
                    {"ns", std::to_string(s.throttled_ns)}};
    });
    CHECK(r.at("has") == "1");
    CHECK(std::stoull(r.at("periods")) >= 2);
    CHECK(std::stoull(r.at("ns")) > 0);
  }
}

}  // namespace

TEST_CASE("the runtime follows a cgroup v1 CPU quota", "[cgroup-v1]") { quota_cases(1); }
TEST_CASE("the runtime follows a cgroup v2 CPU quota", "[cgroup-v2]") { quota_cases(2); }

TEST_CASE("involuntary switches and runnable wait grow beside a CPU hog", "[hog]") {
  cpu_set_t allowed;
  REQUIRE(sched_getaffinity(0, sizeof allowed, &allowed) == 0);
  int cpu = 0;
  while (!CPU_ISSET(cpu, &allowed)) cpu++;  // where pin_kthreads puts kthread 0
  const pid_t hog = ::fork();
  REQUIRE(hog >= 0);
  if (hog == 0) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    sched_setaffinity(0, sizeof one, &one);
    for (;;) asm volatile("" ::: "memory");
  }
  struct Reap {
    pid_t pid;
    ~Reap() {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reap{hog};

  slip::rt::Config c;
  c.kthreads = 1;
  c.pin_kthreads = true;
  slip::rt::SchedStats before, after;
  int ran_on = -1, tid = 0;
  slip::rt::run(c, [&] {
    ran_on = sched_getcpu();
    tid = ::gettid();
    before = slip::rt::sched_stats();
    const uint64_t give_up = slip::now_ns() + kHangNs;
    do {
      burn();
      after = slip::rt::sched_stats();
    } while ((after.involuntary_switches < before.involuntary_switches + 20 ||
              after.runnable_wait_ns <= before.runnable_wait_ns) &&
             slip::now_ns() < give_up);
  });
  CHECK(ran_on == cpu);
  REQUIRE(before.per_kthread.size() == 1);
  CHECK(before.per_kthread[0].tid == tid);
  CHECK(after.involuntary_switches >= before.involuntary_switches + 20);
  CHECK(after.runnable_wait_ns > before.runnable_wait_ns);
  CHECK(after.run_ns > before.run_ns);
}

// argv[1] names the part; it runs as the Catch2 tag of the same name, after
// a check that it can run here at all.
int main(int argc, char** argv) {
  const std::string part = argc > 1 ? argv[1] : "";
  std::string why;
  if (part == "cgroup-v1" || part == "cgroup-v2") {
    g_base = cgroup_base(part == "cgroup-v1" ? 1 : 2, &why);
  } else if (part == "hog") {
    if (!read_text_file("/proc/self/schedstat"))
      why = "no /proc/self/schedstat: the kernel lacks CONFIG_SCHED_INFO, so runnable wait cannot be read";
  } else {
    std::fprintf(stderr, "usage: %s cgroup-v1|cgroup-v2|hog [catch2 options]\n", argv[0]);
    return 2;
  }
  if (!why.empty()) {
    std::printf("cannot run the %s part here: %s\n", part.c_str(), why.c_str());
    return 77;
  }
  std::vector<char*> args{argv[0]};
  const std::string tag = "[" + part + "]";
  args.push_back(const_cast<char*>(tag.c_str()));
  for (int i = 2; i < argc; i++) args.push_back(argv[i]);
  return Catch::Session().run(static_cast<int>(args.size()), args.data());
}
