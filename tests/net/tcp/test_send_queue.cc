// The send queue: TCP's send buffer held in packet buffers, a buffer per
// segment, so that segments and their retransmissions go out by reference.
#include <catch2/catch.hpp>

#include <vector>

#include "net/proto/checksum.h"
#include "net/tcp/send_queue.h"
#include "tcp_pipe.h"

using namespace slip::net;
using namespace slip::net::tcp;
using slip::net::tcp::test::Pipe;

using slip::net::tcp::test::pattern;

namespace {

std::vector<uint8_t> read_back(const SendQueue& q, size_t off, size_t n) {
  std::vector<uint8_t> out(n);
  q.read_at(off, out.data(), n);
  return out;
}

uint32_t sum_of(const uint8_t* p, size_t n) { return proto::csum_fold(proto::csum_partial(p, n)); }

PacketBuf* from_pool(void* pool) { return static_cast<BufPool*>(pool)->alloc(); }

}  // namespace

TEST_CASE("send queue: a buffer per segment, read back across buffers, consumed in order", "[tcp][send-queue]") {
  const auto data = pattern(5000);
  SendQueue q(64 * 1024);
  REQUIRE(q.push(data.data(), data.size(), 1448) == 5000);
  CHECK(q.size() == 5000);
  CHECK(q.buffers() == 4);  // 1448, 1448, 1448, 656
  SendQueue::Whole w;
  REQUIRE(q.whole(1448, 1448, w));
  CHECK(std::memcmp(w.payload, data.data() + 1448, 1448) == 0);
  CHECK(proto::csum_fold(w.sum) == sum_of(data.data() + 1448, 1448));
  CHECK(q.whole(4344, 656, w));
  CHECK_FALSE(q.whole(0, 1000, w));     // part of a buffer
  CHECK_FALSE(q.whole(100, 1348, w));   // not from its start
  CHECK_FALSE(q.whole(0, 2896, w));     // two buffers
  CHECK(read_back(q, 1000, 3000) == std::vector<uint8_t>(data.begin() + 1000, data.begin() + 4000));

  q.consume(1500);  // all of the first buffer and 52 bytes of the second
  CHECK(q.size() == 3500);
  CHECK(q.buffers() == 3);
  CHECK(read_back(q, 0, 3500) == std::vector<uint8_t>(data.begin() + 1500, data.end()));
  REQUIRE(q.whole(0, 1396, w));  // what is left of the second buffer, its sum redone
  CHECK(proto::csum_fold(w.sum) == sum_of(data.data() + 1500, 1396));
  q.consume(3500);
  CHECK(q.size() == 0);
  CHECK(q.buffers() == 0);
}

TEST_CASE("send queue: writes share a buffer until it is sent; sums hold at odd offsets", "[tcp][send-queue]") {
  const auto data = pattern(400);
  SendQueue q(64 * 1024);
  REQUIRE(q.push(data.data(), 101, 1448) == 101);  // odd: the next piece starts mid-word
  REQUIRE(q.push(data.data() + 101, 100, 1448) == 100);
  CHECK(q.buffers() == 1);
  SendQueue::Whole w;
  REQUIRE(q.whole(0, 201, w));
  CHECK(proto::csum_fold(w.sum) == sum_of(data.data(), 201));

  q.sent_up_to(201);  // it went out: the next write starts a buffer of its own
  REQUIRE(q.push(data.data() + 201, 199, 1448) == 199);
  CHECK(q.buffers() == 2);
  REQUIRE(q.whole(201, 199, w));
  CHECK(proto::csum_fold(w.sum) == sum_of(data.data() + 201, 199));
  CHECK(read_back(q, 0, 400) == data);
}

TEST_CASE("send queue: tiny writes sent one by one do not take a buffer per byte", "[tcp][send-queue]") {
  SendQueue q(4096);  // room for 4096 / 1024 + 8 = 12 buffers
  const auto data = pattern(100);
  for (size_t i = 0; i < data.size(); i++) {
    REQUIRE(q.push(&data[i], 1, 1448) == 1);
    q.sent_up_to(q.size());
  }
  CHECK(q.buffers() == 12);  // the rest went into the last one
  CHECK(read_back(q, 0, 100) == data);
  SendQueue::Whole w;
  CHECK(q.whole(10, 1, w));
  CHECK(q.whole(11, 89, w));  // the shared last buffer, sent by reference only whole
  CHECK(proto::csum_fold(w.sum) == sum_of(data.data() + 11, 89));
}

TEST_CASE("send queue: a dry allocator shortens writes; freed buffers serve the rest; nothing leaks",
          "[tcp][send-queue]") {
  auto pool = BufPool::heap("test-send", 3);
  const auto data = pattern(5000);
  {
    SendQueue q(64 * 1024);
    q.set_allocator(&from_pool, pool.get());
    CHECK(q.push(data.data(), data.size(), 1448) == 3 * 1448);
    CHECK(q.short_of_buffers());
    CHECK(pool->available() == 0);
    q.consume(1448);
    CHECK(pool->available() == 1);
    CHECK(q.push(data.data() + 3 * 1448, 5000 - 3 * 1448, 1448) == 5000 - 3 * 1448);
    CHECK_FALSE(q.short_of_buffers());
    CHECK(read_back(q, 0, 5000 - 1448) == std::vector<uint8_t>(data.begin() + 1448, data.end()));
  }
  CHECK(pool->available() == 3);
}

TEST_CASE("a write that finds no packet buffer is told to try again", "[tcp][send-queue]") {
  Pipe p;
  p.connect();
  REQUIRE(p.run_until([&] { return p.established(); }));
  (void)p.a.take_events();
  p.a.set_send_buffers([](void*) -> PacketBuf* { return nullptr; }, nullptr, true);
  const auto data = pattern(100);
  CHECK(p.a.write(data.data(), data.size(), p.now) == 0);
  const uint64_t retry = p.a.next_deadline();
  CHECK(retry <= p.now + Tcb::kBufferRetryNs);
  CHECK((p.a.take_events() & kEvWritable) == 0);
  p.a.on_tick(p.now + Tcb::kBufferRetryNs);
  CHECK((p.a.take_events() & kEvWritable) != 0);
}
