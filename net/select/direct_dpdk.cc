// Direct mode: EAL and a DPDK port of this process's own (IX style).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <stdexcept>

#include "net/select/opened.h"
#include "slip/net/dpdk.h"

namespace slip::net {
namespace {

// The port, and its per-queue counts.
class DirectNic final : public OwnedNic {
 public:
  explicit DirectNic(std::unique_ptr<DpdkPort> port) : OwnedNic(std::move(port)) {}
  NicQueueStats queue_stats() const override {
    const auto& port = static_cast<const DpdkPort&>(*nic_);
    const DpdkStats s = port.stats();
    const size_t n = std::min<size_t>(port.caps().rx_queues, DpdkStats::kQueueStats);
    NicQueueStats q;
    q.rx_frames.assign(s.rx_queue_packets.begin(), s.rx_queue_packets.begin() + n);
    q.tx_frames.assign(s.tx_queue_packets.begin(), s.tx_queue_packets.begin() + n);
    return q;
  }
};

}  // namespace

std::string_view direct_mode_unavailable() noexcept { return {}; }

std::unique_ptr<OpenedNic> open_direct(const NicChoice& c) {
  if (c.vdev.empty() && c.pci.empty())
    throw std::invalid_argument("direct mode needs a DPDK device: --pci ADDR (a NIC) or --vdev DEV (a virtual "
                                "device); or use shared mode (--iokernel SOCKET)");
  EalPortSpec spec;
  spec.vdev = c.vdev;
  spec.pci = c.pci;
  spec.file_prefix = c.file_prefix;
  spec.extra = c.eal_args;
  spec.huge = c.huge;
  const EalPlan plan = eal_args_for_port(spec);
  std::fprintf(stderr, "slip: direct mode on %s: %s\n", plan.port_name.c_str(), plan.memory_note.c_str());
  eal_init(plan.args);
  DpdkPortConfig pc;
  pc.name = !c.port_name.empty() ? c.port_name : plan.port_name;
  pc.rx_queues = pc.tx_queues = c.queues;
  pc.rx_interrupts = c.rx_interrupts;
  pc.mtu = c.mtu;
  auto port = std::make_unique<DpdkPort>(pc);
  if (port->rx_wait_fd() >= 0)
    std::fprintf(stderr, "slip: %s: receive interrupts on: an idle kthread sleeps until a frame comes\n",
                 pc.name.c_str());
  else
    std::fprintf(stderr, "slip: %s: receive interrupts off (%s): an idle kthread polls the port every --nic-poll-us\n",
                 pc.name.c_str(), port->rx_interrupts_off_reason().c_str());
  return std::make_unique<DirectNic>(std::move(port));
}

}  // namespace slip::net
