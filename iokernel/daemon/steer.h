// Steering without DPDK: where a frame goes by its headers (classify_frame),
// which runtime has that address and which of its active kthreads takes the
// flow (RouteTable), who holds each rx pool buffer (RxOwners), and why frames
// were dropped (DropCounters). The DPDK data path (datapath.cc) drives these;
// tests drive them with crafted frames.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "slip/iok/contract.h"

namespace slip::iok {

struct RuntimeEntry;
class RuntimeTable;

// Every reason the data path drops a frame, each counted on its own.
enum class DropReason : uint8_t {
  kRunt,        // shorter than its headers
  kNotIpv4,     // neither IPv4 nor ARP (IPv6, VLAN, ...)
  kChained,     // a multi-segment mbuf (bigger than one pool buffer)
  kNoRuntime,   // unicast IPv4 to an address no runtime has (or no runtime at all)
  kRingFull,    // the chosen kthread's rx ring was full
  kOverCap,     // the runtime already holds its cap of rx buffers
  kNoBuffer,    // no pool buffer for a copy (broadcast, local delivery, tx)
  kBadReturn,   // rx_return of a buffer the runtime does not hold
  kTxBadDesc,   // a tx descriptor outside the runtime's buffers, or too long
  kTxPortFull,  // the port's tx queue took fewer frames than offered
  kCount
};
inline constexpr size_t kDropReasons = static_cast<size_t>(DropReason::kCount);
// "runt", "not_ipv4", ...: the keys of the stats document.
const char* drop_name(DropReason r) noexcept;

struct DropCounters {
  std::array<uint64_t, kDropReasons> n{};
  void add(DropReason r, uint64_t k = 1) noexcept { n[static_cast<size_t>(r)] += k; }
  uint64_t operator[](DropReason r) const noexcept { return n[static_cast<size_t>(r)]; }
};

enum class FrameKind : uint8_t { kUnicast, kArp, kBroadcast, kDrop };

// What a frame's headers say. kUnicast: IPv4 to ip, flow hash over the
// 5-tuple (addresses only for fragments, so a datagram's pieces stay
// together). kArp: ip is the target protocol address. kBroadcast: IPv4 to a
// broadcast or multicast MAC or address. kDrop: why says why.
struct FrameDest {
  FrameKind kind = FrameKind::kDrop;
  DropReason why = DropReason::kRunt;
  uint32_t ip = 0;  // host byte order
  uint32_t hash = 0;
};
FrameDest classify_frame(const uint8_t* frame, uint32_t len) noexcept;

// The runtimes by IP with their active kthreads, rebuilt when runtimes come
// or go (RuntimeTable::generation) and refreshed from KthreadShm.state once
// per burst. A linear scan: a host runs a handful of runtimes, and a scan of
// a few cache lines beats a hash for that.
class RouteTable {
 public:
  struct Route {
    uint32_t ip = 0;
    RuntimeEntry* rt = nullptr;
    uint32_t n_active = 0;
    std::array<uint8_t, kMaxKthreads> active{};  // kthread numbers, n_active of them
  };

  // Control plane (allocates): one route per attached runtime.
  void rebuild(const RuntimeTable& t);
  bool stale(const RuntimeTable& t) const noexcept;
  // Re-reads every kthread's state; a runtime with no active kthread is
  // steered over all of them (its rings are drained whoever polls them).
  void refresh_active() noexcept;
  // The route of ip, or -1.
  int find(uint32_t ip) const noexcept;
  uint32_t pick_kthread(int route, uint32_t hash) const noexcept;
  size_t size() const noexcept { return routes_.size(); }
  const Route& operator[](size_t i) const noexcept { return routes_[i]; }

 private:
  std::vector<Route> routes_;
  uint64_t generation_ = ~uint64_t{0};
};

// Where a frame received from the port goes: one kthread of one runtime
// (route >= 0), every runtime (kToAll: ARP and broadcast), or nowhere
// (kDropped, counted in drops by reason).
struct RxTarget {
  static constexpr int kToAll = -2, kDropped = -1;
  int route = kDropped;
  uint32_t kthread = 0;
};
RxTarget steer_rx(const RouteTable& routes, const uint8_t* frame, uint32_t len, DropCounters& drops) noexcept;

// Who holds each rx pool buffer (docs/iokernel.md, "Crash reclaim"): a slot
// per buffer, keyed by buf_off / buf_size (one slot per buffer, as buffers
// of buf_size bytes never overlap), remembering the exact offset so a return
// must name a real buffer of the runtime's own.
class RxOwners {
 public:
  void init(uint64_t pool_size, uint32_t buf_size, uint32_t cap_per_runtime);
  // Records rt as the holder of buf_off; false when rt is at its cap (or the
  // offset is out of range or already held).
  bool take(RuntimeEntry& rt, uint64_t buf_off) noexcept;
  // A buffer rt hands back (rx_return, or a push that did not fit): true
  // when rt held it; the slot is then free.
  bool give_back(RuntimeEntry& rt, uint64_t buf_off) noexcept;
  // Clears every buffer rt holds, calling free(buf_off) for each: its death.
  // Returns how many it freed.
  template <class F>
  unsigned reclaim(RuntimeEntry& rt, uint64_t rt_id, F&& free) noexcept {
    unsigned n = 0;
    for (Slot& s : slots_)
      if (s.owner == rt_id) {
        free(s.off);
        s.owner = 0;
        n++;
      }
    reset_held(rt);
    return n;
  }
  uint32_t cap() const noexcept { return cap_; }

 private:
  struct Slot {
    uint64_t off = 0;
    uint64_t owner = 0;  // RuntimeEntry::id; 0: the daemon (free or in the NIC)
  };
  static void reset_held(RuntimeEntry& rt) noexcept;
  std::vector<Slot> slots_;
  uint32_t buf_size_ = 1, cap_ = 0;
};

}  // namespace slip::iok
