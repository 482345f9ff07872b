// The slip stack: per-queue shards polled run to completion by their
// kthreads, receive dispatch, ARP resolution, routing and transmit.
#include "net/stack/slip_stack.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "net/proto/arp.h"
#include "net/proto/ether.h"
#include "net/proto/icmp.h"
#include "net/proto/ipv4.h"
#include "net/stack/sockets.h"
#include "slip/runtime/runtime.h"

namespace slip::net::stack {

using namespace proto;

namespace {

// An owner stamps its shard's polled_ns at most this often: other kthreads
// read the stamp on every poll, and a line rewritten less often stays in
// their caches.
constexpr uint64_t kStampNs = 1'000;
constexpr uint64_t kArpTickNs = 10'000'000;

// Receive bursts of each kthread, of any slip stack in the process: odd
// while it is inside one. Each written by its own kthread, read by the
// sampling (a burst whose neighbour's count moved while it ran overlapped one).
struct alignas(64) BurstSeq {
  std::atomic<uint64_t> seq{0};
  void bump() noexcept { seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }
};
BurstSeq g_bursts[64];
constexpr unsigned kMaxSampled = 16;  // kthreads a sample looks at

// IPv4 identification: per thread, since no datagram is ever fragmented (DF
// is set) and RFC 6864 asks nothing more of atomic datagrams' IDs. Constant
// initialized: a thread_local with a dynamic initializer costs a call on every use.
constinit thread_local uint16_t t_ip_id = 0;

}  // namespace

SlipStack::SlipStack(Nic& nic, const StackConfig& cfg)
    : nic_(nic),
      cfg_(cfg),
      caps_(nic.caps()),
      mac_(caps_.mac),
      arp_(cfg, arp_lk_),
      udp_(std::make_unique<std::atomic<UdpSock*>[]>(65536)),
      listeners_(std::make_unique<std::atomic<TcpListenSock*>[]>(65536)) {
  if (cfg.ip.is_zero()) throw std::invalid_argument("slip stack: no IPv4 address configured (StackConfig::ip)");
  if (cfg.prefix_len > 32) throw std::invalid_argument("slip stack: prefix_len must be 0..32");
  if (cfg.ephemeral_lo == 0 || cfg.ephemeral_lo > cfg.ephemeral_hi)
    throw std::invalid_argument("slip stack: ephemeral port range is empty");
  if (caps_.mtu < kMinMtu)
    throw std::invalid_argument("slip stack: the NIC reports an MTU of " + std::to_string(caps_.mtu) +
                                ", below IPv4's 576: fix the port's MTU");
  n_shards_ = std::max<uint16_t>(1, caps_.rx_queues);
  if (caps_.tx_queues < n_shards_)
    throw std::invalid_argument("slip stack: the NIC has " + std::to_string(caps_.tx_queues) + " transmit and " +
                                std::to_string(n_shards_) +
                                " receive queues: each receive queue's kthread sends on a queue of its own, so "
                                "configure at least as many transmit queues");
  n_kthreads_ = std::max(1u, rt::kthread_count());
  shards_ = std::make_unique<Shard[]>(n_shards_);
  for (uint16_t i = 0; i < n_shards_; i++) {
    shards_[i].index = i;
    shards_[i].owner = i % n_kthreads_;
    shards_[i].timers.reserve(1024);
  }
  // TCP announces what one frame of this port carries (RFC 9293 §3.7.1).
  const uint16_t link_mss = static_cast<uint16_t>(caps_.mtu - 40);
  cfg_.tcp.mss = cfg.tcp.mss ? std::min(cfg.tcp.mss, link_mss) : link_mss;
  for (unsigned i = 0; i < 65; i++) ctrs_.push_back(std::make_unique<NetCounters>());  // foreign + 64 kthreads
  std::random_device rd;
  iss_secret_ = (uint64_t{rd()} << 32) | rd();
  next_ephemeral_.store(static_cast<uint32_t>(iss_secret_ >> 32), std::memory_order_relaxed);
  rx_fd_ = nic.rx_wait_fd();
  if (rx_fd_ >= 0) {
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) rx_fd_ = -1;  // poll, then: still correct
  }
  rt::add_poller(this);
  if (cfg.gratuitous_arp) {
    Shard& s = shards_[0];
    lock_shard(s);
    if (PacketBuf* b = alloc()) {
      if (build_arp_gratuitous(*b, mac_, cfg_.ip) && pad_to_min_frame(*b)) transmit(&s, b);
      else BufPool::release(b);
    }
    flush_tx(s);
    s.lk.unlock();
  }
}

