// The scheduler under a core arbiter (slip/runtime/cores.h), with a fake
// arbiter in the test: kthreads beyond the guarantee run only while granted,
// give their core back when idle and wait for a newer grant, hand their work
// and their timers over when revoked, and report a backlog as congestion.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "rt_test_util.h"
#include "slip/runtime/cores.h"
#include "slip/runtime/time.h"

using namespace slip::rt;
using namespace std::chrono_literals;

namespace {

// Grants in atomics; park() sleeps in short steps until something moves.
class FakeArbiter final : public CoreArbiter {
 public:
  std::atomic<bool> grant[2] = {true, false};
  std::atomic<uint32_t> seq[2] = {0, 0};
  std::atomic<uint32_t> parks[2] = {0, 0};
  std::atomic<bool> parked[2] = {false, false};
  std::atomic<uint64_t> ready_since{0};
  std::atomic<uint32_t> kicks[2] = {0, 0};

  void give(unsigned k, bool on) {
    grant[k] = on;
    if (on) seq[k]++;
  }
  unsigned guaranteed() const noexcept override { return 1; }
  bool granted(unsigned k) const noexcept override { return grant[k]; }
  uint32_t grant_seq(unsigned k) const noexcept override { return seq[k]; }
  void park(unsigned k, const std::atomic<uint32_t>& wake, uint32_t seen, uint32_t grant_seen, uint64_t timeout_ns,
            bool) noexcept override {
    parks[k]++;
    parked[k] = true;
    const uint64_t end = timeout_ns == UINT64_MAX ? UINT64_MAX : slip::now_ns() + timeout_ns;
    const uint32_t k0 = kicks[k];
    while (wake.load() == seen && seq[k] == grant_seen && kicks[k] == k0 && slip::now_ns() < end)
      std::this_thread::sleep_for(20us);
    parked[k] = false;
  }
  void unpark(unsigned k) noexcept override { kicks[k]++; }
  void report_ready(unsigned k, uint64_t since_ns) noexcept override {
    if (k == 0 && since_ns != 0) ready_since = since_ns;
  }
};

std::pair<int, int> spread(int tasks) { return test::ran_on_each(tasks); }

bool eventually(const std::function<bool()>& f) {
  for (int i = 0; i < 2000; i++) {
    if (f()) return true;
    sleep_for(1ms);
  }
  return false;
}

}  // namespace

TEST_CASE("an arbiter's grants decide where uthreads run", "[cores]") {
  FakeArbiter a;
  test::run_with(2, [&] {
    set_core_arbiter(&a);
    CHECK(core_arbiter() == &a);
    REQUIRE(eventually([&] { return a.parked[1].load(); }));  // not granted: it parks at once
    sleep_for(1ms);  // this uthread leaves kthread 1 if it was there
    auto [on0, on1] = spread(16);
    CHECK(on0 == 16);
    CHECK(on1 == 0);
    CHECK(a.ready_since != 0);  // a backlog on kthread 0 was reported

    const uint32_t at_grant = a.parks[1];
    // A kthread that wakes to its grant after the round's work is done gives
    // the core back as idle and waits for a newer grant (on a loaded machine
    // it may wake that late), so each round that missed it grants again, as
    // an IOKernel does while the backlog lasts.
    int other = 0;
    for (int round = 0; round < 50 && other == 0; round++) {
      a.give(1, true);
      other = spread(16).second;
    }
    CHECK(other > 0);

    // Idle, it gives the core back and waits for a newer grant, though the old one stands.
    REQUIRE(eventually([&] { return a.parks[1] > at_grant && a.parked[1].load(); }));
    CHECK(a.grant[1]);
    sleep_for(1ms);
    const uint32_t parks = a.parks[1];
    a.unpark(1);  // a spurious wake runs nothing
    std::this_thread::sleep_for(2ms);
    CHECK(a.parked[1]);
    CHECK(a.parks[1] <= parks + 1);

    set_core_arbiter(nullptr);  // both run again
    CHECK(core_arbiter() == nullptr);
    other = 0;
    for (int round = 0; round < 50 && other == 0; round++) other = spread(16).second;
    CHECK(other > 0);
  });
}

TEST_CASE("a revoked kthread hands over its queue and its timers", "[cores]") {
  FakeArbiter a;
  a.give(1, true);
  test::run_with(2, [&] {
    set_core_arbiter(&a);
    // Sleepers armed on whichever kthread runs them; kthread 1 is revoked
    // while they sleep, and every one of them still wakes.
    std::atomic<int> woke{0};
    std::vector<JoinHandle> hs;
    for (int i = 0; i < 16; i++)
      hs.push_back(spawn([&] {
        sleep_for(5ms);
        woke++;
      }));
    std::this_thread::sleep_for(1ms);
    a.give(1, false);
    for (auto& h : hs) h.join();
    CHECK(woke == 16);
    set_core_arbiter(nullptr);
  });
}
