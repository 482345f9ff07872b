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
  std::string vdev;                              // DPDK device, e.g. net_tap0,iface=dtap0
  std::string port_name;                         // ethdev name; empty: the vdev's name
  std::string file_prefix = "slip-iokerneld";    // DPDK --file-prefix
  bool no_port = false;                          // control plane only (tests)
  bool idle_backoff = false;                     // sleep up to 50 us when idle instead of spinning
  double stall_timeout_s = 2.0;                  // rx ring unconsumed this long: detach
  unsigned cores = 0;                            // cores runtimes share; 0: CPUs allowed less one
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
  uint64_t stall_timeout_ns = 2'000'000'000;
  unsigned cores = 1;
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

// Checks o and resolves names and modes; throws OptionsError naming the fix.
DaemonSettings resolve(const DaemonOptions& o);

// Parses argv (and --config). Returns -1 to go on with *out filled, or the
// exit code for main (0 after --help, 2 for a bad flag or config file).
int parse_options(int argc, const char* const* argv, DaemonSettings* out);

// "0660" -> 0660; throws OptionsError unless it is octal and at most 0777.
mode_t parse_mode(const std::string& text);

}  // namespace slip::iok
