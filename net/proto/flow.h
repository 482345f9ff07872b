// Flow hashes for steering: which receive queue (and so which kthread) a
// flow's frames reach. The symmetric hash is what the slip stack assumes of
// a port that cannot tell it more; Toeplitz is what RSS NICs compute, so a
// port whose key and redirection table are known can be predicted exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "slip/common/mix.h"

namespace slip::net::proto {

// The same value for both directions of a flow: two hosts that steer by it
// put a flow on the same queue number at both ends. Inline: every Nic's
// default steering uses it, below the library this layer builds.
inline uint32_t symmetric_flow_hash(uint32_t ip_a, uint16_t port_a, uint32_t ip_b, uint16_t port_b,
                                    uint8_t proto) noexcept {
  uint64_t a = uint64_t{ip_a} << 16 | port_a, b = uint64_t{ip_b} << 16 | port_b;
  if (a > b) std::swap(a, b);  // the endpoints in a fixed order: both directions hash alike
  const uint64_t h = splitmix64(a ^ splitmix64(b ^ uint64_t{proto} << 48));
  return static_cast<uint32_t>(h ^ h >> 32);
}

// Microsoft's RSS (Toeplitz) hash of `input` under `key` (at least len + 4
// bytes), as NICs compute it.
uint32_t toeplitz_hash(const uint8_t* key, size_t key_len, const uint8_t* input, size_t len) noexcept;
// RSS over an IPv4 TCP or UDP 4-tuple as received: source address,
// destination address, source port, destination port (host byte order in,
// hashed in network order, as the NIC sees them).
uint32_t rss_ipv4_l4(const uint8_t* key, size_t key_len, uint32_t src, uint32_t dst, uint16_t sport,
                     uint16_t dport) noexcept;

// A queue in [0, n) from a 32-bit hash (multiply-shift: even, no division).
inline uint16_t pick_queue(uint32_t hash, uint16_t n) noexcept {
  return static_cast<uint16_t>((uint64_t{hash} * n) >> 32);
}

}  // namespace slip::net::proto
