// The log-linear latency histogram: bucket layout, percentile accuracy, merging.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "slip/common/histogram.h"

using slip::Histogram;

namespace {

// The ceil(p% * n)-th smallest sample: the definition percentile() approximates.
uint64_t exact_percentile(const std::vector<uint64_t>& sorted, double p) {
  const double n = static_cast<double>(sorted.size());
  const auto rank = std::clamp<uint64_t>(static_cast<uint64_t>(std::ceil(p / 100.0 * n - 1e-9)), 1, sorted.size());
  return sorted[rank - 1];
}

template <typename Dist>
std::vector<uint64_t> generate(Dist dist, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> v(1'000'000);
  for (auto& x : v) x = static_cast<uint64_t>(std::max(0.0, static_cast<double>(dist(rng))));
  return v;
}

void check_percentiles(std::vector<uint64_t> samples) {
  Histogram h;
  for (uint64_t v : samples) h.record(v);
  std::sort(samples.begin(), samples.end());
  for (double p : {50.0, 90.0, 99.0, 99.9, 99.99}) {
    const double exact = static_cast<double>(exact_percentile(samples, p));
    const double got = static_cast<double>(h.percentile(p));
    INFO("p" << p << " exact " << exact << " histogram " << got);
    CHECK(std::abs(got - exact) <= 0.01 * exact);
  }
  // The ends report their bucket's midpoint, clamped to the exact min and max.
  CHECK(h.percentile(0) >= samples.front());
  CHECK(h.percentile(100) <= samples.back());
  CHECK(static_cast<double>(h.percentile(100)) >= 0.99 * static_cast<double>(samples.back()));
}

}  // namespace

TEST_CASE("values below kSub are exact", "[histogram]") {
  for (uint64_t v = 0; v < Histogram::kSub; v++) {
    Histogram h;
    h.record(v);
    REQUIRE(Histogram::index(v) == v);
    REQUIRE(Histogram::low(v) == v);
    REQUIRE(h.percentile(50) == v);
  }
  Histogram all;
  for (uint64_t v = 0; v < Histogram::kSub; v++) all.record(v);
  CHECK(all.percentile(50) == 63);
  CHECK(all.percentile(100) == 127);
}

TEST_CASE("percentiles are within 1% on generated data", "[histogram]") {
  SECTION("uniform") { check_percentiles(generate(std::uniform_int_distribution<uint64_t>(0, 10'000'000), 1)); }
  SECTION("exponential") { check_percentiles(generate(std::exponential_distribution<double>(1.0 / 50'000), 2)); }
  SECTION("lognormal") { check_percentiles(generate(std::lognormal_distribution<double>(10.0, 2.0), 3)); }
}

TEST_CASE("index and low round-trip across the range", "[histogram]") {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 200'000; i++) {
    const unsigned bits = static_cast<unsigned>(rng() % (Histogram::kMaxBits + 1));
    const uint64_t v = bits == 0 ? 0 : (rng() >> (64 - bits));
    const size_t idx = Histogram::index(v);
    REQUIRE(idx < Histogram::kBuckets);
    REQUIRE(Histogram::low(idx) <= v);
    if (idx + 1 < Histogram::kBuckets) REQUIRE(v < Histogram::low(idx + 1));
  }
  CHECK(Histogram::index(Histogram::kMaxValue) == Histogram::kBuckets - 1);
  for (size_t i = 0; i < Histogram::kBuckets; i++) REQUIRE(Histogram::index(Histogram::low(i)) == i);
}

TEST_CASE("merge equals recording both", "[histogram]") {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(8.0, 1.5);
  Histogram a, b, both;
  for (int i = 0; i < 100'000; i++) {
    const auto v = static_cast<uint64_t>(dist(rng));
    (i % 3 ? a : b).record(v);
    both.record(v);
  }
  Histogram merged = a;
  merged.merge(b);
  CHECK(merged.count() == both.count());
  CHECK(merged.min() == both.min());
  CHECK(merged.max() == both.max());
  CHECK(merged.mean() == Approx(both.mean()));
  for (double p : {0.0, 10.0, 50.0, 90.0, 99.0, 99.9, 100.0}) CHECK(merged.percentile(p) == both.percentile(p));
  Histogram empty;
  merged.merge(empty);
  CHECK(merged.min() == both.min());
  CHECK(merged.count() == both.count());
}

TEST_CASE("count, min, max and mean", "[histogram]") {
  Histogram h;
  CHECK(h.count() == 0);
  CHECK(h.min() == 0);
  CHECK(h.max() == 0);
  CHECK(h.mean() == 0.0);
  CHECK(h.percentile(50) == 0);
  for (uint64_t v : {1000u, 3000u, 5000u}) h.record(v);
  h.record_n(200, 2);
  CHECK(h.count() == 5);
  CHECK(h.min() == 200);
  CHECK(h.max() == 5000);
  CHECK(h.mean() == Approx(9400.0 / 5));
  h.reset();
  CHECK(h.count() == 0);
  CHECK(h.min() == 0);
  CHECK(h.max() == 0);
}

TEST_CASE("values above kMaxValue are clamped and counted", "[histogram]") {
  Histogram h;
  h.record(10);
  h.record(Histogram::kMaxValue + 1);
  h.record(UINT64_MAX);
  CHECK(h.count() == 3);
  CHECK(h.clamped() == 2);
  CHECK(h.max() == Histogram::kMaxValue);
  CHECK(h.percentile(100) <= Histogram::kMaxValue);
  CHECK(h.percentile(100) >= Histogram::low(Histogram::kBuckets - 1));
  h.record(Histogram::kMaxValue);
  CHECK(h.clamped() == 2);
}

TEST_CASE("copy and assignment are deep", "[histogram]") {
  Histogram a;
  a.record(5);
  Histogram b = a;
  b.record(7);
  CHECK(a.count() == 1);
  CHECK(b.count() == 2);
  a = b;
  CHECK(a.count() == 2);
  CHECK(a.max() == 7);
  Histogram& alias = a;
  a = alias;
  CHECK(a.count() == 2);
}

TEST_CASE("copying while another thread records does not crash", "[histogram]") {
  Histogram h;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    std::mt19937_64 rng(9);
    while (!stop.load(std::memory_order_relaxed)) h.record(rng() % 1'000'000);
  });
  uint64_t last = 0;
  for (int i = 0; i < 50; i++) {
    Histogram snap = h;
    CHECK(snap.count() >= last);
    last = snap.count();
    (void)snap.percentile(99);
  }
  stop = true;
  writer.join();
  CHECK(Histogram(h).count() == h.count());
}
