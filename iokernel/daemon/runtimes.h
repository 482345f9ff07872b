// The runtimes attached to the daemon. Owned and touched by the loop thread
// only; an entry unmaps its region and closes its descriptors when dropped.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "iokernel/daemon/control.h"
#include "iokernel/daemon/fd.h"
#include "iokernel/daemon/liveness.h"
#include "iokernel/registration.h"

namespace slip::iok {

// Per-runtime counters, written by the loop thread's data path.
struct RuntimeCounters {
  uint64_t rx_frames = 0;   // steered onto its rx rings
  uint64_t rx_dropped = 0;  // steered to it but dropped (ring full, over its buffer cap, no buffer for a copy)
  uint64_t tx_frames = 0;   // taken from its tx rings
  uint64_t tx_local = 0;    // of those, delivered to another runtime on this host (never on the wire)
  uint64_t rx_returned = 0, bad_returns = 0;  // rx buffers given back on rx_return; refused returns
  uint64_t unexpected_msgs = 0;  // control messages after registration (ignored)
};

// What the core allocator (cores.h) keeps per kthread of a runtime.
struct CoreSlot {
  bool granted = false;         // the daemon's grant (mirrored in KthreadShm.grant)
  uint32_t parks_at_grant = 0;  // KthreadShm.parks when granted: a later park gives the core back
  uint32_t kicked_parks = 0;    // KthreadShm.parks when last kicked for waiting frames
  int cpu = -1;                 // the CPU of its last grant (--cpus); -1: none yet
};

// Per-runtime core allocation counters and the last pass's view.
struct CoreCounters {
  uint64_t grants = 0, revokes = 0;  // extra kthreads granted, taken back by the policy
  uint64_t yields = 0;               // granted kthreads that parked (gave the core back)
  uint64_t kicks = 0;                // parked kthreads woken for frames waiting
  uint32_t granted = 0, active = 0;  // cores granted (guarantee included), in use now
  uint64_t delay_ns = 0;             // queueing delay at the last pass
};

enum class Ring : uint32_t { kRx = kRingRx, kTx = kRingTx, kCompletions = kRingCompletions, kRxReturn = kRingRxReturn };

struct RuntimeEntry {
  RuntimeEntry() = default;
  RuntimeEntry(const RuntimeEntry&) = delete;
  RuntimeEntry& operator=(const RuntimeEntry&) = delete;
  ~RuntimeEntry() { detach(attached); }

  KthreadShm& kthread(uint32_t k) const noexcept {
    return reinterpret_cast<KthreadShm*>(attached.region + attached.layout.kthreads_off)[k];
  }
  RingView ring(uint32_t k, Ring r) const noexcept;

  uint64_t id = 0;
  Attached attached;
  Fd conn;        // the control connection; its hang-up is the runtime's death
  PeerCred cred;  // who registered (pid for the logs)
  uint64_t attached_ns = 0;
  RuntimeCounters counters;
  std::vector<uint64_t> rx_pushed;  // per kthread, total pushed onto its rx ring (the data path adds)
  std::vector<RxWatch> rx_watch;    // per kthread
  uint32_t rx_held = 0;             // rx pool buffers it holds now (RxOwners keeps this)
  std::vector<CoreSlot> cores;      // per kthread, the core allocator's
  CoreCounters core_counters;
};

class RuntimeTable {
 public:
  RuntimeEntry& add(Attached&& a, Fd conn, const PeerCred& cred, uint64_t now_ns);
  RuntimeEntry* find(uint64_t id) noexcept;
  // Drops the entry: region unmapped, descriptors closed, IP free for reuse.
  bool remove(uint64_t id) noexcept;
  void clear() noexcept {
    entries_.clear();
    generation_++;
  }
  std::vector<uint32_t> ips() const;
  size_t size() const noexcept { return entries_.size(); }
  const std::vector<std::unique_ptr<RuntimeEntry>>& entries() const noexcept { return entries_; }
  // Changes whenever a runtime is added or removed: the data path's cue to rebuild its routes.
  uint64_t generation() const noexcept { return generation_; }

  struct Stall {
    uint64_t id;
    uint32_t kthread, fill;
  };
  // Looks at every rx ring once (observe_rx); the runtimes that stalled.
  std::vector<Stall> check_stalls(uint64_t now_ns, uint64_t timeout_ns);

 private:
  std::vector<std::unique_ptr<RuntimeEntry>> entries_;
  uint64_t next_id_ = 1;
  uint64_t generation_ = 0;
};

std::string ip_str(uint32_t host_order_ip);
std::string mac_str(const uint8_t (&mac)[6]);

}  // namespace slip::iok
