// SpinParkLock and Backoff on OS threads: exclusion, waiters that park
// instead of spinning while the holder is off its CPU, progress for every
// contender, and the spin budget.
#include <catch2/catch.hpp>

#include <time.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "slip/runtime/spin_park_lock.h"
#include "slip/runtime/time.h"

using namespace slip::rt;

namespace {

constexpr uint64_t kHangNs = 60'000'000'000;  // deadlines only catch hangs

// Sleeps 1 ms: the caller leaves its CPU on purpose.
void off_cpu() {
  const timespec ts{0, 1'000'000};
  nanosleep(&ts, nullptr);
}

// Restores the process-wide spin budget a test changed.
struct SpinBudget {
  explicit SpinBudget(uint64_t ns) : old(lock_spin_ns()) { set_lock_spin_ns(ns); }
  ~SpinBudget() { set_lock_spin_ns(old); }
  uint64_t old;
};

}  // namespace

TEST_CASE("SpinParkLock excludes across threads that spin and park", "[lock]") {
  // A zero budget makes every contended lock() park; the default mixes both.
  for (uint64_t budget : {uint64_t{0}, kDefaultLockSpinNs}) {
    SpinBudget b(budget);
    SpinParkLock lk;
    long counter = 0;
    std::atomic<int> inside{0};
    std::atomic<bool> overlap{false};
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; t++)
      ts.emplace_back([&] {
        for (int i = 0; i < 50'000; i++) {
          SpinParkGuard g(lk);
          if (inside.fetch_add(1) != 0) overlap = true;
          counter++;
          inside.fetch_sub(1);
        }
      });
    for (auto& t : ts) t.join();
    CHECK_FALSE(overlap);
    CHECK(counter == 200'000);
    CHECK_FALSE(lk.is_locked());
  }
}

TEST_CASE("waiters park while the holder is off its CPU, and all get the lock after", "[lock]") {
  SpinParkLock lk;
  const LockStats before = lock_stats();
  lk.lock();
  std::atomic<int> got{0};
  std::vector<std::thread> waiters;
  for (int t = 0; t < 3; t++)
    waiters.emplace_back([&] {
      lk.lock();
      got++;
      lk.unlock();
    });
  // The holder sleeps (descheduled, as if preempted) until every waiter has
  // given up spinning and parked on the futex.
  const uint64_t deadline = slip::now_ns() + kHangNs;
  while (lock_stats().parked - before.parked < 3 && slip::now_ns() < deadline) off_cpu();
  const LockStats during = lock_stats();
  CHECK(during.parked - before.parked >= 3);
  CHECK(got == 0);
  lk.unlock();
  for (auto& t : waiters) t.join();
  CHECK(got == 3);
  CHECK_FALSE(lk.is_locked());
  // Their waits are accounted (spinning and asleep).
  CHECK(lock_stats().wait_ns > during.wait_ns);
}

TEST_CASE("every contender makes progress, beside a thread that never sleeps", "[lock]") {
  // More runnable threads than CPUs: holders lose their CPU inside the lock.
  SpinParkLock lk;
  constexpr int kThreads = 4;
  constexpr long kEach = 2000;
  std::atomic<long> counts[kThreads] = {};
  std::atomic<bool> stop{false};
  std::thread hog([&] {
    while (!stop.load(std::memory_order_relaxed)) {
    }
  });
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; t++)
    ts.emplace_back([&, t] {
      while (!stop.load(std::memory_order_relaxed)) {
        lk.lock();
        counts[t].fetch_add(1, std::memory_order_relaxed);
        for (int i = 0; i < 50; i++) __builtin_ia32_pause();  // a short critical section
        lk.unlock();
      }
    });
  auto least = [&] {
    long m = counts[0].load();
    for (auto& c : counts) m = std::min(m, c.load());
    return m;
  };
  const uint64_t deadline = slip::now_ns() + kHangNs;
  while (least() < kEach && slip::now_ns() < deadline) off_cpu();
  const long got = least();
  stop = true;
  for (auto& t : ts) t.join();
  hog.join();
  CHECK(got >= kEach);  // no contender starved
}

TEST_CASE("the spin budget decides between spinning and parking", "[lock]") {
  // With a budget far longer than the hold, a waiter never parks.
  SpinBudget b(60'000'000'000);
  SpinParkLock lk;
  const LockStats before = lock_stats();
  lk.lock();
  std::atomic<bool> waiting{false}, done{false};
  std::thread w([&] {
    waiting = true;
    lk.lock();
    done = true;
    lk.unlock();
  });
  const uint64_t deadline = slip::now_ns() + kHangNs;
  while (!waiting && slip::now_ns() < deadline) off_cpu();
  off_cpu();  // let it start spinning
  lk.unlock();
  w.join();
  CHECK(done);
  // Other tests' threads may park meanwhile in this process; none run now.
  CHECK(lock_stats().parked == before.parked);
}

TEST_CASE("Backoff waits out a holder that is off its CPU", "[lock]") {
  std::atomic<bool> busy{true};
  std::thread holder([&] {
    for (int i = 0; i < 20; i++) off_cpu();
    busy = false;
  });
  const uint64_t deadline = slip::now_ns() + kHangNs;
  for (Backoff backoff; busy && slip::now_ns() < deadline;) backoff.pause();
  const bool saw_free = !busy;  // the wait ended on the flag, not the deadline
  holder.join();
  CHECK(saw_free);
}
