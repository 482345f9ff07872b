// slip-bench-runtime: slip uthreads against Boost.Fiber and std::thread on the
// same cases in the same run (see runtime_cases.cc). Each repetition runs all
// three systems back to back, rotating their order, and the report gives the
// median, min and max over repetitions, plus ratios against both baselines.
#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <boost/version.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "runtime_bench.h"
#include "slip/runtime/time.h"

namespace slip::bench {
namespace {

// Iterations per case (rows: slip, fiber, pthread), sized so that one
// repetition takes a few seconds on a 2-core VM. pthread cases cost 4-40 us
// per op here, and a 1 us sleep takes about 100 us outside slip (futex timeout
// plus timer slack), so those get fewer iterations.
constexpr std::array<Iters, kNumSystems> kBaseIters = {{
    //  spawn_join  yield   condvar  mutex    sleep
    {200'000, 2'000'000, 1'000'000, 1'000'000, 20'000},  // slip
    {200'000, 2'000'000, 1'000'000, 1'000'000, 3'000},   // fiber
    {5'000, 100'000, 20'000, 30'000, 3'000},             // pthread
}};

struct Options {
  unsigned reps = 7;
  bool quick = false;
  std::string json_path;
};

[[noreturn]] void usage(int code) {
  std::fprintf(code ? stderr : stdout,
               "usage: slip-bench-runtime [--reps N] [--quick] [--json PATH]\n"
               "  --reps N     repetitions per system (default 7; medians need at least 5)\n"
               "  --quick      a tenth of the iterations, for smoke runs\n"
               "  --json PATH  write results there (tools/bench/run passes build/bench/runtime.json)\n");
  std::exit(code);
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "slip-bench-runtime: %s needs a value\n", a.c_str());
        usage(2);
      }
      return argv[++i];
    };
    if (a == "--reps") {
      const std::string v = value();
      char* end = nullptr;
      const unsigned long r = std::strtoul(v.c_str(), &end, 10);
      if (*end || r == 0 || r > 1000) {
        std::fprintf(stderr, "slip-bench-runtime: --reps wants a count from 1 to 1000, not '%s'\n", v.c_str());
        usage(2);
      }
      o.reps = static_cast<unsigned>(r);
    } else if (a == "--quick") {
      o.quick = true;
    } else if (a == "--json") {
      o.json_path = value();
    } else if (a == "-h" || a == "--help") {
      usage(0);
    } else {
      std::fprintf(stderr, "slip-bench-runtime: unknown argument '%s'\n", a.c_str());
      usage(2);
    }
  }
  return o;
}

// The machine, for the report: results from a 2-core VM say nothing about a big host.
struct Machine {
  long nproc = 0;
  std::string cpu_model = "unknown", kernel = "unknown";
  int first_cpu = 0;  // first CPU in our affinity mask; slip's kthread 0 is pinned there too
};

Machine describe_machine() {
  Machine m;
  m.nproc = sysconf(_SC_NPROCESSORS_ONLN);
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line);) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) m.cpu_model = line.substr(line.find_first_not_of(" \t", colon + 1));
      break;
    }
  }
  utsname u{};
  if (uname(&u) == 0) m.kernel = std::string(u.sysname) + " " + u.release;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; c++)
      if (CPU_ISSET(c, &set)) {
        m.first_cpu = c;
        break;
      }
  return m;
}

struct Summary {
  double median = 0, min = 0, max = 0;
};

Summary summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return {n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v.front(), v.back()};
}

using Results = std::array<std::array<Summary, kNumSystems>, kNumCases>;

// "yes"/"NO", and whether the spreads overlap (then the verdict is within noise).
std::string verdict(bool met, bool clear) {
  return fmt::format("{}{}", met ? "yes" : "NO", clear ? "" : " (within run-to-run spread)");
}

void print_report(const Results& res, const Options& o, const Machine& m, const rt::Config& cfg) {
  fmt::print("\nslip runtime benchmark: ns per op, median of {} reps{}\n", o.reps, o.quick ? " (--quick)" : "");
  fmt::print("machine: {}, {} CPUs, {}; now_ns() clock: {}\n", m.cpu_model, m.nproc, m.kernel,
             clock_uses_tsc() ? "TSC" : "CLOCK_MONOTONIC");
  fmt::print("slip: kthreads={} (kthread 0 {}, spin {} ns before parking); fiber: Boost.Fiber {} round_robin on the "
             "main thread, pooled {} KiB stacks;\npthread: std::thread free on all {} CPUs (yield_pingpong: both "
             "threads pinned to CPU {})\n\n",
             cfg.kthreads, cfg.pin_kthreads ? fmt::format("pinned to CPU {}", m.first_cpu) : "unpinned",
             cfg.spin_before_park_ns, BOOST_LIB_VERSION, kFiberStackSize / 1024, m.nproc, m.first_cpu);
  fmt::print("{:<18} {:>11} {:>11} {:>12} {:>11} {:>13}\n", "case", "slip ns", "fiber ns", "pthread ns",
             "slip/fiber", "slip/pthread");
  for (unsigned c = 0; c < kNumCases; c++) {
    const auto& r = res[c];
    fmt::print("{:<18} {:>11.1f} {:>11.1f} {:>12.1f} {:>11.3f} {:>13.4f}\n", kCaseNames[c], r[kSlip].median,
               r[kFiber].median, r[kPthread].median, r[kSlip].median / r[kFiber].median,
               r[kSlip].median / r[kPthread].median);
  }
  fmt::print("\nspread over reps (min..max ns)\n");
  for (unsigned c = 0; c < kNumCases; c++) {
    fmt::print("{:<18}", kCaseNames[c]);
    for (unsigned s = 0; s < kNumSystems; s++)
      fmt::print(" {:>7} {:>22}", kSystemNames[s], fmt::format("{:.1f}..{:.1f}", res[c][s].min, res[c][s].max));
    fmt::print("\n");
  }
  fmt::print("\ntargets on this machine\n");
  for (unsigned c = 0; c < kNumCases; c++) {
    const auto& r = res[c];
    std::string line = fmt::format("slip/fiber < 1.0: {}", verdict(r[kSlip].median < r[kFiber].median,
                                                                  r[kSlip].max < r[kFiber].min || r[kSlip].min > r[kFiber].max));
    if (c == kCondvarPingpong)
      line += fmt::format("; >= 10x faster than pthread: {}",
                          verdict(r[kSlip].median * 10 <= r[kPthread].median,
                                  r[kSlip].max * 10 <= r[kPthread].min || r[kSlip].min * 10 > r[kPthread].max));
    if (c == kYieldPingpong)
      line += fmt::format("; round trip < 50 ns: {}", verdict(r[kSlip].median < 50, r[kSlip].max < 50 || r[kSlip].min >= 50));
    fmt::print("  {:<18} {}\n", kCaseNames[c], line);
  }
}

