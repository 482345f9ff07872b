// tcp_serve on the kernel stack: the servers of tests/net/tcp_serve_check.h,
// driven over loopback by plain blocking Linux clients in std::threads (the
// test's uthread waits for them by polling, so its kthread keeps running).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "slip/net/stack.h"
#include "slip/runtime/runtime.h"
#include "slip/runtime/time.h"
#include "tests/net/tcp_serve_check.h"

using namespace slip::net;
using namespace slip::net::test;
namespace rt = slip::rt;

namespace {

const Ipv4Addr kLoop = Ipv4Addr::of(127, 0, 0, 1);

void with_kernel_stack(const std::function<void(Stack&)>& body) {
  rt::Config rc;
  rc.kthreads = 2;
  rt::run(rc, [&] {
    StackConfig sc;
    sc.ip = kLoop;
    auto st = make_kernel_stack(sc);
    body(*st);
  });
}

// Runs fn on a plain thread; the calling uthread parks in short sleeps meanwhile.
template <class Fn>
void blocking(Fn fn) {
  std::atomic<bool> done{false};
  std::thread t([&] {
    fn();
    done = true;
  });
  while (!done) rt::sleep_for(std::chrono::milliseconds(1));
  t.join();
}

template <class Cond>
bool eventually(Cond cond) {
  const uint64_t end = slip::now_ns() + 5'000'000'000;
  while (!cond()) {
    if (slip::now_ns() > end) return false;
    rt::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// A blocking client socket connected to port (5 s receive timeout); -1 on failure.
int dial(uint16_t port, int rcvbuf = 0) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  const timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  while (n > 0) {
    const ssize_t r = send(fd, b, n, MSG_NOSIGNAL);
    if (r <= 0) return false;
    b += r, n -= static_cast<size_t>(r);
  }
  return true;
}

bool recv_exact(int fd, void* p, size_t n) {
  auto* b = static_cast<uint8_t*>(p);
  while (n > 0) {
    const ssize_t r = recv(fd, b, n, 0);
    if (r <= 0) return false;
    b += r, n -= static_cast<size_t>(r);
  }
  return true;
}

// Bytes until EOF, or "<errno N>" on an error.
std::string recv_to_eof(int fd) {
  std::string got;
  char buf[256];
  for (;;) {
    const ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r == 0) return got;
    if (r < 0) return "<errno " + std::to_string(errno) + ">";
    got.append(buf, static_cast<size_t>(r));
  }
}

void check_rules(const ServeStats& s) {
  CHECK(s.off_kthread == 0);
  CHECK(s.overlaps == 0);
  CHECK(s.bad_handle == 0);
}

}  // namespace

