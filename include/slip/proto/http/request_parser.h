// Server-side HTTP/1.1 request parsing (RFC 9112): incremental (any split of
// the input gives the same result), strict, and bounded in header bytes,
// header count and body size, so a hostile client costs at most those bytes
// and the server's deadlines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "slip/proto/http/syntax.h"

namespace slip::proto::http {

// What one request may cost; the parser applies the byte limits, the server
// that runs it the two time limits.
struct Limits {
  size_t max_request_line = 8 * 1024;   // longer: 414
  size_t max_header_bytes = 16 * 1024;  // request line, fields and trailers together; more: 431
  size_t max_headers = 100;             // fields plus trailer fields; more: 431
  size_t max_body = 1 << 20;            // decoded body; more: 413
  size_t max_chunk_line = 1024;         // chunk size plus extensions; longer: 400
  uint64_t request_timeout_ns = 10'000'000'000;  // first byte to last byte of a request; then 408
  uint64_t idle_timeout_ns = 30'000'000'000;     // keep-alive wait for the next request; then close
};

// A field as received; the name is lower-cased.
struct Field {
  std::string name, value;
};

struct Request {
  std::string method, target, path, query;  // path and query split at the first '?'
  int minor = 1;                            // HTTP/1.minor
  std::vector<Field> headers;
  std::string body;               // decoded (chunked framing removed)
  bool keep_alive = true;         // after version defaults and Connection
  bool expect_continue = false;   // Expect: 100-continue with a body to come
  bool chunked = false;
  // The first field of that (lower-case) name, or nullptr.
  const std::string* header(std::string_view lower_name) const;
};

class RequestParser {
 public:
  explicit RequestParser(const Limits& limits) : lim_(limits) {}

  // Consumes from the front of [p, p + n) up to the end of one request and
  // returns how many bytes it took; bytes after a complete request are left
  // for the next one (pipelining). Takes nothing once done() or failed().
  size_t feed(const uint8_t* p, size_t n);
  bool done() const { return state_ == State::done; }
  bool failed() const { return state_ == State::failed; }
  // Some byte of this request has arrived (its deadline runs).
  bool started() const { return started_; }
  // The head is parsed and the body has not all come yet.
  bool awaiting_body() const { return state_ == State::body || state_ == State::chunk_size || state_ == State::chunk_data || state_ == State::chunk_crlf || state_ == State::trailers; }
  // When failed(): the status to answer with (400, 413, 414, 431, 501, 505, 417) and why.
  int error_status() const { return err_status_; }
  const std::string& error_message() const { return err_msg_; }
  Request& request() { return req_; }
  // Ready for the next request on the connection.
  void reset();

 private:
  enum class State { request_line, headers, body, chunk_size, chunk_data, chunk_crlf, trailers, done, failed };
  size_t fail(int status, std::string msg);
  size_t line_limit() const;
  int line_limit_status() const;
  void on_line(std::string_view line);
  void on_request_line(std::string_view line);
  void on_field(std::string_view line, bool trailer);
  void end_of_head();
  void on_chunk_size(std::string_view line);

  const Limits lim_;
  State state_ = State::request_line;
  Request req_;
  std::string line_;
  size_t head_bytes_ = 0, fields_ = 0;
  uint64_t remaining_ = 0;  // body or chunk bytes still to come
  bool started_ = false;
  int err_status_ = 0;
  std::string err_msg_;
};

}  // namespace slip::proto::http
