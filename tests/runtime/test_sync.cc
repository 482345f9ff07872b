// Mutex, CondVar, Semaphore, WaitGroup and RwMutex, including lost-wakeup stress.
#include <catch2/catch.hpp>

#include <atomic>
#include <vector>

#include "rt_test_util.h"
#include "slip/runtime/sync.h"

using namespace slip::rt;
using slip::rt::test::run_with;
using namespace std::chrono_literals;

TEST_CASE("Mutex excludes and hands off across kthreads", "[sync]") {
  run_with(2, [] {
    Mutex m;
    long counter = 0;
    std::atomic<int> inside{0};
    bool overlap = false;
    std::vector<JoinHandle> hs;
    for (int t = 0; t < 50; t++)
      hs.push_back(spawn([&] {
        for (int i = 0; i < 2000; i++) {
          m.lock();
          if (inside.fetch_add(1) != 0) overlap = true;
          counter++;
          inside.fetch_sub(1);
          m.unlock();
          if (i % 7 == 0) yield();
        }
      }));
    for (auto& h : hs) h.join();
    CHECK_FALSE(overlap);
    CHECK(counter == 100000);
  });
}

TEST_CASE("Mutex try_lock", "[sync]") {
  run_with(1, [] {
    Mutex m;
    CHECK(m.try_lock());
    CHECK_FALSE(m.try_lock());
    bool other = true;
    spawn([&] { other = m.try_lock(); }).join();
    CHECK_FALSE(other);
    m.unlock();
    CHECK(m.try_lock());
    m.unlock();
  });
}

TEST_CASE("CondVar: no lost wake-ups under a producer/consumer storm", "[sync]") {
  run_with(2, [] {
    Mutex m;
    CondVar cv;
    int tokens = 0;
    long consumed = 0;
    constexpr int kProducers = 8, kConsumers = 8, kPer = 5000;
    std::vector<JoinHandle> hs;
    for (int c = 0; c < kConsumers; c++)
      hs.push_back(spawn([&] {
        for (int i = 0; i < kPer; i++) {
          m.lock();
          cv.wait(m, [&] { return tokens > 0; });
          tokens--;
          consumed++;
          m.unlock();
        }
      }));
    for (int p = 0; p < kProducers; p++)
      hs.push_back(spawn([&] {
        for (int i = 0; i < kPer; i++) {
          m.lock();
          tokens++;
          m.unlock();
          cv.notify_one();  // outside the lock: the racy pattern that loses wake-ups in broken designs
        }
      }));
    for (auto& h : hs) h.join();
    CHECK(consumed == long{kConsumers} * kPer);
    CHECK(tokens == 0);
  });
}

TEST_CASE("CondVar ping-pong hands a token back and forth", "[sync]") {
  run_with(2, [] {
    Mutex m;
    CondVar cv;
    int turn = 0;
    constexpr int kRounds = 20000;
    auto player = [&](int me) {
      for (int i = 0; i < kRounds; i++) {
        m.lock();
        cv.wait(m, [&] { return turn == me; });
        turn = 1 - me;
        cv.notify_all();
        m.unlock();
      }
    };
    auto a = spawn([&] { player(0); });
    auto b = spawn([&] { player(1); });
    a.join();
    b.join();
    CHECK(turn == 0);
  });
}

