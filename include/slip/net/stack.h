// The network API for uthreads, with two stacks behind it, chosen at start:
// `slip` (this project's stack over a Nic, run to completion on the kthread
// that polls each receive queue) and `kernel` (Linux sockets folded into the
// scheduler). Blocking calls park the calling uthread; each takes an
// optional absolute deadline (now_ns() time line) and fails with ETIMEDOUT
// when it passes. Errors are errno values in a Result, never throws. Besides
// uthread sockets there are run-to-completion services (udp_serve,
// tcp_serve) whose callbacks run inside the stack's receive path.
#pragma once

#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "slip/common/result.h"
#include "slip/net/addr.h"
#include "slip/net/counters.h"
#include "slip/net/nic.h"
#include "slip/net/tcp_config.h"

namespace slip::net {

inline constexpr uint64_t kNoDeadline = UINT64_MAX;

class UdpConn {
 public:
  virtual ~UdpConn() = default;
  // One datagram into buf (truncated to len); its sender in *from if non-null.
  virtual Result<size_t> read_from(void* buf, size_t len, Endpoint* from, uint64_t deadline = kNoDeadline) = 0;
  virtual Result<size_t> write_to(const void* buf, size_t len, Endpoint to) = 0;
  virtual Endpoint local() const = 0;
};

// A snapshot of one connection's TCP state, for diagnostics (a stalled flow,
// a slow one), in the spirit of Linux's TCP_INFO. Fields a stack cannot
// report stay at their defaults.
struct TcpInfo {
  std::string_view state = "UNKNOWN";  // "ESTABLISHED", "CLOSE_WAIT", ... (RFC 9293 states)
  uint64_t unacked_bytes = 0;          // sent and not yet acknowledged
  uint64_t unsent_bytes = 0;           // written by the application, not yet sent
  uint64_t unread_bytes = 0;           // received in order, not yet read
  uint64_t send_window = 0;            // the peer's last advertised window, bytes
  uint64_t cwnd_bytes = 0;
  uint64_t srtt_ns = 0, rto_ns = 0;
  uint64_t retransmits = 0, rto_expiries = 0;
  uint64_t next_timer_in_ns = UINT64_MAX;  // until the connection's next timer; UINT64_MAX: none armed
  // Slip stack: the receive queue the port steers the flow to, and the
  // kthread that polls it, which runs the connection's receive path and
  // wakes its readers (rt::spawn_on it to serve the connection there).
  // -1: no such place (the kernel stack).
  int queue = -1, kthread = -1;
};

class TcpConn {
 public:
  virtual ~TcpConn() = default;
  // Up to len bytes; 0 means the peer closed its side (EOF).
  virtual Result<size_t> read(void* buf, size_t len, uint64_t deadline = kNoDeadline) = 0;
  // Up to len bytes, parking while the send buffer is full; returns what was queued.
  virtual Result<size_t> write(const void* buf, size_t len, uint64_t deadline = kNoDeadline) = 0;
  virtual Result<size_t> readv(const iovec* iov, int n, uint64_t deadline = kNoDeadline);

