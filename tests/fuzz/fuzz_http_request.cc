// libFuzzer target for the HTTP/1.1 request parser
// (proto/http/request_parser.cc). The first byte picks a chunk size and
// small limits; the rest is a pipelined stream of requests. It is parsed in
// chunks (each an exact-size heap copy, so ASan sees reads past the end) and
// again whole; both must agree on every request, its status and its body.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "slip/proto/http/request_parser.h"

using slip::proto::http::Limits;
using slip::proto::http::RequestParser;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

// One request's outcome: the status (0 when parsed) with method, target and body.
std::vector<std::string> parse_all(const uint8_t* data, size_t n, size_t step, const Limits& lim) {
  std::vector<std::string> out;
  RequestParser p(lim);
  size_t at = 0;
  while (at < n) {
    const size_t len = std::min(step, n - at);
    std::unique_ptr<uint8_t[]> copy(new uint8_t[len]);
    std::memcpy(copy.get(), data + at, len);
    const size_t took = p.feed(copy.get(), len);
    check(took <= len);
    at += took;
    if (p.failed()) {
      check(p.error_status() >= 400 && p.error_status() < 600 && !p.error_message().empty());
      out.push_back("E" + std::to_string(p.error_status()));
      return out;
    }
    if (p.done()) {
      const auto& r = p.request();
      check(r.body.size() <= lim.max_body && r.headers.size() <= lim.max_headers);
      check(!r.path.empty() && (r.path[0] == '/' || r.path == "*"));
      out.push_back(r.method + " " + r.target + " " + std::to_string(r.keep_alive) + " " + r.body);
      p.reset();
      continue;
    }
    check(took == len);  // not done and not failed: it took everything
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t step = 1 + (data[0] & 0x1f);
  Limits lim;
  if (data[0] & 0x80) {  // small limits, so the fuzzer reaches them
    lim.max_request_line = 64;
    lim.max_header_bytes = 256;
    lim.max_headers = 4;
    lim.max_body = 32;
    lim.max_chunk_line = 16;
  }
  const auto a = parse_all(data + 1, size - 1, step, lim);
  const auto b = parse_all(data + 1, size - 1, size, lim);
  check(a == b);
  return 0;
}
