// The kernel backend: Linux sockets behind the Stack API, parked on the
// runtime's netpoller. Peers are real Linux sockets on loopback, some driven
// by plain blocking threads outside the runtime.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "slip/net/stack.h"
#include "tests/net/inplace_check.h"
#include "slip/runtime/runtime.h"
#include "slip/runtime/sync.h"
#include "slip/runtime/time.h"

using namespace slip::net;
namespace rt = slip::rt;

namespace {

const Ipv4Addr kLoop = Ipv4Addr::of(127, 0, 0, 1);

void with_kernel_stack(unsigned kthreads, const std::function<void(Stack&)>& body) {
  rt::Config rc;
  rc.kthreads = kthreads;
  rt::run(rc, [&] {
    StackConfig sc;
    sc.ip = kLoop;
    auto st = make_kernel_stack(sc);
    body(*st);
  });
}

// A TCP port that was free a moment ago (Linux picked it for a listener).
uint16_t free_tcp_port(Stack& st) {
  auto probe = st.tcp_listen(0);
  REQUIRE(probe.ok());
  return (*probe)->local().port;
}

// A blocking Linux TCP client in a plain thread: connects, sends msg, reads
// back the same number of bytes.
std::string linux_echo_client(uint16_t port, const std::string& msg) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string got;
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
      send(fd, msg.data(), msg.size(), 0) == static_cast<ssize_t>(msg.size())) {
    got.resize(msg.size());
    size_t n = 0;
    while (n < got.size()) {
      const ssize_t r = recv(fd, got.data() + n, got.size() - n, 0);
      if (r <= 0) break;
      n += static_cast<size_t>(r);
    }
    got.resize(n);
  }
  close(fd);
  return got;
}

}  // namespace

TEST_CASE("parse_stack_kind names the two stacks", "[kernel]") {
  CHECK(parse_stack_kind("slip") == StackKind::slip);
  CHECK(parse_stack_kind("kernel") == StackKind::kernel);
  CHECK_FALSE(parse_stack_kind("dpdk").has_value());
}

