// The http and sse protocols: request bytes, outcomes of HTTP/1.1 responses
// (Content-Length, chunked, pipelined, across partial reads), OpenAI-format
// event streams, and malformed responses. The HTTP framing itself is tested
// in tests/proto.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "protocol.h"

using namespace slip::loadgen;

namespace {

// Logs what the protocol reported, in order: "T" per token, then the outcome.
struct Recorder final : ResponseSink {
  std::string log;
  std::vector<uint64_t> token_times, complete_times;
  void complete(uint64_t, Outcome o, uint64_t now) noexcept override {
    log += o == Outcome::ok ? "ok " : o == Outcome::miss ? "miss " : "error ";
    complete_times.push_back(now);
  }
  void token(uint64_t now) noexcept override {
    log += "T ";
    token_times.push_back(now);
  }
};

// Feeds stream `step` bytes at a time as the engine would: unconsumed bytes
// stay at the front of the next call. now is the index of the call. False on
// a parse error; leftover holds what was never consumed.
bool feed(ClientProtocol& p, const std::string& stream, size_t step, Recorder& r, std::string* leftover = nullptr) {
  std::string buf;
  uint64_t now = 0;
  for (size_t at = 0; at < stream.size(); at += step) {
    buf.append(stream, at, step);
    auto n = p.parse(reinterpret_cast<const uint8_t*>(buf.data()), buf.size(), now++, r);
    if (!n) return false;
    REQUIRE(*n <= buf.size());
    buf.erase(0, *n);
  }
  if (leftover) *leftover = buf;
  return true;
}

std::string chunk(const std::string& s) {
  char hex[32];
  std::snprintf(hex, sizeof hex, "%zx", s.size());
  return std::string(hex) + "\r\n" + s + "\r\n";
}

std::string chat_chunk(const std::string& delta, const std::string& finish = "null") {
  return R"(data: {"id":"chatcmpl-7","object":"chat.completion.chunk","created":1718000000,"model":"slip-sim",)"
         R"("choices":[{"index":0,"delta":)" +
         delta + R"(,"logprobs":null,"finish_reason":)" + finish + R"(}],"usage":null})" + "\n\n";
}

// What vLLM sends for a chat completion of three tokens with include_usage.
std::vector<std::string> chat_events() {
  return {
      chat_chunk(R"({"role":"assistant","content":""})"),
      chat_chunk(R"({"content":"Hello"})"),
      chat_chunk(R"({"content":" wor"})"),
      chat_chunk(R"({"content":"ld"})", R"("length")"),
      R"(data: {"id":"chatcmpl-7","object":"chat.completion.chunk","created":1718000000,"model":"slip-sim","choices":[],)"
      R"("usage":{"prompt_tokens":4,"total_tokens":7,"completion_tokens":3}})"
      "\n\n",
      "data: [DONE]\n\n",
  };
}

const std::string kSseHead = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n";

std::string chunked_sse(const std::vector<std::string>& events) {
  std::string s = kSseHead + "Transfer-Encoding: chunked\r\n\r\n";
  for (const auto& e : events) s += chunk(e);
  return s + "0\r\n\r\n";
}

std::string joined(const std::vector<std::string>& events) {
  std::string s;
  for (const auto& e : events) s += e;
  return s;
}

}  // namespace

TEST_CASE("http sends a keep-alive GET for --path with --host", "[proto]") {
  ProtocolConfig cfg;
  cfg.host = "example.test:8080";
  cfg.path = "/static/a.html?x=1";
  auto p = make_http(cfg, 3);
  std::string out;
  p->build_request(1, out);
  p->build_request(2, out);
  const std::string one =
      "GET /static/a.html?x=1 HTTP/1.1\r\nHost: example.test:8080\r\nUser-Agent: slip-loadgen\r\nAccept: */*\r\n\r\n";
  CHECK(out == one + one);
  cfg.path = "/a b";
  CHECK_THROWS_AS(make_http(cfg, 0), std::invalid_argument);
  cfg.path = "/";
  cfg.host = "evil\r\nX: y";
  CHECK_THROWS_AS(make_http(cfg, 0), std::invalid_argument);
}

TEST_CASE("http: 1xx to 3xx are ok, 4xx and 5xx errors, across partial reads", "[proto]") {
  const std::string stream =
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
      "HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n"
      "HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n"
      "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 1\r\n\r\nx";
  const std::string want = "ok error ok error ";
  for (size_t step : {stream.size(), size_t{1}, size_t{7}}) {
    auto p = make_http(ProtocolConfig{}, 0);
    Recorder r;
    std::string left;
    REQUIRE(feed(*p, stream, step, r, &left));
    CHECK(left.empty());
    CHECK(r.log == want);
  }
}

