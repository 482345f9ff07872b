#include "net/tcp/send_queue.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <string>

#include "net/proto/checksum.h"

namespace slip::net::tcp {
namespace {

using proto::csum_add;
using proto::csum_fold;
using proto::csum_partial;

// The most buffers a queue holds: enough for its capacity in segments of 1
// KiB and more, so tiny writes that each went out alone cannot pin a buffer
// per byte. Past it, writes go into the last buffer (and are sent by copy).
size_t max_buffers(size_t capacity) { return capacity / 1024 + 8; }

// Adds the sum of bytes that sit at byte offset `at` of a run whose sum is
// `sum`: a piece starting at an odd offset has its bytes in the other halves
// of the 16-bit words (RFC 1071 §2.B).
uint32_t add_piece(uint32_t sum, uint32_t piece, size_t at) {
  uint16_t s = csum_fold(piece);
  if (at & 1) s = static_cast<uint16_t>((s >> 8) | (s << 8));
  return csum_fold(csum_add(sum, s));
}

}  // namespace

SendQueue::SendQueue(size_t capacity)
    : cap_(capacity), ring_(std::bit_ceil(max_buffers(capacity))), mask_(ring_.size() - 1),
      max_bufs_(max_buffers(capacity)) {}

SendQueue::~SendQueue() {
  for (size_t i = 0; i < n_; i++) BufPool::release(at(i).buf);
}

void SendQueue::set_allocator(AllocFn fn, void* ctx) noexcept {
  alloc_ = fn;
  alloc_ctx_ = ctx;
}

PacketBuf* SendQueue::fresh() noexcept {
  if (alloc_) return alloc_(alloc_ctx_);
  if (!own_) {
    try {
      own_ = BufPool::heap("tcp-send", max_bufs_);
    } catch (...) {
      return nullptr;
    }
  }
  return own_->alloc();
}

size_t SendQueue::push(const uint8_t* p, size_t n, uint32_t seg) noexcept {
  n = std::min(n, space());
  starved_ = false;
  size_t done = 0;
  while (done < n) {
    Entry* e = n_ ? &at(n_ - 1) : nullptr;
    const bool full_ring = n_ == max_bufs_;
    size_t room = 0;
    if (e && (!e->sealed || full_ring)) {
      // Room after the tail's bytes: up to seg of them (unless the ring is
      // full, when only the buffer's end limits), and what the buffer has.
      const size_t tail = e->buf->capacity - static_cast<size_t>(e->payload + e->len - e->buf->head);
      room = full_ring ? tail : std::min<size_t>(tail, seg > e->len ? seg - e->len : 0);
    }
    if (room == 0) {
      if (full_ring) break;  // the last buffer is full too: the queue is full
      PacketBuf* b = fresh();
      if (!b) {
        starved_ = true;
        break;
      }
      at(n_++) = Entry{b, b->data, head_pos_ + len_ + done, 0, 0, false};
      continue;
    }
    const size_t k = std::min(room, n - done);
    uint8_t* dst = e->payload + e->len;
    std::memcpy(dst, p + done, k);
    if (summing_) e->sum = add_piece(e->sum, csum_partial(dst, k), e->len);
    e->len += static_cast<uint32_t>(k);
    done += k;
  }
  len_ += done;
  return done;
}

void SendQueue::consume(size_t n) noexcept {
  n = std::min(n, len_);
  len_ -= n;
  head_pos_ += n;
  while (n > 0 && n_ > 0) {
    Entry& e = at(0);
    if (n < e.len) {
      e.payload += n;
      e.start += n;
      e.len -= static_cast<uint32_t>(n);
      if (summing_) e.sum = csum_fold(csum_partial(e.payload, e.len));
      return;
    }
    n -= e.len;
    BufPool::release(e.buf);
    head_ = (head_ + 1) & mask_;
    n_--;
    hint_ = hint_ ? hint_ - 1 : 0;
  }
}

size_t SendQueue::find(size_t& off) const noexcept {
  if (off >= len_) return n_;
  const uint64_t pos = head_pos_ + off;
  for (size_t i = hint_; i < n_ && i <= hint_ + 1; i++) {
    const Entry& e = at(i);
    if (e.start <= pos && pos < e.start + e.len) {
      hint_ = i;
      off = static_cast<size_t>(pos - e.start);
      return i;
    }
  }
  size_t lo = 0, hi = n_;  // the last entry starting at or before pos
  while (hi - lo > 1) {
    const size_t mid = lo + (hi - lo) / 2;
    if (at(mid).start <= pos) lo = mid;
    else hi = mid;
  }
  off = static_cast<size_t>(pos - at(lo).start);
  hint_ = lo;
  return lo;
}

size_t SendQueue::run_from(size_t off) const noexcept {
  const size_t i = find(off);
  return i < n_ ? at(i).len - off : 0;
}

void SendQueue::read_at(size_t off, uint8_t* out, size_t n) const noexcept {
  for (size_t i = find(off); n > 0 && i < n_; i++, off = 0) {
    const Entry& e = at(i);
    const size_t k = std::min<size_t>(n, e.len - off);
    std::memcpy(out, e.payload + off, k);
    out += k;
    n -= k;
  }
}

void SendQueue::sent_up_to(size_t end) noexcept {
  if (end == 0) return;
  size_t off = end - 1;  // the last byte sent
  const size_t i = find(off);
  if (i < n_) at(i).sealed = true;
}

bool SendQueue::whole(size_t off, size_t len, Whole& w) const noexcept {
  const size_t i = find(off);
  if (i == n_ || off != 0 || at(i).len != len) return false;
  const Entry& e = at(i);
  w.buf = e.buf;
  w.payload = e.payload;
  w.sum = e.sum;
  return true;
}

}  // namespace slip::net::tcp
