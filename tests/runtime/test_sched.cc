// Scheduling: work stealing, parking of idle kthreads, counters, and stress.
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <atomic>
#include <vector>

#include "rt_test_util.h"
#include "runtime/defs.h"
#include "slip/runtime/stats.h"
#include "slip/runtime/sync.h"

using namespace slip::rt;
using slip::rt::test::run_with;
using namespace std::chrono_literals;

namespace {
uint64_t cpu_ns() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](timeval t) { return uint64_t(t.tv_sec) * 1'000'000'000 + uint64_t(t.tv_usec) * 1000; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}
}  // namespace

TEST_CASE("work stealing spreads a load queued on one kthread", "[sched]") {
  run_with(2, [] {
    std::atomic<int> ran_on[2] = {0, 0};
    std::vector<JoinHandle> hs;
    // All 64 land on this kthread's queue; only stealing moves them.
    for (int i = 0; i < 64; i++)
      hs.push_back(spawn([&] {
        const uint64_t end = slip::now_ns() + 500'000;
        while (slip::now_ns() < end) {
        }
        ran_on[kthread_index()]++;
      }));
    for (auto& h : hs) h.join();
    auto per = stats();
    REQUIRE(per.size() == 2);
    CHECK(per[0].steals + per[1].steals > 0);
    CHECK(ran_on[0] > 0);
    CHECK(ran_on[1] > 0);
    CHECK(ran_on[0] + ran_on[1] == 64);
  });
}

TEST_CASE("an idle runtime parks its kthreads and uses almost no CPU", "[sched]") {
  run_with(2, [] {
    sleep_for(20ms);  // settle
    const auto before = stats();
    const uint64_t cpu0 = cpu_ns();
    sleep_for(200ms);
    const uint64_t cpu_used = cpu_ns() - cpu0;
    const auto after = stats();
    // Every kthread has parked; one that stayed parked all along adds no count,
    // but whichever ran this uthread must have parked again while it slept.
    for (size_t i = 0; i < after.size(); i++) {
      INFO("kthread " << i);
      CHECK(after[i].parks > 0);
    }
    CHECK(total(after).parks > total(before).parks);
    // 200 ms idle on two kthreads: a spinning design would burn ~400 ms of CPU.
    CHECK(cpu_used < 40'000'000);
  });
}

TEST_CASE("a parked kthread is woken when work arrives", "[sched]") {
  run_with(2, [] {
    const auto before = total(stats());
    std::atomic<int> ran_on_other{0};
    // Each round first lets the other kthread park, then queues work here.
    for (int round = 0; round < 30 && (ran_on_other == 0 || total(stats()).wakeups == before.wakeups); round++) {
      sleep_for(5ms);
      const int here = kthread_index();
      std::vector<JoinHandle> hs;
      for (int i = 0; i < 16; i++)
        hs.push_back(spawn([&] {
          const uint64_t end = slip::now_ns() + 1'000'000;
          while (slip::now_ns() < end) {
          }
          if (kthread_index() != here) ran_on_other++;
        }));
      for (auto& h : hs) h.join();
    }
    CHECK(ran_on_other > 0);
    CHECK(total(stats()).wakeups > before.wakeups);
  });
}

TEST_CASE("spinning kthreads never park", "[sched]") {
  run_with(
      2,
      [] {
        sleep_for(20ms);
        auto per = stats();
        CHECK(per[0].parks == 0);
        CHECK(per[1].parks > 0);
      },
      /*spinning=*/1);
}

