// UDP and TCP wire formats: validation, building and TCP options.
#include <catch2/catch.hpp>

#include "net/proto/rx.h"
#include "proto_test_util.h"

using namespace slip_test;

namespace {

const Endpoint kPeerEp{kPeerIp, 40000};
const Endpoint kUsEp{kUsIp, 11211};

// A whole UDP frame from the peer to us, built with our builders.
std::vector<uint8_t> udp_frame(const std::vector<uint8_t>& payload) {
  TestBuf t;
  if (!payload.empty()) std::memcpy(t.b.append(payload.size()), payload.data(), payload.size());
  uint16_t ctr = 0;
  REQUIRE(push_udp(t.b, kPeerEp, kUsEp, false));
  REQUIRE(push_ipv4(t.b, {kPeerIp, kUsIp, kIpProtoUdp}, ctr, false));
  REQUIRE(push_ether(t.b, kUsMac, kPeerMac, kEtherTypeIpv4));
  return t.bytes();
}

// A whole TCP frame from the peer to us with the given options.
std::vector<uint8_t> tcp_frame(const std::vector<uint8_t>& opts, const std::vector<uint8_t>& payload = {},
                               uint8_t flags = kTcpAck) {
  TestBuf t;
  if (!payload.empty()) std::memcpy(t.b.append(payload.size()), payload.data(), payload.size());
  TcpTx tx{kPeerEp, kUsEp, 0x01020304, 0xa0b0c0d0, flags, 65000, opts.data(), opts.size()};
  uint16_t ctr = 0;
  REQUIRE(push_tcp(t.b, tx, false));
  REQUIRE(push_ipv4(t.b, {kPeerIp, kUsIp, kIpProtoTcp}, ctr, false));
  REQUIRE(push_ether(t.b, kUsMac, kPeerMac, kEtherTypeIpv4));
  return t.bytes();
}

Drop drop_of(const std::vector<uint8_t>& f, uint32_t flags = 0) { return decode_frame(f.data(), f.size(), flags).drop; }

// Options of a TCP frame parsed through the whole chain.
Parsed<RxFrame> tcp_with_opts(const std::vector<uint8_t>& opts) {
  static std::vector<uint8_t> f;  // the views point into it
  f = tcp_frame(opts);
  return decode_frame(f.data(), f.size());
}

}  // namespace

TEST_CASE("UDP built in software parses with exact fields", "[udp]") {
  const std::vector<uint8_t> f = udp_frame({'p', 'i', 'n', 'g', '!'});
  const auto r = decode_frame(f.data(), f.size());
  REQUIRE(r.ok());
  const UdpView& u = r.view.udp;
  REQUIRE(u.hdr);
  CHECK(u.hdr->sport() == 40000);
  CHECK(u.hdr->dport() == 11211);
  CHECK(u.hdr->length() == 13);
  CHECK(u.hdr->checksum() != 0);
  CHECK(u.payload_len == 5);
  CHECK(std::memcmp(u.payload, "ping!", 5) == 0);
}

TEST_CASE("UDP checksum that computes to 0 is sent as 0xffff", "[udp]") {
  // Pick the payload word that makes the one's-complement sum 0xffff.
  std::vector<uint8_t> f = udp_frame({0, 0});
  uint8_t* l4 = f.data() + 34;
  store_be16(l4 + 6, 0);
  const uint32_t ph = pseudo_header_sum(kPeerIp, kUsIp, kIpProtoUdp, 10);
  const uint16_t rest = csum_fold(csum_partial(l4, 10, ph));
  const uint16_t w = static_cast<uint16_t>(0xffff - rest);
  const std::vector<uint8_t> g = udp_frame({static_cast<uint8_t>(w >> 8), static_cast<uint8_t>(w)});
  CHECK(load_be16(g.data() + 34 + 6) == 0xffff);
  CHECK(drop_of(g) == Drop::kCount);
}

