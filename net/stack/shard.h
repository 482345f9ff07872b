// One receive queue's share of the slip stack, IX style: the TCP
// connections whose flows the port steers to that queue, their timers, and
// the frames waiting to leave on the queue's transmit side. Not API.
//
// Ownership (docs/net.md, "Per-core dataplane"): a shard's state is touched
// only with its lock held. The kthread that owns the queue takes it for each
// poll; in steady state nobody else does, since a flow's segments arrive on
// its home queue and the uthreads they wake run on the same kthread. Others
// take it only to steal from an owner that is parked or behind, to hand over
// a segment that arrived on another queue, or for an application call made
// from another kthread. Shard locks never nest.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "net/proto/rx.h"
#include "slip/net/buf.h"
#include "slip/net/counters.h"
#include "slip/net/nic.h"
#include "slip/net/stack.h"
#include "slip/runtime/spin_park_lock.h"

namespace slip::net::stack {

class TcpCore;

// A connection's 4-tuple, the key of a shard's TCP table.
struct FlowKey {
  Endpoint local, remote;
  friend bool operator==(const FlowKey&, const FlowKey&) = default;
};
struct FlowHash {
  size_t operator()(const FlowKey& k) const noexcept {
    uint64_t h = (uint64_t{k.remote.ip.v} << 32) ^ (uint64_t{k.remote.port} << 16) ^ k.local.port;
    h ^= uint64_t{k.local.ip.v} * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    return static_cast<size_t>(h * 0xBF58476D1CE4E5B9ull);
  }
};

// Counters of one shard, written under its lock (NetCounters::inc: one
// writer at a time) and read by anyone; lock_waits, outside it, by fetch_add.
struct ShardCounters {
  std::atomic<uint64_t> rx_frames{0}, rx_stolen{0}, rx_bursts{0}, sampled{0}, concurrent{0};
  std::atomic<uint64_t> tcp_from_other_queue{0}, lock_waits{0};
};

struct alignas(64) Shard {
  rt::SpinParkLock lk;
  uint16_t index = 0;  // its receive and transmit queue
  unsigned owner = 0;  // the kthread that polls it

  // ---- under lk
  std::unordered_map<FlowKey, std::shared_ptr<TcpCore>, FlowHash> conns;
  std::vector<TcpCore*> dead;    // closed: out of conns at the next housekeeping
  std::vector<TcpCore*> timers;  // a min-heap by TcpCore::tmr_deadline
  PacketBuf* tx[kBurst] = {};    // frames waiting for the transmit queue
  uint16_t n_tx = 0;
  uint32_t bursts = 0;           // counts bursts, to sample every kSampleEvery-th
  uint64_t stamped_ns = 0;       // the last polled_ns written; its owner's alone, lock or not

  // ---- read by others without lk
  std::atomic<uint64_t> next_timer{UINT64_MAX};  // the heap's first deadline (max_park_ns)
  // When its owner last came to poll it (whether or not it found the lock
  // free); 0 once its owner parked. Another kthread polls a shard whose stamp
  // is older than StackConfig::steal_after_ns.
  std::atomic<uint64_t> polled_ns{0};
  ShardCounters ctr;

  // The transmit queue: taken only around Nic::tx_burst, by this shard's
  // lock holder flushing tx[] or by a uthread sending a datagram.
  alignas(64) rt::SpinParkLock tx_lk;
};

inline constexpr uint32_t kSampleEvery = 8;  // bursts per concurrency sample

// What the thread handling received frames keeps for the burst: the shard
// it holds, the connections whose output waits for the burst's end, and the
// segments that belong to another queue's shard.
struct RxContext {
  const void* stack = nullptr;  // whose shard is held (a process may run several stacks)
  Shard* shard = nullptr;
  bool batching = false;
  uint16_t n_batch = 0;
  TcpCore* batch[kBurst] = {};
  struct Foreign {
    PacketBuf* buf = nullptr;
    proto::RxFrame frame{};
    uint16_t home = 0;
  };
  uint16_t n_foreign = 0;
  Foreign foreign[kBurst];
};
inline constinit thread_local RxContext t_rx;  // constant initialized: no TLS guard on each use

}  // namespace slip::net::stack
