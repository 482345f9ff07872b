// SharedNic's data path: rx descriptors into PacketBufs over the read-only
// pool and back onto rx_return when the stack lets go; tx buffers onto the
// tx ring by offset and back into the pool on completion.
#include <algorithm>
#include <cstring>

#include "iokernel/client/shared_nic_impl.h"
#include "slip/runtime/runtime.h"

namespace slip::iok {

uint16_t SharedNic::rx_burst(uint16_t q, net::PacketBuf** bufs, uint16_t max) noexcept {
  if (!arbiter_.load(std::memory_order_relaxed)) install_arbiter();
  if (const int k = rt::kthread_index(); k >= 0 && static_cast<size_t>(k) < rings_.size())
    follow_grant_cpu(static_cast<unsigned>(k));
  publish_active();
  reap_completions();
  if (ret_lk_.try_lock()) {  // busy: whoever holds it flushes at 32, or the next burst does
    if (ret_n_ != 0) flush_returns();
    ret_lk_.unlock();
  }
  const uint32_t n = static_cast<uint32_t>(rings_.size());
  uint16_t got = 0;
  for (uint32_t i = 0; i < n && got < max; i++) {
    PktDesc d[net::kBurst];
    const uint32_t m = rings_[(rx_rr_ + i) % n].rx.pop(d, std::min<uint32_t>(max - got, net::kBurst));
    for (uint32_t j = 0; j < m; j++)
      if (net::PacketBuf* b = wrap_rx(d[j])) {
        b->rx_queue = q;
        bufs[got++] = b;
      }
  }
  rx_rr_ = rx_rr_ + 1 < n ? rx_rr_ + 1 : 0;
  return got;
}

// The PacketBuf of a received descriptor, or nullptr (the descriptor goes
// straight back) when it is not a sound, idle buffer of the pool.
net::PacketBuf* SharedNic::wrap_rx(const PktDesc& d) noexcept {
  const uint64_t i = d.buf_off / pool_buf_;
  const uint64_t end = uint64_t{d.data_off} + d.len;
  if (i >= n_rx_slots_ || end > pool_buf_ || d.buf_off + end > pool_size_ ||
      rx_bufs_[i].refs.load(std::memory_order_relaxed) != 0) {
    rt::SpinGuard g(ret_lk_);
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

void SharedNic::give_back(const PktDesc& d) noexcept {
  if (ret_n_ < n_rx_slots_) ret_[ret_n_++] = PktDesc{d.buf_off, 0, 0, 0, 0, d.cookie};
  if (ret_n_ >= net::kBurst) flush_returns();
}

// The last release of an rx buffer, on whatever thread made it.
void SharedNic::on_rx_free(void* ctx, net::PacketBuf* b) noexcept {
  auto* self = static_cast<SharedNic*>(ctx);
  const RxMeta& m = self->rx_meta_[static_cast<size_t>(b - self->rx_bufs_.get())];
  rt::SpinGuard g(self->ret_lk_);
  self->give_back(PktDesc{m.buf_off, 0, 0, 0, 0, m.cookie});
}

// Onto the rx_return rings, spreading over all of them when one is full.
void SharedNic::flush_returns() noexcept {
  size_t done = 0;
  const uint32_t n = static_cast<uint32_t>(rings_.size());
  for (uint32_t i = 0; i < n && done < ret_n_; i++) {
    const size_t want = std::min<size_t>(ret_n_ - done, UINT32_MAX);
    done += rings_[(ret_rr_ + i) % n].rx_return.push(ret_.get() + done, static_cast<uint32_t>(want));
  }
  ret_rr_ = ret_rr_ + 1 < n ? ret_rr_ + 1 : 0;
  if (done != 0 && done < ret_n_) std::memmove(ret_.get(), ret_.get() + done, (ret_n_ - done) * sizeof(PktDesc));
  ret_n_ -= done;
}

void SharedNic::reap_completions() noexcept {
  if (!comp_lk_.try_lock()) return;  // someone else is at it
  for (Rings& r : rings_) {
    PktDesc d[net::kBurst];
    const uint32_t n = r.completions.pop(d, net::kBurst);
    for (uint32_t i = 0; i < n; i++)
      if (d[i].cookie < tx_bufs_.size()) net::BufPool::release(tx_bufs_[d[i].cookie]);
  }
  comp_lk_.unlock();
}

net::PacketBuf* SharedNic::alloc_tx() noexcept {
  net::PacketBuf* b = tx_pool_->alloc();
  if (b) return b;
  reap_completions();
  return tx_pool_->alloc();
}

// b as one buffer of our region (b itself when it is one): a copy otherwise,
// b released. nullptr with *too_long (b released: it cannot be sent) or
// without (no buffer free: b kept).
net::PacketBuf* SharedNic::own_copy(net::PacketBuf* b, bool* too_long) noexcept {
  *too_long = false;
  if (b->pool == tx_pool_.get() && !b->next) return b;
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
  reap_completions();
  RingView& tx = rings_[q % rings_.size()].tx;
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
