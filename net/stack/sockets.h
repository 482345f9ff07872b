// UDP and TCP sockets of the slip stack. A TcpCore is the connection shared by
// its home shard's table and the application's handle; it outlives the
// handle while FIN, TIME_WAIT and retransmissions finish in the background.
// Everything in a TcpCore is guarded by its home shard's lock (shard.h).
#pragma once

#include <atomic>
#include <deque>
#include <memory>

#include "net/stack/slip_stack.h"
#include "net/tcp/tcb.h"
#include "slip/runtime/wait_queue.h"

namespace slip::net::stack {

class UdpSock final : public UdpConn {
 public:
  UdpSock(SlipStack* st, uint16_t port) : st_(st), port_(port) {}
  // Unbinds, then waits out the receive paths that may still be using it.
  ~UdpSock() override;
  Result<size_t> read_from(void* buf, size_t len, Endpoint* from, uint64_t deadline) override;
  Result<size_t> write_to(const void* buf, size_t len, Endpoint to) override;
  Endpoint local() const override { return {st_->ip(), port_}; }
  // From the receive path: takes b (payload at b->data, len b->len) or drops it.
  void deliver(PacketBuf* b, Endpoint from) noexcept;

  // Run-to-completion mode (udp_serve): the receive path calls the handler
  // instead of queueing, on each kthread that polls a datagram for it.
  void serve(UdpHandler h, UdpService* svc) { handler_ = std::move(h), svc_ = svc; }
  bool serves() const noexcept { return svc_ != nullptr; }
  void call(const uint8_t* p, size_t len, Endpoint from) noexcept { handler_(p, len, from, *svc_); }

 private:
  struct Dgram {
    PacketBuf* buf;
    Endpoint from;
  };
  SlipStack* st_;
  uint16_t port_;
  rt::SpinParkLock lk_;
  std::deque<Dgram> q_;
  rt::WaitQueue readers_;
  UdpHandler handler_;
  UdpService* svc_ = nullptr;
};

// udp_serve's handle: a UdpSock in run-to-completion mode.
class UdpSvc final : public UdpService {
 public:
  UdpSvc(SlipStack* st, uint16_t port, UdpHandler h) : sock_(st, port) { sock_.serve(std::move(h), this); }
  Result<size_t> send(const void* buf, size_t len, Endpoint to) noexcept override {
    return sock_.write_to(buf, len, to);
  }
  Endpoint local() const override { return sock_.local(); }
  UdpSock& sock() noexcept { return sock_; }

 private:
  UdpSock sock_;
};

class TcpCore;
class TcpSvc;

// What a served TcpCore hands its tcp_serve callbacks (tcp_service.cc). Its
// calls come only from inside those callbacks, which run with the home
// shard's lock held, so they act on the Tcb directly; close and abort wait
// for the callback to return, so that its return value is applied first.
class ServedConn final : public TcpServiceConn {
 public:
  explicit ServedConn(TcpCore* c) noexcept : c_(c) {}
  Result<size_t> send(const void* buf, size_t len) noexcept override;
  void shutdown() noexcept override;
  void close() noexcept override;
  void abort() noexcept override;
  Endpoint local() const noexcept override;
  Endpoint remote() const noexcept override;

 private:
  friend class TcpCore;
  enum class Close : uint8_t { kNone, kClose, kAbort };
  TcpCore* c_;
  size_t left_ = 0;           // bytes offered last and left unconsumed
  bool want_write_ = false;   // a send came up short: on_writable once there is room
  Close close_ = Close::kNone;
};

class TcpCore : public std::enable_shared_from_this<TcpCore> {
 public:
  TcpCore(SlipStack* st, Shard* home, const FlowKey& key);
  ~TcpCore();

  // ---- stack side: the caller holds home()'s lock
  void input(const tcp::InSeg& seg, uint64_t now) noexcept;
  // The same within a receive burst: sending, wake-ups and re-timing wait
  // for flush_input() once the burst is in (Tcb::input's `batched`).
  void input_batched(const tcp::InSeg& seg, uint64_t now) noexcept;
  void flush_input(uint64_t now) noexcept;
  // A new passive connection: its listener, which admitted it.
  void set_parent(TcpListenSock* l) noexcept { parent_ = l; }
  void accept_syn(const tcp::InSeg& syn, uint64_t now) noexcept;
  void on_timer(uint64_t now) noexcept;
  // Its listener is closing: refuse the half-open connection.
  void detach_parent(uint64_t now) noexcept;
  // From ~TcpSvc: on_close(kStopped) and an orderly close.
  void stop_serving(uint64_t now) noexcept;

  // ---- application side (uthreads): each call takes home()'s lock
  Result<bool> connect(uint64_t deadline);
  Result<size_t> read(void* buf, size_t len, uint64_t deadline);
  Result<TcpConn::InplaceRead> read_inplace(TcpConn::InplaceFn fn, void* ctx, uint64_t deadline);
  Result<size_t> write(const void* buf, size_t len, uint64_t deadline);
  void shutdown() noexcept;
  void close() noexcept;
  void abort() noexcept;
  TcpInfo info() noexcept;

