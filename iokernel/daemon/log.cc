#include "iokernel/daemon/log.h"

#include <time.h>
#include <unistd.h>

#include <string>

namespace slip::iok {

void log_line(std::string_view msg) noexcept {
  try {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    tm t{};
    gmtime_r(&ts.tv_sec, &t);
    const std::string line = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z iokerneld: {}\n", t.tm_year + 1900,
                                         t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec / 1000, msg);
    (void)!write(STDERR_FILENO, line.data(), line.size());
  } catch (...) {
    // Out of memory while logging: the event is lost, the daemon goes on.
  }
}

uint64_t mono_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace slip::iok
