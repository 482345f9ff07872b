// The daemon's embedding API, for tests and benchmarks only: iokerneld's
// control plane and core allocator run inside the caller's process, on a
// thread of its choosing, with no port (no frames flow). A benchmark drives
// it pass by pass to time the allocator against a real shared-mode runtime
// (tools/bench/iokernel_bench.cc). Services never use it: they attach to a
// real iokerneld with slip::iok::connect_iokernel.
//
// This header is all of the daemon a user of slip_iokd_embed_dep sees (its
// include directory holds nothing else); the daemon's own headers stay
// internal to iokernel/ and its tests.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "slip/iok/contract.h"

namespace slip::iok {

class EmbeddedDaemon {
 public:
  // Listens on socket (mode 0600); the core allocator (iokerneld's DelayPolicy)
  // hands out `cores` cores. Throws with the cause and a fix.
  EmbeddedDaemon(const std::string& socket, uint32_t cores);
  ~EmbeddedDaemon();
  EmbeddedDaemon(const EmbeddedDaemon&) = delete;
  EmbeddedDaemon& operator=(const EmbeddedDaemon&) = delete;

  // Waits up to timeout_ms for a runtime to connect and accepts its
  // registration, handing it an rx pool of one buffer. False when none came
  // in time; throws with the daemon's reason when it refused one. Once one
  // is attached, later calls return true at once.
  bool accept_one(int timeout_ms);
  // One core allocation pass, as iokerneld's loop runs every --core-interval-us.
  void allocate(uint64_t now_ns);
  uint64_t passes() const noexcept;
  // Kthread k's shared state of the attached runtime (accept_one returned
  // true); it stays valid as long as this object.
  KthreadShm& kthread(uint32_t k);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace slip::iok
