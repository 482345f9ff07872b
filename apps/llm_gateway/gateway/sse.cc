#include "sse.h"

#include <algorithm>

namespace slip::gateway {
namespace {

namespace od = simdjson::ondemand;

bool non_empty_string(od::value v) {
  std::string_view s;
  return !v.get_string().get(s) && !s.empty();
}

// One choice: does it carry output or a finish reason?
bool choice_has_output(od::object choice) {
  for (auto field : choice) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return false;
    od::value v;
    if (field.value().get(v)) return false;
    if (key == "text") {
      if (non_empty_string(v)) return true;
    } else if (key == "finish_reason") {
      bool is_null = true;
      if (!v.is_null().get(is_null) && !is_null) return true;
    } else if (key == "delta") {
      od::object delta;
      if (v.get_object().get(delta)) continue;
      for (auto d : delta) {
        std::string_view dk;
        if (d.unescaped_key().get(dk)) return false;
        od::value dv;
        if (d.value().get(dv)) return false;
        if ((dk == "content" || dk == "reasoning_content") && non_empty_string(dv)) return true;
        if (dk == "tool_calls") return true;
      }
    }
  }
  return false;
}

}  // namespace

size_t next_event_end(std::string_view buf) {
  // Events end with a blank line; lines end in LF, CRLF or CR (WHATWG's
  // EventSource). Servers use LF or CRLF consistently; look for both.
  const size_t lf = buf.find("\n\n"), crlf = buf.find("\r\n\r\n");
  if (lf == std::string_view::npos && crlf == std::string_view::npos) return 0;
  if (crlf == std::string_view::npos || (lf != std::string_view::npos && lf + 2 <= crlf + 4)) return lf + 2;
  return crlf + 4;
}

EventKind SseClassifier::classify(std::string_view event) {
  data_.clear();
  for (std::string_view rest = event; !rest.empty();) {
    const size_t eol = std::min(rest.find('\n'), rest.size());
    std::string_view line = rest.substr(0, eol);
    rest.remove_prefix(std::min(eol + 1, rest.size()));
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.substr(0, 5) != "data:") continue;
    line.remove_prefix(5);
    if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    if (!data_.empty()) data_ += '\n';
    data_ += line;
  }
  if (data_.empty()) return EventKind::preamble;
  if (data_ == "[DONE]") return EventKind::done;
  const size_t len = data_.size();
  data_.resize(len + simdjson::SIMDJSON_PADDING);
  od::document doc;
  od::object obj;
  if (parser_.iterate(data_.data(), len, data_.size()).get(doc) || doc.get_object().get(obj))
    return EventKind::preamble;  // not JSON: passed through, never counted as a token
  bool usage = false;
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) break;
    if (key == "error") return EventKind::error;
    if (key == "usage") usage = true;
    if (key != "choices") continue;
    od::array choices;
    if (field.value().get_array().get(choices)) break;
    for (auto c : choices) {
      od::object choice;
      if (c.get_object().get(choice)) break;
      if (choice_has_output(choice)) return EventKind::token;
    }
  }
  return usage ? EventKind::usage : EventKind::preamble;
}

}  // namespace slip::gateway
