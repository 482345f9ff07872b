// The runtime benchmark's cases, written once as templates over a "system"
// (slip uthreads, Boost.Fiber fibers, std::thread) so that all three run exactly
// the same code; only the primitives in the System structs differ.
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <boost/fiber/all.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <utility>

#include "runtime_bench.h"
#include "slip/runtime/runtime.h"
#include "slip/runtime/sync.h"

namespace slip::bench {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double ns_per_op(Clock::time_point t0, uint64_t ops) {
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / static_cast<double>(ops);
}

// ---- the three systems ----------------------------------------------------

struct SlipSys {
  using Mutex = rt::Mutex;
  using CondVar = rt::CondVar;
  template <class F>
  static rt::JoinHandle spawn(F&& f) {
    return rt::spawn(std::forward<F>(f));
  }
  // Already one kthread: every uthread shares its CPU.
  template <class F>
  static rt::JoinHandle spawn_same_cpu(F&& f) {
    return rt::spawn(std::forward<F>(f));
  }
  static void yield() { rt::yield(); }
  static void wait(CondVar& cv, Mutex& m) { cv.wait(m); }
  static void sleep_1us() { rt::sleep_for(1us); }
};

struct FiberSys {
  using Mutex = boost::fibers::mutex;
  using CondVar = boost::fibers::condition_variable;
  // Pooled stacks, as slip pools its stacks: Boost.Fiber at its best for spawn_join.
  static boost::fibers::pooled_fixedsize_stack& stacks() {
    static boost::fibers::pooled_fixedsize_stack s(kFiberStackSize);
    return s;
  }
  template <class F>
  static boost::fibers::fiber spawn(F&& f) {
    // A copy shares the pool; the fiber keeps it to give the stack back.
    return boost::fibers::fiber(std::allocator_arg, boost::fibers::pooled_fixedsize_stack(stacks()), std::forward<F>(f));
  }
  template <class F>
  static boost::fibers::fiber spawn_same_cpu(F&& f) {
    return spawn(std::forward<F>(f));
  }
  static void yield() { boost::this_fiber::yield(); }
  static void wait(CondVar& cv, Mutex& m) {
    std::unique_lock<Mutex> lk(m, std::adopt_lock);
    cv.wait(lk);
    lk.release();
  }
  static void sleep_1us() { boost::this_fiber::sleep_for(1us); }
};

struct PthreadSys {
  using Mutex = std::mutex;
  using CondVar = std::condition_variable;
  static inline int same_cpu = 0;  // where spawn_same_cpu pins its threads
  template <class F>
  static std::thread spawn(F&& f) {
    return std::thread(std::forward<F>(f));
  }
  // Two OS threads on two cores never switch on yield(); pinning both to one
  // CPU makes sched_yield() the switch that the uthread and fiber cases measure.
  template <class F>
  static std::thread spawn_same_cpu(F&& f) {
    return std::thread([f = std::forward<F>(f)]() mutable {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(same_cpu, &set);
      if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0)
        std::fprintf(stderr, "slip-bench-runtime: cannot pin a thread to CPU %d; yield_pingpong runs unpinned\n", same_cpu);
      f();
    });
  }
  static void yield() { std::this_thread::yield(); }
  static void wait(CondVar& cv, Mutex& m) {
    std::unique_lock<Mutex> lk(m, std::adopt_lock);
    cv.wait(lk);
    lk.release();
  }
  static void sleep_1us() { std::this_thread::sleep_for(1us); }
};

// ---- the cases --------------------------------------------------------------

// spawn_join: ns per spawn of an empty task plus its join.
template <class S>
double spawn_join(uint64_t n) {
  const auto t0 = Clock::now();
  for (uint64_t i = 0; i < n; i++) S::spawn([] {}).join();
  return ns_per_op(t0, n);
}

