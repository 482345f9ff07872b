// Ethernet II framing: the 14-byte header, parsing and prepending it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "net/proto/bytes.h"
#include "net/proto/result.h"
#include "slip/net/addr.h"
#include "slip/net/buf.h"

namespace slip::net::proto {

inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr size_t kEtherHdrLen = 14;
inline constexpr size_t kEtherMinFrame = 60;  // without the FCS

// The wire header; every field is bytes, so it has alignment 1 and can sit
// at any offset of a frame.
struct EtherHdr {
  MacAddr dst;
  MacAddr src;
  uint8_t type_be[2];

  uint16_t ethertype() const noexcept { return load_be16(type_be); }
  void set_ethertype(uint16_t t) noexcept { store_be16(type_be, t); }
};
static_assert(sizeof(EtherHdr) == kEtherHdrLen && alignof(EtherHdr) == 1);

struct EtherView {
  const EtherHdr* hdr = nullptr;
  const uint8_t* payload = nullptr;
  size_t payload_len = 0;  // may include padding up to the 60-byte minimum
};

// Splits a frame into header and payload; kEthShort under 14 bytes. Which
// EtherTypes and destinations to accept is the stack's choice.
inline Parsed<EtherView> parse_ether(const uint8_t* p, size_t len) noexcept {
  if (len < kEtherHdrLen) return Parsed<EtherView>::fail(Drop::kEthShort);
  return Parsed<EtherView>::good({reinterpret_cast<const EtherHdr*>(p), p + kEtherHdrLen, len - kEtherHdrLen});
}

// Prepends an Ethernet header to b and records l2_len for TX offloads;
// nullptr without headroom.
inline EtherHdr* push_ether(PacketBuf& b, MacAddr dst, MacAddr src, uint16_t type) noexcept {
  uint8_t* p = b.prepend(kEtherHdrLen);
  if (!p) return nullptr;
  auto* h = reinterpret_cast<EtherHdr*>(p);
  h->dst = dst;
  h->src = src;
  h->set_ethertype(type);
  b.l2_len = kEtherHdrLen;
  return h;
}

// Zero-pads a short single-segment frame to the Ethernet minimum for NICs and
// backends that do not pad themselves; false without tailroom.
inline bool pad_to_min_frame(PacketBuf& b) noexcept {
  if (b.next || b.len >= kEtherMinFrame) return true;
  const size_t n = kEtherMinFrame - b.len;
  uint8_t* p = b.append(n);
  if (!p) return false;
  std::memset(p, 0, n);
  return true;
}

}  // namespace slip::net::proto
