// The slip stack's TCP demultiplexing: each shard's connection table,
// segments that arrived on another queue than their flow's, new passive
// connections, dialing with a port that steers replies home, RSTs for
// strays, and each shard's timer heap.
#include "net/proto/ether.h"
#include "net/proto/ipv4.h"
#include "net/proto/tcp_wire.h"
#include "net/stack/sockets.h"
#include "slip/runtime/runtime.h"

namespace slip::net::stack {

using namespace proto;

namespace {

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

tcp::InSeg to_in_seg(const RxFrame& f) noexcept {
  const TcpHdr* h = f.tcp.hdr;
  tcp::InSeg in;
  in.seq = h->seq();
  in.ack = h->ack();
  in.flags = h->flags;
  in.wnd = h->window();
  in.opts = to_seg_opts(f.tcp.opts);
  in.data = f.tcp.payload;
  in.len = f.tcp.payload_len;
  in.ce = (f.ip.hdr->tos & 3) == 3;
  return in;
}

}  // namespace

uint16_t SlipStack::home_of(const FlowKey& k) const noexcept {
  if (n_shards_ == 1) return 0;
  const FlowTuple t{k.local.ip, k.remote.ip, k.local.port, k.remote.port, kIpProtoTcp};
  const uint16_t q = nic_.rx_queue_of(t);
  return q < n_shards_ ? q : static_cast<uint16_t>(q % n_shards_);
}

// A segment on shard s: its flow's connection when s is the flow's home; a
// new connection (or a RST) when the flow is new to its home; otherwise it
// waits, still parsed, for run_foreign() to hand it to its home shard.
void SlipStack::rx_tcp(Shard& s, PacketBuf* b, const RxFrame& f, uint64_t now) noexcept {
  const TcpHdr* h = f.tcp.hdr;
  const FlowKey k{{cfg_.ip, h->dport()}, {f.ip.hdr->src(), h->sport()}};
  if ((h->flags & tcp::kSyn) && (h->flags & tcp::kFin)) {
    ctr().drop(Drop::kTcpBadFlags);
    BufPool::release(b);
    return;
  }
  const auto it = s.conns.find(k);
  if (it == s.conns.end()) {
    if (const uint16_t home = home_of(k); home != s.index) {
      RxContext& cx = t_rx;
      cx.foreign[cx.n_foreign++] = RxContext::Foreign{b, f, home};  // a burst brings at most kBurst
      return;
    }
    tcp_new_flow(s, b, f, k, now);
    return;
  }
  TcpCore* c = it->second.get();  // the table's reference: only reap(), under s.lk, drops it
  const tcp::InSeg in = to_in_seg(f);
  RxContext& cx = t_rx;
  if (cx.batching && cx.n_batch < kBurst) {
    c->input_batched(in, now);
    if (std::find(cx.batch, cx.batch + cx.n_batch, c) == cx.batch + cx.n_batch) cx.batch[cx.n_batch++] = c;
  } else {
    c->input(in, now);
  }
  BufPool::release(b);
}

// Sends what a burst's segments let each connection send, once the whole
// burst is in: a run of segments is acknowledged once (see Tcb::input).
void SlipStack::flush_rx_batch(uint64_t now) noexcept {
  RxContext& cx = t_rx;
  cx.batching = false;
  for (uint16_t i = 0; i < cx.n_batch; i++) cx.batch[i]->flush_input(now);
  cx.n_batch = 0;
}

// Segments whose flows live on other shards, each group under its home's
// lock (taken after the polled shard's was released: shard locks never
// nest). Frames of one home keep their order.
void SlipStack::run_foreign() noexcept {
  RxContext& cx = t_rx;
  for (uint16_t i = 0; i < cx.n_foreign; i++) {
    if (!cx.foreign[i].buf) continue;
    Shard& s = shards_[cx.foreign[i].home];
    lock_shard(s);
    const uint64_t now = now_ns();
    cx.shard = &s;
    cx.batching = true;
    {
      const IpRxScope ip_rx;
      for (uint16_t j = i; j < cx.n_foreign; j++) {
        RxContext::Foreign& e = cx.foreign[j];
        if (!e.buf || e.home != s.index) continue;
        NetCounters::inc(s.ctr.tcp_from_other_queue);
        rx_tcp(s, e.buf, e.frame, now);
        e.buf = nullptr;
      }
    }
    flush_rx_batch(now);
    flush_tx(s);
    cx.shard = nullptr;
    s.lk.unlock();
  }
  cx.n_foreign = 0;
}

// A segment of a flow its home shard does not know: a pure SYN to a
// listener makes a connection; anything else is answered with RST.
void SlipStack::tcp_new_flow(Shard& s, PacketBuf* b, const RxFrame& f, const FlowKey& k, uint64_t now) noexcept {
  const uint8_t flags = f.tcp.hdr->flags;
  // Looked up without a lock, like UDP sockets (see rx_udp).
  TcpListenSock* l = listeners_[k.local.port].load(std::memory_order_seq_cst);
  if (l && (flags & (tcp::kSyn | tcp::kAck | tcp::kRst)) == tcp::kSyn) {
    if (l->admit()) {
      auto c = std::make_shared<TcpCore>(this, &s, k);
      l->add_child(s, c.get());
      s.conns.emplace(k, c);
      c->accept_syn(to_in_seg(f), now);
    } else {
      ctr().drop(Drop::kTcpBacklogFull);
    }
    BufPool::release(b);
    return;
  }
  ctr().drop(Drop::kTcpNoSocket);
  send_rst(s, f);
  BufPool::release(b);
}

void SlipStack::send_rst(Shard& s, const RxFrame& f) noexcept {
  tcp::OutSeg o;
  if (!tcp::Tcb::rst_for(to_in_seg(f), &o)) return;
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
  ip_output(&s, b, tx.dst.ip, kIpProtoTcp);
}

// The connection lives on the shard of the dialing kthread: its port is one
// whose flow the NIC steers to that kthread's queue (as Caladan and eRPC
// pick theirs), so replies wake the dialer where it runs. A thread outside
// the runtime takes the first free port, wherever it steers.
Result<std::unique_ptr<TcpConn>> SlipStack::tcp_dial(Endpoint remote, uint64_t deadline) {
  if (remote.port == 0 || remote.ip.is_zero()) return err(EINVAL);
  const int k = rt::kthread_index();
  const int want = k >= 0 ? static_cast<int>(static_cast<unsigned>(k) % n_shards_) : -1;
  const uint32_t range = uint32_t{cfg_.ephemeral_hi} - cfg_.ephemeral_lo + 1;
  std::shared_ptr<TcpCore> c;
  for (uint32_t tries = 0; !c && tries < range * 4; tries++) {
    const uint16_t p = ephemeral_candidate();
    if (listeners_[p].load(std::memory_order_relaxed)) continue;
    const FlowKey key{{cfg_.ip, p}, remote};
    const uint16_t home = home_of(key);
    if (want >= 0 && home != want) continue;
    Shard& s = shards_[home];
    lock_shard(s);
    if (!s.conns.count(key)) {
      c = std::make_shared<TcpCore>(this, &s, key);
      s.conns.emplace(key, c);
    }
    s.lk.unlock();
  }
  if (!c) return err(EADDRNOTAVAIL);
  Result<bool> r = c->connect(deadline);
  if (!r) return err(r.error());
  return std::unique_ptr<TcpConn>(std::make_unique<TcpConnHandle>(std::move(c)));
}

void SlipStack::tcp_reap(Shard& s, TcpCore* c) noexcept { s.dead.push_back(c); }

void SlipStack::reap(Shard& s) noexcept {
  for (TcpCore* c : s.dead) {
    const auto it = s.conns.find(c->key());
    if (it == s.conns.end() || it->second.get() != c) continue;
    heap_remove(s, c);
    const std::shared_ptr<TcpCore> last = std::move(it->second);  // freed here unless a handle still holds it
    s.conns.erase(it);
  }
  s.dead.clear();
}

// Each shard's binary min-heap of connections by deadline, each connection
// knowing its index, so a re-time is O(log n) and allocation-free.
void SlipStack::heap_fix(Shard& s, size_t i) noexcept {
  auto& h = s.timers;
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
  s.next_timer.store(h[0]->tmr_deadline, std::memory_order_release);
}

void SlipStack::heap_remove(Shard& s, TcpCore* c) noexcept {
  const size_t i = c->tmr_index;
  if (i == SIZE_MAX) return;
  TcpCore* last = s.timers.back();
  s.timers.pop_back();
  c->tmr_index = SIZE_MAX;
  if (last != c) {
    s.timers[i] = last;
    last->tmr_index = i;
    heap_fix(s, i);
  } else if (s.timers.empty()) {
    s.next_timer.store(UINT64_MAX, std::memory_order_release);
  }
}

void SlipStack::timer_update(Shard& s, TcpCore* c, uint64_t deadline) noexcept {
  if (deadline == c->tmr_deadline) return;
  if (deadline == UINT64_MAX) {
    heap_remove(s, c);
    c->tmr_deadline = UINT64_MAX;
    return;
  }
  c->tmr_deadline = deadline;
  if (c->tmr_index == SIZE_MAX) {
    s.timers.push_back(c);
    c->tmr_index = s.timers.size() - 1;
  }
  heap_fix(s, c->tmr_index);
}

void SlipStack::run_timers(Shard& s, uint64_t now) noexcept {
  if (s.next_timer.load(std::memory_order_relaxed) > now) return;  // the common case
  for (int budget = 64; budget > 0 && !s.timers.empty() && s.timers[0]->tmr_deadline <= now; budget--)
    s.timers[0]->on_timer(now);  // alive: only reap(), under the same lock, frees connections
}

}  // namespace slip::net::stack
