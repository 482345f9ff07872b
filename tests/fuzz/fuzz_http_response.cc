// libFuzzer target for the HTTP/1.1 response parser and the reader over
// pieces (proto/http/response_parser.cc). The first byte picks where the
// pieces are cut; the rest is a response stream. It is parsed whole with
// HttpResponseParser and in pieces with HttpResponseReader, each piece an
// exact-size heap copy freed once the reader is done with it (so ASan sees a
// view kept too long): both must report the same events, body bytes joined,
// and the reader may carry only framing, never a body byte.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "slip/proto/http/response_parser.h"

using namespace slip::proto::http;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

// Appends ev to log: "H<status>;" for a head, the body bytes, "E;" for an end.
void log_event(const HttpEvent& ev, std::string& log, uint64_t& body_bytes) {
  if (ev.kind == HttpEvent::Kind::head) log += "H" + std::to_string(ev.status) + ";";
  if (ev.kind == HttpEvent::Kind::body) {
    log.append(reinterpret_cast<const char*>(ev.data), ev.size);
    body_bytes += ev.size;
  }
  if (ev.kind == HttpEvent::Kind::end) log += "E;";
}

std::string parse_whole(const uint8_t* p, size_t n) {
  HttpResponseParser parser;
  std::string log;
  uint64_t body = 0;
  for (size_t used = 0;;) {
    HttpEvent ev;
    auto r = parser.next(p + used, n - used, ev);
    if (!r) return log + "!";
    used += *r;
    if (ev.kind == HttpEvent::Kind::none) return log;
    log_event(ev, log, body);
  }
}

std::string read_pieces(const uint8_t* p, size_t n, uint32_t seed) {
  HttpResponseReader reader;
  std::string log;
  uint64_t body = 0;
  for (size_t at = 0; at < n;) {
    seed ^= seed << 13, seed ^= seed >> 17, seed ^= seed << 5;  // xorshift32
    const size_t len = std::min<size_t>(n - at, 1 + seed % ((seed >> 28) < 8 ? 4 : 300));
    std::unique_ptr<uint8_t[]> piece(new uint8_t[len]);
    std::memcpy(piece.get(), p + at, len);
    for (size_t used = 0;;) {
      HttpEvent ev;
      auto r = reader.next(piece.get() + used, len - used, ev);
      if (!r) return log + "!";
      used += *r;
      check(used <= len);
      if (ev.kind == HttpEvent::Kind::none) {
        check(used == len);
        break;
      }
      log_event(ev, log, body);
    }
    at += len;
  }
  check(reader.carried_bytes() + body <= n);
  return log;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  check(read_pieces(data + 1, size - 1, 0x9e3779b9u ^ data[0]) == parse_whole(data + 1, size - 1));
  return 0;
}