  // Zero-copy receive. Parks until data, EOF or an error, then calls
  // fn(ctx, p, n) on the received bytes where they lie, in order, one
  // contiguous run at a time; fn returns how many bytes it took, and a run
  // not taken whole ends the call (the rest stays for the next read). fn
  // runs with the connection locked: it must not block or use this
  // connection. `eof` is set, with nothing taken, once the peer closed.
  struct InplaceRead {
    size_t taken = 0;
    bool eof = false;
  };
  using InplaceFn = size_t (*)(void* ctx, const uint8_t* p, size_t n);
  virtual Result<InplaceRead> read_inplace(InplaceFn fn, void* ctx, uint64_t deadline = kNoDeadline) = 0;
  // The same with a callable: f(const uint8_t* p, size_t n) -> size_t taken.
  template <class F>
  Result<InplaceRead> read_inplace(F&& f, uint64_t deadline = kNoDeadline) {
    using Fn = std::remove_reference_t<F>;
    return read_inplace(
        [](void* c, const uint8_t* p, size_t n) -> size_t { return (*static_cast<Fn*>(c))(p, n); },
        const_cast<void*>(static_cast<const void*>(&f)), deadline);
  }
  virtual Result<size_t> writev(const iovec* iov, int n, uint64_t deadline = kNoDeadline);
  // Exactly len bytes or an error (EPIPE-like ECONNRESET, or 0 bytes at EOF: ENODATA).
  Result<size_t> read_full(void* buf, size_t len, uint64_t deadline = kNoDeadline);
  Result<size_t> write_full(const void* buf, size_t len, uint64_t deadline = kNoDeadline);
  // No more writes: FIN after buffered data.
  virtual void shutdown() = 0;
  // Orderly close: shutdown, then the stack finishes the connection in the background.
  virtual void close() = 0;
  // RST now.
  virtual void abort() = 0;
  virtual Endpoint local() const = 0;
  virtual Endpoint remote() const = 0;
  virtual TcpInfo info() const = 0;
};

class TcpListener {
 public:
  virtual ~TcpListener() = default;
  virtual Result<std::unique_ptr<TcpConn>> accept(uint64_t deadline = kNoDeadline) = 0;
  virtual Endpoint local() const = 0;
};

// Run-to-completion UDP (IX style): the handler runs on the kthread that
// received the datagram, inside the stack's poll, before any uthread sees it.
// `payload` points into the receive buffer (no copy) and is valid only during
// the call. Calls for one service may run at once on different kthreads (at
// most one per kthread, as every receive queue is polled by one kthread at a
// time); a flow the port steers to one queue is handled in arrival order.
// A handler must not block: it replies with UdpService::send (non-blocking)
// and hands longer work to a uthread.
class UdpService {
 public:
  // Stops delivery; returns once no handler call is running.
  virtual ~UdpService() = default;
  // One datagram now, or an error (ENOBUFS when the NIC or socket is full).
  virtual Result<size_t> send(const void* buf, size_t len, Endpoint to) noexcept = 0;
  virtual Endpoint local() const = 0;
};
using UdpHandler = std::function<void(const uint8_t* payload, size_t len, Endpoint from, UdpService& svc)>;

// Run-to-completion TCP (IX style), the TCP side of udp_serve: a service's
// callbacks run on the kthread that received the segment, inside the stack's
// poll, with no uthread in the path. Calls for one connection never overlap;
// calls for different connections may run at once on different kthreads.
// Callbacks must not block (no parking calls, no TcpConn I/O); longer work
// goes to a uthread. Nothing here throws on the data path.

// Received bytes offered to TcpHandlers::on_data where they lie: on the slip
// stack in the connection's receive ring (zero-copy; `second` is non-empty
// only when the bytes wrap the ring), on the kernel stack in a per-connection
// buffer (one run). Valid only during the call.
struct TcpRxBytes {
  std::span<const uint8_t> first, second;
  size_t size() const noexcept { return first.size() + second.size(); }
  bool empty() const noexcept { return size() == 0; }
  uint8_t operator[](size_t i) const noexcept { return i < first.size() ? first[i] : second[i - first.size()]; }
  // Copies up to n bytes from offset off into out; returns how many.
  size_t copy(size_t off, void* out, size_t n) const noexcept {
    auto* o = static_cast<uint8_t*>(out);
    size_t done = 0;
    for (std::span<const uint8_t> run : {first, second}) {
      if (off >= run.size()) {
        off -= run.size();
        continue;
      }
      const size_t k = std::min(n - done, run.size() - off);
      std::copy_n(run.data() + off, k, o + done);
      done += k;
      off = 0;
    }
    return done;
  }
};

// Why a served connection ended (TcpHandlers::on_close).
enum class TcpCloseReason : uint8_t {
  kPeerFin,  // the peer finished sending (FIN): sends made in on_close still go out, then our FIN
  kReset,    // the peer reset it (RST; err is ECONNRESET)
  kError,    // the stack gave up: retransmission or keepalive timeout (err says which)
  kLocal,    // this side called close() or abort()
  kStopped,  // the TcpService was destroyed: sends made in on_close still go out, then FIN
};

// One connection of a TcpService as its callbacks see it: valid from
// on_accept until on_close returns, and to be used only inside callbacks for
// this same connection (which never overlap, so it needs no lock).
class TcpServiceConn {
 public:
  // Queues up to len bytes for sending and returns how many fit; never
  // blocks. Short (possibly 0) when the send buffer is full; on_writable
  // follows once there is room again. EPIPE after shutdown() or close(), the
  // connection's error (ECONNRESET, ETIMEDOUT) once it died.
  virtual Result<size_t> send(const void* buf, size_t len) noexcept = 0;
  // FIN after the queued bytes; receiving goes on.
  virtual void shutdown() noexcept = 0;
  // Once the callback returns: the queued bytes, then FIN, finished by the
  // stack in the background (RST instead when received bytes were left
  // unconsumed, as TcpConn::close). on_close(kLocal) follows at once.
  virtual void close() noexcept = 0;
  // Once the callback returns: RST. on_close(kLocal) follows at once.
  virtual void abort() noexcept = 0;
  virtual Endpoint local() const noexcept = 0;
  virtual Endpoint remote() const noexcept = 0;
  // The application's per-connection state (nullptr until set).
  void* context() const noexcept { return ctx_; }
  void set_context(void* c) noexcept { ctx_ = c; }

