// SharedNic's data path: rx descriptors into PacketBufs over the read-only
// pool and back onto rx_return when the stack lets go; tx buffers onto the
// tx ring by offset and back into the pool on completion. Queue q is
// kthread q's rings, so kthreads receive and send in parallel.
#include <algorithm>
#include <cstring>

#include "iokernel/client/shared_nic_impl.h"
#include "slip/runtime/runtime.h"

namespace slip::iok {

uint16_t SharedNic::rx_queue_of(const net::FlowTuple& f) const noexcept {
  // As the daemon sees the flow's frames arrive: from the remote end.
  const uint32_t ports = uint32_t{f.remote_port} << 16 | f.local_port;
  return static_cast<uint16_t>(steer_pick(steer_hash(f.remote.v, f.local.v, ports, f.proto), n_rings_));
}

uint16_t SharedNic::rx_burst(uint16_t q, net::PacketBuf** bufs, uint16_t max) noexcept {
  if (!arbiter_.load(std::memory_order_relaxed)) install_arbiter();
  if (const int k = rt::kthread_index(); k >= 0 && static_cast<uint32_t>(k) < n_rings_)
    follow_grant_cpu(static_cast<unsigned>(k));
  publish_active();
  if (q >= n_rings_) return 0;
  Rings& r = rings_[q];
  reap_completions(r);
  if (r.ret_lk.try_lock()) {  // busy: its holder flushes at kBurst, or the next burst does
    if (r.ret_n != 0) flush_returns(r);
    if (spilled_.load(std::memory_order_relaxed)) drain_spill(r);
    r.ret_lk.unlock();
  }
  PktDesc d[net::kBurst];
  const uint32_t m = r.rx.pop(d, std::min<uint32_t>(max, net::kBurst));
  uint16_t got = 0;
  for (uint32_t j = 0; j < m; j++)
    if (net::PacketBuf* b = wrap_rx(d[j])) {
      b->rx_queue = q;
      bufs[got++] = b;
    }
  return got;
}

// The PacketBuf of a received descriptor, or nullptr (the descriptor goes
// straight back) when it is not a sound, idle buffer of the pool.
net::PacketBuf* SharedNic::wrap_rx(const PktDesc& d) noexcept {
  const uint64_t i = d.buf_off / pool_buf_;
  const uint64_t end = uint64_t{d.data_off} + d.len;
  if (i >= n_rx_slots_ || end > pool_buf_ || d.buf_off + end > pool_size_ ||
      rx_bufs_[i].refs.load(std::memory_order_relaxed) != 0) {
    give_back(d);
    return nullptr;
  }
  net::PacketBuf& b = rx_bufs_[i];
  b.head = const_cast<uint8_t*>(pool_ + d.buf_off);  // never written: caps().rx_readonly
  b.data = b.head + d.data_off;
  b.len = d.len;
  b.capacity = static_cast<uint32_t>(end);  // no tailroom to write into
  b.next = nullptr;
  b.pool = rx_pool_.get();
  b.mbuf = nullptr;
  b.refs.store(1, std::memory_order_relaxed);
  b.offload_flags = (d.flags & kDescRxCsumOk) ? net::PacketBuf::kRxIpCsumGood | net::PacketBuf::kRxL4CsumGood : 0;
  b.l2_len = b.l3_len = b.l4_len = 0;
  b.user = 0;
  rx_meta_[i] = RxMeta{d.buf_off, d.cookie};
  return &b;
}

// Returns go onto the ring of the kthread that made them (any ring will do:
// the daemon counts buffers per runtime), in bursts.
void SharedNic::give_back(const PktDesc& d) noexcept {
  const int k = rt::kthread_index();
  Rings& r = rings_[k >= 0 ? static_cast<uint32_t>(k) % n_rings_ : 0];
  rt::SpinParkGuard g(r.ret_lk);
  r.ret[r.ret_n++] = PktDesc{d.buf_off, 0, 0, 0, 0, d.cookie};
  if (r.ret_n == net::kBurst) flush_returns(r);
}

// The last release of an rx buffer, on whatever thread made it.
void SharedNic::on_rx_free(void* ctx, net::PacketBuf* b) noexcept {
  auto* self = static_cast<SharedNic*>(ctx);
  const RxMeta& m = self->rx_meta_[static_cast<size_t>(b - self->rx_bufs_.get())];
  self->give_back(PktDesc{m.buf_off, 0, 0, 0, 0, m.cookie});
}

void SharedNic::flush_returns(Rings& r) noexcept {
  const uint32_t done = r.rx_return.push(r.ret, r.ret_n);
  if (done < r.ret_n) {  // the daemon is behind: keep them for a later burst
    rt::SpinParkGuard g(spill_lk_);
    for (uint32_t i = done; i < r.ret_n && spill_n_ < n_rx_slots_; i++) spill_[spill_n_++] = r.ret[i];
    spilled_.store(true, std::memory_order_relaxed);
  }
  r.ret_n = 0;
}

void SharedNic::drain_spill(Rings& r) noexcept {
  if (!spill_lk_.try_lock()) return;
  const uint32_t want = static_cast<uint32_t>(std::min<size_t>(spill_n_, UINT32_MAX));
  const uint32_t done = r.rx_return.push(spill_.get() + spill_n_ - want, want);  // from the end: no shifting
  spill_n_ -= done;
  spilled_.store(spill_n_ != 0, std::memory_order_relaxed);
  spill_lk_.unlock();
}

void SharedNic::reap_completions(Rings& r) noexcept {
  if (!r.comp_lk.try_lock()) return;  // someone else is at it
  PktDesc d[net::kBurst];
  const uint32_t n = r.completions.pop(d, net::kBurst);
  for (uint32_t i = 0; i < n; i++)
    if (d[i].cookie < tx_bufs_.size()) net::BufPool::release(tx_bufs_[d[i].cookie]);
  r.comp_lk.unlock();
}

net::PacketBuf* SharedNic::alloc_from(const std::vector<std::unique_ptr<net::BufPool>>& pools) noexcept {
  const int k = rt::kthread_index();
  const size_t n = pools.size(), first = k >= 0 ? static_cast<size_t>(k) % n : 0;
  for (size_t i = 0; i < n; i++)
    if (net::PacketBuf* b = pools[(first + i) % n]->alloc()) return b;
  return nullptr;
}

net::PacketBuf* SharedNic::alloc_tx() noexcept {
  if (net::PacketBuf* b = alloc_from(tx_pools_)) return b;
  for (uint32_t k = 0; k < n_rings_; k++) reap_completions(rings_[k]);
  return alloc_from(tx_pools_);
}

// b as one buffer of our region (b itself when it is one): a copy otherwise,
// b released. nullptr with *too_long (b released: it cannot be sent) or
// without (no buffer free: b kept).
net::PacketBuf* SharedNic::own_copy(net::PacketBuf* b, bool* too_long) noexcept {
  *too_long = false;
  if (!b->next && in_region(b)) return b;
  net::PacketBuf* c = alloc_tx();
  if (!c) return nullptr;
  uint8_t* p = c->append(b->chain_len());
  if (!p) {
    *too_long = true;
    net::BufPool::release(c);
    net::BufPool::release(b);
    return nullptr;
  }
  for (const net::PacketBuf* s = b; s; s = s->next) p = static_cast<uint8_t*>(std::memcpy(p, s->data, s->len)) + s->len;
  net::BufPool::release(b);
  return c;
}

uint16_t SharedNic::tx_burst(uint16_t q, net::PacketBuf** bufs, uint16_t n) noexcept {
  if (q >= n_rings_) return 0;
  Rings& r = rings_[q];
  reap_completions(r);
  RingView& tx = r.tx;
  const uint32_t room = tx.capacity() - tx.size();
  const uint16_t want = static_cast<uint16_t>(std::min<uint32_t>(n, room));
  const uint8_t* bufs_base = region_.base;
  uint16_t taken = 0;
  while (taken < want) {
    PktDesc d[net::kBurst];
    uint32_t nd = 0;
    for (; taken < want && nd < net::kBurst; taken++) {
      bool too_long;
      net::PacketBuf* b = own_copy(bufs[taken], &too_long);
      if (!b && too_long) continue;  // dropped, and counts as taken (as DpdkPort does)
      if (!b) break;                 // no buffer: the caller keeps the rest
      d[nd++] = PktDesc{static_cast<uint64_t>(b->head - bufs_base), b->len,
                        static_cast<uint16_t>(b->data - b->head), 0, 0, tx_index(b)};
    }
    tx.push(d, nd);  // fits: room was measured and we are the only producer
    if (nd < net::kBurst && taken < want) break;
  }
  return taken;
}

}  // namespace slip::iok
