// The test wire (include/slip/net/wire.h). Each direction of each queue is a
// FIFO of frames with due times (a lane), guarded by a spinlock because the
// two ends may be polled by different kthreads. Faults are applied on transmit, in this order, each from
// its own draw so that enabling one fault does not change which frames another
// hits:
//   drop      the frame is released and never delivered.
//   truncate  the chain is cut to a random length in [1, len - 1].
//   corrupt   one random bit of one random byte of the chain is flipped.
//   reorder   the frame swaps places with the frame queued just before it in
//             the same direction, if that one is still in flight; both then
//             fall due at the later of their two due times. Nothing happens
//             (and nothing is counted) when the queue is empty.
//   duplicate a copy (from the wire's pool) is queued right after the frame;
//             skipped when the pool is empty.
// Delay and jitter set a frame's due time, but delivery stays FIFO: jitter
// never reorders, a frame waits behind any earlier one that is not yet due.
// Frames move without copying unless some segment is shared (refs > 1, e.g.
// kept by TCP for retransmission): the receiver may adj() or rewrite what it
// gets, so a shared chain is copied into the wire's pool first. If that pool is
// empty, tx_burst stops there and the caller keeps the rest.
#include "slip/net/wire.h"

#include <algorithm>
#include <cstring>
#include <mutex>

#include "slip/runtime/time.h"

namespace slip::net {
namespace {

// A uniform double in [0, 1) from 53 random bits; portable, unlike
// std::uniform_real_distribution, so a seed gives the same run everywhere.
double unit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// A uniform integer in [0, n) (Lemire's multiply-shift; bias below 2^-64 * n).
uint64_t below(std::mt19937_64& rng, uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(rng()) * n) >> 64);
}

bool is_shared(const PacketBuf* b) noexcept {
  for (; b; b = b->next)
    if (b->refs.load(std::memory_order_acquire) > 1) return true;
  return false;
}

// A private copy of the chain's bytes in buffers of `pool`; nullptr (and
// nothing held) when the pool runs out.
PacketBuf* copy_chain(BufPool& pool, const PacketBuf* src) noexcept {
  PacketBuf* head = nullptr;
  PacketBuf* tail = nullptr;
  for (; src; src = src->next) {
    for (uint32_t off = 0; off < src->len;) {
      if (!tail || tail->tailroom() == 0) {
        PacketBuf* b = pool.alloc();
        if (!b) {
          BufPool::release(head);
          return nullptr;
        }
        (tail ? tail->next : head) = b;
        tail = b;
      }
      const uint32_t n = static_cast<uint32_t>(std::min<size_t>(src->len - off, tail->tailroom()));
      std::memcpy(tail->append(n), src->data + off, n);
      off += n;
    }
  }
  // An empty frame still needs one (empty) buffer.
  return head ? head : pool.alloc();
}

// Cuts the chain to `keep` bytes (< its length) and releases the segments past it.
void truncate_chain(PacketBuf* b, size_t keep) noexcept {
  for (; b; b = b->next) {
    if (keep <= b->len) {
      b->len = static_cast<uint32_t>(keep);
      BufPool::release(b->next);
      b->next = nullptr;
      return;
    }
    keep -= b->len;
  }
}

void flip_bit(PacketBuf* b, size_t pos, unsigned bit) noexcept {
  for (; b; b = b->next) {
    if (pos < b->len) {
      b->data[pos] ^= static_cast<uint8_t>(1u << bit);
      return;
    }
    pos -= b->len;
  }
}

}  // namespace

class TestWire::End final : public Nic {
 public:
  struct Frame {
    PacketBuf* buf;
    uint64_t due;
  };
  // One direction of the wire: the frames bound for one end, and the faults
  // and counters of frames sent that way.
  struct Lane {
    rt::SpinParkLock lock;
    std::deque<Frame> q;
    std::mt19937_64 rng;
    WireFaults faults;
    WireStats stats;

    void set_faults(const WireFaults& f, uint64_t seed) {
      std::lock_guard g(lock);
      faults = f;
      rng.seed(seed);
    }
  };

  End(TestWire& wire, MacAddr mac, uint16_t mtu, uint16_t queues)
      : wire_(wire), in_(std::make_unique<Lane[]>(queues)) {
    caps_.mac = mac;
    caps_.mtu = mtu;
    caps_.rx_queues = caps_.tx_queues = queues;
  }
  ~End() override {
    for (uint16_t q = 0; q < caps_.rx_queues; q++)
      for (const Frame& f : in_[q].q) BufPool::release(f.buf);
  }

  const NicCaps& caps() const noexcept override { return caps_; }
  uint16_t rx_burst(uint16_t q, PacketBuf** bufs, uint16_t max) noexcept override;
  uint16_t tx_burst(uint16_t q, PacketBuf** bufs, uint16_t n) noexcept override;
  PacketBuf* alloc_tx() noexcept override { return wire_.pool_->alloc(); }

  static constexpr size_t kEtherHeader = 14;

  TestWire& wire_;
  NicCaps caps_;
  End* peer_ = nullptr;
  std::unique_ptr<Lane[]> in_;  // per queue: frames travelling towards this end

 private:
  void enqueue(Lane& l, PacketBuf* f, uint64_t now) noexcept;
};

uint16_t TestWire::End::rx_burst(uint16_t q, PacketBuf** bufs, uint16_t max) noexcept {
  if (q >= caps_.rx_queues) return 0;
  const uint64_t now = wire_.now();
  uint16_t n = 0;
  Lane& in = in_[q];
  std::lock_guard g(in.lock);
  while (n < max && !in.q.empty() && in.q.front().due <= now) {
    PacketBuf* b = in.q.front().buf;
    in.q.pop_front();
    // The wire carries bytes only: no checksum status, no sender's scratch.
    b->rx_queue = q;
    b->offload_flags = 0;
    b->l2_len = b->l3_len = b->l4_len = 0;
    b->user = 0;
    bufs[n++] = b;
  }
  in.stats.delivered += n;
  return n;
}

