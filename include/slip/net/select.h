// NIC selection: one function opens whichever network a runtime runs on.
//   kDirect  a DPDK port of the process's own (IX style): EAL and the port
//   kShared  iokerneld's rings (slip/iok/shared_nic.h, the backend in iokernel/client)
//   kKernel  Linux sockets: nothing to open
// EAL and a port start before slip::rt::run(), but a Stack must be made
// inside it (it registers a poller). So open_nic(), before run(), returns an
// OpenedNic that owns the NIC, and its make_stack(), inside run(), makes the
// stack over it. The library is slip_net_select (net/select/); a build
// without DPDK has it too, and refuses kDirect (direct_mode_unavailable()).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "slip/iok/shared_nic.h"
#include "slip/net/nic.h"
#include "slip/net/stack.h"

namespace slip::net {

enum class NicMode { kKernel, kDirect, kShared };

// Which network, as a config file or command line says.
struct NicChoice {
  NicMode mode = NicMode::kKernel;
  // Direct: a virtual device (vdev) or a PCI NIC (pci, "0000:3b:00.0" or
  // "3b:00.0", devargs after a comma), with EAL arguments from
  // eal_args_for_port (eal_args: the user's own, already split; huge unset:
  // hugepages when free). port_name defaults to the device's ethdev name.
  std::string vdev, pci, port_name, file_prefix = "slip-runtime";
  // Direct: the port's receive and transmit queues. With several, a port
  // with RSS (or net_tap, whose kernel side hashes flows over its queues)
  // spreads flows over them, and kthread i polls queue i first.
  uint16_t queues = 1;
  uint16_t mtu = 0;  // direct: the port's MTU (DpdkPortConfig::mtu); 0 keeps the PMD's
  // Direct: sleep on the port's receive interrupts where it has them
  // (DpdkPortConfig::rx_interrupts).
  bool rx_interrupts = true;
  std::vector<std::string> eal_args;
  std::optional<bool> huge;
  // Shared: the daemon and the registration.
  iok::SharedNicConfig shared;
};

// Frames per queue, where the backend counts them (a DPDK port).
struct NicQueueStats {
  std::vector<uint64_t> rx_frames, tx_frames;
};

// What open_nic() opened: the NIC it owns (none for kKernel). Destroy it
// after slip::rt::run() returns, once no stack made from it is left.
class OpenedNic {
 public:
  virtual ~OpenedNic() = default;
  // The stack: the slip stack over the NIC, or Linux sockets for kKernel.
  // Call inside slip::rt::run().
  virtual std::unique_ptr<Stack> make_stack(const StackConfig& cfg) = 0;
  // The NIC (for caps()); nullptr for kKernel.
  virtual Nic* nic() noexcept = 0;
  // Per-queue frame counts; empty where the backend has none.
  virtual NicQueueStats queue_stats() const { return {}; }
};

// Opens what c names; throws with the cause and a fix. kDirect starts EAL
// (once per process) and the port, and prints a line on stderr saying which
// memory EAL runs on and whether receive interrupts are on.
std::unique_ptr<OpenedNic> open_nic(const NicChoice& c);

// Empty when this build has direct mode (DPDK); otherwise why not and what
// to use instead, for a message.
std::string_view direct_mode_unavailable() noexcept;

}  // namespace slip::net
