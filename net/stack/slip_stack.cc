// The slip stack: receive dispatch run to completion on the polling kthread,
// ARP resolution with a pending queue, routing, and transmit.
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

SlipStack::SlipStack(Nic& nic, const StackConfig& cfg)
    : nic_(nic), cfg_(cfg), caps_(nic.caps()), mac_(caps_.mac), udp_(65536, nullptr), listeners_(65536, nullptr) {
  rx_queues_ = std::max<uint16_t>(1, caps_.rx_queues);
  rxq_lk_ = std::make_unique<rt::SpinLock[]>(rx_queues_);
  tx_queues_ = std::max<uint16_t>(1, caps_.tx_queues);
  txb_ = std::make_unique<TxBatch[]>(tx_queues_);
  if (cfg.ip.is_zero()) throw std::invalid_argument("slip stack: no IPv4 address configured (StackConfig::ip)");
  if (cfg.prefix_len > 32) throw std::invalid_argument("slip stack: prefix_len must be 0..32");
  if (cfg.ephemeral_lo == 0 || cfg.ephemeral_lo > cfg.ephemeral_hi)
    throw std::invalid_argument("slip stack: ephemeral port range is empty");
  if (caps_.mtu < kMinMtu)
    throw std::invalid_argument("slip stack: the NIC reports an MTU of " + std::to_string(caps_.mtu) +
                                ", below IPv4's 576: fix the port's MTU");
  // TCP announces what one frame of this port carries (RFC 9293 §3.7.1).
  const uint16_t link_mss = static_cast<uint16_t>(caps_.mtu - 40);
  cfg_.tcp.mss = cfg.tcp.mss ? std::min(cfg.tcp.mss, link_mss) : link_mss;
  for (unsigned i = 0; i < 65; i++) ctrs_.push_back(std::make_unique<NetCounters>());  // foreign + 64 kthreads
  std::random_device rd;
  iss_secret_ = (uint64_t{rd()} << 32) | rd();
  next_ephemeral_ = static_cast<uint16_t>(cfg.ephemeral_lo + iss_secret_ % (cfg.ephemeral_hi - cfg.ephemeral_lo + 1));
  tmr_heap_.reserve(4096);
  for (const auto& [ip, mac] : cfg.static_arp) {
    ArpEntry& e = arp_[ip.v];
    e.mac = mac;
    e.resolved = e.permanent = true;
  }
  rx_fd_ = nic.rx_wait_fd();
  if (rx_fd_ >= 0) {
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) rx_fd_ = -1;  // poll, then: still correct
  }
  rt::add_poller(this);
  if (cfg.gratuitous_arp) {
    if (PacketBuf* b = alloc()) {
      if (build_arp_gratuitous(*b, mac_, cfg_.ip) && pad_to_min_frame(*b)) transmit(b);
      else BufPool::release(b);
    }
    flush_tx();
  }
}

SlipStack::~SlipStack() {
  rt::remove_poller(this);
  if (wake_fd_ >= 0) close(wake_fd_);
  for (auto& [ip, e] : arp_)
    for (PacketBuf* b : e.pending) BufPool::release(b);
  conns_.clear();
  flush_tx();  // the NIC outlives the stack: queued frames still go out
}

NetCounters& SlipStack::ctr() noexcept {
  const size_t i = static_cast<size_t>(rt::kthread_index() + 1);
  return *ctrs_[i < ctrs_.size() ? i : 0];
}

