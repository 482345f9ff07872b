// Core allocation: DelayPolicy on crafted RuntimeViews (grants, the
// guarantee, max, best-effort runtimes giving way first), then the
// CoreAllocator on real regions: grant flags and eventfd wakes, a wake in
// flight kept apart from a park, a parked kthread's core freed, a sleeping
// runtime kicked when frames wait for it.
#include <catch2/catch.hpp>

#include <sys/eventfd.h>
#include <unistd.h>

#include <vector>

#include "iokernel/daemon/cores.h"
#include "iokernel/daemon/runtimes.h"
#include "tests/iokernel/attached_region.h"

using namespace slip::iok;

namespace {

constexpr uint64_t kUs = 1000;

RuntimeView view(bool be, uint32_t guaranteed, uint32_t max, uint32_t extra_granted, uint32_t extra_idle,
                 uint64_t delay_us) {
  RuntimeView v;
  v.best_effort = be;
  v.guaranteed = guaranteed;
  v.max = max;
  v.extra_granted = extra_granted;
  v.extra_idle = extra_idle;
  v.active = guaranteed + extra_granted;
  v.delay_ns = delay_us * kUs;
  v.threshold_ns = 10 * kUs;
  return v;
}

std::vector<int> decide(const std::vector<RuntimeView>& v, uint32_t capacity) {
  DelayPolicy p;
  Grants g;
  p.decide(v, capacity, g);
  return g.delta;
}

}  // namespace

TEST_CASE("a congested runtime gets one more kthread per pass, up to its max", "[iok-cores]") {
  CHECK(decide({view(false, 1, 2, 0, 1, 50)}, 4) == std::vector<int>{1});
  CHECK(decide({view(false, 1, 2, 0, 1, 5)}, 4) == std::vector<int>{0});   // under its threshold
  CHECK(decide({view(false, 1, 2, 1, 0, 50)}, 4) == std::vector<int>{0});  // at its max
  CHECK(decide({view(false, 1, 1, 0, 3, 50)}, 4) == std::vector<int>{0});  // max 1: only the guarantee
  CHECK(decide({view(false, 1, 4, 0, 0, 50)}, 4) == std::vector<int>{0});  // no kthread left to wake
  CHECK(decide({view(false, 1, 4, 1, 2, 50)}, 4) == std::vector<int>{1});  // one per pass
}

TEST_CASE("with no core free, best-effort runtimes give way to latency-critical ones", "[iok-cores]") {
  // Capacity 3: LC uses 1, BE uses 2 (1 extra). The congested LC takes BE's extra.
  CHECK(decide({view(false, 1, 2, 0, 1, 50), view(true, 1, 3, 1, 1, 0)}, 3) == std::vector<int>{1, -1});
  // Two LC runtimes: one never robs the other.
  CHECK(decide({view(false, 1, 2, 0, 1, 50), view(false, 1, 3, 1, 1, 0)}, 3) == std::vector<int>{0, 0});
  // The guarantee is never taken: a BE runtime with no extra kthread keeps its core.
  CHECK(decide({view(false, 1, 2, 0, 1, 50), view(true, 2, 3, 0, 1, 0)}, 3) == std::vector<int>{0, 0});
  // The least congested best-effort runtime gives first.
  CHECK(decide({view(false, 1, 2, 0, 1, 50), view(true, 1, 2, 1, 0, 8), view(true, 1, 2, 1, 0, 2)}, 5) ==
        std::vector<int>{1, 0, -1});
}

TEST_CASE("latency-critical runtimes are served first; best-effort ones rob only the idle", "[iok-cores]") {
  // One core free, both congested, BE more so: LC gets it.
  CHECK(decide({view(true, 1, 2, 0, 1, 500), view(false, 1, 2, 0, 1, 20)}, 3) == std::vector<int>{0, 1});
  // A congested BE runtime takes from a BE runtime that is not congested, never from a congested one.
  CHECK(decide({view(true, 1, 2, 0, 1, 50), view(true, 1, 2, 1, 0, 0)}, 3) == std::vector<int>{1, -1});
  CHECK(decide({view(true, 1, 2, 0, 1, 50), view(true, 1, 2, 1, 0, 40)}, 3) == std::vector<int>{0, 0});
}

