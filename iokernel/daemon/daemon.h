// iokerneld's loop: one thread, on its own core, that runs the data path
// (PortBackend::poll) every turn, core allocation every few microseconds
// (CoreAllocator) and the control plane every few tens of microseconds:
// registrations, runtime deaths, the stall check and stats.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "iokernel/daemon/control.h"
#include "iokernel/daemon/cores.h"
#include "iokernel/daemon/options.h"
#include "iokernel/daemon/port.h"
#include "iokernel/daemon/runtimes.h"
#include "iokernel/daemon/stats.h"

namespace slip::iok {

class Daemon {
 public:
  // Creates both sockets (throws with the cause and fix); port may be null
  // (--no-port).
  Daemon(const DaemonSettings& s, std::unique_ptr<PortBackend> port);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Runs until stop becomes true, then detaches every runtime, closes the
  // port and removes the sockets.
  void run(const std::atomic<bool>& stop);

 private:
  // A connection that has not registered yet. refuse_status != 0: the peer
  // is not allowed; it is answered with that once its message (or the
  // deadline) arrives.
  struct Pending {
    uint64_t id = 0;
    Fd conn;
    PeerCred cred;
    uint64_t deadline_ns = 0;
    int refuse_status = 0;
    std::string refuse_reason;
  };

  unsigned control_tick(uint64_t now);
  void accept_connections(uint64_t now);
  void on_pending(uint64_t id, uint64_t now);
  void finish_handshake(Pending& p, uint64_t now);
  void on_runtime(uint64_t id, uint32_t events);
  void expire_pending(uint64_t now);
  void drop_runtime(uint64_t id, const std::string& why);
  void idle(unsigned work) noexcept;
  void shutdown();
  bool watch(int fd, uint32_t events, uint64_t tag) noexcept;
  std::string render_stats(uint64_t now) const;

  DaemonSettings s_;
  PeerPolicy policy_;
  std::unique_ptr<PortBackend> port_;
  UnixListener ctl_, stats_sock_;
  StatsServer stats_;
  Fd epoll_;
  RuntimeTable runtimes_;
  CoreAllocator cores_;
  std::vector<Pending> pending_;
  DaemonInfo info_;
  uint64_t next_pending_id_ = 1;
  uint64_t next_control_ns_ = 0, next_liveness_ns_ = 0, next_cores_ns_ = 0, backoff_ns_ = 0;
  bool accept_failing_ = false;
};

}  // namespace slip::iok