void write_json(const Results& res, const Options& o, const Machine& m, const rt::Config& cfg,
                const std::array<Iters, kNumSystems>& iters) {
  nlohmann::ordered_json j;
  for (unsigned c = 0; c < kNumCases; c++) {
    auto& jc = j["cases"][kCaseNames[c]];
    for (unsigned s = 0; s < kNumSystems; s++) jc[fmt::format("{}_ns", kSystemNames[s])] = res[c][s].median;
    for (unsigned s = 0; s < kNumSystems; s++) {
      jc[fmt::format("{}_min_ns", kSystemNames[s])] = res[c][s].min;
      jc[fmt::format("{}_max_ns", kSystemNames[s])] = res[c][s].max;
    }
    jc["slip_over_fiber"] = res[c][kSlip].median / res[c][kFiber].median;
    jc["slip_over_pthread"] = res[c][kSlip].median / res[c][kPthread].median;
    for (unsigned s = 0; s < kNumSystems; s++) jc["iters"][kSystemNames[s]] = iters[s][c];
    jc["op"] = kCaseDefinitions[c];
  }
  j["reps"] = o.reps;
  j["quick"] = o.quick;
  j["machine"] = {{"nproc", m.nproc}, {"cpu_model", m.cpu_model}, {"kernel", m.kernel},
                  {"clock", clock_uses_tsc() ? "tsc" : "clock_monotonic"}};
  j["config"] = {
      {"slip", {{"kthreads", cfg.kthreads}, {"spinning_kthreads", cfg.spinning_kthreads},
                {"spin_before_park_ns", cfg.spin_before_park_ns}, {"stack_size", cfg.stack_size},
                {"pin_kthreads", cfg.pin_kthreads}}},
      {"fiber", fmt::format("Boost.Fiber {}, round_robin on the main thread, pooled_fixedsize_stack {} B",
                            BOOST_LIB_VERSION, kFiberStackSize)},
      {"pthread", fmt::format("std::thread, unpinned on {} CPUs; yield_pingpong pins both threads to CPU {}",
                              m.nproc, m.first_cpu)}};
  const std::filesystem::path path(o.json_path);
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  if (!out) {
    std::fprintf(stderr, "slip-bench-runtime: cannot write %s\n", o.json_path.c_str());
    std::exit(1);
  }
  fmt::print("\nwrote {}\n", o.json_path);
}

int bench_main(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  const Machine m = describe_machine();
  // One kthread: the like-for-like comparison with Boost.Fiber's single-thread scheduler.
  rt::Config cfg;
  cfg.kthreads = 1;

  std::array<Iters, kNumSystems> iters = kBaseIters;
  if (o.quick)
    for (auto& sys : iters)
      for (auto& n : sys) n = std::max<uint64_t>(1, n / 10);
  if (o.reps < 5) std::fprintf(stderr, "slip-bench-runtime: note: %u reps; medians want at least 5\n", o.reps);

  std::array<std::array<std::vector<double>, kNumSystems>, kNumCases> samples;
  for (unsigned r = 0; r < o.reps; r++) {
    std::fprintf(stderr, "rep %u/%u:", r + 1, o.reps);
    for (unsigned i = 0; i < kNumSystems; i++) {
      const auto s = static_cast<System>((i + r) % kNumSystems);  // rotate the order so drift hits all alike
      const auto t0 = std::chrono::steady_clock::now();
      const CaseNs ns = s == kSlip    ? run_slip_cases(iters[s], cfg)
                        : s == kFiber ? run_fiber_cases(iters[s])
                                      : run_pthread_cases(iters[s], m.first_cpu);
      for (unsigned c = 0; c < kNumCases; c++) samples[c][s].push_back(ns[c]);
      std::fprintf(stderr, " %s %.2fs", kSystemNames[s],
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::fprintf(stderr, "\n");
  }

  Results res;
  for (unsigned c = 0; c < kNumCases; c++)
    for (unsigned s = 0; s < kNumSystems; s++) res[c][s] = summarize(samples[c][s]);
  print_report(res, o, m, cfg);
  if (!o.json_path.empty()) write_json(res, o, m, cfg, iters);
  return 0;
}

}  // namespace
}  // namespace slip::bench

int main(int argc, char** argv) { return slip::bench::bench_main(argc, argv); }
