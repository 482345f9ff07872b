// IPv4 (RFC 791): the header, receive-side validation and building headers for
// transmission. No fragmentation or reassembly: fragments are dropped.
#pragma once

#include <cstddef>
#include <cstdint>

#include "net/proto/bytes.h"
#include "net/proto/result.h"
#include "slip/net/addr.h"
#include "slip/net/buf.h"

namespace slip::net::proto {

inline constexpr uint8_t kIpProtoIcmp = 1;
inline constexpr uint8_t kIpProtoTcp = 6;
inline constexpr uint8_t kIpProtoUdp = 17;
inline constexpr size_t kIpv4HdrLen = 20;  // without options
inline constexpr uint8_t kIpDefaultTtl = 64;
inline constexpr uint16_t kIpFlagDf = 0x4000, kIpFlagMf = 0x2000, kIpFragOffMask = 0x1fff;

struct Ipv4Hdr {
  uint8_t ver_ihl;
  uint8_t tos;
  uint8_t total_len_be[2];
  uint8_t id_be[2];
  uint8_t frag_be[2];  // flags and fragment offset
  uint8_t ttl;
  uint8_t proto;
  uint8_t csum_be[2];
  uint8_t src_be[4];
  uint8_t dst_be[4];

  uint8_t version() const noexcept { return ver_ihl >> 4; }
  size_t hdr_len() const noexcept { return static_cast<size_t>(ver_ihl & 0xf) * 4; }
  uint16_t total_len() const noexcept { return load_be16(total_len_be); }
  uint16_t id() const noexcept { return load_be16(id_be); }
  uint16_t frag() const noexcept { return load_be16(frag_be); }
  uint16_t checksum() const noexcept { return load_be16(csum_be); }
  Ipv4Addr src() const noexcept { return Ipv4Addr(load_be32(src_be)); }
  Ipv4Addr dst() const noexcept { return Ipv4Addr(load_be32(dst_be)); }
  void set_total_len(uint16_t v) noexcept { store_be16(total_len_be, v); }
  void set_checksum(uint16_t v) noexcept { store_be16(csum_be, v); }
  void set_src(Ipv4Addr a) noexcept { store_be32(src_be, a.v); }
  void set_dst(Ipv4Addr a) noexcept { store_be32(dst_be, a.v); }
};
static_assert(sizeof(Ipv4Hdr) == kIpv4HdrLen && alignof(Ipv4Hdr) == 1);

struct Ipv4View {
  const Ipv4Hdr* hdr = nullptr;
  const uint8_t* payload = nullptr;
  uint16_t hdr_len = 0;      // IHL * 4, options included
  uint16_t payload_len = 0;  // total length less the header: Ethernet padding excluded
};

// Validates the IPv4 packet at p (len bytes to the end of the frame, padding
// included). Checks, in order: kIpShort, kIpVersion, kIpHeaderLen (IHL < 5 or
// past the frame), kIpTotalLen, kIpChecksum (skipped when hw_csum_good),
// kIpFragment, kIpTtl, kIpOptions. Destination and protocol are the stack's.
Parsed<Ipv4View> parse_ipv4(const uint8_t* p, size_t len, bool hw_csum_good = false) noexcept;

// Whether the NIC verified the IP header checksum of a received buffer (a
// "bad" mark is re-checked in software rather than trusted).
inline bool rx_ip_csum_good(const PacketBuf& b) noexcept { return b.offload_flags & PacketBuf::kRxIpCsumGood; }
// Whether the NIC verified the TCP or UDP checksum.
inline bool rx_l4_csum_good(const PacketBuf& b) noexcept { return b.offload_flags & PacketBuf::kRxL4CsumGood; }

struct Ipv4Tx {
  Ipv4Addr src, dst;
  uint8_t proto = 0;
  uint8_t ttl = kIpDefaultTtl;
  uint8_t tos = 0;
};

// Prepends a 20-byte header (DF set, id = id_counter++) to the datagram in b,
// whose chain length gives the total length. With csum_offload the checksum
// is left 0 for the NIC (kTxIpCsum, l2_len and l3_len set); otherwise it is
// computed here. nullptr without headroom or past 65535 bytes.
Ipv4Hdr* push_ipv4(PacketBuf& b, const Ipv4Tx& tx, uint16_t& id_counter, bool csum_offload) noexcept;

}  // namespace slip::net::proto
