// Server-sent events as the gateway relays them: the byte stream cut into
// whole events (so an error event is never spliced into half of one), and
// each event classified just enough to know when the first token arrived
// and when tokens arrive after it. Events pass through byte for byte.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <simdjson.h>

namespace slip::gateway {

enum class EventKind {
  preamble,  // before any output: the chat role chunk, comments, keep-alives
  token,     // output text (content, text, reasoning or tool calls) or a finish reason
  usage,     // choices: [] with usage
  error,     // {"error": ...}
  done,      // data: [DONE]
};

class SseClassifier {
 public:
  // `event` is one whole event including its blank line.
  EventKind classify(std::string_view event);

 private:
  simdjson::ondemand::parser parser_;
  std::string data_;  // the event's data lines joined, with simdjson's padding
};

// Length of the first whole event in buf (through its blank line), or 0.
size_t next_event_end(std::string_view buf);

}  // namespace slip::gateway
