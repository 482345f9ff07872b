#include "net/proto/tcp_wire.h"

#include <algorithm>
#include <cstring>

#include "net/proto/checksum.h"

namespace slip::net::proto {
namespace {

// Decodes one option whose kind and length already passed the generic checks.
bool decode_option(uint8_t kind, const uint8_t* v, size_t olen, TcpOptions& o) noexcept {
  switch (kind) {
    case kTcpOptMss:
      if (olen != 4) return false;
      o.has_mss = true;
      o.mss = load_be16(v);
      return true;
    case kTcpOptWscale:
      if (olen != 3) return false;
      o.has_wscale = true;
      o.wscale = std::min(v[0], kTcpMaxWscale);
      return true;
    case kTcpOptSackPerm:
      if (olen != 2) return false;
      o.sack_permitted = true;
      return true;
    case kTcpOptSack: {
      const size_t n = (olen - 2) / 8;
      if ((olen - 2) % 8 != 0 || n == 0 || n > kTcpMaxSackBlocks) return false;
      for (size_t i = 0; i < n; i++) o.sacks[i] = {load_be32(v + 8 * i), load_be32(v + 8 * i + 4)};
      o.sack_count = static_cast<uint8_t>(n);
      return true;
    }
    case kTcpOptTs:
      if (olen != 10) return false;
      o.has_ts = true;
      o.ts_val = load_be32(v);
      o.ts_ecr = load_be32(v + 4);
      return true;
    default:
      return true;  // unknown: skipped
  }
}

uint8_t* put_nops(uint8_t* p, size_t n) noexcept {
  std::memset(p, kTcpOptNop, n);
  return p + n;
}

uint8_t* put_ts(uint8_t* p, const TcpOptions& o) noexcept {
  p[0] = kTcpOptTs;
  p[1] = 10;
  store_be32(p + 2, o.ts_val);
  store_be32(p + 6, o.ts_ecr);
  return p + 10;
}

}  // namespace

bool parse_tcp_options(const uint8_t* p, size_t len, TcpOptions& out) noexcept {
  out = TcpOptions{};
  size_t i = 0;
  while (i < len) {
    const uint8_t kind = p[i];
    if (kind == kTcpOptEol) break;
    if (kind == kTcpOptNop) {
      i++;
      continue;
    }
    if (len - i < 2) return false;
    const size_t olen = p[i + 1];
    if (olen < 2 || olen > len - i) return false;
    if (!decode_option(kind, p + i + 2, olen, out)) return false;
    i += olen;
  }
  return true;
}

Parsed<TcpView> parse_tcp(const uint8_t* p, size_t len, Ipv4Addr src, Ipv4Addr dst, bool hw_csum_good) noexcept {
  using R = Parsed<TcpView>;
  if (len < kTcpHdrLen) return R::fail(Drop::kTcpShort);
  const auto* h = reinterpret_cast<const TcpHdr*>(p);
  const size_t hl = h->hdr_len();
  if (hl < kTcpHdrLen || hl > len) return R::fail(Drop::kTcpHeaderLen);
  if (!hw_csum_good && !csum_ok(p, len, pseudo_header_sum(src, dst, kIpProtoTcp, static_cast<uint16_t>(len))))
    return R::fail(Drop::kTcpChecksum);
  R r;
  if (!parse_tcp_options(p + kTcpHdrLen, hl - kTcpHdrLen, r.view.opts)) return R::fail(Drop::kTcpOptions);
  r.view.hdr = h;
  r.view.payload = p + hl;
  r.view.hdr_len = static_cast<uint16_t>(hl);
  r.view.payload_len = static_cast<uint16_t>(len - hl);
  return r;
}

size_t write_syn_options(uint8_t* p, const TcpOptions& o) noexcept {
  uint8_t* q = p;
  if (o.has_mss) {
    q[0] = kTcpOptMss;
    q[1] = 4;
    store_be16(q + 2, o.mss);
    q += 4;
  }
  if (o.sack_permitted && o.has_ts) {
    q[0] = kTcpOptSackPerm;
    q[1] = 2;
    q = put_ts(q + 2, o);
  } else if (o.has_ts) {
    q = put_ts(put_nops(q, 2), o);
  } else if (o.sack_permitted) {
    q = put_nops(q, 2);
    q[0] = kTcpOptSackPerm;
    q[1] = 2;
    q += 2;
  }
  if (o.has_wscale) {
    q = put_nops(q, 1);
    q[0] = kTcpOptWscale;
    q[1] = 3;
    q[2] = std::min(o.wscale, kTcpMaxWscale);
    q += 3;
  }
  return static_cast<size_t>(q - p);
}

size_t write_data_options(uint8_t* p, const TcpOptions& o) noexcept {
  uint8_t* q = p;
  if (o.has_ts) q = put_ts(put_nops(q, 2), o);
  const size_t n = std::min<size_t>(o.sack_count, o.has_ts ? 3 : kTcpMaxSackBlocks);
  if (n) {
    q = put_nops(q, 2);
    q[0] = kTcpOptSack;
    q[1] = static_cast<uint8_t>(2 + 8 * n);
    q += 2;
    for (size_t i = 0; i < n; i++, q += 8) {
      store_be32(q, o.sacks[i].left);
      store_be32(q + 4, o.sacks[i].right);
    }
  }
  return static_cast<size_t>(q - p);
}

TcpHdr* push_tcp(PacketBuf& b, const TcpTx& t, bool csum_offload, const uint32_t* payload_sum) noexcept {
  if (t.opts_len % 4 != 0 || t.opts_len > kTcpMaxOptLen) return nullptr;
  const size_t hl = kTcpHdrLen + t.opts_len;
  const size_t seg_len = b.chain_len() + hl;
  if (seg_len > 0xffff - kIpv4HdrLen) return nullptr;
  uint8_t* p = b.prepend(hl);
  if (!p) return nullptr;
  auto* h = reinterpret_cast<TcpHdr*>(p);
  store_be16(h->sport_be, t.src.port);
  store_be16(h->dport_be, t.dst.port);
  store_be32(h->seq_be, t.seq);
  store_be32(h->ack_be, t.ack);
  h->off_rsvd = static_cast<uint8_t>((hl / 4) << 4);
  h->flags = t.flags;
  store_be16(h->win_be, t.window);
  store_be16(h->csum_be, 0);
  store_be16(h->urg_be, 0);
  if (t.opts_len) std::memcpy(p + kTcpHdrLen, t.opts, t.opts_len);
  const uint32_t phdr = pseudo_header_sum(t.src.ip, t.dst.ip, kIpProtoTcp, static_cast<uint16_t>(seg_len));
  b.l4_len = static_cast<uint16_t>(hl);
  if (csum_offload) {
    b.offload_flags |= PacketBuf::kTxTcpCsum;
    store_be16(h->csum_be, csum_fold(phdr));
  } else if (payload_sum) {
    // hl is a multiple of 4, so the payload starts on an even offset and its sum adds as it is.
    store_be16(h->csum_be, csum_finish(csum_add(csum_partial(p, hl, phdr), *payload_sum)));
  } else {
    store_be16(h->csum_be, csum_finish(csum_chain(b, 0, phdr)));
  }
  return h;
}

}  // namespace slip::net::proto
