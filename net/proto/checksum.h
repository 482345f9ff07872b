// The Internet checksum (RFC 1071) and its helpers. A "sum" here is an
// unfolded one's-complement sum of big-endian 16-bit words, held as a host
// number: partial sums of pieces that start at even offsets add with
// csum_add(), and csum_finish() turns a sum into the value stored (with
// store_be16) in a header. A received header or segment checks out when the
// sum over it, checksum field included, folds to 0xffff.
#pragma once

#include <cstddef>
#include <cstdint>

#include "slip/net/addr.h"
#include "slip/net/buf.h"

namespace slip::net::proto {

// One's-complement addition of two sums; the result stays below 2^32.
constexpr uint32_t csum_add(uint32_t a, uint32_t b) noexcept {
  const uint64_t s = uint64_t{a} + b;
  return static_cast<uint32_t>((s & 0xffffffffu) + (s >> 32));
}

// Folds a sum to 16 bits (end-around carries), not complemented.
constexpr uint16_t csum_fold(uint32_t sum) noexcept {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// The checksum field value for a sum.
constexpr uint16_t csum_finish(uint32_t sum) noexcept { return static_cast<uint16_t>(~csum_fold(sum)); }

// Adds len bytes at p (any alignment, any length) to sum, as if p starts at an
// even offset of the checksummed data. Reads 64 bits at a time.
uint32_t csum_partial(const void* p, size_t len, uint32_t sum = 0) noexcept;

// The checksum of one buffer: csum_finish(csum_partial(p, len)).
inline uint16_t inet_checksum(const void* p, size_t len) noexcept { return csum_finish(csum_partial(p, len)); }

// True when data that carries its own checksum field sums correctly.
inline bool csum_ok(const void* p, size_t len, uint32_t sum = 0) noexcept {
  return csum_fold(csum_partial(p, len, sum)) == 0xffff;
}

// The IPv4 pseudo-header (RFC 793 / 768) of a TCP or UDP segment of l4_len bytes.
constexpr uint32_t pseudo_header_sum(Ipv4Addr src, Ipv4Addr dst, uint8_t proto, uint16_t l4_len) noexcept {
  return (src.v >> 16) + (src.v & 0xffff) + (dst.v >> 16) + (dst.v & 0xffff) + proto + l4_len;
}

// RFC 1624 eqn. 3: the new checksum after a 16-bit field changes from old_v
// to new_v, without summing the data again.
constexpr uint16_t csum_update16(uint16_t csum, uint16_t old_v, uint16_t new_v) noexcept {
  const uint32_t s = uint32_t{static_cast<uint16_t>(~csum)} + static_cast<uint16_t>(~old_v) + new_v;
  return static_cast<uint16_t>(~csum_fold(s));
}

// The same for a 32-bit field (an IPv4 address, a sequence number).
constexpr uint16_t csum_update32(uint16_t csum, uint32_t old_v, uint32_t new_v) noexcept {
  csum = csum_update16(csum, static_cast<uint16_t>(old_v >> 16), static_cast<uint16_t>(new_v >> 16));
  return csum_update16(csum, static_cast<uint16_t>(old_v), static_cast<uint16_t>(new_v));
}

// Sums a packet chain from byte `skip` of its first segment to the end of the
// chain; segments of odd length are allowed (their successors' sums are byte
// swapped into place).
uint32_t csum_chain(const PacketBuf& b, size_t skip, uint32_t sum = 0) noexcept;

}  // namespace slip::net::proto
