// iokerneld: the Slipstream IOKernel daemon. Owns the NIC, accepts runtime
// registrations on its control socket, watches them, and answers stats.
// See docs/iokernel.md, "The daemon".
#include <signal.h>

#include <atomic>
#include <exception>
#include <memory>
#include <string>

#include "iokernel/daemon/daemon.h"
#include "iokernel/daemon/dpdk_backend.h"
#include "iokernel/daemon/log.h"
#include "iokernel/daemon/options.h"

namespace {

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "g_stop is set from a signal handler");

void install_signals() {
  struct sigaction sa{};
  sa.sa_handler = [](int) { g_stop.store(true, std::memory_order_relaxed); };
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace slip::iok;
  DaemonSettings s;
  if (const int rc = parse_options(argc, argv, &s); rc >= 0) return rc;
  install_signals();
  try {
    std::unique_ptr<PortBackend> port;
    if (s.opts.no_port) {
      log_event("WARNING: --no-port: NO NIC IS ATTACHED. Control plane only, for tests: runtimes can register "
                "but get no rx pool and will never receive a frame.");
    } else {
      port = start_dpdk_port(s);
      const RxPool pool = port->rx_pool();
      log_event("port {} started, mac {}; rx pool {} buffers of {} bytes ({} KiB), shared read-only", port->name(),
                port->mac(), pool.n_bufs, pool.buf_size, pool.size >> 10);
    }
    Daemon d(s, std::move(port));
    d.run(g_stop);
  } catch (const std::exception& e) {
    log_event("error: {}", e.what());
    return 1;
  }
  return 0;
}
