#include "net/proto/flow.h"

namespace slip::net::proto {

// For each set bit of the input, XOR in the 32 key bits starting at that
// bit's position (the RSS specification's definition).
uint32_t toeplitz_hash(const uint8_t* key, size_t key_len, const uint8_t* input, size_t len) noexcept {
  if (key_len < len + 4) return 0;
  uint32_t result = 0;
  uint32_t window = uint32_t{key[0]} << 24 | uint32_t{key[1]} << 16 | uint32_t{key[2]} << 8 | key[3];
  for (size_t i = 0; i < len; i++) {
    const uint8_t next = key[i + 4];
    for (int bit = 7; bit >= 0; bit--) {
      if (input[i] >> bit & 1) result ^= window;
      window = window << 1 | (next >> bit & 1);
    }
  }
  return result;
}

uint32_t rss_ipv4_l4(const uint8_t* key, size_t key_len, uint32_t src, uint32_t dst, uint16_t sport,
                     uint16_t dport) noexcept {
  const uint8_t in[12] = {static_cast<uint8_t>(src >> 24), static_cast<uint8_t>(src >> 16),
                          static_cast<uint8_t>(src >> 8),  static_cast<uint8_t>(src),
                          static_cast<uint8_t>(dst >> 24), static_cast<uint8_t>(dst >> 16),
                          static_cast<uint8_t>(dst >> 8),  static_cast<uint8_t>(dst),
                          static_cast<uint8_t>(sport >> 8), static_cast<uint8_t>(sport),
                          static_cast<uint8_t>(dport >> 8), static_cast<uint8_t>(dport)};
  return toeplitz_hash(key, key_len, in, sizeof in);
}

}  // namespace slip::net::proto
