// The slip stack end to end: two hosts on the test wire, each a full stack
// (ARP, IPv4, ICMP, UDP, TCP) polled by the runtime's kthreads.
#include <catch2/catch.hpp>

#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <random>
#include <vector>

#include "slip/net/stack.h"
#include "tests/net/inplace_check.h"
#include "tests/net/stack/stack_test_util.h"
#include "slip/net/wire.h"
#include "slip/runtime/runtime.h"
#include "slip/runtime/sync.h"

using namespace slip::net;
using namespace slip::net::test;
namespace rt = slip::rt;

namespace {

// Streaming SHA-256 through OpenSSL's EVP interface.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  void update(const void* p, size_t n) { EVP_DigestUpdate(ctx_, p, n); }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    static const char* kHex = "0123456789abcdef";
    std::string s;
    for (unsigned i = 0; i < len; i++) s += {kHex[md[i] >> 4], kHex[md[i] & 15]};
    return s;
  }

 private:
  EVP_MD_CTX* ctx_;
};

}  // namespace

TEST_CASE("UDP echo between two stacks, with ARP resolution", "[stack]") {
  with_hosts({}, [](Stack& a, Stack& b, TestWire&) {
    auto srv = b.udp_bind(7);
    REQUIRE(srv);
    auto echo = rt::spawn([&] {
      char buf[2048];
      Endpoint from;
      for (int i = 0; i < 100; i++) {
        auto n = (*srv)->read_from(buf, sizeof buf, &from, deadline_in(5'000'000'000));
        if (!n) return;
        (void)(*srv)->write_to(buf, *n, from);
      }
    });
    auto cli = a.udp_bind(0);
    REQUIRE(cli);
    CHECK((*cli)->local().port >= 49152);
    for (int i = 0; i < 100; i++) {
      std::string msg = "hello " + std::to_string(i);
      REQUIRE((*cli)->write_to(msg.data(), msg.size(), {kIpB, 7}));
      char buf[64];
      Endpoint from;
      auto n = (*cli)->read_from(buf, sizeof buf, &from, deadline_in(5'000'000'000));
      REQUIRE(n);
      CHECK(std::string(buf, *n) == msg);
      CHECK(from == Endpoint{kIpB, 7});
    }
    echo.join();
    NetCounters ca;
    a.counters(ca);
    CHECK(ca.arp_requests_sent >= 1);
    CHECK(ca.rx_frames >= 100);
  });
}

TEST_CASE("udp_serve: the handler runs in the receive path, zero-copy, and stops on destruction", "[stack]") {
  with_hosts({}, [](Stack& a, Stack& b, TestWire&) {
    std::atomic<int> calls{0}, off_kthread{0};
    auto svc = b.udp_serve(7, [&](const uint8_t* p, size_t len, Endpoint from, UdpService& s) {
      calls++;
      // A poll may run while a uthread is current (from yield), so check the
      // thread, not in_uthread(): the handler runs on a runtime kthread.
      if (rt::kthread_index() < 0) off_kthread++;
      (void)s.send(p, len, from);
    });
    REQUIRE(svc);
    CHECK(b.udp_bind(7).error() == EADDRINUSE);
    auto cli = a.udp_bind(0);
    REQUIRE(cli);
    for (int i = 0; i < 100; i++) {
      std::string msg = "serve " + std::to_string(i);
      REQUIRE((*cli)->write_to(msg.data(), msg.size(), {kIpB, 7}));
      char buf[64];
      auto n = (*cli)->read_from(buf, sizeof buf, nullptr, deadline_in(5'000'000'000));
      REQUIRE(n);
      CHECK(std::string(buf, *n) == msg);
    }
    CHECK(calls == 100);
    CHECK(off_kthread == 0);
    for (int i = 0; i < 20; i++) (void)(*cli)->write_to("x", 1, {kIpB, 7});
    svc->reset();  // with datagrams in flight
    const int after = calls.load();
    rt::sleep_for(std::chrono::milliseconds(20));  // the in-flight ones land on a closed port
    NetCounters before;
    b.counters(before);
    REQUIRE((*cli)->write_to("y", 1, {kIpB, 7}));
    rt::sleep_for(std::chrono::milliseconds(20));
    NetCounters now;
    b.counters(now);
    CHECK(calls == after);
    CHECK(now.drops_of(Drop::kUdpNoPort) == before.drops_of(Drop::kUdpNoPort) + 1);
  });
}

TEST_CASE("UDP to a closed port is counted and answered with port unreachable", "[stack]") {
  with_hosts({}, [](Stack& a, Stack& b, TestWire&) {
    auto cli = a.udp_bind(0);
    REQUIRE(cli);
    REQUIRE((*cli)->write_to("x", 1, {kIpB, 9999}));
    char buf[16];
    CHECK((*cli)->read_from(buf, sizeof buf, nullptr, deadline_in(50'000'000)).error() == ETIMEDOUT);
    NetCounters cb, ca;
    b.counters(cb);
    a.counters(ca);
    CHECK(cb.drops_of(Drop::kUdpNoPort) == 1);
    CHECK(ca.drops_of(Drop::kIcmpType) == 1);  // the unreachable reached a
    CHECK(a.udp_bind((*cli)->local().port).error() == EADDRINUSE);
  });
}

TEST_CASE("TCP echo, orderly close and EOF", "[stack]") {
  with_hosts({}, [](Stack& a, Stack& b, TestWire&) {
    auto lis = b.tcp_listen(7);
    REQUIRE(lis);
    CHECK(b.tcp_listen(7).error() == EADDRINUSE);
    auto srv = rt::spawn([&] {
      auto c = (*lis)->accept(deadline_in(5'000'000'000));
      if (!c) return;
      char buf[4096];
      for (;;) {
        auto n = (*c)->read(buf, sizeof buf);
        if (!n || *n == 0) break;
        if (!(*c)->write_full(buf, *n)) break;
      }
    });
    auto c = a.tcp_dial({kIpB, 7}, deadline_in(5'000'000'000));
    REQUIRE(c);
    CHECK((*c)->remote() == Endpoint{kIpB, 7});
    for (int i = 0; i < 50; i++) {
      std::string msg = "ping " + std::to_string(i);
      REQUIRE((*c)->write_full(msg.data(), msg.size()));
      std::string got(msg.size(), '\0');
      REQUIRE((*c)->read_full(got.data(), got.size(), deadline_in(5'000'000'000)));
      CHECK(got == msg);
    }
    (*c)->shutdown();
    char buf[8];
    auto n = (*c)->read(buf, sizeof buf, deadline_in(5'000'000'000));
    REQUIRE(n);
    CHECK(*n == 0);  // the server saw our FIN, closed, and we read EOF
    srv.join();
  });
}

TEST_CASE("TcpConn::info reports state, queued bytes and timers", "[stack]") {
  with_hosts({}, [](Stack& a, Stack& b, TestWire&) {
    auto lis = b.tcp_listen(7);
    REQUIRE(lis);
    auto c = a.tcp_dial({kIpB, 7}, deadline_in(5'000'000'000));
    REQUIRE(c);
    auto s = (*lis)->accept(deadline_in(5'000'000'000));
    REQUIRE(s);
    const std::string msg(1000, 'x');
    REQUIRE((*c)->write_full(msg.data(), msg.size()));
    // Unread at the server until it reads; acknowledged at the client.
    TcpInfo si, ci;
    for (int i = 0; i < 200; i++) {
      si = (*s)->info();
      ci = (*c)->info();
      if (si.unread_bytes == msg.size() && ci.unacked_bytes == 0) break;
      rt::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(si.state == "ESTABLISHED");
    CHECK(si.unread_bytes == msg.size());
    CHECK(ci.state == "ESTABLISHED");
    CHECK(ci.unacked_bytes == 0);
    CHECK(ci.unsent_bytes == 0);
    CHECK(ci.send_window > 0);
    CHECK(ci.cwnd_bytes > 0);
    CHECK(ci.srtt_ns > 0);
    CHECK(ci.rto_ns > 0);
    // The client's half close: FIN_WAIT_2 once acknowledged, CLOSE_WAIT at the server.
    (*c)->shutdown();
    for (int i = 0; i < 200 && ((*c)->info().state != "FIN_WAIT_2" || (*s)->info().state != "CLOSE_WAIT"); i++)
      rt::sleep_for(std::chrono::milliseconds(10));
    CHECK((*c)->info().state == "FIN_WAIT_2");
    CHECK((*s)->info().state == "CLOSE_WAIT");
    CHECK((*s)->info().unread_bytes == msg.size());
  });
}

TEST_CASE("TCP listen on port 0 takes a free ephemeral port, as Linux does", "[stack]") {
  with_hosts({}, [](Stack& a, Stack& b, TestWire&) {
    auto l1 = b.tcp_listen(0);
    auto l2 = b.tcp_listen(0);
    REQUIRE(l1);
    REQUIRE(l2);
    const uint16_t p1 = (*l1)->local().port, p2 = (*l2)->local().port;
    CHECK(p1 >= 49152);
    CHECK(p2 >= 49152);
    CHECK(p1 != p2);
    CHECK(b.tcp_listen(p1).error() == EADDRINUSE);
    auto srv = rt::spawn([&] {
      if (auto c = (*l2)->accept(deadline_in(5'000'000'000))) (void)(*c)->write_full("hi", 2);
    });
    auto c = a.tcp_dial({kIpB, p2}, deadline_in(5'000'000'000));
    REQUIRE(c);
    char buf[2];
    REQUIRE((*c)->read_full(buf, 2, deadline_in(5'000'000'000)));
    CHECK(std::string(buf, 2) == "hi");
    srv.join();
  });
}

TEST_CASE("TCP dial to a closed port is refused; to a silent host it times out", "[stack]") {
  with_hosts({}, [](Stack& a, Stack&, TestWire&) {
    auto c = a.tcp_dial({kIpB, 81}, deadline_in(5'000'000'000));
    CHECK(c.error() == ECONNREFUSED);
    auto d = a.tcp_dial({Ipv4Addr::of(198, 18, 0, 99), 80}, deadline_in(100'000'000));
    CHECK(d.error() == ETIMEDOUT);
  });
}

TEST_CASE("TCP moves bulk data intact over a lossy, reordering, duplicating wire", "[stack]") {
  WireFaults f;
  f.drop = 0.02;
  f.reorder = 0.02;
  f.duplicate = 0.01;
  f.seed = 9;
  with_hosts(f, [](Stack& a, Stack& b, TestWire& wire) {
    const size_t kBytes = 8 << 20;
    auto lis = b.tcp_listen(5001);
    REQUIRE(lis);
    std::vector<uint8_t> up = pattern(kBytes, 1), down = pattern(kBytes, 2);
    std::vector<uint8_t> got_up(kBytes), got_down(kBytes);
    int srv_err = 0;
    auto srv = rt::spawn([&] {
      auto c = (*lis)->accept(deadline_in(10'000'000'000));
      if (!c) {
        srv_err = c.error();
        return;
      }
      auto w = rt::spawn([&] {
        if (auto r = (*c)->write_full(down.data(), down.size()); !r) srv_err = r.error();
      });
      if (auto r = (*c)->read_full(got_up.data(), got_up.size()); !r) srv_err = r.error();
      w.join();
    });
    auto c = a.tcp_dial({kIpB, 5001}, deadline_in(10'000'000'000));
    REQUIRE(c);
    int cli_err = 0;
    auto w = rt::spawn([&] {
      if (auto r = (*c)->write_full(up.data(), up.size()); !r) cli_err = r.error();
    });
    if (auto r = (*c)->read_full(got_down.data(), got_down.size()); !r) cli_err = r.error();
    w.join();
    srv.join();
    CHECK(srv_err == 0);
    CHECK(cli_err == 0);
    CHECK((got_up == up));  // not decomposed: Catch would print 8 MiB on failure
    CHECK((got_down == down));
    CHECK(wire.stats().dropped > 0);
    CHECK(wire.stats().reordered > 0);
    CHECK(wire.stats().oversize == 0);  // SACK blocks never push a segment past the MTU
  });
}

TEST_CASE("a jumbo MTU: TCP segments and UDP datagrams as large as the link carries", "[stack]") {
  WireFaults f;
  f.drop = 0.01;
  f.reorder = 0.01;
  f.seed = 5;
  with_hosts(
      f,
      [](Stack& a, Stack& b, TestWire& wire) {
        // UDP: one frame's worth goes, one byte more is refused (no fragmentation).
        auto echo = b.udp_bind(7);
        auto cli = a.udp_bind(0);
        REQUIRE(echo);
        REQUIRE(cli);
        std::vector<uint8_t> big = pattern(9000 - 28, 3), got(9000);
        CHECK((*cli)->write_to(big.data(), big.size() + 1, {kIpB, 7}).error() == EMSGSIZE);
        Endpoint from;
        for (int tries = 0;; tries++) {  // the wire may drop it
          REQUIRE(tries < 20);
          REQUIRE((*cli)->write_to(big.data(), big.size(), {kIpB, 7}));
          auto n = (*echo)->read_from(got.data(), got.size(), &from, deadline_in(100'000'000));
          if (n) {
            CHECK(*n == big.size());
            CHECK(std::equal(big.begin(), big.end(), got.begin()));
            break;
          }
        }

        // TCP: 4 MiB each way with loss; both ends announce 8960 and use it.
        const size_t kBytes = 4 << 20;
        auto lis = b.tcp_listen(5001);
        REQUIRE(lis);
        std::vector<uint8_t> up = pattern(kBytes, 1), down = pattern(kBytes, 2), got_up(kBytes), got_down(kBytes);
        const uint64_t sent_before = wire.stats().sent;
        auto srv = rt::spawn([&] {
          auto c = (*lis)->accept(deadline_in(10'000'000'000));
          if (!c) return;
          auto w = rt::spawn([&] { (void)(*c)->write_full(down.data(), down.size()); });
          (void)(*c)->read_full(got_up.data(), got_up.size(), deadline_in(30'000'000'000));
          w.join();
        });
        auto c = a.tcp_dial({kIpB, 5001}, deadline_in(10'000'000'000));
        REQUIRE(c);
        auto w = rt::spawn([&] { (void)(*c)->write_full(up.data(), up.size()); });
        (void)(*c)->read_full(got_down.data(), got_down.size(), deadline_in(30'000'000'000));
        w.join();
        srv.join();
        CHECK((got_up == up));  // not decomposed: Catch would print 4 MiB on failure
        CHECK((got_down == down));
        // At 1448 bytes a segment the data alone would take 5,794 frames.
        const uint64_t frames = wire.stats().sent - sent_before;
        INFO("frames on the wire for 8 MiB: " << frames);
        CHECK(frames < 2 * kBytes / 1448);
        CHECK(wire.stats().oversize == 0);
        CHECK(wire.stats().dropped > 0);
      },
      {}, 9000);
}

TEST_CASE("MTU 1500: a datagram of 1473 bytes is refused, 1472 goes", "[stack]") {
  with_hosts({}, [](Stack& a, Stack& b, TestWire& wire) {
    auto echo = b.udp_bind(7);
    auto cli = a.udp_bind(0);
    REQUIRE(echo);
    REQUIRE(cli);
    std::vector<uint8_t> buf(1473, 0x5a);
    CHECK((*cli)->write_to(buf.data(), 1473, {kIpB, 7}).error() == EMSGSIZE);
    REQUIRE((*cli)->write_to(buf.data(), 1472, {kIpB, 7}));
    auto n = (*echo)->read_from(buf.data(), buf.size(), nullptr, deadline_in(5'000'000'000));
    REQUIRE(n);
    CHECK(*n == 1472);
    CHECK(wire.stats().oversize == 0);
  });
}

TEST_CASE("a listener's backlog bounds unaccepted connections", "[stack]") {
  with_hosts({}, [](Stack& a, Stack& b, TestWire&) {
    auto lis = b.tcp_listen(8000, /*backlog=*/2);
    REQUIRE(lis);
    std::vector<std::unique_ptr<TcpConn>> conns;
    for (int i = 0; i < 2; i++) {
      auto c = a.tcp_dial({kIpB, 8000}, deadline_in(5'000'000'000));
      REQUIRE(c);
      conns.push_back(std::move(*c));
    }
    rt::sleep_for(std::chrono::milliseconds(5));
    auto third = a.tcp_dial({kIpB, 8000}, deadline_in(50'000'000));
    CHECK(third.error() == ETIMEDOUT);  // its SYNs were dropped, not refused
    NetCounters cb;
    b.counters(cb);
    CHECK(cb.drops_of(Drop::kTcpBacklogFull) >= 1);
    for (int i = 0; i < 2; i++) CHECK((*lis)->accept(deadline_in(1'000'000'000)));
  });
}

// A handshake that completes on one kthread while the listener is destroyed
// on another must end in a RST, not in an ESTABLISHED connection nobody owns
// (whose peer would wait forever).
TEST_CASE("closing a listener while handshakes complete leaves no connection without an owner", "[stack]") {
  with_hosts({}, [](Stack& a, Stack& b, TestWire&) {
    std::atomic<int> connected{0}, hung{0};
    std::mt19937 rng(3);
    for (int round = 0; round < 60; round++) {
      auto lis = b.tcp_listen(0, 16);
      REQUIRE(lis);
      const Endpoint at{kIpB, (*lis)->local().port};
      std::vector<rt::JoinHandle> dialers;
      for (int i = 0; i < 16; i++)
        dialers.push_back(rt::spawn([&] {
          auto c = a.tcp_dial(at, deadline_in(1'000'000'000));
          if (!c) return;  // refused: the listener went first
          connected++;
          char byte;
          auto r = (*c)->read(&byte, 1, deadline_in(3'000'000'000));
          if (!r && r.error() == ETIMEDOUT) hung++;
        }));
      const uint64_t until = slip::now_ns() + rng() % 200'000;
      while (slip::now_ns() < until) rt::yield();
      lis->reset();
      for (auto& d : dialers) d.join();
    }
    CHECK(connected > 0);  // some handshakes completed, so the race was there to lose
    CHECK(hung == 0);
  });
}

// Streams SLIP_BULK_MIB (default 256) MiB each way at once over a wire with
// 2% loss plus reordering and duplication, and compares SHA-256 digests.
TEST_CASE("bulk transfer both ways with loss: SHA-256 identical at the far end", "[stack-bulk]") {
  const char* env = std::getenv("SLIP_BULK_MIB");
  const size_t mib = env ? std::strtoull(env, nullptr, 10) : 256;
  const size_t total = mib << 20;
  WireFaults f;
  f.drop = 0.02;
  f.reorder = 0.01;
  f.duplicate = 0.01;
  f.seed = 77;
  with_hosts(f, [&](Stack& a, Stack& b, TestWire& wire) {
    auto lis = b.tcp_listen(5002);
    REQUIRE(lis);
    // Each side sends a seeded stream and hashes what it sent and what it got.
    auto pump = [total](TcpConn& c, uint32_t seed, std::string* sent_digest, std::string* got_digest, int* error) {
      auto writer = rt::spawn([&c, total, seed, sent_digest, error] {
        Sha256 h;
        std::mt19937 rng(seed);
        std::vector<uint8_t> chunk(64 * 1024);
        for (size_t off = 0; off < total; off += chunk.size()) {
          const size_t n = std::min(chunk.size(), total - off);
          for (size_t i = 0; i < n; i++) chunk[i] = static_cast<uint8_t>(rng());
          h.update(chunk.data(), n);
          if (auto r = c.write_full(chunk.data(), n); !r) {
            *error = r.error();
            return;
          }
        }
        *sent_digest = h.hex();
      });
      Sha256 h;
      std::vector<uint8_t> buf(64 * 1024);
      for (size_t got = 0; got < total;) {
        auto r = c.read(buf.data(), buf.size());
        if (!r || *r == 0) {
          *error = r ? ENODATA : r.error();
          break;
        }
        h.update(buf.data(), *r);
        got += *r;
      }
      *got_digest = h.hex();
      writer.join();
    };
    std::string a_sent, a_got, b_sent, b_got;
    int a_err = 0, b_err = 0;
    auto srv = rt::spawn([&] {
      auto c = (*lis)->accept(deadline_in(10'000'000'000));
      if (!c) {
        b_err = c.error();
        return;
      }
      pump(**c, 2, &b_sent, &b_got, &b_err);
    });
    auto c = a.tcp_dial({kIpB, 5002}, deadline_in(10'000'000'000));
    REQUIRE(c);
    pump(**c, 1, &a_sent, &a_got, &a_err);
    srv.join();
    NetCounters ca, cb;
    a.counters(ca);
    b.counters(cb);
    INFO(mib << " MiB each way; wire pool free " << wire.pool().available() << "/" << wire.pool().size()
              << "; no-buffer drops " << ca.drops_of(Drop::kNoBuffer) + cb.drops_of(Drop::kNoBuffer)
              << "; tx ring full " << ca.tx_ring_full + cb.tx_ring_full << "; wire dropped " << wire.stats().dropped
              << "; data segments by reference " << ca.tx_tcp_by_ref << "/" << cb.tx_tcp_by_ref << ", copied "
              << ca.tx_tcp_copied << "/" << cb.tx_tcp_copied << "; TCP checksum drops "
              << ca.drops_of(Drop::kTcpChecksum) + cb.drops_of(Drop::kTcpChecksum) << ", out of window "
              << ca.drops_of(Drop::kTcpOutOfWindow) + cb.drops_of(Drop::kTcpOutOfWindow) << ", wire corrupted "
              << wire.stats().corrupted);
    // Segments leave from the send queue's buffers, retransmissions too; a
    // copy is the exception (a segment cut by the window or by SACK, and the
    // rest of its buffer), about 1 in 500 here.
    CHECK(ca.tx_tcp_by_ref > 50 * ca.tx_tcp_copied);
    CHECK(cb.tx_tcp_by_ref > 50 * cb.tx_tcp_copied);
    CHECK(a_err == 0);
    CHECK(b_err == 0);
    CHECK(a_sent.size() == 64);
    CHECK(a_sent == b_got);
    CHECK(b_sent == a_got);
  });
}

TEST_CASE("read_inplace hands over received bytes in place, in order, then EOF", "[stack]") {
  with_hosts({}, [](Stack& a, Stack& b, TestWire&) { slip::net::test::check_inplace_read(a, b, {kIpB, 5555}); });
}
