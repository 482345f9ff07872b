// Buffer pools (heap, external, a backend's own ops) and PacketBuf:
// exhaustion, chains, reference counts and the headroom/tailroom arithmetic
// the protocol layers rely on.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#include "slip/net/buf.h"

using namespace slip::net;

namespace {
constexpr size_t kBufSize = 512;
constexpr size_t kData = kBufSize - BufPool::kHeadroom;
}  // namespace

TEST_CASE("Heap pool hands out every buffer, then nullptr", "[buf]") {
  auto pool = BufPool::heap("t", 8, kBufSize);
  CHECK(pool->name() == "t");
  CHECK(pool->size() == 8);
  CHECK(pool->available() == 8);
  CHECK(pool->ops().idle == nullptr);  // no device reads a heap buffer
  std::vector<PacketBuf*> got;
  while (PacketBuf* b = pool->alloc()) got.push_back(b);
  CHECK(got.size() == 8);
  CHECK(pool->available() == 0);
  CHECK(pool->alloc() == nullptr);
  for (size_t i = 0; i < got.size(); i++) {
    CHECK(got[i]->pool == pool.get());
    for (size_t j = i + 1; j < got.size(); j++) CHECK(got[i] != got[j]);
  }
  BufPool::release(got[3]);
  CHECK(pool->available() == 1);
  CHECK(pool->alloc() == got[3]);
  for (PacketBuf* b : got) BufPool::release(b);
  CHECK(pool->available() == 8);
  BufPool::release(nullptr);
  CHECK(pool->available() == 8);
}

TEST_CASE("alloc resets a reused buffer", "[buf]") {
  auto pool = BufPool::heap("t", 1, kBufSize);
  PacketBuf* b = pool->alloc();
  REQUIRE(b);
  CHECK(b->headroom() == BufPool::kHeadroom);
  CHECK(b->len == 0);
  CHECK(b->capacity == kBufSize);
  CHECK(b->tailroom() == kData);
  CHECK(b->refs.load() == 1);
  CHECK(b->next == nullptr);
  CHECK(b->mbuf == nullptr);
  b->prepend(14);
  b->append(100);
  b->offload_flags = PacketBuf::kTxTcpCsum;
  b->rx_queue = 3;
  b->l2_len = 14;
  b->user = 42;
  BufPool::release(b);
  PacketBuf* c = pool->alloc();
  REQUIRE(c == b);
  CHECK(c->headroom() == BufPool::kHeadroom);
  CHECK(c->len == 0);
  CHECK(c->refs.load() == 1);
  CHECK(c->offload_flags == 0);
  CHECK(c->rx_queue == 0);
  CHECK(c->l2_len == 0);
  CHECK(c->user == 0);
  BufPool::release(c);
}

TEST_CASE("release frees a whole chain", "[buf]") {
  auto pool = BufPool::heap("t", 4, kBufSize);
  PacketBuf* a = pool->alloc();
  PacketBuf* b = pool->alloc();
  PacketBuf* c = pool->alloc();
  a->append(10);
  b->append(20);
  c->append(30);
  a->next = b;
  b->next = c;
  CHECK(a->chain_len() == 60);
  CHECK(b->chain_len() == 50);
  CHECK(pool->available() == 1);
  BufPool::release(a);
  CHECK(pool->available() == 4);
}

TEST_CASE("A referenced buffer survives one release", "[buf]") {
  auto pool = BufPool::heap("t", 4, kBufSize);
  SECTION("single segment") {
    PacketBuf* b = pool->alloc();
    b->ref();
    CHECK(b->refs.load() == 2);
    BufPool::release(b);
    CHECK(pool->available() == 3);
    CHECK(b->refs.load() == 1);
    BufPool::release(b);
    CHECK(pool->available() == 4);
  }
  SECTION("ref() covers every segment of a chain") {
    PacketBuf* a = pool->alloc();
    a->next = pool->alloc();
    a->ref();
    CHECK(a->next->refs.load() == 2);
    BufPool::release(a);
    CHECK(pool->available() == 2);
    CHECK(a->next->refs.load() == 1);
    BufPool::release(a);
    CHECK(pool->available() == 4);
  }
}

TEST_CASE("prepend, adj, append and trim stay inside the buffer", "[buf]") {
  auto pool = BufPool::heap("t", 1, kBufSize);
  PacketBuf* b = pool->alloc();

  uint8_t* p = b->append(4);
  REQUIRE(p == b->data);
  std::memcpy(p, "data", 4);
  uint8_t* h = b->prepend(2);
  REQUIRE(h == p - 2);
  CHECK(b->len == 6);
  CHECK(b->headroom() == BufPool::kHeadroom - 2);
  CHECK(std::memcmp(b->data + 2, "data", 4) == 0);

  // Headroom: all of it can be claimed, not a byte more.
  CHECK(b->prepend(b->headroom() + 1) == nullptr);
  CHECK(b->len == 6);
  CHECK(b->prepend(b->headroom()) == b->head);
  CHECK(b->headroom() == 0);
  CHECK(b->prepend(1) == nullptr);
  CHECK(b->prepend(0) == b->head);

  // adj drops from the front; more than len fails and changes nothing.
  CHECK(b->adj(BufPool::kHeadroom));
  CHECK(b->len == 4);
  CHECK(std::memcmp(b->data, "data", 4) == 0);
  CHECK_FALSE(b->adj(5));
  CHECK(b->len == 4);
  CHECK(b->adj(4));
  CHECK(b->len == 0);
  CHECK(b->adj(0));

  // Tailroom: all of it, not a byte more.
  const size_t room = b->tailroom();
  CHECK(room == kData - 4);
  CHECK(b->append(room + 1) == nullptr);
  CHECK(b->append(room) != nullptr);
  CHECK(b->tailroom() == 0);
  CHECK(b->append(1) == nullptr);
  CHECK(b->headroom() + b->len == b->capacity);

  // trim cuts from the end and stops at zero.
  b->trim(10);
  CHECK(b->len == room - 10);
  CHECK(b->tailroom() == 10);
  b->trim(b->len + 100);
  CHECK(b->len == 0);
  CHECK(b->chain_len() == 0);
  BufPool::release(b);
}

