// DPDK backend on net_ring0, whose tx ring is its rx ring: every frame sent
// comes back on rx_burst, so the whole PacketBuf <-> mbuf path is checked in
// one process without privileges.
#include <catch2/catch.hpp>

#include <thread>

#include "net/dpdk/mbuf_buf.h"
#include "slip_rte.h"
#include "tests/net/dpdk/dpdk_test_util.h"

namespace slip::net {
namespace {

using dpdk_test::get16;
using dpdk_test::put16;

constexpr uint16_t kTestEtherType = 0x88b5;  // IEEE local experimental

bool start() { return dpdk_test::start_eal("ring", "net_ring0"); }

// One port for the process: closing a vdev port removes it until EAL restarts.
DpdkPort& ring_port() {
  static DpdkPort port([] {
    DpdkPortConfig cfg;
    cfg.name = "net_ring0";
    cfg.pool_bufs = 4096;
    cfg.mtu = 9000;  // net_ring takes any: its buffers are then sized for jumbo frames
    return cfg;
  }());
  return port;
}

// Frame i: broadcast, EtherType 0x88b5, then seq and a byte pattern.
size_t frame_len(uint32_t i) { return 60 + (i * 37) % 1455; }

void fill_frame(PacketBuf* b, uint32_t i) {
  const size_t n = frame_len(i);
  uint8_t* p = b->append(n);
  REQUIRE(p);
  std::memset(p, 0xff, 6);
  std::memset(p + 6, 0x02, 6);
  put16(p + 12, kTestEtherType);
  put16(p + 14, static_cast<uint16_t>(i));
  for (size_t k = 16; k < n; k++) p[k] = static_cast<uint8_t>(i + k);
}

bool frame_ok(const PacketBuf* b, uint32_t i) {
  if (b->chain_len() != frame_len(i) || b->next) return false;
  const uint8_t* p = b->data;
  if (get16(p + 12) != kTestEtherType || get16(p + 14) != static_cast<uint16_t>(i)) return false;
  for (size_t k = 16; k < b->len; k++)
    if (p[k] != static_cast<uint8_t>(i + k)) return false;
  return true;
}

// Receives until `want` frames arrived or a second passed.
std::vector<PacketBuf*> drain(DpdkPort& port, size_t want) {
  std::vector<PacketBuf*> got;
  PacketBuf* bufs[kBurst];
  for (int spins = 0; got.size() < want && spins < 100000; spins++) {
    const uint16_t n = port.rx_burst(0, bufs, kBurst);
    got.insert(got.end(), bufs, bufs + n);
    if (n == 0) std::this_thread::yield();
  }
  return got;
}

TEST_CASE("eal_init runs once per process and rejects other arguments", "[dpdk][ring]") {
  if (!start()) return;
  CHECK(eal_initialized());
  CHECK_NOTHROW(eal_init(eal_args_for_test("net_ring0", dpdk_test::file_prefix("ring"))));
  try {
    eal_init(eal_args_for_test("net_ring1", "other"));
    FAIL("a second eal_init with other arguments did not throw");
  } catch (const std::runtime_error& e) {
    CHECK_THAT(e.what(), Catch::Matchers::Contains("once per process"));
  }
  // The main thread is the EAL main lcore; a std::thread gets an id and gives it back.
  CHECK_NOTHROW(register_thread());
  unsigned seen = LCORE_ID_ANY;
  std::thread t([&] {
    register_thread();
    register_thread();  // no-op the second time
    seen = rte_lcore_id();
    unregister_thread();
  });
  t.join();
  CHECK(seen != LCORE_ID_ANY);
}

TEST_CASE("an unknown port name lists the ports that exist", "[dpdk][ring]") {
  if (!start()) return;
  DpdkPortConfig cfg;
  cfg.name = "net_nosuch0";
  try {
    DpdkPort port(cfg);
    FAIL("no error for a port that does not exist");
  } catch (const std::runtime_error& e) {
    CHECK_THAT(e.what(), Catch::Matchers::Contains("net_nosuch0") && Catch::Matchers::Contains("net_ring0") &&
                             Catch::Matchers::Contains("--vdev"));
  }
  // Checked before the port is touched, so net_ring0 stays usable.
  cfg.name = "net_ring0";
  cfg.pool_bufs = 100;
  CHECK_THROWS_WITH(DpdkPort(cfg), Catch::Matchers::Contains("raise pool_bufs"));
  cfg.rx_queues = 0;
  CHECK_THROWS_WITH(DpdkPort(cfg), Catch::Matchers::Contains("lower rx_queues"));
  cfg.rx_queues = 1;
  cfg.mtu = 20;  // below IPv4's 68 (RTE_ETHER_MIN_MTU)
  CHECK_THROWS_WITH(DpdkPort(cfg), Catch::Matchers::Contains("is outside what the PMD takes"));
  CHECK(ring_port().name() == "net_ring0");
  cfg = DpdkPortConfig{};
  cfg.name = "net_ring0";
  CHECK_THROWS_WITH(DpdkPort(cfg), Catch::Matchers::Contains("already open"));
  CHECK(ring_port().pool().available() == ring_port().pool().size());
}

TEST_CASE("a port without receive interrupts says why and is polled", "[dpdk][ring]") {
  if (!start()) return;
  DpdkPort& port = ring_port();
  CHECK(port.rx_wait_fd() == -1);
  CHECK_THAT(port.rx_interrupts_off_reason(), Catch::Matchers::Contains("the PMD has none"));
  port.rx_arm(true);  // harmless without them
  port.rx_arm(false);
}

TEST_CASE("net_ring loops 1000 frames back intact and the pool refills", "[dpdk][ring]") {
  if (!start()) return;
  DpdkPort& port = ring_port();
  const size_t full = port.pool().available();
  CHECK(full == 4096);
  CHECK(port.caps().mtu >= 1500);
  const DpdkStats before = port.stats();

  uint32_t sent = 0, received = 0;
  while (sent < 1000) {
    PacketBuf* out[kBurst];
    uint16_t n = 0;
    for (; n < kBurst && sent + n < 1000; n++) {
      out[n] = port.alloc_tx();
      REQUIRE(out[n]);
      fill_frame(out[n], sent + n);
    }
    REQUIRE(port.tx_burst(0, out, n) == n);
    sent += n;
    for (PacketBuf* b : drain(port, n)) {
      CHECK(frame_ok(b, received));
      CHECK(b->refs.load() == 1);
      CHECK(b->rx_queue == 0);
      received++;
      BufPool::release(b);
    }
  }
  CHECK(received == 1000);
  CHECK(port.pool().available() == full);
  const DpdkStats st = port.stats();
  CHECK(st.tx_packets - before.tx_packets == 1000);
  CHECK(st.rx_packets - before.rx_packets == 1000);
}

TEST_CASE("a port set to MTU 9000 reports it and carries a jumbo frame in one buffer", "[dpdk][ring]") {
  if (!start()) return;
  DpdkPort& port = ring_port();
  CHECK(port.caps().mtu == 9000);
  constexpr size_t kFrame = 9000 + 14;
  PacketBuf* out = port.alloc_tx();
  REQUIRE(out);
  uint8_t* p = out->append(kFrame);
  REQUIRE(p);  // one buffer holds the whole frame
  std::memset(p, 0xff, 6);
  std::memset(p + 6, 0x02, 6);
  put16(p + 12, kTestEtherType);
  for (size_t k = 14; k < kFrame; k++) p[k] = static_cast<uint8_t>(k * 7);
  REQUIRE(port.tx_burst(0, &out, 1) == 1);
  std::vector<PacketBuf*> got = drain(port, 1);
  REQUIRE(got.size() == 1);
  PacketBuf* b = got[0];
  CHECK(b->next == nullptr);
  REQUIRE(b->len == kFrame);
  bool same = true;
  for (size_t k = 14; k < kFrame; k++) same = same && b->data[k] == static_cast<uint8_t>(k * 7);
  CHECK(same);
  BufPool::release(b);
}

TEST_CASE("chains, shared and heap buffers survive the ring without leaks", "[dpdk][ring]") {
  if (!start()) return;
  DpdkPort& port = ring_port();
  BufPool& pool = port.pool();
  const size_t full = pool.available();

  // A two-segment chain arrives as the same two-segment chain.
  PacketBuf* a = port.alloc_tx();
  PacketBuf* b = port.alloc_tx();
  fill_frame(a, 7);
  std::memset(b->append(100), 0xab, 100);
  a->next = b;
  PacketBuf* one[1] = {a};
  REQUIRE(port.tx_burst(0, one, 1) == 1);
  auto got = drain(port, 1);
  REQUIRE(got.size() == 1);
  REQUIRE(got[0]->next);
  CHECK(got[0]->chain_len() == frame_len(7) + 100);
  CHECK(got[0]->next->len == 100);
  CHECK(got[0]->next->data[99] == 0xab);
  BufPool::release(got[0]);
  CHECK(pool.available() == full);

  // A buffer the sender still references (a TCP retransmission copy) comes
  // back as a copy; the sender's reference stays valid until it releases it.
  PacketBuf* kept = port.alloc_tx();
  fill_frame(kept, 9);
  kept->ref();
  one[0] = kept;
  REQUIRE(port.tx_burst(0, one, 1) == 1);
  got = drain(port, 1);
  REQUIRE(got.size() == 1);
  CHECK(got[0] != kept);
  CHECK(frame_ok(got[0], 9));
  CHECK(frame_ok(kept, 9));
  CHECK(kept->refs.load() == 1);
  BufPool::release(got[0]);
  BufPool::release(kept);
  CHECK(pool.available() == full);

  // A heap-pool packet is copied into the port's pool.
  auto heap = BufPool::heap("ringheap", 4);
  PacketBuf* h = heap->alloc();
  fill_frame(h, 11);
  one[0] = h;
  REQUIRE(port.tx_burst(0, one, 1) == 1);
  CHECK(heap->available() == 4);
  got = drain(port, 1);
  REQUIRE(got.size() == 1);
  CHECK(frame_ok(got[0], 11));
  BufPool::release(got[0]);
  CHECK(pool.available() == full);
}

TEST_CASE("a full ring takes what fits and the caller keeps the rest", "[dpdk][ring]") {
  if (!start()) return;
  DpdkPort& port = ring_port();
  BufPool& pool = port.pool();
  const size_t full = pool.available();
  constexpr uint16_t kSend = 1100;  // net_ring's rings hold 1023
  std::vector<PacketBuf*> out(kSend);
  for (uint16_t i = 0; i < kSend; i++) {
    out[i] = port.alloc_tx();
    REQUIRE(out[i]);
    fill_frame(out[i], i);
    if (i % 3 == 0) out[i]->ref();  // some still referenced by their sender
  }
  const uint16_t took = port.tx_burst(0, out.data(), kSend);
  CHECK(took > 0);
  CHECK(took < kSend);
  for (uint16_t i = took; i < kSend; i++) {  // the caller's again, refs as before
    CHECK(out[i]->refs.load() == (i % 3 == 0 ? 2 : 1));
    CHECK(frame_ok(out[i], i));
  }
  auto got = drain(port, took);
  CHECK(got.size() == took);
  for (size_t i = 0; i < got.size(); i++) {
    CHECK(frame_ok(got[i], static_cast<uint32_t>(i)));
    BufPool::release(got[i]);
  }
  for (uint16_t i = 0; i < kSend; i++) {
    if (i % 3 == 0) BufPool::release(out[i]);  // the sender's kept reference
    if (i >= took) BufPool::release(out[i]);   // the one tx_burst did not take
  }
  CHECK(pool.available() == full);
}

TEST_CASE("offload flags map onto mbuf fields and back", "[dpdk][ring]") {
  if (!start()) return;
  auto pool = make_dpdk_pool("offloadpool", 64);
  PacketBuf* b = pool->alloc();
  REQUIRE(b);
  CHECK(b->headroom() == BufPool::kHeadroom);
  CHECK(from_mbuf(static_cast<rte_mbuf*>(b->mbuf)) == b);
  CHECK(mempool_of(*pool) == static_cast<rte_mbuf*>(b->mbuf)->pool);
  b->append(60);
  b->offload_flags = PacketBuf::kTxIpCsum | PacketBuf::kTxUdpCsum;
  b->l2_len = 14;
  b->l3_len = 20;
  b->l4_len = 8;
  to_mbuf(b);
  auto* m = static_cast<rte_mbuf*>(b->mbuf);
  CHECK(m->data_len == 60);
  CHECK(m->pkt_len == 60);
  CHECK(m->nb_segs == 1);
  CHECK(m->data_off == RTE_PKTMBUF_HEADROOM);
  CHECK((m->ol_flags & RTE_MBUF_F_TX_IP_CKSUM));
  CHECK((m->ol_flags & RTE_MBUF_F_TX_IPV4));
  CHECK((m->ol_flags & RTE_MBUF_F_TX_L4_MASK) == RTE_MBUF_F_TX_UDP_CKSUM);
  CHECK((m->l2_len == 14 && m->l3_len == 20 && m->l4_len == 8));

  m->ol_flags = RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_BAD;
  m->data_off = RTE_PKTMBUF_HEADROOM + 2;
  m->data_len = 40;
  PacketBuf* r = wrap_rx_mbuf(m, 3);
  REQUIRE(r == b);
  CHECK(r->offload_flags == (PacketBuf::kRxIpCsumGood | PacketBuf::kRxL4CsumBad));
  CHECK(r->len == 40);
  CHECK(r->headroom() == BufPool::kHeadroom + 2);
  CHECK(r->rx_queue == 3);
  BufPool::release(r);
  CHECK(pool->available() == 64);
}

}  // namespace
}  // namespace slip::net

namespace slip::net {

TEST_CASE("threads that burst get an lcore id and give it back when they exit", "[dpdk][ring]") {
  if (!start()) return;
  DpdkPort& port = ring_port();
  // More threads than RTE_MAX_LCORE: without the give-back the ids run out.
  for (int t = 0; t < RTE_MAX_LCORE + 32; t++) {
    unsigned id_before = 0, id_after = 0;
    bool echoed = false;
    std::thread th([&] {
      id_before = rte_lcore_id();
      PacketBuf* b = port.alloc_tx();
      if (!b) return;
      fill_frame(b, static_cast<uint32_t>(t));
      if (port.tx_burst(0, &b, 1) != 1) BufPool::release(b);
      id_after = rte_lcore_id();
      auto got = drain(port, 1);
      echoed = got.size() == 1 && frame_ok(got[0], static_cast<uint32_t>(t));
      for (PacketBuf* g : got) BufPool::release(g);
    });
    th.join();
    REQUIRE(id_before == LCORE_ID_ANY);
    REQUIRE(id_after != LCORE_ID_ANY);
    REQUIRE(echoed);
  }
}

}  // namespace slip::net