TEST_CASE("counters: switches, spawns and the run-queue delay histogram", "[sched]") {
  run_with(1, [] {
    auto a = spawn([] {
      for (int i = 0; i < 1000; i++) yield();
    });
    auto b = spawn([] {
      for (int i = 0; i < 1000; i++) yield();
    });
    a.join();
    b.join();
    const KthreadStats t = total(stats());
    CHECK(t.switches >= 2000);
    CHECK(t.spawns >= 2);
    CHECK(t.rq_delay_ns.count() >= 2000 / kRqDelaySampleEvery / 2);
    CHECK(t.rq_delay_ns.percentile(50) < 1'000'000'000);
  });
}

TEST_CASE("one million uthreads spawned and joined across kthreads", "[stress]") {
  std::atomic<long> ran{0};
  long spawns = 0;
  run_with(2, [&] {
    constexpr int kParents = 100, kBatches = 100, kBatch = 100;
    std::vector<JoinHandle> parents;
    for (int p = 0; p < kParents; p++)
      parents.push_back(spawn([&] {
        JoinHandle batch[kBatch];
        for (int b = 0; b < kBatches; b++) {
          for (auto& h : batch) h = spawn([&] { ran.fetch_add(1, std::memory_order_relaxed); });
          for (auto& h : batch) h.join();
        }
      }));
    for (auto& p : parents) p.join();
    spawns = static_cast<long>(total(stats()).spawns);
  });
  CHECK(ran == 1'000'000);
  CHECK(spawns >= 1'000'100);
}

TEST_CASE("a mutex-protected counter with 10,000 contending uthreads", "[stress]") {
  long counter = 0;
  std::atomic<int> overlap{0};
  run_with(2, [&] {
    Mutex m;
    std::atomic<int> inside{0};
    WaitGroup wg;
    constexpr int kUthreads = 10'000, kIncrements = 100;
    wg.add(kUthreads);
    for (int i = 0; i < kUthreads; i++)
      spawn_detached([&] {
        for (int j = 0; j < kIncrements; j++) {
          m.lock();
          if (inside.fetch_add(1) != 0) overlap++;
          counter++;
          inside.fetch_sub(1);
          m.unlock();
          if (j % 3 == 0) yield();
        }
        wg.done();
      });
    wg.wait();
  });
  CHECK(overlap == 0);
  CHECK(counter == 1'000'000);
}

TEST_CASE("condvar lost-wakeup stress across kthreads", "[stress]") {
  long handoffs = 0;
  run_with(2, [&] {
    // A ring of 64 uthreads passes one token; a lost wake-up deadlocks the ring.
    constexpr int kRing = 64, kLaps = 300;
    Mutex m;
    CondVar cv;
    int holder = 0;
    std::vector<JoinHandle> hs;
    for (int id = 0; id < kRing; id++)
      hs.push_back(spawn([&, id] {
        for (int lap = 0; lap < kLaps; lap++) {
          m.lock();
          cv.wait(m, [&] { return holder == id; });
          holder = (id + 1) % kRing;
          handoffs++;
          m.unlock();
          cv.notify_all();
        }
      }));
    for (auto& h : hs) h.join();
  });
  CHECK(handoffs == 64 * 300);
}

TEST_CASE("revoked kthreads hand their work over and park until granted", "[sched]") {
  run_with(2, [] {
    CHECK(active_kthreads() == 2);
    set_active_kthreads(1);
    CHECK(active_kthreads() == 1);
    auto spread = [](int tasks) { return test::ran_on_each(tasks); };
    // This uthread may be on kthread 1 right now; its next block moves it.
    sleep_for(1ms);
    CHECK(kthread_index() == 0);
    auto [on0, on1] = spread(32);
    CHECK(on0 == 32);
    CHECK(on1 == 0);
    set_active_kthreads(2);
    int other = 0;
    for (int round = 0; round < 30 && other == 0; round++) other = spread(32).second;
    CHECK(other > 0);
    set_active_kthreads(0);  // clamped to guaranteed_kthreads (1)
    CHECK(active_kthreads() == 1);
  });
}

// The hang the test above met about once in 100 runs: a uthread on a
// revoked kthread arms a timer after the granted kthread went to sleep
// with no timer to wake for; only the revoked kthread can fire it.
TEST_CASE("a revoked kthread fires the timers its uthreads armed", "[sched]") {
  run_with(2, [] {
    const detail::Runtime* rt = detail::g_runtime.load();
    bool woke = false;
    // Until a try runs on kthread 1: beside busy processes kthread 1 may be
    // off its CPU for long stretches, and kthread 0 takes what was sent to it.
    const uint64_t deadline = slip::now_ns() + 60'000'000'000;
    while (!woke && slip::now_ns() < deadline)
      spawn_on(1, [&] {
        if (kthread_index() != 1) return;  // taken by kthread 0 before 1 ran it: again
        const uint64_t give_up = slip::now_ns() + 10'000'000'000;
        while (!(rt->idle_mask.load() & 1) && slip::now_ns() < give_up) {
        }  // kthread 0 goes to sleep (this uthread's joiner waits there) with no timer to wake for
        set_active_kthreads(1);
        sleep_for(1ms);  // armed on kthread 1, which then parks revoked
        woke = true;
      }).join();
    CHECK(woke);
  });
}
