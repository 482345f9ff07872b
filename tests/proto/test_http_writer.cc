// slip/proto/http/request_writer.h and response_writer.h: exact bytes of
// request and response heads, chunk framing, and the setup checks that keep
// user text from breaking the framing.
#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>

#include "slip/proto/http/request_writer.h"
#include "slip/proto/http/response_writer.h"

using namespace slip::proto::http;

TEST_CASE("request writer: the request line and Host, nothing about the sender", "[http]") {
  CHECK(request_head("GET", "/a?b=1", "example.test:8080") == "GET /a?b=1 HTTP/1.1\r\nHost: example.test:8080\r\n");
  std::string out;
  append_request_line(out, "POST", "/v1/completions");
  append_field(out, "User-Agent", "caller");
  CHECK(out == "POST /v1/completions HTTP/1.1\r\nUser-Agent: caller\r\n");
}

TEST_CASE("request writer: targets, hosts and values that would break the framing are refused", "[http]") {
  CHECK_THROWS_AS(request_head("GET", "/a b", "h"), std::invalid_argument);
  CHECK_THROWS_AS(request_head("GET", "", "h"), std::invalid_argument);
  CHECK_THROWS_AS(request_head("GET", "/", "evil\r\nX: y"), std::invalid_argument);
  CHECK_THROWS_AS(request_head("GET", "/", ""), std::invalid_argument);
  CHECK_THROWS_WITH(check_request_target("--path", "/\x7f"), Catch::StartsWith("--path must be"));
  CHECK_THROWS_WITH(check_host("--host", "a b"), Catch::StartsWith("--host must be"));
  CHECK_THROWS_WITH(check_field_value("--api-key", " k"), Catch::StartsWith("--api-key must be"));
  CHECK_NOTHROW(check_field_value("--api-key", "sk-1 2"));
}

TEST_CASE("response writer: heads for each framing and version", "[http]") {
  auto without_date = [](std::string h) {
    const size_t at = h.find("Date: ");
    REQUIRE(at != std::string::npos);
    CHECK(h.substr(at + 6, h.find("\r\n", at) - at - 6) == http_date());
    return h.erase(at, h.find("\r\n", at) + 2 - at);
  };
  const FieldRef fields[] = {{"X-A", "1"}, {"Retry-After", "2"}};
  auto head = [](auto&& set) {
    ResponseHead r;
    set(r);
    std::string h;
    append_response_head(h, r);
    return h;
  };
  CHECK(without_date(head([&](ResponseHead& r) {
          r.status = 429;
          r.content_type = "application/json";
          r.fields = fields;
          r.content_length = 7;
        })) == "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nX-A: 1\r\nRetry-After: 2\r\n"
               "Content-Length: 7\r\n\r\n");
  CHECK(without_date(head([](ResponseHead& r) {
          r.content_type = "text/event-stream";
          r.framing = BodyFraming::chunked;
        })) == "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n");
  CHECK(without_date(head([](ResponseHead& r) {
          r.minor = 0;
          r.framing = BodyFraming::until_close;
          r.close = true;
        })) == "HTTP/1.0 200 OK\r\nConnection: close\r\n\r\n");
  CHECK(without_date(head([](ResponseHead& r) {
          r.minor = 0;
          r.status = 404;
        })) == "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n");
}

TEST_CASE("response writer: chunk-size lines in lower-case hex", "[http]") {
  CHECK(ChunkSizeLine(1).view() == "1\r\n");
  CHECK(ChunkSizeLine(26).view() == "1a\r\n");
  CHECK(ChunkSizeLine(4096).view() == "1000\r\n");
  CHECK(ChunkSizeLine(SIZE_MAX).view() == "ffffffffffffffff\r\n");
  CHECK(kLastChunk == "0\r\n\r\n");
}
