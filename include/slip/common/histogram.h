// Log-linear histogram for latencies in nanoseconds (HdrHistogram's layout).
// Values below 2^kSubBits are exact; above, each power of two is split into
// 2^kSubBits buckets, so a bucket is at most 1/128 of its value wide and a
// reported percentile (the bucket's midpoint) is within 0.4% of the true value.
// Range: 0 to 2^kMaxBits ns (about 73 minutes); larger values are clamped and counted.
//
// One writer at a time; other threads may copy or merge from it concurrently
// (buckets are relaxed atomics, so a racing copy sees each bucket whole).
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace slip {

class Histogram {
 public:
  static constexpr unsigned kSubBits = 7;
  static constexpr unsigned kSub = 1u << kSubBits;
  static constexpr unsigned kMaxBits = 42;
  static constexpr uint64_t kMaxValue = (uint64_t{1} << kMaxBits) - 1;
  static constexpr size_t kBuckets = size_t{kMaxBits - kSubBits + 1} * kSub;

  Histogram() : b_(new std::atomic<uint64_t>[kBuckets]) { reset(); }
  Histogram(const Histogram& o) : Histogram() { merge(o); }
  Histogram& operator=(const Histogram& o) {
    if (this != &o) {
      reset();
      merge(o);
    }
    return *this;
  }
  // Moving takes the bucket array; the source is left empty but usable only for reads of zero.
  Histogram(Histogram&& o) noexcept : b_(std::move(o.b_)) { copy_scalars(o); }
  Histogram& operator=(Histogram&& o) noexcept {
    if (this != &o) {
      b_ = std::move(o.b_);
      copy_scalars(o);
    }
    return *this;
  }

  void record(uint64_t v) noexcept { record_n(v, 1); }
  void record_n(uint64_t v, uint64_t n) noexcept {
    if (v > kMaxValue) {
      bump(clamped_, n);
      v = kMaxValue;
    }
    bump(b_[index(v)], n);
    bump(count_, n);
    bump(sum_, v * n);
    if (v < min_.load(std::memory_order_relaxed)) min_.store(v, std::memory_order_relaxed);
    if (v > max_.load(std::memory_order_relaxed)) max_.store(v, std::memory_order_relaxed);
  }

  uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  uint64_t clamped() const noexcept { return clamped_.load(std::memory_order_relaxed); }
  uint64_t min() const noexcept { return count() ? min_.load(std::memory_order_relaxed) : 0; }
  uint64_t max() const noexcept { return max_.load(std::memory_order_relaxed); }
  double mean() const noexcept {
    const uint64_t c = count();
    return c ? static_cast<double>(sum_.load(std::memory_order_relaxed)) / static_cast<double>(c) : 0.0;
  }

  // Value at percentile p (0..100): the midpoint of the bucket holding the
  // ceil(p% * count)-th smallest sample, clamped to [min, max]; the exact max
  // for the top rank. 0 when empty.
  uint64_t percentile(double p) const noexcept {
    const uint64_t c = count();
    if (c == 0) return 0;
    p = std::clamp(p, 0.0, 100.0);
    uint64_t rank = static_cast<uint64_t>(p / 100.0 * static_cast<double>(c) + 0.999999999);
    rank = std::clamp<uint64_t>(rank, 1, c);
    if (rank == c && max() > 0) return max();  // the maximum is known exactly
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; i++) {
      seen += b_[i].load(std::memory_order_relaxed);
      if (seen >= rank) {
        const uint64_t lo = low(i), hi = (i + 1 < kBuckets ? low(i + 1) : kMaxValue + 1) - 1;
        const uint64_t mid = lo + (hi - lo) / 2, mn = min(), mx = max();
        // A copy racing the first record() can see count > 0 before min/max are
        // stored; std::clamp with mn > mx is undefined, so skip clamping then.
        return mn <= mx ? std::clamp(mid, mn, mx) : mid;
      }
    }
    return max();
  }

  void merge(const Histogram& o) noexcept {
    for (size_t i = 0; i < kBuckets; i++) {
      const uint64_t n = o.b_[i].load(std::memory_order_relaxed);
      if (n) bump(b_[i], n);
    }
    bump(count_, o.count());
    bump(sum_, o.sum_.load(std::memory_order_relaxed));
    bump(clamped_, o.clamped());
    if (o.count()) {
      if (o.min() < min_.load(std::memory_order_relaxed)) min_.store(o.min(), std::memory_order_relaxed);
      if (o.max() > max_.load(std::memory_order_relaxed)) max_.store(o.max(), std::memory_order_relaxed);
    }
  }

  void reset() noexcept {
    for (size_t i = 0; i < kBuckets; i++) b_[i].store(0, std::memory_order_relaxed);
    count_.store(0, std::memory_order_relaxed);
    sum_.store(0, std::memory_order_relaxed);
    clamped_.store(0, std::memory_order_relaxed);
    min_.store(UINT64_MAX, std::memory_order_relaxed);
    max_.store(0, std::memory_order_relaxed);
  }

  // Bucket index for a value in [0, kMaxValue]: exact below kSub, then kSub
  // buckets of width 2^e for each power of two [kSub << e, kSub << (e + 1)).
  static size_t index(uint64_t v) noexcept {
    if (v < kSub) return static_cast<size_t>(v);
    const unsigned msb = 63u - static_cast<unsigned>(std::countl_zero(v));
    const unsigned e = msb - kSubBits;
    return kSub + size_t{e} * kSub + static_cast<size_t>((v >> e) - kSub);
  }
  // Smallest value in bucket i.
  static uint64_t low(size_t i) noexcept {
    if (i < kSub) return i;
    const size_t e = (i - kSub) / kSub, s = (i - kSub) % kSub;
    return (uint64_t{kSub} + s) << e;
  }

 private:
  void copy_scalars(const Histogram& o) noexcept {
    count_.store(o.count(), std::memory_order_relaxed);
    sum_.store(o.sum_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    clamped_.store(o.clamped(), std::memory_order_relaxed);
    min_.store(o.min_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    max_.store(o.max(), std::memory_order_relaxed);
  }
  static void bump(std::atomic<uint64_t>& a, uint64_t n) noexcept {
    a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  std::unique_ptr<std::atomic<uint64_t>[]> b_;
  std::atomic<uint64_t> count_{0}, sum_{0}, clamped_{0}, min_{UINT64_MAX}, max_{0};
};

}  // namespace slip
