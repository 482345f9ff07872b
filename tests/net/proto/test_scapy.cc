// Reference frames from scapy (gen_frames.py): our decoders read the same
// field values scapy encoded, and our builders produce the same bytes.
#include <catch2/catch.hpp>

#include "net/proto/rx.h"
#include "proto_test_util.h"
#include "scapy_frames.h"

using namespace slip_test;

namespace {

template <size_t N>
std::vector<uint8_t> vec(const uint8_t (&a)[N]) {
  return {a, a + N};
}

template <size_t N>
Parsed<RxFrame> decode(const uint8_t (&a)[N]) {
  return decode_frame(a, N);
}

// Wraps payload in UDP/TCP-less IPv4 and Ethernet from the peer to us, the
// way scapy's reference frames were made (ttl, id and DF given).
void push_ip_eth(TestBuf& t, uint8_t proto, uint16_t id, uint8_t ttl, bool df) {
  uint16_t ctr = id;
  Ipv4Hdr* h = push_ipv4(t.b, {kPeerIp, kUsIp, proto, ttl}, ctr, false);
  REQUIRE(h);
  if (!df) {
    store_be16(h->frag_be, 0);
    h->set_checksum(0);
    h->set_checksum(inet_checksum(h, 20));
  }
  REQUIRE(push_ether(t.b, kUsMac, kPeerMac, kEtherTypeIpv4));
}

}  // namespace

TEST_CASE("scapy UDP frame: fields and a byte-exact rebuild", "[udp][scapy]") {
  const auto r = decode(kRefUdp);
  REQUIRE(r.ok());
  const RxFrame& f = r.view;
  CHECK(f.eth.hdr->dst == kUsMac);
  CHECK(f.eth.hdr->src == kPeerMac);
  CHECK(f.ip.hdr->id() == 0x1234);
  CHECK(f.ip.hdr->frag() == kIpFlagDf);
  CHECK(f.ip.hdr->ttl == 63);
  CHECK(f.ip.hdr->total_len() == 44);
  CHECK(f.ip.hdr->checksum() == kRefUdpIpCsum);
  CHECK(f.ip.hdr->src() == kPeerIp);
  CHECK(f.ip.hdr->dst() == kUsIp);
  CHECK(f.udp.hdr->sport() == 40000);
  CHECK(f.udp.hdr->dport() == 11211);
  CHECK(f.udp.hdr->length() == 24);
  CHECK(f.udp.hdr->checksum() == kRefUdpCsum);
  REQUIRE(f.udp.payload_len == 16);
  CHECK(std::memcmp(f.udp.payload, "hello slipstream", 16) == 0);

  TestBuf t;
  std::memcpy(t.b.append(16), "hello slipstream", 16);
  REQUIRE(push_udp(t.b, {kPeerIp, 40000}, {kUsIp, 11211}, false));
  push_ip_eth(t, kIpProtoUdp, 0x1234, 63, true);
  CHECK(t.bytes() == vec(kRefUdp));
}

TEST_CASE("scapy padded UDP frame: padding is not payload", "[udp][scapy]") {
  const auto r = decode(kRefUdpPadded);
  REQUIRE(r.ok());
  CHECK(sizeof kRefUdpPadded == 60);
  CHECK(r.view.ip.hdr->total_len() == 29);
  CHECK(r.view.ip.hdr->frag() == 0);
  CHECK(r.view.ip.hdr->ttl == 5);
  CHECK(r.view.ip.payload_len == 9);
  CHECK(r.view.udp.hdr->sport() == 53);
  CHECK(r.view.udp.hdr->dport() == 5353);
  REQUIRE(r.view.udp.payload_len == 1);
  CHECK(r.view.udp.payload[0] == 'x');
}

TEST_CASE("scapy TCP SYN with options: fields and a byte-exact rebuild", "[tcpopt][scapy]") {
  const auto r = decode(kRefTcpSyn);
  REQUIRE(r.ok());
  const TcpView& t = r.view.tcp;
  CHECK(t.hdr->sport() == 50000);
  CHECK(t.hdr->dport() == 80);
  CHECK(t.hdr->seq() == 1000);
  CHECK(t.hdr->ack() == 0);
  CHECK(t.hdr->flags == kTcpSyn);
  CHECK(t.hdr->window() == 64240);
  CHECK(t.hdr->checksum() == kRefTcpSynCsum);
  CHECK(t.hdr_len == 40);
  CHECK(t.payload_len == 0);
  CHECK(t.opts.has_mss);
  CHECK(t.opts.mss == 1460);
  CHECK(t.opts.sack_permitted);
  CHECK(t.opts.has_ts);
  CHECK(t.opts.ts_val == 12345);
  CHECK(t.opts.ts_ecr == 0);
  CHECK(t.opts.has_wscale);
  CHECK(t.opts.wscale == 7);
  CHECK(t.opts.sack_count == 0);

  uint8_t opts[kTcpMaxOptLen];
  const size_t n = write_syn_options(opts, t.opts);
  REQUIRE(n == 20);
  CHECK(std::memcmp(opts, kRefTcpSyn + 54, n) == 0);
  TestBuf b;
  REQUIRE(push_tcp(b.b, {{kPeerIp, 50000}, {kUsIp, 80}, 1000, 0, kTcpSyn, 64240, opts, n}, false));
  push_ip_eth(b, kIpProtoTcp, 1, 64, true);
  CHECK(b.bytes() == vec(kRefTcpSyn));
}

