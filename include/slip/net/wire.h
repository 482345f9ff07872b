// The test wire: an in-process link between two NIC ends, with seeded fault
// injection (drop, duplicate, reorder, delay, corrupt a byte, truncate) and an
// optional virtual clock, so protocol tests are deterministic. It is real code,
// used by the TCP tests, the fuzz targets and the benchmarks' self-checks.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <random>

#include "slip/net/nic.h"
#include "slip/runtime/spin_park_lock.h"

namespace slip::net {

struct WireFaults {
  double drop = 0, duplicate = 0, reorder = 0, corrupt = 0, truncate = 0;  // probabilities per frame
  uint64_t delay_ns = 0;         // fixed one-way delay
  uint64_t jitter_ns = 0;        // extra uniform delay in [0, jitter_ns]
  uint64_t seed = 1;
};

struct WireStats {
  uint64_t sent = 0, delivered = 0, dropped = 0, duplicated = 0, reordered = 0, corrupted = 0, truncated = 0;
  uint64_t oversize = 0;  // frames over the MTU, dropped at transmit as a real port does
};

class TestWire {
 public:
  // A wire whose ends have the given MACs. With a virtual clock, frames become
  // deliverable only when advance() moves time past their due time. Both ends
  // report `mtu`, and a frame longer than it (plus the Ethernet header) never
  // arrives: net_tap and NICs drop those at transmit, and a stack that builds
  // one must find out here, not in production. With several `queues`, a
  // frame sent on queue q arrives on the far end's queue q, as memif's do,
  // each queue a FIFO of its own with its own fault draws.
  TestWire(MacAddr a, MacAddr b, WireFaults faults = {}, bool virtual_clock = false, size_t pool_bufs = 8192,
           uint16_t mtu = 1500, uint16_t queues = 1);
  ~TestWire();
  TestWire(const TestWire&) = delete;
  TestWire& operator=(const TestWire&) = delete;

  Nic& end_a() noexcept;
  Nic& end_b() noexcept;
  void set_faults(const WireFaults& f);  // applies to frames sent from now on
  WireStats stats() const;

  // Virtual clock (ns); real time (now_ns) when the wire was built without one.
  uint64_t now() const noexcept;
  void advance(uint64_t ns) noexcept;
  // Frames in flight in both directions.
  size_t in_flight() const;
  BufPool& pool() noexcept { return *pool_; }

  class End;  // the Nic of one side

 private:
  std::unique_ptr<BufPool> pool_;
  std::unique_ptr<End> a_, b_;
  bool virtual_clock_;
  std::atomic<uint64_t> vnow_{0};
};

}  // namespace slip::net
