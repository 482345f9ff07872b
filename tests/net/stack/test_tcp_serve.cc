// tcp_serve on the slip stack: servers whose callbacks run in the receive
// path (tests/net/tcp_serve_check.h), driven by uthread clients on the other
// end of the test wire.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "slip/net/stack.h"
#include "slip/runtime/runtime.h"
#include "slip/runtime/sync.h"
#include "tests/net/stack/stack_test_util.h"
#include "tests/net/tcp_serve_check.h"

using namespace slip::net;
using namespace slip::net::test;
namespace rt = slip::rt;

namespace {

constexpr uint64_t kSec = 1'000'000'000;

// Polls cond every millisecond for up to 5 s.
template <class Cond>
bool eventually(Cond cond) {
  const uint64_t end = deadline_in(5 * kSec);
  while (!cond()) {
    if (slip::now_ns() > end) return false;
    rt::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Small buffers, so a few MiB wrap the rings many times and fill them.
void small_buffers(StackConfig& c) {
  c.tcp.rcv_buf = 64 * 1024;
  c.tcp.snd_buf = 64 * 1024;
}

// Reads until EOF; the bytes read, or the error.
slip::Result<std::string> read_to_eof(TcpConn& c) {
  std::string got;
  char buf[256];
  for (;;) {
    auto n = c.read(buf, sizeof buf, deadline_in(5 * kSec));
    if (!n) return slip::Error{n.error()};
    if (*n == 0) return got;
    got.append(buf, *n);
  }
}

void check_rules(const ServeStats& s) {
  CHECK(s.off_kthread == 0);
  CHECK(s.overlaps == 0);
  CHECK(s.bad_handle == 0);
}

}  // namespace

TEST_CASE("tcp_serve: echo over a lossy wire, many connections and a large transfer", "[tcp_serve]") {
  WireFaults f;
  f.drop = 0.02;
  f.reorder = 0.02;
  f.duplicate = 0.01;
  f.seed = 11;
  with_hosts(
      f,
      [](Stack& a, Stack& b, TestWire& wire) {
        ServeStats s;
        auto svc = b.tcp_serve(7, echo_handlers(s));
        REQUIRE(svc);
        CHECK((*svc)->local() == Endpoint{kIpB, 7});
        CHECK(b.tcp_listen(7).error() == EADDRINUSE);
        CHECK(b.tcp_serve(8, {}).error() == EINVAL);  // no on_data

        constexpr int kConns = 16;
        std::atomic<int> ok{0};
        rt::WaitGroup wg;
        for (int i = 0; i < kConns; i++) {
          wg.add(1);
          rt::spawn_detached([&, i] {
            auto c = a.tcp_dial({kIpB, 7}, deadline_in(5 * kSec));
            bool good = c.ok();
            for (int round = 0; round < 20 && good; round++) {
              const std::string m = "conn " + std::to_string(i) + " round " + std::to_string(round);
              std::string back(m.size(), '\0');
              good = (*c)->write_full(m.data(), m.size()) &&
                     (*c)->read_full(back.data(), back.size(), deadline_in(5 * kSec)) && back == m;
            }
            if (good) {
              (*c)->shutdown();  // the server's on_close(kPeerFin), then its FIN
              auto rest = read_to_eof(**c);
              good = rest.ok() && rest->empty();
            }
            if (good) ok++;
            wg.done();
          });
        }

        // 3 MiB through a 64 KiB window each way: the echo's send buffer
        // fills (on_writable) and the receive ring wraps.
        const std::vector<uint8_t> up = pattern(3 << 20, 5);
        auto c = a.tcp_dial({kIpB, 7}, deadline_in(5 * kSec));
        REQUIRE(c);
        int werr = 0;
        auto writer = rt::spawn([&] {
          if (auto r = (*c)->write_full(up.data(), up.size()); !r) werr = r.error();
          (*c)->shutdown();
        });
        Fnv got;
        size_t n_got = 0;
        std::vector<uint8_t> buf(32 * 1024);
        int rerr = 0;
        for (;;) {
          auto n = (*c)->read(buf.data(), buf.size(), deadline_in(10 * kSec));
          if (!n) {
            rerr = n.error();
            break;
          }
          if (*n == 0) break;
          got.update(buf.data(), *n);
          n_got += *n;
        }
        writer.join();
        wg.wait();
        Fnv sent;
        sent.update(up.data(), up.size());
        CHECK(werr == 0);
        CHECK(rerr == 0);
        CHECK(n_got == up.size());
        CHECK(got.h == sent.h);
        CHECK(ok == kConns);
        CHECK(eventually([&] { return s.closed(TcpCloseReason::kPeerFin) == kConns + 1; }));
        CHECK(s.accepts == kConns + 1);
        CHECK(s.live == 0);
        CHECK(s.total_closed() == kConns + 1);
        CHECK(s.writable > 0);
        CHECK(s.wrapped > 0);
        check_rules(s);
        CHECK(wire.stats().dropped > 0);
        CHECK(wire.stats().reordered > 0);
      },
      small_buffers);
}

TEST_CASE("tcp_serve: records consumed only whole, across segments and the ring's wrap", "[tcp_serve]") {
  with_hosts(
      {},
      [](Stack& a, Stack& b, TestWire&) {
        ServeStats s;
        auto svc = b.tcp_serve(7, record_handlers(s));
        REQUIRE(svc);
        constexpr size_t kRecords = 2000;
        const std::vector<uint8_t> data = pattern(kRecords * kRecord, 9);
        auto c = a.tcp_dial({kIpB, 7}, deadline_in(5 * kSec));
        REQUIRE(c);
        auto writer = rt::spawn([&] {
          // Odd-sized writes: records arrive split over several calls.
          for (size_t off = 0; off < data.size();) {
            const size_t n = std::min<size_t>(777 + off % 3000, data.size() - off);
            if (!(*c)->write_full(data.data() + off, n)) return;
            off += n;
          }
        });
        size_t matched = 0;
        for (size_t i = 0; i < kRecords; i++) {
          uint64_t h = 0;
          if (!(*c)->read_full(&h, sizeof h, deadline_in(5 * kSec))) break;
          Fnv f;
          f.update(data.data() + i * kRecord, kRecord);
          if (h == f.h) matched++;
        }
        writer.join();
        CHECK(matched == kRecords);
        CHECK(s.short_reply == 0);
        CHECK(s.wrapped > 0);  // a 64 KiB ring is no multiple of 1000: records straddle its end
        (*c)->close();
        CHECK(eventually([&] { return s.live == 0; }));
        check_rules(s);
      },
      small_buffers);
}

TEST_CASE("tcp_serve: the peer's FIN waits for bytes held back by a full send buffer", "[tcp_serve]") {
  with_hosts(
      {},
      [](Stack& a, Stack& b, TestWire&) {
        ServeStats s;
        auto svc = b.tcp_serve(7, echo_handlers(s));
        REQUIRE(svc);
        // 200 KiB fill every 64 KiB buffer on the way and back before the
        // client reads: the echo stops taking bytes, and the FIN behind them
        // arrives while some still wait for on_writable. They must be echoed.
        const std::vector<uint8_t> up = pattern(200 * 1024, 3);
        auto c = a.tcp_dial({kIpB, 7}, deadline_in(5 * kSec));
        REQUIRE(c);
        REQUIRE((*c)->write_full(up.data(), up.size(), deadline_in(5 * kSec)));
        (*c)->shutdown();
        rt::sleep_for(std::chrono::milliseconds(20));
        std::vector<uint8_t> got(up.size());
        REQUIRE((*c)->read_full(got.data(), got.size(), deadline_in(5 * kSec)));
        CHECK(got == up);
        char x;
        auto eof = (*c)->read(&x, 1, deadline_in(5 * kSec));
        REQUIRE(eof);
        CHECK(*eof == 0);
        CHECK(s.closed(TcpCloseReason::kPeerFin) == 1);
        CHECK(s.writable > 0);
        check_rules(s);
      },
      small_buffers);
}

TEST_CASE("tcp_serve: close, abort and shutdown from callbacks; the peer's FIN and RST", "[tcp_serve]") {
  with_hosts({}, [](Stack& a, Stack& b, TestWire&) {
    ServeStats s;
    auto svc = b.tcp_serve(7, echo_handlers(s));
    REQUIRE(svc);
    auto dial = [&] {
      auto c = a.tcp_dial({kIpB, 7}, deadline_in(5 * kSec));
      REQUIRE(c);
      return std::move(*c);
    };
    // The server closes in on_data: "bye", then EOF.
    auto c1 = dial();
    REQUIRE(c1->write_full("!close", 6));
    auto r1 = read_to_eof(*c1);
    REQUIRE(r1);
    CHECK(*r1 == "bye\n");

    // The server aborts in on_data: RST.
    auto c2 = dial();
    REQUIRE(c2->write_full("!abort", 6));
    char buf[16];
    CHECK(c2->read(buf, sizeof buf, deadline_in(5 * kSec)).error() == ECONNRESET);

    // The server shuts down its side and goes on receiving.
    auto c3 = dial();
    REQUIRE(c3->write_full("!shut", 5));
    auto r3 = read_to_eof(*c3);
    REQUIRE(r3);
    CHECK(*r3 == "bye\n");
    REQUIRE(c3->write_full("after shutdown", 14));
    CHECK(eventually([&] { return s.sunk == 14; }));
    c3->shutdown();  // the server's on_close(kPeerFin)

    // The client resets.
    auto c4 = dial();
    REQUIRE(c4->write_full("hello", 5));
    REQUIRE(c4->read_full(buf, 5, deadline_in(5 * kSec)));
    c4->abort();

    CHECK(eventually([&] { return s.total_closed() == 4; }));
    CHECK(s.closed(TcpCloseReason::kLocal) == 2);
    CHECK(s.closed(TcpCloseReason::kPeerFin) == 1);
    CHECK(s.closed(TcpCloseReason::kReset) == 1);
    CHECK(s.close_err[static_cast<size_t>(TcpCloseReason::kReset)] == ECONNRESET);
    CHECK(s.live == 0);
    check_rules(s);
  });
}

TEST_CASE("tcp_serve: a refusing on_accept resets; destroying the service ends its connections", "[tcp_serve]") {
  with_hosts({}, [](Stack& a, Stack& b, TestWire&) {
    ServeStats rs;
    auto refuser = b.tcp_serve(9, refusing_handlers(rs));
    REQUIRE(refuser);
    auto r = a.tcp_dial({kIpB, 9}, deadline_in(5 * kSec));
    if (r) {  // the handshake completes before on_accept runs; the RST follows
      char buf[4];
      CHECK((*r)->read(buf, sizeof buf, deadline_in(5 * kSec)).error() == ECONNRESET);
    }
    CHECK(rs.refused == 1);
    CHECK(rs.bad_handle == 0);  // no on_close for a refused connection

    ServeStats s;
    auto svc = b.tcp_serve(7, echo_handlers(s));
    REQUIRE(svc);
    std::vector<std::unique_ptr<TcpConn>> idle;
    for (int i = 0; i < 8; i++) {
      auto c = a.tcp_dial({kIpB, 7}, deadline_in(5 * kSec));
      REQUIRE(c);
      char x = 'x';
      REQUIRE((*c)->write_full(&x, 1));
      REQUIRE((*c)->read_full(&x, 1, deadline_in(5 * kSec)));
      idle.push_back(std::move(*c));
    }
    // One more keeps data flowing while the service goes away.
    auto busy = a.tcp_dial({kIpB, 7}, deadline_in(5 * kSec));
    REQUIRE(busy);
    std::atomic<bool> stop{false};
    auto pump = rt::spawn([&] {
      std::vector<uint8_t> chunk(4096, 'p');
      while (!stop && (*busy)->write(chunk.data(), chunk.size(), deadline_in(200'000'000))) {
        char sink[4096];
        (void)(*busy)->read(sink, sizeof sink, deadline_in(1'000'000));
      }
    });
    rt::sleep_for(std::chrono::milliseconds(5));
    CHECK(s.live == 9);
    svc->reset();
    CHECK(s.closed(TcpCloseReason::kStopped) == 9);
    CHECK(s.live == 0);
    for (auto& c : idle) {
      auto rest = read_to_eof(*c);
      REQUIRE(rest);
      CHECK(*rest == "bye\n");  // sent in on_close(kStopped), before the FIN
    }
    stop = true;
    pump.join();
    CHECK(a.tcp_dial({kIpB, 7}, deadline_in(5 * kSec)).error() == ECONNREFUSED);
    auto again = b.tcp_serve(7, echo_handlers(s));  // the port is free again
    CHECK(again);
    check_rules(s);
  });
}