TEST_CASE("UDP checksum offload and chained payloads", "[udp]") {
  TestBuf t;
  t.b.append(3);
  REQUIRE(push_udp(t.b, kUsEp, kPeerEp, true));
  CHECK(t.b.offload_flags & PacketBuf::kTxUdpCsum);
  CHECK(t.b.l4_len == 8);
  CHECK(load_be16(t.b.data + 6) == csum_fold(pseudo_header_sum(kUsIp, kPeerIp, kIpProtoUdp, 11)));

  TestBuf a, b;
  std::memcpy(a.b.append(3), "abc", 3);
  std::memcpy(b.b.append(4), "defg", 4);
  a.b.next = &b.b;
  REQUIRE(push_udp(a.b, kPeerEp, kUsEp, false));
  uint8_t flat[15];
  std::memcpy(flat, a.b.data, 11);
  std::memcpy(flat + 11, "defg", 4);
  const auto r = parse_udp(flat, sizeof flat, kPeerIp, kUsIp);
  REQUIRE(r.ok());
  CHECK(r.view.payload_len == 7);
}

TEST_CASE("each malformed UDP datagram drops under its own reason", "[udp]") {
  const std::vector<uint8_t> good = udp_frame({1, 2, 3, 4, 5, 6});
  REQUIRE(drop_of(good) == Drop::kCount);
  std::vector<uint8_t> f = good;
  f.resize(14 + 20 + 7);
  store_be16(&f[16], 27);
  fix_ip_csum(f.data());
  CHECK(drop_of(f) == Drop::kUdpShort);
  f = good;
  store_be16(&f[38], 7);
  CHECK(drop_of(f) == Drop::kUdpLength);
  store_be16(&f[38], 15);
  CHECK(drop_of(f) == Drop::kUdpLength);
  f = good;
  f[45] ^= 0x10;
  CHECK(drop_of(f) == Drop::kUdpChecksum);
  CHECK(drop_of(f, PacketBuf::kRxL4CsumGood) == Drop::kCount);
  CHECK(drop_of(f, PacketBuf::kRxL4CsumBad) == Drop::kUdpChecksum);
  store_be16(&f[40], 0);  // no checksum: allowed over IPv4
  CHECK(drop_of(f) == Drop::kCount);
}

TEST_CASE("a UDP length below the IP payload trims the payload", "[udp]") {
  std::vector<uint8_t> f = udp_frame({1, 2, 3, 4, 5, 6});
  store_be16(&f[38], 10);
  fix_l4_csum(f.data());
  // fix_l4_csum summed the whole IP payload; redo it over the UDP length.
  store_be16(&f[40], 0);
  store_be16(&f[40], csum_finish(csum_partial(&f[34], 10, pseudo_header_sum(kPeerIp, kUsIp, kIpProtoUdp, 10))));
  const auto r = decode_frame(f.data(), f.size());
  REQUIRE(r.ok());
  CHECK(r.view.udp.payload_len == 2);
}

TEST_CASE("TCP segment built in software parses with exact fields", "[tcpopt]") {
  TcpOptions o;
  o.has_ts = true;
  o.ts_val = 7;
  o.ts_ecr = 9;
  uint8_t opts[kTcpMaxOptLen];
  const size_t n = write_data_options(opts, o);
  const std::vector<uint8_t> f = tcp_frame({opts, opts + n}, {'d', 'a', 't', 'a', '!'}, kTcpAck | kTcpPsh);
  const auto r = decode_frame(f.data(), f.size());
  REQUIRE(r.ok());
  const TcpView& t = r.view.tcp;
  REQUIRE(t.hdr);
  CHECK(t.hdr->sport() == 40000);
  CHECK(t.hdr->dport() == 11211);
  CHECK(t.hdr->seq() == 0x01020304);
  CHECK(t.hdr->ack() == 0xa0b0c0d0);
  CHECK(t.hdr->flags == (kTcpAck | kTcpPsh));
  CHECK(t.hdr->window() == 65000);
  CHECK(t.hdr->urgent() == 0);
  CHECK(t.hdr_len == 32);
  CHECK(t.payload_len == 5);
  CHECK(std::memcmp(t.payload, "data!", 5) == 0);
  CHECK(t.opts.has_ts);
  CHECK(t.opts.ts_val == 7);
  CHECK(t.opts.ts_ecr == 9);
  CHECK_FALSE(t.opts.has_mss);
}

