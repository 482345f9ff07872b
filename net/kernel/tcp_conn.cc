// TcpConn over a Linux socket. Reads go through a per-connection buffer:
//  - read_inplace needs one: Linux has no in-place receive. One recv fills
//    it, and what fn leaves stays there for the next read of any kind
//    (peeking and then receiving what was taken cost two syscalls a read).
//  - A recv that comes back short drained the socket. The next read then
//    waits for the socket's next readable edge instead of asking again
//    (the epoll is edge-triggered, so an edge always follows new bytes),
//    unless an edge already said the peer closed: its FIN may be queued
//    behind the bytes just read. nginx does the same (with its pending
//    EOF). A stream relay's every other recv said EAGAIN.
#include "net/kernel/tcp_conn.h"

#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <string_view>
#include <utility>

#include "net/kernel/io.h"
#include "net/kernel/sockaddr.h"

namespace slip::net::kernel {
namespace {

// Linux's TCP_INFO and queue sizes in TcpInfo's terms.
TcpInfo info_of(int fd) {
  TcpInfo i;
  tcp_info t{};
  socklen_t len = sizeof t;
  if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &t, &len) != 0) return i;
  static constexpr std::string_view kStates[] = {"UNKNOWN",    "ESTABLISHED", "SYN_SENT",   "SYN_RCVD",
                                                 "FIN_WAIT_1", "FIN_WAIT_2",  "TIME_WAIT",  "CLOSED",
                                                 "CLOSE_WAIT", "LAST_ACK",    "LISTEN",     "CLOSING"};
  if (t.tcpi_state < std::size(kStates)) i.state = kStates[t.tcpi_state];
  int queued = 0, unsent = 0, unread = 0;
  if (ioctl(fd, SIOCOUTQ, &queued) == 0 && ioctl(fd, SIOCOUTQNSD, &unsent) == 0) {
    i.unsent_bytes = static_cast<uint64_t>(unsent);
    i.unacked_bytes = static_cast<uint64_t>(queued > unsent ? queued - unsent : 0);
  }
  if (ioctl(fd, SIOCINQ, &unread) == 0) i.unread_bytes = static_cast<uint64_t>(unread);
  i.cwnd_bytes = uint64_t{t.tcpi_snd_cwnd} * t.tcpi_snd_mss;
  i.srtt_ns = uint64_t{t.tcpi_rtt} * 1000;
  i.rto_ns = uint64_t{t.tcpi_rto} * 1000;
  i.retransmits = t.tcpi_total_retrans;
  return i;
}

class KTcp final : public TcpConn {
 public:
  KTcp(Netpoll& np, int fd) : np_(np), fd_(fd) {}
  ~KTcp() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Result<size_t> read(void* buf, size_t len, uint64_t deadline) override {
    if (held() != 0) {
      const iovec v{buf, len};
      return copy_held(&v, 1);
    }
    return receive(len, deadline, [&] { return recv(fd_, buf, len, MSG_DONTWAIT); });
  }
  Result<size_t> readv(const iovec* iov, int n, uint64_t deadline) override {
    if (held() != 0) return copy_held(iov, n);
    msghdr m{};
    m.msg_iov = const_cast<iovec*>(iov);
    m.msg_iovlen = static_cast<size_t>(n);
    size_t want = 0;
    for (int i = 0; i < n; i++) want += iov[i].iov_len;
    return receive(want, deadline, [&] { return recvmsg(fd_, &m, MSG_DONTWAIT); });
  }
  Result<InplaceRead> read_inplace(InplaceFn fn, void* ctx, uint64_t deadline) override {
    if (!buf_) buf_ = std::make_unique<uint8_t[]>(kBuf);
    if (held() == 0) {
      head_ = tail_ = 0;
      auto r = receive(kBuf, deadline, [&] { return recv(fd_, buf_.get(), kBuf, MSG_DONTWAIT); });
      if (!r) return Error{r.error()};
      if (*r == 0) return InplaceRead{0, true};
      tail_ = *r;
    } else if (declined_) {
      top_up();  // fn wanted more than it was shown: bring in what has arrived since
    }
    const size_t avail = held();
    const size_t took = std::min(fn(ctx, buf_.get() + head_, avail), avail);
    head_ += took;
    declined_ = took < avail;
    return InplaceRead{took, false};
  }

