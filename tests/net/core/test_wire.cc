// The test wire: ordered delivery, the virtual clock, chains, shared frames,
// two threads, and no leaked buffers.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "slip/net/wire.h"
#include "wire_test_util.h"

using namespace slip::net;
using namespace slip::net::test;

TEST_CASE("Frames arrive in order, unchanged, with no faults", "[wire]") {
  TestWire w(kMacA, kMacB, {}, true);
  CHECK(w.end_a().caps().mac == kMacA);
  CHECK(w.end_b().caps().mac == kMacB);
  CHECK(w.end_a().caps().mtu == 1500);
  CHECK_FALSE(w.end_a().caps().tx_l4_csum);
  send(w.end_a(), 0, 100);
  CHECK(w.in_flight() == 100);
  auto got = drain(w.end_b());
  REQUIRE(got.size() == 100);
  for (uint32_t i = 0; i < 100; i++) {
    CHECK(got[i]->len == kLen);
    PacketBuf* ref = make_frame(w.end_a(), i);
    CHECK(std::memcmp(got[i]->data, ref->data, kLen) == 0);
    BufPool::release(ref);
    CHECK(seq_of(got[i]) == i);
  }
  seqs_and_release(got);
  CHECK(drain(w.end_a()).empty());
  const WireStats s = w.stats();
  CHECK(s.sent == 100);
  CHECK(s.delivered == 100);
  CHECK(s.dropped + s.duplicated + s.reordered + s.corrupted + s.truncated == 0);
  CHECK(w.in_flight() == 0);
  CHECK(w.pool().available() == w.pool().size());
}

TEST_CASE("Both directions work and queue 1 does not exist", "[wire]") {
  TestWire w(kMacA, kMacB, {}, true);
  send(w.end_b(), 7, 3);
  send(w.end_a(), 100, 2);
  CHECK(seqs_and_release(drain(w.end_a())) == std::vector<uint32_t>{7, 8, 9});
  CHECK(seqs_and_release(drain(w.end_b())) == std::vector<uint32_t>{100, 101});
  PacketBuf* b = make_frame(w.end_a(), 1);
  CHECK(w.end_a().tx_burst(1, &b, 1) == 0);
  PacketBuf* out[1];
  CHECK(w.end_b().rx_burst(1, out, 1) == 0);
  BufPool::release(b);
}

TEST_CASE("With a virtual clock a frame waits for its delay", "[wire]") {
  WireFaults f;
  f.delay_ns = 1000;
  TestWire w(kMacA, kMacB, f, true);
  CHECK(w.now() == 0);
  send(w.end_a(), 0, 1);
  CHECK(drain(w.end_b()).empty());
  w.advance(999);
  CHECK(w.now() == 999);
  CHECK(drain(w.end_b()).empty());
  send(w.end_a(), 1, 1);  // due at 1999
  w.advance(1);
  CHECK(seqs_and_release(drain(w.end_b())) == std::vector<uint32_t>{0});
  w.advance(998);
  CHECK(drain(w.end_b()).empty());
  w.advance(1);
  CHECK(seqs_and_release(drain(w.end_b())) == std::vector<uint32_t>{1});
}

TEST_CASE("Jitter delays within its bound and never reorders", "[wire]") {
  WireFaults f;
  f.delay_ns = 100;
  f.jitter_ns = 50;
  TestWire w(kMacA, kMacB, f, true);
  send(w.end_a(), 0, 200);
  w.advance(99);
  CHECK(drain(w.end_b()).empty());
  w.advance(51);
  auto s = seqs_and_release(drain(w.end_b()));
  REQUIRE(s.size() == 200);
  CHECK(std::is_sorted(s.begin(), s.end()));
}

TEST_CASE("A real-clock wire delivers after the delay", "[wire]") {
  WireFaults f;
  f.delay_ns = 2'000'000;
  TestWire w(kMacA, kMacB, f);
  const uint64_t t0 = w.now();
  send(w.end_a(), 0, 1);
  std::vector<PacketBuf*> got;
  while (got.empty()) got = drain(w.end_b());
  CHECK(w.now() - t0 >= 2'000'000);
  seqs_and_release(got);
}

