// slip-gateway's stream relay end to end without a network: a completion
// request goes through the router, the Pool and the proxy to a scripted
// worker whose event stream arrives in reads cut at every offset (and in
// runs, as a receive ring hands them over); the client's connection is a
// fake that keeps what the gateway wrote. The client must get the worker's
// stream byte for byte, and the gateway must copy each byte once on the way
// (twice only for an event a read cut short).
#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "metrics.h"
#include "pool.h"
#include "proxy.h"
#include "slip/proto/http/response_parser.h"
#include "slip/runtime/runtime.h"

using namespace slip::gateway;
namespace rt = slip::rt;
namespace net = slip::net;

namespace {

// A read of the worker's body: the runs it hands to the sink, in order.
using Read = std::vector<std::string>;

// A worker's response: a 200 event stream delivered read by read. Each run is
// an exact-size heap copy freed as soon as the sink returns, as a receive
// ring's bytes are gone after read_inplace, so ASan sees a view kept too long.
class ScriptedCall final : public UpstreamCall {
 public:
  explicit ScriptedCall(std::vector<Read> reads) : reads_(std::move(reads)) {}
  slip::Result<UpstreamHead> head(uint64_t) override { return UpstreamHead{200, true, "text/event-stream"}; }
  slip::Result<bool> read_body(BodySink& sink, uint64_t) override {
    if (next_ == reads_.size()) return false;
    for (const std::string& run : reads_[next_++]) {
      auto copy = std::make_unique<uint8_t[]>(run.size());
      std::memcpy(copy.get(), run.data(), run.size());
      sink.body(copy.get(), run.size());
    }
    return true;
  }
  void abort() override {}

 private:
  std::vector<Read> reads_;
  size_t next_ = 0;
};

class ScriptedTransport final : public Transport {
 public:
  explicit ScriptedTransport(std::vector<Read> reads) : reads_(std::move(reads)) {}
  slip::Result<std::unique_ptr<UpstreamCall>> call(const Worker&, const UpstreamRequest&, uint64_t) override {
    return std::unique_ptr<UpstreamCall>(std::make_unique<ScriptedCall>(reads_));
  }
  void forget(const Worker&) override {}

 private:
  std::vector<Read> reads_;
};

// The client's side: keeps every byte the gateway writes; never sends or closes.
class RecordingConn final : public net::TcpConn {
 public:
  std::string out;
  slip::Result<size_t> read(void*, size_t, uint64_t) override { return slip::err(ETIMEDOUT); }
  slip::Result<size_t> write(const void* b, size_t n, uint64_t) override {
    out.append(static_cast<const char*>(b), n);
    return n;
  }
  slip::Result<size_t> writev(const iovec* iov, int n, uint64_t) override {
    size_t total = 0;
    for (int i = 0; i < n; i++) {
      out.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
      total += iov[i].iov_len;
    }
    return total;
  }
  slip::Result<InplaceRead> read_inplace(InplaceFn, void*, uint64_t) override { return slip::err(ETIMEDOUT); }
  void shutdown() override {}
  void close() override {}
  void abort() override {}
  net::Endpoint local() const override { return {}; }
  net::Endpoint remote() const override { return {}; }
  net::TcpInfo info() const override { return {}; }
};

std::string event(const std::string& json) { return "data: " + json + "\n\n"; }
std::string chunk(const std::string& delta, const std::string& finish = "null") {
  return event(R"({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":)" + delta +
               R"(,"finish_reason":)" + finish + "}]}");
}

// What slip-worker (and vLLM) stream: a comment, the role chunk, content,
// the finish, usage, [DONE]. The first two come before the first token.
const std::vector<std::string> kEvents = {
    ": ping\n\n",
    chunk(R"({"role":"assistant","content":""})"),
    chunk(R"({"content":"Once"})"),
    chunk(R"({"content":" upon"})"),
    chunk(R"({"content":" a time"})"),
    chunk("{}", R"("length")"),
    event(R"({"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":4}})"),
    "data: [DONE]\n\n",
};

std::string whole_stream() {
  std::string s;
  for (const auto& e : kEvents) s += e;
  return s;
}

struct Relayed {
  int status = 0;
  std::string body;  // the client's body, de-chunked
  uint64_t relayed = 0, copied = 0, tokens = 0;
};