TEST_CASE("malformed http responses are errors, not completions", "[proto]") {
  // The framing itself is tested in tests/proto; here: an error ends the parse without an outcome.
  const char* bad[] = {
      "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\n\r\n",  // delimited by close
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n",
  };
  for (const char* s : bad) {
    INFO(s);
    auto p = make_http(ProtocolConfig{}, 0);
    Recorder r;
    CHECK_FALSE(feed(*p, s, std::string(s).size(), r));
    CHECK(r.log.empty());
    auto q = make_http(ProtocolConfig{}, 0);
    CHECK_FALSE(feed(*q, s, 1, r));
    CHECK(r.log.empty());
  }
}

TEST_CASE("sse posts an OpenAI chat request with a deterministic prompt", "[proto]") {
  ProtocolConfig cfg;
  cfg.host = "gw:8000";
  cfg.model = "meta-llama/Llama-3.1-8B-Instruct";
  cfg.prompt_tokens = 16;
  cfg.max_tokens = 32;
  cfg.api_key = "sk-test";
  auto p = make_sse(cfg, 0);
  std::string out;
  p->build_request(5, out);
  const size_t end = out.find("\r\n\r\n");
  REQUIRE(end != std::string::npos);
  const std::string body = out.substr(end + 4);
  const std::string want_head =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: gw:8000\r\nUser-Agent: slip-loadgen\r\n"
      "Content-Type: application/json\r\nAccept: text/event-stream\r\nAuthorization: Bearer sk-test\r\n"
      "Content-Length: " +
      std::to_string(body.size());
  CHECK(out.substr(0, end) == want_head);
  const auto j = nlohmann::json::parse(body);
  CHECK(j["model"] == cfg.model);
  CHECK(j["max_tokens"] == 32);
  CHECK(j["stream"] == true);
  CHECK(j["stream_options"]["include_usage"] == true);
  REQUIRE(j["messages"].size() == 1);
  CHECK(j["messages"][0]["role"] == "user");
  const std::string prompt = j["messages"][0]["content"];
  CHECK(std::count(prompt.begin(), prompt.end(), ' ') == 15);
  CHECK(body.substr(0, 10) == R"({"model":")");  // fields in the documented order

  std::string again;
  make_sse(cfg, 0)->build_request(5, again);
  CHECK(again == out);  // same seed, connection and id: same bytes
  std::string other;
  make_sse(cfg, 0)->build_request(6, other);
  CHECK(other != out);
}

TEST_CASE("sse shared prefixes: each prompt starts with one of the groups' prefixes, on every connection", "[proto]") {
  ProtocolConfig cfg;
  cfg.endpoint = "completions";
  cfg.prompt_tokens = 4;
  cfg.shared_prefix = 20;
  cfg.prefix_groups = 3;
  auto prompt_of = [&](uint32_t conn, uint64_t id) {
    std::string out;
    make_sse(cfg, conn)->build_request(id, out);
    return nlohmann::json::parse(out.substr(out.find("\r\n\r\n") + 4))["prompt"].get<std::string>();
  };
  std::set<std::string> prefixes;
  for (uint32_t conn = 0; conn < 3; conn++)
    for (uint64_t id = 0; id < 40; id++) {
      const std::string p = prompt_of(conn, id);
      CHECK(std::count(p.begin(), p.end(), ' ') == 23);  // 20 + 4 words
      size_t at = 0;
      for (int w = 0; w < 20; w++) at = p.find(' ', at) + 1;
      prefixes.insert(p.substr(0, at));
    }
  CHECK(prefixes.size() == 3);  // three groups, shared by all connections
}

TEST_CASE("sse completions requests carry a prompt and no key when none is set", "[proto]") {
  ProtocolConfig cfg;
  cfg.endpoint = "completions";
  cfg.prompt_tokens = 3;
  auto p = make_sse(cfg, 1);
  std::string out;
  p->build_request(1, out);
  CHECK(out.rfind("POST /v1/completions HTTP/1.1\r\n", 0) == 0);
  CHECK(out.find("Authorization") == std::string::npos);
  const auto j = nlohmann::json::parse(out.substr(out.find("\r\n\r\n") + 4));
  CHECK(j.contains("prompt"));
  CHECK_FALSE(j.contains("messages"));
  cfg.endpoint = "embeddings";
  CHECK_THROWS_AS(make_sse(cfg, 0), std::invalid_argument);
  cfg.endpoint = "chat";
  cfg.api_key = "k\r\nX-Injected: 1";
  CHECK_THROWS_AS(make_sse(cfg, 0), std::invalid_argument);
}

