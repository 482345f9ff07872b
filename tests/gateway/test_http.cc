// apps/llm_gateway/http: the request parser (every split of the input, byte
// by byte; pipelining; limits; chunked bodies; malformed input and the status
// it earns) and the server on the kernel stack (keep-alive, pipelining,
// streaming, routing errors, deadlines).
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

#include "request.h"
#include "server.h"
#include "slip/net/stack.h"
#include "slip/runtime/runtime.h"

using namespace slip::gateway::http;
namespace rt = slip::rt;

namespace {

const uint8_t* u8(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

// Feeds s `step` bytes at a time; returns the bytes taken (stops when done or failed).
size_t feed(RequestParser& p, const std::string& s, size_t step) {
  size_t at = 0;
  while (at < s.size() && !p.done() && !p.failed()) {
    const size_t n = std::min(step, s.size() - at);
    const size_t took = p.feed(u8(s) + at, n);
    at += took;
    if (took < n) break;
  }
  return at;
}

// The status a whole request earns: 0 when it parses, else the error status.
int status_of(const std::string& s, Limits lim = {}) {
  RequestParser p(lim);
  feed(p, s, s.size());
  if (p.failed()) return p.error_status();
  return p.done() ? 0 : -1;  // -1: incomplete
}

const std::string kPost =
    "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
    "Content-Length: 13\r\n\r\n{\"model\":\"m\"}";

}  // namespace

TEST_CASE("parser: whole, byte at a time and every split agree", "[http]") {
  for (size_t step : {size_t{1}, size_t{2}, size_t{7}, kPost.size()}) {
    RequestParser p(Limits{});
    REQUIRE(feed(p, kPost, step) == kPost.size());
    REQUIRE(p.done());
    const Request& r = p.request();
    CHECK(r.method == "POST");
    CHECK(r.path == "/v1/chat/completions");
    CHECK(r.query == "x=1");
    CHECK(r.minor == 1);
    CHECK(r.keep_alive);
    CHECK(r.body == "{\"model\":\"m\"}");
    REQUIRE(r.header("content-type"));
    CHECK(*r.header("content-type") == "application/json");
  }
}

TEST_CASE("parser: pipelined requests are taken one at a time", "[http]") {
  const std::string get = "GET /health HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string all = kPost + get + kPost;
  RequestParser p(Limits{});
  size_t at = 0;
  std::vector<std::string> paths;
  while (at < all.size()) {
    p.reset();
    at += p.feed(u8(all) + at, all.size() - at);
    REQUIRE(p.done());
    paths.push_back(p.request().path);
  }
  CHECK(paths == std::vector<std::string>{"/v1/chat/completions", "/health", "/v1/chat/completions"});
}

TEST_CASE("parser: chunked bodies, extensions and trailers", "[http]") {
  const std::string s = "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\nGET";
  for (size_t step : {size_t{1}, size_t{3}, s.size()}) {
    RequestParser p(Limits{});
    CHECK(feed(p, s, step) == s.size() - 3);  // the next request's bytes stay
    REQUIRE(p.done());
    CHECK(p.request().body == "hello 0123456789");
    CHECK(p.request().chunked);
  }
  Limits small;
  small.max_body = 10;
  CHECK(status_of("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n6\r\n", small) == 413);
  CHECK(status_of("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n") == 400);
  CHECK(status_of("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n") == 400);
  CHECK(status_of("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n") == 400);
  CHECK(status_of("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") == 501);
}

TEST_CASE("parser: limits on header bytes, header count, body and request line", "[http]") {
  const std::string big(17 * 1024, 'a');
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nX: " + big + "\r\n\r\n") == 431);
  std::string many = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 101; i++) many += "X-" + std::to_string(i) + ": v\r\n";
  CHECK(status_of(many + "\r\n") == 431);
  CHECK(status_of("GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n") == 414);
  CHECK(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048577\r\n\r\n") == 413);
  CHECK(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n") == -1);
  // The limit is hit while the header is still coming, byte by byte: no unbounded buffering.
  RequestParser p(Limits{});
  const std::string endless = "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(1 << 20, 'b');
  CHECK(feed(p, endless, 1) <= 16 * 1024 + 1);
  CHECK(p.error_status() == 431);
}

TEST_CASE("parser: malformed requests earn the right status", "[http]") {
  CHECK(status_of("GET / HTTP/1.1\r\n\r\n") == 400);                                     // no Host
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") == 400);               // two Hosts
  CHECK(status_of("GET / HTTP/1.1\nHost: a\n\n") == 400);                                // bare LF
  CHECK(status_of("GET  / HTTP/1.1\r\nHost: a\r\n\r\n") == 400);                         // two spaces
  CHECK(status_of("GET / HTTP/2.0\r\nHost: a\r\n\r\n") == 505);
  CHECK(status_of("GET / HTTX/1.1\r\nHost: a\r\n\r\n") == 400);
  CHECK(status_of("G(T / HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
  CHECK(status_of("GET nopath HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nHost : a\r\n\r\n") == 400);                         // space before colon
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n") == 400);               // obs-fold
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n") == 400);             // control char
  CHECK(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n") == 400);
  CHECK(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n") == 400);
  CHECK(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n") == 400);
  CHECK(status_of("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n") == 400);
  CHECK(status_of("POST / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\nContent-Length: 1\r\n\r\nx") == 417);
  CHECK(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\nx") == 0);  // equal copies are fine
  CHECK(status_of("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n") == 0);                        // a leading empty line
}

TEST_CASE("parser: HTTP/1.0, Connection and Expect", "[http]") {
  RequestParser p(Limits{});
  feed(p, "GET / HTTP/1.0\r\n\r\n", 100);
  REQUIRE(p.done());
  CHECK_FALSE(p.request().keep_alive);
  p.reset();
  feed(p, "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 100);
  CHECK(p.request().keep_alive);
  p.reset();
  feed(p, "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n", 100);
  CHECK_FALSE(p.request().keep_alive);
  p.reset();
  feed(p, "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", 100);
  CHECK(p.awaiting_body());
  CHECK(p.request().expect_continue);
}

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
