// Burst access to one contract ring (RingHdr) from either process. The
// geometry (slot count, slot offset) comes from the validated layout, never
// re-read from shared memory, so a peer that scribbles on the header can at
// worst stall its own rings; an impossible fill level reads as empty/full.
#pragma once

#include <algorithm>
#include <cstdint>

#include "slip/iok/contract.h"

namespace slip::iok {

class RingView {
 public:
  RingView() = default;
  RingView(uint8_t* region, RingHdr* hdr, uint32_t slots, uint64_t slots_off) noexcept
      : hdr_(hdr), slots_(reinterpret_cast<PktDesc*>(region + slots_off)), n_(slots) {}

  // Producer: copies up to n descriptors in; returns how many fit.
  uint32_t push(const PktDesc* d, uint32_t n) noexcept {
    const uint32_t tail = hdr_->tail.load(std::memory_order_relaxed);
    const uint32_t used = tail - hdr_->head.load(std::memory_order_acquire);
    if (used > n_) return 0;  // the consumer wrote nonsense: refuse rather than overwrite
    n = std::min(n, n_ - used);
    for (uint32_t i = 0; i < n; i++) slots_[(tail + i) & (n_ - 1)] = d[i];
    hdr_->tail.store(tail + n, std::memory_order_release);
    return n;
  }
  // Consumer: copies up to n descriptors out; returns how many there were.
  uint32_t pop(PktDesc* d, uint32_t n) noexcept {
    const uint32_t head = hdr_->head.load(std::memory_order_relaxed);
    const uint32_t avail = hdr_->tail.load(std::memory_order_acquire) - head;
    if (avail > n_) return 0;  // the producer wrote nonsense
    n = std::min(n, avail);
    for (uint32_t i = 0; i < n; i++) d[i] = slots_[(head + i) & (n_ - 1)];
    hdr_->head.store(head + n, std::memory_order_release);
    return n;
  }
  uint32_t size() const noexcept {
    const uint32_t used = hdr_->tail.load(std::memory_order_acquire) - hdr_->head.load(std::memory_order_acquire);
    return used > n_ ? 0 : used;
  }
  uint32_t capacity() const noexcept { return n_; }
  // Either side: stamp_ns of the descriptor the consumer reads next, 0 when
  // empty. A peek for the congestion signal; a racing pop makes it stale, not unsafe.
  uint64_t head_stamp() const noexcept {
    const uint32_t head = hdr_->head.load(std::memory_order_acquire);
    const uint32_t used = hdr_->tail.load(std::memory_order_acquire) - head;
    return used == 0 || used > n_ ? 0 : slots_[head & (n_ - 1)].stamp_ns;
  }

 private:
  RingHdr* hdr_ = nullptr;
  PktDesc* slots_ = nullptr;
  uint32_t n_ = 0;
};

// The rings of a KthreadShm, in layout order (slots_off's ring argument).
inline constexpr uint32_t kRingRx = 0, kRingTx = 1, kRingCompletions = 2, kRingRxReturn = 3;
inline constexpr uint32_t kRingsPerKthread = 4;

// The validated geometry of a region, what both sides use instead of
// re-reading the header. buf_size/n_bufs/bufs_off: the runtime's tx buffers.
struct RegionLayout {
  uint32_t n_kthreads = 0, ring_slots = 0, buf_size = 0, n_bufs = 0;
  uint64_t region_size = 0, kthreads_off = 0, bufs_off = 0;
  uint64_t slots_off(uint32_t kthread, uint32_t ring) const noexcept;  // ring: kRingRx .. kRingRxReturn
};

// Runtime side: lays out a fresh zeroed region of `size` bytes; false (and
// why in *err) when the parameters do not fit.
bool init_region(void* base, uint64_t size, uint32_t n_kthreads, uint32_t ring_slots, uint32_t buf_size,
                 RegionLayout* out, const char** err) noexcept;
// Size init_region needs for these parameters and n_bufs buffers.
uint64_t region_bytes(uint32_t n_kthreads, uint32_t ring_slots, uint32_t buf_size, uint32_t n_bufs) noexcept;
// IOKernel side: checks a region a runtime handed over (mapped_size bytes
// mapped at base) before anything in it is trusted; nullptr when sound,
// else what is wrong. (A version mismatch's text names both versions; it
// stays valid until the next validate_* call on this thread.)
const char* validate_region(const void* base, uint64_t mapped_size, RegionLayout* out) noexcept;
// Checks a registration of len bytes; nullptr when sound, else what is wrong.
const char* validate_register(const void* msg, size_t len) noexcept;

}  // namespace slip::iok
