// slip-bench-iokernel: core reallocation reaction. A shared-mode runtime (2
// kthreads, 1 guaranteed, max 2) is registered with an in-process IOKernel
// whose loop runs the daemon's own CoreAllocator and DelayPolicy every
// --interval-us. Each trial waits until the second kthread is parked, then
// makes a load step on kthread 0 (uthreads that each compute for --work-us
// land on its run queue) and times from the step to the first of them
// running on kthread 1: detection (queueing delay past --threshold-us at the
// next pass), the grant, the wake and the steal. Two configurations in the
// same run: the second kthread parked on its eventfd, and spinning on its
// grant in shared memory. The floor of the parked case, an eventfd write
// waking a thread blocked in ppoll on another core, is measured too. Never
// asserts on time.
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "slip/common/cli11.h"
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "iokd_embed.h"
#include "slip/iok/shared_nic.h"
#include "slip/net/buf.h"
#include "slip/runtime/runtime.h"
#include "slip/runtime/time.h"

namespace iok = slip::iok;
namespace rt = slip::rt;
using slip::now_ns;

namespace {

struct Options {
  int trials = 300, wake_samples = 1000;
  double interval_us = 5, threshold_us = 5, work_us = 40;
  unsigned load_uthreads = 8;
  std::string json_path;
};

struct Pct {
  double p50 = 0, p99 = 0, min = 0, max = 0;
  size_t n = 0;
};
Pct percentiles(std::vector<uint64_t> v) {
  Pct p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return static_cast<double>(v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))]); };
  p.p50 = at(0.5);
  p.p99 = at(0.99);
  p.min = static_cast<double>(v.front());
  p.max = static_cast<double>(v.back());
  p.n = v.size();
  return p;
}

// The IOKernel's core-allocation side, in a thread of this process: the
// daemon's own registration and CoreAllocator through its embedding API
// (iokd_embed.h), which accepts one runtime (an rx pool of one buffer: no
// frames flow here) and runs one allocation pass whenever this thread asks,
// every interval, yielding its core between passes. The bench drives it
// rather than a real iokerneld because it times the allocator itself: the
// gaps between passes and, in the attached runtime's shared state, when
// kthread 1 parked and when its grant came.
class BenchDaemon {
 public:
  BenchDaemon(const std::string& sock, uint64_t interval_ns) : daemon_(sock, 2), interval_ns_(interval_ns) {
    th_ = std::thread([this] { serve(); });
  }
  ~BenchDaemon() { stop(); }
  void stop() {
    stop_ = true;
    if (th_.joinable()) th_.join();
  }
  double passes_per_ms() const noexcept { return passes_per_ms_; }
  const std::vector<uint64_t>& pass_gaps() const noexcept { return gaps_; }
  // The registered runtime's kthread k, once attached (spins until then).
  iok::KthreadShm& kthread(uint32_t k) {
    while (!attached_.load()) std::this_thread::yield();
    return daemon_.kthread(k);
  }

 private:
  void serve() {
    pin_last_cpu();
    try {
      while (!stop_ && !daemon_.accept_one(10)) {
      }
    } catch (const std::exception& e) {
      fmt::print(stderr, "bench: {}\n", e.what());
      std::exit(1);
    }
    if (stop_) return;
    attached_ = true;
    uint64_t next = 0;
    const uint64_t start = now_ns();
    uint64_t last_pass = start;
    gaps_.reserve(kMaxGaps);
    while (!stop_) {
      const uint64_t now = now_ns();
      if (now >= next) {
        if (next != 0 && gaps_.size() < kMaxGaps) gaps_.push_back(now - last_pass);
        last_pass = now;
        daemon_.allocate(now);
        next = now + interval_ns_;
      }
      std::this_thread::yield();  // the bench's idle backoff: the core goes to whoever else is runnable
    }
    passes_per_ms_ = static_cast<double>(daemon_.passes()) * 1e6 / static_cast<double>(now_ns() - start);
  }
  // With kthread 1, which waits there parked or spinning (the runtime pins
  // kthread i to the i-th CPU), never with the load on kthread 0.
  static void pin_last_cpu() noexcept {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return;
    int last = -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
      if (CPU_ISSET(c, &set)) last = c;
    if (last < 0) return;
    CPU_ZERO(&set);
    CPU_SET(last, &set);
    sched_setaffinity(0, sizeof set, &set);
  }
  iok::EmbeddedDaemon daemon_;
  uint64_t interval_ns_;
  std::atomic<bool> attached_{false}, stop_{false};
  double passes_per_ms_ = 0;
  static constexpr size_t kMaxGaps = 1 << 20;
  std::vector<uint64_t> gaps_;  // between allocation passes: how often the daemon thread got its core
  std::thread th_;
};

