// The runtime's side of the IOKernel: a Nic over the rings of a region this
// process shares with iokerneld (shared mode), and the one switch that picks
// it or a DPDK port of the process's own (direct mode).
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
#include <optional>
#include <string>
#include <vector>

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

// Direct or shared, as a config file or command line says.
struct NicChoice {
  enum class Mode { kDirect, kShared } mode = Mode::kDirect;
  // Direct: a DPDK port this process opens: a virtual device (vdev) or a PCI
  // NIC (pci, "0000:3b:00.0" or "3b:00.0", devargs after a comma), with EAL
  // arguments from net::eal_args_for_port (eal_args: the user's own, already
  // split; huge unset: hugepages when free). port_name defaults to the
  // device's ethdev name.
  std::string vdev, pci, port_name, file_prefix = "slip-runtime";
  // Direct: the port's receive and transmit queues. With several, a port
  // with RSS (or net_tap, whose kernel side hashes flows over its queues)
  // spreads flows over them, and kthread i polls queue i first.
  uint16_t queues = 1;
  // Direct: the port's MTU (net::DpdkPortConfig::mtu); 0 keeps the PMD's.
  uint16_t mtu = 0;
  // Direct: sleep on the port's receive interrupts where it has them
  // (net::DpdkPortConfig::rx_interrupts).
  bool rx_interrupts = true;
  std::vector<std::string> eal_args;
  std::optional<bool> huge;
  // Shared: everything about the daemon and the registration.
  SharedNicConfig shared;
};

// Opens the NIC the choice names; throws with the cause and a fix. Direct
// mode starts EAL (once per process) and keeps the port open until the Nic
// is destroyed.
std::unique_ptr<net::Nic> open_nic(const NicChoice& c);

}  // namespace slip::iok
