// The DPDK port behind PortBackend: slip::net::DpdkPort, opened after
// eal_init, its rx queue receiving into a ShmPktPool that registration
// replies hand to runtimes (read-only), served by a DataPath (datapath.h).
// Separate from the control plane so that builds and tests without a NIC
// never touch DPDK.
#pragma once

#include <memory>
#include <string>

#include "iokernel/daemon/port.h"

namespace slip::iok {

// Opens and starts the ethdev port called name (EAL must be up). Throws with
// the cause and a fix.
std::unique_ptr<PortBackend> make_dpdk_backend(const std::string& name);

}  // namespace slip::iok
