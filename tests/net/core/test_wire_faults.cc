// The test wire's faults, each on its own, then all together: rates, effects,
// counters that add up, and determinism per seed.
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cstring>
#include <vector>

#include "slip/net/wire.h"
#include "wire_test_util.h"

using namespace slip::net;
using namespace slip::net::test;

TEST_CASE("Drops happen at the configured rate", "[wire]") {
  TestWire w(kMacA, kMacB, faults(0.1, 0, 0, 0, 0), true);
  std::vector<uint32_t> all;
  for (uint32_t i = 0; i < 10000; i += 500) {
    send(w.end_a(), i, 500);
    auto s = seqs_and_release(drain(w.end_b()));
    all.insert(all.end(), s.begin(), s.end());
  }
  const WireStats s = w.stats();
  CHECK(s.sent == 10000);
  CHECK(s.dropped >= 850);  // expected 1000, sigma 30
  CHECK(s.dropped <= 1150);
  CHECK(all.size() == 10000 - s.dropped);
  CHECK(std::is_sorted(all.begin(), all.end()));
  check_accounting(w);
  CHECK(w.pool().available() == w.pool().size());
}

TEST_CASE("Duplicates are exact copies right behind the original", "[wire]") {
  TestWire w(kMacA, kMacB, faults(0, 0.2, 0, 0, 0), true);
  send(w.end_a(), 0, 2000);
  auto got = drain(w.end_b());
  const WireStats s = w.stats();
  CHECK(s.duplicated >= 320);  // expected 400, sigma 18
  CHECK(s.duplicated <= 480);
  REQUIRE(got.size() == 2000 + s.duplicated);
  uint32_t expect = 0;
  for (size_t i = 0; i < got.size(); i++) {
    if (i > 0 && seq_of(got[i]) == seq_of(got[i - 1])) {
      CHECK(got[i] != got[i - 1]);
      CHECK(got[i]->len == got[i - 1]->len);
      CHECK(std::memcmp(got[i]->data, got[i - 1]->data, got[i]->len) == 0);
      continue;
    }
    CHECK(seq_of(got[i]) == expect++);
  }
  CHECK(expect == 2000);
  seqs_and_release(got);
  check_accounting(w);
  CHECK(w.pool().available() == w.pool().size());
}

TEST_CASE("Reordering permutes but delivers everything", "[wire]") {
  TestWire w(kMacA, kMacB, faults(0, 0, 0.3, 0, 0), true);
  send(w.end_a(), 0, 1000);
  auto s = seqs_and_release(drain(w.end_b()));
  REQUIRE(s.size() == 1000);
  CHECK_FALSE(std::is_sorted(s.begin(), s.end()));
  size_t inversions = 0;
  for (size_t i = 1; i < s.size(); i++) inversions += s[i] < s[i - 1];
  CHECK(inversions > 100);
  CHECK(w.stats().reordered >= inversions);
  std::sort(s.begin(), s.end());
  for (uint32_t i = 0; i < 1000; i++) CHECK(s[i] == i);
  CHECK(w.pool().available() == w.pool().size());
}

TEST_CASE("Reordering needs a frame still in flight", "[wire]") {
  TestWire w(kMacA, kMacB, faults(0, 0, 1.0, 0, 0), true);
  send(w.end_a(), 0, 1);  // empty queue: nothing to swap with
  send(w.end_a(), 1, 1);  // swaps with 0
  CHECK(seqs_and_release(drain(w.end_b())) == std::vector<uint32_t>{1, 0});
  CHECK(w.stats().reordered == 1);
}

TEST_CASE("Corruption flips exactly one bit", "[wire]") {
  TestWire w(kMacA, kMacB, faults(0, 0, 0, 1.0, 0), true);
  send(w.end_a(), 0, 300);
  auto got = drain(w.end_b());
  REQUIRE(got.size() == 300);
  for (uint32_t i = 0; i < 300; i++) {
    PacketBuf* ref = make_frame(w.end_a(), i);
    REQUIRE(got[i]->len == kLen);
    int bits = 0;
    for (size_t j = 0; j < kLen; j++) bits += std::popcount(static_cast<uint8_t>(got[i]->data[j] ^ ref->data[j]));
    CHECK(bits == 1);
    BufPool::release(ref);
  }
  seqs_and_release(got);
  CHECK(w.stats().corrupted == 300);
}

