// PacketBufs of mbufs, inside net/dpdk (DpdkPort, and the DPDK tests): each
// mbuf of a make_dpdk_pool() pool carries its PacketBuf in its private area.
#pragma once

#include <cstdint>

#include "slip/net/buf.h"
#include "slip_rte.h"

namespace slip::net {

// The PacketBuf living in an mbuf of a DPDK pool.
inline PacketBuf* from_mbuf(rte_mbuf* m) noexcept { return static_cast<PacketBuf*>(rte_mbuf_to_priv(m)); }
// Syncs the mbufs' fields from the chain's PacketBufs, before tx.
void to_mbuf(PacketBuf* b) noexcept;
// The PacketBuf of a received mbuf chain, reset and filled from the mbufs; a
// chain still shared with a sender (net_ring) is copied first. nullptr when
// it cannot be wrapped (a foreign pool's mbuf, or no buffer for the copy):
// the mbuf is freed then.
PacketBuf* wrap_rx_mbuf(rte_mbuf* m, uint16_t queue) noexcept;

}  // namespace slip::net