TEST_CASE("over capacity, best-effort extras are revoked first; guaranteed cores stay", "[iok-cores]") {
  // Guaranteed kthreads woke up: 1 + 1 + 2 = 4 in use on 3 cores.
  CHECK(decide({view(false, 1, 2, 0, 1, 0), view(true, 1, 3, 2, 0, 0)}, 3) == std::vector<int>{0, -1});
  // Only guaranteed cores: nothing to revoke.
  CHECK(decide({view(false, 2, 2, 0, 0, 50), view(true, 2, 2, 0, 0, 50)}, 3) == std::vector<int>{0, 0});
}

namespace {

struct Runtime {
  RuntimeTable t;
  RuntimeEntry* e = nullptr;
  explicit Runtime(uint32_t kthreads, uint16_t max, uint16_t guaranteed = 1) {
    Attached a = test::make_attached(kthreads, 0xC6120002);
    a.msg.guaranteed_cores = guaranteed;
    a.msg.max_cores = max;
    a.msg.delay_threshold_us = 10;
    for (uint32_t k = 0; k < kthreads; k++) a.eventfds.push_back(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    e = &t.add(std::move(a), Fd{}, {}, 0);
    for (uint32_t k = 0; k < kthreads; k++) set_state(k, KthreadState::kActive);
  }
  KthreadShm& shm(uint32_t k) { return e->kthread(k); }
  void set_state(uint32_t k, KthreadState s) { shm(k).state.store(static_cast<uint32_t>(s)); }
  void park(uint32_t k) {
    shm(k).parks.fetch_add(1);
    set_state(k, KthreadState::kParked);
  }
  uint64_t kicks(uint32_t k) {  // eventfd writes since the last look
    eventfd_t v = 0;
    return eventfd_read(e->attached.eventfds[k], &v) == 0 ? v : 0;
  }
};

}  // namespace

TEST_CASE("the allocator grants through the region and the eventfd, and frees parked cores", "[iok-cores]") {
  Runtime r(2, 2);
  CoreAllocator alloc(std::make_unique<DelayPolicy>(), 2);
  uint64_t now = 1'000'000'000;
  alloc.run(r.t, now);
  CHECK(r.shm(0).grant.load() == 1);  // the guarantee, at once
  CHECK(r.shm(1).grant.load() == 0);
  CHECK(r.e->core_counters.granted == 1);
  CHECK(r.kicks(1) == 0);

  SECTION("congestion from the run queue wakes the second kthread") {
    r.shm(0).oldest_ready_ns.store(now - 50 * kUs);
    r.park(1);  // it parked when the runtime attached the arbiter
    alloc.run(r.t, now += 5 * kUs);
    CHECK(r.shm(1).grant.load() == 1);
    CHECK(r.shm(1).grant_seq.load() == 1);
    CHECK(r.shm(1).grant_ns.load() == now);
    CHECK(r.kicks(1) == 1);
    CHECK(r.e->core_counters.grants == 1);
    CHECK(r.e->core_counters.granted == 2);
    CHECK(alloc.in_use() == 2);

    // Still parked but not parked again since the grant: a wake in flight, kept.
    alloc.run(r.t, now += 5 * kUs);
    CHECK(r.shm(1).grant.load() == 1);
    CHECK(r.e->core_counters.granted == 2);

    // It ran, found no more work and parked: its core is free.
    r.shm(0).oldest_ready_ns.store(0);
    r.set_state(1, KthreadState::kActive);
    r.park(1);
    alloc.run(r.t, now += 5 * kUs);
    CHECK(r.shm(1).grant.load() == 0);
    CHECK(r.e->core_counters.yields == 1);
    CHECK(r.e->core_counters.granted == 1);
    CHECK(r.kicks(1) == 0);
  }
  SECTION("frames waiting in an rx ring count as delay") {
    PktDesc d{};
    d.stamp_ns = now - 30 * kUs;
    REQUIRE(r.e->ring(0, Ring::kRx).push(&d, 1) == 1);
    alloc.run(r.t, now += 5 * kUs);
    CHECK(r.e->core_counters.delay_ns == 35 * kUs);
    CHECK(r.shm(1).grant.load() == 1);
  }
  SECTION("a parked guaranteed kthread keeps its grant and is kicked when frames wait") {
    r.park(0);
    r.park(1);
    alloc.run(r.t, now += 5 * kUs);
    CHECK(r.shm(0).grant.load() == 1);
    CHECK(alloc.in_use() == 0);
    PktDesc d{};
    d.stamp_ns = now;  // fresh: no congestion yet
    REQUIRE(r.e->ring(0, Ring::kRx).push(&d, 1) == 1);
    alloc.run(r.t, now += 1 * kUs);
    CHECK(r.kicks(0) == 1);
    alloc.run(r.t, now += 1 * kUs);
    CHECK(r.kicks(0) == 0);  // once per park
    CHECK(r.e->core_counters.kicks == 1);
  }
}

TEST_CASE("the allocator never grants past max or capacity", "[iok-cores]") {
  // {kthreads, max, capacity} -> kthreads granted after five congested passes.
  struct Case {
    uint32_t kthreads;
    uint16_t max;
    uint32_t capacity, granted;
  };
  for (const Case c : {Case{3, 1, 4, 1}, Case{3, 3, 2, 2}, Case{3, 3, 4, 3}}) {
    Runtime r(c.kthreads, c.max);
    CoreAllocator alloc(std::make_unique<DelayPolicy>(), c.capacity);
    r.shm(0).oldest_ready_ns.store(1);
    for (int i = 0; i < 5; i++) alloc.run(r.t, 1'000'000'000 + i * 5 * kUs);
    uint32_t granted = 0;
    for (uint32_t k = 0; k < c.kthreads; k++) granted += r.shm(k).grant.load();
    CHECK(granted == c.granted);
    CHECK(r.e->core_counters.granted == c.granted);
  }
}

TEST_CASE("with --cpus each grant names a CPU no running kthread has", "[iok-cores]") {
  Runtime r(3, 3);
  CoreAllocator alloc(std::make_unique<DelayPolicy>(), 3, {4, 6, 7});
  uint64_t now = 1'000'000'000;
  alloc.run(r.t, now);
  CHECK(r.shm(0).grant_cpu.load() == 4 + 1);  // the guarantee, on the first CPU
  CHECK(r.shm(1).grant_cpu.load() == 0);     // no grant, no CPU

  r.shm(0).oldest_ready_ns.store(now - 50 * kUs);
  r.park(1);
  r.park(2);
  alloc.run(r.t, now += 5 * kUs);
  alloc.run(r.t, now += 5 * kUs);
  REQUIRE(r.shm(1).grant.load() == 1);
  REQUIRE(r.shm(2).grant.load() == 1);
  // Kthread 0 runs on 4; the two woken ones get the two other CPUs, not 4.
  CHECK(r.shm(1).grant_cpu.load() == 6 + 1);
  CHECK(r.shm(2).grant_cpu.load() == 7 + 1);

  // Kthread 1 runs, parks (its core is free again), and is granted anew
  // while 6 and 7 are both idle: it gets 6 again.
  r.set_state(1, KthreadState::kActive);
  r.park(1);
  r.set_state(2, KthreadState::kActive);
  r.park(2);
  r.shm(0).oldest_ready_ns.store(0);
  alloc.run(r.t, now += 5 * kUs);
  REQUIRE(r.shm(1).grant.load() == 0);
  REQUIRE(r.shm(2).grant.load() == 0);
  r.shm(0).oldest_ready_ns.store(now - 50 * kUs);
  alloc.run(r.t, now += 5 * kUs);
  REQUIRE(r.shm(1).grant.load() == 1);
  CHECK(r.shm(1).grant_cpu.load() == 6 + 1);
  CHECK(r.shm(1).grant_seq.load() == 2);
}
