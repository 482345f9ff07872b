// iokerneld's event log: one line per event on stderr, with a UTC timestamp,
// written with a single write(2) so lines from a crash or a signal never mix.
// Control plane only: nothing on the packet path logs.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string_view>
#include <utility>

namespace slip::iok {

// Writes "2026-11-29T08:10:00.123456Z iokerneld: <msg>\n" to stderr.
void log_line(std::string_view msg) noexcept;

template <typename... Args>
void log_event(fmt::format_string<Args...> f, Args&&... args) {
  log_line(fmt::format(f, std::forward<Args>(args)...));
}

// CLOCK_MONOTONIC in nanoseconds: deadlines, uptime and the stall clock.
uint64_t mono_ns() noexcept;

}  // namespace slip::iok
