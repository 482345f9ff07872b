// Big-endian loads and stores at any alignment: wire headers are read through
// memcpy so that no unaligned or type-punned access reaches UBSan.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace slip::net::proto {

inline uint16_t bswap_if_le16(uint16_t v) noexcept {
  if constexpr (std::endian::native == std::endian::little) return __builtin_bswap16(v);
  return v;
}
inline uint32_t bswap_if_le32(uint32_t v) noexcept {
  if constexpr (std::endian::native == std::endian::little) return __builtin_bswap32(v);
  return v;
}

inline uint16_t load_be16(const uint8_t* p) noexcept {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return bswap_if_le16(v);
}
inline uint32_t load_be32(const uint8_t* p) noexcept {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return bswap_if_le32(v);
}
inline void store_be16(uint8_t* p, uint16_t v) noexcept {
  v = bswap_if_le16(v);
  std::memcpy(p, &v, 2);
}
inline void store_be32(uint8_t* p, uint32_t v) noexcept {
  v = bswap_if_le32(v);
  std::memcpy(p, &v, 4);
}

}  // namespace slip::net::proto