SlipStack::~SlipStack() {
  rt::remove_poller(this);
  if (wake_fd_ >= 0) close(wake_fd_);
  for (uint16_t i = 0; i < n_shards_; i++) {
    Shard& s = shards_[i];
    lock_shard(s);
    s.conns.clear();
    flush_tx(s);  // the NIC outlives the stack: queued frames still go out
    s.lk.unlock();
  }
}

NetCounters& SlipStack::ctr() noexcept {
  const size_t i = static_cast<size_t>(rt::kthread_index() + 1);
  return *ctrs_[i < ctrs_.size() ? i : 0];
}

namespace {

void add(std::atomic<uint64_t>& to, const std::atomic<uint64_t>& from) {
  NetCounters::inc(to, from.load(std::memory_order_relaxed));
}

void add_all(NetCounters& out, const NetCounters& c) {
  for (size_t i = 0; i < c.drops.size(); i++) add(out.drops[i], c.drops[i]);
  for (auto f : {&NetCounters::rx_frames, &NetCounters::rx_bytes, &NetCounters::tx_frames, &NetCounters::tx_bytes,
                 &NetCounters::arp_requests_sent, &NetCounters::arp_replies_sent, &NetCounters::icmp_echo_replies,
                 &NetCounters::tx_no_route, &NetCounters::tx_arp_pending_drops, &NetCounters::tx_ring_full,
                 &NetCounters::tx_tcp_by_ref, &NetCounters::tx_tcp_copied, &NetCounters::rx_wakeups})
    add(out.*f, c.*f);
}

}  // namespace

void SlipStack::counters(NetCounters& out) const {
  for (const auto& c : ctrs_) add_all(out, *c);
  add(out.rx_stack_locks, rx_stack_locks_);
}

bool SlipStack::kthread_counters(unsigned k, NetCounters& out) const {
  if (k + 1 >= ctrs_.size()) return false;
  add_all(out, *ctrs_[k + 1]);
  return true;
}

std::vector<QueueStats> SlipStack::queue_stats() const {
  std::vector<QueueStats> v(n_shards_);
  for (uint16_t i = 0; i < n_shards_; i++) {
    const ShardCounters& c = shards_[i].ctr;
    QueueStats& q = v[i];
    q.owner_kthread = shards_[i].owner;
    q.rx_frames = c.rx_frames.load(std::memory_order_relaxed);
    q.rx_stolen = c.rx_stolen.load(std::memory_order_relaxed);
    q.rx_bursts = c.rx_bursts.load(std::memory_order_relaxed);
    q.bursts_sampled = c.sampled.load(std::memory_order_relaxed);
    q.bursts_concurrent = c.concurrent.load(std::memory_order_relaxed);
    q.tcp_from_other_queue = c.tcp_from_other_queue.load(std::memory_order_relaxed);
    q.lock_waits = c.lock_waits.load(std::memory_order_relaxed);
  }
  return v;
}

PacketBuf* SlipStack::alloc() noexcept {
  PacketBuf* b = nic_.alloc_tx();
  if (!b) ctr().drop(Drop::kNoBuffer);
  return b;
}

PacketBuf* SlipStack::alloc_send_data() noexcept { return nic_.alloc_tx_data(); }

uint32_t SlipStack::new_iss(const FlowKey& k) noexcept {
  // RFC 6528: a keyed hash of the 4-tuple plus a clock that ticks every 4 us.
  return static_cast<uint32_t>(FlowHash{}(k) ^ iss_secret_) + static_cast<uint32_t>(now_ns() / 4000);
}

Shard& SlipStack::local_shard() noexcept {
  const int k = rt::kthread_index();
  return shards_[k >= 0 ? static_cast<unsigned>(k) % n_shards_ : 0];
}

void SlipStack::lock_shard(Shard& s) noexcept {
  if (s.lk.try_lock()) return;
  s.ctr.lock_waits.fetch_add(1, std::memory_order_relaxed);
  s.lk.lock();
}

// ---- transmit ------------------------------------------------------------------

