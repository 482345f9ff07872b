// Server-side HTTP/1.1 response writing (RFC 9112): the head of a response
// and the framing of a chunked body, as bytes for the caller to send. The
// fields that say who answered (Server and the like) are the caller's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace slip::proto::http {

// How the body after a head ends.
enum class BodyFraming {
  content_length,  // Content-Length: the body is that many bytes
  chunked,         // Transfer-Encoding: chunked (HTTP/1.1 only)
  until_close,     // neither: the body ends when the connection does (HTTP/1.0 streams)
};

// One field as the caller gives it.
struct FieldRef {
  std::string_view name, value;
};

struct ResponseHead {
  int minor = 1;  // the request's HTTP/1.minor, answered in kind
  int status = 200;
  std::string_view content_type;      // empty: no Content-Type field
  std::span<const FieldRef> fields;   // written as given, after Content-Type
  BodyFraming framing = BodyFraming::content_length;
  uint64_t content_length = 0;        // for BodyFraming::content_length
  bool close = false;                 // Connection: close; otherwise HTTP/1.0 is told keep-alive
};

// Appends the status line, Date, the fields and the blank line.
void append_response_head(std::string& out, const ResponseHead& h);

// The Date field value for now (RFC 9110 §5.6.7), formatted once per second
// per thread; valid until the thread's next call.
std::string_view http_date();

// The line that opens a chunk of n > 0 bytes: its size in hex and CRLF.
class ChunkSizeLine {
 public:
  explicit ChunkSizeLine(size_t n) noexcept;
  std::string_view view() const noexcept { return {buf_ + at_, sizeof buf_ - at_}; }

 private:
  char buf_[2 * sizeof(size_t) + 2];  // every hex digit of a size_t, then CRLF
  size_t at_ = sizeof buf_;
};

inline constexpr std::string_view kChunkEnd = "\r\n";       // after a chunk's data
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";  // ends a chunked body (no trailers)
// The interim answer to Expect: 100-continue.
inline constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

}  // namespace slip::proto::http
