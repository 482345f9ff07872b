// Flow hashes for steering (net/proto/flow.h): Toeplitz against the RSS
// specification's verification vectors, and the symmetric hash's symmetry
// and spread.
#include <catch2/catch.hpp>

#include <array>
#include <vector>

#include "net/proto/flow.h"
#include "slip/net/addr.h"

using namespace slip::net;
using namespace slip::net::proto;

namespace {

// The key of Microsoft's RSS verification suite, which NIC datasheets reprint.
constexpr std::array<uint8_t, 40> kKey = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb,
    0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

uint32_t ip(uint8_t a, uint8_t b, uint8_t c, uint8_t d) { return Ipv4Addr::of(a, b, c, d).v; }

}  // namespace

TEST_CASE("flow: Toeplitz gives the RSS verification suite's IPv4/TCP hashes", "[flow]") {
  struct Vec {
    uint32_t dst;
    uint16_t dport;
    uint32_t src;
    uint16_t sport;
    uint32_t with_ports, addresses_only;
  };
  const std::vector<Vec> vecs = {
      {ip(161, 142, 100, 80), 1766, ip(66, 9, 149, 187), 2794, 0x51ccc178, 0x323e8fc2},
      {ip(65, 69, 140, 83), 4739, ip(199, 92, 111, 2), 14230, 0xc626b0ea, 0xd718262a},
      {ip(12, 22, 207, 184), 38024, ip(24, 19, 198, 95), 12898, 0x5c2b394a, 0xd2d0a5de},
      {ip(209, 142, 163, 6), 2217, ip(38, 27, 205, 30), 48228, 0xafc7327f, 0x82989176},
      {ip(202, 188, 127, 2), 1303, ip(153, 39, 163, 191), 44251, 0x10e828a2, 0x5d1809c5},
  };
  for (const Vec& v : vecs) {
    CHECK(rss_ipv4_l4(kKey.data(), kKey.size(), v.src, v.dst, v.sport, v.dport) == v.with_ports);
    const uint8_t addrs[8] = {uint8_t(v.src >> 24), uint8_t(v.src >> 16), uint8_t(v.src >> 8), uint8_t(v.src),
                              uint8_t(v.dst >> 24), uint8_t(v.dst >> 16), uint8_t(v.dst >> 8), uint8_t(v.dst)};
    CHECK(toeplitz_hash(kKey.data(), kKey.size(), addrs, sizeof addrs) == v.addresses_only);
  }
  CHECK(toeplitz_hash(kKey.data(), 8, kKey.data(), 8) == 0);  // a key shorter than the input + 4 hashes nothing
}

TEST_CASE("flow: the symmetric hash is the same both ways and spreads flows evenly", "[flow]") {
  const uint32_t a = ip(198, 18, 0, 1), b = ip(198, 18, 0, 2);
  std::array<int, 4> per_queue{};
  for (uint16_t port = 49152; port < 49152 + 4000; port++) {
    const uint32_t h = symmetric_flow_hash(a, port, b, 80, 6);
    REQUIRE(h == symmetric_flow_hash(b, 80, a, port, 6));
    CHECK(h != symmetric_flow_hash(a, port, b, 80, 17));  // the protocol counts
    per_queue[pick_queue(h, 4)]++;
  }
  for (int n : per_queue) CHECK((n > 850 && n < 1150));  // 1000 each, give or take 15 %
  CHECK(pick_queue(0xffffffffu, 4) == 3);
  CHECK(pick_queue(0, 4) == 0);
}
