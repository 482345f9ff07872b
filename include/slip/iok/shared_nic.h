// The runtime's side of the IOKernel: a Nic over the rings of a region this
// process shares with iokerneld (shared mode). slip::net::open_nic()
// (slip/net/select.h) picks it, a DPDK port of the process's own (direct
// mode) or Linux sockets from one NicChoice.
//
// Shared mode: the Nic creates a sealed memfd region (rings + tx buffers),
// registers it on the daemon's control socket and maps the daemon's rx pool
// read-only. rx_burst hands out PacketBufs that point into that pool (zero
// copy); when the stack releases one, its descriptor goes back on rx_return.
// tx_burst sends buffers from the region (alloc_tx) by offset; others are
// copied in; completions give them back. No DPDK in this process.
//
// Core allocation: the shared-mode Nic is also the runtime's core arbiter
// (slip/runtime/cores.h) from its first rx_burst on a kthread: kthreads
// [0, guaranteed_cores) always run, the others only while the IOKernel
// grants them a core, and idle ones park on their eventfds. Destroy it after
// slip::rt::run() returns, or with no uthread of the runtime using it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "slip/net/addr.h"
#include "slip/net/nic.h"

namespace slip::iok {

struct SharedNicConfig {
  std::string socket = "/run/slip/iokernel.sock";  // iokerneld's control socket
  net::Ipv4Addr ip;            // the address the daemon steers to this runtime (the stack's)
  net::MacAddr mac;            // zero: 02:53:<ip> (locally administered, unique per IP)
  uint32_t kthreads = 1;       // rings the daemon steers over (the runtime's kthreads)
  uint16_t guaranteed_cores = 1, max_cores = 1;  // kthreads always granted; most granted at once
  bool best_effort = false;
  uint32_t delay_threshold_us = 10;
  uint32_t ring_slots = 1024;  // per ring, a power of two
  uint32_t tx_bufs = 2048;     // tx buffers in the region
};

// Connects and registers. Throws std::runtime_error with the daemon's reason
// (or the cause: no daemon, permissions) and a fix.
std::unique_ptr<net::Nic> connect_iokernel(const SharedNicConfig& cfg);

}  // namespace slip::iok
