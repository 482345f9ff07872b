// EAL arguments for a port: a real NIC (PCI, e.g. mlx5 or ice) or a virtual
// device, plus the user's own EAL arguments. Pure string work, no DPDK, so
// option parsers that must not link DPDK (iokerneld's) can check a port
// spec early. slip/net/dpdk.h includes this header.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace slip::net {

// One port and how EAL should run for it.
struct EalPortSpec {
  std::string vdev;  // a virtual device, e.g. "net_tap0,iface=dtap0"
  // A PCI NIC: "0000:3b:00.0" or "3b:00.0", devargs after a comma
  // ("3b:00.0,rxq_cqe_comp_en=1"). Exactly one of vdev and pci.
  std::string pci;
  std::string file_prefix;         // --file-prefix unless extra has one
  std::vector<std::string> extra;  // the user's EAL arguments (split_eal_args)
  std::optional<bool> huge;        // true: hugepages; false: --no-huge; unset: hugepages when free
  // --iova-mode=va unless extra sets --iova-mode: for DMA into memory DPDK
  // did not allocate (iokerneld's memfd rx pool), whose 4 KiB pages have no
  // contiguous physical addresses. Hugepages as root without an IOMMU would
  // otherwise give IOVA-as-PA. UIO and VFIO no-IOMMU devices need PA.
  bool iova_va = false;
};

// What eal_args_for_port decided.
struct EalPlan {
  std::vector<std::string> args;  // for eal_init
  std::string port_name;          // the ethdev name the device gets ("0000:3b:00.0", "net_tap0")
  std::string memory_note;        // one line for the log: hugepages or not, and why
};

// Builds EAL arguments for spec; throws std::invalid_argument naming the
// conflict and the fix. In order:
//   --no-huge -m 256   unless hugepages are used (below); -m only when extra has none
//   -l CPU             the first CPU this process may run on, unless extra has -l, --lcores or -c
//   --file-prefix P    unless extra has one
//   --log-level=warning  always; a --log-level in extra comes later and wins
//   --iova-mode=va     when spec.iova_va, unless extra has --iova-mode
//   -a PCI[,devargs]   or --no-pci --vdev VDEV
//   extra...
// Hugepages are used when spec.huge is true, or unset and free_huge_pages > 0,
// and extra has no --no-huge. Refused: both or neither of vdev and pci, a bad
// PCI address, huge true with none free or with --no-huge, a device in extra
// (-a, -b, --vdev: devargs go after a comma in pci or vdev), --no-pci with
// pci, options that need hugepages (--in-memory, --socket-mem, --socket-limit,
// --huge-dir, --huge-unlink) without them, --proc-type other than primary,
// -h/--help (EAL would print and exit) and "--".
EalPlan eal_args_for_port(const EalPortSpec& spec, uint64_t free_huge_pages);
// The same with free_hugepages() of this host.
EalPlan eal_args_for_port(const EalPortSpec& spec);

// Splits a user's EAL argument string at whitespace (spaces, tabs, newlines).
// No shell quoting: no argument can contain a space, and a quote character is
// an error (std::invalid_argument), so "'-a x'" cannot silently become an
// argument with quotes in it.
std::vector<std::string> split_eal_args(std::string_view text);

// "3b:00.0", "0000:3B:00.0" -> "0000:3b:00.0", the name DPDK gives a PCI
// ethdev. Throws std::invalid_argument unless text is [DOMAIN:]BUS:DEV.FN in
// hex. Nothing after the address (strip devargs first).
std::string normalize_pci(std::string_view text);
// Whether text is a PCI address normalize_pci accepts.
bool is_pci_address(std::string_view text) noexcept;

// Arguments for tests and small setups on machines without hugepages:
// "--no-huge -m 256 --no-pci --no-telemetry --no-shconf -l CPU --file-prefix
// PREFIX --log-level=warning --vdev VDEV", CPU being the first one this process
// may run on. --no-huge is chosen always, so tests behave the same with or
// without hugepages; --no-shconf writes no shared config (a crashed test leaves
// only an empty /var/run/dpdk/PREFIX) and rules out secondary processes. The
// prefix must still be unique per process (include getpid()). An empty vdev
// adds no --vdev.
std::vector<std::string> eal_args_for_test(const std::string& vdev, const std::string& prefix);

// Free hugepages of every size (sysfs; /proc/meminfo HugePages_Free as a
// fallback); 0 when none or unreadable. eal_init refuses to start without
// --no-huge when this is 0, with a message saying to run tools/setup.
uint64_t free_hugepages() noexcept;

}  // namespace slip::net
