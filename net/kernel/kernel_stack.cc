// Linux sockets behind the Stack API. Every socket is non-blocking and
// watched by the Netpoll; an operation tries its syscall first (the fast path
// is one syscall, as with blocking sockets) and parks its uthread on EAGAIN.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>

#include "net/kernel/io.h"
#include "net/kernel/netpoll.h"
#include "net/kernel/sockaddr.h"
#include "net/kernel/tcp_conn.h"
#include "net/kernel/tcp_service.h"
#include "slip/net/stack.h"
#include "slip/runtime/poll.h"
#include "slip/runtime/time.h"

namespace slip::net {
namespace kernel {
namespace {

class KUdp final : public UdpConn {
 public:
  KUdp(Netpoll& np, int fd) : np_(np), fd_(fd) {}
  ~KUdp() override { close(fd_); }
  Result<size_t> read_from(void* buf, size_t len, Endpoint* from, uint64_t deadline) override {
    sockaddr_in sa{};
    auto r = io(np_, fd_, Dir::read, deadline, [&] {
      socklen_t l = sizeof sa;
      return recvfrom(fd_, buf, len, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&sa), &l);
    });
    if (r && from) *from = from_sockaddr(sa);
    return r;
  }
  Result<size_t> write_to(const void* buf, size_t len, Endpoint to) override {
    const sockaddr_in sa = to_sockaddr(to);
    return io(np_, fd_, Dir::write, kNoDeadline, [&] {
      return sendto(fd_, buf, len, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
    });
  }
  Endpoint local() const override { return local_of(fd_); }

 private:
  Netpoll& np_;
  int fd_;
};

class KListener final : public TcpListener {
 public:
  KListener(Netpoll& np, int fd, bool nodelay) : np_(np), fd_(fd), nodelay_(nodelay) {}
  ~KListener() override { close(fd_); }
  Result<std::unique_ptr<TcpConn>> accept(uint64_t deadline) override {
    int cfd = -1;
    auto r = io(np_, fd_, Dir::read, deadline, [&] {
      cfd = accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      return static_cast<ssize_t>(cfd);
    });
    if (!r) return Error{r.error()};
    if (nodelay_) {
      const int one = 1;
      setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (!np_.watch(cfd)) {
      const int e = errno;
      ::close(cfd);
      return err(e);
    }
    return make_tcp_conn(np_, cfd);
  }
  Endpoint local() const override { return local_of(fd_); }

 private:
  Netpoll& np_;
  int fd_;
  bool nodelay_;
};

// udp_serve on Linux: each readable edge drains the socket with recvmmsg on
// the polling kthread. busy_/again_ make the drains exclusive without a lock:
// an edge that finds a drain running asks it for one more pass.
class KUdpSvc final : public UdpService, public ReadyHook {
 public:
  KUdpSvc(Netpoll& np, int fd, UdpHandler h) : np_(np), fd_(fd), handler_(std::move(h)) {
    for (unsigned i = 0; i < kBatch; i++) {
      iov_[i] = {bufs_[i].data(), bufs_[i].size()};
      msgs_[i].msg_hdr.msg_iov = &iov_[i];
      msgs_[i].msg_hdr.msg_iovlen = 1;
    }
    np_.hook(fd_, this);
    np_.dispatch(fd_, EPOLLIN);  // datagrams that beat the hook
  }
  ~KUdpSvc() override {
    np_.unhook(fd_);
    for (rt::Backoff backoff; busy_.load(std::memory_order_acquire);) backoff.pause();
    ::close(fd_);
  }
  Result<size_t> send(const void* buf, size_t len, Endpoint to) noexcept override {
    const sockaddr_in sa = to_sockaddr(to);
    const ssize_t n = sendto(fd_, buf, len, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
    if (n >= 0) return static_cast<size_t>(n);
    return err(errno == EAGAIN || errno == EWOULDBLOCK ? ENOBUFS : errno);
  }
  Endpoint local() const override { return local_of(fd_); }

  void on_ready(uint32_t events) noexcept override {
    if (!(events & (EPOLLIN | EPOLLERR))) return;
    again_.store(true, std::memory_order_seq_cst);
    while (again_.load(std::memory_order_seq_cst) && !busy_.exchange(true, std::memory_order_acq_rel)) {
      again_.store(false, std::memory_order_seq_cst);
      drain();
      busy_.store(false, std::memory_order_seq_cst);
    }
  }

 private:
  static constexpr unsigned kBatch = 16;
  void drain() noexcept {
    for (;;) {
      for (unsigned i = 0; i < kBatch; i++) {
        msgs_[i].msg_hdr.msg_name = &from_[i];
        msgs_[i].msg_hdr.msg_namelen = sizeof from_[i];
      }
      const int n = recvmmsg(fd_, msgs_, kBatch, MSG_DONTWAIT, nullptr);
      if (n <= 0) return;  // EAGAIN: drained until the next edge
      for (int i = 0; i < n; i++)
        handler_(bufs_[i].data(), msgs_[i].msg_len, from_sockaddr(from_[i]), *this);
    }
  }

  Netpoll& np_;
  int fd_;
  UdpHandler handler_;
  std::atomic<bool> busy_{false}, again_{false};
  std::array<std::array<uint8_t, 65536>, kBatch> bufs_;
  iovec iov_[kBatch];
  mmsghdr msgs_[kBatch] = {};
  sockaddr_in from_[kBatch];
};

class KernelStack final : public Stack {
 public:
  explicit KernelStack(const StackConfig& cfg) : cfg_(cfg) { rt::add_poller(&np_); }
  ~KernelStack() override { rt::remove_poller(&np_); }

