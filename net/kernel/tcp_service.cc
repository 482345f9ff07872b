// tcp_serve on Linux sockets. The listener and every connection are netpoll
// hooks: an edge runs the callbacks on the kthread that polled it. Edges of
// one fd can reach two kthreads at once, so each hook makes its calls
// exclusive without a lock: an edge that finds a call running leaves its
// events for that call's next pass. A connection that ends inside its own
// hook unhooks itself (waiting for the edges that found it busy), closes its
// fd and frees itself, unless the service is being destroyed, whose
// destructor then does it.
#include "net/kernel/tcp_service.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <new>
#include <vector>

#include "net/kernel/sockaddr.h"
#include "slip/runtime/spin_park_lock.h"

namespace slip::net::kernel {
namespace {

// Runs fn() until no event is left for it, one caller at a time: a caller that
// finds another inside leaves its events in `pending` for that one.
template <class Fn>
void exclusive(std::atomic<uint32_t>& pending, std::atomic<bool>& busy, uint32_t events, Fn fn) noexcept {
  pending.fetch_or(events, std::memory_order_seq_cst);
  while (pending.load(std::memory_order_seq_cst) != 0 && !busy.exchange(true, std::memory_order_seq_cst)) {
    if (!fn(pending.exchange(0, std::memory_order_seq_cst))) return;  // fn freed its owner
    busy.store(false, std::memory_order_seq_cst);
  }
}

class KTcpSvc;

// One served connection: the socket, the buffer its bytes are received into,
// and the callback state. Its TcpServiceConn calls come from inside its own
// hook call, so they need no lock.
class KServed final : public TcpServiceConn, public ReadyHook {
 public:
  KServed(KTcpSvc* svc, int fd, Endpoint remote, uint8_t* buf, size_t cap) noexcept
      : svc_(svc), fd_(fd), local_(local_of(fd)), remote_(remote), buf_(buf), cap_(cap) {}
  ~KServed() { delete[] buf_; }

  Result<size_t> send(const void* buf, size_t len) noexcept override;
  void shutdown() noexcept override {
    if (close_ != Close::kNone || wr_shut_) return;
    ::shutdown(fd_, SHUT_WR);
    wr_shut_ = true;
  }
  void close() noexcept override {
    if (close_ == Close::kNone) close_ = Close::kClose;
  }
  void abort() noexcept override { close_ = Close::kAbort; }
  Endpoint local() const noexcept override { return local_; }
  Endpoint remote() const noexcept override { return remote_; }

  void on_ready(uint32_t events) noexcept override {
    exclusive(pending_, busy_, events, [this](uint32_t ev) {
      if (ended_ || handle(ev)) return true;
      ended_ = true;
      return !retire();
    });
  }
  // From ~KTcpSvc, once unhooked: the end, unless it came already, then the fd.
  void stop() noexcept;
  int fd() const noexcept { return fd_; }

  KServed *prev = nullptr, *next = nullptr;  // the service's list, under its lock

 private:
  enum class Close : uint8_t { kNone, kClose, kAbort };
  bool handle(uint32_t ev) noexcept;
  void receive(uint32_t ev) noexcept;
  void offer() noexcept;
  bool settle() noexcept;
  void end(TcpCloseReason why, int err) noexcept;
  bool retire() noexcept;

