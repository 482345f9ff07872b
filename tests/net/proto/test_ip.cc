// IPv4 and ICMP: validation of crafted frames, building, echo replies.
#include <catch2/catch.hpp>

#include "net/proto/rx.h"
#include "proto_test_util.h"

using namespace slip_test;

namespace {

// A complete Ethernet + IPv4 frame around payload, built with our builders.
std::vector<uint8_t> ip_frame(uint8_t proto, const std::vector<uint8_t>& payload, uint16_t id = 0x100) {
  TestBuf t;
  if (!payload.empty()) std::memcpy(t.b.append(payload.size()), payload.data(), payload.size());
  uint16_t ctr = id;
  REQUIRE(push_ipv4(t.b, {kPeerIp, kUsIp, proto}, ctr, false));
  REQUIRE(push_ether(t.b, kUsMac, kPeerMac, kEtherTypeIpv4));
  return t.bytes();
}

// An echo request frame with the given payload length and IP options.
std::vector<uint8_t> echo_request(size_t data_len, const std::vector<uint8_t>& ip_opts = {}) {
  std::vector<uint8_t> icmp(8 + data_len);
  icmp[0] = kIcmpEchoRequest;
  store_be16(&icmp[4], 0xbeef);
  store_be16(&icmp[6], 17);
  for (size_t i = 0; i < data_len; i++) icmp[8 + i] = static_cast<uint8_t>(i * 7);
  store_be16(&icmp[2], inet_checksum(icmp.data(), icmp.size()));
  std::vector<uint8_t> f = ip_frame(kIpProtoIcmp, icmp);
  if (!ip_opts.empty()) {
    f.insert(f.begin() + 34, ip_opts.begin(), ip_opts.end());
    f[14] = static_cast<uint8_t>(0x40 | (20 + ip_opts.size()) / 4);
    store_be16(&f[16], static_cast<uint16_t>(f.size() - 14));
    fix_ip_csum(f.data());
  }
  return f;
}

Drop drop_of(const std::vector<uint8_t>& f, uint32_t flags = 0) { return decode_frame(f.data(), f.size(), flags).drop; }

}  // namespace

TEST_CASE("IPv4 header built in software parses with exact fields", "[ipv4]") {
  TestBuf t;
  std::memcpy(t.b.append(5), "hello", 5);
  uint16_t ctr = 0xfffe;
  Ipv4Hdr* h = push_ipv4(t.b, {kUsIp, kPeerIp, 200, 64, 0x10}, ctr, false);
  REQUIRE(h);
  CHECK(ctr == 0xffff);
  CHECK(t.b.len == 25);
  CHECK(t.b.l3_len == 20);
  CHECK((t.b.offload_flags & PacketBuf::kTxIpCsum) == 0);
  const auto r = parse_ipv4(t.b.data, t.b.len);
  REQUIRE(r.ok());
  const Ipv4Hdr& ip = *r.view.hdr;
  CHECK(ip.version() == 4);
  CHECK(ip.hdr_len() == 20);
  CHECK(ip.tos == 0x10);
  CHECK(ip.total_len() == 25);
  CHECK(ip.id() == 0xfffe);
  CHECK(ip.frag() == kIpFlagDf);
  CHECK(ip.ttl == 64);
  CHECK(ip.proto == 200);
  CHECK(ip.src() == kUsIp);
  CHECK(ip.dst() == kPeerIp);
  CHECK(r.view.payload_len == 5);
  CHECK(std::memcmp(r.view.payload, "hello", 5) == 0);
  const std::vector<uint8_t> head(t.b.data, t.b.data + 12);
  CHECK(head == std::vector<uint8_t>{0x45, 0x10, 0, 25, 0xff, 0xfe, 0x40, 0, 64, 200, ip.csum_be[0], ip.csum_be[1]});
  CHECK(naive_checksum(t.b.data, 20) == 0);
}

