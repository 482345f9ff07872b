#include "stack_options.h"

#include "slip/common/cli11.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "slip/net/eal_args.h"
#include "slip/net/select.h"
#include "slip/runtime/cpu_limit.h"
#include "slip/runtime/runtime.h"

namespace slip::app {
namespace {

std::string port_name_of(const StackOptions& o) {
  if (!o.port_name.empty()) return o.port_name;
  // "net_memif0,role=server,..." names the ethdev "net_memif0"; "3b:00.0,k=v" is "0000:3b:00.0".
  if (!o.pci.empty()) {
    const std::string addr = o.pci.substr(0, o.pci.find(','));
    return net::is_pci_address(addr) ? net::normalize_pci(addr) : addr;
  }
  return o.vdev.substr(0, o.vdev.find(','));
}

int fail(std::string_view prog, const std::string& what, int code) {
  std::fprintf(stderr, "%.*s: error: %s\n", static_cast<int>(prog.size()), prog.data(), what.c_str());
  std::fflush(stderr);
  return code;
}

}  // namespace

void add_stack_options(CLI::App& app, StackOptions& o, bool offer_spin) {
  app.add_option("--stack", o.stack, "kernel (Linux sockets) or slip (Slipstream's stack on a DPDK port or iokerneld)")
      ->check(CLI::IsMember({"slip", "kernel"}))
      ->capture_default_str();
  app.add_option("--vdev", o.vdev,
                 "slip, direct mode: the DPDK device of this process's own port, e.g. net_tap0,iface=slip0 or "
                 "net_memif0,role=server,socket=/tmp/s.sock");
  app.add_option("--pci", o.pci,
                 "slip, direct mode: a PCI NIC of this process's own, e.g. 0000:3b:00.0 or 3b:00.0, devargs after a "
                 "comma (mlx5: keep the kernel driver; ice, ixgbe, ...: bind it to vfio-pci)");
  app.add_option("--eal-args", o.eal_args,
                 "slip, direct mode: more EAL arguments, split at whitespace (no quoting), e.g. \"-l 2 -n 4\"; "
                 "hugepages are used when free unless this has --no-huge");
  app.add_option("--port-name", o.port_name,
                 "slip: ethdev name of the port (default: the --vdev name before the first comma, or the PCI address)");
  app.add_option("--iokernel", o.iokernel,
                 "slip, shared mode: iokerneld's control socket (e.g. /run/slip/iokernel.sock) instead of --vdev or "
                 "--pci");
  app.add_option("--ip", o.ip, "this host's IPv4 address (required for slip; kernel binds to any address without it)");
  app.add_option("--prefix-len", o.prefix_len, "subnet prefix length")->check(CLI::Range(0, 32))->capture_default_str();
  app.add_option("--file-prefix", o.file_prefix, "slip, direct mode: DPDK --file-prefix (unique per process)");
  app.add_option("--kthreads", o.kthreads, "runtime kthreads")->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--queues", o.queues,
                 "slip, direct mode: receive and transmit queues of the port; with several, a port with RSS (or "
                 "net_tap, whose kernel side hashes flows over its queues) spreads flows over them, and kthread i "
                 "polls queue i and keeps its flows' state, so one flow stays on one core (use --kthreads N too)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--mtu", o.mtu,
                 "slip, direct mode: the port's MTU, e.g. 9000 for jumbo frames (default: the PMD's, 1500 on most); "
                 "TCP announces it less 40 as its MSS")
      ->check(CLI::Range(576, 65000));
  app.add_flag_function(
      "--pin-kthreads,!--no-pin-kthreads", [&o](int64_t n) { o.pin = n > 0 ? 1 : 0; },
      "pin kthread i to the i-th CPU this process may use (default: on the slip stack only; on Linux sockets the "
      "kernel places them, as every process's kthread 0 would otherwise share the first CPU)");
  app.add_option("--nic-poll-us", o.nic_poll_us,
                 "slip, direct mode, a port without receive interrupts (memif, af_xdp, ring): how often a parked "
                 "kthread looks at it, in microseconds; lower answers an idle service sooner and costs more "
                 "wake-ups")
      ->check(CLI::Range(1.0, 1e6))
      ->capture_default_str();
  app.add_flag("!--no-rx-interrupts", o.rx_interrupts,
               "slip, direct mode: poll the port every --nic-poll-us even where it has receive interrupts "
               "(net_tap, NICs under vfio-pci), instead of sleeping until a frame comes");
  app.add_flag("!--ignore-cpu-quota", o.follow_cpu_quota,
               "run all --kthreads even where the container's CPU quota (cgroup cpu.max or cpu.cfs_quota_us) allows "
               "fewer; by default the extra kthreads stay parked, since they would only get the process throttled");
  if (offer_spin)
    app.add_flag("--spin", o.spin,
                 "kthreads busy-poll and never park (as Shenango's and IX's do); without it an idle kthread "
                 "parks after 2 us and waking it costs a VM wake-up");
}

