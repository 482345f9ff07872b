// Packet buffers: one type over DPDK mbufs and over heap memory (the test wire,
// the kernel backend), whichever pool they come from (BufPoolOps). Buffers have headroom for headers, a reference count so
// TCP can keep a sent segment for retransmission without copying, and a `next`
// link for chains (multi-segment data). Pools are created at start-up; the data
// path only takes and returns buffers.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "slip/runtime/spin_park_lock.h"

namespace slip::net {

class BufPool;

struct PacketBuf {
  uint8_t* head = nullptr;   // start of the buffer memory
  uint8_t* data = nullptr;   // start of the valid bytes (head + headroom)
  uint32_t len = 0;          // valid bytes in this segment
  uint32_t capacity = 0;     // bytes from head to the end of the buffer
  PacketBuf* next = nullptr; // next segment of the same packet, or nullptr
  BufPool* pool = nullptr;
  void* mbuf = nullptr;      // the rte_mbuf this wraps, for DPDK-backed buffers
  std::atomic<uint16_t> refs{1};
  uint16_t rx_queue = 0;      // the queue it arrived on; for a frame to send, the queue to send it on
  uint32_t offload_flags = 0;  // kRx*/kTx* below
  uint16_t l2_len = 0, l3_len = 0, l4_len = 0;  // for TX checksum offload
  uint64_t user = 0;           // owner's scratch (e.g. TCP sequence number)

  static constexpr uint32_t kRxIpCsumGood = 1, kRxIpCsumBad = 2, kRxL4CsumGood = 4, kRxL4CsumBad = 8;
  static constexpr uint32_t kTxIpCsum = 16, kTxTcpCsum = 32, kTxUdpCsum = 64;

  size_t headroom() const noexcept { return static_cast<size_t>(data - head); }
  size_t tailroom() const noexcept { return capacity - headroom() - len; }
  // Claims n bytes in front of data (for a header); nullptr without headroom.
  uint8_t* prepend(size_t n) noexcept {
    if (headroom() < n) return nullptr;
    data -= n;
    len += static_cast<uint32_t>(n);
    return data;
  }
  // Drops n bytes from the front (a parsed header); false if shorter.
  bool adj(size_t n) noexcept {
    if (len < n) return false;
    data += n;
    len -= static_cast<uint32_t>(n);
    return true;
  }
  // Claims n bytes at the end; nullptr without tailroom.
  uint8_t* append(size_t n) noexcept {
    if (tailroom() < n) return nullptr;
    uint8_t* p = data + len;
    len += static_cast<uint32_t>(n);
    return p;
  }
  void trim(size_t n) noexcept { len = n < len ? len - static_cast<uint32_t>(n) : 0; }
  // Total bytes of the chain that starts here.
  size_t chain_len() const noexcept {
    size_t n = 0;
    for (const PacketBuf* b = this; b; b = b->next) n += b->len;
    return n;
  }
  // One more reference on every segment of the chain, as release() drops one
  // on every segment (rte_pktmbuf_refcnt_update does the same).
  void ref() noexcept {
    for (PacketBuf* b = this; b; b = b->next) b->refs.fetch_add(1, std::memory_order_relaxed);
  }
};

// What a pool does with its buffers, one indirect call per alloc or free.
// Heap, in-memory and external pools use built-in ops; a backend whose
// buffers live in memory of its own passes its ops when it makes the pool
// (BufPool::with_ops: net/dpdk's mempools). ctx is the pool's backend state.
struct BufPoolOps {
  // One free buffer with head, capacity and pool set (and mbuf, where the
  // backend has one); nullptr when none is free. BufPool::alloc resets the rest.
  PacketBuf* (*alloc)(void* ctx) noexcept = nullptr;
  // Takes back one segment whose last reference went (not the rest of its chain).
  void (*free)(void* ctx, PacketBuf* b) noexcept = nullptr;
  // Buffers free now.
  size_t (*available)(const void* ctx) noexcept = nullptr;
  // Whether no device still reads b (BufPool::only_ours); nullptr: none ever does.
  bool (*idle)(const PacketBuf* b) noexcept = nullptr;
  // Frees the backend's state when the BufPool goes; nullptr: nothing to free.
  void (*destroy)(void* ctx) noexcept = nullptr;
};

// A fixed set of equal-size buffers. Heap pools serve tests and the kernel
// backend; DPDK pools (net/dpdk) wrap an rte_mempool whose mbufs carry their
// PacketBuf in the mbuf's private area, so wrapping costs no allocation.
class BufPool {
 public:
  static constexpr size_t kHeadroom = 128;  // matches RTE_PKTMBUF_HEADROOM
  static constexpr size_t kDefaultDataBytes = 2048;

