// connect_iokernel: the shared-mode Nic (SharedNic), the backend that
// slip::net::open_nic() (slip/net/select.h) picks for NicMode::kShared.
#include <memory>

#include "iokernel/client/shared_nic_impl.h"

namespace slip::iok {

std::unique_ptr<net::Nic> connect_iokernel(const SharedNicConfig& cfg) { return std::make_unique<SharedNic>(cfg); }

}  // namespace slip::iok