TEST_CASE("TCP checksum offload and bad option lengths on build", "[tcpopt]") {
  TestBuf t;
  TcpTx tx{kUsEp, kPeerEp, 1, 2, kTcpSyn, 100, nullptr, 0};
  REQUIRE(push_tcp(t.b, tx, true));
  CHECK(t.b.offload_flags & PacketBuf::kTxTcpCsum);
  CHECK(t.b.l4_len == 20);
  CHECK(load_be16(t.b.data + 16) == csum_fold(pseudo_header_sum(kUsIp, kPeerIp, kIpProtoTcp, 20)));
  const uint8_t opts[44] = {};
  TestBuf u;
  tx.opts = opts;
  tx.opts_len = 3;
  CHECK(push_tcp(u.b, tx, false) == nullptr);
  tx.opts_len = 44;
  CHECK(push_tcp(u.b, tx, false) == nullptr);
  CHECK(u.b.len == 0);
}

TEST_CASE("SYN options: Linux layout and round trip", "[tcpopt]") {
  uint8_t p[kTcpMaxOptLen];
  TcpOptions o;
  o.has_mss = o.sack_permitted = o.has_ts = o.has_wscale = true;
  o.mss = 1460;
  o.ts_val = 0x11223344;
  o.wscale = 7;
  size_t n = write_syn_options(p, o);
  CHECK(std::vector<uint8_t>(p, p + n) == std::vector<uint8_t>{2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0x11, 0x22, 0x33, 0x44,
                                                               0, 0, 0, 0, 1, 3, 3, 7});
  TcpOptions back;
  REQUIRE(parse_tcp_options(p, n, back));
  CHECK(back.has_mss);
  CHECK(back.mss == 1460);
  CHECK(back.sack_permitted);
  CHECK(back.has_ts);
  CHECK(back.ts_val == 0x11223344);
  CHECK(back.ts_ecr == 0);
  CHECK(back.has_wscale);
  CHECK(back.wscale == 7);

  o.sack_permitted = false;
  n = write_syn_options(p, o);
  CHECK(std::vector<uint8_t>(p, p + 8) == std::vector<uint8_t>{2, 4, 0x05, 0xb4, 1, 1, 8, 10});
  CHECK(n == 20);
  o.sack_permitted = true;
  o.has_ts = false;
  o.has_wscale = false;
  n = write_syn_options(p, o);
  CHECK(std::vector<uint8_t>(p, p + n) == std::vector<uint8_t>{2, 4, 0x05, 0xb4, 1, 1, 4, 2});
  CHECK(write_syn_options(p, TcpOptions{}) == 0);
  for (int mask = 0; mask < 16; mask++) {
    TcpOptions m;
    m.has_mss = mask & 1;
    m.sack_permitted = mask & 2;
    m.has_ts = mask & 4;
    m.has_wscale = mask & 8;
    m.mss = 9000;
    m.wscale = 14;
    m.ts_val = 5;
    n = write_syn_options(p, m);
    REQUIRE(n % 4 == 0);
    REQUIRE(n <= 20);
    REQUIRE(parse_tcp_options(p, n, back));
    CHECK(back.has_mss == m.has_mss);
    CHECK(back.sack_permitted == m.sack_permitted);
    CHECK(back.has_ts == m.has_ts);
    CHECK(back.has_wscale == m.has_wscale);
  }
}