// yield_pingpong: ns per round trip of a turn token; each side waits for its
// turn by yielding. With just the two runnable on one CPU, each wait is exactly
// one yield, so a round trip is two yields (the loop also stays correct when a
// yield does not switch, as with sched_yield).
template <class S>
double yield_pingpong(uint64_t n) {
  std::atomic<int> turn{0};
  auto player = [&turn, n](int me) {
    for (uint64_t i = 0; i < n; i++) {
      while (turn.load(std::memory_order_acquire) != me) S::yield();
      turn.store(1 - me, std::memory_order_release);
    }
  };
  const auto t0 = Clock::now();
  auto a = S::spawn_same_cpu([&] { player(0); });
  auto b = S::spawn_same_cpu([&] { player(1); });
  a.join();
  b.join();
  return ns_per_op(t0, n);
}

// condvar_pingpong: ns per round trip A->B->A of a turn token under one mutex,
// each side parked on its own condvar. notify_one comes after unlock so the
// woken side never finds the mutex still held (best for pthreads, neutral for the others).
template <class S>
double condvar_pingpong(uint64_t n) {
  typename S::Mutex m;
  typename S::CondVar cv[2];
  int turn = 0;
  auto player = [&](int me) {
    for (uint64_t i = 0; i < n; i++) {
      m.lock();
      while (turn != me) S::wait(cv[me], m);
      turn = 1 - me;
      m.unlock();
      cv[1 - me].notify_one();
    }
  };
  const auto t0 = Clock::now();
  auto a = S::spawn([&] { player(0); });
  auto b = S::spawn([&] { player(1); });
  a.join();
  b.join();
  return ns_per_op(t0, n);
}

// mutex_handoff: two threads each run n critical sections {lock; counter++;
// yield(); unlock}. The yield while holding the lock lets the other thread run
// into the held mutex, so the mutex is contended on every pass. ns per op =
// wall time / (2n) critical sections. slip's Mutex hands ownership to the
// waiter on unlock; Boost.Fiber's and glibc's mutexes let the unlocker re-take
// it (barging), which the per-critical-section figure also counts.
template <class S>
double mutex_handoff(uint64_t n) {
  typename S::Mutex m;
  uint64_t counter = 0;
  auto worker = [&] {
    for (uint64_t i = 0; i < n; i++) {
      m.lock();
      counter++;
      S::yield();
      m.unlock();
    }
  };
  const auto t0 = Clock::now();
  auto a = S::spawn(worker);
  auto b = S::spawn(worker);
  a.join();
  b.join();
  const double ns = ns_per_op(t0, 2 * n);
  if (counter != 2 * n) {
    std::fprintf(stderr, "slip-bench-runtime: mutex_handoff lost updates: counter %llu, expected %llu\n",
                 static_cast<unsigned long long>(counter), static_cast<unsigned long long>(2 * n));
    std::exit(1);
  }
  return ns;
}

// sleep_wake: wall ns per sleep_for(1us) on an otherwise idle system.
template <class S>
double sleep_wake(uint64_t n) {
  const auto t0 = Clock::now();
  for (uint64_t i = 0; i < n; i++) S::sleep_1us();
  return ns_per_op(t0, n);
}

// Runs every case for system S: a warm-up of n/16 iterations, then the measured run.
template <class S>
CaseNs run_all(const Iters& n) {
  using Fn = double (*)(uint64_t);
  static constexpr std::array<Fn, kNumCases> fns = {&spawn_join<S>, &yield_pingpong<S>, &condvar_pingpong<S>,
                                                    &mutex_handoff<S>, &sleep_wake<S>};
  CaseNs out{};
  for (unsigned c = 0; c < kNumCases; c++) {
    const uint64_t iters = n[c] ? n[c] : 1;
    fns[c](iters / 16 ? iters / 16 : 1);
    out[c] = fns[c](iters);
  }
  return out;
}

}  // namespace

CaseNs run_slip_cases(const Iters& n, const rt::Config& cfg) {
  CaseNs out{};
  rt::run(cfg, [&] { out = run_all<SlipSys>(n); });
  return out;
}

CaseNs run_fiber_cases(const Iters& n) { return run_all<FiberSys>(n); }

CaseNs run_pthread_cases(const Iters& n, int yield_cpu) {
  PthreadSys::same_cpu = yield_cpu;
  return run_all<PthreadSys>(n);
}

}  // namespace slip::bench
