// The flags every Slipstream app and tool shares to pick its network stack,
// and the start-up they lead to: Linux sockets (--stack kernel), Slipstream's
// stack on a DPDK port of the process's own (--stack slip --vdev ... or --pci
// ...: direct mode), or on iokerneld's rings (--stack slip --iokernel SOCKET: shared
// mode). One place, so every binary offers the same choices with the same
// words and the same errors.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "slip/net/stack.h"
#include "slip/runtime/config.h"

namespace CLI {
class App;
}

namespace slip::app {

struct StackOptions {
  explicit StackOptions(std::string default_stack = "kernel") : stack(std::move(default_stack)) {}
  std::string stack;  // "slip" or "kernel"
  std::string vdev, pci, port_name, ip, file_prefix, iokernel;
  std::string eal_args;  // direct mode: more EAL arguments, split at whitespace (no quoting)
  int prefix_len = 24;
  unsigned kthreads = 1;
  unsigned queues = 1;  // slip, direct mode: the port's queues
  unsigned mtu = 0;     // slip, direct mode: the port's MTU; 0 keeps the PMD's
  bool spin = false;
  double nic_poll_us = 100;  // slip, a port without receive interrupts: how often a parked kthread polls it
  bool rx_interrupts = true;  // slip, direct mode: sleep on the port's receive interrupts where it has them
  // --pin-kthreads 1, --no-pin-kthreads 0; -1: pinned on the slip stack only.
  int pin = -1;
  bool follow_cpu_quota = true;  // --ignore-cpu-quota: run every kthread under a container's CPU limit
};

// Adds --stack, --vdev, --pci, --eal-args, --port-name, --iokernel, --ip,
// --prefix-len, --file-prefix, --kthreads, --queues, --mtu, --[no-]pin-kthreads, --nic-poll-us,
// --ignore-cpu-quota, and --spin when offer_spin.
void add_stack_options(CLI::App& app, StackOptions& o, bool offer_spin = false);

// Checks the flags together, starts the runtime (kthreads, spin) with the
// chosen stack (net::open_nic) and runs fn on it. Errors are printed as
// "<prog>: error: ...": returns 2 for a bad combination of flags (and for
// --vdev or --pci in a build without DPDK), 1 when start-up fails or fn
// throws, 0 otherwise. `sc` carries what the app sets beyond the address.
int run_on_stack(std::string_view prog, const StackOptions& o, net::StackConfig sc,
                 const std::function<void(net::Stack&)>& fn);

// Where the stack runs, for ready lines (no spaces): "kernel", "slip:net_tap0", "slip:0000:3b:00.0",
// "slip:iokerneld:/run/...".
std::string describe(const StackOptions& o);

}  // namespace slip::app
