#include <array>
#include <string_view>

#include "slip/net/counters.h"

namespace slip::net {
namespace {

// Indexed by Drop; names are the snake-case enumerator names without the k.
constexpr std::array<std::string_view, static_cast<size_t>(Drop::kCount)> kDropNames = {
    "eth_short",      "eth_not_for_us", "eth_type",       "arp_malformed",     "arp_not_for_us",
    "ip_short",       "ip_version",     "ip_header_len",  "ip_total_len",      "ip_checksum",
    "ip_not_for_us",  "ip_fragment",    "ip_ttl",         "ip_proto",          "ip_options",
    "icmp_short",     "icmp_checksum",  "icmp_type",      "udp_short",         "udp_length",
    "udp_checksum",   "udp_no_port",    "udp_queue_full", "tcp_short",         "tcp_checksum",
    "tcp_header_len", "tcp_options",    "tcp_no_socket",  "tcp_out_of_window", "tcp_bad_ack",
    "tcp_backlog_full", "tcp_bad_flags", "no_buffer",
};
static_assert(kDropNames.size() == static_cast<size_t>(Drop::kCount));
static_assert(kDropNames.back() == "no_buffer" && kDropNames[static_cast<size_t>(Drop::kIpOptions)] == "ip_options");

}  // namespace

std::string_view drop_name(Drop d) noexcept {
  const auto i = static_cast<size_t>(d);
  return i < kDropNames.size() ? kDropNames[i] : "unknown";
}

}  // namespace slip::net