TEST_CASE("kernel stack: tcp_serve echo to blocking clients, many connections and a large transfer", "[kernel]") {
  with_kernel_stack([](Stack& st) {
    ServeStats s;
    auto svc = st.tcp_serve(0, echo_handlers(s));
    REQUIRE(svc.ok());
    const uint16_t port = (*svc)->local().port;
    REQUIRE(port != 0);
    CHECK(st.tcp_serve(port, {}).error() == EINVAL);

    constexpr int kConns = 8;
    std::atomic<int> ok{0};
    // 8 MiB to a client with a small receive buffer that starts reading late:
    // the echo's sends come up short and wait for EPOLLOUT.
    std::vector<uint8_t> up(8 << 20);
    for (size_t i = 0; i < up.size(); i++) up[i] = static_cast<uint8_t>(i * 2654435761u >> 13);
    Fnv got;
    size_t n_got = 0;
    blocking([&] {
      std::vector<std::thread> ts;
      for (int i = 0; i < kConns; i++) {
        ts.emplace_back([&, i] {
          const int fd = dial(port);
          bool good = fd >= 0;
          for (int round = 0; round < 20 && good; round++) {
            const std::string m = "conn " + std::to_string(i) + " round " + std::to_string(round);
            std::string back(m.size(), '\0');
            good = send_all(fd, m.data(), m.size()) && recv_exact(fd, back.data(), back.size()) && back == m;
          }
          if (good) {
            ::shutdown(fd, SHUT_WR);
            good = recv_to_eof(fd).empty();
          }
          if (fd >= 0) close(fd);
          if (good) ok++;
        });
      }
      const int fd = dial(port, 64 * 1024);
      if (fd >= 0) {
        std::thread writer([&] {
          send_all(fd, up.data(), up.size());
          ::shutdown(fd, SHUT_WR);
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        std::vector<uint8_t> buf(64 * 1024);
        for (;;) {
          const ssize_t r = recv(fd, buf.data(), buf.size(), 0);
          if (r <= 0) break;
          got.update(buf.data(), static_cast<size_t>(r));
          n_got += static_cast<size_t>(r);
        }
        writer.join();
        close(fd);
      }
      for (auto& t : ts) t.join();
    });
    Fnv sent;
    sent.update(up.data(), up.size());
    CHECK(ok == kConns);
    CHECK(n_got == up.size());
    CHECK(got.h == sent.h);
    CHECK(eventually([&] { return s.closed(TcpCloseReason::kPeerFin) == kConns + 1; }));
    CHECK(s.accepts == kConns + 1);
    CHECK(s.total_closed() == kConns + 1);
    CHECK(s.live == 0);
    CHECK(s.writable > 0);
    check_rules(s);
  });
}

TEST_CASE("kernel stack: tcp_serve records consumed only whole", "[kernel]") {
  with_kernel_stack([](Stack& st) {
    ServeStats s;
    auto svc = st.tcp_serve(0, record_handlers(s));
    REQUIRE(svc.ok());
    const uint16_t port = (*svc)->local().port;
    constexpr size_t kRecords = 2000;
    std::vector<uint8_t> data(kRecords * kRecord);
    for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<uint8_t>(i * 131 + (i >> 9));
    size_t matched = 0;
    blocking([&] {
      const int fd = dial(port);
      if (fd < 0) return;
      std::thread writer([&] {
        for (size_t off = 0; off < data.size();) {  // odd-sized writes: records arrive split
          const size_t n = std::min<size_t>(777 + off % 3000, data.size() - off);
          if (!send_all(fd, data.data() + off, n)) return;
          off += n;
        }
      });
      for (size_t i = 0; i < kRecords; i++) {
        uint64_t h = 0;
        if (!recv_exact(fd, &h, sizeof h)) break;
        Fnv f;
        f.update(data.data() + i * kRecord, kRecord);
        if (h == f.h) matched++;
      }
      writer.join();
      close(fd);
    });
    CHECK(matched == kRecords);
    CHECK(s.short_reply == 0);
    CHECK(eventually([&] { return s.live == 0; }));
    check_rules(s);
  });
}

TEST_CASE("kernel stack: tcp_serve close, abort, shutdown, RST, refusal and a destroyed service", "[kernel]") {
  with_kernel_stack([](Stack& st) {
    ServeStats s;
    auto svc = st.tcp_serve(0, echo_handlers(s));
    REQUIRE(svc.ok());
    const uint16_t port = (*svc)->local().port;
    std::string r1, r2, r3;
    blocking([&] {
      int fd = dial(port);  // the server closes in on_data
      send_all(fd, "!close", 6);
      r1 = recv_to_eof(fd);
      close(fd);
      fd = dial(port);  // the server aborts in on_data
      send_all(fd, "!abort", 6);
      r2 = recv_to_eof(fd);
      close(fd);
      fd = dial(port);  // the server shuts down its side and goes on receiving
      send_all(fd, "!shut", 5);
      r3 = recv_to_eof(fd);
      send_all(fd, "after shutdown", 14);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      ::shutdown(fd, SHUT_WR);
      close(fd);
      fd = dial(port);  // the client resets
      char buf[5];
      send_all(fd, "hello", 5);
      recv_exact(fd, buf, 5);
      const linger l{1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      close(fd);
    });
    CHECK(r1 == "bye\n");
    CHECK(r2 == "<errno " + std::to_string(ECONNRESET) + ">");
    CHECK(r3 == "bye\n");
    CHECK(eventually([&] { return s.total_closed() == 4; }));
    CHECK(s.sunk == 14);
    CHECK(s.closed(TcpCloseReason::kLocal) == 2);
    CHECK(s.closed(TcpCloseReason::kPeerFin) == 1);
    CHECK(s.closed(TcpCloseReason::kReset) == 1);
    CHECK(s.close_err[static_cast<size_t>(TcpCloseReason::kReset)] == ECONNRESET);

    ServeStats rs;
    auto refuser = st.tcp_serve(0, refusing_handlers(rs));
    REQUIRE(refuser.ok());
    std::string refused;
    blocking([&] {
      const int fd = dial((*refuser)->local().port);
      refused = fd < 0 ? "no connect" : recv_to_eof(fd);
      if (fd >= 0) close(fd);
    });
    CHECK(refused == "<errno " + std::to_string(ECONNRESET) + ">");
    CHECK(rs.refused == 1);
    CHECK(rs.bad_handle == 0);

    // Destroyed with live connections: each gets on_close(kStopped), whose
    // "bye" reaches the client before the FIN.
    std::vector<int> fds;
    blocking([&] {
      for (int i = 0; i < 4; i++) {
        const int fd = dial(port);
        char x = 'x';
        if (fd >= 0 && send_all(fd, &x, 1) && recv_exact(fd, &x, 1)) fds.push_back(fd);
      }
    });
    REQUIRE(fds.size() == 4);
    CHECK(s.live == 4);
    svc->reset();
    CHECK(s.closed(TcpCloseReason::kStopped) == 4);
    CHECK(s.live == 0);
    std::vector<std::string> rest;
    int after = 0;
    blocking([&] {
      for (int fd : fds) {
        rest.push_back(recv_to_eof(fd));
        close(fd);
      }
      after = dial(port);
      if (after >= 0) close(after);
    });
    for (const auto& r : rest) CHECK(r == "bye\n");
    CHECK(after == -1);  // nobody listens any more
    check_rules(s);
  });
}
