// The per-core dataplane on real DPDK ports in direct mode: two net_ring
// ports joined back to back by four rings, two queues each (queue q of one
// port feeds queue q of the other, as memif's do), a slip stack on each,
// on a 2-kthread runtime; tests/net/percore_check.h says what must hold.
#include <catch2/catch.hpp>

#include "slip_rte.h"
#include "slip/net/stack.h"
#include "slip/runtime/runtime.h"
#include "tests/net/dpdk/dpdk_test_util.h"
#include "tests/net/percore_check.h"
#include "tests/net/stack/stack_test_util.h"

namespace slip::net {
namespace {

// A pair of ports over rings: A sends on a2b[q], B receives on it, and back.
struct RingPair {
  uint16_t a = 0, b = 0;
  RingPair() {
    rte_ring* r[4];
    for (int i = 0; i < 4; i++) {
      r[i] = rte_ring_create(("slip-pc-" + std::to_string(i)).c_str(), 1024, SOCKET_ID_ANY,
                             RING_F_SP_ENQ | RING_F_SC_DEQ);
      REQUIRE(r[i]);
    }
    rte_ring* a2b[2] = {r[0], r[1]};
    rte_ring* b2a[2] = {r[2], r[3]};
    const int pa = rte_eth_from_rings("slip_pc_a", b2a, 2, a2b, 2, SOCKET_ID_ANY);
    const int pb = rte_eth_from_rings("slip_pc_b", a2b, 2, b2a, 2, SOCKET_ID_ANY);
    REQUIRE(pa >= 0);
    REQUIRE(pb >= 0);
    a = static_cast<uint16_t>(pa);
    b = static_cast<uint16_t>(pb);
  }
};

DpdkPortConfig two_queues(uint16_t port_id) {
  DpdkPortConfig c;
  c.port_id = port_id;
  c.rx_queues = c.tx_queues = 2;
  c.rx_desc = c.tx_desc = 256;
  c.pool_bufs = 2048;
  c.send_pool_bufs = 2048;
  return c;
}

}  // namespace

TEST_CASE("per-core on DPDK ring ports: two queues each, run in parallel by their own kthreads", "[dpdk][ring]") {
  if (!dpdk_test::start_eal("ring", "net_ring0")) return;
  RingPair pair;
  DpdkPort pa(two_queues(pair.a)), pb(two_queues(pair.b));
  REQUIRE(pa.caps().rx_queues == 2);
  REQUIRE(pb.caps().rx_queues == 2);
  rt::Config rc;
  rc.kthreads = 2;
  rc.spinning_kthreads = 2;
  rc.pin_kthreads = false;
  rt::run(rc, [&] {
    auto a = make_slip_stack(pa, test::config(test::kIpA));
    auto b = make_slip_stack(pb, test::config(test::kIpB));
    test::check_percore(*a, *b, test::kIpB);
  });
}

}  // namespace slip::net
