#include "net/proto/ipv4.h"

#include "net/proto/checksum.h"
#include "net/proto/ether.h"

namespace slip::net::proto {
namespace {

inline constexpr uint8_t kOptEol = 0, kOptNop = 1;

// Options are type-length-value except EOL and NOP (RFC 791 section 3.1);
// a length below 2 or past the header is malformed.
bool ipv4_options_ok(const uint8_t* p, size_t n) noexcept {
  size_t i = 0;
  while (i < n) {
    const uint8_t kind = p[i];
    if (kind == kOptEol) return true;
    if (kind == kOptNop) {
      i++;
      continue;
    }
    if (i + 1 >= n) return false;
    const uint8_t olen = p[i + 1];
    if (olen < 2 || olen > n - i) return false;
    i += olen;
  }
  return true;
}

}  // namespace

Parsed<Ipv4View> parse_ipv4(const uint8_t* p, size_t len, bool hw_csum_good) noexcept {
  using R = Parsed<Ipv4View>;
  if (len < kIpv4HdrLen) return R::fail(Drop::kIpShort);
  const auto* h = reinterpret_cast<const Ipv4Hdr*>(p);
  if (h->version() != 4) return R::fail(Drop::kIpVersion);
  const size_t hl = h->hdr_len();
  if (hl < kIpv4HdrLen || hl > len) return R::fail(Drop::kIpHeaderLen);
  const size_t tl = h->total_len();
  if (tl < hl || tl > len) return R::fail(Drop::kIpTotalLen);
  if (!hw_csum_good && !csum_ok(p, hl)) return R::fail(Drop::kIpChecksum);
  if (h->frag() & (kIpFlagMf | kIpFragOffMask)) return R::fail(Drop::kIpFragment);
  if (h->ttl == 0) return R::fail(Drop::kIpTtl);
  if (hl > kIpv4HdrLen && !ipv4_options_ok(p + kIpv4HdrLen, hl - kIpv4HdrLen)) return R::fail(Drop::kIpOptions);
  return R::good({h, p + hl, static_cast<uint16_t>(hl), static_cast<uint16_t>(tl - hl)});
}

Ipv4Hdr* push_ipv4(PacketBuf& b, const Ipv4Tx& tx, uint16_t& id_counter, bool csum_offload) noexcept {
  const size_t total = b.chain_len() + kIpv4HdrLen;
  if (total > 0xffff) return nullptr;
  uint8_t* p = b.prepend(kIpv4HdrLen);
  if (!p) return nullptr;
  auto* h = reinterpret_cast<Ipv4Hdr*>(p);
  h->ver_ihl = 0x45;
  h->tos = tx.tos;
  h->set_total_len(static_cast<uint16_t>(total));
  store_be16(h->id_be, id_counter++);
  store_be16(h->frag_be, kIpFlagDf);
  h->ttl = tx.ttl;
  h->proto = tx.proto;
  h->set_checksum(0);
  h->set_src(tx.src);
  h->set_dst(tx.dst);
  b.l3_len = kIpv4HdrLen;
  if (csum_offload) {
    b.offload_flags |= PacketBuf::kTxIpCsum;
    b.l2_len = kEtherHdrLen;
  } else {
    h->set_checksum(inet_checksum(h, kIpv4HdrLen));
  }
  return h;
}

}  // namespace slip::net::proto
