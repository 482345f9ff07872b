#include "net/proto/arp.h"

#include "net/proto/ether.h"

namespace slip::net::proto {

Parsed<const ArpPacket*> parse_arp(const uint8_t* p, size_t len) noexcept {
  using R = Parsed<const ArpPacket*>;
  if (len < kArpLen) return R::fail(Drop::kArpMalformed);
  const auto* a = reinterpret_cast<const ArpPacket*>(p);
  if (a->htype() != kArpHtypeEther || a->ptype() != kEtherTypeIpv4 || a->hlen != 6 || a->plen != 4)
    return R::fail(Drop::kArpMalformed);
  if (a->op() != kArpOpRequest && a->op() != kArpOpReply) return R::fail(Drop::kArpMalformed);
  return R::good(a);
}

namespace {

bool build_arp(PacketBuf& b, MacAddr eth_dst, uint16_t op, MacAddr sha, Ipv4Addr spa, MacAddr tha,
               Ipv4Addr tpa) noexcept {
  uint8_t* p = b.append(kArpLen);
  if (!p) return false;
  auto* a = reinterpret_cast<ArpPacket*>(p);
  store_be16(a->htype_be, kArpHtypeEther);
  store_be16(a->ptype_be, kEtherTypeIpv4);
  a->hlen = 6;
  a->plen = 4;
  store_be16(a->op_be, op);
  a->sha = sha;
  store_be32(a->spa_be, spa.v);
  a->tha = tha;
  store_be32(a->tpa_be, tpa.v);
  if (!push_ether(b, eth_dst, sha, kEtherTypeArp)) {
    b.trim(kArpLen);
    return false;
  }
  return true;
}

}  // namespace

bool build_arp_request(PacketBuf& b, MacAddr our_mac, Ipv4Addr our_ip, Ipv4Addr target) noexcept {
  return build_arp(b, MacAddr::broadcast(), kArpOpRequest, our_mac, our_ip, MacAddr{}, target);
}

bool build_arp_reply(PacketBuf& b, MacAddr our_mac, Ipv4Addr our_ip, MacAddr req_mac, Ipv4Addr req_ip) noexcept {
  return build_arp(b, req_mac, kArpOpReply, our_mac, our_ip, req_mac, req_ip);
}

bool build_arp_gratuitous(PacketBuf& b, MacAddr our_mac, Ipv4Addr our_ip) noexcept {
  return build_arp(b, MacAddr::broadcast(), kArpOpRequest, our_mac, our_ip, MacAddr{}, our_ip);
}

}  // namespace slip::net::proto