// One streamed chat completion through the gateway to a worker whose body arrives as `reads`.
Relayed relay(std::vector<Read> reads) {
  Relayed out;
  rt::Config rc;
  rc.kthreads = 1;
  rt::run(rc, [&] {
    auto cfg = std::make_shared<const GatewayConfig>(
        parse_config("[[worker]]\nname = \"a\"\nurl = \"http://127.0.0.1:9001\"\nmodels = [\"m\"]\n", "test.toml"));
    Pool pool(*cfg);
    ScriptedTransport transport(std::move(reads));
    GatewayMetrics metrics;
    Gateway gw(pool, transport, metrics, cfg);
    http::Router router;
    gw.add_routes(router);
    http::Request req;
    req.method = "POST";
    req.target = req.path = "/v1/chat/completions";
    req.headers = {{"host", "gw"}, {"content-type", "application/json"}};
    req.body = R"({"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true})";
    RecordingConn conn;
    std::atomic<bool> stopping{false};
    http::Responder res(conn, req, stopping);
    router.dispatch(req, res);
    CHECK(pool.counters().running == 0);
    out.relayed = metrics.relayed_bytes.load();
    out.copied = metrics.relay_copied_bytes.load();
    out.tokens = metrics.tokens.load();
    // Decode what the client got.
    slip::proto::http::HttpResponseParser p;
    const auto* b = reinterpret_cast<const uint8_t*>(conn.out.data());
    for (size_t used = 0;;) {
      slip::proto::http::HttpEvent ev;
      auto r = p.next(b + used, conn.out.size() - used, ev);
      REQUIRE(r);
      used += *r;
      if (ev.kind == slip::proto::http::HttpEvent::Kind::head) out.status = ev.status;
      if (ev.kind == slip::proto::http::HttpEvent::Kind::body)
        out.body.append(reinterpret_cast<const char*>(ev.data), ev.size);
      if (ev.kind == slip::proto::http::HttpEvent::Kind::end || ev.kind == slip::proto::http::HttpEvent::Kind::none)
        break;
    }
  });
  return out;
}

}  // namespace

TEST_CASE("relay: one event per read, as a worker writes them: byte for byte, one copy per byte", "[gw-relay]") {
  std::vector<Read> reads;
  for (const auto& e : kEvents) reads.push_back({e});
  const std::string stream = whole_stream();
  const Relayed r = relay(reads);
  CHECK(r.status == 200);
  CHECK(r.body == stream);
  CHECK(r.relayed == stream.size());
  CHECK(r.copied == r.relayed);  // received into the relay's buffer, written to the client from there
  CHECK(r.tokens == 4);          // three content chunks and the finish
}

TEST_CASE("relay: a stream cut into two reads at every offset arrives byte for byte", "[gw-relay]") {
  const std::string stream = whole_stream();
  size_t longest = 0;
  for (const auto& e : kEvents) longest = std::max(longest, e.size());
  std::vector<size_t> boundaries{0};
  for (const auto& e : kEvents) boundaries.push_back(boundaries.back() + e.size());
  size_t moved = 0;  // cuts after which an unfinished event had to move
  for (size_t cut = 1; cut < stream.size(); cut++) {
    INFO("cut at " << cut);
    const Relayed r = relay({{stream.substr(0, cut)}, {stream.substr(cut)}});
    moved += r.copied > r.relayed;
    REQUIRE(r.body == stream);
    CHECK(r.relayed == stream.size());
    // The event a read cut short is moved once more; no other byte is.
    const bool on_boundary = std::find(boundaries.begin(), boundaries.end(), cut) != boundaries.end();
    if (on_boundary) CHECK(r.copied == r.relayed);
    CHECK(r.copied >= r.relayed);
    CHECK(r.copied < r.relayed + longest);
  }
  CHECK(moved > 0);  // cuts inside events after the first token
}

TEST_CASE("relay: runs of one read (a receive ring that wrapped) cut at every offset: one copy per byte", "[gw-relay]") {
  const std::string stream = whole_stream();
  for (size_t cut = 1; cut < stream.size(); cut++) {
    INFO("cut at " << cut);
    const Relayed r = relay({{stream.substr(0, cut), stream.substr(cut)}});
    REQUIRE(r.body == stream);
    CHECK(r.copied == r.relayed);
  }
  Read bytes;  // the worst case: a byte per run
  for (char c : stream) bytes.emplace_back(1, c);
  const Relayed r = relay({bytes});
  CHECK(r.body == stream);
  CHECK(r.copied == r.relayed);
}
