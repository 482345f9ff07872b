// What the gateway reads from a client's completion request: enough to
// admit and route it. The body itself goes upstream unchanged, so every
// sampling field reaches the worker as the client wrote it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace slip::gateway {

struct CompletionRequest {
  std::string model;
  bool stream = false;
  int64_t priority = 0;
  uint64_t max_tokens = 0;  // 0: not given
  std::string prompt;       // text for prefix routing: chat roles and contents, or the prompt
};

// A 4xx to answer instead, with OpenAI's error fields.
struct RequestError {
  int status = 400;
  std::string message, param, code;
};

// Prompt text kept for routing; longer prompts are matched on their start.
inline constexpr size_t kMaxRoutingPrompt = 64 * 1024;

std::optional<RequestError> parse_completion(std::string_view body, bool chat, CompletionRequest& out);

}  // namespace slip::gateway