bool kthread1_parked(iok::KthreadShm& k) {
  return k.state.load() == static_cast<uint32_t>(iok::KthreadState::kParked) && k.grant.load() == 0;
}

void wait_parked(iok::KthreadShm& k) {
  const uint64_t deadline = now_ns() + 2'000'000'000;
  while (!kthread1_parked(k) && now_ns() < deadline) rt::sleep_for(std::chrono::microseconds(20));
  if (!kthread1_parked(k))
    fmt::print(stderr, "bench: kthread 1 not parked after 2 s: state {} grant {} parks {}\n", k.state.load(),
               k.grant.load(), k.parks.load());
}

void spin_for(uint64_t ns) {
  const uint64_t end = now_ns() + ns;
  while (now_ns() < end) __builtin_ia32_pause();
}

struct Reaction {
  std::vector<uint64_t> total, detect;  // load step to first uthread on kthread 1; to the grant
  unsigned missed = 0;                  // trials where kthread 1 ran none of the load
  double passes_per_ms = 0;             // allocation passes the daemon thread managed
  std::vector<uint64_t> pass_gaps;
};

// One configuration: a runtime whose kthread 1 parks (spinning = false) or
// spins waiting for its grant.
Reaction measure(const Options& o, bool spinning, const std::string& sock) {
  BenchDaemon d(sock, static_cast<uint64_t>(o.interval_us * 1e3));
  iok::SharedNicConfig nc;
  nc.socket = sock;
  nc.ip = slip::net::Ipv4Addr::of(198, 18, 0, 2);
  nc.kthreads = 2;
  nc.guaranteed_cores = 1;
  nc.max_cores = 2;
  nc.delay_threshold_us = static_cast<uint32_t>(o.threshold_us);
  nc.ring_slots = 64;
  nc.tx_bufs = 64;
  auto nic = iok::connect_iokernel(nc);
  rt::Config cfg;
  cfg.kthreads = 2;
  cfg.guaranteed_kthreads = 1;
  cfg.spinning_kthreads = spinning ? 2 : 0;
  Reaction r;
  rt::run(cfg, [&] {
    slip::net::PacketBuf* none[1];
    nic->rx_burst(0, none, 1);  // the first rx_burst on a kthread makes the Nic the core arbiter
    iok::KthreadShm& k1 = d.kthread(1);
    std::mt19937 rng(42);
    for (int t = 0; t < o.trials; t++) {
      wait_parked(k1);
      rt::sleep_for(std::chrono::microseconds(50 + rng() % 150));  // out of phase with the passes
      std::atomic<uint64_t> first_on_1{0}, grant_seen{0};
      const uint64_t step = now_ns();
      std::vector<rt::JoinHandle> hs;
      for (unsigned i = 0; i < o.load_uthreads; i++)
        hs.push_back(rt::spawn([&] {
          uint64_t zero = 0;
          if (rt::kthread_index() == 1 && first_on_1.compare_exchange_strong(zero, now_ns()))
            grant_seen = k1.grant_ns.load();  // the grant that woke it
          spin_for(static_cast<uint64_t>(o.work_us * 1e3));
        }));
      for (auto& h : hs) h.join();
      const uint64_t got = first_on_1.load(), granted = grant_seen.load();
      if (got == 0 || got < step) {
        r.missed++;
        continue;
      }
      r.total.push_back(got - step);
      if (granted >= step) r.detect.push_back(granted - step);
    }
  });
  d.stop();
  r.passes_per_ms = d.passes_per_ms();
  r.pass_gaps = d.pass_gaps();
  return r;
}

// The floor: an eventfd write waking a thread blocked in ppoll on it, the
// path a parked kthread's grant takes.
std::vector<uint64_t> wake_baseline(int samples) {
  const int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  std::atomic<uint64_t> sent{0}, woke{0};
  std::atomic<bool> done{false};
  std::thread sleeper([&] {
    while (!done) {
      pollfd p{efd, POLLIN, 0};
      if (ppoll(&p, 1, nullptr, nullptr) > 0) {
        eventfd_t v;
        eventfd_read(efd, &v);
        woke = now_ns();
      }
    }
  });
  std::vector<uint64_t> out;
  for (int i = 0; i < samples; i++) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));  // let it block
    woke = 0;
    sent = now_ns();
    eventfd_write(efd, 1);
    while (woke.load() == 0) std::this_thread::yield();
    out.push_back(woke - sent);
  }
  done = true;
  eventfd_write(efd, 1);
  sleeper.join();
  close(efd);
  return out;
}

