// iokerneld built without DPDK (-Ddpdk=disabled, or no libdpdk): the control
// plane runs (--no-port, for tests); a port is refused with the reason.
#include <stdexcept>

#include "iokernel/daemon/dpdk_backend.h"

namespace slip::iok {

std::unique_ptr<PortBackend> start_dpdk_port(const DaemonSettings&) {
  throw std::runtime_error(
      "built without DPDK: iokerneld's port (--pci, --vdev) and its data path need a build configured with DPDK "
      "(meson setup -Ddpdk=enabled; tools/setup installs DPDK 22.11); this daemon runs only with --no-port (the "
      "control plane, for tests)");
}

}  // namespace slip::iok