void SlipStack::counters(NetCounters& out) const {
  for (const auto& c : ctrs_) {
    for (size_t i = 0; i < c->drops.size(); i++) NetCounters::inc(out.drops[i], c->drops[i].load());
    NetCounters::inc(out.rx_frames, c->rx_frames.load());
    NetCounters::inc(out.rx_bytes, c->rx_bytes.load());
    NetCounters::inc(out.tx_frames, c->tx_frames.load());
    NetCounters::inc(out.tx_bytes, c->tx_bytes.load());
    NetCounters::inc(out.arp_requests_sent, c->arp_requests_sent.load());
    NetCounters::inc(out.arp_replies_sent, c->arp_replies_sent.load());
    NetCounters::inc(out.icmp_echo_replies, c->icmp_echo_replies.load());
    NetCounters::inc(out.tx_no_route, c->tx_no_route.load());
    NetCounters::inc(out.tx_arp_pending_drops, c->tx_arp_pending_drops.load());
    NetCounters::inc(out.tx_ring_full, c->tx_ring_full.load());
    NetCounters::inc(out.tx_tcp_by_ref, c->tx_tcp_by_ref.load());
    NetCounters::inc(out.tx_tcp_copied, c->tx_tcp_copied.load());
    NetCounters::inc(out.rx_wakeups, c->rx_wakeups.load());
  }
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

// Frames queue per stack and leave in bursts: at kBurst, at the end of each
// poll, and at the end of each application call that may emit (flush_tx), so
// a bulk sender pays one NIC doorbell per burst instead of per segment.
void SlipStack::transmit(PacketBuf* b) noexcept {
  const uint16_t q = b->rx_queue < tx_queues_ ? b->rx_queue : 0;
  TxBatch& t = txb_[q];
  rt::SpinGuard g(t.lk);
  t.q[t.n++] = b;
  t.queued.store(true, std::memory_order_release);
  if (t.n == kBurst) flush_tx_locked(q);
}

// Every poll ends here, mostly with nothing queued: look before locking. A
// frame another thread queued meanwhile is not stranded, as every path that
// queues one flushes on its own thread afterwards.
void SlipStack::flush_tx() noexcept {
  for (uint16_t q = 0; q < tx_queues_; q++) {
    TxBatch& t = txb_[q];
    if (!t.queued.load(std::memory_order_acquire)) continue;
    rt::SpinGuard g(t.lk);
    if (t.n) flush_tx_locked(q);
  }
}

void SlipStack::flush_tx_locked(uint16_t q) noexcept {
  TxBatch& t = txb_[q];
  NetCounters& c = ctr();
  size_t bytes = 0;
  for (uint16_t i = 0; i < t.n; i++) bytes += t.q[i]->chain_len();
  const uint16_t sent = nic_.tx_burst(q, t.q, t.n);
  for (uint16_t i = sent; i < t.n; i++) {
    bytes -= t.q[i]->chain_len();
    NetCounters::inc(c.tx_ring_full);
    BufPool::release(t.q[i]);
  }
  NetCounters::inc(c.tx_frames, sent);
  NetCounters::inc(c.tx_bytes, bytes);
  t.n = 0;
  t.queued.store(false, std::memory_order_relaxed);
}

Ipv4Addr SlipStack::next_hop(Ipv4Addr dst) const noexcept {
  const uint32_t mask = cfg_.prefix_len == 0 ? 0 : ~uint32_t{0} << (32 - cfg_.prefix_len);
  if ((dst.v & mask) == (cfg_.ip.v & mask) || dst.is_broadcast()) return dst;
  return cfg_.gateway;  // zero when there is no default route
}

void SlipStack::ip_output(PacketBuf* b, Ipv4Addr dst, uint8_t proto, bool ect) noexcept {
  Ipv4Tx tx;
  tx.src = cfg_.ip;
  tx.dst = dst;
  tx.proto = proto;
  tx.tos = ect ? 0x02 : 0;  // ECT(0)
  uint16_t id = ip_id_.fetch_add(1, std::memory_order_relaxed);
  if (!push_ipv4(*b, tx, id, caps_.tx_ip_csum)) {
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
    arp_lk_.lock();
    ArpEntry& e = arp_[hop.v];
    const uint64_t now = now_ns();
    if (!(e.resolved && (e.permanent || now < e.expires))) {
      const bool first = e.pending.empty() && e.retries == 0;
      if (e.pending.size() < kArpPending) {
        e.pending.push_back(b);
      } else {
        NetCounters::inc(ctr().tx_arp_pending_drops);
        BufPool::release(b);
      }
      if (first) {
        e.retries = 1;
        e.next_retry = now + cfg_.arp_retry_ns;
      }
      arp_lk_.unlock();
      if (first) arp_request(hop);
      return;
    }
    dmac = e.mac;
    arp_lk_.unlock();
  }
  if (!push_ether(*b, dmac, mac_, kEtherTypeIpv4) || !pad_to_min_frame(*b)) {
    ctr().drop(Drop::kNoBuffer);
    BufPool::release(b);
    return;
  }
  transmit(b);
}

void SlipStack::arp_request(Ipv4Addr target) noexcept {
  PacketBuf* b = alloc();
  if (!b) return;
  if (!build_arp_request(*b, mac_, cfg_.ip, target) || !pad_to_min_frame(*b)) {
    BufPool::release(b);
    return;
  }
  NetCounters::inc(ctr().arp_requests_sent);
  transmit(b);
}

// Records ip -> mac and releases the packets that waited for it.
void SlipStack::arp_learn(Ipv4Addr ip, MacAddr mac, bool create) noexcept {
  std::vector<PacketBuf*> ready;
  arp_lk_.lock();
  auto it = arp_.find(ip.v);
  if (it == arp_.end() && !create) {
    arp_lk_.unlock();
    return;
  }
  ArpEntry& e = it != arp_.end() ? it->second : arp_[ip.v];
  if (!e.permanent) {
    e.mac = mac;
    e.resolved = true;
    e.expires = now_ns() + cfg_.arp_timeout_ns;
    e.retries = 0;
  }
  ready.swap(e.pending);
  e.pending.reserve(kArpPending);
  const MacAddr to = e.mac;
  arp_lk_.unlock();
  for (PacketBuf* b : ready) {
    if (!push_ether(*b, to, mac_, kEtherTypeIpv4) || !pad_to_min_frame(*b)) {
      BufPool::release(b);
      continue;
    }
    transmit(b);
  }
}

void SlipStack::arp_tick(uint64_t now) noexcept {
  std::vector<Ipv4Addr> retry;
  std::vector<PacketBuf*> dead;
  arp_lk_.lock();
  for (auto& [ip, e] : arp_) {
    if (e.pending.empty() || e.resolved || now < e.next_retry) continue;
    if (e.retries >= cfg_.arp_max_retries) {
      dead.insert(dead.end(), e.pending.begin(), e.pending.end());
      e.pending.clear();
      e.retries = 0;
      continue;
    }
    e.retries++;
    e.next_retry = now + cfg_.arp_retry_ns;
    retry.push_back(Ipv4Addr(ip));
  }
  arp_lk_.unlock();
  for (PacketBuf* b : dead) {
    NetCounters::inc(ctr().tx_arp_pending_drops);
    BufPool::release(b);
  }
  for (Ipv4Addr ip : retry) arp_request(ip);
}

void SlipStack::rx_arp(PacketBuf* b, const ArpPacket& a) noexcept {
  const bool for_us = a.tpa() == cfg_.ip;
  if (!a.spa().is_zero()) arp_learn(a.spa(), a.sha, for_us);  // RFC 826: merge, add if for us
  if (a.op() == kArpOpRequest && for_us) {
    const MacAddr req_mac = a.sha;
    const Ipv4Addr req_ip = a.spa();
    const uint16_t queue = b->rx_queue;
    BufPool::release(b);
    if (PacketBuf* r = alloc()) {
      r->rx_queue = queue;
      if (build_arp_reply(*r, mac_, cfg_.ip, req_mac, req_ip) && pad_to_min_frame(*r)) {
        NetCounters::inc(ctr().arp_replies_sent);
        transmit(r);
      } else {
        BufPool::release(r);
      }
    }
    return;
  }
  if (!for_us && a.op() == kArpOpRequest) ctr().drop(Drop::kArpNotForUs);
  BufPool::release(b);
}

void SlipStack::rx_icmp(PacketBuf* b, const RxFrame& f) noexcept {
  const bool echo = f.icmp.hdr->type == kIcmpEchoRequest && !b->next;  // f points into b: read it first
  if (echo && caps_.rx_readonly && !(b = writable_copy(b))) return;
  if (echo && icmp_echo_reply_in_place(*b, mac_, cfg_.ip)) {
    NetCounters::inc(ctr().icmp_echo_replies);
    b->offload_flags = 0;
    transmit(b);
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

void SlipStack::send_port_unreachable(const RxFrame& f) noexcept {
  // RFC 1122 §3.2.2: never about broadcasts.
  if (f.ip.hdr->dst() != cfg_.ip) return;
  PacketBuf* b = alloc();
  if (!b) return;
  if (!build_icmp_unreach(*b, kIcmpCodePortUnreach, reinterpret_cast<const uint8_t*>(f.ip.hdr),
                          f.ip.hdr_len + f.ip.payload_len)) {
    BufPool::release(b);
    return;
  }
  ip_output(b, f.ip.hdr->src(), kIpProtoIcmp);
}

void SlipStack::rx_udp(PacketBuf* b, const RxFrame& f) noexcept {
  const uint16_t port = f.udp.hdr->dport();
  tab_lk_.lock();
  UdpSock* s = udp_[port];
  if (!s) {
    tab_lk_.unlock();
    ctr().drop(Drop::kUdpNoPort);
    send_port_unreachable(f);
    BufPool::release(b);
    return;
  }
  const Endpoint from{f.ip.hdr->src(), f.udp.hdr->sport()};
  b->adj(static_cast<size_t>(f.udp.payload - b->data));
  b->len = f.udp.payload_len;
  if (s->serves()) {
    s->enter();  // under tab_lk_: the socket now outlives the call
    tab_lk_.unlock();
    s->call_and_leave(b->data, b->len, from);  // one call at a time, even with several receive queues
    BufPool::release(b);
    return;
  }
  s->deliver(b, from);  // under tab_lk_: the socket cannot be unbound meanwhile
  tab_lk_.unlock();
}

void SlipStack::rx_frame(PacketBuf* b, uint64_t now) noexcept {
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
    rx_arp(b, *f.arp);
    return;
  }
  const Ipv4Addr ipdst = f.ip.hdr->dst();
  if (ipdst != cfg_.ip && !(ipdst.is_broadcast() && f.ip.hdr->proto == kIpProtoUdp)) {
    c.drop(Drop::kIpNotForUs);
    BufPool::release(b);
    return;
  }
  switch (f.ip.hdr->proto) {
    case kIpProtoIcmp:
      rx_icmp(b, f);
      return;
    case kIpProtoUdp:
      rx_udp(b, f);
      return;
    case kIpProtoTcp:
      rx_tcp(b, f, now);
      return;
    default:
      c.drop(Drop::kIpProto);
      BufPool::release(b);
  }
}

void SlipStack::housekeeping(uint64_t now) noexcept {
  run_timers(now);
  if (now >= next_arp_tick_.load(std::memory_order_relaxed)) {
    arp_tick(now);
    next_arp_tick_.store(now + 10'000'000, std::memory_order_relaxed);
  }
  reap();
}

// Kthread k polls receive queue k first (with RSS the NIC keeps each flow on
// one queue, so its segments meet its state on one core), then any other
// queue no kthread is polling, so a queue whose kthread is parked or busy is
// not left behind.
unsigned SlipStack::poll(unsigned kthread) noexcept {
  const uint64_t now = now_ns();
  unsigned n = 0;
  for (uint16_t i = 0; i < rx_queues_; i++) {
    const uint16_t q = static_cast<uint16_t>((kthread + i) % rx_queues_);
    if (!rxq_lk_[q].try_lock()) continue;
    PacketBuf* bufs[kBurst];
    const uint16_t got = nic_.rx_burst(q, bufs, kBurst);
    if (got) {  // an idle poll skips the batch's bookkeeping
      begin_rx_batch();
      for (uint16_t j = 0; j < got; j++) rx_frame(bufs[j], now);
      flush_rx_batch(now);
    }
    // Housekeeping goes with queue 0, right after its frames and with the
    // same clock reading: with one queue, timers never run beside the
    // receive path, so a connection sees its time only move forward.
    if (q == 0) housekeeping(now);
    rxq_lk_[q].unlock();
    n += got;
  }
  flush_tx();
  return n;
}

uint64_t SlipStack::max_park_ns() const noexcept {
  if (rx_fd_ < 0) return cfg_.max_park_ns;
  // Frames wake us; only the stack's own clocks (TCP timers, ARP ageing and
  // retries) must still be kept.
  const uint64_t due = std::min(next_timer_.load(std::memory_order_relaxed),
                                next_arp_tick_.load(std::memory_order_relaxed));
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