// Frames of a shard's holder wait in the shard and leave in bursts: at
// kBurst, at the end of each poll and at the end of each application call,
// so a bulk sender pays one NIC doorbell per burst instead of per segment.
void SlipStack::transmit(Shard* s, PacketBuf* b) noexcept {
  if (!s) return send_now(b);
  s->tx[s->n_tx++] = b;
  if (s->n_tx == kBurst) flush_tx(*s);
}

void SlipStack::flush_tx(Shard& s) noexcept {
  if (s.n_tx == 0) return;
  tx_out(s, s.tx, s.n_tx);
  s.n_tx = 0;
}

// A frame from a thread that holds no shard (a uthread's datagram): out at
// once on its kthread's queue.
void SlipStack::send_now(PacketBuf* b) noexcept { send_on(local_shard(), b); }

// Out at once on s's transmit queue, without s's lock (the queue has its own).
void SlipStack::send_on(Shard& s, PacketBuf* b) noexcept { tx_out(s, &b, 1); }

// Hands n frames to s's transmit queue under its lock and counts them; what
// the NIC refused is released (TCP sends it again).
void SlipStack::tx_out(Shard& s, PacketBuf** bufs, uint16_t n) noexcept {
  NetCounters& c = ctr();
  size_t bytes = 0;
  for (uint16_t i = 0; i < n; i++) bytes += bufs[i]->chain_len();
  uint16_t sent;
  {
    rt::SpinParkGuard g(s.tx_lk);
    sent = nic_.tx_burst(s.index, bufs, n);
  }
  for (uint16_t i = sent; i < n; i++) {
    bytes -= bufs[i]->chain_len();
    NetCounters::inc(c.tx_ring_full);
    BufPool::release(bufs[i]);
  }
  NetCounters::inc(c.tx_frames, sent);
  NetCounters::inc(c.tx_bytes, bytes);
}

Ipv4Addr SlipStack::next_hop(Ipv4Addr dst) const noexcept {
  const uint32_t mask = cfg_.prefix_len == 0 ? 0 : ~uint32_t{0} << (32 - cfg_.prefix_len);
  if ((dst.v & mask) == (cfg_.ip.v & mask) || dst.is_broadcast()) return dst;
  return cfg_.gateway;  // zero when there is no default route
}

void SlipStack::ip_output(Shard* s, PacketBuf* b, Ipv4Addr dst, uint8_t proto, bool ect) noexcept {
  Ipv4Tx tx;
  tx.src = cfg_.ip;
  tx.dst = dst;
  tx.proto = proto;
  tx.tos = ect ? 0x02 : 0;  // ECT(0)
  if (!push_ipv4(*b, tx, t_ip_id, caps_.tx_ip_csum)) {
    ctr().drop(Drop::kNoBuffer);
    BufPool::release(b);
    return;
  }
  const Ipv4Addr hop = next_hop(dst);
  if (hop.is_zero()) {
    NetCounters::inc(ctr().tx_no_route);
    BufPool::release(b);
    return;
  }
  MacAddr dmac = MacAddr::broadcast();
  if (!hop.is_broadcast()) {
    const uint64_t now = now_ns();
    bool refresh = false;
    if (!arp_.lookup(hop, now, &dmac, &refresh)) {
      b->rx_queue = s ? s->index : local_shard().index;  // where it leaves once resolved
      switch (arp_.queue(hop, b, now, &dmac)) {
        case NeighborTable::Queued::kFirst:
          arp_request(s, hop);
          return;
        case NeighborTable::Queued::kQueued:
          return;
        case NeighborTable::Queued::kDropped:
        case NeighborTable::Queued::kFull:
          NetCounters::inc(ctr().tx_arp_pending_drops);
          return;
        case NeighborTable::Queued::kResolved:
          break;
      }
    } else if (refresh) {
      arp_request(s, hop);
    }
  }
  if (!push_ether(*b, dmac, mac_, kEtherTypeIpv4) || !pad_to_min_frame(*b)) {
    ctr().drop(Drop::kNoBuffer);
    BufPool::release(b);
    return;
  }
  transmit(s, b);
}

// ---- ARP ---------------------------------------------------------------------------

void SlipStack::arp_request(Shard* s, Ipv4Addr target) noexcept {
  PacketBuf* b = alloc();
  if (!b) return;
  if (!build_arp_request(*b, mac_, cfg_.ip, target) || !pad_to_min_frame(*b)) {
    BufPool::release(b);
    return;
  }
  NetCounters::inc(ctr().arp_requests_sent);
  transmit(s, b);
}