  KTcpSvc* svc_;
  int fd_;
  Endpoint local_, remote_;
  uint8_t* buf_;
  size_t cap_, head_ = 0, tail_ = 0;  // unconsumed bytes: buf_[head_, tail_)
  std::atomic<uint32_t> pending_{0};
  std::atomic<bool> busy_{false};
  bool ended_ = false, eof_ = false, wr_shut_ = false, want_write_ = false;
  int err_ = 0;
  Close close_ = Close::kNone;
};

// tcp_serve's handle: the listening socket and the live connections.
class KTcpSvc final : public TcpService, public ReadyHook {
 public:
  KTcpSvc(Netpoll& np, int lfd, TcpHandlers h, size_t rcv_buf, bool nodelay)
      : np_(np), lfd_(lfd), local_(local_of(lfd)), h_(std::move(h)), rcv_buf_(rcv_buf), nodelay_(nodelay) {
    np_.hook(lfd_, this);
    np_.dispatch(lfd_, EPOLLIN);  // connections that beat the hook
  }
  ~KTcpSvc() override {
    np_.unhook(lfd_);  // no accept runs after this
    ::close(lfd_);
    std::vector<KServed*> live;
    {
      rt::SpinParkGuard g(lk_);
      stopping_ = true;
      for (KServed* c = head_; c; c = c->next) live.push_back(c);
      head_ = nullptr;
    }
    for (KServed* c : live) {
      np_.unhook(c->fd());  // waits out its callbacks
      c->stop();
      delete c;
    }
  }
  Endpoint local() const override { return local_; }

  void on_ready(uint32_t events) noexcept override {
    if (!(events & (EPOLLIN | EPOLLERR))) return;
    exclusive(pending_, busy_, events, [this](uint32_t) {
      accept_all();
      return true;
    });
  }

  Netpoll& np() noexcept { return np_; }
  const TcpHandlers& handlers() const noexcept { return h_; }
  // Takes c off the list; false while the destructor owns the list (it frees c).
  bool release(KServed* c) noexcept {
    rt::SpinParkGuard g(lk_);
    if (stopping_) return false;
    if (c->prev) c->prev->next = c->next;
    else head_ = c->next;
    if (c->next) c->next->prev = c->prev;
    return true;
  }

 private:
  void accept_all() noexcept;
  bool link(KServed* c) noexcept {
    rt::SpinParkGuard g(lk_);
    if (stopping_) return false;
    c->next = head_;
    if (head_) head_->prev = c;
    head_ = c;
    return true;
  }