TEST_CASE("kernel stack: a Linux client talks to a uthread echo server", "[kernel]") {
  with_kernel_stack(1, [](Stack& st) {
    auto lis = st.tcp_listen(0);
    REQUIRE(lis.ok());
    const uint16_t port = (*lis)->local().port;
    REQUIRE(port != 0);
    rt::WaitGroup wg;
    wg.add(1);
    rt::spawn_detached([&] {
      auto c = (*lis)->accept(slip::now_ns() + 5'000'000'000);
      if (c.ok()) {
        char buf[4096];
        for (;;) {
          auto n = (*c)->read(buf, sizeof buf);
          if (!n || *n == 0 || !(*c)->write_full(buf, *n)) break;
        }
      }
      wg.done();
    });
    // The client blocks a plain thread; the runtime's only kthread must sleep
    // in epoll meanwhile and still wake for the server's socket.
    std::string msg(100000, 'x');
    for (size_t i = 0; i < msg.size(); i++) msg[i] = static_cast<char>('a' + i % 26);
    std::string got;
    std::thread client([&] { got = linux_echo_client(port, msg); });
    wg.wait();  // parks; the server finishes when the client closes
    client.join();
    CHECK(got == msg);
  });
}

TEST_CASE("kernel stack: uthread client and server, TCP and UDP", "[kernel]") {
  with_kernel_stack(2, [](Stack& st) {
    auto lis = st.tcp_listen(0);
    REQUIRE(lis.ok());
    const Endpoint ep{kLoop, (*lis)->local().port};
    constexpr int kConns = 32;
    // The acceptor and every server uthread are waited for before the stack
    // goes: one still in a read would use the stack after it was destroyed.
    rt::WaitGroup servers;
    servers.add(1);
    rt::spawn_detached([&] {
      for (int i = 0; i < kConns; i++) {
        auto c = (*lis)->accept(slip::now_ns() + 5'000'000'000);
        if (!c) break;
        servers.add(1);
        rt::spawn_detached([&servers, c = std::shared_ptr<TcpConn>(std::move(*c))] {
          char buf[2048];
          for (;;) {
            auto n = c->read(buf, sizeof buf);
            if (!n || *n == 0 || !c->write_full(buf, *n)) break;
          }
          servers.done();
        });
      }
      servers.done();
    });
    std::atomic<int> ok{0};
    rt::WaitGroup wg;
    for (int i = 0; i < kConns; i++) {
      wg.add(1);
      rt::spawn_detached([&, i] {
        auto c = st.tcp_dial(ep, slip::now_ns() + 5'000'000'000);
        if (c) {
          bool good = true;
          for (int round = 0; round < 20 && good; round++) {
            const std::string m = "conn " + std::to_string(i) + " round " + std::to_string(round);
            std::string back(m.size(), '\0');
            good = (*c)->write_full(m.data(), m.size()) && (*c)->read_full(back.data(), back.size()) && back == m;
          }
          if (good) ok++;
        }
        wg.done();
      });
    }
    wg.wait();
    CHECK(ok == kConns);

    auto srv = st.udp_bind(0);
    auto cli = st.udp_bind(0);
    REQUIRE((srv.ok() && cli.ok()));
    const Endpoint to{kLoop, (*srv)->local().port};
    REQUIRE((*cli)->write_to("ping", 4, to).ok());
    char buf[16];
    Endpoint from;
    auto n = (*srv)->read_from(buf, sizeof buf, &from, slip::now_ns() + 2'000'000'000);
    REQUIRE(n.ok());
    CHECK(std::string(buf, *n) == "ping");
    CHECK(from.port == (*cli)->local().port);
    servers.wait();  // the clients have closed: each server reads EOF and returns
  });
}

TEST_CASE("kernel stack: errors are errno results", "[kernel]") {
  with_kernel_stack(1, [](Stack& st) {
    // A port nobody listens on: the kernel answers RST.
    auto c = st.tcp_dial({kLoop, free_tcp_port(st)}, slip::now_ns() + 2'000'000'000);
    CHECK(c.error() == ECONNREFUSED);

    // Read deadlines: nothing arrives, the read times out and the uthread
    // (not the kthread) was the one waiting.
    auto u = st.udp_bind(0);
    REQUIRE(u.ok());
    char b[8];
    const uint64_t t0 = slip::now_ns();
    auto r = (*u)->read_from(b, sizeof b, nullptr, t0 + 30'000'000);
    CHECK(r.error() == ETIMEDOUT);
    CHECK(slip::now_ns() >= t0 + 30'000'000);

    // Same port twice.
    auto l1 = st.tcp_listen(0);
    REQUIRE(l1.ok());
    auto l2 = st.tcp_listen((*l1)->local().port);
    CHECK(l2.error() == EADDRINUSE);
  });
}

TEST_CASE("kernel stack: abort sends RST, close sends FIN", "[kernel]") {
  with_kernel_stack(1, [](Stack& st) {
    auto lis = st.tcp_listen(0);
    REQUIRE(lis.ok());
    const Endpoint ep{kLoop, (*lis)->local().port};
    auto a = st.tcp_dial(ep, slip::now_ns() + 2'000'000'000);
    auto sa = (*lis)->accept(slip::now_ns() + 2'000'000'000);
    REQUIRE((a.ok() && sa.ok()));
    (*a)->close();
    char buf[4];
    auto eof = (*sa)->read(buf, sizeof buf, slip::now_ns() + 2'000'000'000);
    REQUIRE(eof.ok());
    CHECK(*eof == 0);

    auto b = st.tcp_dial(ep, slip::now_ns() + 2'000'000'000);
    auto sb = (*lis)->accept(slip::now_ns() + 2'000'000'000);
    REQUIRE((b.ok() && sb.ok()));
    (*b)->abort();
    auto rst = (*sb)->read(buf, sizeof buf, slip::now_ns() + 2'000'000'000);
    CHECK(rst.error() == ECONNRESET);
  });
}

TEST_CASE("kernel stack: TcpConn::info reads Linux's TCP_INFO and queues", "[kernel]") {
  with_kernel_stack(1, [](Stack& st) {
    auto lis = st.tcp_listen(0);
    REQUIRE(lis.ok());
    auto c = st.tcp_dial({kLoop, (*lis)->local().port}, slip::now_ns() + 2'000'000'000);
    auto s = (*lis)->accept(slip::now_ns() + 2'000'000'000);
    REQUIRE((c.ok() && s.ok()));
    const std::string msg(1000, 'x');
    REQUIRE((*c)->write_full(msg.data(), msg.size()));
    TcpInfo si;
    for (int i = 0; i < 200 && (si = (*s)->info()).unread_bytes != msg.size(); i++)
      rt::sleep_for(std::chrono::milliseconds(10));
    CHECK(si.state == "ESTABLISHED");
    CHECK(si.unread_bytes == msg.size());
    const TcpInfo ci = (*c)->info();
    CHECK(ci.state == "ESTABLISHED");
    CHECK(ci.unsent_bytes == 0);
    CHECK(ci.cwnd_bytes > 0);
    CHECK(ci.rto_ns > 0);
    (*c)->shutdown();
    for (int i = 0; i < 200 && ((*s)->info().state != "CLOSE_WAIT" || (*c)->info().state != "FIN_WAIT_2"); i++)
      rt::sleep_for(std::chrono::milliseconds(10));
    CHECK((*s)->info().state == "CLOSE_WAIT");
    CHECK((*c)->info().state == "FIN_WAIT_2");
  });
}

TEST_CASE("kernel stack: udp_serve runs the handler on the polling kthread", "[kernel]") {
  with_kernel_stack(2, [](Stack& st) {
    std::atomic<int> calls{0}, off_kthread{0};
    auto svc = st.udp_serve(0, [&](const uint8_t* p, size_t len, Endpoint from, UdpService& s) {
      calls++;
      // A poll may run while a uthread is current (from yield), so check the
      // thread, not in_uthread(): the handler runs on a runtime kthread.
      if (rt::kthread_index() < 0) off_kthread++;
      (void)s.send(p, len, from);
    });
    REQUIRE(svc.ok());
    const Endpoint to{kLoop, (*svc)->local().port};
    auto cli = st.udp_bind(0);
    REQUIRE(cli.ok());
    for (int i = 0; i < 200; i++) {
      const std::string m = "request " + std::to_string(i);
      REQUIRE((*cli)->write_to(m.data(), m.size(), to).ok());
      char buf[64];
      auto n = (*cli)->read_from(buf, sizeof buf, nullptr, slip::now_ns() + 2'000'000'000);
      REQUIRE(n.ok());
      REQUIRE(std::string(buf, *n) == m);
    }
    CHECK(calls == 200);
    CHECK(off_kthread == 0);
    // Destroying the service while datagrams keep arriving stops delivery.
    for (int i = 0; i < 50; i++) (void)(*cli)->write_to("x", 1, to);
    svc->reset();
    const int after = calls.load();
    for (int i = 0; i < 50; i++) (void)(*cli)->write_to("y", 1, to);
    rt::sleep_for(std::chrono::milliseconds(20));
    CHECK(calls == after);
  });
}

TEST_CASE("kernel stack: read_inplace keeps the zero-copy contract", "[kernel]") {
  with_kernel_stack(1, [](Stack& st) {
    slip::net::test::check_inplace_read(st, st, {kLoop, free_tcp_port(st)});
  });
}

// read_inplace receives into a per-connection buffer: what its fn leaves is
// served to the next read of either kind, a fn that wanted more is shown the
// bytes that arrived since, and a drained socket parks until its next edge.
TEST_CASE("kernel stack: read_inplace holds what fn left and a drained socket waits for its edge", "[kernel]") {
  with_kernel_stack(1, [](Stack& st) {
    auto lis = st.tcp_listen(0);
    REQUIRE(lis.ok());
    const uint16_t port = (*lis)->local().port;
    std::atomic<int> step{0};
    auto at = [&step](int want) {
      while (step.load() < want) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    };
    std::thread peer([&] {
      const int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(port);
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
        int i = 0;
        for (const char* part : {"hello world", "ab", "cd", "x"}) {
          (void)send(fd, part, std::strlen(part), 0);
          at(++i);
        }
      }
      close(fd);
    });
    auto c = (*lis)->accept(slip::now_ns() + 5'000'000'000);
    REQUIRE(c.ok());
    auto& conn = **c;
    std::string seen;
    auto r = conn.read_inplace([&](const uint8_t* p, size_t n) {
      seen.assign(reinterpret_cast<const char*>(p), n);
      return size_t{5};
    });
    REQUIRE(r.ok());
    CHECK(r->taken == 5);
    CHECK(seen == "hello world");
    char buf[64];
    auto n = conn.read(buf, sizeof buf, slip::now_ns() + 5'000'000'000);
    REQUIRE(n.ok());
    CHECK(std::string(buf, *n) == " world");  // the held bytes, not a new receive

    step = 1;  // "ab" and, once "ab" was declined, "cd"
    auto want4 = [&](const uint8_t* p, size_t k) {
      seen.assign(reinterpret_cast<const char*>(p), k);
      return k >= 4 ? size_t{4} : size_t{0};
    };
    r = conn.read_inplace(want4, slip::now_ns() + 5'000'000'000);
    INFO("errno " << (r.ok() ? 0 : r.error()));
    REQUIRE(r.ok());
    CHECK(r->taken == 0);
    CHECK(seen == "ab");
    step = 2;
    for (int i = 0; i < 500 && seen.size() < 4; i++) {
      rt::sleep_until(slip::now_ns() + 2'000'000);
      r = conn.read_inplace(want4, slip::now_ns() + 5'000'000'000);
      REQUIRE(r.ok());
    }
    CHECK(seen == "abcd");
    CHECK(r->taken == 4);

    // Drained: nothing arrives, so the read times out rather than spinning.
    n = conn.read(buf, sizeof buf, slip::now_ns() + 30'000'000);
    REQUIRE_FALSE(n.ok());
    CHECK(n.error() == ETIMEDOUT);
    step = 3;  // "x": its edge wakes the read
    n = conn.read(buf, sizeof buf, slip::now_ns() + 5'000'000'000);
    REQUIRE(n.ok());
    CHECK(std::string(buf, *n) == "x");
    step = 4;  // the peer closes
    r = conn.read_inplace([](const uint8_t*, size_t k) { return k; }, slip::now_ns() + 5'000'000'000);
    REQUIRE(r.ok());
    CHECK(r->eof);
    peer.join();
  });
}

TEST_CASE("kernel stacks come and go while kthreads sleep in epoll and get woken", "[kernel]") {
  // Under ASan this catches a waker touching a netpoller after it is gone.
  rt::Config rc;
  rc.kthreads = 2;
  rt::run(rc, [] {
    std::atomic<bool> stop{false};
    rt::WaitGroup wg;
    wg.add(1);
    rt::spawn_detached([&] {  // constant wake-ups of the other kthread
      while (!stop) rt::sleep_for(std::chrono::microseconds(50));
      wg.done();
    });
    for (int i = 0; i < 200; i++) {
      StackConfig sc;
      sc.ip = kLoop;
      auto st = make_kernel_stack(sc);
      rt::sleep_for(std::chrono::microseconds(i % 7 * 20));  // let a kthread fall asleep in it
    }
    stop = true;
    wg.wait();
  });
  SUCCEED("200 stacks created and destroyed under wake-ups");
}
