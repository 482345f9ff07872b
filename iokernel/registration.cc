#include "iokernel/registration.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace slip::iok {
namespace {

constexpr size_t kMaxFds = 1 + kMaxKthreads;

void close_all(std::vector<int>& fds) noexcept {
  for (int fd : fds) close(fd);
  fds.clear();
}

// An eventfd is an anonymous inode whose /proc link names it.
bool is_eventfd(int fd) {
  char path[64], target[64];
  std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  const ssize_t n = readlink(path, target, sizeof target - 1);
  if (n <= 0) return false;
  target[n] = '\0';
  return std::strcmp(target, "anon_inode:[eventfd]") == 0;
}

// Sends msg (len bytes) on conn with n_fds descriptors attached (SCM_RIGHTS).
ssize_t send_with_fds(int conn, const void* msg, size_t len, const int* fds, size_t n_fds) {
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
  iovec iov{const_cast<void*>(msg), len};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  if (n_fds != 0) {
    m.msg_control = ctl;
    m.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
    std::memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
  }
  return sendmsg(conn, &m, MSG_NOSIGNAL);
}

// The reply; an accepting one describes the rx pool and carries its fd.
void reply(int conn, int status, const std::string& reason, const RxPool& pool) {
  RegisterReply r{};
  r.magic = kMagic;
  r.version_major = kVersionMajor;
  r.version_minor = kVersionMinor;
  r.status = status;
  std::snprintf(r.reason, sizeof r.reason, "%s", reason.c_str());
  const bool with_pool = status == 0 && pool.fd >= 0;
  if (with_pool) {
    r.pool_size = pool.size;
    r.buf_size = pool.buf_size;
    r.n_bufs = pool.n_bufs;
  }
  (void)!send_with_fds(conn, &r, sizeof r, &pool.fd, with_pool ? 1 : 0);
}

// Whether fd is a file the kernel will not let anyone shrink (F_SEAL_SHRINK).
bool sealed_against_shrinking(int fd) {
  const int seals = fcntl(fd, F_GET_SEALS);
  return seals >= 0 && (seals & F_SEAL_SHRINK) != 0;
}

// Receives the message and up to kMaxFds descriptors. MSG_CMSG_CLOEXEC keeps
// them from leaking into children; MSG_CTRUNC (too many fds) is a refusal.
int receive(int conn, int timeout_ms, RegisterMsg* msg, size_t* len, std::vector<int>* fds, std::string* why) {
  pollfd p{conn, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) != 1) {
    *why = "no registration arrived in time";
    return ETIMEDOUT;
  }
  uint8_t buf[sizeof(RegisterMsg) + 1];  // one extra byte tells an oversized message
  bool truncated = false;
  const ssize_t n = recv_with_fds(conn, buf, sizeof buf, MSG_DONTWAIT, [&](int fd) { fds->push_back(fd); }, &truncated);
  if (n <= 0) {
    *why = n == 0 ? "connection closed before registering" : std::string("recvmsg: ") + std::strerror(errno);
    return EPROTO;
  }
  if (truncated) {
    *why = "more descriptors than 1 + 64 kthreads";
    return EPROTO;
  }
  *len = static_cast<size_t>(n);
  std::memcpy(msg, buf, std::min(sizeof *msg, *len));
  return 0;
}

