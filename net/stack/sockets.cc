// UDP sockets, TCP connections (a Tcb under a lock, with wake-ups), listeners,
// and the TcpConn conveniences shared by every backend.
#include "net/stack/sockets.h"

#include <cstring>

#include "net/proto/tcp_wire.h"
#include "net/proto/udp.h"
#include "slip/runtime/runtime.h"

namespace slip::net {

Result<size_t> TcpConn::readv(const iovec* iov, int n, uint64_t deadline) {
  for (int i = 0; i < n; i++)
    if (iov[i].iov_len) return read(iov[i].iov_base, iov[i].iov_len, deadline);  // one read, like a short readv
  return size_t{0};
}

Result<size_t> TcpConn::writev(const iovec* iov, int n, uint64_t deadline) {
  size_t total = 0;
  for (int i = 0; i < n; i++) {
    Result<size_t> r = write_full(iov[i].iov_base, iov[i].iov_len, deadline);
    if (!r) return total ? Result<size_t>(total) : r;
    total += *r;
  }
  return total;
}

Result<size_t> TcpConn::read_full(void* buf, size_t len, uint64_t deadline) {
  size_t got = 0;
  while (got < len) {
    Result<size_t> r = read(static_cast<uint8_t*>(buf) + got, len - got, deadline);
    if (!r) return r;
    if (*r == 0) return err(ENODATA);  // EOF before len bytes
    got += *r;
  }
  return got;
}

Result<size_t> TcpConn::write_full(const void* buf, size_t len, uint64_t deadline) {
  size_t put = 0;
  while (put < len) {
    Result<size_t> r = write(static_cast<const uint8_t*>(buf) + put, len - put, deadline);
    if (!r) return r;
    put += *r;
  }
  return put;
}

namespace stack {

using namespace proto;

// ---- UDP --------------------------------------------------------------------

UdpSock::~UdpSock() {
  st_->udp_unbind(port_);
  rt::synchronize_pollers();  // a receive path that found it in the table is done with it
  for (Dgram& d : q_) BufPool::release(d.buf);
}

void UdpSock::deliver(PacketBuf* b, Endpoint from) noexcept {
  lk_.lock();
  if (q_.size() >= st_->cfg().udp_queue) {
    lk_.unlock();
    st_->ctr().drop(Drop::kUdpQueueFull);
    BufPool::release(b);
    return;
  }
  q_.push_back({b, from});
  readers_.wake_one();  // the socket outlives this call (~UdpSock waits out the poll)
  lk_.unlock();
}

Result<size_t> UdpSock::read_from(void* buf, size_t len, Endpoint* from, uint64_t deadline) {
  lk_.lock();
  while (q_.empty()) {
    if (deadline == kNoDeadline) readers_.wait(lk_);
    else if (!readers_.wait_until(lk_, deadline)) {
      lk_.lock();
      if (q_.empty()) {
        lk_.unlock();
        return err(ETIMEDOUT);
      }
      break;
    }
    lk_.lock();
  }
  Dgram d = q_.front();
  q_.pop_front();
  lk_.unlock();
  const size_t n = std::min<size_t>(len, d.buf->len);
  std::memcpy(buf, d.buf->data, n);
  if (from) *from = d.from;
  BufPool::release(d.buf);
  return n;
}

// From a handler on the receive path the datagram joins that shard's
// transmit burst; from a uthread it leaves at once on its kthread's queue.
Result<size_t> UdpSock::write_to(const void* buf, size_t len, Endpoint to) {
  if (len > size_t{st_->mtu()} - 28) return err(EMSGSIZE);  // no fragmentation: one frame, less IP and UDP headers
  PacketBuf* b = st_->alloc();
  if (!b) return err(ENOBUFS);
  uint8_t* p = b->append(len);
  if (!p) {
    BufPool::release(b);
    return err(EMSGSIZE);
  }
  std::memcpy(p, buf, len);
  if (!push_udp(*b, local(), to, st_->tx_csum_offload())) {
    BufPool::release(b);
    return err(ENOBUFS);
  }
  st_->ip_output(st_->rx_shard(), b, to.ip, kIpProtoUdp);
  return len;
}

// ---- TCP connections -----------------------------------------------------------

TcpCore::TcpCore(SlipStack* st, Shard* home, const FlowKey& key)
    : st_(st), home_(home), key_(key), tcb_(st->cfg().tcp, &TcpCore::emit, this) {
  tcb_.set_send_buffers([](void* s) { return static_cast<SlipStack*>(s)->alloc_send_data(); }, st,
                        !st->tx_csum_offload());
}

TcpCore::~TcpCore() = default;

void TcpCore::lock() noexcept { st_->lock_shard(*home_); }

void TcpCore::unlock() noexcept {
  if (home_->n_tx) st_->flush_tx(*home_);
  home_->lk.unlock();
}

void TcpCore::emit(void* ctx, const tcp::OutSeg& seg) {
  auto* self = static_cast<TcpCore*>(ctx);
  SlipStack* st = self->st_;
  PacketBuf* b = nullptr;
  tcp::SendQueue::Whole whole;
  // A small segment is copied: sent by reference, its buffer is shared with
  // the driver, which then frees it with an atomic decrement that waits for
  // the frame copy's stores to drain (memif: ~200 ns a segment in
  // tcp_rtt_64's profile, far more than copying 512 bytes).
  const bool by_ref = seg.len >= kRefMinBytes && seg.payload->whole(seg.payload_off, seg.len, whole) &&
                      BufPool::only_ours(whole.buf);
  if (by_ref) {
    // The send queue's buffer itself, headers in its headroom; the NIC's
    // reference keeps it from being rewritten until the frame has left.
    b = whole.buf;
    b->ref();
    b->data = whole.payload;
    b->len = seg.len;
    b->offload_flags = 0;
    b->l2_len = b->l3_len = b->l4_len = 0;
    NetCounters::inc(st->ctr().tx_tcp_by_ref);
  } else {
    b = st->alloc();
    if (!b) return;  // TCP retransmits; the drop is counted
    if (seg.len) {
      uint8_t* p = b->append(seg.len);
      if (!p) {
        BufPool::release(b);
        return;
      }
      seg.payload->read_at(seg.payload_off, p, seg.len);
      NetCounters::inc(st->ctr().tx_tcp_copied);
    }
  }
  TcpOptions o;
  o.has_mss = seg.opts.mss != 0;
  o.mss = seg.opts.mss;
  o.has_wscale = seg.opts.wscale >= 0;
  o.wscale = static_cast<uint8_t>(seg.opts.wscale < 0 ? 0 : seg.opts.wscale);
  o.sack_permitted = seg.opts.sack_ok;
  o.has_ts = seg.opts.has_ts;
  o.ts_val = seg.opts.ts_val;
  o.ts_ecr = seg.opts.ts_ecr;
  o.sack_count = seg.opts.n_sack;
  for (uint8_t i = 0; i < seg.opts.n_sack; i++) o.sacks[i] = {seg.opts.sack[i].start, seg.opts.sack[i].end};
  uint8_t opts[kTcpMaxOptLen];
  TcpTx tx;
  tx.src = self->key_.local;
  tx.dst = self->key_.remote;
  tx.seq = seg.seq;
  tx.ack = seg.ack;
  tx.flags = seg.flags;
  tx.window = seg.wnd;
  tx.opts = opts;
  tx.opts_len = (seg.flags & tcp::kSyn) ? write_syn_options(opts, o) : write_data_options(opts, o);
  const bool offload = st->tx_csum_offload();
  if (!push_tcp(*b, tx, offload, by_ref && !offload ? &whole.sum : nullptr)) {
    BufPool::release(b);
    return;
  }
  // Out on the home queue: receive and transmit of a flow stay on one
  // kthread's queues, and a port that follows the queue it hears a flow on
  // (net_tap's kernel side) steers the flow's frames there.
  st->ip_output(self->home_, b, tx.dst.ip, kIpProtoTcp, seg.ect);
}

void TcpCore::after(uint64_t now) noexcept {
  // A served connection's callbacks may cause more events (close, abort): loop.
  for (uint32_t ev; (ev = tcb_.take_events()) != 0;) {
    if (ev & (tcp::kEvReadable | tcp::kEvClosed)) readers_.wake_all();
    if (ev & (tcp::kEvWritable | tcp::kEvEstablished | tcp::kEvClosed)) writers_.wake_all();
    if (parent_ && (ev & (tcp::kEvEstablished | tcp::kEvClosed))) {
      TcpListenSock* l = parent_;
      parent_ = nullptr;
      if (ev & tcp::kEvEstablished && !(ev & tcp::kEvClosed)) {
        if (TcpSvc* s = l->service()) adopt(s, l, now);
        else if (!l->established(shared_from_this())) tcb_.abort(now);  // its listener is closing
      } else {
        l->half_open_gone(this);
      }
    }
    if (svc_) serve(ev, now);
  }
  st_->timer_update(*home_, this, tcb_.next_deadline());
  if (tcb_.state() == tcp::State::kClosed && !reaped_) {
    reaped_ = true;
    st_->tcp_reap(*home_, this);
  }
}

void TcpCore::input(const tcp::InSeg& seg, uint64_t now) noexcept {
  tcb_.input(seg, now);
  after(now);
}

void TcpCore::input_batched(const tcp::InSeg& seg, uint64_t now) noexcept { tcb_.input(seg, now, true); }

void TcpCore::flush_input(uint64_t now) noexcept {
  tcb_.flush(now);
  after(now);
}

void TcpCore::accept_syn(const tcp::InSeg& syn, uint64_t now) noexcept {
  tcb_.accept_syn(syn, now, st_->new_iss(key_));
  after(now);
}

void TcpCore::detach_parent(uint64_t now) noexcept {
  if (!parent_) return;
  parent_ = nullptr;
  tcb_.abort(now);  // the listener is gone: refuse the half-open connection
  after(now);
}

void TcpCore::on_timer(uint64_t now) noexcept {
  tcb_.on_tick(now);
  after(now);
}

Result<bool> TcpCore::connect(uint64_t deadline) {
  lock();
  tcb_.connect(now_ns(), st_->new_iss(key_));
  after(now_ns());
  st_->flush_tx(*home_);
  for (;;) {
    const tcp::State s = tcb_.state();
    if (s == tcp::State::kEstablished || s == tcp::State::kCloseWait) {
      unlock();
      return true;
    }
    if (s == tcp::State::kClosed) {
      const int e = tcb_.error() ? tcb_.error() : ECONNREFUSED;
      unlock();
      return err(e);
    }
    if (deadline == kNoDeadline) writers_.wait(home_->lk);
    else if (!writers_.wait_until(home_->lk, deadline)) {
      lock();
      tcb_.abort(now_ns());
      after(now_ns());
      unlock();
      return err(ETIMEDOUT);
    }
    lock();
  }
}

// The receive wait behind read and read_inplace: with the lock held, take()
// moves bytes out of the Tcb; the caller parks while there is nothing.
template <class Take>
Result<TcpConn::InplaceRead> TcpCore::receive(uint64_t deadline, bool zero_len, Take take) {
  lock();
  for (;;) {
    if (tcb_.readable() > 0 || zero_len) {
      const size_t n = take();
      after(now_ns());
      unlock();
      return TcpConn::InplaceRead{n, false};
    }
    if (tcb_.peer_finished()) {
      unlock();
      return TcpConn::InplaceRead{0, true};
    }
    if (tcb_.state() == tcp::State::kClosed) {
      const int e = tcb_.error();
      unlock();
      if (e) return err(e);
      return TcpConn::InplaceRead{0, true};
    }
    st_->flush_tx(*home_);
    if (deadline == kNoDeadline) readers_.wait(home_->lk);
    else if (!readers_.wait_until(home_->lk, deadline)) return err(ETIMEDOUT);
    lock();
  }
}

Result<size_t> TcpCore::read(void* buf, size_t len, uint64_t deadline) {
  auto r = receive(deadline, len == 0, [&] { return tcb_.read(static_cast<uint8_t*>(buf), len, now_ns()); });
  if (!r) return err(r.error());
  return r->taken;
}

Result<TcpConn::InplaceRead> TcpCore::read_inplace(TcpConn::InplaceFn fn, void* ctx, uint64_t deadline) {
  return receive(deadline, false, [&] { return tcb_.read_inplace(fn, ctx, now_ns()); });
}

Result<size_t> TcpCore::write(const void* buf, size_t len, uint64_t deadline) {
  lock();
  for (;;) {
    const tcp::State s = tcb_.state();
    if (s == tcp::State::kClosed || !(s == tcp::State::kEstablished || s == tcp::State::kCloseWait)) {
      const int e = tcb_.error() ? tcb_.error() : EPIPE;
      unlock();
      return err(e);
    }
    const uint64_t now = now_ns();
    const size_t n = tcb_.write(static_cast<const uint8_t*>(buf), len, now);
    after(now);  // also when nothing fit: a write short of packet buffers armed a retry timer
    if (n > 0 || len == 0) {
      unlock();
      return n;
    }
    st_->flush_tx(*home_);
    if (deadline == kNoDeadline) writers_.wait(home_->lk);
    else if (!writers_.wait_until(home_->lk, deadline)) return err(ETIMEDOUT);
    lock();
  }
}

void TcpCore::shutdown() noexcept {
  lock();
  tcb_.shutdown_write(now_ns());
  after(now_ns());
  unlock();
}

void TcpCore::close() noexcept {
  lock();
  // Unread data at close means the application lost it: RST (RFC 2525 §2.17).
  if (tcb_.readable() > 0) tcb_.abort(now_ns());
  else tcb_.shutdown_write(now_ns());
  after(now_ns());
  unlock();
}

void TcpCore::abort() noexcept {
  lock();
  tcb_.abort(now_ns());
  after(now_ns());
  unlock();
}

TcpInfo TcpCore::info() noexcept {
  lock();
  const uint64_t now = now_ns();
  TcpInfo i;
  i.state = tcp::state_name(tcb_.state());
  i.unacked_bytes = tcb_.unacked_bytes();
  i.unsent_bytes = tcb_.unsent_bytes();
  i.unread_bytes = tcb_.readable();
  i.send_window = tcb_.snd_wnd();
  i.cwnd_bytes = tcb_.cwnd();
  i.srtt_ns = tcb_.srtt_ns();
  i.rto_ns = tcb_.rto_ns();
  i.retransmits = tcb_.stats().retransmits;
  i.rto_expiries = tcb_.stats().rto_expiries;
  if (const uint64_t d = tcb_.next_deadline(); d != UINT64_MAX) i.next_timer_in_ns = d > now ? d - now : 0;
  i.queue = home_->index;
  i.kthread = static_cast<int>(home_->owner);
  unlock();
  return i;
}

// ---- TCP listeners ---------------------------------------------------------------

TcpListenSock::TcpListenSock(SlipStack* st, uint16_t port, int backlog, TcpSvc* svc)
    : st_(st),
      port_(port),
      backlog_(static_cast<size_t>(backlog)),
      svc_(svc),
      children_(std::make_unique<std::vector<TcpCore*>[]>(st->n_shards())) {}

// Once unlisted and past synchronize_pollers(), no receive path holds the
// listener any more, so no child is added. Every child added before is in
// its shard's list with its parent set; detaching them (under each shard's
// lock, which a handshake finishing there holds while it calls back) leaves
// none pointing here, and one that finished meanwhile is refused by
// established() instead of being queued on a listener about to go.
TcpListenSock::~TcpListenSock() {
  st_->tcp_unlisten(port_);
  rt::synchronize_pollers();
  std::deque<std::shared_ptr<TcpCore>> ready;
  {
    rt::SpinParkGuard g(lk_);
    closing_ = true;
    ready.swap(ready_);
  }
  for (uint16_t i = 0; i < st_->n_shards(); i++) {
    Shard& s = st_->shard(i);
    st_->lock_shard(s);
    std::vector<TcpCore*> kids;
    kids.swap(children_[i]);
    for (TcpCore* c : kids) c->detach_parent(now_ns());
    st_->flush_tx(s);
    s.lk.unlock();
  }
  for (auto& c : ready) c->abort();
}

bool TcpListenSock::admit() noexcept {
  if (n_ready_.load(std::memory_order_relaxed) >= backlog_) return false;
  if (half_open_.fetch_add(1, std::memory_order_relaxed) >= st_->cfg().syn_queue) {
    half_open_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void TcpListenSock::add_child(Shard& s, TcpCore* c) noexcept {
  children_[s.index].push_back(c);
  c->set_parent(this);
}

void TcpListenSock::half_open_gone(TcpCore* c) noexcept {
  half_open_.fetch_sub(1, std::memory_order_relaxed);
  std::erase(children_[c->home().index], c);
}

bool TcpListenSock::established(std::shared_ptr<TcpCore> c) noexcept {
  half_open_gone(c.get());
  rt::SpinParkGuard g(lk_);
  if (closing_) return false;
  ready_.push_back(std::move(c));
  n_ready_.store(ready_.size(), std::memory_order_relaxed);
  acceptors_.wake_one();  // readied on this kthread: the connection's own
  return true;
}

Result<std::unique_ptr<TcpConn>> TcpListenSock::accept(uint64_t deadline) {
  lk_.lock();
  while (ready_.empty()) {
    if (deadline == kNoDeadline) acceptors_.wait(lk_);
    else if (!acceptors_.wait_until(lk_, deadline)) return err(ETIMEDOUT);
    lk_.lock();
  }
  std::shared_ptr<TcpCore> c = std::move(ready_.front());
  ready_.pop_front();
  n_ready_.store(ready_.size(), std::memory_order_relaxed);
  lk_.unlock();
  return std::unique_ptr<TcpConn>(std::make_unique<TcpConnHandle>(std::move(c)));
}

}  // namespace stack

std::unique_ptr<Stack> make_slip_stack(Nic& nic, const StackConfig& cfg) {
  return std::make_unique<stack::SlipStack>(nic, cfg);
}

}  // namespace slip::net
