// Text forms of MAC, IPv4 and endpoint addresses. Parsing is strict: the whole
// string must be the address, nothing before or after it.
#include "slip/net/addr.h"

#include <cstdio>

namespace slip::net {
namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A decimal number of 1..max_digits digits, at most max; a leading zero only
// as the number 0 itself, because "010" reads as octal to inet_aton.
std::optional<uint32_t> parse_decimal(std::string_view s, size_t max_digits, uint32_t max) noexcept {
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  if (s.size() > 1 && s[0] == '0') return std::nullopt;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > max) return std::nullopt;
  return v;
}

}  // namespace

std::string MacAddr::str() const {
  char out[18];
  std::snprintf(out, sizeof out, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
  return out;
}

std::optional<MacAddr> MacAddr::parse(std::string_view s) {
  // Exactly six pairs of hex digits separated by ':' (17 characters).
  if (s.size() != 17) return std::nullopt;
  MacAddr m;
  for (size_t i = 0; i < 6; i++) {
    const size_t at = i * 3;
    const int hi = hex_value(s[at]), lo = hex_value(s[at + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    if (i < 5 && s[at + 2] != ':') return std::nullopt;
    m.b[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return m;
}

std::string Ipv4Addr::str() const {
  char out[16];
  std::snprintf(out, sizeof out, "%u.%u.%u.%u", v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
  return out;
}

std::optional<Ipv4Addr> Ipv4Addr::parse(std::string_view s) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    const size_t dot = s.find('.');
    if ((i < 3) != (dot != std::string_view::npos)) return std::nullopt;  // three dots, exactly
    const auto octet = parse_decimal(s.substr(0, dot), 3, 255);
    if (!octet) return std::nullopt;
    v = v << 8 | *octet;
    s = i < 3 ? s.substr(dot + 1) : std::string_view{};
  }
  return Ipv4Addr(v);
}

std::string Endpoint::str() const { return ip.str() + ":" + std::to_string(port); }

std::optional<Endpoint> Endpoint::parse(std::string_view s) {
  const size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const auto ip = Ipv4Addr::parse(s.substr(0, colon));
  const auto port = parse_decimal(s.substr(colon + 1), 5, 65535);
  if (!ip || !port) return std::nullopt;
  return Endpoint{*ip, static_cast<uint16_t>(*port)};
}

}  // namespace slip::net