int check(const RegisterMsg& msg, size_t len, std::vector<int>& fds, const std::vector<uint32_t>& taken,
          Attached* out, std::string* why) {
  if (const char* e = validate_register(&msg, len)) {
    *why = e;
    return EINVAL;
  }
  if (fds.size() != 1u + msg.n_kthreads) {
    *why = "expected the region fd and " + std::to_string(msg.n_kthreads) + " eventfds, got " +
           std::to_string(fds.size()) + " descriptors";
    return EINVAL;
  }
  if (std::find(taken.begin(), taken.end(), msg.ip) != taken.end()) {
    *why = "that IP address is already attached";
    return EADDRINUSE;
  }
  for (size_t i = 1; i < fds.size(); i++)
    if (!is_eventfd(fds[i])) {
      *why = "descriptor " + std::to_string(i) + " is not an eventfd";
      return EINVAL;
    }
  struct stat st{};
  if (fstat(fds[0], &st) != 0 || !S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != msg.region_size) {
    *why = "the region fd is not a file of region_size bytes";
    return EINVAL;
  }
  // A runtime that truncates its region would make the daemon die of SIGBUS.
  if (!sealed_against_shrinking(fds[0])) {
    *why = "the region is not sealed against shrinking: use memfd_create(MFD_ALLOW_SEALING), then "
           "fcntl(F_ADD_SEALS, F_SEAL_SHRINK)";
    return EINVAL;
  }
  void* p = mmap(nullptr, msg.region_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
  if (p == MAP_FAILED) {
    *why = std::string("mmap of the region: ") + std::strerror(errno);
    return EINVAL;
  }
  RegionLayout l;
  if (const char* e = validate_region(p, msg.region_size, &l)) {
    munmap(p, msg.region_size);
    *why = e;
    return EINVAL;
  }
  if (l.n_kthreads != msg.n_kthreads) {
    munmap(p, msg.region_size);
    *why = "the region's kthread count differs from the registration's";
    return EINVAL;
  }
  out->msg = msg;
  out->region_fd = fds[0];
  out->region = static_cast<uint8_t*>(p);
  out->layout = l;
  out->eventfds.assign(fds.begin() + 1, fds.end());
  fds.clear();  // now owned by *out
  return 0;
}

// Receives the daemon's reply and any descriptors with it (a few at most; a
// truncated control message leaves MSG_CTRUNC, reported as -2).
ssize_t receive_reply(int conn, RegisterReply* r, std::vector<int>* fds) {
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int) * 4)];
  iovec iov{r, sizeof *r};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = ctl;
  m.msg_controllen = sizeof ctl;
  const ssize_t n = recvmsg(conn, &m, MSG_CMSG_CLOEXEC);
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); n >= 0 && c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      fds->push_back(fd);
    }
  }
  return n >= 0 && (m.msg_flags & MSG_CTRUNC) ? -2 : n;
}

// Judges a reply of n bytes with its fds: the daemon's status, or EPROTO when
// the reply is garbage, from another major version, or its fds do not match
// the pool it describes. On 0, *pool owns fds[0] and fds is empty.
int check_reply(const RegisterReply& r, ssize_t n, std::vector<int>& fds, RxPool* pool, std::string* why) {
  // A v1 daemon's reply ends at pool_size: status and reason are still readable.
  if (n < static_cast<ssize_t>(offsetof(RegisterReply, pool_size)) || r.magic != kMagic) {
    *why = n == -2 ? "the IOKernel attached too many descriptors to its reply"
                   : "the IOKernel closed the connection or answered garbage";
    return EPROTO;
  }
  std::string text(r.reason, strnlen(r.reason, sizeof r.reason));
  if (r.version_major != kVersionMajor) {
    *why = "the IOKernel speaks contract v" + std::to_string(r.version_major) + ", this runtime v" +
           std::to_string(kVersionMajor) + ": " + text;
    return r.status != 0 ? r.status : EPROTO;
  }
  *why = std::move(text);
  if (r.status != 0) return r.status;
  if (n != static_cast<ssize_t>(sizeof r) || fds.size() != (r.pool_size != 0 ? 1u : 0u)) {
    *why = "the IOKernel's reply carried " + std::to_string(fds.size()) + " descriptors for a pool of " +
           std::to_string(r.pool_size) + " bytes";
    return EPROTO;
  }
  if (fds.empty()) return 0;  // no port: no rx pool
  struct stat st{};
  if (r.buf_size == 0 || r.n_bufs == 0 || uint64_t{r.buf_size} * r.n_bufs > r.pool_size ||
      fstat(fds[0], &st) != 0 || static_cast<uint64_t>(st.st_size) != r.pool_size) {
    *why = "the IOKernel's rx pool fd does not match the geometry in its reply";
    return EPROTO;
  }
  *pool = RxPool{fds[0], r.pool_size, r.buf_size, r.n_bufs};
  fds.clear();
  return 0;
}

}  // namespace

