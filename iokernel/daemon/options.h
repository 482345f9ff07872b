// iokerneld's settings: defaults, then the [iokernel] table of an optional
// TOML file (toml++), then the command line (CLI11), each overriding the last.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace slip::iok {

struct DaemonOptions {
  std::string config;                            // TOML file read before the flags
  std::string socket = "/run/slip/iokernel.sock";  // control socket (SOCK_SEQPACKET)
  std::string socket_mode = "0660";              // octal, for both sockets
  std::string socket_group;                      // name or number; empty: the daemon's group
  std::vector<std::string> allow_uid, allow_gid;  // names or numbers; root is always allowed
  std::string stats_socket;                      // empty: socket + ".stats"
  std::string vdev;                              // DPDK virtual device, e.g. net_tap0,iface=dtap0
  std::string pci;                               // PCI NIC, e.g. 0000:3b:00.0 (devargs after a comma)
  std::string port_name;                         // ethdev name; empty: the vdev's name or the PCI address
  std::string file_prefix = "slip-iokerneld";    // DPDK --file-prefix
  std::string eal_args;                          // more EAL arguments, split at whitespace (no quoting)
  std::string hugepages = "auto";                // auto (when free), on or off
  bool no_port = false;                          // control plane only (tests)
  bool idle_backoff = false;                     // sleep up to 50 us when idle instead of spinning
  double stall_timeout_s = 2.0;                  // rx ring unconsumed this long: detach
  unsigned cores = 0;                            // cores runtimes share; 0: CPUs allowed less one
  std::string cpus;                              // "2-7,9": CPUs grants pin kthreads to; empty: no pinning
  double core_interval_us = 5;                   // between core allocation passes
};

// The options resolved to what the daemon uses.
struct DaemonSettings {
  DaemonOptions opts;
  mode_t socket_mode = 0660;
  gid_t socket_gid = static_cast<gid_t>(-1);  // -1: leave the group alone
  std::vector<uid_t> allow_uids;
  std::vector<gid_t> allow_gids;  // includes socket_gid when set
  std::string stats_socket;
  std::string port_name;
  std::vector<std::string> eal_args;  // for eal_init; empty with --no-port
  std::string eal_memory_note;        // hugepages or not, and why: the daemon logs it
  uint64_t stall_timeout_ns = 2'000'000'000;
  unsigned cores = 1;
  std::vector<int> cpus;  // --cpus, expanded; empty: grants name no CPU
  uint64_t core_interval_ns = 5'000;
};

struct OptionsError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Applies the [iokernel] table of toml_text (origin names it in errors) to o.
// Throws OptionsError with file:line:column for syntax errors, unknown keys
// and values of the wrong type or range.
void apply_config_text(const std::string& toml_text, const std::string& origin, DaemonOptions& o);
void apply_config_file(const std::string& path, DaemonOptions& o);

// Checks o and resolves names, modes and the EAL arguments (so a bad port
// spec fails before anything starts); throws OptionsError naming the fix.
DaemonSettings resolve(const DaemonOptions& o);

// Parses argv (and --config). Returns -1 to go on with *out filled, or the
// exit code for main (0 after --help, 2 for a bad flag or config file).
int parse_options(int argc, const char* const* argv, DaemonSettings* out);

// "2-4,7" -> {2, 3, 4, 7}; throws OptionsError for bad syntax, a reversed
// range, a repeated CPU, or one past CPU_SETSIZE.
std::vector<int> parse_cpu_list(const std::string& text);

// "0660" -> 0660; throws OptionsError unless it is octal and at most 0777.
mode_t parse_mode(const std::string& text);

}  // namespace slip::iok
