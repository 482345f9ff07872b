#include "sse_relay.h"

#include "sse.h"

namespace slip::gateway {

void SseRelay::body(const uint8_t* p, size_t n) {
  buf_.append(reinterpret_cast<const char*>(p), n);
  copied_ += n;
}

std::optional<std::string_view> SseRelay::next_event() {
  const std::string_view rest = std::string_view(buf_).substr(scanned_);
  const size_t len = next_event_end(rest);
  if (len == 0) return std::nullopt;
  scanned_ += len;
  return rest.substr(0, len);
}

void SseRelay::sent() {
  if (scanned_ == 0) return;
  relayed_ += scanned_;
  copied_ += buf_.size() - scanned_;  // the unfinished event moves to the front
  buf_.erase(0, scanned_);
  scanned_ = 0;
}

}  // namespace slip::gateway
