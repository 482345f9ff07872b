// The slip stack's socket tables, TCP receive dispatch (connections,
// listeners, RSTs for strays) and the TCP timer heap.
#include "net/proto/ether.h"
#include "net/proto/ipv4.h"
#include "net/proto/tcp_wire.h"
#include "net/stack/sockets.h"
#include "slip/runtime/runtime.h"

namespace slip::net::stack {

using namespace proto;

namespace {

// The connections one receive burst reached, on this kthread. Their sending
// waits until the whole burst is in (SlipStack::poll), so a run of segments
// is acknowledged once and the ACKs of a burst are answered in one pass. The
// references keep each connection alive until its flush.
struct RxBatch {
  bool active = false;
  uint16_t n = 0;
  std::shared_ptr<TcpCore> cores[kBurst];

  // Room for one more connection: a burst holds at most kBurst frames, but
  // a full list sends the rest at once rather than trusting that.
  bool has_room() const noexcept { return active && n < kBurst; }
  void add(std::shared_ptr<TcpCore> c) noexcept {
    for (uint16_t i = 0; i < n; i++)
      if (cores[i] == c) return;
    cores[n++] = std::move(c);
  }
};
thread_local RxBatch t_rx_batch;

tcp::SegOpts to_seg_opts(const TcpOptions& o) noexcept {
  tcp::SegOpts s;
  if (o.has_mss) s.mss = o.mss;
  if (o.has_wscale) s.wscale = static_cast<int8_t>(o.wscale);
  s.sack_ok = o.sack_permitted;
  s.has_ts = o.has_ts;
  s.ts_val = o.ts_val;
  s.ts_ecr = o.ts_ecr;
  s.n_sack = o.sack_count;
  for (uint8_t i = 0; i < o.sack_count && i < s.sack.size(); i++) s.sack[i] = {o.sacks[i].left, o.sacks[i].right};
  return s;
}
}  // namespace

template <class Free>
uint16_t SlipStack::next_ephemeral(Free&& free) noexcept {
  for (uint32_t tries = 0; tries <= 65535u; tries++) {
    const uint16_t p = next_ephemeral_;
    next_ephemeral_ = next_ephemeral_ >= cfg_.ephemeral_hi ? cfg_.ephemeral_lo : next_ephemeral_ + 1;
    if (free(p)) return p;
  }
  return 0;
}

Result<uint16_t> SlipStack::udp_claim_port(uint16_t port) noexcept {
  if (port == 0) port = next_ephemeral([&](uint16_t p) { return !udp_[p]; });
  if (port == 0 || udp_[port]) return err(EADDRINUSE);
  return port;
}

Result<std::unique_ptr<UdpConn>> SlipStack::udp_bind(uint16_t port) {
  rt::SpinGuard g(tab_lk_);
  auto p = udp_claim_port(port);
  if (!p) return Error{p.error()};
  auto s = std::make_unique<UdpSock>(this, *p);
  udp_[*p] = s.get();
  return std::unique_ptr<UdpConn>(std::move(s));
}

Result<std::unique_ptr<UdpService>> SlipStack::udp_serve(uint16_t port, UdpHandler handler) {
  if (!handler) return err(EINVAL);
  rt::SpinGuard g(tab_lk_);
  auto p = udp_claim_port(port);
  if (!p) return Error{p.error()};
  auto s = std::make_unique<UdpSvc>(this, *p, std::move(handler));
  udp_[*p] = &s->sock();
  return std::unique_ptr<UdpService>(std::move(s));
}

void SlipStack::udp_unbind(uint16_t port) noexcept {
  rt::SpinGuard g(tab_lk_);
  udp_[port] = nullptr;
}

// Port 0 takes a free one from the ephemeral range, as Linux's listen does.
Result<uint16_t> SlipStack::tcp_claim_listen_port(uint16_t port) noexcept {
  if (port == 0) port = next_ephemeral([&](uint16_t p) { return !listeners_[p]; });
  if (port == 0 || listeners_[port]) return err(EADDRINUSE);
  return port;
}

Result<std::unique_ptr<TcpListener>> SlipStack::tcp_listen(uint16_t port, int backlog) {
  rt::SpinGuard g(tab_lk_);
  auto p = tcp_claim_listen_port(port);
  if (!p) return Error{p.error()};
  auto l = std::make_unique<TcpListenSock>(this, *p, backlog < 1 ? 1 : backlog);
  listeners_[*p] = l.get();
  return std::unique_ptr<TcpListener>(std::move(l));
}

void SlipStack::tcp_unlisten(uint16_t port) noexcept {
  rt::SpinGuard g(tab_lk_);
  listeners_[port] = nullptr;
}

bool SlipStack::tcp_insert(const FlowKey& k, std::shared_ptr<TcpCore> c) noexcept {
  rt::SpinGuard g(tab_lk_);
  return conns_.emplace(k, std::move(c)).second;
}

void SlipStack::tcp_reap(TcpCore* c) noexcept {
  rt::SpinGuard g(tab_lk_);
  dead_.push_back(c);
  any_dead_.store(true, std::memory_order_release);
}

void SlipStack::reap() noexcept {
  if (!any_dead_.load(std::memory_order_acquire)) return;  // every poll comes here; few find work
  std::vector<std::shared_ptr<TcpCore>> gone;  // destroyed after the lock is dropped
  tab_lk_.lock();
  any_dead_.store(false, std::memory_order_relaxed);
  for (TcpCore* c : dead_) {
    auto it = conns_.find(c->key());
    if (it != conns_.end() && it->second.get() == c) {
      gone.push_back(std::move(it->second));
      conns_.erase(it);
    }
  }
  dead_.clear();
  tab_lk_.unlock();
  for (auto& c : gone) heap_remove(c.get());
}

Result<std::unique_ptr<TcpConn>> SlipStack::tcp_dial(Endpoint remote, uint64_t deadline) {
  if (remote.port == 0 || remote.ip.is_zero()) return err(EINVAL);
  std::shared_ptr<TcpCore> c;
  {
    rt::SpinGuard g(tab_lk_);
    const uint16_t p =
        next_ephemeral([&](uint16_t q) { return !listeners_[q] && !conns_.count(FlowKey{{cfg_.ip, q}, remote}); });
    if (p != 0) {
      const FlowKey k{{cfg_.ip, p}, remote};
      c = std::make_shared<TcpCore>(this, k);
      conns_.emplace(k, c);
    }
  }
  if (!c) return err(EADDRNOTAVAIL);
  Result<bool> r = c->connect(deadline);
  if (!r) return err(r.error());
  return std::unique_ptr<TcpConn>(std::make_unique<TcpConnHandle>(std::move(c)));
}

void SlipStack::send_rst(const RxFrame& f) noexcept {
  tcp::InSeg in;
  in.seq = f.tcp.hdr->seq();
  in.ack = f.tcp.hdr->ack();
  in.flags = f.tcp.hdr->flags;
  in.len = f.tcp.payload_len;
  tcp::OutSeg o;
  if (!tcp::Tcb::rst_for(in, &o)) return;
  PacketBuf* b = alloc();
  if (!b) return;
  TcpTx tx;
  tx.src = {cfg_.ip, f.tcp.hdr->dport()};
  tx.dst = {f.ip.hdr->src(), f.tcp.hdr->sport()};
  tx.seq = o.seq;
  tx.ack = o.ack;
  tx.flags = o.flags;
  if (!push_tcp(*b, tx, caps_.tx_l4_csum)) {
    BufPool::release(b);
    return;
  }
  ip_output(b, tx.dst.ip, kIpProtoTcp);
}

void SlipStack::rx_tcp(PacketBuf* b, const RxFrame& f, uint64_t now) noexcept {
  const TcpHdr* h = f.tcp.hdr;
  const FlowKey k{{cfg_.ip, h->dport()}, {f.ip.hdr->src(), h->sport()}};
  tcp::InSeg in;
  in.seq = h->seq();
  in.ack = h->ack();
  in.flags = h->flags;
  in.wnd = h->window();
  in.opts = to_seg_opts(f.tcp.opts);
  in.data = f.tcp.payload;
  in.len = f.tcp.payload_len;
  in.ce = (f.ip.hdr->tos & 3) == 3;
  if ((in.flags & tcp::kSyn) && (in.flags & tcp::kFin)) {
    ctr().drop(Drop::kTcpBadFlags);
    BufPool::release(b);
    return;
  }
  std::shared_ptr<TcpCore> c;
  TcpListenSock* l = nullptr;
  tab_lk_.lock();
  if (auto it = conns_.find(k); it != conns_.end()) c = it->second;
  else l = listeners_[k.local.port];
  // A new connection from a listener: only for a pure SYN.
  if (!c && l && (in.flags & (tcp::kSyn | tcp::kAck | tcp::kRst)) == tcp::kSyn) {
    if (l->admit()) {
      c = std::make_shared<TcpCore>(this, k);
      l->add_child(c.get());
      conns_.emplace(k, c);
      tab_lk_.unlock();
      c->note_queue(b->rx_queue);
      c->accept_syn(in, now);
    } else {
      tab_lk_.unlock();
      ctr().drop(Drop::kTcpBacklogFull);
    }
    BufPool::release(b);
    return;
  }
  tab_lk_.unlock();
  if (c) {
    c->note_queue(b->rx_queue);
    if (t_rx_batch.has_room()) {
      c->input_batched(in, now);
      t_rx_batch.add(std::move(c));
    } else {
      c->input(in, now);
    }
  } else {
    ctr().drop(Drop::kTcpNoSocket);
    send_rst(f);
  }
  BufPool::release(b);
}

void SlipStack::begin_rx_batch() noexcept { t_rx_batch.active = true; }

void SlipStack::flush_rx_batch(uint64_t now) noexcept {
  RxBatch& b = t_rx_batch;
  b.active = false;
  for (uint16_t i = 0; i < b.n; i++) {
    b.cores[i]->flush_input(now);
    b.cores[i].reset();
  }
  b.n = 0;
}

// Binary min-heap of cores by deadline, each core knowing its index, so a
// re-time is O(log n) and allocation-free.
void SlipStack::heap_fix(size_t i) noexcept {
  auto& h = tmr_heap_;
  TcpCore* c = h[i];
  while (i > 0 && h[(i - 1) / 2]->tmr_deadline > c->tmr_deadline) {
    h[i] = h[(i - 1) / 2];
    h[i]->tmr_index = i;
    i = (i - 1) / 2;
  }
  for (;;) {
    size_t m = 2 * i + 1;
    if (m >= h.size()) break;
    if (m + 1 < h.size() && h[m + 1]->tmr_deadline < h[m]->tmr_deadline) m++;
    if (h[m]->tmr_deadline >= c->tmr_deadline) break;
    h[i] = h[m];
    h[i]->tmr_index = i;
    i = m;
  }
  h[i] = c;
  c->tmr_index = i;
  next_timer_.store(h[0]->tmr_deadline, std::memory_order_release);
}

void SlipStack::heap_remove(TcpCore* c) noexcept {
  rt::SpinGuard g(tmr_lk_);
  const size_t i = c->tmr_index;
  if (i == SIZE_MAX) return;
  TcpCore* last = tmr_heap_.back();
  tmr_heap_.pop_back();
  c->tmr_index = SIZE_MAX;
  if (last != c) {
    tmr_heap_[i] = last;
    last->tmr_index = i;
    heap_fix(i);
  } else if (tmr_heap_.empty()) {
    next_timer_.store(UINT64_MAX, std::memory_order_release);
  }
}

void SlipStack::timer_update(TcpCore* c, uint64_t deadline) noexcept {
  if (deadline == c->tmr_deadline) return;
  if (deadline == UINT64_MAX) {
    heap_remove(c);
    c->tmr_deadline = UINT64_MAX;
    return;
  }
  rt::SpinGuard g(tmr_lk_);
  c->tmr_deadline = deadline;
  if (c->tmr_index == SIZE_MAX) {
    tmr_heap_.push_back(c);
    c->tmr_index = tmr_heap_.size() - 1;
  }
  heap_fix(c->tmr_index);
}

void SlipStack::run_timers(uint64_t now) noexcept {
  if (next_timer_.load(std::memory_order_acquire) > now) return;  // the common case, without the lock
  for (int budget = 64; budget > 0; budget--) {
    tmr_lk_.lock();
    if (tmr_heap_.empty() || tmr_heap_[0]->tmr_deadline > now) {
      tmr_lk_.unlock();
      return;
    }
    TcpCore* c = tmr_heap_[0];
    tmr_lk_.unlock();
    c->on_timer(now);  // alive: only reap(), under the same queue-0 lock, frees cores
  }
}

}  // namespace slip::net::stack
