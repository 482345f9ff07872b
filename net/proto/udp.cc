#include "net/proto/udp.h"

#include "net/proto/checksum.h"

namespace slip::net::proto {

Parsed<UdpView> parse_udp(const uint8_t* p, size_t len, Ipv4Addr src, Ipv4Addr dst, bool hw_csum_good) noexcept {
  using R = Parsed<UdpView>;
  if (len < kUdpHdrLen) return R::fail(Drop::kUdpShort);
  const auto* h = reinterpret_cast<const UdpHdr*>(p);
  const uint16_t ulen = h->length();
  if (ulen < kUdpHdrLen || ulen > len) return R::fail(Drop::kUdpLength);
  if (!hw_csum_good && h->checksum() != 0 && !csum_ok(p, ulen, pseudo_header_sum(src, dst, kIpProtoUdp, ulen)))
    return R::fail(Drop::kUdpChecksum);
  return R::good({h, p + kUdpHdrLen, static_cast<uint16_t>(ulen - kUdpHdrLen)});
}

UdpHdr* push_udp(PacketBuf& b, Endpoint src, Endpoint dst, bool csum_offload) noexcept {
  const size_t ulen = b.chain_len() + kUdpHdrLen;
  if (ulen > 0xffff - kIpv4HdrLen) return nullptr;
  uint8_t* p = b.prepend(kUdpHdrLen);
  if (!p) return nullptr;
  auto* h = reinterpret_cast<UdpHdr*>(p);
  store_be16(h->sport_be, src.port);
  store_be16(h->dport_be, dst.port);
  store_be16(h->len_be, static_cast<uint16_t>(ulen));
  store_be16(h->csum_be, 0);
  const uint32_t phdr = pseudo_header_sum(src.ip, dst.ip, kIpProtoUdp, static_cast<uint16_t>(ulen));
  b.l4_len = kUdpHdrLen;
  if (csum_offload) {
    b.offload_flags |= PacketBuf::kTxUdpCsum;
    store_be16(h->csum_be, csum_fold(phdr));
  } else {
    const uint16_t c = csum_finish(csum_chain(b, 0, phdr));
    store_be16(h->csum_be, c == 0 ? 0xffff : c);
  }
  return h;
}

}  // namespace slip::net::proto
