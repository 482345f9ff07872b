// The network API for uthreads, with two stacks behind it, chosen at start:
// `slip` (this project's stack over a Nic) and, later, `kernel` (Linux sockets
// folded into the scheduler). Blocking calls park the calling uthread; each
// takes an optional absolute deadline (now_ns() time line) and fails with
// ETIMEDOUT when it passes. Errors are errno values in a Result, never throws.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
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
// the call. Handlers of one service never run concurrently with each other.
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
  TcpConfig tcp;
};

class Stack {
 public:
  virtual ~Stack() = default;
  // Port 0 picks an ephemeral port.
  virtual Result<std::unique_ptr<UdpConn>> udp_bind(uint16_t port) = 0;
  // Port 0 picks an ephemeral port. See UdpService for the handler's rules.
  virtual Result<std::unique_ptr<UdpService>> udp_serve(uint16_t port, UdpHandler handler) = 0;
  virtual Result<std::unique_ptr<TcpListener>> tcp_listen(uint16_t port, int backlog = 128) = 0;
  virtual Result<std::unique_ptr<TcpConn>> tcp_dial(Endpoint remote, uint64_t deadline = kNoDeadline) = 0;
  virtual Ipv4Addr ip() const = 0;
  // Sum of the per-kthread counters.
  virtual void counters(NetCounters& out) const = 0;
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