  Result<std::unique_ptr<UdpConn>> udp_bind(uint16_t port) override {
    auto fd = bound_socket(SOCK_DGRAM, port);
    if (!fd) return Error{fd.error()};
    return std::unique_ptr<UdpConn>(std::make_unique<KUdp>(np_, *fd));
  }
  Result<std::unique_ptr<UdpService>> udp_serve(uint16_t port, UdpHandler handler) override {
    if (!handler) return err(EINVAL);
    auto fd = bound_socket(SOCK_DGRAM, port);
    if (!fd) return Error{fd.error()};
    return std::unique_ptr<UdpService>(std::make_unique<KUdpSvc>(np_, *fd, std::move(handler)));
  }
  Result<std::unique_ptr<TcpService>> tcp_serve(uint16_t port, TcpHandlers handlers) override {
    if (!handlers.on_data) return err(EINVAL);
    auto fd = bound_socket(SOCK_STREAM, port);
    if (!fd) return Error{fd.error()};
    if (listen(*fd, SOMAXCONN) != 0) {
      const int e = errno;
      close(*fd);
      return err(e);
    }
    return make_tcp_service(np_, *fd, std::move(handlers), cfg_.tcp.rcv_buf, !cfg_.tcp.nagle);
  }
  Result<std::unique_ptr<TcpListener>> tcp_listen(uint16_t port, int backlog) override {
    auto fd = bound_socket(SOCK_STREAM, port);
    if (!fd) return Error{fd.error()};
    if (listen(*fd, backlog) != 0) {
      const int e = errno;
      close(*fd);
      return err(e);
    }
    return std::unique_ptr<TcpListener>(std::make_unique<KListener>(np_, *fd, !cfg_.tcp.nagle));
  }
  Result<std::unique_ptr<TcpConn>> tcp_dial(Endpoint remote, uint64_t deadline) override {
    auto fd = new_socket(SOCK_STREAM);
    if (!fd) return Error{fd.error()};
    auto conn = make_tcp_conn(np_, *fd);  // closes fd on every error path
    const int one = 1;
    if (!cfg_.tcp.nagle) setsockopt(*fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const sockaddr_in sa = to_sockaddr(remote);
    const uint32_t seen = np_.seq(*fd, Dir::write);
    if (connect(*fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
      if (errno != EINPROGRESS) return err(errno);
      for (uint32_t s = seen;; s = np_.seq(*fd, Dir::write)) {
        int soerr = 0;
        socklen_t l = sizeof soerr;
        getsockopt(*fd, SOL_SOCKET, SO_ERROR, &soerr, &l);
        if (soerr) return err(soerr);
        sockaddr_in peer{};
        socklen_t pl = sizeof peer;
        if (getpeername(*fd, reinterpret_cast<sockaddr*>(&peer), &pl) == 0) break;  // connected
        if (deadline <= now_ns() || !np_.wait(*fd, Dir::write, s, deadline)) return err(ETIMEDOUT);
      }
    }
    return std::unique_ptr<TcpConn>(std::move(conn));
  }
  Ipv4Addr ip() const override { return cfg_.ip; }
  // The kernel keeps its own counters (nstat, /proc/net/snmp); ours stay zero.
  void counters(NetCounters&) const override {}

 private:
  Result<int> new_socket(int type) {
    const int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return err(errno);
    if (!np_.watch(fd)) {
      const int e = errno;
      close(fd);
      return err(e);
    }
    return fd;
  }
  Result<int> bound_socket(int type, uint16_t port) {
    auto fd = new_socket(type);
    if (!fd) return fd;
    const int one = 1;
    setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const sockaddr_in sa = to_sockaddr({cfg_.ip, port});
    if (bind(*fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
      const int e = errno;
      close(*fd);
      return err(e);
    }
    return fd;
  }

  StackConfig cfg_;
  Netpoll np_;
};

}  // namespace
}  // namespace kernel

std::unique_ptr<Stack> make_kernel_stack(const StackConfig& cfg) { return std::make_unique<kernel::KernelStack>(cfg); }

std::optional<StackKind> parse_stack_kind(std::string_view s) noexcept {
  if (s == "slip") return StackKind::slip;
  if (s == "kernel") return StackKind::kernel;
  return std::nullopt;
}

}  // namespace slip::net
