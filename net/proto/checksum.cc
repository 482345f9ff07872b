#include "net/proto/checksum.h"

#include <cstring>

#include "net/proto/bytes.h"

namespace slip::net::proto {
namespace {

// 64-bit one's-complement addition: the carry out wraps back in.
inline uint64_t add64(uint64_t acc, uint64_t w) noexcept {
  acc += w;
  return acc + (acc < w);
}

inline uint64_t load64(const uint8_t* p) noexcept {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Folds a 64-bit native-order accumulator to the 16-bit sum of big-endian
// words. Summing native words and swapping once at the end is RFC 1071's
// byte-order independence (section 2.B).
inline uint16_t fold64_to_be16(uint64_t acc) noexcept {
  acc = (acc & 0xffffffffu) + (acc >> 32);
  acc = (acc & 0xffffffffu) + (acc >> 32);
  return bswap_if_le16(csum_fold(static_cast<uint32_t>(acc)));
}

}  // namespace

uint32_t csum_partial(const void* data, size_t len, uint32_t sum) noexcept {
  const auto* p = static_cast<const uint8_t*>(data);
  // Two independent chains so that the adds with carry overlap.
  uint64_t a = 0, b = 0;
  while (len >= 32) {
    a = add64(a, load64(p));
    b = add64(b, load64(p + 8));
    a = add64(a, load64(p + 16));
    b = add64(b, load64(p + 24));
    p += 32;
    len -= 32;
  }
  while (len >= 8) {
    a = add64(a, load64(p));
    p += 8;
    len -= 8;
  }
  if (len) {
    // The tail keeps its byte positions within a zeroed word, so an odd last
    // byte is the high-order byte of a big-endian word padded with zero.
    uint64_t t = 0;
    std::memcpy(&t, p, len);
    b = add64(b, t);
  }
  return csum_add(sum, fold64_to_be16(add64(a, b)));
}

uint32_t csum_chain(const PacketBuf& buf, size_t skip, uint32_t sum) noexcept {
  size_t offset = 0;  // bytes summed so far: its parity places the next piece
  for (const PacketBuf* s = &buf; s; s = s->next) {
    if (skip >= s->len) {
      skip -= s->len;
      continue;
    }
    const size_t n = s->len - skip;
    uint16_t part = csum_fold(csum_partial(s->data + skip, n));
    if (offset & 1) part = static_cast<uint16_t>((part << 8) | (part >> 8));
    sum = csum_add(sum, part);
    offset += n;
    skip = 0;
  }
  return sum;
}

}  // namespace slip::net::proto
