// The IOKernel <-> runtime contract: everything that crosses the process
// boundary, in one versioned header. Two shared mappings, each mapped at
// different addresses in each process, so nothing in them is a pointer: every
// reference is a byte offset from the start of one of them.
//  - The runtime's region: a memfd the runtime creates, seals against
//    shrinking and passes over the Unix socket. It holds the header, the
//    rings and the runtime's tx buffers; the daemon maps it read-write.
//  - The daemon's rx pool: a sealed memfd (ShmPktPool) the PMD receives into,
//    passed to the runtime read-only in the RegisterReply.
// Layouts are pinned by static_asserts below; changing any of them is a new
// major version, which both sides refuse to mix.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "slip/common/mix.h"

namespace slip::iok {

inline constexpr uint32_t kMagic = 0x534c4950;  // "SLIP"
inline constexpr uint16_t kVersionMajor = 3;    // layout or meaning changed: refuse (v3: core allocation)
inline constexpr uint16_t kVersionMinor = 2;    // additions only: accept (v3.1: grant_cpu, v3.2: steer_hash)
inline constexpr uint32_t kMaxKthreads = 64;
inline constexpr uint32_t kCacheLine = 64;

// One packet buffer, by offset. Which mapping buf_off counts from depends on
// the ring (see KthreadShm): rx and rx_return, the daemon's rx pool; tx and
// completions, the runtime's region. 32 bytes, so two per line.
struct PktDesc {
  uint64_t buf_off;   // start of the buffer in the ring's mapping (above)
  uint32_t len;       // bytes of frame at buf_off + data_off
  uint16_t data_off;  // headroom before the frame
  uint16_t flags;     // kDescRxCsumOk, ...
  uint64_t stamp_ns;  // RX: when the IOKernel saw it (queueing-delay signal)
  uint64_t cookie;    // opaque to the receiver; returned with completions and rx returns
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

// What a kthread is doing, as its runtime publishes it. kParked: it holds no
// core (idle, or revoked) and sleeps on its eventfd (or spins on `grant` when
// configured to); the IOKernel counts its core as free. kActive: running.
// kRevoked: a runtime without an IOKernel-driven scheduler took it away.
enum class KthreadState : uint32_t { kParked = 0, kActive = 1, kRevoked = 2 };

// Per kthread: its rings, the congestion signals the IOKernel samples every
// allocation interval, and the core grant it writes back. Every ring's slots
// live in the runtime's region; the comment on each says where its
// descriptors' buf_off points. The other signal, the age of the oldest frame
// in rx, the IOKernel reads from the stamp of the descriptor at rx's head.
// Grant protocol (docs/iokernel.md, "Core allocation"): the IOKernel sets
// grant = 1, bumps grant_seq and writes the kthread's eventfd; a kthread that
// parks bumps parks first, so a parked kthread whose parks moved since its
// grant has given its core back, and one whose parks did not is still waking.
struct alignas(kCacheLine) KthreadShm {
  RingHdr rx;           // IOKernel -> runtime: received frames; buf_off into the rx pool
  RingHdr tx;           // runtime -> IOKernel: frames to send; buf_off into the region
  RingHdr completions;  // IOKernel -> runtime: tx buffers the NIC is done with; buf_off into the region
  RingHdr rx_return;    // runtime -> IOKernel: rx buffers the runtime is done with, the rx
                        // descriptor's buf_off (into the rx pool) and cookie sent back unchanged
  std::atomic<uint64_t> oldest_ready_ns;  // runtime: since when its run queue held ready uthreads
                                          // without draining (CLOCK_MONOTONIC ns), 0: empty
  std::atomic<uint32_t> state;            // runtime: KthreadState
  std::atomic<uint32_t> parks;            // runtime: times it parked, bumped before state goes kParked
  std::atomic<uint32_t> grant;            // IOKernel: 1 the kthread may hold a core, 0 not
  std::atomic<uint32_t> grant_seq;        // IOKernel: bumped with every grant
  std::atomic<uint64_t> grant_ns;         // IOKernel: when it last granted (CLOCK_MONOTONIC ns)
  std::atomic<uint32_t> grant_cpu;        // IOKernel (v3.1): the CPU this grant is for, plus 1; 0: none,
                                          // run anywhere. Written before grant_seq moves.
  uint8_t pad[kCacheLine - 36];
};

// At offset 0 of the runtime's region. bufs_off/n_bufs/buf_size describe the
// runtime's own (tx) buffers, not the rx pool.
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
// a reason to print. On success with pool_size != 0 the message carries one
// descriptor (SCM_RIGHTS): the daemon's rx pool, a memfd opened read-only and
// sealed against shrinking and growing, pool_size bytes holding n_bufs
// buffers of buf_size bytes; the runtime maps it PROT_READ, MAP_SHARED. A
// daemon without a port (--no-port) sends no fd and zeroes: no rx. status and
// reason sit where v1 had them, so a v1 runtime can still read its refusal.
struct RegisterReply {
  uint32_t magic;
  uint16_t version_major, version_minor;
  int32_t status;
  char reason[116];    // NUL-terminated
  uint64_t pool_size;  // bytes of the rx pool memfd; 0: no pool (and no fd)
  uint32_t buf_size;   // bytes per rx buffer (headroom included)
  uint32_t n_bufs;     // rx buffers in the pool
};

// ---- steering ------------------------------------------------------------
// How iokerneld picks the kthread for a frame: a unicast IPv4 frame from src
// to dst (host byte order) whose first 4 L4 bytes are `ports` (source port
// in the high half, for TCP and UDP; 0 for other protocols and fragments)
// goes to active kthread steer_pick(steer_hash(...), n_active). A runtime
// that knows it keeps each flow's state on the kthread that will receive its
// frames, and picks a dialing connection's port so replies return to the
// kthread that dialed (while all its kthreads are active; frames that land
// elsewhere are still handled, at a cost). Part of the contract since v3.2.
inline constexpr uint32_t steer_hash(uint32_t src, uint32_t dst, uint32_t ports, uint8_t proto) noexcept {
  const uint64_t h = splitmix64((uint64_t{src} << 32 | dst) ^ splitmix64(uint64_t{ports} << 8 | proto));
  return static_cast<uint32_t>(h ^ (h >> 32));
}
// Multiply-shift instead of %: an even spread and no division per frame.
inline constexpr uint32_t steer_pick(uint32_t hash, uint32_t n) noexcept {
  return static_cast<uint32_t>((uint64_t{hash} * n) >> 32);
}

// ---- layout: any change here is a new major version ----------------------
static_assert(std::atomic<uint32_t>::is_always_lock_free && std::atomic<uint64_t>::is_always_lock_free,
              "shared-memory atomics must be lock-free to work across processes");
static_assert(sizeof(std::atomic<uint32_t>) == 4 && sizeof(std::atomic<uint64_t>) == 8);
static_assert(sizeof(PktDesc) == 32 && offsetof(PktDesc, len) == 8 && offsetof(PktDesc, data_off) == 12 &&
              offsetof(PktDesc, flags) == 14 && offsetof(PktDesc, stamp_ns) == 16 && offsetof(PktDesc, cookie) == 24);
static_assert(sizeof(RingHdr) == 192 && offsetof(RingHdr, head) == 0 && offsetof(RingHdr, tail) == 64 &&
              offsetof(RingHdr, slots) == 128 && offsetof(RingHdr, slots_off) == 136);
static_assert(sizeof(KthreadShm) == 832 && offsetof(KthreadShm, tx) == 192 && offsetof(KthreadShm, completions) == 384 &&
              offsetof(KthreadShm, rx_return) == 576 && offsetof(KthreadShm, oldest_ready_ns) == 768 &&
              offsetof(KthreadShm, state) == 776 && offsetof(KthreadShm, parks) == 780 &&
              offsetof(KthreadShm, grant) == 784 && offsetof(KthreadShm, grant_seq) == 788 &&
              offsetof(KthreadShm, grant_ns) == 792 && offsetof(KthreadShm, grant_cpu) == 800);
static_assert(sizeof(RegionHdr) == 64 && offsetof(RegionHdr, region_size) == 8 && offsetof(RegionHdr, n_kthreads) == 16 &&
              offsetof(RegionHdr, buf_size) == 20 && offsetof(RegionHdr, kthreads_off) == 24 &&
              offsetof(RegionHdr, bufs_off) == 32 && offsetof(RegionHdr, n_bufs) == 40);
static_assert(sizeof(RegisterMsg) == 40 && offsetof(RegisterMsg, ip) == 8 && offsetof(RegisterMsg, mac) == 12 &&
              offsetof(RegisterMsg, n_kthreads) == 18 && offsetof(RegisterMsg, guaranteed_cores) == 20 &&
              offsetof(RegisterMsg, max_cores) == 22 && offsetof(RegisterMsg, klass) == 24 &&
              offsetof(RegisterMsg, delay_threshold_us) == 28 && offsetof(RegisterMsg, region_size) == 32);
static_assert(sizeof(RegisterReply) == 144 && offsetof(RegisterReply, status) == 8 &&
              offsetof(RegisterReply, reason) == 12 && offsetof(RegisterReply, pool_size) == 128 && offsetof(RegisterReply, buf_size) == 136 &&
              offsetof(RegisterReply, n_bufs) == 140);

}  // namespace slip::iok
