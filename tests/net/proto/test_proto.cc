// Checksums, Ethernet, ARP and drop names of the protocol layer.
#include <catch2/catch.hpp>

#include <random>
#include <set>
#include <string>

#include "net/proto/arp.h"
#include "net/proto/ether.h"
#include "net/proto/rx.h"
#include "proto_test_util.h"

using namespace slip_test;

TEST_CASE("RFC 1071 example sums to ddf2", "[checksum]") {
  const uint8_t d[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  CHECK(csum_fold(csum_partial(d, sizeof d)) == 0xddf2);
  CHECK(inet_checksum(d, sizeof d) == 0x220d);
  CHECK(naive_checksum(d, sizeof d) == 0x220d);
}

TEST_CASE("checksum edge lengths", "[checksum]") {
  const uint8_t one[] = {0xab};
  CHECK(csum_fold(csum_partial(one, 0)) == 0);
  CHECK(csum_fold(csum_partial(one, 1)) == 0xab00);
  const uint8_t ff[4] = {0xff, 0xff, 0xff, 0xff};
  CHECK(csum_fold(csum_partial(ff, 4)) == 0xffff);
  CHECK(inet_checksum(ff, 3) == naive_checksum(ff, 3));
}

TEST_CASE("fast checksum matches the naive one at every length and alignment", "[checksum]") {
  std::mt19937 rng(42);
  std::vector<uint8_t> buf(4200);
  for (int iter = 0; iter < 3000; iter++) {
    // Alternate random bytes with all-0xff runs that stress the carries.
    const bool ones = iter % 7 == 0;
    for (auto& x : buf) x = ones ? 0xff : static_cast<uint8_t>(rng());
    const size_t off = rng() % 8;
    const size_t len = iter < 200 ? static_cast<size_t>(iter) : rng() % 4096;
    const uint32_t seed = iter % 3 ? rng() : 0;
    INFO("off " << off << " len " << len << " seed " << seed);
    const uint16_t want = naive_checksum(buf.data() + off, len, 0);
    REQUIRE(inet_checksum(buf.data() + off, len) == want);
    // A seed sum adds in one's complement.
    const uint16_t want_seeded = csum_finish(csum_add(csum_fold(seed), static_cast<uint16_t>(~want)));
    REQUIRE(csum_finish(csum_partial(buf.data() + off, len, seed)) == want_seeded);
  }
}

TEST_CASE("data carrying its checksum verifies, and a flipped bit does not", "[checksum]") {
  std::mt19937 rng(7);
  for (int iter = 0; iter < 200; iter++) {
    std::vector<uint8_t> d(2 + rng() % 100 * 2);
    for (auto& x : d) x = static_cast<uint8_t>(rng());
    store_be16(d.data(), 0);
    store_be16(d.data(), inet_checksum(d.data(), d.size()));
    REQUIRE(csum_ok(d.data(), d.size()));
    d[rng() % d.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
    REQUIRE_FALSE(csum_ok(d.data(), d.size()));
  }
}

TEST_CASE("incremental update (RFC 1624) equals recomputation", "[checksum]") {
  std::mt19937 rng(9);
  for (int iter = 0; iter < 2000; iter++) {
    uint8_t h[20];
    for (auto& x : h) x = static_cast<uint8_t>(rng());
    store_be16(h + 10, 0);
    const uint16_t c = inet_checksum(h, 20);
    if (iter % 2) {
      const size_t pos = (rng() % 5) * 2;  // a 16-bit word before the checksum field
      const uint16_t old_v = load_be16(h + pos);
      const uint16_t new_v = iter % 5 == 1 ? 0 : static_cast<uint16_t>(rng());
      store_be16(h + pos, new_v);
      REQUIRE(csum_update16(c, old_v, new_v) == inet_checksum(h, 20));
    } else {
      const size_t pos = 12 + (rng() % 2) * 4;  // an address
      const uint32_t old_v = load_be32(h + pos);
      const uint32_t new_v = static_cast<uint32_t>(rng());
      store_be32(h + pos, new_v);
      REQUIRE(csum_update32(c, old_v, new_v) == inet_checksum(h, 20));
    }
  }
}

TEST_CASE("pseudo-header sum equals summing the pseudo-header bytes", "[checksum]") {
  const uint8_t ph[12] = {198, 18, 0, 2, 198, 18, 0, 1, 0, 17, 0x01, 0x2c};
  CHECK(csum_fold(pseudo_header_sum(kPeerIp, kUsIp, 17, 300)) == csum_fold(csum_partial(ph, 12)));
}

TEST_CASE("chain checksum with odd-length segments equals the flat one", "[checksum]") {
  std::mt19937 rng(11);
  for (int iter = 0; iter < 300; iter++) {
    TestBuf s[4];
    std::vector<uint8_t> flat;
    for (int i = 0; i < 4; i++) {
      const size_t n = rng() % 40;  // odd and empty segments included
      uint8_t* p = s[i].b.append(n);
      for (size_t k = 0; k < n; k++) flat.push_back(p[k] = static_cast<uint8_t>(rng()));
      if (i) s[i - 1].b.next = &s[i].b;
    }
    const size_t skip = std::min<size_t>(s[0].b.len, rng() % 4);
    REQUIRE(csum_fold(csum_chain(s[0].b, skip, 0x1234)) ==
            csum_fold(csum_partial(flat.data() + skip, flat.size() - skip, 0x1234)));
  }
}

TEST_CASE("ethernet parse and push", "[ether]") {
  uint8_t f[20] = {};
  CHECK(parse_ether(f, 13).drop == Drop::kEthShort);
  CHECK(parse_ether(f, 0).drop == Drop::kEthShort);
  TestBuf t;
  std::memcpy(t.b.append(4), "abcd", 4);
  EtherHdr* h = push_ether(t.b, kPeerMac, kUsMac, kEtherTypeIpv4);
  REQUIRE(h);
  CHECK(t.b.l2_len == 14);
  const std::vector<uint8_t> want = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00, 'a', 'b', 'c', 'd'};
  CHECK(t.bytes() == want);
  const auto e = parse_ether(t.b.data, t.b.len);
  REQUIRE(e.ok());
  CHECK(e.view.hdr->dst == kPeerMac);
  CHECK(e.view.hdr->src == kUsMac);
  CHECK(e.view.hdr->ethertype() == kEtherTypeIpv4);
  CHECK(e.view.payload_len == 4);
  CHECK(std::memcmp(e.view.payload, "abcd", 4) == 0);
  REQUIRE(pad_to_min_frame(t.b));
  CHECK(t.b.len == 60);
  CHECK(t.b.data[59] == 0);
  TestBuf none(0);
  CHECK(push_ether(none.b, kPeerMac, kUsMac, kEtherTypeArp) == nullptr);
}

TEST_CASE("unhandled ethertypes drop as eth_type", "[ether]") {
  uint8_t f[60] = {};
  store_be16(f + 12, 0x86dd);
  CHECK(decode_frame(f, sizeof f).drop == Drop::kEthType);
  store_be16(f + 12, 0x8100);
  CHECK(decode_frame(f, sizeof f).drop == Drop::kEthType);
  CHECK(decode_frame(f, 10).drop == Drop::kEthShort);
}

TEST_CASE("ARP request, reply and gratuitous round trip", "[arp]") {
  TestBuf t;
  REQUIRE(build_arp_request(t.b, kUsMac, kUsIp, kPeerIp));
  REQUIRE(t.b.len == 42);
  auto f = decode_frame(t.b);
  REQUIRE(f.ok());
  CHECK(f.view.eth.hdr->dst.is_broadcast());
  CHECK(f.view.eth.hdr->ethertype() == kEtherTypeArp);
  const ArpPacket* a = f.view.arp;
  REQUIRE(a);
  CHECK(a->op() == kArpOpRequest);
  CHECK(a->sha == kUsMac);
  CHECK(a->spa() == kUsIp);
  CHECK(a->tha.is_zero());
  CHECK(a->tpa() == kPeerIp);

  TestBuf r;
  REQUIRE(build_arp_reply(r.b, kPeerMac, kPeerIp, a->sha, a->spa()));
  f = decode_frame(r.b);
  REQUIRE(f.ok());
  CHECK(f.view.eth.hdr->dst == kUsMac);
  CHECK(f.view.eth.hdr->src == kPeerMac);
  CHECK(f.view.arp->op() == kArpOpReply);
  CHECK(f.view.arp->sha == kPeerMac);
  CHECK(f.view.arp->spa() == kPeerIp);
  CHECK(f.view.arp->tha == kUsMac);
  CHECK(f.view.arp->tpa() == kUsIp);

  TestBuf g;
  REQUIRE(build_arp_gratuitous(g.b, kUsMac, kUsIp));
  f = decode_frame(g.b);
  REQUIRE(f.ok());
  CHECK(f.view.eth.hdr->dst.is_broadcast());
  CHECK(f.view.arp->op() == kArpOpRequest);
  CHECK(f.view.arp->spa() == kUsIp);
  CHECK(f.view.arp->tpa() == kUsIp);

  TestBuf full(0);
  CHECK_FALSE(build_arp_request(full.b, kUsMac, kUsIp, kPeerIp));
}

TEST_CASE("malformed ARP drops as arp_malformed", "[arp]") {
  TestBuf t;
  REQUIRE(build_arp_request(t.b, kUsMac, kUsIp, kPeerIp));
  REQUIRE(pad_to_min_frame(t.b));
  const std::vector<uint8_t> good = t.bytes();
  REQUIRE(decode_frame(good.data(), good.size()).ok());
  CHECK(decode_frame(good.data(), 14 + 27).drop == Drop::kArpMalformed);
  struct Corruption {
    size_t off;
    uint8_t v;
  };
  for (const Corruption c : {Corruption{14 + 1, 6}, {14 + 2, 0x86}, {14 + 4, 8}, {14 + 5, 16}, {14 + 7, 3},
                             {14 + 7, 0}, {14 + 0, 1}}) {
    std::vector<uint8_t> bad = good;
    bad[c.off] = c.v;
    INFO("offset " << c.off);
    CHECK(decode_frame(bad.data(), bad.size()).drop == Drop::kArpMalformed);
  }
}

TEST_CASE("every drop reason has a distinct snake_case name", "[counters]") {
  std::set<std::string> seen;
  for (size_t i = 0; i < static_cast<size_t>(Drop::kCount); i++) {
    const std::string n(drop_name(static_cast<Drop>(i)));
    CHECK(!n.empty());
    CHECK(n.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") == std::string::npos);
    CHECK(seen.insert(n).second);
  }
  CHECK(drop_name(Drop::kEthShort) == "eth_short");
  CHECK(drop_name(Drop::kTcpOutOfWindow) == "tcp_out_of_window");
  CHECK(drop_name(Drop::kNoBuffer) == "no_buffer");
  CHECK(drop_name(Drop::kCount) == "unknown");
}