// Records ip -> mac and sends the frames that waited for it, each on the
// queue it was built for (a connection's frames stay on its home queue).
void SlipStack::arp_learn(Shard* s, Ipv4Addr ip, MacAddr mac, bool create) noexcept {
  NeighborTable::Ready ready;
  const size_t n = arp_.learn(ip, mac, create, now_ns(), ready);
  for (size_t i = 0; i < n; i++) {
    PacketBuf* b = ready[i];
    if (!push_ether(*b, mac, mac_, kEtherTypeIpv4) || !pad_to_min_frame(*b)) {
      BufPool::release(b);
      continue;
    }
    const uint16_t q = b->rx_queue < n_shards_ ? b->rx_queue : 0;
    if (s && s->index == q) transmit(s, b);
    else send_on(shards_[q], b);
  }
}

// Retries and expiries of ARP requests, every 10 ms, by whichever shard's
// housekeeping comes first.
void SlipStack::arp_tick(Shard& s, uint64_t now) noexcept {
  uint64_t due = next_arp_tick_.load(std::memory_order_relaxed);
  if (now < due || !next_arp_tick_.compare_exchange_strong(due, now + kArpTickNs, std::memory_order_relaxed)) return;
  thread_local std::vector<Ipv4Addr> retry;
  thread_local std::vector<PacketBuf*> dead;
  retry.clear();
  dead.clear();
  arp_.tick(now, retry, dead);
  for (PacketBuf* b : dead) {
    NetCounters::inc(ctr().tx_arp_pending_drops);
    BufPool::release(b);
  }
  for (Ipv4Addr ip : retry) arp_request(&s, ip);
}

void SlipStack::rx_arp(Shard& s, PacketBuf* b, const ArpPacket& a) noexcept {
  const bool for_us = a.tpa() == cfg_.ip;
  if (!a.spa().is_zero()) arp_learn(&s, a.spa(), a.sha, for_us);  // RFC 826: merge, add if for us
  if (a.op() == kArpOpRequest && for_us) {
    const MacAddr req_mac = a.sha;
    const Ipv4Addr req_ip = a.spa();
    BufPool::release(b);
    if (PacketBuf* r = alloc()) {
      if (build_arp_reply(*r, mac_, cfg_.ip, req_mac, req_ip) && pad_to_min_frame(*r)) {
        NetCounters::inc(ctr().arp_replies_sent);
        transmit(&s, r);
      } else {
        BufPool::release(r);
      }
    }
    return;
  }
  if (!for_us && a.op() == kArpOpRequest) ctr().drop(Drop::kArpNotForUs);
  BufPool::release(b);
}

// ---- receive -----------------------------------------------------------------------

void SlipStack::rx_icmp(Shard& s, PacketBuf* b, const RxFrame& f) noexcept {
  const bool echo = f.icmp.hdr->type == kIcmpEchoRequest && !b->next;  // f points into b: read it first
  if (echo && caps_.rx_readonly && !(b = writable_copy(b))) return;
  if (echo && icmp_echo_reply_in_place(*b, mac_, cfg_.ip)) {
    NetCounters::inc(ctr().icmp_echo_replies);
    b->offload_flags = 0;
    transmit(&s, b);
    return;
  }
  ctr().drop(Drop::kIcmpType);
  BufPool::release(b);
}

PacketBuf* SlipStack::writable_copy(PacketBuf* b) noexcept {
  PacketBuf* c = alloc();
  uint8_t* p = c ? c->append(b->len) : nullptr;
  if (p) {
    std::memcpy(p, b->data, b->len);
  } else if (c) {
    ctr().drop(Drop::kNoBuffer);
    BufPool::release(c);
    c = nullptr;
  }
  BufPool::release(b);
  return c;
}

void SlipStack::send_port_unreachable(Shard& s, const RxFrame& f) noexcept {
  // RFC 1122 §3.2.2: never about broadcasts.
  if (f.ip.hdr->dst() != cfg_.ip) return;
  PacketBuf* b = alloc();
  if (!b) return;
  if (!build_icmp_unreach(*b, kIcmpCodePortUnreach, reinterpret_cast<const uint8_t*>(f.ip.hdr),
                          f.ip.hdr_len + f.ip.payload_len)) {
    BufPool::release(b);
    return;
  }
  ip_output(&s, b, f.ip.hdr->src(), kIpProtoIcmp);
}

