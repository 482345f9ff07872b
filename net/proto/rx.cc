#include "net/proto/rx.h"

namespace slip::net::proto {

Parsed<RxFrame> decode_frame(const uint8_t* p, size_t len, uint32_t rx_flags) noexcept {
  using R = Parsed<RxFrame>;
  R r;
  RxFrame& f = r.view;
  const auto eth = parse_ether(p, len);
  if (!eth) return R::fail(eth.drop);
  f.eth = eth.view;
  const uint16_t type = f.eth.hdr->ethertype();
  if (type == kEtherTypeArp) {
    const auto arp = parse_arp(f.eth.payload, f.eth.payload_len);
    if (!arp) return R::fail(arp.drop);
    f.arp = arp.view;
    return r;
  }
  if (type != kEtherTypeIpv4) return R::fail(Drop::kEthType);
  const auto ip = parse_ipv4(f.eth.payload, f.eth.payload_len, rx_flags & PacketBuf::kRxIpCsumGood);
  if (!ip) return R::fail(ip.drop);
  f.ip = ip.view;
  const bool l4_good = rx_flags & PacketBuf::kRxL4CsumGood;
  switch (f.ip.hdr->proto) {
    case kIpProtoIcmp: {
      const auto icmp = parse_icmp(f.ip.payload, f.ip.payload_len);
      if (!icmp) return R::fail(icmp.drop);
      f.icmp = icmp.view;
      return r;
    }
    case kIpProtoUdp: {
      const auto udp = parse_udp(f.ip, l4_good);
      if (!udp) return R::fail(udp.drop);
      f.udp = udp.view;
      return r;
    }
    case kIpProtoTcp: {
      const auto tcp = parse_tcp(f.ip, l4_good);
      if (!tcp) return R::fail(tcp.drop);
      f.tcp = tcp.view;
      return r;
    }
    default:
      return R::fail(Drop::kIpProto);
  }
}

}  // namespace slip::net::proto