  Netpoll& np_;
  int lfd_;
  Endpoint local_;
  TcpHandlers h_;
  size_t rcv_buf_;
  bool nodelay_;
  std::atomic<uint32_t> pending_{0};
  std::atomic<bool> busy_{false};
  rt::SpinParkLock lk_;
  KServed* head_ = nullptr;
  bool stopping_ = false;
};

void KTcpSvc::accept_all() noexcept {
  for (;;) {
    sockaddr_in sa{};
    socklen_t sl = sizeof sa;
    const int fd = accept4(lfd_, reinterpret_cast<sockaddr*>(&sa), &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // EAGAIN: drained until the next edge (or out of fds: the backlog holds them)
    }
    if (nodelay_) {
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    auto* buf = new (std::nothrow) uint8_t[rcv_buf_];
    auto* c = buf ? new (std::nothrow) KServed(this, fd, from_sockaddr(sa), buf, rcv_buf_) : nullptr;
    if (!c) delete[] buf;
    if (!c || !np_.watch(fd) || !link(c)) {
      set_reset_on_close(fd);
      ::close(fd);
      delete c;
      continue;
    }
    if (h_.on_accept && !h_.on_accept(*c)) {  // refused: RST, and no on_close
      release(c);
      set_reset_on_close(fd);
      ::close(fd);
      delete c;
      continue;
    }
    np_.hook(fd, c);
    np_.dispatch(fd, EPOLLIN | EPOLLOUT);  // bytes (or a close) that beat the hook
  }
}

// ---- one connection ---------------------------------------------------------

Result<size_t> KServed::send(const void* buf, size_t len) noexcept {
  if (close_ != Close::kNone || wr_shut_) return err(EPIPE);
  if (err_) return err(err_);
  for (;;) {
    const ssize_t n = ::send(fd_, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
      if (static_cast<size_t>(n) < len) want_write_ = true;
      return static_cast<size_t>(n);
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      want_write_ = true;  // EPOLLOUT follows once the socket has room
      return size_t{0};
    }
    return err(errno == EPIPE ? ECONNRESET : errno);  // our shutdown was caught above: the peer reset
  }
}

// One edge: on_writable (and what was left for it), then the socket drained
// into the buffer, then the end if there is one. False once it ended.
bool KServed::handle(uint32_t ev) noexcept {
  bool again = false;
  if (want_write_ && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && !err_ && close_ == Close::kNone) {
    want_write_ = false;
    if (svc_->handlers().on_writable) svc_->handlers().on_writable(*this);
    again = true;
  }
  if (again && tail_ > head_ && close_ == Close::kNone) offer();
  if (again || (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) receive(ev);
  return settle();
}

// recv until EAGAIN (the fd is edge-triggered), offering each batch.
void KServed::receive(uint32_t ev) noexcept {
  while (close_ == Close::kNone && !eof_ && !err_) {
    if (head_ > 0) {  // keep the unconsumed bytes at the front
      std::memmove(buf_, buf_ + head_, tail_ - head_);
      tail_ -= head_;
      head_ = 0;
    }
    if (tail_ == cap_) {
      // Full of unconsumed bytes: the peer waits (the kernel's window closes).
      // An error or hang-up that arrives meanwhile still ends the connection.
      if (ev & (EPOLLERR | EPOLLHUP)) {
        int soerr = 0;
        socklen_t l = sizeof soerr;
        getsockopt(fd_, SOL_SOCKET, SO_ERROR, &soerr, &l);
        if (soerr) err_ = soerr;
        else if (ev & EPOLLHUP) eof_ = true;
      }
      return;
    }
    const ssize_t n = recv(fd_, buf_ + tail_, cap_ - tail_, MSG_DONTWAIT);
    if (n > 0) {
      tail_ += static_cast<size_t>(n);
      offer();
    } else if (n == 0) {
      eof_ = true;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return;
    } else if (errno != EINTR) {
      err_ = errno;
    }
  }
}

void KServed::offer() noexcept {
  const TcpHandlers& h = svc_->handlers();
  while (tail_ > head_) {
    const size_t total = tail_ - head_;
    TcpRxBytes d;
    d.first = {buf_ + head_, total};
    const size_t took = std::min(h.on_data(*this, d), total);
    head_ += took;
    if (took == 0 || close_ != Close::kNone) break;
  }
  if (head_ == tail_) head_ = tail_ = 0;
}

// Reports the end if there is one; false then.
bool KServed::settle() noexcept {
  if (close_ != Close::kNone) end(TcpCloseReason::kLocal, 0);
  else if (err_) end(err_ == ECONNRESET ? TcpCloseReason::kReset : TcpCloseReason::kError, err_);
  else if (eof_ && !(want_write_ && tail_ > head_)) end(TcpCloseReason::kPeerFin, 0);  // see TcpCore::serve
  else return true;
  return false;
}

// As the slip stack's: the application's close acts first, otherwise
// on_close may still send and the close follows. The fd itself is closed by
// whoever frees the connection; SO_LINGER decides between FIN and RST.
void KServed::end(TcpCloseReason why, int err) noexcept {
  const auto close_tcp = [&] {
    if (why == TcpCloseReason::kPeerFin && close_ != Close::kAbort) head_ = tail_ = 0;  // nothing more will come
    if (close_ == Close::kAbort || tail_ > head_) set_reset_on_close(fd_);
  };
  if (why == TcpCloseReason::kLocal) close_tcp();
  if (svc_->handlers().on_close) svc_->handlers().on_close(*this, why, err);
  if (why != TcpCloseReason::kLocal) close_tcp();
}

bool KServed::retire() noexcept {
  if (!svc_->release(this)) return false;
  Netpoll& np = svc_->np();
  np.unhook_self(fd_);
  ::close(fd_);
  delete this;
  return true;
}

void KServed::stop() noexcept {
  if (!ended_) {
    ended_ = true;
    end(TcpCloseReason::kStopped, 0);
  }
  ::close(fd_);
}

}  // namespace

std::unique_ptr<TcpService> make_tcp_service(Netpoll& np, int lfd, TcpHandlers h, size_t rcv_buf, bool nodelay) {
  return std::make_unique<KTcpSvc>(np, lfd, std::move(h), rcv_buf, nodelay);
}

}  // namespace slip::net::kernel
