// Fixed-capacity byte rings for TCP's send and receive buffers. Allocated once
// per connection; the data path only copies in and out.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>

#include "net/tcp/seq.h"

namespace slip::net::tcp {

// A ring whose bytes are addressed by offset from the head (the oldest byte).
class ByteRing {
 public:
  explicit ByteRing(size_t capacity) : cap_(capacity), buf_(new uint8_t[capacity]) {}
  size_t capacity() const noexcept { return cap_; }
  size_t size() const noexcept { return len_; }
  size_t space() const noexcept { return cap_ - len_; }

  // Appends up to n bytes; returns how many fit.
  size_t push(const uint8_t* p, size_t n) noexcept {
    n = std::min(n, space());
    write_at(len_, p, n);
    len_ += n;
    return n;
  }
  // Writes n bytes at offset off from the head, which may lie beyond size()
  // (out-of-order data); off + n must not exceed capacity.
  void write_at(size_t off, const uint8_t* p, size_t n) noexcept {
    size_t pos = (head_ + off) % cap_;
    const size_t first = std::min(n, cap_ - pos);
    std::memcpy(buf_.get() + pos, p, first);
    std::memcpy(buf_.get(), p + first, n - first);
  }
  // Copies n bytes starting at offset off into out.
  void read_at(size_t off, uint8_t* out, size_t n) const noexcept {
    size_t pos = (head_ + off) % cap_;
    const size_t first = std::min(n, cap_ - pos);
    std::memcpy(out, buf_.get() + pos, first);
    std::memcpy(out + first, buf_.get(), n - first);
  }
  // The contiguous run of present bytes starting at offset off (which is below
  // size()): a pointer into the ring and its length, up to the wrap.
  std::pair<const uint8_t*, size_t> run_at(size_t off) const noexcept {
    const size_t pos = (head_ + off) % cap_;
    return {buf_.get() + pos, std::min(len_ - off, cap_ - pos)};
  }
  // Marks n more bytes (already written with write_at) as present.
  void commit(size_t n) noexcept { len_ = std::min(cap_, len_ + n); }
  // Drops n bytes from the head.
  void consume(size_t n) noexcept {
    n = std::min(n, len_);
    head_ = (head_ + n) % cap_;
    len_ -= n;
  }

 private:
  size_t cap_;
  std::unique_ptr<uint8_t[]> buf_;
  size_t head_ = 0, len_ = 0;
};

// A small set of disjoint sequence ranges [start, end): the receiver's
// out-of-order data (which also gives the SACK blocks to send) and the
// sender's SACK scoreboard. Bounded: past kMax ranges, new ones are refused.
class RangeSet {
 public:
  static constexpr size_t kMax = 16;
  struct Range {
    Seq start, end;
  };

  // Adds [s, e), merging neighbours; false when it needed a new slot and none was free.
  bool add(Seq s, Seq e) noexcept {
    if (!seq_lt(s, e)) return true;
    size_t i = 0;
    while (i < n_ && seq_lt(r_[i].end, s)) i++;
    size_t j = i;
    while (j < n_ && seq_le(r_[j].start, e)) {
      s = seq_min(s, r_[j].start);
      e = seq_max(e, r_[j].end);
      j++;
    }
    if (i == j && n_ == kMax) return false;
    // Replace r_[i, j) with the merged range.
    const size_t removed = j - i;
    if (removed == 0) {
      std::move_backward(r_.begin() + i, r_.begin() + n_, r_.begin() + n_ + 1);
      n_++;
    } else if (removed > 1) {
      std::move(r_.begin() + j, r_.begin() + n_, r_.begin() + i + 1);
      n_ -= removed - 1;
    }
    r_[i] = {s, e};
    last_ = i;
    return true;
  }
  // Drops everything below seq (cumulatively acknowledged or consumed).
  void trim_below(Seq seq) noexcept {
    size_t k = 0;
    for (size_t i = 0; i < n_; i++) {
      if (seq_le(r_[i].end, seq)) continue;
      Range r = r_[i];
      if (seq_lt(r.start, seq)) r.start = seq;
      r_[k++] = r;
    }
    n_ = k;
    last_ = 0;
  }
  // The range starting at or covering seq, if any.
  const Range* covering(Seq seq) const noexcept {
    for (size_t i = 0; i < n_; i++)
      if (seq_le(r_[i].start, seq) && seq_lt(seq, r_[i].end)) return &r_[i];
    return nullptr;
  }
  bool contains(Seq s, Seq e) const noexcept {
    const Range* r = covering(s);
    return r && seq_le(e, r->end);
  }
  size_t count() const noexcept { return n_; }
  const Range& operator[](size_t i) const noexcept { return r_[i]; }
  size_t last_added() const noexcept { return last_; }
  void clear() noexcept { n_ = 0; }
  // Bytes covered above `from`.
  uint32_t bytes_above(Seq from) const noexcept {
    uint32_t b = 0;
    for (size_t i = 0; i < n_; i++)
      if (seq_gt(r_[i].end, from)) b += r_[i].end - seq_max(r_[i].start, from);
    return b;
  }

 private:
  std::array<Range, kMax> r_{};
  size_t n_ = 0, last_ = 0;
};

}  // namespace slip::net::tcp
