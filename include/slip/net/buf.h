// Packet buffers: one type over DPDK mbufs and over heap memory (the test wire,
// the kernel backend). Buffers have headroom for headers, a reference count so
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

// A fixed set of equal-size buffers. Heap pools serve tests and the kernel
// backend; DPDK pools wrap an rte_mempool whose mbufs carry their PacketBuf in
// the mbuf's private area, so wrapping costs no allocation.
class BufPool {
 public:
  static constexpr size_t kHeadroom = 128;  // matches RTE_PKTMBUF_HEADROOM

  // n buffers of buf_size bytes (headroom included) from the heap.
  static std::unique_ptr<BufPool> heap(std::string name, size_t n, size_t buf_size = 2048 + kHeadroom);
  // n buffers of buf_size bytes laid out back to back at mem, which the
  // caller owns and keeps alive longer than the pool (the tx buffers of an
  // IOKernel region).
  static std::unique_ptr<BufPool> in_memory(std::string name, uint8_t* mem, size_t n, size_t buf_size);
  // A pool that hands nothing out: its owner fills PacketBufs (pool = this)
  // over memory it does not own, and the last release() calls on_free(ctx,
  // b) instead of freeing (the IOKernel NIC returns rx buffers this way).
  using FreeFn = void (*)(void* ctx, PacketBuf* b) noexcept;
  static std::unique_ptr<BufPool> external(std::string name, FreeFn on_free, void* ctx);
  // n mbufs from a new rte_mempool on `socket`, each with data_bytes beyond
  // the headroom; EAL must be initialized.
  static constexpr size_t kDefaultDataBytes = 2048;
  static std::unique_ptr<BufPool> dpdk(std::string name, size_t n, int socket = -1,
                                       size_t data_bytes = kDefaultDataBytes);
  ~BufPool();

  // A buffer with refs 1, len 0 and kHeadroom headroom; nullptr when exhausted.
  PacketBuf* alloc() noexcept;
  // Drops one reference on each segment of the chain; frees at zero.
  static void release(PacketBuf* b) noexcept;
  // Whether the caller's reference is the only one on every segment and no
  // NIC is still reading them: only then may it rewrite their headroom or
  // bytes (TCP sending a kept segment again by reference).
  static bool only_ours(const PacketBuf* b) noexcept;

  size_t size() const noexcept { return n_; }
  size_t available() const noexcept;
  const std::string& name() const noexcept { return name_; }
  void* mempool() const noexcept { return mempool_; }
  // The PacketBuf living in an mbuf of a DPDK pool (and back).
  static PacketBuf* from_mbuf(void* mbuf) noexcept;
  // Syncs an mbuf's fields from its PacketBuf (before tx) or back (after rx).
  static void to_mbuf(PacketBuf* b) noexcept;
  static PacketBuf* wrap_rx_mbuf(void* mbuf, uint16_t queue) noexcept;

 private:
  BufPool(std::string name, size_t n) : name_(std::move(name)), n_(n) {}
  void free_one(PacketBuf* b) noexcept;
  void carve(uint8_t* mem, size_t buf_size) noexcept;

  std::string name_;
  size_t n_;
  // Heap pools: a lock-free stack would be overkill while each pool has one
  // kthread owner; the spinlock is uncontended in practice.
  mutable std::atomic<bool> lock_{false};  // guards free_ and free_count_
  PacketBuf* free_ = nullptr;
  size_t free_count_ = 0;
  std::unique_ptr<PacketBuf[]> bufs_;
  std::unique_ptr<uint8_t[]> mem_;
  void* mempool_ = nullptr;
  FreeFn on_free_ = nullptr;  // external pools
  void* free_ctx_ = nullptr;
};

}  // namespace slip::net
