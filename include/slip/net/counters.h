// Per-reason drop counters and traffic counters of the network stack. Each
// kthread owns one NetCounters and writes it without atomics' read-modify-write;
// readers sum them (ENGINEERING.md §3).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace slip::net {

// Why a received frame was dropped. Every malformed or unwanted frame is
// counted under exactly one reason.
enum class Drop : uint8_t {
  kEthShort,         // shorter than an Ethernet header
  kEthNotForUs,      // destination MAC neither ours, broadcast nor multicast we want
  kEthType,          // EtherType we do not handle (IPv6, VLAN, ...)
  kArpMalformed,     // bad hardware/protocol type or lengths, or too short
  kArpNotForUs,      // request for an address that is not ours
  kIpShort,          // shorter than the IPv4 header or its IHL
  kIpVersion,        // version is not 4
  kIpHeaderLen,      // IHL < 5 or beyond the frame
  kIpTotalLen,       // total length below the header or beyond the frame
  kIpChecksum,       // header checksum mismatch
  kIpNotForUs,       // destination is not one of our addresses
  kIpFragment,       // fragments are counted and dropped (no reassembly)
  kIpTtl,            // TTL zero on arrival
  kIpProto,          // protocol we do not handle
  kIpOptions,        // malformed IP options
  kIcmpShort,
  kIcmpChecksum,
  kIcmpType,         // types other than echo request (and errors we consume)
  kUdpShort,
  kUdpLength,        // UDP length field disagrees with the IP payload
  kUdpChecksum,
  kUdpNoPort,        // no socket bound: ICMP port unreachable sent (rate-limited)
  kUdpQueueFull,     // socket receive queue full
  kTcpShort,
  kTcpChecksum,
  kTcpHeaderLen,     // data offset < 5 or beyond the segment
  kTcpOptions,       // malformed options
  kTcpNoSocket,      // no connection or listener: RST sent
  kTcpOutOfWindow,   // sequence outside the receive window (challenge ACK per RFC 5961)
  kTcpBadAck,
  kTcpBacklogFull,   // listen backlog or SYN queue full
  kTcpBadFlags,      // e.g. SYN+FIN, no ACK in a synchronized state
  kNoBuffer,         // buffer pool exhausted
  kCount
};

std::string_view drop_name(Drop d) noexcept;

struct NetCounters {
  std::array<std::atomic<uint64_t>, static_cast<size_t>(Drop::kCount)> drops{};
  std::atomic<uint64_t> rx_frames{0}, rx_bytes{0}, tx_frames{0}, tx_bytes{0};
  std::atomic<uint64_t> arp_requests_sent{0}, arp_replies_sent{0}, icmp_echo_replies{0};
  std::atomic<uint64_t> tx_no_route{0}, tx_arp_pending_drops{0}, tx_ring_full{0};
  // TCP data segments sent from the send queue's buffer itself, and copied
  // (cut by the window, or a buffer still held by the NIC or a queue).
  std::atomic<uint64_t> tx_tcp_by_ref{0}, tx_tcp_copied{0};
  // Times a kthread asleep on the NIC's receive interrupt woke before its
  // timeout and found frames.
  std::atomic<uint64_t> rx_wakeups{0};
  // Stack-wide locks taken while handling a received IP frame. The receive
  // path runs on every kthread at once and takes none: this stays 0 unless
  // a neighbour had to be resolved on it (a reply to a host that never sent ARP).
  std::atomic<uint64_t> rx_stack_locks{0};

  static void inc(std::atomic<uint64_t>& c, uint64_t n = 1) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void drop(Drop d) noexcept { inc(drops[static_cast<size_t>(d)]); }
  uint64_t drops_of(Drop d) const noexcept { return drops[static_cast<size_t>(d)].load(std::memory_order_relaxed); }
};

}  // namespace slip::net
