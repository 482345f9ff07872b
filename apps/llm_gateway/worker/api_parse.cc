// Validation of completion requests, with the errors OpenAI and vLLM give.
#include <nlohmann/json.hpp>

#include "api.h"
#include "slip/proto/http/syntax.h"
#include "tokens.h"

namespace slip::gateway::worker {
namespace {

using nlohmann::json;

ApiError bad(std::string message, std::string param = {}) { return ApiError{400, std::move(message), std::move(param), {}}; }

// Chat message content: a string, or an array of {"type":"text","text":...} parts.
std::optional<ApiError> add_content(const json& c, std::vector<uint64_t>& out) {
  if (c.is_string()) {
    tokenize(c.get_ref<const std::string&>(), out);
    return std::nullopt;
  }
  if (c.is_null()) return std::nullopt;  // assistant messages with tool calls have none
  if (!c.is_array()) return bad("message content must be a string or an array of parts", "messages");
  for (const json& part : c) {
    const auto t = part.is_object() ? part.find("text") : part.end();
    if (!part.is_object() || t == part.end() || !t->is_string())
      return bad("only text content parts are supported", "messages");
    tokenize(t->get_ref<const std::string&>(), out);
  }
  return std::nullopt;
}

// Llama 3's template in shape: BOS, then per message a header (start, role,
// end) + content + end of turn, then the assistant header.
std::optional<ApiError> chat_prompt(const json& body, std::vector<uint64_t>& out) {
  const auto m = body.find("messages");
  if (m == body.end()) return bad("'messages' is a required property", "messages");
  if (!m->is_array() || m->empty()) return bad("'messages' must be a non-empty array", "messages");
  out.push_back(special_token("<|begin_of_text|>"));
  for (const json& msg : *m) {
    const auto role = msg.is_object() ? msg.find("role") : msg.end();
    if (!msg.is_object() || role == msg.end() || !role->is_string())
      return bad("each message needs a string 'role'", "messages");
    out.push_back(special_token("<|start_header_id|>"));
    out.push_back(special_token(role->get_ref<const std::string&>()));
    out.push_back(special_token("<|end_header_id|>"));
    if (auto e = add_content(msg.value("content", json()), out)) return e;
    out.push_back(special_token("<|eot_id|>"));
  }
  out.push_back(special_token("<|start_header_id|>"));
  out.push_back(special_token("assistant"));
  out.push_back(special_token("<|end_header_id|>"));
  return std::nullopt;
}

// A string, an array of strings (joined), or token ids (one token each).
std::optional<ApiError> completion_prompt(const json& body, std::vector<uint64_t>& out) {
  const auto p = body.find("prompt");
  if (p == body.end()) return bad("'prompt' is a required property", "prompt");
  out.push_back(special_token("<|begin_of_text|>"));
  if (p->is_string()) {
    tokenize(p->get_ref<const std::string&>(), out);
    return std::nullopt;
  }
  if (p->is_array() && !p->empty()) {
    for (const json& e : *p) {
      if (e.is_string()) tokenize(e.get_ref<const std::string&>(), out);
      else if (e.is_number_integer()) out.push_back(e.get<uint64_t>());
      else return bad("'prompt' must be a string, an array of strings or an array of token ids", "prompt");
    }
    return std::nullopt;
  }
  return bad("'prompt' must be a string, an array of strings or an array of token ids", "prompt");
}

}  // namespace

std::optional<ApiError> parse_job(const http::Request& req, bool chat, const std::string& model, const Profile& p,
                                  Job& out) {
  const std::string* ct = req.header("content-type");
  if (!ct || !proto::http::media_type_is(*ct, "application/json"))
    return ApiError{415, "Content-Type must be application/json", {}, {}};
  const json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded())
    return bad("We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
               "HTTP library correctly. The OpenAI API expects a JSON payload.)");
  if (!body.is_object()) return bad("the request body must be a JSON object");
  const auto m = body.find("model");
  if (m == body.end() || !m->is_string()) return bad("you must provide a model parameter", "model");
  if (m->get_ref<const std::string&>() != model)
    return ApiError{404, "The model `" + m->get_ref<const std::string&>() + "` does not exist.", "model",
                    "model_not_found"};
  out.chat = chat;
  if (auto e = chat ? chat_prompt(body, out.tokens) : completion_prompt(body, out.tokens)) return e;

  auto flag = [&](const json& o, const char* key, bool& v) -> bool {
    const auto it = o.find(key);
    if (it == o.end() || it->is_null()) return true;
    if (!it->is_boolean()) return false;
    v = it->get<bool>();
    return true;
  };
  if (!flag(body, "stream", out.stream)) return bad("'stream' must be a boolean", "stream");
  if (!flag(body, "ignore_eos", out.ignore_eos)) return bad("'ignore_eos' must be a boolean", "ignore_eos");
  if (const auto so = body.find("stream_options"); so != body.end() && !so->is_null()) {
    if (!so->is_object() || !flag(*so, "include_usage", out.include_usage))
      return bad("'stream_options' must be an object with a boolean 'include_usage'", "stream_options");
  }
  if (const auto n = body.find("n"); n != body.end() && !n->is_null() && *n != 1)
    return bad("only n = 1 is supported by this simulator", "n");

  const uint64_t prompt = out.tokens.size();
  if (prompt >= p.max_model_len)
    return ApiError{400, "This model's maximum context length is " + std::to_string(p.max_model_len) +
                             " tokens. However, your prompt has " + std::to_string(prompt) + " tokens.",
                    chat ? "messages" : "prompt", "context_length_exceeded"};
  uint64_t max_tokens = p.max_model_len - prompt;
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    const auto it = body.find(key);
    if (it == body.end() || it->is_null()) continue;
    if (!it->is_number_integer() || it->get<int64_t>() < 1) return bad(std::string("'") + key + "' must be an integer >= 1", key);
    const auto v = it->get<uint64_t>();
    if (prompt + v > p.max_model_len)
      return ApiError{400, "This model's maximum context length is " + std::to_string(p.max_model_len) +
                               " tokens. However, you requested " + std::to_string(prompt + v) + " tokens (" +
                               std::to_string(prompt) + " in the prompt, " + std::to_string(v) +
                               " in the completion). Please reduce the length of the prompt or completion.",
                      key, "context_length_exceeded"};
    max_tokens = v;
  }
  out.max_tokens = static_cast<uint32_t>(max_tokens);
  return std::nullopt;  // temperature, top_p, seed, stop, ...: accepted and ignored
}

}  // namespace slip::gateway::worker
