// The stateless receive chain: Ethernet, then ARP or IPv4, then ICMP, UDP or
// TCP, each validated, stopping at the first Drop. The stack applies what
// needs state (our addresses, sockets, TCP sequence checks) to the result.
#pragma once

#include <cstddef>
#include <cstdint>

#include "net/proto/arp.h"
#include "net/proto/ether.h"
#include "net/proto/icmp.h"
#include "net/proto/ipv4.h"
#include "net/proto/result.h"
#include "net/proto/tcp_wire.h"
#include "net/proto/udp.h"
#include "slip/net/buf.h"

namespace slip::net::proto {

struct RxFrame {
  EtherView eth;
  const ArpPacket* arp = nullptr;  // set for ARP frames
  Ipv4View ip;                     // set for IPv4 frames
  IcmpView icmp;                   // set when ip.hdr->proto is ICMP
  UdpView udp;                     // ... UDP
  TcpView tcp;                     // ... TCP
};

// Decodes one frame; rx_flags are PacketBuf::offload_flags (kRx*CsumGood
// skip the software checks). kEthType and kIpProto for what we do not handle.
Parsed<RxFrame> decode_frame(const uint8_t* p, size_t len, uint32_t rx_flags = 0) noexcept;
inline Parsed<RxFrame> decode_frame(const PacketBuf& b) noexcept {
  return decode_frame(b.data, b.len, b.offload_flags);
}

}  // namespace slip::net::proto