TEST_CASE("IPv4 checksum offload leaves the field to the NIC", "[ipv4]") {
  TestBuf t;
  t.b.append(8);
  uint16_t ctr = 1;
  Ipv4Hdr* h = push_ipv4(t.b, {kUsIp, kPeerIp, kIpProtoUdp}, ctr, true);
  REQUIRE(h);
  CHECK(h->checksum() == 0);
  CHECK(t.b.offload_flags & PacketBuf::kTxIpCsum);
  CHECK(t.b.l2_len == 14);
  CHECK(t.b.l3_len == 20);
  CHECK(parse_ipv4(t.b.data, t.b.len).drop == Drop::kIpChecksum);
  CHECK(parse_ipv4(t.b.data, t.b.len, true).ok());
}

TEST_CASE("IPv4 build refuses datagrams past 65535 bytes or without headroom", "[ipv4]") {
  std::vector<uint8_t> big(70000);
  PacketBuf b;
  b.head = big.data();
  b.data = b.head + 128;
  b.capacity = static_cast<uint32_t>(big.size());
  b.len = 65516;
  uint16_t ctr = 0;
  CHECK(push_ipv4(b, {kUsIp, kPeerIp, kIpProtoUdp}, ctr, false) == nullptr);
  b.len = 65515;
  CHECK(push_ipv4(b, {kUsIp, kPeerIp, kIpProtoUdp}, ctr, false) != nullptr);
  TestBuf t(10);
  CHECK(push_ipv4(t.b, {kUsIp, kPeerIp, kIpProtoUdp}, ctr, false) == nullptr);
}

TEST_CASE("Ethernet padding is trimmed to the IPv4 total length", "[ipv4]") {
  std::vector<uint8_t> f = ip_frame(253, {1, 2, 3});
  f.resize(60, 0);
  const auto r = parse_ipv4(f.data() + 14, f.size() - 14);
  REQUIRE(r.ok());
  CHECK(r.view.payload_len == 3);
  CHECK(drop_of(f) == Drop::kIpProto);
}

TEST_CASE("each malformed IPv4 header drops under its own reason", "[ipv4]") {
  const std::vector<uint8_t> good = ip_frame(kIpProtoUdp, {0, 1, 0, 2, 0, 8, 0, 0});
  REQUIRE(drop_of(good) == Drop::kCount);
  auto mutate = [&](auto fn, bool fix = true) {
    std::vector<uint8_t> f = good;
    fn(f);
    if (fix) fix_ip_csum(f.data());
    return drop_of(f);
  };
  CHECK(decode_frame(good.data(), 14 + 19).drop == Drop::kIpShort);
  CHECK(mutate([](auto& f) { f[14] = 0x65; }) == Drop::kIpVersion);
  CHECK(mutate([](auto& f) { f[14] = 0x44; }, false) == Drop::kIpHeaderLen);
  CHECK(mutate([](auto& f) { f[14] = 0x4f; }, false) == Drop::kIpHeaderLen);  // 60 bytes > frame
  CHECK(mutate([](auto& f) { store_be16(&f[16], 19); }) == Drop::kIpTotalLen);
  CHECK(mutate([](auto& f) { store_be16(&f[16], 29); }) == Drop::kIpTotalLen);
  CHECK(mutate([](auto& f) { f[24] ^= 1; }, false) == Drop::kIpChecksum);
  CHECK(mutate([](auto& f) { f[20] |= 0x20; }) == Drop::kIpFragment);          // MF
  CHECK(mutate([](auto& f) { store_be16(&f[20], 0x4001); }) == Drop::kIpFragment);  // offset
  CHECK(mutate([](auto& f) { f[22] = 0; }) == Drop::kIpTtl);
  CHECK(mutate([](auto& f) { f[23] = 41; }) == Drop::kIpProto);
  // A NIC that verified the header: a wrong checksum is not looked at.
  std::vector<uint8_t> f = good;
  f[24] ^= 1;
  CHECK(drop_of(f, PacketBuf::kRxIpCsumGood) == Drop::kCount);
  CHECK(drop_of(f, PacketBuf::kRxIpCsumBad) == Drop::kIpChecksum);
}