TEST_CASE("Truncation keeps a shorter prefix", "[wire]") {
  TestWire w(kMacA, kMacB, faults(0, 0, 0, 0, 1.0), true);
  send(w.end_a(), 0, 300);
  auto got = drain(w.end_b());
  REQUIRE(got.size() == 300);
  size_t min_len = kLen;
  for (uint32_t i = 0; i < 300; i++) {
    PacketBuf* ref = make_frame(w.end_a(), i);
    CHECK(got[i]->len >= 1);
    CHECK(got[i]->len < kLen);
    CHECK(std::memcmp(got[i]->data, ref->data, got[i]->len) == 0);
    min_len = std::min<size_t>(min_len, got[i]->len);
    BufPool::release(ref);
  }
  CHECK(min_len < kLen / 4);
  seqs_and_release(got);
  CHECK(w.stats().truncated == 300);
  // A one-byte frame cannot get shorter.
  PacketBuf* one = make_frame(w.end_a(), 0, 1);
  one->len = 1;
  REQUIRE(w.end_a().tx_burst(0, &one, 1) == 1);
  auto tiny = drain(w.end_b());
  REQUIRE(tiny.size() == 1);
  CHECK(tiny[0]->len == 1);
  BufPool::release(tiny[0]);
  CHECK(w.stats().truncated == 300);
}

TEST_CASE("Duplication is skipped when the pool is empty", "[wire]") {
  TestWire w(kMacA, kMacB, faults(0, 1.0, 0, 0, 0), true, 2);
  PacketBuf* a = make_frame(w.end_a(), 0);
  PacketBuf* b = make_frame(w.end_a(), 1);
  PacketBuf* burst[2] = {a, b};
  REQUIRE(w.end_a().tx_burst(0, burst, 2) == 2);
  CHECK(w.stats().duplicated == 0);
  CHECK(seqs_and_release(drain(w.end_b())) == std::vector<uint32_t>{0, 1});
  send(w.end_a(), 2, 1);
  CHECK(w.stats().duplicated == 1);
  CHECK(seqs_and_release(drain(w.end_b())) == std::vector<uint32_t>{2, 2});
}

namespace {

struct Delivered {
  uint32_t len;
  uint64_t hash;
  friend bool operator==(const Delivered&, const Delivered&) = default;
};

// A run with every fault and jitter on, in both directions, stepping the
// virtual clock; returns what each end received, then checks for leaks.
std::vector<Delivered> faulty_run(uint64_t seed) {
  WireFaults f = faults(0.05, 0.05, 0.1, 0.05, 0.05, seed);
  f.delay_ns = 500;
  f.jitter_ns = 300;
  TestWire w(kMacA, kMacB, f, true, 1024);
  std::vector<Delivered> out;
  auto collect = [&](Nic& n) {
    for (PacketBuf* b : drain(n)) {
      uint64_t h = 1469598103934665603ull;
      for (PacketBuf* s = b; s; s = s->next)
        for (uint32_t i = 0; i < s->len; i++) h = (h ^ s->data[i]) * 1099511628211ull;
      out.push_back({static_cast<uint32_t>(b->chain_len()), h});
      BufPool::release(b);
    }
  };
  for (uint32_t round = 0; round < 100; round++) {
    send(w.end_a(), round * 20, 20);
    send(w.end_b(), 100000 + round * 10, 10);
    w.advance(200);
    collect(w.end_a());
    collect(w.end_b());
  }
  check_accounting(w);
  w.advance(10'000);
  collect(w.end_a());
  collect(w.end_b());
  const WireStats s = w.stats();
  CHECK(w.in_flight() == 0);
  CHECK(s.sent == 3000);
  CHECK(s.sent + s.duplicated == s.delivered + s.dropped);
  CHECK(out.size() == s.delivered);
  CHECK(s.dropped > 0);
  CHECK(s.duplicated > 0);
  CHECK(s.reordered > 0);
  CHECK(s.corrupted > 0);
  CHECK(s.truncated > 0);
  CHECK(w.pool().available() == w.pool().size());
  return out;
}

}  // namespace

TEST_CASE("The same seed gives the same delivered sequence", "[wire]") {
  const auto a = faulty_run(42);
  const auto b = faulty_run(42);
  const auto c = faulty_run(43);
  CHECK(a == b);
  CHECK(a != c);
}