TEST_CASE("scapy TCP ACK with timestamps and SACK: fields and rebuild", "[tcpopt][scapy]") {
  const auto r = decode(kRefTcpSack);
  REQUIRE(r.ok());
  const TcpView& t = r.view.tcp;
  CHECK(t.hdr->seq() == 2000);
  CHECK(t.hdr->ack() == 3000);
  CHECK(t.hdr->flags == kTcpAck);
  CHECK(t.hdr->window() == 501);
  CHECK(t.hdr->checksum() == kRefTcpSackCsum);
  CHECK(t.hdr_len == 20 + 12 + 20);
  CHECK(t.opts.has_ts);
  CHECK(t.opts.ts_val == 100);
  CHECK(t.opts.ts_ecr == 200);
  REQUIRE(t.opts.sack_count == 2);
  CHECK(t.opts.sacks[0] == SackBlock{1000, 2000});
  CHECK(t.opts.sacks[1] == SackBlock{3000, 4000});
  REQUIRE(t.payload_len == 5);
  CHECK(std::memcmp(t.payload, "data!", 5) == 0);

  uint8_t opts[kTcpMaxOptLen];
  const size_t n = write_data_options(opts, t.opts);
  REQUIRE(n == 32);
  TestBuf b;
  std::memcpy(b.b.append(5), "data!", 5);
  REQUIRE(push_tcp(b.b, {{kPeerIp, 50000}, {kUsIp, 80}, 2000, 3000, kTcpAck, 501, opts, n}, false));
  push_ip_eth(b, kIpProtoTcp, 2, 64, true);
  CHECK(b.bytes() == vec(kRefTcpSack));
}

TEST_CASE("scapy echo request becomes scapy's echo reply", "[icmp][scapy]") {
  const auto r = decode(kRefIcmpEcho);
  REQUIRE(r.ok());
  CHECK(r.view.icmp.hdr->type == kIcmpEchoRequest);
  CHECK(r.view.icmp.hdr->checksum() == kRefIcmpEchoCsum);
  CHECK(r.view.icmp.hdr->echo_id() == 0x77);
  CHECK(r.view.icmp.hdr->echo_seq() == 3);
  CHECK(r.view.icmp.body_len == 32);
  TestBuf t(kRefIcmpEcho, sizeof kRefIcmpEcho);
  REQUIRE(icmp_echo_reply_in_place(t.b, kUsMac, kUsIp));
  CHECK(t.bytes() == vec(kRefIcmpEchoReply));
}

TEST_CASE("scapy port unreachable matches ours", "[icmp][scapy]") {
  const auto r = decode(kRefIcmpUnreach);
  REQUIRE(r.ok());
  const auto q = parse_icmp_quote(r.view.icmp);
  REQUIRE(q.ok());
  CHECK(q.view.sport == 40000);
  CHECK(q.view.dport == 11211);
  CHECK(q.view.proto == kIpProtoUdp);
  TestBuf t;
  REQUIRE(build_icmp_unreach(t.b, kIcmpCodePortUnreach, kRefUdp + 14, sizeof kRefUdp - 14));
  CHECK(t.bytes() == std::vector<uint8_t>(kRefIcmpUnreach + 34, kRefIcmpUnreach + sizeof kRefIcmpUnreach));
}

TEST_CASE("scapy IPv4 with a router alert option", "[ipv4][scapy]") {
  const auto r = decode(kRefIpOptions);
  REQUIRE(r.ok());
  CHECK(r.view.ip.hdr_len == 24);
  CHECK(r.view.ip.hdr->id() == 9);
  REQUIRE(r.view.udp.payload_len == 3);
  CHECK(std::memcmp(r.view.udp.payload, "opt", 3) == 0);
}

TEST_CASE("our ARP request and reply equal scapy's bytes", "[arp][scapy]") {
  TestBuf q;
  REQUIRE(build_arp_request(q.b, kUsMac, kUsIp, kPeerIp));
  CHECK(q.bytes() == vec(kRefArpRequest));
  TestBuf a;
  REQUIRE(build_arp_reply(a.b, kUsMac, kUsIp, kPeerMac, kPeerIp));
  CHECK(a.bytes() == vec(kRefArpReply));
  REQUIRE(decode(kRefArpRequest).ok());
  CHECK(decode(kRefArpReply).view.arp->tha == kPeerMac);
}
