// UDP (RFC 768) over IPv4: the header, validation and building.
#pragma once

#include <cstddef>
#include <cstdint>

#include "net/proto/bytes.h"
#include "net/proto/ipv4.h"
#include "net/proto/result.h"
#include "slip/net/addr.h"
#include "slip/net/buf.h"

namespace slip::net::proto {

inline constexpr size_t kUdpHdrLen = 8;

struct UdpHdr {
  uint8_t sport_be[2];
  uint8_t dport_be[2];
  uint8_t len_be[2];
  uint8_t csum_be[2];

  uint16_t sport() const noexcept { return load_be16(sport_be); }
  uint16_t dport() const noexcept { return load_be16(dport_be); }
  uint16_t length() const noexcept { return load_be16(len_be); }
  uint16_t checksum() const noexcept { return load_be16(csum_be); }
};
static_assert(sizeof(UdpHdr) == kUdpHdrLen && alignof(UdpHdr) == 1);

struct UdpView {
  const UdpHdr* hdr = nullptr;
  const uint8_t* payload = nullptr;
  uint16_t payload_len = 0;
};

// Validates a datagram of len bytes (the IP payload) from src to dst:
// kUdpShort under 8 bytes, kUdpLength when the length field is below 8 or past
// the IP payload (a shorter one trims the payload, as Linux does), and
// kUdpChecksum unless the field is 0 (no checksum) or hw_csum_good.
Parsed<UdpView> parse_udp(const uint8_t* p, size_t len, Ipv4Addr src, Ipv4Addr dst,
                          bool hw_csum_good = false) noexcept;
inline Parsed<UdpView> parse_udp(const Ipv4View& ip, bool hw_csum_good = false) noexcept {
  return parse_udp(ip.payload, ip.payload_len, ip.hdr->src(), ip.hdr->dst(), hw_csum_good);
}

// Prepends a UDP header to the payload chain in b. The checksum is computed
// here (a result of 0 is sent as 0xffff), or with csum_offload the field holds
// the pseudo-header sum for the NIC (DPDK's convention) and kTxUdpCsum and
// l4_len are set. nullptr without headroom or when too long for IPv4.
UdpHdr* push_udp(PacketBuf& b, Endpoint src, Endpoint dst, bool csum_offload) noexcept;

}  // namespace slip::net::proto