TEST_CASE("Multi-segment chains travel whole and truncate across segments", "[wire]") {
  TestWire w(kMacA, kMacB, {}, true, 64);
  auto chain = [&] {
    PacketBuf* a = make_frame(w.end_a(), 5, 100);
    a->next = make_frame(w.end_a(), 6, 200);
    a->next->next = make_frame(w.end_a(), 7, 300);
    return a;
  };
  PacketBuf* c = chain();
  REQUIRE(w.end_a().tx_burst(0, &c, 1) == 1);
  auto got = drain(w.end_b());
  REQUIRE(got.size() == 1);
  CHECK(got[0]->chain_len() == 600);
  CHECK(seq_of(got[0]->next) == 6);
  BufPool::release(got[0]);

  w.set_faults(faults(0, 0, 0, 0, 1.0, 9));
  for (int i = 0; i < 50; i++) {
    c = chain();
    REQUIRE(w.end_a().tx_burst(0, &c, 1) == 1);
    got = drain(w.end_b());
    REQUIRE(got.size() == 1);
    CHECK(got[0]->chain_len() >= 1);
    CHECK(got[0]->chain_len() < 600);
    BufPool::release(got[0]);
  }
  CHECK(w.pool().available() == w.pool().size());
}

TEST_CASE("A shared frame is copied, and the sender's copy is untouched", "[wire]") {
  TestWire w(kMacA, kMacB, faults(0, 0, 0, 1.0, 1.0), true, 4);
  PacketBuf* kept = make_frame(w.end_a(), 3);
  kept->ref();  // e.g. TCP keeps it for retransmission
  PacketBuf* b = kept;
  REQUIRE(w.end_a().tx_burst(0, &b, 1) == 1);
  CHECK(kept->refs.load() == 1);
  auto got = drain(w.end_b());
  REQUIRE(got.size() == 1);
  CHECK(got[0] != kept);
  PacketBuf* ref = make_frame(w.end_a(), 3);
  CHECK(kept->len == kLen);
  CHECK(std::memcmp(kept->data, ref->data, kLen) == 0);
  BufPool::release(ref);
  BufPool::release(got[0]);

  // With the wire's pool empty, a shared frame is not taken; the caller keeps it.
  std::vector<PacketBuf*> hog;
  while (PacketBuf* h = w.pool().alloc()) hog.push_back(h);
  kept->ref();
  b = kept;
  CHECK(w.end_a().tx_burst(0, &b, 1) == 0);
  CHECK(kept->refs.load() == 2);
  CHECK(w.stats().sent == 1);
  BufPool::release(kept);
  BufPool::release(kept);
  for (PacketBuf* h : hog) BufPool::release(h);
  CHECK(w.pool().available() == w.pool().size());
}

TEST_CASE("Frames left in flight go back to their pools with the wire", "[wire]") {
  auto sender_pool = BufPool::heap("sender", 16);
  {
    TestWire w(kMacA, kMacB, faults(0, 0.5, 0.5, 0, 0), true, 16);
    PacketBuf* burst[8];
    for (auto& b : burst) {
      b = sender_pool->alloc();
      b->append(kLen);
    }
    REQUIRE(w.end_a().tx_burst(0, burst, 8) == 8);
    CHECK(sender_pool->available() == 8);
    CHECK(w.in_flight() >= 8);
  }
  CHECK(sender_pool->available() == 16);
}

TEST_CASE("Two threads drive the two ends", "[wire]") {
  TestWire w(kMacA, kMacB, {}, false, 256);
  constexpr uint32_t kFrames = 50000;
  std::thread tx([&] {
    PacketBuf* burst[kBurst];
    for (uint32_t seq = 0; seq < kFrames;) {
      uint16_t k = 0;
      while (k < kBurst && seq + k < kFrames) {
        PacketBuf* b = w.end_a().alloc_tx();
        if (!b) break;  // pool empty: wait for the receiver
        b->append(sizeof seq);
        const uint32_t s = seq + k;
        std::memcpy(b->data, &s, sizeof s);
        burst[k++] = b;
      }
      uint16_t sent = 0;
      while (sent < k) sent += w.end_a().tx_burst(0, burst + sent, static_cast<uint16_t>(k - sent));
      seq += k;
    }
  });
  uint32_t expect = 0;
  bool in_order = true;
  PacketBuf* burst[kBurst];
  while (expect < kFrames) {
    const uint16_t k = w.end_b().rx_burst(0, burst, kBurst);
    for (uint16_t i = 0; i < k; i++) {
      in_order &= seq_of(burst[i]) == expect++;
      BufPool::release(burst[i]);
    }
  }
  tx.join();
  CHECK(in_order);
  CHECK(w.stats().delivered == kFrames);
  CHECK(w.pool().available() == w.pool().size());
}