TEST_CASE("CondVar timed wait times out, never early, and can be notified", "[sync]") {
  run_with(2, [] {
    Mutex m;
    CondVar cv;
    m.lock();
    const uint64_t t0 = slip::now_ns();
    CHECK(cv.wait_for(m, 2ms) == WaitStatus::kTimeout);
    CHECK(slip::now_ns() - t0 >= 2000000);
    bool flag = false;
    auto h = spawn([&] {
      sleep_for(1ms);
      m.lock();
      flag = true;
      cv.notify_one();
      m.unlock();
    });
    CHECK(cv.wait_until(m, slip::now_ns() + 5'000'000'000ull, [&] { return flag; }));
    m.unlock();
    h.join();
  });
}

TEST_CASE("CondVar timeouts racing notifies leave nothing behind", "[sync]") {
  run_with(2, [] {
    Mutex m;
    CondVar cv;
    std::atomic<int> notified{0}, timed_out{0};
    std::vector<JoinHandle> hs;
    for (int w = 0; w < 50; w++)
      hs.push_back(spawn([&] {
        for (int i = 0; i < 40; i++) {
          m.lock();
          auto s = cv.wait_for(m, std::chrono::microseconds(20 + (i % 5) * 10));
          (s == WaitStatus::kNotified ? notified : timed_out)++;
          m.unlock();
        }
      }));
    std::atomic<bool> stop{false};
    auto notifier = spawn([&] {
      while (!stop) {
        cv.notify_one();
        yield();
      }
    });
    for (auto& h : hs) h.join();
    stop = true;
    notifier.join();
    CHECK(notified + timed_out == 2000);
  });
}

TEST_CASE("Semaphore counts, blocks and times out", "[sync]") {
  run_with(2, [] {
    Semaphore s(2);
    CHECK(s.try_acquire());
    CHECK(s.try_acquire());
    CHECK_FALSE(s.try_acquire());
    CHECK_FALSE(s.acquire_until(slip::now_ns() + 1'000'000));
    std::atomic<int> got{0};
    std::vector<JoinHandle> hs;
    for (int i = 0; i < 10; i++)
      hs.push_back(spawn([&] {
        s.acquire();
        got++;
      }));
    sleep_for(1ms);
    CHECK(got == 0);
    s.release(4);
    for (int i = 0; i < 50000 && got < 4; i++) sleep_for(100us);
    sleep_for(1ms);  // and no fifth waiter gets through
    CHECK(got == 4);
    s.release(10);
    for (auto& h : hs) h.join();
    CHECK(got == 10);
    CHECK(s.available() == 4);
  });
}

TEST_CASE("WaitGroup waits for every done, and rejects a negative count", "[sync]") {
  run_with(2, [] {
    WaitGroup wg;
    wg.wait();  // zero: returns at once
    std::atomic<int> n{0};
    wg.add(100);
    for (int i = 0; i < 100; i++)
      spawn_detached([&, i] {
        sleep_for(std::chrono::microseconds(i % 10));
        n++;
        wg.done();
      });
    std::atomic<int> early{0};
    std::vector<JoinHandle> waiters;
    for (int i = 0; i < 5; i++)
      waiters.push_back(spawn([&] {
        wg.wait();
        if (n != 100) early++;
      }));
    wg.wait();
    CHECK(n == 100);
    for (auto& w : waiters) w.join();
    CHECK(early == 0);
    CHECK_THROWS_AS(wg.done(), std::logic_error);
  });
}

TEST_CASE("RwMutex: readers share, writers exclude, writers are not starved", "[sync]") {
  run_with(2, [] {
    RwMutex rw;
    std::atomic<int> readers{0}, max_readers{0};
    std::atomic<bool> writer_in{false}, bad{false};
    long value = 0;
    std::vector<JoinHandle> hs;
    for (int r = 0; r < 8; r++)
      hs.push_back(spawn([&] {
        for (int i = 0; i < 500; i++) {
          rw.lock_shared();
          int now = ++readers;
          if (writer_in) bad = true;
          int prev = max_readers.load();
          while (now > prev && !max_readers.compare_exchange_weak(prev, now)) {}
          yield();
          readers--;
          rw.unlock_shared();
        }
      }));
    for (int w = 0; w < 2; w++)
      hs.push_back(spawn([&] {
        for (int i = 0; i < 200; i++) {
          rw.lock();
          writer_in = true;
          if (readers != 0) bad = true;
          value++;
          yield();
          writer_in = false;
          rw.unlock();
        }
      }));
    for (auto& h : hs) h.join();
    CHECK_FALSE(bad);
    CHECK(value == 400);
    // Whether readers overlapped here depends on scheduling (a waiting writer
    // holds new readers back); sharing itself is checked deterministically below.
    CHECK(max_readers >= 1);
    rw.lock_shared();
    bool second_reader = false;
    spawn([&] {
      second_reader = rw.try_lock_shared();
      if (second_reader) rw.unlock_shared();
    }).join();
    CHECK(second_reader);  // a reader gets in while another holds the lock
    rw.unlock_shared();
    CHECK(rw.try_lock());
    CHECK_FALSE(rw.try_lock_shared());
    rw.unlock();
    CHECK(rw.try_lock_shared());
    CHECK_FALSE(rw.try_lock());
    rw.unlock_shared();
  });
}

// A woken uthread may destroy the object it waited on as soon as it runs
// (wg.wait() then leaving the scope is the usual shape), so every waker must
// be done with the object before it readies anyone. Each round a uthread
// waits on a fresh object, is woken from this one, and deletes the object at
// once; on two kthreads it often runs before the waker has returned, and a
// waker that still touched the object would be a use-after-free (the ASan
// build reports it).
namespace {

// Returns the rounds whose waiter ran on the other kthread: the ones that test anything.
template <class Obj>
int destroy_when_woken(void (*hold)(Obj&), void (*wait)(Obj&), void (*wake)(Obj&)) {
  int elsewhere = 0;
  // 1,000 rounds, and more (up to 3 s) until 20 ran elsewhere: a loaded
  // machine may run both kthreads at once only now and then.
  const uint64_t give_up = slip::now_ns() + 3'000'000'000;
  for (int i = 0; i < 1000 || (elsewhere < 20 && slip::now_ns() < give_up); i++) {
    auto* o = new Obj();
    if (hold) hold(*o);
    std::atomic<bool> started{false};
    unsigned waiter_on = 0;
    auto h = spawn([&started, &waiter_on, o, wait] {
      started = true;
      wait(*o);
      waiter_on = kthread_index();
      delete o;
    });
    while (!started) yield();
    for (int k = 0; k < 3; k++) yield();  // mostly parked by now; either way it must end well
    wake(*o);
    const unsigned waker_on = kthread_index();
    h.join();
    elsewhere += waiter_on != waker_on;
  }
  return elsewhere;
}

struct HeldMutex { Mutex m; };
struct Flagged { Mutex m; CondVar cv; bool go = false; };
struct Rw { RwMutex rw; };

}  // namespace

TEST_CASE("a woken waiter may destroy the object at once", "[sync]") {
  // Both kthreads spin, so the other one takes a readied waiter at once, even
  // on a loaded machine where a parked kthread would wake too late.
  run_with(
      2,
      [] {
    int elsewhere = 0;
    elsewhere += destroy_when_woken<HeldMutex>([](HeldMutex& o) { o.m.lock(); },
                                  [](HeldMutex& o) {
                                    o.m.lock();
                                    o.m.unlock();
                                  },
                                  [](HeldMutex& o) { o.m.unlock(); });
    elsewhere += destroy_when_woken<Flagged>(nullptr,
                                [](Flagged& o) {
                                  o.m.lock();
                                  while (!o.go) o.cv.wait(o.m);
                                  o.m.unlock();
                                },
                                [](Flagged& o) {
                                  o.m.lock();
                                  o.go = true;
                                  o.m.unlock();
                                  o.cv.notify_all();
                                });
    elsewhere += destroy_when_woken<Semaphore>(nullptr, [](Semaphore& s) { s.acquire(); },
                                        [](Semaphore& s) { s.release(); });
    elsewhere += destroy_when_woken<WaitGroup>([](WaitGroup& wg) { wg.add(1); }, [](WaitGroup& wg) { wg.wait(); },
                                        [](WaitGroup& wg) { wg.done(); });
    elsewhere += destroy_when_woken<Rw>([](Rw& o) { o.rw.lock(); },
                           [](Rw& o) {
                             o.rw.lock_shared();
                             o.rw.unlock_shared();
                           },
                           [](Rw& o) { o.rw.unlock(); });
    CHECK(elsewhere > 0);
      },
      2);
}
