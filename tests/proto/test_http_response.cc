// slip/proto/http/response_parser.h: framing by Content-Length and chunked
// coding across partial reads, pipelined responses, interim responses,
// strict rejection of malformed heads and chunks, and the bounds on what the
// parser waits for; the reader over pieces the caller does not keep, cut at
// every offset, copying no body byte.
#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "slip/proto/http/response_parser.h"

using namespace slip::proto::http;

namespace {

const uint8_t* u8(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

// Runs the parser over stream fed `step` bytes at a time as a client does
// (the unconsumed rest stays at the front of the next call) and logs the
// events: "200 " for a head, the body bytes in brackets, "end " at the end.
// False on a parse error; leftover holds what was never consumed.
bool parse(const std::string& stream, size_t step, std::string& log, std::string* leftover = nullptr) {
  HttpResponseParser p;
  std::string buf;
  for (size_t at = 0; at < stream.size(); at += step) {
    buf.append(stream, at, step);
    size_t used = 0;
    for (;;) {
      HttpEvent ev;
      auto r = p.next(u8(buf) + used, buf.size() - used, ev);
      if (!r) return false;
      used += *r;
      if (ev.kind == HttpEvent::Kind::none) break;
      if (ev.kind == HttpEvent::Kind::head) log += std::to_string(ev.status) + " ";
      if (ev.kind == HttpEvent::Kind::body) log += "[" + std::string(reinterpret_cast<const char*>(ev.data), ev.size) + "]";
      if (ev.kind == HttpEvent::Kind::end) log += "end ";
    }
    buf.erase(0, used);
  }
  if (leftover) *leftover = buf;
  return true;
}

// The log with the body pieces joined: how the bytes were cut must not matter.
std::string joined(std::string log) {
  for (size_t at; (at = log.find("]["))  != std::string::npos;) log.erase(at, 2);
  return log;
}

// Reads stream through an HttpResponseReader in pieces cut at `cuts`, each an
// exact-size heap copy freed once the reader is done with it (so ASan sees a
// view kept too long), and logs the events as parse() does, body pieces
// joined. Adds the bytes the reader carried to *carried.
std::string read_pieces(const std::string& stream, const std::vector<size_t>& cuts, uint64_t* carried = nullptr) {
  HttpResponseReader rd;
  std::string log;
  size_t from = 0;
  for (size_t i = 0; i <= cuts.size(); i++) {
    const size_t to = i < cuts.size() ? cuts[i] : stream.size();
    const size_t n = to - from;
    auto piece = std::make_unique<uint8_t[]>(n + 1);  // + 1: an empty piece still has an address
    std::memcpy(piece.get(), stream.data() + from, n);
    for (size_t used = 0;;) {
      HttpEvent ev;
      auto r = rd.next(piece.get() + used, n - used, ev);
      if (!r) return log + "error";
      used += *r;
      if (ev.kind == HttpEvent::Kind::head) log += std::to_string(ev.status) + " " + std::string(ev.content_type) + " ";
      if (ev.kind == HttpEvent::Kind::body) {
        if (!log.empty() && log.back() == ']') log.pop_back();
        else log += "[";
        log.append(reinterpret_cast<const char*>(ev.data), ev.size).append("]");
      }
      if (ev.kind == HttpEvent::Kind::end) log += "end ";
      if (ev.kind == HttpEvent::Kind::none) {
        REQUIRE(used == n);  // everything offered was taken
        break;
      }
    }
    from = to;
  }
  if (carried) *carried += rd.carried_bytes();
  return log;
}

}  // namespace

TEST_CASE("response parser: Content-Length and chunked bodies, pipelined, at any split", "[http]") {
  const std::string stream =
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello"
      "HTTP/1.1 404 Not Found\r\ncontent-length:0\r\n\r\n"
      "HTTP/1.1 301 Moved Permanently\r\nLocation: /b\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3;name=\"v\"\r\nabc\r\n10 ; ext\r\n0123456789abcdef\r\n0\r\nX-Trailer: 1\r\nY: 2\r\n\r\n"
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 204 No Content\r\n\r\n"
      "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n"
      "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\nno"
      "HTTP/1.0 200\r\nContent-Length: 1\r\n\r\nz";
  const std::string want = "200 [hello]end 404 end 301 [abc0123456789abcdef]end 204 end 304 end 503 [no]end 200 [z]end ";
  for (size_t step = 1; step <= stream.size(); step += step < 16 ? 1 : 37) {
    INFO(step);
    std::string log, left;
    REQUIRE(parse(stream, step, log, &left));
    CHECK(left.empty());
    CHECK(joined(log) == want);
  }
}

TEST_CASE("response parser: a partial response is consumed only up to whole units", "[http]") {
  HttpResponseParser p;
  HttpEvent ev;
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r";
  auto n = p.next(u8(head), head.size(), ev);
  REQUIRE(n);
  CHECK(*n == 0);  // the header block is not complete yet
  CHECK(ev.kind == HttpEvent::Kind::none);
  const std::string rest = head + "\nab";
  n = p.next(u8(rest), rest.size(), ev);
  REQUIRE(n);
  CHECK(*n == rest.size() - 2);
  CHECK(ev.kind == HttpEvent::Kind::head);
  CHECK(ev.status == 200);
  n = p.next(u8(rest) + *n, 2, ev);
  REQUIRE(n);
  CHECK(*n == 2);
  CHECK(ev.kind == HttpEvent::Kind::body);
  const std::string tail = "cdHT";
  n = p.next(u8(tail), tail.size(), ev);
  REQUIRE(n);
  CHECK(*n == 2);
  CHECK(ev.kind == HttpEvent::Kind::body);
  n = p.next(u8(tail) + 2, 2, ev);
  REQUIRE(n);
  CHECK(*n == 0);
  CHECK(ev.kind == HttpEvent::Kind::end);  // and "HT" stays for the next response
}

TEST_CASE("response parser: malformed responses are errors", "[http]") {
  const char* bad[] = {
      "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
      "HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n",
      "HTTQ/1.1 200 OK\r\n",
      "HTTP/1.1 099 x\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\nContent-Length: 0\n\n\r\n\r\n",
      "HTTP/1.1 200 OK\r\n\r\n",                                       // delimited by close
      "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n",                 // space before the colon
      "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\nContent-Length: 0\r\n\r\n",  // obs-fold
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
      "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  // bad chunk size
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n",  // data overruns the size
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\na\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n",
      "HTTP/1.1 101 Switching Protocols\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: a\x01b\r\nContent-Length: 0\r\n\r\n",
  };
  for (const char* s : bad) {
    INFO(s);
    std::string log;
    CHECK_FALSE(parse(s, std::string(s).size(), log));
    CHECK(log.find("end") == std::string::npos);
    CHECK_FALSE(parse(s, 1, log));
  }
}

TEST_CASE("response parser: header blocks, chunk lines and trailers are bounded", "[http]") {
  std::string log;
  const std::string big = "HTTP/1.1 200 OK\r\nX-Big: " + std::string(HttpResponseParser::kMaxHeader, 'a');
  CHECK_FALSE(parse(big, 4096, log));
  // Just under the bound is fine.
  std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Big: ";
  ok += std::string(HttpResponseParser::kMaxHeader - ok.size() - 4, 'a') + "\r\n\r\n";
  REQUIRE(ok.size() == HttpResponseParser::kMaxHeader);
  log.clear();
  CHECK(parse(ok, 1000, log));
  CHECK(log == "200 end ");
  const std::string ext = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" +
                          std::string(HttpResponseParser::kMaxChunkLine, 'e');
  CHECK_FALSE(parse(ext, 100, log));
  std::string trailers = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
  for (int i = 0; i < 10000; i++) trailers += "X-T: 1\r\n";
  CHECK_FALSE(parse(trailers, trailers.size(), log));
}

TEST_CASE("response parser: the head reports Content-Type and Connection: close", "[http]") {
  HttpResponseParser p;
  HttpEvent ev;
  const std::string s = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nConnection: foo, Close\r\n"
                        "Content-Length: 0\r\n\r\n";
  auto n = p.next(u8(s), s.size(), ev);
  REQUIRE(n);
  CHECK(*n == s.size());
  CHECK(ev.kind == HttpEvent::Kind::head);
  CHECK(ev.content_type == "text/event-stream");
  CHECK(ev.close);
}

TEST_CASE("media types match by type, ignoring case and parameters", "[http]") {
  CHECK(media_type_is("text/event-stream", "text/event-stream"));
  CHECK(media_type_is(" Text/Event-Stream ; charset=utf-8", "text/event-stream"));
  CHECK_FALSE(media_type_is("text/event-streams", "text/event-stream"));
  CHECK_FALSE(media_type_is("", "text/event-stream"));
}

TEST_CASE("response reader: pieces cut at every offset give the same events; no body byte is carried", "[http]") {
  const std::string sse_body = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n";
  const std::string stream =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
      "2d\r\n" + sse_body.substr(0, 45) + "\r\n" + "11;x=1\r\n" + sse_body.substr(45) + "\r\n0\r\nX-T: 1\r\n\r\n"
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{\"e\"}"
      "HTTP/1.1 204 No Content\r\n\r\n";
  REQUIRE(sse_body.size() == 0x2d + 0x11);
  const std::string want = "200 text/event-stream [" + sse_body + "]end 502 application/json [{\"e\"}]end 204  end ";
  const size_t framing = stream.size() - sse_body.size() - 5;
  CHECK(read_pieces(stream, {}) == want);
  for (size_t cut = 0; cut <= stream.size(); cut++) {
    INFO(cut);
    uint64_t carried = 0;
    CHECK(read_pieces(stream, {cut}, &carried) == want);
    CHECK(carried <= framing);
  }
  for (size_t step = 1; step <= 16; step++) {
    INFO(step);
    std::vector<size_t> cuts;
    for (size_t at = step; at < stream.size(); at += step) cuts.push_back(at);
    uint64_t carried = 0;
    CHECK(read_pieces(stream, cuts, &carried) == want);
    CHECK(carried <= framing);
  }
  std::mt19937 rng(7);
  for (int round = 0; round < 200; round++) {
    std::vector<size_t> cuts;
    for (size_t at = 0; (at += rng() % 24) < stream.size();) cuts.push_back(at);
    CHECK(read_pieces(stream, cuts) == want);
  }
}

TEST_CASE("response reader: malformed framing fails at any cut, and a cut unit stays bounded", "[http]") {
  const std::string bad = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n";
  for (size_t cut = 0; cut <= bad.size(); cut++) {
    const std::string log = read_pieces(bad, {cut});
    CHECK(log.size() >= 5);
    CHECK(log.substr(log.size() - 5) == "error");
  }
  std::string big = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 10000; i++) big += "X-Field: " + std::to_string(i) + "\r\n";
  std::vector<size_t> cuts;
  for (size_t at = 1000; at < big.size(); at += 1000) cuts.push_back(at);
  uint64_t carried = 0;
  CHECK(read_pieces(big, cuts, &carried) == "error");
  CHECK(carried <= HttpResponseParser::kMaxHeader + 1000);  // failed at the limit, not at the end
}