std::string describe(const StackOptions& o) {
  if (o.stack == "kernel") return "kernel";
  return o.iokernel.empty() ? "slip:" + port_name_of(o) : "slip:iokerneld:" + o.iokernel;
}

int run_on_stack(std::string_view prog, const StackOptions& o, net::StackConfig sc,
                 const std::function<void(net::Stack&)>& fn) {
  const bool kernel = o.stack == "kernel";
  if (!kernel && !o.vdev.empty() + !o.pci.empty() + !o.iokernel.empty() != 1)
    return fail(prog,
                "--stack slip needs exactly one of --vdev (direct mode, a virtual device), --pci (direct mode, a NIC) "
                "and --iokernel (shared mode)",
                2);
  if (!kernel && o.iokernel.empty() && !net::direct_mode_unavailable().empty())
    return fail(prog, std::string(net::direct_mode_unavailable()), 2);
  if (o.queues > 1 && (kernel || !o.iokernel.empty()))
    return fail(prog, "--queues is for direct mode (--stack slip with --vdev or --pci): iokerneld steers flows itself",
                2);
  if (o.mtu && (kernel || !o.iokernel.empty()))
    return fail(prog, "--mtu is for direct mode (--stack slip with --vdev or --pci); on Linux sockets set the "
                      "interface's MTU (ip link set DEV mtu N), and iokerneld's port is the daemon's",
                2);
  if (!o.eal_args.empty() && (kernel || !o.iokernel.empty()))
    return fail(prog, "--eal-args is for direct mode (--stack slip with --vdev or --pci): no DPDK starts here", 2);
  std::vector<std::string> eal_args;
  try {
    eal_args = net::split_eal_args(o.eal_args);
  } catch (const std::exception& e) {
    return fail(prog, e.what(), 2);
  }
  if (!kernel && o.ip.empty()) return fail(prog, "--stack slip needs --ip (this host's address on the port)", 2);
  if (!o.ip.empty()) {
    auto ip = net::Ipv4Addr::parse(o.ip);
    if (!ip) return fail(prog, "--ip " + o.ip + " is not an IPv4 address", 2);
    sc.ip = *ip;  // the kernel stack binds to it; unset, it binds to any address
  }
  sc.prefix_len = static_cast<uint8_t>(o.prefix_len);
  sc.max_park_ns = static_cast<uint64_t>(std::llround(o.nic_poll_us * 1000.0));
  rt::Config rc;
  rc.kthreads = o.kthreads;
  if (o.spin) rc.spinning_kthreads = o.kthreads;
  // Pinned, every Slipstream process on Linux sockets put its kthread 0 on the
  // first allowed CPU: slip-gateway queued behind its workers and load
  // generator on one core while nginx had the other (docs/benchmarks.md).
  rc.pin_kthreads = o.pin >= 0 ? o.pin == 1 : !kernel;
  rc.follow_cpu_quota = o.follow_cpu_quota;
  std::string error;
  auto guarded = [&](auto&& body) {
    try {
      body();
    } catch (const std::exception& e) {
      if (error.empty()) error = e.what();
    }
  };
  net::NicChoice nc;
  nc.mode = kernel ? net::NicMode::kKernel : o.iokernel.empty() ? net::NicMode::kDirect : net::NicMode::kShared;
  nc.vdev = o.vdev;
  nc.pci = o.pci;
  nc.queues = static_cast<uint16_t>(o.queues);
  nc.mtu = static_cast<uint16_t>(o.mtu);
  nc.rx_interrupts = o.rx_interrupts;
  nc.eal_args = std::move(eal_args);
  nc.port_name = port_name_of(o);
  nc.file_prefix = !o.file_prefix.empty() ? o.file_prefix : std::string(prog) + "-" + std::to_string(::getpid());
  nc.shared.socket = o.iokernel;
  nc.shared.ip = sc.ip;
  nc.shared.kthreads = o.kthreads;
  // iokerneld grants no more cores than the quota lets the runtime use.
  nc.shared.max_cores = static_cast<uint16_t>(rt::kthreads_allowed(rt::read_cpu_limit(), rc));
  guarded([&] {
    auto nic = net::open_nic(nc);
    rt::run(rc, [&] { guarded([&] { fn(*nic->make_stack(sc)); }); });
  });
  return error.empty() ? 0 : fail(prog, error, 1);
}

}  // namespace slip::app
