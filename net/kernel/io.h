// The kernel backend's blocking-call shape (not API): try the syscall, park
// on the fd's readiness when it says EAGAIN.
#pragma once

#include <sys/types.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

#include "net/kernel/netpoll.h"
#include "slip/common/result.h"
#include "slip/runtime/time.h"

namespace slip::net::kernel {

// Retries op (a syscall returning -1/errno) until it stops saying EAGAIN,
// parking on fd's readiness in between; ETIMEDOUT past the deadline.
template <class Op>
Result<size_t> io(Netpoll& np, int fd, Dir d, uint64_t deadline, Op op) {
  for (;;) {
    const uint32_t seen = np.seq(fd, d);
    const ssize_t n = op();
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return err(errno == EPIPE ? ECONNRESET : errno);
    if (deadline <= now_ns() || !np.wait(fd, d, seen, deadline)) return err(ETIMEDOUT);
  }
}

}  // namespace slip::net::kernel
