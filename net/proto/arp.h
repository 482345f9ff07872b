// ARP for Ethernet and IPv4 (RFC 826): the 28-byte packet, its validation, and
// complete request, reply and gratuitous frames.
#pragma once

#include <cstddef>
#include <cstdint>

#include "net/proto/bytes.h"
#include "net/proto/result.h"
#include "slip/net/addr.h"
#include "slip/net/buf.h"

namespace slip::net::proto {

inline constexpr uint16_t kArpHtypeEther = 1;
inline constexpr uint16_t kArpOpRequest = 1;
inline constexpr uint16_t kArpOpReply = 2;
inline constexpr size_t kArpLen = 28;

struct ArpPacket {
  uint8_t htype_be[2];
  uint8_t ptype_be[2];
  uint8_t hlen;
  uint8_t plen;
  uint8_t op_be[2];
  MacAddr sha;
  uint8_t spa_be[4];
  MacAddr tha;
  uint8_t tpa_be[4];

  uint16_t htype() const noexcept { return load_be16(htype_be); }
  uint16_t ptype() const noexcept { return load_be16(ptype_be); }
  uint16_t op() const noexcept { return load_be16(op_be); }
  Ipv4Addr spa() const noexcept { return Ipv4Addr(load_be32(spa_be)); }
  Ipv4Addr tpa() const noexcept { return Ipv4Addr(load_be32(tpa_be)); }
};
static_assert(sizeof(ArpPacket) == kArpLen && alignof(ArpPacket) == 1);

// Validates an ARP payload (after the Ethernet header); kArpMalformed unless it
// is an Ethernet/IPv4 request or reply of at least 28 bytes.
Parsed<const ArpPacket*> parse_arp(const uint8_t* p, size_t len) noexcept;

// Each builder writes a whole frame (Ethernet header included) into an empty
// buffer b and returns false when b lacks room. Frames are not padded: see
// pad_to_min_frame().
bool build_arp_request(PacketBuf& b, MacAddr our_mac, Ipv4Addr our_ip, Ipv4Addr target) noexcept;
// The answer to a request from (req_mac, req_ip) for our_ip.
bool build_arp_reply(PacketBuf& b, MacAddr our_mac, Ipv4Addr our_ip, MacAddr req_mac, Ipv4Addr req_ip) noexcept;
// A broadcast request for our own address (RFC 5227 announcement), so that
// neighbours refresh their caches.
bool build_arp_gratuitous(PacketBuf& b, MacAddr our_mac, Ipv4Addr our_ip) noexcept;

}  // namespace slip::net::proto
