// The DPDK port behind PortBackend: slip::net::DpdkPort, opened after
// eal_init, its rx queue receiving into a ShmPktPool that registration
// replies hand to runtimes (read-only), served by a DataPath (datapath.h).
// Separate from the control plane so that builds and tests without a NIC
// never touch DPDK. A build without DPDK has dpdk_backend_none.cc instead.
#pragma once

#include <memory>

#include "iokernel/daemon/options.h"
#include "iokernel/daemon/port.h"

namespace slip::iok {

// Starts EAL with s.eal_args (logging them and s.eal_memory_note), then opens
// and starts the ethdev port s.port_name. Throws with the cause and a fix; in
// a build without DPDK always, saying so (only --no-port runs there).
std::unique_ptr<PortBackend> start_dpdk_port(const DaemonSettings& s);

}  // namespace slip::iok
