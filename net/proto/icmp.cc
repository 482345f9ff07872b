#include "net/proto/icmp.h"

#include <algorithm>
#include <cstring>

#include "net/proto/checksum.h"
#include "net/proto/ether.h"
#include "net/proto/ipv4.h"

namespace slip::net::proto {

Parsed<IcmpView> parse_icmp(const uint8_t* p, size_t len) noexcept {
  using R = Parsed<IcmpView>;
  if (len < kIcmpHdrLen) return R::fail(Drop::kIcmpShort);
  if (!csum_ok(p, len)) return R::fail(Drop::kIcmpChecksum);
  const auto* h = reinterpret_cast<const IcmpHdr*>(p);
  switch (h->type) {
    case kIcmpEchoRequest:
    case kIcmpEchoReply:
    case kIcmpDestUnreach:
    case kIcmpTimeExceeded:
      return R::good({h, p + kIcmpHdrLen, len - kIcmpHdrLen});
    default:
      return R::fail(Drop::kIcmpType);
  }
}

Parsed<IcmpQuote> parse_icmp_quote(const IcmpView& v) noexcept {
  using R = Parsed<IcmpQuote>;
  if (v.body_len < kIpv4HdrLen) return R::fail(Drop::kIcmpShort);
  const auto* ip = reinterpret_cast<const Ipv4Hdr*>(v.body);
  const size_t hl = ip->hdr_len();
  if (ip->version() != 4 || hl < kIpv4HdrLen || v.body_len < hl + 8) return R::fail(Drop::kIcmpShort);
  const uint8_t* l4 = v.body + hl;
  return R::good({ip->src(), ip->dst(), ip->proto, load_be16(l4), load_be16(l4 + 2)});
}

bool icmp_echo_reply_in_place(PacketBuf& b, MacAddr our_mac, Ipv4Addr our_ip) noexcept {
  if (b.next || b.len < kEtherHdrLen + kIpv4HdrLen + kIcmpHdrLen) return false;
  auto* ip = reinterpret_cast<Ipv4Hdr*>(b.data + kEtherHdrLen);
  const size_t hl = ip->hdr_len();
  size_t tl = ip->total_len();
  if (hl < kIpv4HdrLen || tl < hl + kIcmpHdrLen || kEtherHdrLen + tl > b.len) return false;
  if (b.data[kEtherHdrLen + hl] != kIcmpEchoRequest) return false;
  b.len = static_cast<uint32_t>(kEtherHdrLen + tl);  // drop Ethernet padding
  if (hl > kIpv4HdrLen) {
    // Slide the Ethernet and fixed IP headers over the options.
    const size_t opt = hl - kIpv4HdrLen;
    std::memmove(b.data + opt, b.data, kEtherHdrLen + kIpv4HdrLen);
    b.adj(opt);
    tl -= opt;
    ip = reinterpret_cast<Ipv4Hdr*>(b.data + kEtherHdrLen);
    ip->ver_ihl = 0x45;
  }
  auto* eth = reinterpret_cast<EtherHdr*>(b.data);
  eth->dst = eth->src;
  eth->src = our_mac;
  ip->set_dst(ip->src());
  ip->set_src(our_ip);
  ip->set_total_len(static_cast<uint16_t>(tl));
  ip->ttl = kIpDefaultTtl;
  ip->set_checksum(0);
  ip->set_checksum(inet_checksum(ip, kIpv4HdrLen));
  auto* icmp = reinterpret_cast<IcmpHdr*>(b.data + kEtherHdrLen + kIpv4HdrLen);
  const uint16_t old_word = static_cast<uint16_t>(kIcmpEchoRequest << 8 | icmp->code);
  icmp->type = kIcmpEchoReply;
  store_be16(icmp->csum_be, csum_update16(icmp->checksum(), old_word, icmp->code));
  b.offload_flags = 0;
  b.l2_len = kEtherHdrLen;
  b.l3_len = kIpv4HdrLen;
  b.l4_len = 0;
  return true;
}

bool build_icmp_unreach(PacketBuf& b, uint8_t code, const uint8_t* orig_ip, size_t orig_len,
                        uint16_t next_hop_mtu) noexcept {
  size_t quote = orig_len;
  if (orig_len >= kIpv4HdrLen) quote = std::min(orig_len, reinterpret_cast<const Ipv4Hdr*>(orig_ip)->hdr_len() + 8);
  uint8_t* p = b.append(kIcmpHdrLen + quote);
  if (!p) return false;
  auto* h = reinterpret_cast<IcmpHdr*>(p);
  h->type = kIcmpDestUnreach;
  h->code = code;
  store_be16(h->csum_be, 0);
  store_be16(h->rest, 0);
  store_be16(h->rest + 2, code == kIcmpCodeFragNeeded ? next_hop_mtu : 0);
  std::memcpy(p + kIcmpHdrLen, orig_ip, quote);
  store_be16(h->csum_be, inet_checksum(p, kIcmpHdrLen + quote));
  return true;
}

}  // namespace slip::net::proto
