// The stats socket: each connection gets one JSON document describing the
// daemon, its port and every attached runtime, then EOF. iokernelctl reads it.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "iokernel/daemon/fd.h"

namespace slip::iok {

class CoreAllocator;
class PortBackend;
class RuntimeTable;

struct DaemonInfo {
  pid_t pid = 0;
  uint64_t started_ns = 0;
  std::string socket, stats_socket;
  bool idle_backoff = false;
  uint64_t stall_timeout_ns = 0;
  uint64_t attached_total = 0, detached_total = 0, refused_total = 0;
  const CoreAllocator* cores = nullptr;  // the daemon's; null: no allocator
  uint64_t core_interval_ns = 0;
};

// The document; port is nullptr with --no-port.
nlohmann::json stats_json(const DaemonInfo& d, const PortBackend* port, const RuntimeTable& t, uint64_t now_ns);

// Serves the document without ever blocking the loop: connections are
// accepted non-blocking, answered from a buffer as the peer reads, and
// dropped if they have not read it within a second.
class StatsServer {
 public:
  explicit StatsServer(int listener) noexcept : listener_(listener) {}
  // Accepts every waiting connection; render() runs once if any arrived.
  unsigned accept_all(const std::function<std::string()>& render, uint64_t now_ns);
  // Writes pending output; closes finished, failed or overdue connections.
  unsigned flush(uint64_t now_ns) noexcept;
  bool busy() const noexcept { return !clients_.empty(); }

 private:
  struct Client {
    Fd fd;
    std::string out;
    size_t off = 0;
    uint64_t deadline_ns = 0;
  };
  int listener_;  // owned by the daemon's UnixListener
  std::vector<Client> clients_;
};

}  // namespace slip::iok
