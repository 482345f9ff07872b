// Runtime configuration: a TOML file (see config/runtime.toml) plus command-line
// overrides. Errors name the file, line, column and key, and say how to fix them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace slip::rt {

struct Config {
  unsigned kthreads = 1;             // kthreads the runtime may use (one per core)
  unsigned guaranteed_kthreads = 1;  // always granted, even under an iokernel
  unsigned spinning_kthreads = 0;    // kthreads that busy-poll and never park
  size_t stack_size = 64 * 1024;     // usable bytes per uthread stack (a guard page is added)
  uint64_t spin_before_park_ns = 2000;  // how long an idle kthread polls before it parks
  bool pin_kthreads = true;          // pin kthread i to the i-th CPU in the affinity mask
  size_t stack_cache = 256;          // stacks cached per kthread before they go to the shared pool
  // Run no more kthreads than the container's CPU quota allows, and spin less
  // under it (slip/runtime/cpu_limit.h); false runs all of them regardless.
  bool follow_cpu_quota = true;

  // Throws ConfigError unless the values are consistent with each other and the machine.
  void validate() const;
};

// A configuration mistake; what() names where it is and how to fix it.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses the [runtime] table of a TOML document. `origin` names it in errors.
// Unknown keys are errors, so typos do not pass silently.
Config parse_config(const std::string& toml_text, const std::string& origin = "<config>");
// Reads and parses a TOML file.
Config load_config_file(const std::string& path);

// Parses a command line: `--config FILE` first, then overrides such as
// `--kthreads 2 --stack-size 128KiB`. `extra` receives arguments this parser does
// not own (after `--`). Throws ConfigError; --help prints usage and throws HelpRequested.
struct HelpRequested {
  std::string text;
};
Config parse_command_line(int argc, const char* const* argv, std::vector<std::string>* extra = nullptr);

// For a program's main(): parses argv, and on an error prints it and exits(2);
// on --help prints usage and exits(0).
Config config_from_args_or_exit(int argc, const char* const* argv, std::vector<std::string>* extra = nullptr);

// "64KiB", "1MiB", "4096" -> bytes; throws ConfigError on anything else.
size_t parse_size(const std::string& text);

}  // namespace slip::rt