TEST_CASE("sse counts content chunks of an OpenAI chat stream as tokens", "[proto]") {
  const std::string stream = chunked_sse(chat_events());
  for (size_t step : {stream.size(), size_t{1}, size_t{5}, size_t{100}}) {
    INFO(step);
    auto p = make_sse(ProtocolConfig{}, 0);
    Recorder r;
    std::string left;
    REQUIRE(feed(*p, stream + stream, step, r, &left));
    CHECK(left.empty());
    CHECK(r.log == "T T T ok T T T ok ");
  }
}

TEST_CASE("sse reads the same chat stream with a Content-Length body", "[proto]") {
  const std::string body = joined(chat_events());
  const std::string stream = kSseHead + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  for (size_t step : {stream.size(), size_t{1}, size_t{33}}) {
    auto p = make_sse(ProtocolConfig{}, 0);
    Recorder r;
    REQUIRE(feed(*p, stream + stream, step, r));
    CHECK(r.log == "T T T ok T T T ok ");
  }
}

TEST_CASE("sse reports each token when its event arrives", "[proto]") {
  auto p = make_sse(ProtocolConfig{}, 0);
  Recorder r;
  const auto events = chat_events();
  std::string buf = kSseHead + "Transfer-Encoding: chunked\r\n\r\n";
  uint64_t now = 0;
  auto push = [&](const std::string& bytes) {
    buf += bytes;
    auto n = p->parse(reinterpret_cast<const uint8_t*>(buf.data()), buf.size(), now++, r);
    REQUIRE(n);
    buf.erase(0, *n);
  };
  push("");
  for (const auto& e : events) {
    // Split each event across two chunks, the second arriving a tick later.
    const size_t half = e.size() / 2;
    push(chunk(e.substr(0, half)));
    push(chunk(e.substr(half)));
  }
  push("0\r\n\r\n");
  CHECK(r.token_times == std::vector<uint64_t>{4, 6, 8});
  CHECK(r.complete_times == std::vector<uint64_t>{13});
  CHECK(buf.empty());
}

TEST_CASE("sse reads Content-Length streams, CRLF lines, comments and multi-line data", "[proto]") {
  std::string events =
      ": ping\r\n\r\n"
      "event: message\r\nid: 1\r\n"
      "data: {\"choices\":[{\"index\":0,\r\ndata: \"text\":\"Hi\"}]}\r\n\r\n"
      "data:{\"choices\":[{\"index\":0,\"text\":\" there\",\"finish_reason\":\"length\"}]}\r\r"
      "data: {\"choices\":[{\"index\":0,\"text\":\"\"}]}\n\n"
      "data: [DONE]\r\n\r\n";
  const std::string stream =
      kSseHead + "Content-Length: " + std::to_string(events.size()) + "\r\n\r\n" + events;
  for (size_t step : {stream.size(), size_t{1}}) {
    ProtocolConfig cfg;
    cfg.endpoint = "completions";
    auto p = make_sse(cfg, 0);
    Recorder r;
    REQUIRE(feed(*p, stream, step, r));
    CHECK(r.log == "T T ok ");
  }
}

TEST_CASE("sse error events, error statuses and cut-short streams are error outcomes", "[proto]") {
  auto events = chat_events();
  std::vector<std::string> mid(events.begin(), events.begin() + 2);
  mid.push_back(R"(data: {"error":{"message":"engine died","type":"InternalServerError","code":500}})"
                "\n\n");
  mid.push_back("data: [DONE]\n\n");
  const std::string json429 = R"({"error":{"message":"rate limited","type":"rate_limit","code":429}})";
  const std::string too_many = "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: " +
                               std::to_string(json429.size()) + "\r\n\r\n" + json429;
  std::vector<std::string> cut(events.begin(), events.begin() + 3);  // no [DONE]
  const std::string named = "event: error\ndata: overloaded\n\n";
  const std::string not_stream =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
  const std::string stream = chunked_sse(mid) + too_many + chunked_sse(cut) + chunked_sse({named}) + not_stream +
                             chunked_sse(events);
  for (size_t step : {stream.size(), size_t{1}}) {
    auto p = make_sse(ProtocolConfig{}, 0);
    Recorder r;
    REQUIRE(feed(*p, stream, step, r));
    CHECK(r.log == "T error error T T error error error T T T ok ");
  }
}

TEST_CASE("malformed sse streams are parse errors", "[proto]") {
  const std::string not_json = chunked_sse({"data: {\"choices\":[\n\n"});
  const std::string array = chunked_sse({"data: [1,2]\n\n"});
  const std::string huge = kSseHead + "Transfer-Encoding: chunked\r\n\r\n" + chunk("data: " + std::string(1 << 21, 'x'));
  for (const std::string& s : {not_json, array, huge}) {
    auto p = make_sse(ProtocolConfig{}, 0);
    Recorder r;
    CHECK_FALSE(feed(*p, s, 4096, r));
    CHECK(r.log.empty());
  }
}