TEST_CASE("IPv4 options: well-formed ones pass, bad lengths drop", "[ipv4]") {
  const std::vector<uint8_t> udp = {0, 1, 0, 2, 0, 8, 0, 0};
  auto with_opts = [&](const std::vector<uint8_t>& opts) {
    std::vector<uint8_t> f = ip_frame(kIpProtoUdp, udp);
    f.insert(f.begin() + 34, opts.begin(), opts.end());
    f[14] = static_cast<uint8_t>(0x40 | (20 + opts.size()) / 4);
    store_be16(&f[16], static_cast<uint16_t>(f.size() - 14));
    fix_ip_csum(f.data());
    return drop_of(f);
  };
  CHECK(with_opts({148, 4, 0, 0}) == Drop::kCount);              // router alert
  CHECK(with_opts({1, 1, 1, 0}) == Drop::kCount);                // NOPs, EOL
  CHECK(with_opts({0, 0xff, 0xff, 0xff}) == Drop::kCount);       // EOL, then padding
  CHECK(with_opts({7, 7, 4, 0, 0, 0, 0, 0}) == Drop::kCount);    // record route + EOL
  CHECK(with_opts({148, 1, 0, 0}) == Drop::kIpOptions);          // length below 2
  CHECK(with_opts({148, 0, 0, 0}) == Drop::kIpOptions);
  CHECK(with_opts({148, 5, 0, 0}) == Drop::kIpOptions);          // past the header
  CHECK(with_opts({1, 1, 1, 148}) == Drop::kIpOptions);          // no length byte
}

TEST_CASE("ICMP drops: short, checksum, type", "[icmp]") {
  std::vector<uint8_t> f = echo_request(16);
  REQUIRE(drop_of(f) == Drop::kCount);
  const std::vector<uint8_t> seven = {8, 0, 0xf7, 0xff, 0, 0, 0};
  CHECK(drop_of(ip_frame(kIpProtoIcmp, seven)) == Drop::kIcmpShort);
  std::vector<uint8_t> bad = f;
  bad[14 + 20 + 9] ^= 0x40;
  CHECK(drop_of(bad) == Drop::kIcmpChecksum);
  std::vector<uint8_t> ts(20);
  ts[0] = 13;  // timestamp request: not served
  store_be16(&ts[2], inet_checksum(ts.data(), ts.size()));
  CHECK(drop_of(ip_frame(kIpProtoIcmp, ts)) == Drop::kIcmpType);
}

TEST_CASE("echo reply in place: swapped, trimmed and checksummed", "[icmp]") {
  for (size_t data_len : {0, 1, 5, 56, 1000}) {
    for (bool opts : {false, true}) {
      const std::vector<uint8_t> router_alert = {148, 4, 0, 0};
      std::vector<uint8_t> req = echo_request(data_len, opts ? router_alert : std::vector<uint8_t>{});
      req.resize(std::max<size_t>(req.size(), 60), 0);  // padded as on the wire
      INFO("data " << data_len << " options " << opts);
      REQUIRE(drop_of(req) == Drop::kCount);
      TestBuf t(req.data(), req.size());
      t.b.offload_flags = PacketBuf::kRxIpCsumGood;
      REQUIRE(icmp_echo_reply_in_place(t.b, kUsMac, kUsIp));
      CHECK(t.b.len == 14 + 20 + 8 + data_len);
      CHECK(t.b.offload_flags == 0);
      const auto r = decode_frame(t.b);
      REQUIRE(r.ok());
      CHECK(r.view.eth.hdr->dst == kPeerMac);
      CHECK(r.view.eth.hdr->src == kUsMac);
      CHECK(r.view.ip.hdr->src() == kUsIp);
      CHECK(r.view.ip.hdr->dst() == kPeerIp);
      CHECK(r.view.ip.hdr_len == 20);
      CHECK(r.view.ip.hdr->ttl == 64);
      CHECK(r.view.icmp.hdr->type == kIcmpEchoReply);
      CHECK(r.view.icmp.hdr->echo_id() == 0xbeef);
      CHECK(r.view.icmp.hdr->echo_seq() == 17);
      REQUIRE(r.view.icmp.body_len == data_len);
      const size_t icmp_at = 14 + (opts ? 24 : 20);
      CHECK(std::memcmp(r.view.icmp.body, req.data() + icmp_at + 8, data_len) == 0);
      CHECK(naive_checksum(t.b.data + 34, 8 + data_len) == 0);
    }
  }
}

