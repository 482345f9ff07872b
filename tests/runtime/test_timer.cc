// Timers: ordering, never early, cancellation, callbacks that spawn and re-arm.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <random>
#include <vector>

#include "rt_test_util.h"
#include "slip/runtime/stats.h"
#include "slip/runtime/sync.h"
#include "slip/runtime/timer.h"

using namespace slip::rt;
using slip::rt::test::run_with;
using namespace std::chrono_literals;

namespace {
struct Fired {
  int id;
  uint64_t deadline, at;
};
}  // namespace

TEST_CASE("timers fire in deadline order and never early", "[timer]") {
  std::vector<Fired> fired;
  std::vector<uint64_t> deadlines;
  run_with(1, [&] {
    SpinParkLock lk;
    WaitGroup wg;
    std::mt19937_64 rng(42);
    std::vector<std::unique_ptr<Timer>> timers;
    const uint64_t base = slip::now_ns() + 1'000'000;
    constexpr int kN = 500;
    wg.add(kN);
    for (int i = 0; i < kN; i++) {
      const uint64_t d = base + (rng() % 20'000) * 1000;  // within 20 ms, 1 us apart at least
      deadlines.push_back(d);
      timers.push_back(std::make_unique<Timer>([&, i, d] {
        const uint64_t at = slip::now_ns();
        lk.lock();
        fired.push_back({i, d, at});
        lk.unlock();
        wg.done();
      }));
    }
    for (int i = 0; i < kN; i++) timers[i]->start_at(deadlines[i]);
    wg.wait();
  });
  REQUIRE(fired.size() == deadlines.size());
  for (const Fired& f : fired) CHECK(f.at >= f.deadline);
  CHECK(std::is_sorted(fired.begin(), fired.end(), [](const Fired& a, const Fired& b) { return a.deadline < b.deadline; }));
}

TEST_CASE("cancelled timers never fire", "[timer]") {
  run_with(2, [] {
    constexpr int kN = 1000;
    std::vector<std::atomic<int>> hits(kN);
    std::vector<std::unique_ptr<Timer>> timers;
    // The contract, independent of timing: a cancel() that returns true means
    // the callback never runs; one that returns false means it ran (or runs)
    // exactly once. The 20 ms margin only makes most cancels land in time.
    const uint64_t base = slip::now_ns() + 20'000'000;
    for (int i = 0; i < kN; i++) {
      timers.push_back(std::make_unique<Timer>([&hits, i] { hits[i]++; }));
      timers.back()->start_at(base + static_cast<uint64_t>(i) * 2000);
    }
    std::vector<bool> stopped(kN, false);
    int cancelled = 0;
    for (int i = 0; i < kN; i += 2)
      if ((stopped[i] = timers[i]->cancel())) cancelled++;
    CHECK(cancelled > 0);
    sleep_until(base + kN * 2000 + 2'000'000);
    for (int i = 0; i < 50000 && std::any_of(timers.begin(), timers.end(), [](auto& t) { return t->armed(); }); i++)
      sleep_for(100us);
    int wrong = 0;
    for (int i = 0; i < kN; i++) wrong += hits[i] != (stopped[i] ? 0 : 1);
    CHECK(wrong == 0);
    CHECK_FALSE(timers[1]->cancel());  // already fired
  });
}

TEST_CASE("a timer can be re-armed, also from its own callback", "[timer]") {
  run_with(2, [] {
    std::atomic<int> ticks{0};
    Semaphore done;
    Timer* self = nullptr;
    Timer periodic([&] {
      if (++ticks < 5) self->start_after(100us);
      else done.release();
    });
    self = &periodic;
    periodic.start_after(100us);
    done.acquire();
    CHECK(ticks == 5);

    std::atomic<int> once{0};
    Timer t([&] { once++; });
    t.start_after(50ms);
    t.start_after(1ms);  // re-arming moves the deadline; it fires once
    sleep_for(5ms);
    for (int i = 0; i < 50000 && once == 0; i++) sleep_for(100us);
    CHECK(once == 1);
    CHECK_FALSE(t.armed());
  });
}

TEST_CASE("timer callbacks may spawn uthreads", "[timer]") {
  run_with(2, [] {
    Semaphore sem;
    std::atomic<bool> in_uthread_cb{true}, spawned_in_uthread{false};
    Timer t([&] {
      in_uthread_cb = in_uthread();
      spawn_detached([&] {
        spawned_in_uthread = in_uthread();
        sem.release();
      });
    });
    t.start_after(200us);
    sem.acquire();
    CHECK_FALSE(in_uthread_cb);  // callbacks run outside uthreads
    CHECK(spawned_in_uthread);
  });
}

TEST_CASE("timers fire while the kthread only switches between busy uthreads", "[timer]") {
  run_with(1, [] {
    std::atomic<bool> fired{false};
    Timer t([&] { fired = true; });
    t.start_after(1ms);
    Mutex m;
    CondVar cv;
    int turn = 0;
    auto player = [&](int me) {
      while (!fired) {
        m.lock();
        while (turn != me && !fired) cv.wait_for(m, 10ms);
        turn = 1 - me;
        cv.notify_one();
        m.unlock();
      }
    };
    auto a = spawn([&] { player(0); });
    auto b = spawn([&] { player(1); });
    a.join();
    b.join();
    CHECK(fired);
    CHECK(total(stats()).timers_fired >= 1);
  });
}

TEST_CASE("many sleepers wake in deadline order", "[timer]") {
  std::vector<int> order;
  run_with(1, [&] {
    std::vector<JoinHandle> hs;
    for (int i = 9; i >= 0; i--)
      hs.push_back(spawn([&order, i] {
        sleep_for(std::chrono::microseconds(200 * (i + 1)));
        order.push_back(i);
      }));
    for (auto& h : hs) h.join();
  });
  CHECK(order == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
}