TEST_CASE("heap() rejects impossible pools with a reason", "[buf]") {
  CHECK_THROWS_WITH(BufPool::heap("z", 0), Catch::Contains("zero buffers"));
  CHECK_THROWS_WITH(BufPool::heap("z", 4, BufPool::kHeadroom), Catch::Contains("headroom"));
  CHECK_THROWS_AS(BufPool::heap("z", SIZE_MAX / 2, 4096), std::invalid_argument);
}

TEST_CASE("Two threads share a pool without losing buffers", "[buf]") {
  auto pool = BufPool::heap("t", 64, kBufSize);
  auto churn = [&] {
    for (int i = 0; i < 50000; i++) {
      PacketBuf* a = pool->alloc();
      PacketBuf* b = pool->alloc();
      if (a) a->append(1)[0] = 1;
      BufPool::release(a);
      BufPool::release(b);
    }
  };
  std::thread t(churn);
  churn();
  t.join();
  CHECK(pool->available() == 64);
}

namespace {

// A backend of two buffers that counts what its pool asks of it.
struct FakeBackend {
  static constexpr size_t kN = 2;
  uint8_t mem[kN][kBufSize];
  PacketBuf bufs[kN];
  bool used[kN] = {};
  bool device_reads = false;  // what idle() answers, negated
  int allocs = 0, frees = 0, counts = 0, idles = 0, destroys = 0;
};

FakeBackend& fake(const void* ctx) { return *static_cast<FakeBackend*>(const_cast<void*>(ctx)); }

constexpr BufPoolOps kFakeOps{
    .alloc = [](void* ctx) noexcept -> PacketBuf* {
      FakeBackend& f = fake(ctx);
      f.allocs++;
      for (size_t i = 0; i < FakeBackend::kN; i++)
        if (!f.used[i]) {
          f.used[i] = true;
          return &f.bufs[i];
        }
      return nullptr;
    },
    .free = [](void* ctx, PacketBuf* b) noexcept {
      FakeBackend& f = fake(ctx);
      f.frees++;
      f.used[b - f.bufs] = false;
    },
    .available = [](const void* ctx) noexcept -> size_t {
      FakeBackend& f = fake(ctx);
      f.counts++;
      return static_cast<size_t>(std::count(f.used, f.used + FakeBackend::kN, false));
    },
    .idle = [](const PacketBuf* b) noexcept {
      FakeBackend& f = fake(b->pool->ctx());
      f.idles++;
      return !f.device_reads;
    },
    .destroy = [](void* ctx) noexcept { fake(ctx).destroys++; },
};

}  // namespace

TEST_CASE("A pool with custom ops calls them for alloc, free, counts, idle checks and teardown", "[buf]") {
  FakeBackend f;
  {
    auto pool = BufPool::with_ops("custom", FakeBackend::kN, kFakeOps, &f);
    for (size_t i = 0; i < FakeBackend::kN; i++) {
      f.bufs[i].head = f.mem[i];
      f.bufs[i].capacity = kBufSize;
      f.bufs[i].pool = pool.get();
    }
    CHECK(pool->size() == 2);
    CHECK(pool->ctx() == &f);
    CHECK(pool->available() == 2);
    CHECK(f.counts == 1);

    PacketBuf* a = pool->alloc();
    REQUIRE(a == &f.bufs[0]);
    CHECK(a->refs.load() == 1);
    CHECK(a->headroom() == BufPool::kHeadroom);
    CHECK(a->len == 0);
    PacketBuf* b = pool->alloc();
    REQUIRE(b == &f.bufs[1]);
    CHECK(pool->alloc() == nullptr);
    CHECK(f.allocs == 3);

    CHECK(BufPool::only_ours(a));
    CHECK(f.idles == 1);
    f.device_reads = true;
    CHECK_FALSE(BufPool::only_ours(a));
    a->ref();
    CHECK_FALSE(BufPool::only_ours(a));  // another reference: idle is not asked
    CHECK(f.idles == 2);
    BufPool::release(a);
    CHECK(f.frees == 0);

    a->next = b;  // the last release of a chain frees each segment
    BufPool::release(a);
    CHECK(f.frees == 2);
    CHECK(pool->available() == 2);
    CHECK(f.destroys == 0);
  }
  CHECK(f.destroys == 1);
}

TEST_CASE("with_ops refuses ops without alloc, free or available", "[buf]") {
  BufPoolOps ops = kFakeOps;
  ops.available = nullptr;
  CHECK_THROWS_WITH(BufPool::with_ops("bad", 1, ops, nullptr), Catch::Contains("required"));
}

TEST_CASE("An external pool hands each last release to its owner", "[buf]") {
  FakeBackend f;
  auto pool = BufPool::external("ext", kFakeOps.free, &f);
  CHECK(pool->alloc() == nullptr);
  CHECK(pool->available() == 0);
  f.bufs[1].pool = pool.get();
  f.used[1] = true;
  f.bufs[1].ref();  // 2 references
  BufPool::release(&f.bufs[1]);
  CHECK(f.frees == 0);
  BufPool::release(&f.bufs[1]);
  CHECK(f.frees == 1);
  CHECK_FALSE(f.used[1]);
  CHECK(f.allocs == 0);
}
