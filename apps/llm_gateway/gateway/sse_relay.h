// The staging buffer of a relayed event stream. The transport hands the
// worker's body bytes to it where they were received (BodySink); they are
// copied once, into this buffer, and written to the client from it. The
// proxy cuts the buffer into whole events (an error event is never spliced
// into half of one) and sends the whole ones after each read; an event a
// read cut short stays behind, moved to the front (its bytes' second copy),
// until its end arrives.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "upstream.h"

namespace slip::gateway {

class SseRelay final : public BodySink {
 public:
  // Runs inside the transport's receive: appends, nothing else.
  void body(const uint8_t* p, size_t n) override;

  // The next whole event (through its blank line) that arrived, or none.
  std::optional<std::string_view> next_event();
  // The whole events taken by next_event() and not yet sent.
  std::string_view ready() const { return std::string_view(buf_).substr(0, scanned_); }
  // They went to the client: drop them, keeping the unfinished event.
  void sent();

  // Bytes written into the buffer (received once, plus unfinished events
  // moved), and bytes handed to the client: their ratio is the gateway's
  // copies per relayed byte.
  uint64_t copied_bytes() const { return copied_; }
  uint64_t relayed_bytes() const { return relayed_; }

 private:
  std::string buf_;     // [events taken and not sent][what arrived after them]
  size_t scanned_ = 0;  // the end of the events taken
  uint64_t copied_ = 0, relayed_ = 0;
};

}  // namespace slip::gateway
