// The IOKernel's control socket: one runtime registers per connection by
// sending a RegisterMsg with its region fd and one eventfd per kthread
// (SCM_RIGHTS). Everything is checked before it is kept; on any refusal every
// received fd is closed and the runtime gets an errno and a reason. An
// accepted runtime gets the daemon's rx pool fd (read-only) with the reply.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "slip/iok/ring.h"

namespace slip::iok {

// "EPERM", "EINVAL", ...: the names registration statuses are logged and tested by.
std::string errno_name(int e);

// One recvmsg of up to len bytes into buf; every descriptor that came with
// it (SCM_RIGHTS, up to 1 + kMaxKthreads) goes to on_fd, so none leaks
// whatever the caller then decides. Returns recvmsg's result; *truncated
// (if given) says descriptors were cut off.
template <class OnFd>
ssize_t recv_with_fds(int conn, void* buf, size_t len, int flags, OnFd on_fd, bool* truncated = nullptr) noexcept {
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int) * (1 + kMaxKthreads))];
  iovec iov{buf, len};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = ctl;
  m.msg_controllen = sizeof ctl;
  const ssize_t n = recvmsg(conn, &m, flags | MSG_CMSG_CLOEXEC);
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); n >= 0 && c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; i++) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      on_fd(fd);
    }
  }
  if (truncated) *truncated = n >= 0 && (m.msg_flags & MSG_CTRUNC);
  return n;
}

// What the daemon keeps of an accepted runtime.
struct Attached {
  RegisterMsg msg{};
  int region_fd = -1;
  uint8_t* region = nullptr;  // mapped, region_size bytes
  RegionLayout layout;
  std::vector<int> eventfds;  // one per kthread
};

// The daemon's rx pool as a reply describes it (RegisterReply): a read-only,
// sealed memfd of size bytes holding n_bufs buffers of buf_size. fd -1 (and
// zeroes): no pool, the daemon has no port and the runtime gets no rx.
struct RxPool {
  int fd = -1;
  uint64_t size = 0;
  uint32_t buf_size = 0, n_bufs = 0;
};

// Releases what an Attached holds (unmap, close); safe on a moved-from one.
void detach(Attached& a) noexcept;

// Reads one registration from conn (a connected Unix stream socket), waiting
// at most timeout_ms for it. On success fills *out and returns 0; otherwise
// returns an errno value with *reason set, and keeps no fd. taken_ips are
// the addresses already attached. Sends the RegisterReply either way; an
// accepting one carries pool's geometry and (when pool.fd >= 0) a copy of
// pool.fd, which the caller keeps.
int accept_registration(int conn, const std::vector<uint32_t>& taken_ips, int timeout_ms, const RxPool& pool,
                        Attached* out, std::string* reason);

// Runtime side: a close-on-exec SOCK_SEQPACKET socket connected to the
// daemon's control socket at path, or -1 with errno set.
int connect_control(const std::string& path) noexcept;

// Runtime side: a region of its own as registration wants it, a memfd of
// region_bytes() bytes, sealed against shrinking (and, when seal_all, growing
// and further sealing), mapped read-write and laid out by init_region.
struct OwnRegion {
  int fd = -1;
  uint8_t* base = nullptr;
  uint64_t size = 0;
  RegionLayout layout;
};
// 0, or an errno value with *reason set and nothing kept.
int create_region(uint32_t n_kthreads, uint32_t ring_slots, uint32_t buf_size, uint32_t n_bufs, bool seal_all,
                  OwnRegion* out, std::string* reason);
// Unmaps and closes what create_region made; safe on an empty one.
void release_region(OwnRegion& r) noexcept;

// Runtime side: sends msg with the fds on conn and waits for the reply. On
// success *pool is the daemon's rx pool (the caller closes pool->fd; -1 when
// the daemon has no port); a reply whose fds do not match its geometry is
// refused (EPROTO) and every fd it carried closed.
int send_registration(int conn, const RegisterMsg& msg, int region_fd, const std::vector<int>& eventfds,
                      RxPool* pool, std::string* reason);

}  // namespace slip::iok
