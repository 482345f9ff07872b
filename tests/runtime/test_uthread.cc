// Uthread lifecycle: spawn, join, detach, yield, sleep, errors outside the runtime.
#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <memory>
#include <thread>
#include <stdexcept>
#include <string>
#include <vector>

#include "rt_test_util.h"
#include "slip/runtime/sync.h"

using namespace slip::rt;
using slip::rt::test::run_with;

TEST_CASE("run executes main on a uthread and returns", "[uthread]") {
  bool ran = false;
  int index = -2;
  run_with(1, [&] {
    ran = in_uthread();
    index = kthread_index();
  });
  CHECK(ran);
  CHECK(index == 0);
  CHECK_FALSE(in_uthread());
  CHECK(kthread_index() == -1);
  CHECK(kthread_count() == 0);
}

TEST_CASE("run can be called again after it returns", "[uthread]") {
  for (int i = 0; i < 5; i++) {
    int x = 0;
    run_with(2, [&] { spawn([&] { x = i + 1; }).join(); });
    CHECK(x == i + 1);
  }
}

TEST_CASE("an exception thrown by main is rethrown by run", "[uthread]") {
  CHECK_THROWS_WITH(run_with(1, [] { throw std::runtime_error("boom"); }), "boom");
  int after = 0;
  run_with(1, [&] { after = 1; });
  CHECK(after == 1);
}

TEST_CASE("a nested run is refused with a clear error", "[uthread]") {
  std::string what;
  run_with(1, [&] {
    try {
      run_with(1, [] {});
    } catch (const std::logic_error& e) {
      what = e.what();
    }
  });
  CHECK_THAT(what, Catch::Contains("already running"));
}

TEST_CASE("uthread-only calls outside a uthread throw NotInUthread", "[uthread]") {
  CHECK_THROWS_AS(yield(), NotInUthread);
  CHECK_THROWS_WITH(yield(), Catch::Contains("must be called from a uthread"));
  CHECK_THROWS_AS(sleep_for(std::chrono::microseconds(1)), NotInUthread);
  Mutex m;
  m.lock();  // uncontended: no parking needed, so no uthread needed
  CHECK_THROWS_AS(m.lock(), NotInUthread);  // would park
  m.unlock();
  CHECK_THROWS_AS(spawn([] {}), NotInUthread);  // no runtime at all
  WaitGroup wg;
  wg.add(1);
  CHECK_THROWS_AS(wg.wait(), NotInUthread);
}

TEST_CASE("spawned uthreads run and join returns after they finish", "[uthread]") {
  std::atomic<int> sum{0};
  run_with(2, [&] {
    std::vector<JoinHandle> hs;
    for (int i = 1; i <= 100; i++)
      hs.push_back(spawn([&sum, i] {
        yield();
        sum += i;
      }));
    for (auto& h : hs) h.join();
    CHECK(sum == 5050);
  });
}

TEST_CASE("join of an already finished uthread returns at once", "[uthread]") {
  run_with(1, [] {
    int v = 0;
    JoinHandle h = spawn([&] { v = 7; });
    yield();  // let it run and finish first
    CHECK(v == 7);
    h.join();
    CHECK_FALSE(h.joinable());
  });
}

TEST_CASE("JoinHandle's destructor joins; moved-from handles are empty", "[uthread]") {
  run_with(2, [] {
    std::atomic<bool> done{false};
    {
      JoinHandle h = spawn([&] {
        sleep_for(std::chrono::milliseconds(2));
        done = true;
      });
      JoinHandle moved = std::move(h);
      CHECK_FALSE(h.joinable());
      CHECK(moved.joinable());
    }
    CHECK(done);
  });
}

TEST_CASE("detached uthreads run to completion", "[uthread]") {
  run_with(2, [] {
    WaitGroup wg;
    std::atomic<int> n{0};
    for (int i = 0; i < 1000; i++) {
      wg.add();
      spawn_detached([&] {
        n++;
        wg.done();
      });
    }
    wg.wait();
    CHECK(n == 1000);
    JoinHandle h = spawn([] {});
    h.detach();
    CHECK_FALSE(h.joinable());
  });
}

TEST_CASE("yield lets other uthreads on the kthread run, in FIFO order", "[uthread]") {
  run_with(1, [] {
    std::vector<int> order;
    auto a = spawn([&] {
      for (int i = 0; i < 3; i++) {
        order.push_back(0);
        yield();
      }
    });
    auto b = spawn([&] {
      for (int i = 0; i < 3; i++) {
        order.push_back(1);
        yield();
      }
    });
    a.join();
    b.join();
    CHECK(order == std::vector<int>{0, 1, 0, 1, 0, 1});
  });
}

TEST_CASE("sleep_for never returns early", "[uthread]") {
  run_with(2, [] {
    for (int us : {0, 1, 50, 500, 2000}) {
      const uint64_t t0 = slip::now_ns();
      sleep_for(std::chrono::microseconds(us));
      CHECK(slip::now_ns() - t0 >= static_cast<uint64_t>(us) * 1000);
    }
  });
}

TEST_CASE("a large capture lives on the uthread's stack; an oversized one is refused", "[uthread]") {
  run_with(1, [] {
    std::array<char, 8192> big{};
    big[100] = 42;
    int seen = 0;
    spawn([big, &seen] { seen = big[100]; }).join();
    CHECK(seen == 42);
    struct Huge {
      std::array<char, 60 * 1024> a{};
      void operator()() const {}
    };
    auto huge = std::make_unique<Huge>();  // not on this uthread's own 64 KiB stack
    CHECK_THROWS_AS(spawn(*huge), std::length_error);
  });
}

TEST_CASE("spawn from a foreign thread while the runtime runs is injected", "[uthread]") {
  run_with(2, [] {
    std::atomic<int> ran{0};
    WaitGroup wg;
    wg.add(10);
    std::thread t([&] {
      for (int i = 0; i < 10; i++)
        spawn_detached([&] {
          ran++;
          wg.done();
        });
    });
    wg.wait();
    t.join();
    CHECK(ran == 10);
  });
}
