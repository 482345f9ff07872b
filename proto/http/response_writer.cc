#include "slip/proto/http/response_writer.h"

#include <ctime>

#include "slip/proto/http/syntax.h"

namespace slip::proto::http {

std::string_view http_date() {
  thread_local time_t last = 0;
  thread_local char buf[40] = {};
  const time_t now = ::time(nullptr);
  if (now != last) {
    tm t{};
    gmtime_r(&now, &t);
    strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &t);
    last = now;
  }
  return buf;
}

void append_response_head(std::string& out, const ResponseHead& h) {
  out.append(h.minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ").append(std::to_string(h.status)).append(" ");
  out.append(reason_phrase(h.status)).append("\r\nDate: ").append(http_date()).append("\r\n");
  if (!h.content_type.empty()) out.append("Content-Type: ").append(h.content_type).append("\r\n");
  for (const FieldRef& f : h.fields) out.append(f.name).append(": ").append(f.value).append("\r\n");
  if (h.framing == BodyFraming::content_length)
    out.append("Content-Length: ").append(std::to_string(h.content_length)).append("\r\n");
  else if (h.framing == BodyFraming::chunked)
    out.append("Transfer-Encoding: chunked\r\n");
  if (h.close) out.append("Connection: close\r\n");
  else if (h.minor == 0) out.append("Connection: keep-alive\r\n");
  out.append("\r\n");
}

ChunkSizeLine::ChunkSizeLine(size_t n) noexcept {
  buf_[--at_] = '\n';
  buf_[--at_] = '\r';
  do {
    buf_[--at_] = "0123456789abcdef"[n & 15];
    n >>= 4;
  } while (n > 0);
}

}  // namespace slip::proto::http