// The socket is looked up without a lock: it leaves the table before
// synchronize_pollers() and is freed only after it, so it outlives this poll.
void SlipStack::rx_udp(Shard& s, PacketBuf* b, const RxFrame& f) noexcept {
  UdpSock* sock = udp_[f.udp.hdr->dport()].load(std::memory_order_seq_cst);
  if (!sock) {
    ctr().drop(Drop::kUdpNoPort);
    send_port_unreachable(s, f);
    BufPool::release(b);
    return;
  }
  const Endpoint from{f.ip.hdr->src(), f.udp.hdr->sport()};
  b->adj(static_cast<size_t>(f.udp.payload - b->data));
  b->len = f.udp.payload_len;
  if (sock->serves()) {
    sock->call(b->data, b->len, from);
    BufPool::release(b);
    return;
  }
  sock->deliver(b, from);
}

void SlipStack::rx_frame(Shard& s, PacketBuf* b, uint64_t now) noexcept {
  NetCounters& c = ctr();
  NetCounters::inc(c.rx_frames);
  NetCounters::inc(c.rx_bytes, b->len);
  if (b->next) {  // the parsers want one contiguous segment
    c.drop(Drop::kNoBuffer);
    BufPool::release(b);
    return;
  }
  const Parsed<RxFrame> p = decode_frame(*b);
  if (!p) {
    c.drop(p.drop);
    BufPool::release(b);
    return;
  }
  const RxFrame& f = p.view;
  const MacAddr& dst = f.eth.hdr->dst;
  if (dst != mac_ && !dst.is_broadcast() && !dst.is_multicast()) {
    c.drop(Drop::kEthNotForUs);
    BufPool::release(b);
    return;
  }
  if (f.arp) {
    rx_arp(s, b, *f.arp);
    return;
  }
  const Ipv4Addr ipdst = f.ip.hdr->dst();
  if (ipdst != cfg_.ip && !(ipdst.is_broadcast() && f.ip.hdr->proto == kIpProtoUdp)) {
    c.drop(Drop::kIpNotForUs);
    BufPool::release(b);
    return;
  }
  const IpRxScope ip_rx;  // from here on no stack-wide lock (StackLock counts any)
  switch (f.ip.hdr->proto) {
    case kIpProtoIcmp:
      rx_icmp(s, b, f);
      return;
    case kIpProtoUdp:
      rx_udp(s, b, f);
      return;
    case kIpProtoTcp:
      rx_tcp(s, b, f, now);
      return;
    default:
      c.drop(Drop::kIpProto);
      BufPool::release(b);
  }
}

// ---- polling -----------------------------------------------------------------------

void SlipStack::housekeeping(Shard& s, uint64_t now) noexcept {
  run_timers(s, now);
  arp_tick(s, now);
  reap(s);
}

// Whether another kthread was inside a burst at some moment of this one
// (in one at its start, or started or ended one before its end): sampled,
// to show that receive paths run side by side.
void SlipStack::note_concurrency(Shard& s, unsigned kthread, const uint64_t* seen) noexcept {
  NetCounters::inc(s.ctr.sampled);
  for (unsigned k = 0; k < n_kthreads_ && k < kMaxSampled; k++)
    if (k != kthread && ((seen[k] & 1) || g_bursts[k].seq.load(std::memory_order_relaxed) != seen[k])) {
      NetCounters::inc(s.ctr.concurrent);
      return;
    }
}

unsigned SlipStack::run_shard(Shard& s, unsigned kthread) noexcept {
  const uint64_t now = now_ns();  // read under the lock: the shard's time only moves forward
  const bool own = s.owner == kthread;
  RxContext& cx = t_rx;
  PacketBuf* bufs[kBurst];
  const uint16_t got = nic_.rx_burst(s.index, bufs, kBurst);
  if (got) {
    cx.stack = this;
    cx.shard = &s;
    BurstSeq& mine = g_bursts[kthread % 64];
    mine.bump();
    uint64_t seen[kMaxSampled];
    const bool sample = n_kthreads_ > 1 && ++s.bursts % kSampleEvery == 0;
    if (sample)
      for (unsigned k = 0; k < n_kthreads_ && k < kMaxSampled; k++)
        seen[k] = g_bursts[k].seq.load(std::memory_order_relaxed);
    NetCounters::inc(s.ctr.rx_bursts);
    NetCounters::inc(s.ctr.rx_frames, got);
    if (!own) NetCounters::inc(s.ctr.rx_stolen, got);
    cx.batching = true;
    for (uint16_t j = 0; j < got; j++) rx_frame(s, bufs[j], now);
    flush_rx_batch(now);
    if (sample) note_concurrency(s, kthread, seen);
    mine.bump();
    cx.shard = nullptr;
  }
  // Nothing due is the common case of a poll: three loads decide it here.
  if (s.next_timer.load(std::memory_order_relaxed) <= now || next_arp_tick_.load(std::memory_order_relaxed) <= now ||
      !s.dead.empty())
    housekeeping(s, now);
  if (s.n_tx) flush_tx(s);
  s.lk.unlock();
  if (got && cx.n_foreign) run_foreign();
  return got;
}

