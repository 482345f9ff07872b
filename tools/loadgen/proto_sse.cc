// OpenAI-style streaming completions (vLLM, SGLang, llama.cpp, OpenAI itself):
// POST a prompt with "stream": true and read the text/event-stream answer,
// reporting a token for every chunk that carries text.
#include <array>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "protocol.h"
#include "slip/common/dist.h"
#include "slip/common/words.h"
#include "slip/proto/http/request_writer.h"
#include "slip/proto/http/response_parser.h"

namespace slip::loadgen {
namespace {

using proto::http::check_field_value;
using proto::http::HttpEvent;
using proto::http::HttpResponseParser;
using proto::http::media_type_is;


// Turns a text/event-stream body into events and the events into tokens. It
// holds the partial line and the partial event between calls, since SSE
// events do not line up with HTTP chunks or reads.
class SseDecoder {
 public:
  static constexpr size_t kMaxEvent = 1 << 20;

  void reset() {
    line_.clear();
    data_.clear();
    event_.clear();
    has_data_ = skip_lf_ = done_ = error_ = false;
  }
  bool done() const { return done_; }
  bool error() const { return error_; }

  // False when the stream is malformed: an oversized line or event, or data
  // that is neither JSON nor [DONE].
  bool feed(const uint8_t* p, size_t n, uint64_t now, ResponseSink& sink) {
    const char* s = reinterpret_cast<const char*>(p);
    size_t i = 0;
    while (i < n) {
      if (skip_lf_) {  // a CR ended the last line; a LF right after it belongs to it
        skip_lf_ = false;
        if (s[i] == '\n') {
          i++;
          continue;
        }
      }
      size_t j = i;
      while (j < n && s[j] != '\r' && s[j] != '\n') j++;
      if (line_.size() + (j - i) > kMaxEvent) return false;
      if (j == n) {
        line_.append(s + i, j - i);
        break;
      }
      std::string_view line(s + i, j - i);
      if (!line_.empty()) line = line_.append(line);
      skip_lf_ = s[j] == '\r';
      if (!on_line(line, now, sink)) return false;
      line_.clear();
      i = j + 1;
    }
    return true;
  }

 private:
  bool on_line(std::string_view line, uint64_t now, ResponseSink& sink) {
    if (line.empty()) return dispatch(now, sink);
    if (line.front() == ':') return true;  // comment (keep-alive pings)
    const size_t colon = line.find(':');
    const std::string_view name = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (name == "data") {
      if (has_data_) data_.push_back('\n');
      if (data_.size() + value.size() > kMaxEvent) return false;
      data_.append(value);
      has_data_ = true;
    } else if (name == "event") {
      event_.assign(value);
    }
    return true;  // id, retry and unknown fields do not matter here
  }

  bool dispatch(uint64_t now, ResponseSink& sink) {
    bool ok = true;
    if (event_ == "error") error_ = true;
    if (has_data_ && !data_.empty()) ok = on_data(now, sink);
    data_.clear();
    event_.clear();
    has_data_ = false;
    return ok;
  }

  bool on_data(uint64_t now, ResponseSink& sink) {
    if (data_ == "[DONE]") {
      done_ = true;
      return true;
    }
    const auto j = nlohmann::json::parse(data_, nullptr, false);
    if (j.is_discarded()) return event_ == "error";  // an error event may carry plain text
    if (!j.is_object()) return false;
    if (const auto e = j.find("error"); e != j.end() && !e->is_null()) error_ = true;
    if (carries_text(j)) sink.token(now);
    return true;
  }

  // choices[0].delta.content (or .reasoning_content) for chat, choices[0].text
  // for completions, non-empty; role-only, finish and usage chunks are not tokens.
  static bool carries_text(const nlohmann::json& j) {
    const auto choices = j.find("choices");
    if (choices == j.end() || !choices->is_array() || choices->empty()) return false;
    const nlohmann::json& c = choices->front();
    if (!c.is_object()) return false;
    auto nonempty = [](const nlohmann::json& o, const char* key) {
      const auto v = o.find(key);
      return v != o.end() && v->is_string() && !v->get_ref<const std::string&>().empty();
    };
    if (nonempty(c, "text")) return true;
    const auto delta = c.find("delta");
    return delta != c.end() && delta->is_object() && (nonempty(*delta, "content") || nonempty(*delta, "reasoning_content"));
  }

