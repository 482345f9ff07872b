// Link and network addresses. Ipv4Addr holds host byte order; conversion to
// wire order happens only where headers are read and written.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace slip::net {

struct MacAddr {
  std::array<uint8_t, 6> b{};
  static constexpr MacAddr broadcast() { return MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}; }
  bool is_broadcast() const noexcept { return *this == broadcast(); }
  bool is_multicast() const noexcept { return b[0] & 1; }
  bool is_zero() const noexcept { return *this == MacAddr{}; }
  friend bool operator==(const MacAddr&, const MacAddr&) = default;
  std::string str() const;
  // "02:00:00:00:00:01"; nullopt when malformed.
  static std::optional<MacAddr> parse(std::string_view s);
};

struct Ipv4Addr {
  uint32_t v = 0;  // host byte order
  constexpr Ipv4Addr() = default;
  constexpr explicit Ipv4Addr(uint32_t host_order) : v(host_order) {}
  static constexpr Ipv4Addr of(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    return Ipv4Addr((uint32_t{a} << 24) | (uint32_t{b} << 16) | (uint32_t{c} << 8) | d);
  }
  bool is_broadcast() const noexcept { return v == 0xffffffffu; }
  bool is_multicast() const noexcept { return (v >> 28) == 0xe; }
  bool is_zero() const noexcept { return v == 0; }
  friend auto operator<=>(const Ipv4Addr&, const Ipv4Addr&) = default;
  std::string str() const;
  // Dotted quad; nullopt when malformed.
  static std::optional<Ipv4Addr> parse(std::string_view s);
};

// An IPv4 endpoint.
struct Endpoint {
  Ipv4Addr ip;
  uint16_t port = 0;  // host byte order
  friend auto operator<=>(const Endpoint&, const Endpoint&) = default;
  std::string str() const;
  // "198.18.0.1:80"; nullopt when malformed.
  static std::optional<Endpoint> parse(std::string_view s);
};

}  // namespace slip::net
