#include "http_responder.h"

#include <sys/uio.h>

#include <cerrno>
#include <nlohmann/json.hpp>

namespace slip::app::http {

using proto::http::BodyFraming;

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

std::string Responder::head(int status, std::string_view content_type, Headers extra, BodyFraming framing,
                            size_t length) const {
  std::string h;
  h.reserve(256);
  proto::http::append_response_head(h, {.minor = req_.minor,
                                        .status = status,
                                        .content_type = content_type,
                                        .fields = {extra.begin(), extra.size()},
                                        .framing = framing,
                                        .content_length = length,
                                        .close = close_});
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

Result<size_t> Responder::respond(int status, std::string_view content_type, std::string_view body, Headers extra) {
  if (started_) return err(EALREADY);
  started_ = finished_ = true;
  if (stopping()) close_ = true;
  const std::string h = head(status, content_type, extra, BodyFraming::content_length, body.size());
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
  const std::string h = head(status, content_type, extra, chunked_ ? BodyFraming::chunked : BodyFraming::until_close, 0);
  if (head_only_ || first_chunk.empty()) return write(h);
  if (!chunked_) return write(h, first_chunk);
  return write(h, proto::http::ChunkSizeLine(first_chunk.size()).view(), first_chunk, proto::http::kChunkEnd);
}

Result<size_t> Responder::send_chunk(std::string_view data) {
  if (head_only_ && started_) return size_t{0};
  if (!started_ || finished_) return err(EINVAL);
  if (failed_) return err(ECONNRESET);
  if (data.empty()) return size_t{0};
  if (!chunked_) return write(data);
  return write(proto::http::ChunkSizeLine(data.size()).view(), data, proto::http::kChunkEnd);
}

Result<size_t> Responder::end_stream() {
  if (!started_ || finished_) return size_t{0};
  finished_ = true;
  if (failed_) return err(ECONNRESET);
  if (!chunked_) return size_t{0};
  return write(proto::http::kLastChunk);
}

bool Responder::peer_gone() {
  if (failed_) return true;
  // Takes nothing: pipelined bytes stay for the next request; only EOF or an error says gone.
  auto r = conn_.read_inplace([](const uint8_t*, size_t) -> size_t { return 0; }, 0);
  if (!r) return r.error() != ETIMEDOUT;
  return r->eof;
}

}  // namespace slip::app::http