TEST_CASE("data options: timestamps and SACK blocks", "[tcpopt]") {
  uint8_t p[kTcpMaxOptLen];
  TcpOptions o;
  o.sack_count = 4;
  for (uint32_t i = 0; i < 4; i++) o.sacks[i] = {1000 * i, 1000 * i + 500};
  size_t n = write_data_options(p, o);
  CHECK(n == 36);
  TcpOptions back;
  REQUIRE(parse_tcp_options(p, n, back));
  CHECK(back.sack_count == 4);
  for (int i = 0; i < 4; i++) CHECK(back.sacks[i] == o.sacks[i]);
  o.has_ts = true;
  o.ts_val = 1;
  o.ts_ecr = 2;
  n = write_data_options(p, o);  // only 3 blocks fit beside timestamps
  CHECK(n == 40);
  REQUIRE(parse_tcp_options(p, n, back));
  CHECK(back.sack_count == 3);
  CHECK(back.has_ts);
  CHECK(back.sacks[2] == o.sacks[2]);
  CHECK(std::vector<uint8_t>(p, p + 16) ==
        std::vector<uint8_t>{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 5, 26});
  o.sack_count = 0;
  CHECK(write_data_options(p, o) == 12);
}

TEST_CASE("TCP options: lenient where RFCs say so, strict on lengths", "[tcpopt]") {
  auto opts_of = [](const std::vector<uint8_t>& o) { return tcp_with_opts(o); };
  auto r = opts_of({3, 3, 20, 0});  // window scale above 14 is taken as 14
  REQUIRE(r.ok());
  CHECK(r.view.tcp.opts.wscale == 14);
  r = opts_of({99, 4, 0xaa, 0xbb, 0, 0, 0, 0});  // unknown option skipped, EOL
  REQUIRE(r.ok());
  CHECK_FALSE(r.view.tcp.opts.has_mss);
  r = opts_of({0, 2, 4, 5});  // after EOL nothing is read
  REQUIRE(r.ok());
  CHECK_FALSE(r.view.tcp.opts.has_mss);
  const std::vector<std::vector<uint8_t>> bad = {
      {2, 3, 5, 0},                       // MSS of length 3
      {2, 5, 5, 0, 0, 0, 0, 0},           // MSS of length 5
      {1, 3, 2, 0},                       // WS of length 2
      {4, 3, 0, 0},                       // SACK-permitted of length 3
      {5, 2, 0, 0},                       // SACK with no block
      {5, 6, 0, 0, 0, 0, 1, 1},           // SACK of a partial block
      {1, 1, 8, 8, 0, 0, 0, 0},           // TS of length 8
      {1, 1, 1, 2},                       // length byte missing
      {1, 1, 99, 1},                      // length below 2
      {1, 1, 99, 0},
      {1, 1, 99, 3},                      // past the header
  };
  for (const auto& b : bad) {
    INFO("options " << int(b[0]) << " " << int(b[1]) << " " << int(b[2]) << " " << int(b[3]));
    CHECK(opts_of(b).drop == Drop::kTcpOptions);
  }
  uint8_t junk[44] = {1, 1, 5, 42};  // 5 SACK blocks: more than allowed
  TcpOptions o;
  CHECK_FALSE(parse_tcp_options(junk, sizeof junk, o));
}

TEST_CASE("each malformed TCP segment drops under its own reason", "[tcpopt]") {
  const std::vector<uint8_t> good = tcp_frame({}, {1, 2, 3, 4, 5});
  REQUIRE(drop_of(good) == Drop::kCount);
  std::vector<uint8_t> f = good;
  f.resize(14 + 20 + 19);
  store_be16(&f[16], 39);
  fix_ip_csum(f.data());
  CHECK(drop_of(f) == Drop::kTcpShort);
  f = good;
  f[34 + 12] = 0x40;  // data offset 4
  CHECK(drop_of(f) == Drop::kTcpHeaderLen);
  f[34 + 12] = 0xf0;  // 60 bytes, past a 25-byte segment
  CHECK(drop_of(f) == Drop::kTcpHeaderLen);
  f = good;
  f[34 + 20] ^= 0x80;
  CHECK(drop_of(f) == Drop::kTcpChecksum);
  CHECK(drop_of(f, PacketBuf::kRxL4CsumGood) == Drop::kCount);
  f = good;
  f[34 + 12] = 0x60;
  f[34 + 20] = 2;  // MSS kind, bad length 1 in the (payload now option) bytes
  f[34 + 21] = 1;
  fix_l4_csum(f.data());
  CHECK(drop_of(f) == Drop::kTcpOptions);
}
