// Direct mode in a build without DPDK (-Ddpdk=disabled, or no libdpdk):
// refused with the reason and what to use instead.
#include <memory>
#include <stdexcept>
#include <string>

#include "net/select/opened.h"

namespace slip::net {

std::string_view direct_mode_unavailable() noexcept {
  return "built without DPDK: direct mode (--vdev, --pci: a DPDK port of this process's own) needs a build "
         "configured with DPDK (meson setup -Ddpdk=enabled; tools/setup installs DPDK 22.11); use --iokernel "
         "(shared mode, behind iokerneld) or --stack kernel";
}

std::unique_ptr<OpenedNic> open_direct(const NicChoice&) {
  throw std::invalid_argument(std::string(direct_mode_unavailable()));
}

}  // namespace slip::net
