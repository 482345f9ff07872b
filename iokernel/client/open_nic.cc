// The switch between direct mode (a DPDK port of this process's own) and
// shared mode (iokerneld's rings), and connect_iokernel.
#include <cstdio>
#include <memory>
#include <stdexcept>

#include "iokernel/client/shared_nic_impl.h"
#include "slip/net/dpdk.h"

namespace slip::iok {

std::unique_ptr<net::Nic> connect_iokernel(const SharedNicConfig& cfg) { return std::make_unique<SharedNic>(cfg); }

std::unique_ptr<net::Nic> open_nic(const NicChoice& c) {
  if (c.mode == NicChoice::Mode::kShared) return connect_iokernel(c.shared);
  if (c.vdev.empty() && c.pci.empty())
    throw std::invalid_argument("direct mode needs a DPDK device: --pci ADDR (a NIC) or --vdev DEV (a virtual "
                                "device); or use shared mode (--iokernel SOCKET)");
  net::EalPortSpec spec;
  spec.vdev = c.vdev;
  spec.pci = c.pci;
  spec.file_prefix = c.file_prefix;
  spec.extra = c.eal_args;
  spec.huge = c.huge;
  const net::EalPlan plan = net::eal_args_for_port(spec);
  std::fprintf(stderr, "slip: direct mode on %s: %s\n", plan.port_name.c_str(), plan.memory_note.c_str());
  net::eal_init(plan.args);
  net::DpdkPortConfig pc;
  pc.name = !c.port_name.empty() ? c.port_name : plan.port_name;
  pc.rx_queues = pc.tx_queues = c.queues;
  pc.rx_interrupts = c.rx_interrupts;
  pc.mtu = c.mtu;
  auto port = std::make_unique<net::DpdkPort>(pc);
  if (port->rx_wait_fd() >= 0)
    std::fprintf(stderr, "slip: %s: receive interrupts on: an idle kthread sleeps until a frame comes\n",
                 pc.name.c_str());
  else
    std::fprintf(stderr, "slip: %s: receive interrupts off (%s): an idle kthread polls the port every --nic-poll-us\n",
                 pc.name.c_str(), port->rx_interrupts_off_reason().c_str());
  return port;
}

}  // namespace slip::iok
