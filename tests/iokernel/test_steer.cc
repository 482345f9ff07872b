// Steering without DPDK: crafted frames classified and steered onto two
// runtimes' active kthreads, drops counted by reason, and who may return
// which rx buffer.
#include <catch2/catch.hpp>

#include <cstring>
#include <set>
#include <vector>

#include "iokernel/daemon/runtimes.h"
#include "iokernel/daemon/steer.h"
#include "tests/iokernel/attached_region.h"

using namespace slip::iok;
using slip::iok::test::make_attached;

namespace {

constexpr uint32_t kIpA = 0xc6120002, kIpB = 0xc6120003, kIpNone = 0xc6120009, kPeer = 0xc6120001;  // 198.18.0.x

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}

// Ethernet + IPv4 (20 bytes) + 8 bytes of L4 (ports first), 60 bytes.
std::vector<uint8_t> ipv4(uint32_t src, uint32_t dst, uint8_t proto, uint16_t sport, uint16_t dport,
                          uint16_t frag = 0, bool bcast_mac = false) {
  std::vector<uint8_t> f(60, 0);
  std::memset(f.data(), bcast_mac ? 0xff : 0x02, 6);
  put16(&f[12], 0x0800);
  f[14] = 0x45;
  put16(&f[20], frag);
  f[23] = proto;
  put32(&f[26], src);
  put32(&f[30], dst);
  put16(&f[34], sport);
  put16(&f[36], dport);
  return f;
}

std::vector<uint8_t> arp(uint32_t sender, uint32_t target) {
  std::vector<uint8_t> f(60, 0);
  std::memset(f.data(), 0xff, 6);
  put16(&f[12], 0x0806);
  put32(&f[14 + 14], sender);
  put32(&f[14 + 24], target);
  return f;
}

RxTarget steer(const RouteTable& r, const std::vector<uint8_t>& f, DropCounters& d, size_t len = 0) {
  return steer_rx(r, f.data(), static_cast<uint32_t>(len ? len : f.size()), d);
}

void set_state(RuntimeEntry& e, uint32_t k, KthreadState s) {
  e.kthread(k).state.store(static_cast<uint32_t>(s), std::memory_order_relaxed);
}

}  // namespace

TEST_CASE("frames are classified by their headers", "[iok-steer]") {
  const FrameDest udp = classify_frame(ipv4(kPeer, kIpA, 17, 5000, 7).data(), 60);
  CHECK(udp.kind == FrameKind::kUnicast);
  CHECK(udp.ip == kIpA);
  CHECK(classify_frame(ipv4(kPeer, kIpA, 17, 5000, 7).data(), 60).hash == udp.hash);  // a flow keeps its hash
  CHECK(classify_frame(ipv4(kPeer, kIpA, 17, 5001, 7).data(), 60).hash != udp.hash);
  // A fragment's later pieces carry no ports: fragments hash on addresses only.
  CHECK(classify_frame(ipv4(kPeer, kIpA, 17, 1, 2, 0x2000).data(), 60).hash ==
        classify_frame(ipv4(kPeer, kIpA, 17, 3, 4, 0x00b9).data(), 60).hash);
  const FrameDest a = classify_frame(arp(kPeer, kIpB).data(), 60);
  CHECK(a.kind == FrameKind::kArp);
  CHECK(a.ip == kIpB);
  CHECK(classify_frame(ipv4(kPeer, 0xffffffff, 17, 68, 67).data(), 60).kind == FrameKind::kBroadcast);
  CHECK(classify_frame(ipv4(kPeer, 0xe0000001, 17, 1, 2).data(), 60).kind == FrameKind::kBroadcast);
  CHECK(classify_frame(ipv4(kPeer, kIpA, 17, 1, 2, 0, true).data(), 60).kind == FrameKind::kBroadcast);
  std::vector<uint8_t> v6 = ipv4(kPeer, kIpA, 17, 1, 2);
  put16(&v6[12], 0x86dd);
  CHECK(classify_frame(v6.data(), 60).why == DropReason::kNotIpv4);
  CHECK(classify_frame(v6.data(), 10).why == DropReason::kRunt);
  CHECK(classify_frame(arp(kPeer, kIpA).data(), 41).kind == FrameKind::kDrop);  // ARP needs 28 bytes
  std::vector<uint8_t> fat = ipv4(kPeer, kIpA, 6, 1, 2);
  fat[14] = 0x4f;  // a 60-byte IP header in a 60-byte frame
  CHECK(classify_frame(fat.data(), 60).why == DropReason::kRunt);
}

