// apps/common's HTTP/1.1 server (slip-gateway's and slip-worker's) on the
// kernel stack: keep-alive, pipelining, streaming, routing errors, deadlines.
// The parser under it is tested in tests/proto.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "http_server.h"
#include "slip/net/stack.h"
#include "slip/runtime/runtime.h"

using namespace slip::app::http;
namespace rt = slip::rt;

namespace {

// A blocking client on Linux sockets (a plain std::thread, outside the runtime).
struct Client {
  int fd = -1;
  explicit Client(uint16_t port) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~Client() { close(fd); }
  void send(const std::string& s) { REQUIRE(::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == ssize_t(s.size())); }
  // Everything until the server closes (or 5 s pass).
  std::string read_all() {
    std::string out;
    char b[4096];
    for (ssize_t n; (n = recv(fd, b, sizeof b, 0)) > 0;) out.append(b, size_t(n));
    return out;
  }
};

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) n++;
  return n;
}

// Runs a server with a few routes on the kernel stack and calls client(port) on a thread.
template <class F>
void with_server(Limits lim, F client) {
  rt::Config cfg;
  cfg.kthreads = 1;
  rt::run(cfg, [&] {
    auto st = slip::net::make_kernel_stack(slip::net::StackConfig{});
    Router router;
    router.add("GET", "/hello", [](const Request&, Responder& r) { (void)r.respond(200, "text/plain", "hi"); });
    router.add("POST", "/echo", [](const Request& q, Responder& r) { (void)r.respond(200, "text/plain", q.body); });
    router.add("GET", "/stream", [](const Request&, Responder& r) {
      (void)r.start_stream(200, "text/event-stream");
      for (int i = 0; i < 3; i++) {
        (void)r.send_chunk("data: " + std::to_string(i) + "\n\n");
        rt::sleep_for(std::chrono::milliseconds(5));
      }
      (void)r.end_stream();
    });
    router.add("GET", "/first", [](const Request&, Responder& r) {
      (void)r.start_stream(200, "text/event-stream", {}, "data: a\n\n");
      rt::sleep_for(std::chrono::milliseconds(20));  // the first read sees only what start_stream wrote
      (void)r.send_chunk("data: b\n\n");
      (void)r.end_stream();
    });
    ServerOptions so;
    so.port = 0;
    so.limits = lim;
    HttpServer srv(*st, router, so);
    srv.start();
    std::atomic<bool> done{false};
    std::thread t([&] {
      client(srv.port());
      done = true;
    });
    while (!done) rt::sleep_for(std::chrono::milliseconds(5));
    t.join();
    CHECK(srv.finish(slip::now_ns() + 2'000'000'000));
  });
}

}  // namespace

TEST_CASE("server: keep-alive, pipelining, streaming and routing errors", "[http]") {
  with_server(Limits{}, [](uint16_t port) {
    Client c(port);
    c.send("GET /hello HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
           "GET /stream HTTP/1.1\r\nHost: a\r\n\r\nHEAD /hello HTTP/1.1\r\nHost: a\r\n\r\n"
           "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"
           "POST /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    const std::string r = c.read_all();
    CHECK(count(r, "HTTP/1.1 200 OK") == 4);
    CHECK(count(r, "Content-Length: 2\r\n\r\n") == 2);  // GET and HEAD
    CHECK(count(r, "Content-Length: 2\r\n\r\nhi") == 1);  // HEAD has no body
    CHECK(r.find("Content-Length: 3\r\n\r\nabc") != std::string::npos);
    CHECK(r.find("Transfer-Encoding: chunked\r\n\r\n9\r\ndata: 0\n\n\r\n9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n0\r\n\r\n") !=
          std::string::npos);
    CHECK(r.find("HTTP/1.1 404 Not Found") != std::string::npos);
    CHECK(r.find("{\"error\":{\"message\":\"Invalid URL (GET /nope)\",\"type\":\"invalid_request_error\","
                 "\"param\":null,\"code\":null}}") != std::string::npos);
    CHECK(r.find("HTTP/1.1 405 Method Not Allowed") != std::string::npos);
    CHECK(r.find("Allow: GET") != std::string::npos);
    CHECK(r.find("Connection: close") != std::string::npos);
  });
}

TEST_CASE("server: malformed, oversized and HTTP/1.0 requests", "[http]") {
  with_server(Limits{}, [](uint16_t port) {
    {
      Client c(port);
      c.send("GET / HTTP/1.1\r\n\r\n");
      const std::string r = c.read_all();
      CHECK(r.rfind("HTTP/1.1 400 Bad Request", 0) == 0);
      const auto body = nlohmann::json::parse(r.substr(r.find("\r\n\r\n") + 4));
      CHECK(body["error"]["type"] == "invalid_request_error");
    }
    {
      Client c(port);  // answered at once, without reading the body
      c.send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5000000\r\n\r\n" + std::string(1000, 'x'));
      CHECK(c.read_all().rfind("HTTP/1.1 413 ", 0) == 0);
    }
    {
      Client c(port);
      c.send("POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
      char b[64] = {};
      REQUIRE(recv(c.fd, b, 25, MSG_WAITALL) == 25);
      CHECK(std::string(b) == "HTTP/1.1 100 Continue\r\n\r\n");
      c.send("ok");
      shutdown(c.fd, SHUT_WR);
      CHECK(c.read_all().find("\r\n\r\nok") != std::string::npos);
    }
    {
      Client c(port);
      c.send("GET /hello HTTP/1.0\r\n\r\n");
      const std::string r = c.read_all();  // closed after one response
      CHECK(r.rfind("HTTP/1.0 200 OK", 0) == 0);
      CHECK(r.find("Connection: close") != std::string::npos);
    }
  });
}

TEST_CASE("server: a request that does not arrive in time gets 408; idle connections close", "[http]") {
  Limits lim;
  lim.request_timeout_ns = 300'000'000;
  lim.idle_timeout_ns = 300'000'000;
  with_server(lim, [](uint16_t port) {
    Client slow(port), idle(port);
    const auto t0 = std::chrono::steady_clock::now();
    slow.send("GET /hello HTTP/1.1\r\nHo");  // slowloris: never finishes its header
    CHECK(slow.read_all().rfind("HTTP/1.1 408 Request Timeout", 0) == 0);
    CHECK(idle.read_all().empty());
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3));
  });
}

TEST_CASE("server: start_stream sends the head and the first chunk in one write", "[http]") {
  with_server(Limits{}, [](uint16_t port) {
    {
      Client c(port);
      c.send("GET /first HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
      char b[4096];
      const ssize_t n = recv(c.fd, b, sizeof b, 0);
      REQUIRE(n > 0);
      const std::string first(b, size_t(n));
      CHECK(first.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
      const std::string tail = "\r\n\r\n9\r\ndata: a\n\n\r\n";  // the head's end, then the chunk
      REQUIRE(first.size() > tail.size());
      CHECK(first.substr(first.size() - tail.size()) == tail);
      const std::string rest = c.read_all();
      CHECK(rest == "9\r\ndata: b\n\n\r\n0\r\n\r\n");
    }
    {
      Client c(port);  // HTTP/1.0: no chunk framing, the body ends with the connection
      c.send("GET /first HTTP/1.0\r\n\r\n");
      const std::string r = c.read_all();
      CHECK(r.find("Transfer-Encoding") == std::string::npos);
      CHECK(r.substr(r.find("\r\n\r\n") + 4) == "data: a\n\ndata: b\n\n");
    }
    {
      Client c(port);
      c.send("HEAD /first HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
      const std::string r = c.read_all();
      CHECK(r.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
      CHECK(r.substr(r.find("\r\n\r\n") + 4).empty());
    }
  });
}
