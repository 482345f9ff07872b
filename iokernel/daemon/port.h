// The seam between the control plane and the packet data path. The daemon's
// loop calls poll() on every turn; a port backend receives a burst, steers it
// onto the runtimes' rx rings, takes back returned rx buffers, and serves the
// runtimes' tx rings (iokernel/daemon/datapath.h). Kept free of DPDK headers
// so the control plane builds and tests without a NIC. A backend receives
// into a shared rx pool that every registration reply hands out (rx_pool()).
#pragma once

#include <cstdint>
#include <string>

#include "iokernel/daemon/steer.h"
#include "iokernel/registration.h"

namespace slip::iok {

class RuntimeTable;
struct RuntimeEntry;

struct PortCounters {
  uint64_t rx_frames = 0, tx_frames = 0;
  uint64_t rx_dropped = 0;  // received from the port but handed to no runtime (see drops)
  uint64_t tx_dropped = 0;
  uint64_t local_frames = 0;  // runtime to runtime on this host, never on the wire
  DropCounters drops;         // every drop of the data path (rx, tx, local), by reason
  uint64_t rx_missed = 0, rx_errors = 0, tx_errors = 0;  // as the NIC counts them
  uint64_t rx_pool_free = 0;  // rx pool buffers neither in the NIC's queue nor held by a runtime
};

class PortBackend {
 public:
  virtual ~PortBackend() = default;
  virtual const std::string& name() const noexcept = 0;
  virtual std::string mac() const = 0;
  // One turn of the data path; returns how many frames it handled (0: idle).
  // Runs on the loop thread, which owns the table.
  virtual unsigned poll(RuntimeTable& runtimes) noexcept = 0;
  virtual PortCounters counters() const = 0;
  // The rx pool runtimes map: a read-only fd the backend owns (the reply
  // sends a copy) and its geometry. fd -1: none, runtimes get no rx.
  virtual RxPool rx_pool() const noexcept { return {}; }
  // The runtime is about to be detached (its region unmapped): forget it and
  // free every rx buffer it holds; returns how many. Loop thread only.
  virtual unsigned detach_runtime(RuntimeEntry& /*e*/) noexcept { return 0; }
};

}  // namespace slip::iok