  std::string line_, data_, event_;
  bool has_data_ = false, skip_lf_ = false, done_ = false, error_ = false;
};

// One streaming completion per request; ok when the 200 event stream ended
// with [DONE] and without an error event.
class Sse final : public ClientProtocol {
 public:
  Sse(const ProtocolConfig& cfg, uint32_t conn)
      : chat_(endpoint_is_chat(cfg.endpoint)),
        model_(cfg.model),
        prompt_tokens_(cfg.prompt_tokens),
        max_tokens_(cfg.max_tokens),
        seed_(cfg.seed * 0x100000001b3ULL + conn) {
    // The prefixes depend on the seed alone, so every connection shares them.
    for (uint32_t g = 0; cfg.shared_prefix > 0 && g < cfg.prefix_groups; g++)
      prefixes_.push_back(words(cfg.seed * 0x9e3779b97f4a7c15ULL + g + 1, cfg.shared_prefix) + " ");
    head_ = loadgen_request_head("POST", chat_ ? "/v1/chat/completions" : "/v1/completions", cfg.host);
    head_ += "Content-Type: application/json\r\nAccept: text/event-stream\r\n";
    if (!cfg.api_key.empty()) {
      check_field_value("--api-key", cfg.api_key);
      head_ += "Authorization: Bearer " + cfg.api_key + "\r\n";
    }
  }

  void build_request(uint64_t id, std::string& out) override {
    nlohmann::ordered_json j;
    j["model"] = model_;
    if (chat_)
      j["messages"] = nlohmann::ordered_json::array({{{"role", "user"}, {"content", prompt(id)}}});
    else
      j["prompt"] = prompt(id);
    j["max_tokens"] = max_tokens_;
    j["stream"] = true;
    j["stream_options"] = {{"include_usage", true}};
    const std::string body = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    out += head_;
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    out += body;
  }

  Result<size_t> parse(const uint8_t* p, size_t n, uint64_t now, ResponseSink& sink) override {
    size_t used = 0;
    for (;;) {
      HttpEvent ev;
      auto r = parser_.next(p + used, n - used, ev);
      if (!r) return r;
      used += *r;
      switch (ev.kind) {
        case HttpEvent::Kind::none:
          return used;
        case HttpEvent::Kind::head:
          // Anything but a 200 event stream (a 429 with a JSON error, say) is read and dropped.
          stream_ = ev.status == 200 && media_type_is(ev.content_type, "text/event-stream");
          decoder_.reset();
          break;
        case HttpEvent::Kind::body:
          if (stream_ && !decoder_.feed(ev.data, ev.size, now, sink)) return err(EBADMSG);
          break;
        case HttpEvent::Kind::end:
          sink.complete(0, stream_ && decoder_.done() && !decoder_.error() ? Outcome::ok : Outcome::error, now);
          break;
      }
    }
  }

 private:
  static bool endpoint_is_chat(const std::string& endpoint) {
    if (endpoint == "chat") return true;
    if (endpoint == "completions") return false;
    throw std::invalid_argument("--endpoint must be chat or completions, not '" + endpoint + "'");
  }

  static std::string words(uint64_t s, uint32_t n) {
    std::string out;
    out.reserve(n * 6);
    for (uint32_t i = 0; i < n; i++) {
      if (i) out.push_back(' ');
      out.append(kCommonWords[splitmix64(s) % kCommonWords.size()]);
      s += 0x9e3779b97f4a7c15ULL;
    }
    return out;
  }

  // A group's shared prefix (if any) then prompt_tokens_ words, the same for
  // the same seed, connection and request id.
  std::string prompt(uint64_t id) const {
    const uint64_t s = seed_ ^ (id * 0xd6e8feb86659fd93ULL);
    const std::string tail = words(s, prompt_tokens_);
    if (prefixes_.empty()) return tail;
    return prefixes_[splitmix64(s ^ 0x5bd1e995) % prefixes_.size()] + tail;
  }

  bool chat_;
  std::string model_;
  uint32_t prompt_tokens_, max_tokens_;
  uint64_t seed_;
  std::vector<std::string> prefixes_;
  std::string head_;
  HttpResponseParser parser_;
  SseDecoder decoder_;
  bool stream_ = false;
};

}  // namespace

std::unique_ptr<ClientProtocol> make_sse(const ProtocolConfig& cfg, uint32_t conn) {
  return std::make_unique<Sse>(cfg, conn);
}

}  // namespace slip::loadgen
