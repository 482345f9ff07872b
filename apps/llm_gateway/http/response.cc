#include "response.h"

#include <sys/uio.h>

#include <cerrno>
#include <ctime>
#include <nlohmann/json.hpp>

namespace slip::gateway::http {
namespace {

// The Date field value (RFC 9110 §5.6.7), formatted once per second per thread.
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

char hex_digit(unsigned v) { return "0123456789abcdef"[v & 15]; }

}  // namespace

std::string_view error_type_for(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 429: return "rate_limit_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

std::string openai_error_body(std::string_view message, std::string_view type, std::string_view param,
                              std::string_view code) {
  nlohmann::ordered_json e;
  e["message"] = message;
  e["type"] = type;
  e["param"] = param.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(param);
  e["code"] = code.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(code);
  nlohmann::ordered_json j;
  j["error"] = std::move(e);
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string Responder::head(int status, std::string_view content_type, Headers extra, bool streaming, size_t length) {
  std::string h;
  h.reserve(256);
  h.append(req_.minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ").append(std::to_string(status)).append(" ");
  h.append(reason_phrase(status)).append("\r\nDate: ").append(http_date()).append("\r\n");
  if (!content_type.empty()) h.append("Content-Type: ").append(content_type).append("\r\n");
  for (const HeaderRef& f : extra) h.append(f.name).append(": ").append(f.value).append("\r\n");
  if (!streaming) h.append("Content-Length: ").append(std::to_string(length)).append("\r\n");
  else if (chunked_) h.append("Transfer-Encoding: chunked\r\n");
  if (close_) h.append("Connection: close\r\n");
  else if (req_.minor == 0) h.append("Connection: keep-alive\r\n");
  h.append("\r\n");
  return h;
}

Result<size_t> Responder::write(std::string_view a, std::string_view b, std::string_view c, std::string_view d) {
  iovec iov[4] = {{const_cast<char*>(a.data()), a.size()},
                  {const_cast<char*>(b.data()), b.size()},
                  {const_cast<char*>(c.data()), c.size()},
                  {const_cast<char*>(d.data()), d.size()}};
  const size_t total = a.size() + b.size() + c.size() + d.size();
  size_t sent = 0;
  int i = 0;
  while (sent < total) {
    while (iov[i].iov_len == 0) i++;
    auto n = conn_.writev(iov + i, 4 - i);
    if (!n) {
      failed_ = true;
      return n;
    }
    sent += *n;
    for (size_t left = *n; left > 0;) {  // drop what went out
      const size_t k = std::min(left, iov[i].iov_len);
      iov[i].iov_base = static_cast<char*>(iov[i].iov_base) + k;
      iov[i].iov_len -= k;
      left -= k;
      if (iov[i].iov_len == 0 && i < 3) i++;
    }
  }
  return total;
}

std::string Responder::chunk_size_line(size_t n) {
  std::string size;
  for (size_t v = n; v > 0; v >>= 4) size.insert(size.begin(), hex_digit(static_cast<unsigned>(v)));
  size.append("\r\n");
  return size;
}

Result<size_t> Responder::respond(int status, std::string_view content_type, std::string_view body, Headers extra) {
  if (started_) return err(EALREADY);
  started_ = finished_ = true;
  if (stopping()) close_ = true;
  const std::string h = head(status, content_type, extra, false, body.size());
  return write(h, head_only_ ? std::string_view() : body);
}

Result<size_t> Responder::error(int status, std::string_view message, std::string_view type, std::string_view param,
                                std::string_view code) {
  const std::string body = openai_error_body(message, type.empty() ? error_type_for(status) : type, param, code);
  return respond(status, "application/json", body);
}

Result<size_t> Responder::start_stream(int status, std::string_view content_type, Headers extra,
                                       std::string_view first_chunk) {
  if (started_) return err(EALREADY);
  started_ = true;
  chunked_ = req_.minor == 1;
  if (!chunked_) close_ = true;  // HTTP/1.0: the body ends when the connection does
  if (head_only_) finished_ = true;
  const std::string h = head(status, content_type, extra, true, 0);
  if (head_only_ || first_chunk.empty()) return write(h);
  if (!chunked_) return write(h, first_chunk);
  return write(h, chunk_size_line(first_chunk.size()), first_chunk, "\r\n");
}

Result<size_t> Responder::send_chunk(std::string_view data) {
  if (head_only_ && started_) return size_t{0};
  if (!started_ || finished_) return err(EINVAL);
  if (failed_) return err(ECONNRESET);
  if (data.empty()) return size_t{0};
  if (!chunked_) return write(data);
  return write(chunk_size_line(data.size()), data, "\r\n");
}

Result<size_t> Responder::end_stream() {
  if (!started_ || finished_) return size_t{0};
  finished_ = true;
  if (failed_) return err(ECONNRESET);
  if (!chunked_) return size_t{0};
  return write("0\r\n\r\n");
}

bool Responder::peer_gone() {
  if (failed_) return true;
  // Takes nothing: pipelined bytes stay for the next request; only EOF or an error says gone.
  auto r = conn_.read_inplace([](const uint8_t*, size_t) -> size_t { return 0; }, 0);
  if (!r) return r.error() != ETIMEDOUT;
  return r->eof;
}

}  // namespace slip::gateway::http
