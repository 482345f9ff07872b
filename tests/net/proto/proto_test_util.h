// Helpers for the protocol-layer tests: a PacketBuf over local storage (no
// pool needed), a naive checksum to compare against, and frame crafting.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "net/proto/bytes.h"
#include "net/proto/checksum.h"
#include "slip/net/addr.h"
#include "slip/net/buf.h"

namespace slip_test {

using namespace slip::net;
using namespace slip::net::proto;

inline const MacAddr kUsMac{{0x02, 0, 0, 0, 0, 0x01}};
inline const MacAddr kPeerMac{{0x02, 0, 0, 0, 0, 0x02}};
inline constexpr Ipv4Addr kUsIp = Ipv4Addr::of(198, 18, 0, 1);
inline constexpr Ipv4Addr kPeerIp = Ipv4Addr::of(198, 18, 0, 2);

// A single-segment PacketBuf with its own memory.
struct TestBuf {
  alignas(64) uint8_t mem[4096];
  PacketBuf b;
  explicit TestBuf(size_t headroom = BufPool::kHeadroom) {
    b.head = mem;
    b.data = mem + headroom;
    b.capacity = sizeof(mem);
  }
  TestBuf(const uint8_t* p, size_t n, size_t headroom = BufPool::kHeadroom) : TestBuf(headroom) { load(p, n); }
  void load(const uint8_t* p, size_t n) {
    b.len = 0;
    if (n) std::memcpy(b.append(n), p, n);
  }
  std::vector<uint8_t> bytes() const { return {b.data, b.data + b.len}; }
};

// RFC 1071 word by word, as a reference for the fast path.
inline uint16_t naive_checksum(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += uint32_t{p[i]} << 8 | p[i + 1];
  if (n & 1) sum += uint32_t{p[n - 1]} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// Recomputes the IPv4 header checksum of a frame (at its Ethernet header)
// after a test changed a field.
inline void fix_ip_csum(uint8_t* frame) {
  uint8_t* ip = frame + 14;
  const size_t hl = size_t{ip[0] & 0xfu} * 4;
  store_be16(ip + 10, 0);
  store_be16(ip + 10, inet_checksum(ip, hl));
}

// Recomputes the TCP or UDP checksum of an IPv4 frame without options past
// the fixed 20-byte header.
inline void fix_l4_csum(uint8_t* frame) {
  uint8_t* ip = frame + 14;
  const size_t hl = size_t{ip[0] & 0xfu} * 4;
  const size_t l4_len = load_be16(ip + 2) - hl;
  const uint8_t proto = ip[9];
  uint8_t* l4 = ip + hl;
  uint8_t* field = l4 + (proto == 6 ? 16 : 6);
  store_be16(field, 0);
  const uint32_t ph = pseudo_header_sum(Ipv4Addr(load_be32(ip + 12)), Ipv4Addr(load_be32(ip + 16)), proto,
                                        static_cast<uint16_t>(l4_len));
  uint16_t c = csum_finish(csum_partial(l4, l4_len, ph));
  if (proto == 17 && c == 0) c = 0xffff;
  store_be16(field, c);
}

}  // namespace slip_test
