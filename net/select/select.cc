// open_nic(): the kernel stack, iokerneld's shared-mode NIC, or (open_direct)
// a DPDK port of this process's own.
#include <memory>

#include "net/select/opened.h"
#include "slip/iok/shared_nic.h"
#include "slip/net/select.h"

namespace slip::net {
namespace {

// Linux sockets: nothing is opened before run().
class KernelNic final : public OpenedNic {
 public:
  std::unique_ptr<Stack> make_stack(const StackConfig& cfg) override { return make_kernel_stack(cfg); }
  Nic* nic() noexcept override { return nullptr; }
};

}  // namespace

std::unique_ptr<OpenedNic> open_nic(const NicChoice& c) {
  switch (c.mode) {
    case NicMode::kKernel: return std::make_unique<KernelNic>();
    case NicMode::kShared: return std::make_unique<OwnedNic>(iok::connect_iokernel(c.shared));
    case NicMode::kDirect: break;
  }
  return open_direct(c);
}

}  // namespace slip::net
