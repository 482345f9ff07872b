// libFuzzer target for the config parsers: TOML text, sizes, and command lines.
// Every input must end in a parsed Config or a ConfigError, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "slip/runtime/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    slip::rt::parse_config(text, "fuzz.toml").validate();
  } catch (const slip::rt::ConfigError&) {
  }
  try {
    slip::rt::parse_size(text);
  } catch (const slip::rt::ConfigError&) {
  }
  // NUL-separated words as a command line.
  std::vector<std::string> words{"fuzz"};
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); i++)
    if (i == text.size() || text[i] == '\0') {
      words.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  if (words.size() > 64) return 0;
  std::vector<const char*> argv;
  for (const std::string& w : words) {
    if (w.rfind("--config", 0) == 0) return 0;  // no file reads from fuzz input
    argv.push_back(w.c_str());
  }
  try {
    std::vector<std::string> extra;
    slip::rt::parse_command_line(static_cast<int>(argv.size()), argv.data(), &extra);
  } catch (const slip::rt::ConfigError&) {
  } catch (const slip::rt::HelpRequested&) {
  }
  return 0;
}