void detach(Attached& a) noexcept {
  if (a.region) munmap(a.region, a.msg.region_size);
  if (a.region_fd >= 0) close(a.region_fd);
  close_all(a.eventfds);
  a.region = nullptr;
  a.region_fd = -1;
}

int accept_registration(int conn, const std::vector<uint32_t>& taken_ips, int timeout_ms, const RxPool& pool,
                        Attached* out, std::string* reason) {
  RegisterMsg msg{};
  size_t len = 0;
  std::vector<int> fds;
  int rc = receive(conn, timeout_ms, &msg, &len, &fds, reason);
  if (rc == 0) rc = check(msg, len, fds, taken_ips, out, reason);
  close_all(fds);  // empty when *out took them
  reply(conn, rc, rc == 0 ? "attached" : *reason, pool);
  return rc;
}

int connect_control(const std::string& path) noexcept {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  const int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    const int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

int create_region(uint32_t n_kthreads, uint32_t ring_slots, uint32_t buf_size, uint32_t n_bufs, bool seal_all,
                  OwnRegion* out, std::string* reason) {
  OwnRegion r;
  r.size = region_bytes(n_kthreads, ring_slots, buf_size, n_bufs);
  const int seals = F_SEAL_SHRINK | (seal_all ? F_SEAL_GROW | F_SEAL_SEAL : 0);
  const char* step = "memfd_create";
  r.fd = memfd_create("slip-iok-region", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (r.fd >= 0 && (step = "ftruncate", ftruncate(r.fd, static_cast<off_t>(r.size))) == 0 &&
      (step = "F_ADD_SEALS", fcntl(r.fd, F_ADD_SEALS, seals)) == 0) {
    step = "mmap";
    void* p = mmap(nullptr, r.size, PROT_READ | PROT_WRITE, MAP_SHARED, r.fd, 0);
    r.base = p == MAP_FAILED ? nullptr : static_cast<uint8_t*>(p);
  }
  if (!r.base) {
    const int e = errno ? errno : ENOMEM;
    *reason = std::string(step) + ": " + std::strerror(e);
    release_region(r);
    return e;
  }
  const char* err = nullptr;
  if (!init_region(r.base, r.size, n_kthreads, ring_slots, buf_size, &r.layout, &err)) {
    *reason = err;
    release_region(r);
    return EINVAL;
  }
  *out = r;
  return 0;
}

void release_region(OwnRegion& r) noexcept {
  if (r.base) munmap(r.base, r.size);
  if (r.fd >= 0) close(r.fd);
  r = OwnRegion{};
}

int send_registration(int conn, const RegisterMsg& msg, int region_fd, const std::vector<int>& eventfds,
                      RxPool* pool, std::string* reason) {
  *pool = RxPool{};
  std::vector<int> fds{region_fd};
  fds.insert(fds.end(), eventfds.begin(), eventfds.end());
  if (fds.size() > kMaxFds) {
    *reason = "too many kthreads";
    return EINVAL;
  }
  if (send_with_fds(conn, &msg, sizeof msg, fds.data(), fds.size()) != static_cast<ssize_t>(sizeof msg)) {
    *reason = std::string("sendmsg: ") + std::strerror(errno);
    return errno ? errno : EIO;
  }
  std::vector<int> got;
  RegisterReply r{};
  const ssize_t n = receive_reply(conn, &r, &got);
  const int rc = check_reply(r, n, got, pool, reason);
  if (rc != 0) close_all(got);
  return rc;
}

std::string errno_name(int e) {
  switch (e) {
    case 0: return "OK";
    case EPERM: return "EPERM";
    case EINVAL: return "EINVAL";
    case EADDRINUSE: return "EADDRINUSE";
    case EPROTO: return "EPROTO";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EAGAIN: return "EAGAIN";
    case ECONNRESET: return "ECONNRESET";
    case EPIPE: return "EPIPE";
    case ESHUTDOWN: return "ESHUTDOWN";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    default: return std::to_string(e);
  }
}

}  // namespace slip::iok
