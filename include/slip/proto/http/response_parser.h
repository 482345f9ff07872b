// Client-side HTTP/1.1 response framing (RFC 9112) for a pipelined
// connection. It consumes whole units (a header block, a chunk-size line,
// body bytes, a trailer line) from the front of what it is given and keeps
// its place across calls: the caller drops the consumed bytes and passes the
// rest again, with more appended, next time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "slip/common/result.h"
#include "slip/proto/http/syntax.h"

namespace slip::proto::http {

// One thing the parser found. Views point into the bytes passed to next() and
// stay valid until those bytes are dropped.
struct HttpEvent {
  enum class Kind { none, head, body, end };
  Kind kind = Kind::none;
  int status = 0;                 // head
  std::string_view content_type;  // head: the Content-Type value, or empty
  bool close = false;             // head: Connection: close (the server ends the connection after this response)
  const uint8_t* data = nullptr;  // body
  size_t size = 0;                // body
};

class HttpResponseParser {
 public:
  static constexpr size_t kMaxHeader = 64 * 1024;  // status line plus fields; also trailers
  static constexpr size_t kMaxChunkLine = 4096;    // chunk size plus extensions

  // Consumes framing from the front of [p, p + n) up to and including the next
  // event, and returns the bytes consumed. Kind::none: everything usable was
  // consumed and more bytes are needed. Malformed or unsupported framing
  // (including a body delimited only by connection close): EBADMSG; the parser
  // is then stuck in that error.
  Result<size_t> next(const uint8_t* p, size_t n, HttpEvent& ev);

 private:
  enum class State { head, length_body, chunk_size, chunk_data, chunk_end, trailer, failed };

  Result<size_t> parse_head(const uint8_t* p, size_t n, HttpEvent& ev);
  Result<size_t> parse_chunk_size(const uint8_t* p, size_t n);
  Result<size_t> parse_trailer(const uint8_t* p, size_t n, HttpEvent& ev);
  // Where the CRLF that ends the line (or, for the head, the blank line) starts
  // in [p, p + n), remembering how far was searched; n when not there yet.
  size_t find_terminator(const uint8_t* p, size_t n, std::string_view term);
  Result<size_t> fail();

  State state_ = State::head;
  uint64_t remaining_ = 0;  // body bytes left in the message or the chunk
  size_t scanned_ = 0;      // bytes of the pending unit already searched for its terminator
  size_t trailer_bytes_ = 0;
};

// The same framing over pieces the caller does not keep: the runs of a
// connection's receive buffer read in place (TcpConn::read_inplace), each
// gone once it is consumed. Body bytes come back as views into the piece
// they arrived in, never copied; only a framing unit that a piece's end cuts
// (a head, a chunk-size or trailer line, a chunk's CRLF) is copied into a
// small carry, a line at a time, until its end arrives.
class HttpResponseReader {
 public:
  // Consumes from [p, p + n) up to and including the next event and returns
  // the bytes consumed. Kind::none: all n were consumed and more are needed.
  // The event's views stay valid until the next call. Errors as
  // HttpResponseParser::next.
  Result<size_t> next(const uint8_t* p, size_t n, HttpEvent& ev);
  // Bytes copied into the carry so far: framing only, for tests and counters.
  uint64_t carried_bytes() const { return carried_; }

 private:
  // Completes the cut unit in the carry from the front of [p, p + n); sets
  // used to the bytes taken from p. Kind::none with carry_ empty: the unit
  // is done and the rest of p is for the parser.
  Result<size_t> next_from_carry(const uint8_t* p, size_t n, HttpEvent& ev);

  HttpResponseParser parser_;
  std::string carry_;
  size_t spent_ = 0;  // carry bytes the last event came from: dropped on the next call
  uint64_t carried_ = 0;
};

}  // namespace slip::proto::http