uint16_t TestWire::End::tx_burst(uint16_t q, PacketBuf** bufs, uint16_t n) noexcept {
  if (q >= caps_.tx_queues) return 0;
  const uint64_t now = wire_.now();
  Lane& l = peer_->in_[q];
  std::lock_guard g(l.lock);
  uint16_t taken = 0;
  for (; taken < n; taken++) {
    PacketBuf* f = bufs[taken];
    if (f->chain_len() > size_t{caps_.mtu} + kEtherHeader) {
      BufPool::release(f);
      l.stats.sent++;
      l.stats.oversize++;
      continue;
    }
    if (is_shared(f)) {
      PacketBuf* c = copy_chain(*wire_.pool_, f);
      if (!c) break;
      BufPool::release(f);
      f = c;
    }
    enqueue(l, f, now);
  }
  return taken;
}

// Applies the faults to one frame the lane now owns and queues what survives.
void TestWire::End::enqueue(Lane& l, PacketBuf* f, uint64_t now) noexcept {
  const WireFaults& fl = l.faults;
  l.stats.sent++;
  const bool drop = unit(l.rng) < fl.drop, truncate = unit(l.rng) < fl.truncate,
             corrupt = unit(l.rng) < fl.corrupt, reorder = unit(l.rng) < fl.reorder,
             duplicate = unit(l.rng) < fl.duplicate;
  if (drop) {
    BufPool::release(f);
    l.stats.dropped++;
    return;
  }
  if (truncate && f->chain_len() >= 2) {
    truncate_chain(f, 1 + below(l.rng, f->chain_len() - 1));
    l.stats.truncated++;
  }
  if (corrupt && f->chain_len() >= 1) {
    const size_t pos = below(l.rng, f->chain_len());
    flip_bit(f, pos, static_cast<unsigned>(below(l.rng, 8)));
    l.stats.corrupted++;
  }
  uint64_t due = now + fl.delay_ns + (fl.jitter_ns ? below(l.rng, fl.jitter_ns + 1) : 0);
  if (reorder && !l.q.empty()) {
    Frame& prev = l.q.back();
    due = std::max(due, prev.due);
    l.q.push_back({prev.buf, due});
    // prev is still valid: deque::push_back keeps references to elements.
    prev = {f, due};
    l.stats.reordered++;
  } else {
    l.q.push_back({f, due});
  }
  if (duplicate) {
    if (PacketBuf* d = copy_chain(*wire_.pool_, f)) {
      l.q.push_back({d, l.q.back().due});
      l.stats.duplicated++;
    }
  }
}

TestWire::TestWire(MacAddr a, MacAddr b, WireFaults faults, bool virtual_clock, size_t pool_bufs, uint16_t mtu,
                   uint16_t queues)
    : pool_(BufPool::heap("test-wire", pool_bufs,
                          std::max<size_t>(2048, size_t{mtu} + End::kEtherHeader) + BufPool::kHeadroom)),
      a_(std::make_unique<End>(*this, a, mtu, std::max<uint16_t>(1, queues))),
      b_(std::make_unique<End>(*this, b, mtu, std::max<uint16_t>(1, queues))),
      virtual_clock_(virtual_clock) {
  a_->peer_ = b_.get();
  b_->peer_ = a_.get();
  set_faults(faults);
}

TestWire::~TestWire() = default;

Nic& TestWire::end_a() noexcept { return *a_; }
Nic& TestWire::end_b() noexcept { return *b_; }

// The A-to-B direction of queue 0 uses the seed as given, every other lane a
// derived one, so each draws an independent sequence (and one queue's wire
// is the wire it always was).
void TestWire::set_faults(const WireFaults& f) {
  for (uint16_t q = 0; q < a_->caps_.rx_queues; q++) {
    const uint64_t lane = f.seed + q * 0x632be59bd9b4e019ull;
    b_->in_[q].set_faults(f, q == 0 ? f.seed : lane);
    a_->in_[q].set_faults(f, lane ^ 0x9e3779b97f4a7c15ull);
  }
}

WireStats TestWire::stats() const {
  WireStats s;
  for (End* e : {a_.get(), b_.get()})
    for (uint16_t q = 0; q < e->caps_.rx_queues; q++) {
      std::lock_guard g(e->in_[q].lock);
      const WireStats& t = e->in_[q].stats;
      s.sent += t.sent;
      s.delivered += t.delivered;
      s.dropped += t.dropped;
      s.duplicated += t.duplicated;
      s.reordered += t.reordered;
      s.corrupted += t.corrupted;
      s.truncated += t.truncated;
      s.oversize += t.oversize;
    }
  return s;
}

uint64_t TestWire::now() const noexcept {
  return virtual_clock_ ? vnow_.load(std::memory_order_acquire) : slip::now_ns();
}

void TestWire::advance(uint64_t ns) noexcept {
  if (virtual_clock_) vnow_.fetch_add(ns, std::memory_order_acq_rel);
}

size_t TestWire::in_flight() const {
  size_t n = 0;
  for (End* e : {a_.get(), b_.get()})
    for (uint16_t q = 0; q < e->caps_.rx_queues; q++) {
      std::lock_guard g(e->in_[q].lock);
      n += e->in_[q].q.size();
    }
  return n;
}

}  // namespace slip::net
