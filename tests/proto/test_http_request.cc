// slip/proto/http/request_parser.h: the server-side request parser at every
// split of the input (byte by byte), pipelining, limits, chunked bodies, and
// the status each kind of malformed input earns.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "slip/proto/http/request_parser.h"

using namespace slip::proto::http;

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

TEST_CASE("request parser: whole, byte at a time and every split agree", "[http]") {
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

TEST_CASE("request parser: pipelined requests are taken one at a time", "[http]") {
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

TEST_CASE("request parser: chunked bodies, extensions and trailers", "[http]") {
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

TEST_CASE("request parser: limits on header bytes, header count, body and request line", "[http]") {
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

TEST_CASE("request parser: malformed requests earn the right status", "[http]") {
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

TEST_CASE("request parser: HTTP/1.0, Connection and Expect", "[http]") {
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
