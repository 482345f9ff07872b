// Pollers: kthreads poll registered work sources while idle and while busy.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "rt_test_util.h"
#include "slip/runtime/poll.h"
#include "slip/runtime/sync.h"

using namespace slip::rt;
using slip::rt::test::run_with;
using namespace std::chrono_literals;

namespace {
// Stands in for a NIC queue: "packets" posted from anywhere, handled by the
// kthread that polls, which wakes the uthread waiting for them.
struct FakeQueue : Poller {
  std::atomic<int> pending{0};
  std::atomic<uint64_t> polls{0};
  Semaphore delivered;
  uint64_t max_park = UINT64_MAX;
  unsigned poll(unsigned) noexcept override {
    polls++;
    int n = pending.exchange(0);
    if (n > 0) delivered.release(static_cast<uint64_t>(n));
    return static_cast<unsigned>(n);
  }
  uint64_t max_park_ns() const noexcept override { return max_park; }
};
}  // namespace

TEST_CASE("add_poller outside a runtime is a clear error", "[poll]") {
  FakeQueue q;
  CHECK_THROWS_WITH(add_poller(&q), Catch::Contains("no runtime is running"));
}

TEST_CASE("an idle kthread polls and delivers to a parked uthread", "[poll]") {
  run_with(2, [] {
    FakeQueue q;
    q.max_park = 200'000;  // 200 us: no interrupts, so parks are bounded
    add_poller(&q);
    std::thread poster([&] {
      for (int i = 0; i < 100; i++) {
        q.pending++;
        std::this_thread::sleep_for(100us);
      }
    });
    for (int i = 0; i < 100; i++) q.delivered.acquire();
    poster.join();
    remove_poller(&q);
    const uint64_t after = q.polls;
    sleep_for(5ms);
    CHECK(q.polls == after);  // removed: no more calls
  });
}

TEST_CASE("busy kthreads still poll between uthread switches", "[poll]") {
  run_with(1, [] {
    FakeQueue q;
    add_poller(&q);
    std::atomic<bool> stop{false};
    auto spinner = spawn([&] {
      while (!stop) yield();
    });
    const uint64_t before = q.polls;
    for (unsigned i = 0; i < 10 * kPollEverySwitches; i++) yield();
    CHECK(q.polls - before >= 5);
    stop = true;
    spinner.join();
    remove_poller(&q);
  });
}

TEST_CASE("a poller's max_park_ns bounds how long kthreads park", "[poll]") {
  run_with(1, [] {
    FakeQueue q;
    q.max_park = 1'000'000;
    add_poller(&q);
    const uint64_t before = q.polls;
    sleep_for(50ms);
    CHECK(q.polls - before >= 10);  // about 50 expected; an unbounded park gives 1-2
    remove_poller(&q);
  });
}