  const FlowKey& key() const noexcept { return key_; }
  Shard& home() const noexcept { return *home_; }
  // Timer-heap bookkeeping of the home shard.
  uint64_t tmr_deadline = UINT64_MAX;
  size_t tmr_index = SIZE_MAX;

 private:
  static void emit(void* ctx, const tcp::OutSeg& seg);
  static constexpr uint32_t kRefMinBytes = 512;  // smaller segments are copied (see emit)
  // After any Tcb call, with the lock held: wakes waiters, re-times, hands an
  // established passive connection to its listener, reaps a closed one.
  void after(uint64_t now) noexcept;
  // An application call's lock: taken, and released after sending what the call queued.
  void lock() noexcept;
  void unlock() noexcept;

  SlipStack* st_;
  Shard* home_;
  FlowKey key_;
  tcp::Tcb tcb_;
  rt::WaitQueue readers_, writers_;
  TcpListenSock* parent_ = nullptr;  // until accepted
  bool reaped_ = false;

  // tcp_serve (tcp_service.cc): the service while it serves this connection,
  // and its place in the service's list of the home shard's connections.
  friend class ServedConn;
  friend class TcpSvc;
  TcpSvc* svc_ = nullptr;
  ServedConn served_{this};
  TcpCore *sv_prev_ = nullptr, *sv_next_ = nullptr;
  bool sv_linked_ = false;
  void adopt(TcpSvc* s, TcpListenSock* l, uint64_t now) noexcept;
  void serve(uint32_t ev, uint64_t now) noexcept;
  void offer(const TcpHandlers& h, uint64_t now) noexcept;
  void finish(TcpCloseReason why, int err, uint64_t now) noexcept;

  template <class Take>
  Result<TcpConn::InplaceRead> receive(uint64_t deadline, bool zero_len, Take take);
};

class TcpConnHandle final : public TcpConn {
 public:
  explicit TcpConnHandle(std::shared_ptr<TcpCore> c) : c_(std::move(c)) {}
  ~TcpConnHandle() override { c_->close(); }
  Result<size_t> read(void* buf, size_t len, uint64_t deadline) override { return c_->read(buf, len, deadline); }
  Result<InplaceRead> read_inplace(InplaceFn fn, void* ctx, uint64_t deadline) override {
    return c_->read_inplace(fn, ctx, deadline);
  }
  Result<size_t> write(const void* buf, size_t len, uint64_t deadline) override {
    return c_->write(buf, len, deadline);
  }
  void shutdown() override { c_->shutdown(); }
  void close() override { c_->close(); }
  void abort() override { c_->abort(); }
  Endpoint local() const override { return c_->key().local; }
  Endpoint remote() const override { return c_->key().remote; }
  TcpInfo info() const override { return c_->info(); }

 private:
  std::shared_ptr<TcpCore> c_;
};

class TcpListenSock final : public TcpListener {
 public:
  TcpListenSock(SlipStack* st, uint16_t port, int backlog, TcpSvc* svc = nullptr);
  ~TcpListenSock() override;
  Result<std::unique_ptr<TcpConn>> accept(uint64_t deadline) override;
  Endpoint local() const override { return {st_->ip(), port_}; }

  // Receive path, lock-free: whether a new half-open connection may be
  // created (both the SYN queue and the backlog have room).
  bool admit() noexcept;
  // With s locked: c, new on shard s, is this listener's child from here on.
  void add_child(Shard& s, TcpCore* c) noexcept;
  // With c's home locked: c finished its handshake; false once the listener
  // is closing (refuse it).
  bool established(std::shared_ptr<TcpCore> c) noexcept;
  // With c's home locked: c left the SYN queue another way.
  void half_open_gone(TcpCore* c) noexcept;
  // The service its connections go to instead of accept(), if any.
  TcpSvc* service() const noexcept { return svc_; }

 private:
  SlipStack* st_;
  uint16_t port_;
  size_t backlog_;
  TcpSvc* svc_;
  std::atomic<size_t> half_open_{0}, n_ready_{0};
  // Half-open children, per shard under that shard's lock, to detach on close.
  std::unique_ptr<std::vector<TcpCore*>[]> children_;
  rt::SpinParkLock lk_;  // ready_, closing_, acceptors_
  std::deque<std::shared_ptr<TcpCore>> ready_;
  bool closing_ = false;  // in the destructor: no child is queued any more
  rt::WaitQueue acceptors_;
};

// tcp_serve's handle: a listener whose established connections are served
// by callbacks (tcp_service.cc) instead of queued for accept().
class TcpSvc final : public TcpService {
 public:
  TcpSvc(SlipStack* st, uint16_t port, TcpHandlers h);
  ~TcpSvc() override;
  Endpoint local() const override { return {st_->ip(), port_}; }
  TcpListenSock& listener() noexcept { return *lis_; }
  const TcpHandlers& handlers() const noexcept { return h_; }
  // With c's home locked: the list of that shard's live connections.
  void link(TcpCore* c) noexcept;
  void unlink(TcpCore* c) noexcept;

 private:
  SlipStack* st_;
  uint16_t port_;
  TcpHandlers h_;
  std::unique_ptr<TcpListenSock> lis_;
  std::unique_ptr<TcpCore*[]> heads_;  // per shard, under that shard's lock
};

}  // namespace slip::net::stack
