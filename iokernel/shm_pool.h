// ShmPktPool: a DPDK mbuf pool whose packet bytes live in a memfd that other
// processes can map, so iokerneld can hand received frames to runtimes by
// offset instead of copying them (docs/iokernel.md, "Packet buffers: a shared
// mempool"). No DPDK header leaks from here; EAL must already be running.
//
// Two placements:
//  - kExtbuf (the default, and the one to use): rte_pktmbuf_pool_create_extbuf.
//    The mbuf structs, the mempool and its ring stay in the daemon's private
//    memory; only the data buffers are in the region, one per elt_size bytes,
//    each pinned to one mbuf for the pool's life.
//  - kHeap: the region becomes a DPDK malloc heap (rte_malloc_heap_create +
//    rte_malloc_heap_memory_add) and rte_pktmbuf_pool_create puts the whole
//    mempool there: mbuf headers, ring and per-lcore caches, all writable by
//    whoever maps the region. Kept to show it works, not to be used.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "slip/iok/contract.h"

struct rte_mbuf;
struct rte_mempool;

namespace slip::iok {

struct ShmPktPoolConfig {
  enum class Placement { kExtbuf, kHeap };
  std::string name;           // memfd, heap and mempool name: unique per process, 1..20 characters
  uint32_t n_mbufs = 4095;
  uint16_t data_room = 2048 + 128;  // bytes per buffer, headroom included; a multiple of 64
  Placement placement = Placement::kExtbuf;
  bool hugepages = false;     // an MFD_HUGETLB memfd (default huge page size); needs free hugepages
};

class ShmPktPool {
 public:
  static constexpr uint64_t kBadOff = ~uint64_t{0};

  // Creates the memfd, maps it, registers it with DPDK and builds the pool.
  // Throws std::runtime_error naming the cause and the fix.
  static std::unique_ptr<ShmPktPool> create(const ShmPktPoolConfig& cfg);
  // Frees the pool (every mbuf must be back), unregisters and unmaps the
  // region, closes the fd. Stop (and dma_unmap) the ports using it first.
  ~ShmPktPool();
  ShmPktPool(const ShmPktPool&) = delete;
  ShmPktPool& operator=(const ShmPktPool&) = delete;

  int fd() const noexcept { return fd_; }  // read-write, sealed against shrinking and growing
  uint8_t* base() const noexcept { return base_; }
  size_t size() const noexcept { return size_; }
  size_t page_size() const noexcept { return page_sz_; }
  uint32_t buf_size() const noexcept { return buf_size_; }  // bytes per buffer (data_room)
  rte_mempool* mempool() const noexcept { return mp_; }
  // Whether every page has a real IOVA (needed by DMA-capable devices).
  bool iova_known() const noexcept { return iova_known_; }

  // A new read-only descriptor of the region (for runtimes that only read;
  // they cannot map it writable). The caller closes it. Throws on failure.
  int readonly_fd() const;

  // Offset of p in the region, or kBadOff when [p, p + len) is not inside it.
  uint64_t offset_of(const void* p, size_t len = 1) const noexcept {
    const auto a = reinterpret_cast<uintptr_t>(p), b = reinterpret_cast<uintptr_t>(base_);
    if (a < b || a - b > size_ || len > size_ - (a - b)) return kBadOff;
    return a - b;
  }
  // The descriptor of a received single-segment mbuf of this pool: buf_off of
  // its buffer, data_off, len and the checksum flag. False for chains and
  // mbufs whose buffer is not in the region (d is then untouched).
  bool to_desc(const rte_mbuf* m, PktDesc& d) const noexcept;
  // The mbuf whose buffer starts at buf_off, or nullptr when buf_off is not a
  // buffer of this pool: how the daemon turns a runtime's (untrusted)
  // descriptor back into an mbuf without trusting a pointer.
  rte_mbuf* mbuf_of(uint64_t buf_off) const noexcept;
  // Buffers in the pool, and a buffer's index (0..n_bufs-1) by offset, or
  // -1: the key for per-runtime ownership tracking.
  size_t n_bufs() const noexcept { return bufs_.size(); }
  // Buffers free in the mempool, its per-lcore caches included.
  size_t free_bufs() const noexcept;
  long index_of(uint64_t buf_off) const noexcept;

  // Maps the region for DMA by the device behind port_id (rte_dev_dma_map),
  // for devices whose bus needs it (VFIO). True when the bus accepted it (the
  // vdev bus accepts and ignores it), false when the bus has no DMA mapping
  // (ENOTSUP); throws on failure. dma_unmap before closing the port.
  bool dma_map(uint16_t port_id);
  void dma_unmap(uint16_t port_id) noexcept;

 private:
  ShmPktPool() = default;
  void map_region(const ShmPktPoolConfig& cfg);
  void register_region(const ShmPktPoolConfig& cfg);
  void make_pool(const ShmPktPoolConfig& cfg);

  std::string name_;
  ShmPktPoolConfig::Placement placement_ = ShmPktPoolConfig::Placement::kExtbuf;
  int fd_ = -1;
  uint8_t* base_ = nullptr;
  size_t size_ = 0, page_sz_ = 0;
  uint32_t buf_size_ = 0;
  std::vector<uint64_t> iova_;  // per page
  bool iova_known_ = false;
  bool registered_ = false, heap_made_ = false, heap_added_ = false;
  rte_mempool* mp_ = nullptr;
  std::vector<std::pair<uint64_t, rte_mbuf*>> bufs_;  // (buffer offset, mbuf), sorted
};

}  // namespace slip::iok
