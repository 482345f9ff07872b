// The IOKernel <-> runtime contract: everything that crosses the process
// boundary, in one versioned header. Both sides map one shared region (a
// memfd or hugetlbfs file the runtime creates and passes over the Unix
// socket); the region is mapped at different addresses in each process, so
// nothing in it is a pointer: every reference is a byte offset from the
// region's start. Layouts are pinned by static_asserts below; changing any of
// them is a new major version, which both sides refuse to mix.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace slip::iok {

inline constexpr uint32_t kMagic = 0x534c4950;  // "SLIP"
inline constexpr uint16_t kVersionMajor = 1;    // layout or meaning changed: refuse
inline constexpr uint16_t kVersionMinor = 0;    // additions only: accept
inline constexpr uint32_t kMaxKthreads = 64;
inline constexpr uint32_t kCacheLine = 64;

// One packet buffer, by offset into the region. 32 bytes, so two per line.
struct PktDesc {
  uint64_t buf_off;   // start of the buffer in the region
  uint32_t len;       // bytes of frame at buf_off + data_off
  uint16_t data_off;  // headroom before the frame
  uint16_t flags;     // kDescRxCsumOk, ...
  uint64_t stamp_ns;  // RX: when the IOKernel saw it (queueing-delay signal)
  uint64_t cookie;    // opaque to the receiver; returned with completions
};
inline constexpr uint16_t kDescRxCsumOk = 1u << 0;  // NIC verified IP and L4 checksums

// A single-producer single-consumer ring of PktDesc. Indices run freely
// (wrap at 2^32) and are masked by slots - 1; producer and consumer indices
// sit on their own cache lines so the two sides never share a written line.
struct alignas(kCacheLine) RingHdr {
  std::atomic<uint32_t> head;  // next slot the consumer reads (consumer writes)
  uint8_t pad0[kCacheLine - sizeof(std::atomic<uint32_t>)];
  std::atomic<uint32_t> tail;  // next slot the producer writes (producer writes)
  uint8_t pad1[kCacheLine - sizeof(std::atomic<uint32_t>)];
  uint32_t slots;              // a power of two; fixed at creation
  uint32_t reserved;
  uint64_t slots_off;          // PktDesc[slots] in the region
  uint8_t pad2[kCacheLine - 16];
};

enum class KthreadState : uint32_t { kParked = 0, kActive = 1, kRevoked = 2 };

// Per kthread: its rings and the congestion signals the IOKernel samples
// every allocation interval.
struct alignas(kCacheLine) KthreadShm {
  RingHdr rx;           // IOKernel -> runtime: received frames
  RingHdr tx;           // runtime -> IOKernel: frames to send
  RingHdr completions;  // IOKernel -> runtime: tx buffers the NIC is done with
  std::atomic<uint64_t> oldest_ready_ns;  // enqueue time of the oldest ready uthread, 0: none
  std::atomic<uint32_t> state;            // KthreadState, written by the runtime
  uint32_t reserved;
  uint8_t pad[kCacheLine - 16];
};

// At offset 0 of the region.
struct alignas(kCacheLine) RegionHdr {
  uint32_t magic;
  uint16_t version_major, version_minor;
  uint64_t region_size;   // bytes mapped
  uint32_t n_kthreads;    // KthreadShm entries
  uint32_t buf_size;      // bytes per packet buffer (headroom included)
  uint64_t kthreads_off;  // KthreadShm[n_kthreads]
  uint64_t bufs_off;      // buffer area
  uint32_t n_bufs;
  uint32_t reserved;
  uint8_t pad[kCacheLine - 48];
};

enum class Class : uint8_t { kLatencyCritical = 0, kBestEffort = 1 };

// Sent once on the Unix socket, with the region fd and one eventfd per
// kthread as SCM_RIGHTS.
struct RegisterMsg {
  uint32_t magic;
  uint16_t version_major, version_minor;
  uint32_t ip;             // host byte order
  uint8_t mac[6];
  uint16_t n_kthreads;     // eventfds attached, 1..kMaxKthreads
  uint16_t guaranteed_cores;
  uint16_t max_cores;
  uint8_t klass;           // Class
  uint8_t reserved[3];
  uint32_t delay_threshold_us;  // queueing delay that asks for another core
  uint64_t region_size;
};

// The answer: status 0 and the runtime is attached, else an errno value and
// a reason to print.
struct RegisterReply {
  uint32_t magic;
  uint16_t version_major, version_minor;
  int32_t status;
  char reason[116];  // NUL-terminated
};

// ---- layout: any change here is a new major version ----------------------
static_assert(std::atomic<uint32_t>::is_always_lock_free && std::atomic<uint64_t>::is_always_lock_free,
              "shared-memory atomics must be lock-free to work across processes");
static_assert(sizeof(std::atomic<uint32_t>) == 4 && sizeof(std::atomic<uint64_t>) == 8);
static_assert(sizeof(PktDesc) == 32 && offsetof(PktDesc, len) == 8 && offsetof(PktDesc, data_off) == 12 &&
              offsetof(PktDesc, flags) == 14 && offsetof(PktDesc, stamp_ns) == 16 && offsetof(PktDesc, cookie) == 24);
static_assert(sizeof(RingHdr) == 192 && offsetof(RingHdr, head) == 0 && offsetof(RingHdr, tail) == 64 &&
              offsetof(RingHdr, slots) == 128 && offsetof(RingHdr, slots_off) == 136);
static_assert(sizeof(KthreadShm) == 640 && offsetof(KthreadShm, tx) == 192 && offsetof(KthreadShm, completions) == 384 &&
              offsetof(KthreadShm, oldest_ready_ns) == 576 && offsetof(KthreadShm, state) == 584);
static_assert(sizeof(RegionHdr) == 64 && offsetof(RegionHdr, region_size) == 8 && offsetof(RegionHdr, n_kthreads) == 16 &&
              offsetof(RegionHdr, buf_size) == 20 && offsetof(RegionHdr, kthreads_off) == 24 &&
              offsetof(RegionHdr, bufs_off) == 32 && offsetof(RegionHdr, n_bufs) == 40);
static_assert(sizeof(RegisterMsg) == 40 && offsetof(RegisterMsg, ip) == 8 && offsetof(RegisterMsg, mac) == 12 &&
              offsetof(RegisterMsg, n_kthreads) == 18 && offsetof(RegisterMsg, guaranteed_cores) == 20 &&
              offsetof(RegisterMsg, max_cores) == 22 && offsetof(RegisterMsg, klass) == 24 &&
              offsetof(RegisterMsg, delay_threshold_us) == 28 && offsetof(RegisterMsg, region_size) == 32);
static_assert(sizeof(RegisterReply) == 128 && offsetof(RegisterReply, status) == 8 && offsetof(RegisterReply, reason) == 12);

}  // namespace slip::iok
