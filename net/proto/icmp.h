// ICMP for IPv4 (RFC 792): validation, echo replies made in place from the
// request's buffer, and destination-unreachable errors.
#pragma once

#include <cstddef>
#include <cstdint>

#include "net/proto/bytes.h"
#include "net/proto/result.h"
#include "slip/net/addr.h"
#include "slip/net/buf.h"

namespace slip::net::proto {

inline constexpr uint8_t kIcmpEchoReply = 0, kIcmpDestUnreach = 3, kIcmpEchoRequest = 8, kIcmpTimeExceeded = 11;
inline constexpr uint8_t kIcmpCodePortUnreach = 3, kIcmpCodeFragNeeded = 4;
inline constexpr size_t kIcmpHdrLen = 8;

struct IcmpHdr {
  uint8_t type;
  uint8_t code;
  uint8_t csum_be[2];
  uint8_t rest[4];  // echo: id and sequence; frag-needed: unused and next-hop MTU

  uint16_t checksum() const noexcept { return load_be16(csum_be); }
  uint16_t echo_id() const noexcept { return load_be16(rest); }
  uint16_t echo_seq() const noexcept { return load_be16(rest + 2); }
  uint16_t next_hop_mtu() const noexcept { return load_be16(rest + 2); }
};
static_assert(sizeof(IcmpHdr) == kIcmpHdrLen && alignof(IcmpHdr) == 1);

struct IcmpView {
  const IcmpHdr* hdr = nullptr;
  const uint8_t* body = nullptr;  // after the 8-byte header
  size_t body_len = 0;
};

// Validates an ICMP message of len bytes (the IP payload): kIcmpShort,
// kIcmpChecksum, then kIcmpType for anything but echo request and reply,
// destination unreachable and time exceeded.
Parsed<IcmpView> parse_icmp(const uint8_t* p, size_t len) noexcept;

// What an ICMP error quotes of the datagram that caused it: enough to find
// the socket it concerns.
struct IcmpQuote {
  Ipv4Addr src, dst;  // of the original datagram (src is normally us)
  uint8_t proto = 0;
  uint16_t sport = 0, dport = 0;
};
// The quote of an error (destination unreachable, time exceeded);
// kIcmpShort unless it holds an IPv4 header and 8 bytes after it.
Parsed<IcmpQuote> parse_icmp_quote(const IcmpView& v) noexcept;

// Turns the echo request in b (b.data at its Ethernet header; a single
// segment that passed parse_ipv4 and parse_icmp) into its reply, reusing the
// buffer: addresses swapped (our_mac and our_ip as sources), TTL reset, IP
// options and Ethernet padding dropped, type 0 with the checksum updated
// incrementally. False, with b untouched, if b is not such a request.
bool icmp_echo_reply_in_place(PacketBuf& b, MacAddr our_mac, Ipv4Addr our_ip) noexcept;

// Appends to the empty buffer b a destination unreachable message (code, and
// next_hop_mtu for kIcmpCodeFragNeeded) quoting the offending datagram's IP
// header and first 8 bytes of payload (RFC 792, RFC 1812 4.3.2.3); orig_len is
// its total length. The caller pushes IPv4 and Ethernet, and keeps the
// RFC 1122 3.2.2 rules (no errors about errors, broadcasts or fragments).
bool build_icmp_unreach(PacketBuf& b, uint8_t code, const uint8_t* orig_ip, size_t orig_len,
                        uint16_t next_hop_mtu = 0) noexcept;

}  // namespace slip::net::proto