TEST_CASE("echo reply refuses what is not an echo request", "[icmp]") {
  std::vector<uint8_t> f = echo_request(8);
  f[34] = kIcmpEchoReply;
  TestBuf t(f.data(), f.size());
  CHECK_FALSE(icmp_echo_reply_in_place(t.b, kUsMac, kUsIp));
  CHECK(t.bytes() == f);
  TestBuf s(f.data(), 40);
  CHECK_FALSE(icmp_echo_reply_in_place(s.b, kUsMac, kUsIp));
}

TEST_CASE("port unreachable quotes the IP header and 8 bytes", "[icmp]") {
  std::vector<uint8_t> udp = {0x9c, 0x40, 0x2b, 0xcb, 0, 20, 0, 0};
  udp.resize(20, 'z');
  for (bool opts : {false, true}) {
    std::vector<uint8_t> orig = ip_frame(kIpProtoUdp, udp);
    if (opts) {
      orig.insert(orig.begin() + 34, {1, 1, 1, 0});
      orig[14] = 0x46;
      store_be16(&orig[16], static_cast<uint16_t>(orig.size() - 14));
      fix_ip_csum(orig.data());
    }
    const size_t quote = (opts ? 24 : 20) + 8;
    TestBuf t;
    REQUIRE(build_icmp_unreach(t.b, kIcmpCodePortUnreach, orig.data() + 14, orig.size() - 14));
    REQUIRE(t.b.len == 8 + quote);
    CHECK(t.b.data[0] == 3);
    CHECK(t.b.data[1] == 3);
    CHECK(load_be32(t.b.data + 4) == 0);
    CHECK(std::memcmp(t.b.data + 8, orig.data() + 14, quote) == 0);
    uint16_t ctr = 0;
    REQUIRE(push_ipv4(t.b, {kUsIp, kPeerIp, kIpProtoIcmp}, ctr, false));
    REQUIRE(push_ether(t.b, kPeerMac, kUsMac, kEtherTypeIpv4));
    const auto r = decode_frame(t.b);
    REQUIRE(r.ok());
    const auto q = parse_icmp_quote(r.view.icmp);
    REQUIRE(q.ok());
    CHECK(q.view.src == kPeerIp);
    CHECK(q.view.dst == kUsIp);
    CHECK(q.view.proto == kIpProtoUdp);
    CHECK(q.view.sport == 40000);
    CHECK(q.view.dport == 11211);
  }
  TestBuf t;
  const std::vector<uint8_t> orig = ip_frame(kIpProtoUdp, udp);
  REQUIRE(build_icmp_unreach(t.b, kIcmpCodeFragNeeded, orig.data() + 14, orig.size() - 14, 1400));
  CHECK(reinterpret_cast<const IcmpHdr*>(t.b.data)->next_hop_mtu() == 1400);
  const IcmpView shorty{reinterpret_cast<const IcmpHdr*>(t.b.data), t.b.data + 8, 27};
  CHECK(parse_icmp_quote(shorty).drop == Drop::kIcmpShort);
}
