// The per-core dataplane on the test wire: two hosts with two queues each on
// a 2-kthread runtime (tests/net/percore_check.h), and the counter that
// catches a stack-wide lock on the receive path, shown to count one.
#include <catch2/catch.hpp>

#include "slip/net/stack.h"
#include "slip/net/wire.h"
#include "slip/runtime/runtime.h"
#include "tests/net/percore_check.h"
#include "tests/net/stack/stack_test_util.h"

using namespace slip::net;
using namespace slip::net::test;
namespace rt = slip::rt;

TEST_CASE("per-core: two queues run on their own kthreads, in parallel, with no stack-wide lock", "[percore]") {
  rt::Config rc;
  rc.kthreads = 2;
  rc.spinning_kthreads = 2;  // both busy, as under load
  rc.pin_kthreads = false;
  rt::run(rc, [] {
    TestWire wire(kMacA, kMacB, {}, false, 8192, 1500, 2);
    auto a = make_slip_stack(wire.end_a(), config(kIpA));
    auto b = make_slip_stack(wire.end_b(), config(kIpB));
    check_percore(*a, *b, kIpB);
    CHECK(wire.stats().oversize == 0);
  });
}

TEST_CASE("per-core: the receive path's stack-wide lock counter counts an ARP resolution it had to make",
          "[percore]") {
  // A knows B statically and never asks; B has not heard of A when A's SYN
  // comes, so its SYN-ACK waits on ARP, from the receive path.
  with_hosts({}, [](Stack& a, Stack& b, TestWire&) {
    auto l = b.tcp_listen(7);
    REQUIRE(l);
    auto server = rt::spawn([&] {
      auto c = (*l)->accept(deadline_in(5'000'000'000));
      REQUIRE(c);
      (*c)->close();
    });
    auto c = a.tcp_dial({kIpB, 7}, deadline_in(5'000'000'000));
    REQUIRE(c);
    server.join();
    NetCounters ca, cb;
    a.counters(ca);
    b.counters(cb);
    CHECK(ca.rx_stack_locks == 0);
    CHECK(cb.rx_stack_locks >= 1);
  }, [](StackConfig& c) {
    c.gratuitous_arp = false;
    if (c.ip == kIpA) c.static_arp = {{kIpB, kMacB}};
  });
}