// Kthread k polls the shards it owns (k, k + kthreads, ...), then those of
// owners that are parked or have not polled for steal_after_ns: a queue whose
// kthread is asleep or stuck in a long uthread is not left behind, and in
// steady state every kthread polls only its own.
unsigned SlipStack::poll(unsigned kthread) noexcept {
  unsigned n = 0;
  if (n_kthreads_ == 1) {  // every queue is this kthread's: nobody to tell, nothing to steal
    for (uint16_t i = 0; i < n_shards_; i++)
      if (shards_[i].lk.try_lock()) n += run_shard(shards_[i], kthread);
    return n;
  }
  const uint64_t now = now_ns();
  for (unsigned i = kthread; i < n_shards_; i += n_kthreads_) {
    Shard& s = shards_[i];
    // Stamped before the lock: an owner that finds a stealer inside is still
    // attending to its queue, and the stealer should leave it be.
    if (now - s.stamped_ns >= kStampNs) {
      s.polled_ns.store(now, std::memory_order_relaxed);
      s.stamped_ns = now;
    }
    if (s.lk.try_lock()) n += run_shard(s, kthread);
  }
  for (uint16_t i = 0; i < n_shards_; i++) {
    Shard& s = shards_[i];
    if (s.owner == kthread || s.polled_ns.load(std::memory_order_relaxed) + cfg_.steal_after_ns > now) continue;
    if (s.lk.try_lock()) n += run_shard(s, kthread);
  }
  return n;
}

// Its queues are free for the taking until it polls again.
void SlipStack::parking(unsigned kthread) noexcept {
  for (unsigned i = kthread; i < n_shards_; i += n_kthreads_) {
    shards_[i].polled_ns.store(0, std::memory_order_relaxed);
    shards_[i].stamped_ns = 0;
  }
}

uint64_t SlipStack::max_park_ns() const noexcept {
  if (rx_fd_ < 0) return cfg_.max_park_ns;
  // Frames wake us; only the stack's own clocks (TCP timers, ARP ageing and
  // retries) must still be kept.
  uint64_t due = next_arp_tick_.load(std::memory_order_relaxed);
  for (uint16_t i = 0; i < n_shards_; i++) due = std::min(due, shards_[i].next_timer.load(std::memory_order_relaxed));
  const uint64_t now = now_ns();
  return due > now ? due - now : 0;
}

// Arm, look once more (a frame that came before arming raised no event),
// then sleep until a frame, interrupt() or the timeout.
unsigned SlipStack::block(unsigned kthread, uint64_t timeout_ns) noexcept {
  nic_.rx_arm(true);
  const unsigned n = poll(kthread);
  bool woke_early = false;
  if (n == 0 && timeout_ns != 0) {
    pollfd fds[2] = {{rx_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    timespec ts{static_cast<time_t>(timeout_ns / 1000000000), static_cast<long>(timeout_ns % 1000000000)};
    const int r = ppoll(fds, 2, timeout_ns == UINT64_MAX ? nullptr : &ts, nullptr);
    if (r > 0 && fds[1].revents) {
      uint64_t v;
      (void)!read(wake_fd_, &v, sizeof v);
    }
    // A frame, interrupt(), or a signal (net_tap's rx signal comes to the
    // sleeping thread, and may land before the fd polls ready).
    woke_early = r != 0;
  }
  nic_.rx_arm(false);
  const unsigned m = poll(kthread);
  if (woke_early && m) NetCounters::inc(ctr().rx_wakeups);
  return n + m;
}

void SlipStack::interrupt() noexcept {
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
}

}  // namespace slip::net::stack
