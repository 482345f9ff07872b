// The switch between direct mode (a DPDK port of this process's own) and
// shared mode (iokerneld's rings), and connect_iokernel.
#include <memory>
#include <stdexcept>

#include "iokernel/client/shared_nic_impl.h"
#include "slip/net/dpdk.h"

namespace slip::iok {

std::unique_ptr<net::Nic> connect_iokernel(const SharedNicConfig& cfg) { return std::make_unique<SharedNic>(cfg); }

std::unique_ptr<net::Nic> open_nic(const NicChoice& c) {
  if (c.mode == NicChoice::Mode::kShared) return connect_iokernel(c.shared);
  if (c.vdev.empty() && c.port_name.empty())
    throw std::invalid_argument("direct mode needs a DPDK device (--vdev) or a port name; or use shared mode");
  net::eal_init(net::eal_args_for_test(c.vdev, c.file_prefix));
  net::DpdkPortConfig pc;
  pc.name = !c.port_name.empty() ? c.port_name : c.vdev.substr(0, c.vdev.find(','));
  return std::make_unique<net::DpdkPort>(pc);
}

}  // namespace slip::iok
