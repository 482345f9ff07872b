// Reading the kernel's text files (/proc, cgroupfs) without trusting them:
// every parser answers nullopt on text it does not expect, never throws, so
// a container with odd files leaves the runtime with "unknown", not a crash.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace slip::rt::detail {

// The whole file; nullopt when it cannot be opened or read.
std::optional<std::string> read_text_file(const std::string& path);
std::string_view trim(std::string_view s) noexcept;
// The lines of s, without their newlines.
std::vector<std::string_view> lines(std::string_view s);
// The pieces of s between runs of spaces, tabs and newlines.
std::vector<std::string_view> words(std::string_view s);
// A decimal number that is the whole (trimmed) text.
std::optional<uint64_t> parse_u64(std::string_view s) noexcept;
// The number after `key` on the line that starts with it, in "key value"
// (cpu.stat) or "key:\tvalue" (/proc/PID/status) form.
std::optional<uint64_t> keyed_value(std::string_view text, std::string_view key) noexcept;
// At most 40 characters of s for an error message, non-printing ones as '?'.
std::string quote(std::string_view s);

}  // namespace slip::rt::detail
