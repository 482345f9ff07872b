// slip-bench-lock: how long a contended SpinParkLock should spin before it
// parks. Sweeps the spin budget over two workloads, alone and beside a busy
// neighbour process, and reports time and CPU per operation, so the default
// (kDefaultLockSpinNs) is a measured choice. Budget "inf" is the old
// never-parking spinlock.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "slip/runtime/runtime.h"
#include "slip/runtime/spin_park_lock.h"
#include "slip/runtime/sync.h"
#include "slip/runtime/time.h"

namespace {

using slip::now_ns;
namespace rt = slip::rt;
constexpr uint64_t kInf = UINT64_MAX;

struct Sample {
  double wall_ns = 0, cpu_ns = 0;  // per operation
  uint64_t parked = 0, spun = 0;
};

uint64_t cpu_ns_self() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto ns = [](const timeval& t) { return uint64_t(t.tv_sec) * 1'000'000'000 + uint64_t(t.tv_usec) * 1000; };
  return ns(u.ru_utime) + ns(u.ru_stime);
}

template <class Fn>
Sample measure(uint64_t ops, Fn fn) {
  const rt::LockStats l0 = rt::lock_stats();
  const uint64_t c0 = cpu_ns_self(), t0 = now_ns();
  fn();
  const uint64_t t1 = now_ns(), c1 = cpu_ns_self();
  const rt::LockStats l1 = rt::lock_stats();
  return {double(t1 - t0) / ops, double(c1 - c0) / ops, l1.parked - l0.parked, l1.spun - l0.spun};
}

// Four OS threads on one lock: a short critical section, a little work outside.
Sample threads_case(uint64_t per_thread) {
  rt::SpinParkLock lk;
  uint64_t counter = 0;
  return measure(4 * per_thread, [&] {
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; t++)
      ts.emplace_back([&] {
        for (uint64_t i = 0; i < per_thread; i++) {
          lk.lock();
          counter++;
          for (int p = 0; p < 20; p++) __builtin_ia32_pause();
          lk.unlock();
          for (int p = 0; p < 100; p++) __builtin_ia32_pause();
        }
      });
    for (auto& t : ts) t.join();
  });
}

// The runtime's own locks under cross-kthread wake-ups: a ring of 64 uthreads
// passing a token through one mutex and condvar (the [stress] test's ring),
// on two unpinned kthreads.
Sample runtime_case(uint64_t laps) {
  constexpr int kRing = 64;
  rt::Config cfg;
  cfg.kthreads = 2;
  cfg.pin_kthreads = false;
  return measure(laps * kRing, [&] {
    rt::run(cfg, [&] {
      rt::Mutex m;
      rt::CondVar cv;
      int holder = 0;
      std::vector<rt::JoinHandle> hs;
      for (int id = 0; id < kRing; id++)
        hs.push_back(rt::spawn([&, id] {
          for (uint64_t lap = 0; lap < laps; lap++) {
            m.lock();
            cv.wait(m, [&] { return holder == id; });
            holder = (id + 1) % kRing;
            m.unlock();
            cv.notify_all();
          }
        }));
      for (auto& h : hs) h.join();
    });
  });
}

// A busy process the scheduler places freely: the noisy neighbour.
pid_t start_neighbour() {
  const pid_t pid = fork();
  if (pid == 0) {
    for (;;) __asm__ volatile("" ::: "memory");
  }
  return pid;
}

std::string budget_name(uint64_t ns) { return ns == kInf ? "inf" : fmt::format("{}", ns); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"slip-bench-lock: SpinParkLock's spin budget swept alone and beside a busy neighbour"};
  unsigned reps = 5;
  bool quick = false;
  std::string json_path;
  std::vector<uint64_t> budgets = {0, 500, 2000, 10000, 50000, kInf};
  app.add_option("--reps", reps, "repetitions per point (medians)")->check(CLI::Range(1, 100));
  app.add_flag("--quick", quick, "a tenth of the operations, for smoke runs");
  app.add_option("--json", json_path, "write results here");
  app.add_option("--budgets-ns", budgets, "spin budgets to sweep (18446744073709551615 = never park)");
  CLI11_PARSE(app, argc, argv);

  const uint64_t per_thread = quick ? 20'000 : 200'000, laps = quick ? 100 : 1000;
  nlohmann::json out;
  out["definition"] = {{"threads", "ns per lock/unlock, 4 OS threads, 20-pause critical section"},
                       {"runtime", "ns per token handoff in a 64-uthread mutex+condvar ring on 2 kthreads"}};
  fmt::print("{:>7} {:>9} {:>12} {:>12} {:>9} {:>12} {:>12} {:>9}\n", "budget", "case", "alone ns/op",
             "nb ns/op", "nb/alone", "alone cpu/op", "nb cpu/op", "parked");
  for (uint64_t b : budgets) {
    rt::set_lock_spin_ns(b);
    for (const char* cs : {"threads", "runtime"}) {
      std::vector<Sample> alone, nb;
      for (unsigned r = 0; r < reps; r++)
        for (bool neighbour : {false, true}) {
          const pid_t pid = neighbour ? start_neighbour() : 0;
          const Sample s = std::string(cs) == "threads" ? threads_case(per_thread) : runtime_case(laps);
          if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
          }
          (neighbour ? nb : alone).push_back(s);
        }
      auto med = [](std::vector<Sample> v, double Sample::*f) {
        std::sort(v.begin(), v.end(), [f](const Sample& a, const Sample& b) { return a.*f < b.*f; });
        return v[v.size() / 2].*f;
      };
      const double a = med(alone, &Sample::wall_ns), n = med(nb, &Sample::wall_ns);
      uint64_t parked = 0;
      for (auto& s : nb) parked += s.parked;
      fmt::print("{:>7} {:>9} {:>12.0f} {:>12.0f} {:>8.2f}x {:>12.0f} {:>12.0f} {:>9}\n", budget_name(b), cs, a, n,
                 n / a, med(alone, &Sample::cpu_ns), med(nb, &Sample::cpu_ns), parked);
      out["results"][budget_name(b)][cs] = {{"alone_ns", a},
                                            {"neighbour_ns", n},
                                            {"alone_cpu_ns", med(alone, &Sample::cpu_ns)},
                                            {"neighbour_cpu_ns", med(nb, &Sample::cpu_ns)},
                                            {"neighbour_parked", parked}};
      std::fflush(stdout);
    }
  }
  rt::set_lock_spin_ns(rt::kDefaultLockSpinNs);
  out["reps"] = reps;
  out["default_budget_ns"] = rt::kDefaultLockSpinNs;
  if (!json_path.empty()) std::ofstream(json_path) << out.dump(2) << "\n";
  return 0;
}