TEST_CASE("frames go to their runtime's active kthreads; others are counted drops", "[iok-steer]") {
  RuntimeTable t;
  RuntimeEntry& a = t.add(make_attached(2, kIpA), Fd(), PeerCred{}, 0);
  RuntimeEntry& b = t.add(make_attached(4, kIpB), Fd(), PeerCred{}, 0);
  RouteTable r;
  CHECK(r.stale(t));
  r.rebuild(t);
  CHECK_FALSE(r.stale(t));
  const int ra = r.find(kIpA), rb = r.find(kIpB);
  REQUIRE(ra >= 0);
  REQUIRE(rb >= 0);
  CHECK(r[static_cast<size_t>(rb)].rt == &b);
  DropCounters d;

  SECTION("unicast: the runtime of the address, one kthread per flow, spread over the active ones") {
    set_state(b, 1, KthreadState::kActive);
    set_state(b, 3, KthreadState::kActive);
    set_state(b, 2, KthreadState::kRevoked);
    r.refresh_active();
    std::set<uint32_t> used;
    for (uint16_t port = 1000; port < 1200; port++) {
      const RxTarget x = steer(r, ipv4(kPeer, kIpB, 6, port, 80), d);
      REQUIRE(x.route == rb);
      CHECK(steer(r, ipv4(kPeer, kIpB, 6, port, 80), d).kthread == x.kthread);
      used.insert(x.kthread);
    }
    CHECK(used == std::set<uint32_t>{1, 3});
    // Runtime A marked nothing active: its frames spread over all its kthreads.
    std::set<uint32_t> used_a;
    for (uint16_t port = 1000; port < 1100; port++) {
      const RxTarget x = steer(r, ipv4(kPeer, kIpA, 17, port, 7), d);
      REQUIRE(x.route == ra);
      used_a.insert(x.kthread);
    }
    CHECK(used_a == std::set<uint32_t>{0, 1});
    // Revoking kthread 3 moves every flow to kthread 1.
    set_state(b, 3, KthreadState::kRevoked);
    r.refresh_active();
    for (uint16_t port = 1000; port < 1050; port++) CHECK(steer(r, ipv4(kPeer, kIpB, 6, port, 80), d).kthread == 1);
    CHECK(d.n == DropCounters{}.n);
  }

  SECTION("ARP and broadcast go to every runtime") {
    CHECK(steer(r, arp(kPeer, kIpA), d).route == RxTarget::kToAll);
    CHECK(steer(r, arp(kPeer, kIpNone), d).route == RxTarget::kToAll);
    CHECK(steer(r, ipv4(kPeer, 0xffffffff, 17, 68, 67), d).route == RxTarget::kToAll);
  }

  SECTION("a frame for no runtime, a runt and IPv6 are dropped, each under its reason") {
    std::vector<uint8_t> v6 = ipv4(kPeer, kIpA, 17, 1, 2);
    put16(&v6[12], 0x86dd);
    for (int i = 0; i < 3; i++) CHECK(steer(r, ipv4(kPeer, kIpNone, 17, 1, 7), d).route == RxTarget::kDropped);
    CHECK(steer(r, ipv4(kPeer, kIpA, 17, 1, 7), d, 20).route == RxTarget::kDropped);
    CHECK(steer(r, v6, d).route == RxTarget::kDropped);
    CHECK(d[DropReason::kNoRuntime] == 3);
    CHECK(d[DropReason::kRunt] == 1);
    CHECK(d[DropReason::kNotIpv4] == 1);
    CHECK(std::string(drop_name(DropReason::kNoRuntime)) == "no_runtime");
  }

  SECTION("a detach makes the routes stale; the rebuilt table no longer knows the address") {
    REQUIRE(t.remove(a.id));
    CHECK(r.stale(t));
    r.rebuild(t);
    CHECK(r.find(kIpA) < 0);
    CHECK(steer(r, ipv4(kPeer, kIpA, 17, 1, 7), d).route == RxTarget::kDropped);
    CHECK(d[DropReason::kNoRuntime] == 1);
  }
}

TEST_CASE("a runtime returns only rx buffers it holds, up to its cap", "[iok-steer]") {
  RuntimeTable t;
  RuntimeEntry& a = t.add(make_attached(1, kIpA), Fd(), PeerCred{}, 0);
  RuntimeEntry& b = t.add(make_attached(1, kIpB), Fd(), PeerCred{}, 0);
  constexpr uint32_t kBuf = 2176;
  RxOwners o;
  o.init(16 * kBuf + 100, kBuf, 3);  // 16 buffers after a 100-byte offset, as extbuf chunks may start
  auto off = [](uint32_t i) { return 100 + uint64_t{i} * kBuf; };
  CHECK(o.take(a, off(0)));
  CHECK(o.take(a, off(1)));
  CHECK_FALSE(o.take(b, off(1)));  // held already
  CHECK(o.take(a, off(2)));
  CHECK_FALSE(o.take(a, off(3)));  // a is at its cap
  CHECK(a.rx_held == 3);
  CHECK(o.take(b, off(3)));
  CHECK_FALSE(o.give_back(b, off(0)));   // a's buffer
  CHECK_FALSE(o.give_back(a, off(0) + 8));  // not where a buffer starts
  CHECK_FALSE(o.give_back(a, uint64_t{1} << 40));
  CHECK(o.give_back(a, off(0)));
  CHECK_FALSE(o.give_back(a, off(0)));  // twice
  CHECK(a.rx_held == 2);
  std::vector<uint64_t> freed;
  o.reclaim(a, a.id, [&](uint64_t x) { freed.push_back(x); });
  CHECK(freed == std::vector<uint64_t>{off(1), off(2)});
  CHECK(a.rx_held == 0);
  CHECK(b.rx_held == 1);
  CHECK(o.take(b, off(1)));  // free again
}