 protected:
  ~TcpServiceConn() = default;

 private:
  void* ctx_ = nullptr;
};

struct TcpHandlers {
  // A new, established connection; false refuses it (RST, and no on_close).
  // Empty: every connection is accepted.
  std::function<bool(TcpServiceConn& c)> on_accept;
  // Required. Bytes received and not yet consumed; returns how many it
  // consumed, from the front. What it leaves stays in the receive buffer and
  // is offered again, together with what arrives next; it is also offered
  // again at once while a call consumes some but not all, and after
  // on_writable. A buffer full of unconsumed bytes (TcpConfig::rcv_buf)
  // stops the peer: consume, or close.
  std::function<size_t(TcpServiceConn& c, TcpRxBytes data)> on_data;
  // Optional. After a short send(), once the send buffer has room again (at
  // least half of it free on the slip stack; the kernel's EPOLLOUT).
  std::function<void(TcpServiceConn& c)> on_writable;
  // Optional. Exactly once for each accepted connection, whatever ended it;
  // the connection is gone when it returns. err: errno for kReset and kError, else 0.
  std::function<void(TcpServiceConn& c, TcpCloseReason why, int err)> on_close;
};

// tcp_serve's handle.
class TcpService {
 public:
  // Stops accepting, ends each live connection with on_close(kStopped) and
  // an orderly close (as TcpServiceConn::close), and returns once no callback
  // runs, so it must not be destroyed from one of its own callbacks.
  virtual ~TcpService() = default;
  virtual Endpoint local() const = 0;
};

struct StackConfig {
  Ipv4Addr ip;
  uint8_t prefix_len = 24;
  Ipv4Addr gateway;                     // zero: no default route
  std::vector<std::pair<Ipv4Addr, MacAddr>> static_arp;
  uint64_t arp_timeout_ns = 60'000'000'000;
  uint64_t arp_retry_ns = 1'000'000'000;
  uint32_t arp_max_retries = 3;         // then queued packets are dropped (EHOSTUNREACH)
  bool gratuitous_arp = true;
  uint16_t ephemeral_lo = 49152, ephemeral_hi = 65535;
  uint32_t udp_queue = 512;             // datagrams a UDP socket holds before dropping
  uint32_t syn_queue = 1024;            // half-open connections per listener
  uint64_t max_park_ns = 100'000;       // NIC without interrupts: poll at least this often
  // A kthread with nothing to do polls another kthread's receive queue once
  // that queue has gone unpolled this long (its owner is busy in a long
  // uthread, or lost its CPU); a parked owner's queues are taken at once.
  uint64_t steal_after_ns = 20'000;
  TcpConfig tcp;
};

// One receive queue of the slip stack: who handled its frames, and how often
// work crossed to another kthread. In steady state every frame is handled by
// the queue's owner kthread and nothing crosses.
struct QueueStats {
  unsigned owner_kthread = 0;
  uint64_t rx_frames = 0;          // frames taken from the queue
  uint64_t rx_stolen = 0;          // ... by a kthread other than its owner (parked or behind)
  uint64_t rx_bursts = 0;          // receive bursts that brought frames
  // Every 8th burst looks whether another kthread was inside a receive
  // burst (of any slip stack in the process) at some moment of it: evidence
  // that receive paths run in parallel, not one after the other.
  uint64_t bursts_sampled = 0, bursts_concurrent = 0;
  uint64_t tcp_from_other_queue = 0;  // segments of this queue's connections that arrived on another queue
  uint64_t lock_waits = 0;         // callers that found the queue's state busy and waited for it
};

class Stack {
 public:
  virtual ~Stack() = default;
  // Port 0 picks an ephemeral port.
  virtual Result<std::unique_ptr<UdpConn>> udp_bind(uint16_t port) = 0;
  // Port 0 picks an ephemeral port. See UdpService for the handler's rules.
  virtual Result<std::unique_ptr<UdpService>> udp_serve(uint16_t port, UdpHandler handler) = 0;
  // Port 0 picks an ephemeral port (local() says which).
  virtual Result<std::unique_ptr<TcpListener>> tcp_listen(uint16_t port, int backlog = 128) = 0;
  // Run-to-completion TCP on port (0: an ephemeral one, as tcp_listen); see
  // TcpHandlers. EINVAL without on_data.
  virtual Result<std::unique_ptr<TcpService>> tcp_serve(uint16_t port, TcpHandlers handlers) = 0;
  virtual Result<std::unique_ptr<TcpConn>> tcp_dial(Endpoint remote, uint64_t deadline = kNoDeadline) = 0;
  virtual Ipv4Addr ip() const = 0;
  // Sum of the per-kthread counters.
  virtual void counters(NetCounters& out) const = 0;
  // Adds kthread k's own counters (what counters() sums) to out; false on a
  // stack that keeps none per kthread (kernel).
  virtual bool kthread_counters(unsigned /*k*/, NetCounters& /*out*/) const { return false; }
  // Per receive queue; empty on a stack without queues of its own (kernel).
  virtual std::vector<QueueStats> queue_stats() const { return {}; }
};

// This project's stack over nic. Call inside slip::rt::run(): it registers a
// poller so kthreads receive from the NIC, and announces itself (gratuitous ARP).
std::unique_ptr<Stack> make_slip_stack(Nic& nic, const StackConfig& cfg);

// Linux sockets behind the same API. Call inside slip::rt::run(): sockets are
// non-blocking and registered with one epoll instance that kthreads poll and
// that an idle kthread sleeps in (Go's netpoller, folded into the scheduler).
// cfg.ip is the address sockets bind to (zero: any); cfg.tcp.nagle applies (TCP_NODELAY when it is false).
// Throws std::system_error when epoll cannot be created.
std::unique_ptr<Stack> make_kernel_stack(const StackConfig& cfg);

enum class StackKind { slip, kernel };
// "slip" or "kernel"; nullopt otherwise.
std::optional<StackKind> parse_stack_kind(std::string_view s) noexcept;

}  // namespace slip::net