nlohmann::ordered_json pct_json(const Pct& p) {
  return {{"p50_ns", p.p50}, {"p99_ns", p.p99}, {"min_ns", p.min}, {"max_ns", p.max}, {"n", p.n}};
}

void print_row(const char* what, const Pct& p) {
  fmt::print("  {:<34} p50 {:>9.1f} us  p99 {:>9.1f} us  min {:>8.1f}  max {:>9.1f}  (n={})\n", what, p.p50 / 1e3,
             p.p99 / 1e3, p.min / 1e3, p.max / 1e3, p.n);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"slip-bench-iokernel: core reallocation reaction (load step -> granted kthread runs a uthread)"};
  app.add_option("--trials", o.trials, "load steps per configuration")->check(CLI::Range(1, 100000));
  app.add_option("--interval-us", o.interval_us, "core allocation interval")->check(CLI::Range(1.0, 1000.0));
  app.add_option("--threshold-us", o.threshold_us, "queueing delay that asks for a core")->check(CLI::Range(1.0, 1000.0));
  app.add_option("--work-us", o.work_us, "compute per load uthread")->check(CLI::Range(1.0, 10000.0));
  app.add_option("--wake-samples", o.wake_samples, "eventfd wake-ups for the floor")->check(CLI::Range(1, 100000));
  app.add_option("--json", o.json_path, "write results there (tools/bench/run passes build/bench/iokernel.json)");
  CLI11_PARSE(app, argc, argv);

  const std::string sock = fmt::format("/tmp/slip-bench-iok-{}.sock", getpid());
  Pct total[2], detect[2];
  unsigned missed[2];
  double passes[2];
  Pct gaps[2];
  try {
    for (int s = 0; s < 2; s++) {
      Reaction r = measure(o, s == 1, sock);
      total[s] = percentiles(r.total);
      detect[s] = percentiles(r.detect);
      missed[s] = r.missed;
      passes[s] = r.passes_per_ms;
      gaps[s] = percentiles(r.pass_gaps);
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "slip-bench-iokernel: {}\n", e.what());
    return 1;
  }
  const Pct floor = percentiles(wake_baseline(o.wake_samples));
  fmt::print("core reallocation reaction: {} trials, {} load uthreads of {} us, interval {} us, threshold {} us, "
             "{} CPUs; kthread i pinned to CPU i, the daemon thread to the last CPU, yielding between passes\n",
             o.trials, o.load_uthreads, o.work_us, o.interval_us, o.threshold_us, std::thread::hardware_concurrency());
  const char* names[2] = {"parked", "spinning"};
  for (int s = 0; s < 2; s++) {
    print_row(fmt::format("{}: step -> first uthread", names[s]).c_str(), total[s]);
    print_row(fmt::format("{}: step -> grant", names[s]).c_str(), detect[s]);
    print_row(fmt::format("{}: between allocation passes", names[s]).c_str(), gaps[s]);
    fmt::print("  {}: {} trials finished before kthread 1 ran; {:.0f} allocation passes per ms\n", names[s], missed[s],
               passes[s]);
  }
  print_row("floor: eventfd wake of a parked thread", floor);
  if (o.json_path.empty()) return 0;
  nlohmann::ordered_json j;
  for (int s = 0; s < 2; s++) {
    j["reaction"][names[s]] = pct_json(total[s]);
    j["detect"][names[s]] = pct_json(detect[s]);
    j["missed"][names[s]] = missed[s];
    j["passes_per_ms"][names[s]] = passes[s];
    j["pass_gap"][names[s]] = pct_json(gaps[s]);
  }
  j["wake_baseline"] = pct_json(floor);
  j["config"] = {{"trials", o.trials}, {"interval_us", o.interval_us}, {"threshold_us", o.threshold_us},
                 {"load_uthreads", o.load_uthreads}, {"work_us", o.work_us},
                 {"cpus", std::thread::hardware_concurrency()},
                 {"daemon", "in-process thread running iokerneld's CoreAllocator, pinned to the last CPU, sched_yield "
                             "between passes"},
                 {"kthreads", "2 (1 guaranteed, max 2), kthread i pinned to CPU i; spinning: both spin, and "
                              "kthread 1 waits for its grant polling shared memory with sched_yield"}};
  const std::filesystem::path path(o.json_path);
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  if (!out) {
    fmt::print(stderr, "slip-bench-iokernel: cannot write {}\n", o.json_path);
    return 1;
  }
  fmt::print("wrote {}\n", o.json_path);
  return 0;
}
