// libFuzzer target for slip-gateway's parsers of untrusted bytes: the client's
// completion body (apps/llm_gateway/gateway/completion_request.cc), a
// worker's event stream (sse.cc: cut into events at every split, each
// classified), and the config file (config.cc). The first byte picks which.
// Nothing may crash, and the SSE splitter must find the same events however
// the stream arrives.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "completion_request.h"
#include "config.h"
#include "sse.h"

using namespace slip::gateway;

namespace {

std::vector<std::string> events_of(std::string_view s, size_t step) {
  std::vector<std::string> out;
  std::string buf;
  for (size_t at = 0; at < s.size(); at += step) {
    buf.append(s.substr(at, step));
    size_t used = 0;
    while (size_t len = next_event_end(std::string_view(buf).substr(used))) {
      out.emplace_back(buf, used, len);
      used += len;
    }
    buf.erase(0, used);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t n) {
  if (n < 1) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, n - 1);
  switch (data[0] % 3) {
    case 0: {
      CompletionRequest r;
      auto e = parse_completion(in, (data[0] & 4) != 0, r);
      if (e && (e->status != 400 || e->message.empty())) std::abort();
      if (r.prompt.size() > kMaxRoutingPrompt) std::abort();
      break;
    }
    case 1: {
      const auto whole = events_of(in, in.size() + 1);
      if (events_of(in, 1 + data[0] / 3 % 7) != whole) std::abort();
      SseClassifier c;
      for (const auto& ev : whole) (void)c.classify(ev);
      break;
    }
    default:
      try {
        (void)parse_config(in, "fuzz.toml");
      } catch (const ConfigError&) {
      }
  }
  return 0;
}
