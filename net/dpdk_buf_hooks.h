// What BufPool (net/buf.cc) needs from the DPDK backend for pools that wrap an
// rte_mempool (mempool() != nullptr). buf.cc holds weak defaults that abort;
// net/dpdk/ defines the real ones. Define them in the same translation unit as
// BufPool::dpdk: a static library member is linked only when something it
// defines is wanted, so the strong definitions come in with BufPool::dpdk.
#pragma once

#include <cstddef>

#include "slip/net/buf.h"

namespace slip::net {

// Returns one segment whose refs reached zero to its mempool (not the chain).
void free_dpdk_buf(PacketBuf* b) noexcept;
// One mbuf from pool.mempool(), wrapped, with head, capacity, pool and mbuf
// set; nullptr when the mempool is empty. BufPool::alloc resets the rest.
PacketBuf* alloc_dpdk_buf(BufPool& pool) noexcept;
// Whether no PMD still holds b's mbuf (its refcount is 1): a NIC that
// transmits from the buffer may read it until it completes the send.
bool dpdk_buf_idle(const PacketBuf* b) noexcept;
// Free mbufs in pool.mempool() (rte_mempool_avail_count).
size_t dpdk_pool_available(const BufPool& pool) noexcept;
// Frees the rte_mempool when its BufPool is destroyed.
void destroy_dpdk_pool(void* mempool) noexcept;

}  // namespace slip::net