  // n buffers of buf_size bytes (headroom included) from the heap.
  static std::unique_ptr<BufPool> heap(std::string name, size_t n, size_t buf_size = kDefaultDataBytes + kHeadroom);
  // n buffers of buf_size bytes laid out back to back at mem, which the
  // caller owns and keeps alive longer than the pool (the tx buffers of an
  // IOKernel region).
  static std::unique_ptr<BufPool> in_memory(std::string name, uint8_t* mem, size_t n, size_t buf_size);
  // A pool that hands nothing out: its owner fills PacketBufs (pool = this)
  // over memory it does not own, and the last release() calls on_free(ctx,
  // b) instead of freeing (the IOKernel NIC returns rx buffers this way).
  using FreeFn = void (*)(void* ctx, PacketBuf* b) noexcept;
  static std::unique_ptr<BufPool> external(std::string name, FreeFn on_free, void* ctx);
  // n buffers that ops hands out and takes back, with ctx as their state.
  // ops.alloc, free and available are required; the caller sets each
  // buffer's pool to the returned pool before it hands one out.
  static std::unique_ptr<BufPool> with_ops(std::string name, size_t n, const BufPoolOps& ops, void* ctx);
  ~BufPool();
  BufPool(const BufPool&) = delete;
  BufPool& operator=(const BufPool&) = delete;

  // A buffer with refs 1, len 0 and kHeadroom headroom; nullptr when exhausted.
  PacketBuf* alloc() noexcept;
  // Drops one reference on each segment of the chain; frees at zero.
  static void release(PacketBuf* b) noexcept;
  // Whether the caller's reference is the only one on every segment and no
  // NIC is still reading them: only then may it rewrite their headroom or
  // bytes (TCP sending a kept segment again by reference).
  static bool only_ours(const PacketBuf* b) noexcept;

  size_t size() const noexcept { return n_; }
  size_t available() const noexcept { return ops_.available(ctx_); }
  const std::string& name() const noexcept { return name_; }
  const BufPoolOps& ops() const noexcept { return ops_; }
  void* ctx() const noexcept { return ctx_; }

 private:
  friend struct BuiltinBufOps;
  BufPool(std::string name, size_t n, const BufPoolOps& ops, void* ctx)
      : name_(std::move(name)), n_(n), ops_(ops), ctx_(ctx) {}
  void carve(uint8_t* mem, size_t buf_size) noexcept;

  // Heap and in-memory pools: a locked free list. A lock-free stack would
  // be overkill while each pool has one kthread owner; the lock is uncontended
  // in practice.
  struct FreeList {
    mutable rt::SpinParkLock lock;  // guards head and count
    PacketBuf* head = nullptr;
    size_t count = 0;
  };

  std::string name_;
  size_t n_;
  BufPoolOps ops_;  // by value: one load less per call, and external pools' free is their own function
  void* ctx_;
  FreeList free_;
  std::unique_ptr<PacketBuf[]> bufs_;
  std::unique_ptr<uint8_t[]> mem_;
};

}  // namespace slip::net
