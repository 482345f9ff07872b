#include "completion_request.h"

#include <simdjson.h>

namespace slip::gateway {
namespace {

namespace dom = simdjson::dom;

void add_prompt(std::string& out, std::string_view s) {
  out.append(s.substr(0, kMaxRoutingPrompt - std::min(out.size(), kMaxRoutingPrompt)));
}

// A message's content: a string, or an array of parts whose "text" counts.
void add_content(std::string& out, dom::element v) {
  std::string_view s;
  if (!v.get_string().get(s)) return add_prompt(out, s);
  dom::array parts;
  if (v.get_array().get(parts)) return;
  for (dom::element p : parts) {
    std::string_view text;
    if (!p["text"].get_string().get(text)) add_prompt(out, text);
  }
}

RequestError bad(std::string msg, std::string param = {}) { return RequestError{400, std::move(msg), std::move(param), {}}; }

}  // namespace

std::optional<RequestError> parse_completion(std::string_view body, bool chat, CompletionRequest& out) {
  // The DOM parser validates the whole document (on-demand parsing checks
  // only what it visits); one per kthread, reused, and nothing parks while
  // the document is in use.
  thread_local dom::parser parser;
  dom::element doc;
  dom::object obj;
  if (parser.parse(body.data(), body.size()).get(doc) || doc.get_object().get(obj))
    return bad("We could not parse the JSON body of your request: it must be a JSON object.");
  bool have_model = false, have_input = false;
  for (auto [key, v] : obj) {
    if (key == "model") {
      std::string_view m;
      if (v.get_string().get(m)) return bad("model must be a string", "model");
      out.model.assign(m);
      have_model = true;
    } else if (key == "stream") {
      if (v.is_null()) continue;
      if (v.get_bool().get(out.stream)) return bad("stream must be a boolean", "stream");
    } else if (key == "priority") {
      if (v.get_int64().get(out.priority)) return bad("priority must be an integer", "priority");
    } else if (key == "max_tokens" || key == "max_completion_tokens") {
      if (v.is_null()) continue;
      if (v.get_uint64().get(out.max_tokens)) return bad(std::string(key) + " must be a non-negative integer", std::string(key));
    } else if (chat && key == "messages") {
      dom::array msgs;
      if (v.get_array().get(msgs)) return bad("messages must be an array", "messages");
      have_input = true;
      for (dom::element m : msgs) {
        if (!m.is_object()) return bad("each message must be an object", "messages");
        std::string_view role;
        if (!m["role"].get_string().get(role)) add_prompt(out.prompt, role), add_prompt(out.prompt, "\n");
        dom::element content;
        if (!m["content"].get(content)) add_content(out.prompt, content), add_prompt(out.prompt, "\n");
      }
    } else if (!chat && key == "prompt") {
      have_input = true;
      std::string_view p;
      if (!v.get_string().get(p)) {
        add_prompt(out.prompt, p);
        continue;
      }
      dom::array arr;
      if (v.get_array().get(arr)) return bad("prompt must be a string or an array", "prompt");
      for (dom::element x : arr) {
        std::string_view s;
        int64_t tok = 0;
        if (!x.get_string().get(s)) add_prompt(out.prompt, s);
        else if (!x.get_int64().get(tok)) add_prompt(out.prompt, std::to_string(tok) + " ");  // token ids
      }
    }
  }
  if (!have_model) return bad("you must provide a model parameter", "model");
  if (!have_input) return bad(chat ? "messages is a required property" : "prompt is a required property",
                              chat ? "messages" : "prompt");
  return std::nullopt;
}

}  // namespace slip::gateway