  Result<size_t> write(const void* buf, size_t len, uint64_t deadline) override {
    return io(np_, fd_, Dir::write, deadline, [&] { return send(fd_, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL); });
  }
  Result<size_t> writev(const iovec* iov, int n, uint64_t deadline) override {
    msghdr m{};
    m.msg_iov = const_cast<iovec*>(iov);
    m.msg_iovlen = static_cast<size_t>(n);
    return io(np_, fd_, Dir::write, deadline, [&] { return sendmsg(fd_, &m, MSG_DONTWAIT | MSG_NOSIGNAL); });
  }
  void shutdown() override { ::shutdown(fd_, SHUT_WR); }
  // The kernel finishes the connection (FIN, TIME_WAIT) after close(2).
  void close() override {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  void abort() override {
    if (fd_ < 0) return;
    set_reset_on_close(fd_);
    close();
  }
  Endpoint local() const override { return local_of(fd_); }
  Endpoint remote() const override { return remote_of(fd_); }
  TcpInfo info() const override { return info_of(fd_); }

 private:
  static constexpr size_t kBuf = 64 * 1024;

  size_t held() const noexcept { return tail_ - head_; }

  // One receive of up to `want` bytes by op, parking while there is nothing;
  // a short one marks the socket drained as of the edge sequence it began at.
  template <class Op>
  Result<size_t> receive(size_t want, uint64_t deadline, Op op) {
    if (const int e = std::exchange(deferred_err_, 0)) return err(e);
    if (drained_ && np_.seq(fd_, Dir::read) == drained_at_ && !np_.hung_up(fd_) &&
        (deadline <= now_ns() || !np_.wait(fd_, Dir::read, drained_at_, deadline)))
      return err(ETIMEDOUT);
    uint32_t seen = 0;
    auto r = io(np_, fd_, Dir::read, deadline, [&] {
      seen = np_.seq(fd_, Dir::read);
      return op();
    });
    drained_ = r ? *r > 0 && *r < want : r.error() == ETIMEDOUT;  // timed out: its last try said EAGAIN
    drained_at_ = seen;
    return r;
  }

  // Moves the held bytes to the front and appends what the socket has now,
  // without waiting.
  void top_up() noexcept {
    if (head_ != 0) {
      std::memmove(buf_.get(), buf_.get() + head_, held());
      tail_ -= head_;
      head_ = 0;
    }
    if (tail_ == kBuf) return;
    auto r = receive(kBuf - tail_, 0, [&] { return recv(fd_, buf_.get() + tail_, kBuf - tail_, MSG_DONTWAIT); });
    if (r) tail_ += *r;  // 0 (EOF) shows up on the read after these bytes
    else if (r.error() != ETIMEDOUT) deferred_err_ = r.error();  // likewise
  }

  // Serves a read from the held bytes.
  size_t copy_held(const iovec* iov, int n) noexcept {
    size_t done = 0;
    for (int i = 0; i < n && held() != 0; i++) {
      const size_t k = std::min(iov[i].iov_len, held());
      std::memcpy(iov[i].iov_base, buf_.get() + head_, k);
      head_ += k;
      done += k;
    }
    declined_ = false;
    return done;
  }

  Netpoll& np_;
  int fd_;
  std::unique_ptr<uint8_t[]> buf_;  // read_inplace's; allocated on its first use
  size_t head_ = 0, tail_ = 0;      // held bytes: buf_[head_, tail_)
  bool declined_ = false;           // read_inplace's fn left some of what it was shown
  bool drained_ = false;            // the last receive came back short ...
  uint32_t drained_at_ = 0;         // ... with the readable-edge sequence at this
  int deferred_err_ = 0;            // top_up's error, for the read after the held bytes
};

}  // namespace

std::unique_ptr<TcpConn> make_tcp_conn(Netpoll& np, int fd) { return std::make_unique<KTcp>(np, fd); }

}  // namespace slip::net::kernel
