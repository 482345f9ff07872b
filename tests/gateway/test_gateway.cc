// slip-gateway's pieces without a network: the config (and its errors), the
// prefix tree, every routing policy, the Pool's admission (priority order,
// queue full, queue deadline, SLO, per-worker limits, no leaked slots),
// health (eject, backoff, readmit), reload keeping state, the SSE event
// splitter and classifier, and the completion request parser.
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "completion_request.h"
#include "config.h"
#include "pool.h"
#include "prefix_tree.h"
#include "routing.h"
#include "slip/runtime/runtime.h"
#include "slip/runtime/time.h"
#include "sse.h"

using namespace slip::gateway;
namespace rt = slip::rt;

namespace {

GatewayConfig two_workers(std::string extra = {}) {
  return parse_config(extra + R"(
[[worker]]
name = "a"
url = "http://127.0.0.1:9001"
models = ["m"]
max_concurrency = 2
[[worker]]
name = "b"
url = "http://127.0.0.1:9002"
models = ["m", "n"]
max_concurrency = 2
)",
                      "test.toml");
}

template <class F>
void in_runtime(F f) {
  rt::Config c;
  c.kthreads = 1;
  rt::run(c, [&] { f(); });
}

}  // namespace

TEST_CASE("config: defaults, tables, workers", "[gw-config]") {
  GatewayConfig c = two_workers("[routing]\npolicy = \"p2c\"\n[admission]\nqueue_size = 7\nttft_slo_ms = 250\n");
  CHECK(c.policy == Policy::p2c);
  CHECK(c.queue_size == 7);
  CHECK(c.ttft_slo_ms == 250);
  CHECK(c.max_concurrency == 4096);
  REQUIRE(c.workers.size() == 2);
  CHECK(c.workers[1].name == "b");
  CHECK(c.workers[1].port == 9002);
  CHECK(c.workers[1].models == std::vector<std::string>{"m", "n"});
  CHECK(parse_worker_url("http://localhost:8000/").ip.str() == "127.0.0.1");
  CHECK(parse_worker_url("http://198.18.0.2:8000").name == "198.18.0.2:8000");
}

TEST_CASE("config: errors name the file, table and key", "[gw-config]") {
  auto error_of = [](const std::string& text) {
    try {
      parse_config(text, "g.toml");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error_of("[routing]\npolicy = \"fastest\"\n"), Catch::Contains("g.toml: [routing] policy"));
  CHECK_THAT(error_of("[admission]\nqueue_sise = 3\n"), Catch::Contains("unknown key \"queue_sise\""));
  CHECK_THAT(error_of("[[worker]]\nurl = \"https://1.2.3.4:1\"\n"), Catch::Contains("http://"));
  CHECK_THAT(error_of("[[worker]]\nurl = \"http://gpu-box:8000\"\n"), Catch::Contains("does not resolve names"));
  CHECK_THAT(error_of("[[worker]]\nurl = \"http://1.2.3.4:99999\"\n"), Catch::Contains("not a port"));
  CHECK_THAT(error_of("[[worker]]\nurl = \"http://1.2.3.4:1\"\n[[worker]]\nurl = \"http://1.2.3.4:1\"\n"),
             Catch::Contains("used twice"));
  CHECK_THAT(error_of("[server]\nport = -1\n"), Catch::Contains("[server] port"));
  CHECK_THAT(error_of("[server\n"), Catch::Contains("g.toml:1:"));
  CHECK_THAT(error_of("[admission]\nmax_concurrency = \"lots\"\n"), Catch::Contains("must be an integer"));
}

TEST_CASE("prefix tree: longest match, splits, LRU eviction", "[gw-prefix]") {
  PrefixTree t(1024);
  t.insert("system: be brief\nuser: hello", 1);
  t.insert("system: be brief\nuser: goodbye", 2);
  CHECK(t.match("system: be brief\nuser: hello there", 3) == 28);
  CHECK(t.match("system: be brief\nuser: g", 3) == 24);
  CHECK(t.match("other", 3) == 0);
  CHECK(t.bytes() == std::string("system: be brief\nuser: hello").size() + std::string("goodbye").size());
  PrefixTree small(1200);
  for (int i = 0; i < 40; i++) small.insert(std::string(1, static_cast<char>('A' + i)) + std::string(99, 'x'), 10 + i);
  CHECK(small.bytes() <= 1200);
  CHECK(small.match(std::string(1, static_cast<char>('A' + 39)) + std::string(99, 'x'), 100) == 100);  // newest kept
  CHECK(small.match(std::string(1, 'A') + std::string(99, 'x'), 100) == 0);  // oldest evicted
}

TEST_CASE("routing policies", "[gw-routing]") {
  std::vector<std::unique_ptr<Worker>> ws;
  for (int i = 0; i < 3; i++) ws.push_back(std::make_unique<Worker>(WorkerConfig{}, 1 << 20));
  std::vector<Worker*> c = {ws[0].get(), ws[1].get(), ws[2].get()};
  ws[0]->outstanding = 5, ws[1]->outstanding = 1, ws[2]->outstanding = 3;
  ws[0]->outstanding_tokens = 10, ws[1]->outstanding_tokens = 900, ws[2]->outstanding_tokens = 50;
  RouteInput in{"hello", 10};
  PrefixConfig pc;

  auto rr = make_policy(Policy::round_robin, pc, 1);
  CHECK(rr->pick(in, c, 0) == c[0]);
  CHECK(rr->pick(in, c, 0) == c[1]);
  CHECK(rr->pick(in, c, 0) == c[2]);
  CHECK(rr->pick(in, c, 0) == c[0]);
  CHECK(make_policy(Policy::least_requests, pc, 1)->pick(in, c, 0) == c[1]);
  CHECK(make_policy(Policy::least_tokens, pc, 1)->pick(in, c, 0) == c[0]);
  auto p2c = make_policy(Policy::p2c, pc, 7);
  int busiest = 0;
  for (int i = 0; i < 300; i++) busiest += p2c->pick(in, c, 0) == c[0];
  CHECK(busiest == 0);  // the most loaded of three never wins a pair

  SECTION("prefix aware: sticks to the worker that has the prefix, balances when skewed") {
    for (auto* w : c) w->outstanding = 2;
    auto pa = make_policy(Policy::prefix_aware, pc, 1);
    const std::string sys = "system: you are a helpful assistant who answers in French\nuser: ";
    Worker* first = pa->pick({sys + "q1", 10}, c, 1);
    for (int i = 2; i < 10; i++) CHECK(pa->pick({sys + "q" + std::to_string(i), 10}, c, i) == first);
    // A new prefix goes to a worker with the least cached (an empty tree), not to `first`.
    Worker* other = pa->pick({"a completely different prompt", 10}, c, 20);
    CHECK(other != first);
    // Imbalance beyond balance_abs and balance_rel: least loaded wins despite the match.
    first->outstanding = 100;
    Worker* idle = c[0] == first ? c[1] : c[0];
    idle->outstanding = 0;
    CHECK(pa->pick({sys + "q99", 10}, c, 30) == idle);
  }
}

TEST_CASE("pool: slots, priority order, queue full, deadline, no leaks", "[gw-pool]") {
  in_runtime([] {
    GatewayConfig cfg = two_workers("[admission]\nmax_concurrency = 3\nqueue_size = 2\n");
    Pool pool(cfg);
    CHECK(pool.serves("n"));
    CHECK_FALSE(pool.serves("z"));
    const Ask ask{"m", {"p", 1}, 0};
    std::vector<const Worker*> none;
    const uint64_t far = slip::now_ns() + 5'000'000'000;
    Grant g1 = pool.acquire(ask, none, far, nullptr), g2 = pool.acquire(ask, none, far, nullptr),
          g3 = pool.acquire(ask, none, far, nullptr);
    REQUIRE(g1.worker);
    REQUIRE(g2.worker);
    REQUIRE(g3.worker);
    CHECK(pool.counters().running == 3);

    // Full: two wait (a low-priority one first, then an urgent one); a third is refused.
    std::vector<int> order;
    auto waiter = [&](int64_t prio, int tag) {
      return rt::spawn([&, prio, tag] {
        Grant g = pool.acquire(Ask{"m", {"p", 1}, prio}, none, far, nullptr);
        REQUIRE(g.worker);
        order.push_back(tag);
        pool.release(*g.worker, 1);
      });
    };
    auto low = waiter(10, 1);
    rt::sleep_for(std::chrono::milliseconds(5));
    auto high = waiter(-5, 2);
    rt::sleep_for(std::chrono::milliseconds(5));
    CHECK(pool.counters().waiting == 2);
    Grant full = pool.acquire(ask, none, far, nullptr);
    CHECK(full.status == 429);
    CHECK(full.retry_after_s >= 1);
    CHECK(pool.counters().rejected_queue_full == 1);

    pool.release(*g1.worker, 1);
    high.join();
    pool.release(*g2.worker, 1);
    low.join();
    CHECK(order == std::vector<int>{2, 1});  // priority before arrival order

    // A queue deadline: 429; a client that leaves: 499.
    Grant g4 = pool.acquire(ask, none, far, nullptr), g5 = pool.acquire(ask, none, far, nullptr);
    REQUIRE(g4.worker);
    REQUIRE(g5.worker);
    Grant late = pool.acquire(ask, none, slip::now_ns() + 30'000'000, nullptr);
    CHECK(late.status == 429);
    CHECK(pool.counters().rejected_timeout == 1);
    Grant left = pool.acquire(ask, none, far, [] { return true; });
    CHECK(left.status == 499);
    pool.release(*g3.worker, 1);
    pool.release(*g4.worker, 1);
    pool.release(*g5.worker, 1);
    const PoolCounters pc = pool.counters();
    CHECK(pc.running == 0);
    CHECK(pc.waiting == 0);
    for (const auto& w : pool.workers()) CHECK(w->outstanding == 0);
  });
}

TEST_CASE("pool: model routing, per-worker limits, retries exclude tried workers", "[gw-pool]") {
  in_runtime([] {
    Pool pool(two_workers());
    std::vector<const Worker*> none;
    const uint64_t soon = slip::now_ns() + 20'000'000;
    // Only b serves n, and b takes two.
    Grant a = pool.acquire(Ask{"n", {}, 0}, none, soon, nullptr), b = pool.acquire(Ask{"n", {}, 0}, none, soon, nullptr);
    REQUIRE(a.worker);
    REQUIRE(b.worker);
    CHECK(a.worker->cfg.name == "b");
    CHECK(pool.acquire(Ask{"n", {}, 0}, none, soon, nullptr).status == 429);
    // m still fits on a.
    Grant c = pool.acquire(Ask{"m", {}, 0}, none, soon, nullptr);
    REQUIRE(c.worker);
    CHECK(c.worker->cfg.name == "a");
    CHECK(pool.acquire(Ask{"z", {}, 0}, none, soon, nullptr).status == 404);
    std::vector<const Worker*> tried = {b.worker.get()};
    CHECK(pool.acquire(Ask{"n", {}, 0}, tried, soon, nullptr).status == 502);
    pool.release(*a.worker, 0);
    pool.release(*b.worker, 0);
    pool.release(*c.worker, 0);
  });
}

TEST_CASE("pool: ejection, backoff, readmission; reload keeps state", "[gw-pool]") {
  in_runtime([] {
    Pool pool(two_workers("[health]\neject_after = 2\nbackoff_min_ms = 20\nbackoff_max_ms = 40\ninterval_ms = 10000\n"));
    auto ws = pool.workers();
    Worker& a = *ws[0];
    CHECK(pool.due_for_probe().size() == 2);  // the first round probes everyone
    pool.report(a, false);
    CHECK_FALSE(a.ejected);
    pool.report(a, false);
    CHECK(a.ejected);
    CHECK_FALSE(a.healthy_now.load());
    CHECK(pool.due_for_probe().empty());  // inside the backoff
    rt::sleep_for(std::chrono::milliseconds(25));
    auto due = pool.due_for_probe();
    REQUIRE(due.size() == 1);
    CHECK(due[0].get() == &a);
    pool.report(a, false);  // still down: the backoff doubles
    CHECK(a.backoff_ns == 40'000'000);
    std::vector<const Worker*> none;
    // Only a serves m? No: b does too; but a request for m lands on b only.
    Grant g = pool.acquire(Ask{"m", {}, 0}, none, slip::now_ns() + 10'000'000, nullptr);
    REQUIRE(g.worker);
    CHECK(g.worker->cfg.name == "b");
    pool.report(a, true);
    CHECK_FALSE(a.ejected);
    CHECK(a.healthy_now.load());

    // Reload: b stays the same object with its in-flight request; a goes; c arrives.
    pool.reload(parse_config(R"(
[[worker]]
name = "b"
url = "http://127.0.0.1:9002"
max_concurrency = 9
[[worker]]
name = "c"
url = "http://127.0.0.1:9003"
)",
                             "r.toml"));
    auto after = pool.workers();
    REQUIRE(after.size() == 2);
    CHECK(after[0].get() == g.worker.get());
    CHECK(after[0]->outstanding == 1);
    CHECK(after[0]->cfg.max_concurrency == 9);
    CHECK(after[1]->cfg.name == "c");
    CHECK(a.removed);
    pool.release(*g.worker, 0);
    CHECK(pool.counters().running == 0);
  });
}

TEST_CASE("pool: a predicted TTFT over the SLO is refused with 429", "[gw-pool]") {
  in_runtime([] {
    Pool pool(two_workers("[admission]\nmax_concurrency = 1\nttft_slo_ms = 100\n"));
    std::vector<const Worker*> none;
    pool.record_service(2'000'000'000);  // requests hold a slot for 2 s
    pool.record_ttft(50'000'000);
    Grant held = pool.acquire(Ask{"m", {}, 0}, none, slip::now_ns() + 10'000'000, nullptr);
    REQUIRE(held.worker);
    Grant g = pool.acquire(Ask{"m", {}, 0}, none, slip::now_ns() + 10'000'000, nullptr);
    CHECK(g.status == 429);
    CHECK_THAT(g.message, Catch::Contains("SLO"));
    CHECK(g.retry_after_s == 2);
    CHECK(pool.counters().rejected_slo == 1);
    pool.release(*held.worker, 0);
  });
}

TEST_CASE("sse: events split at blank lines and classified", "[gw-sse]") {
  CHECK(next_event_end("data: a\n\ndata: b") == 9);
  CHECK(next_event_end("data: a\r\n\r\nx") == 11);
  CHECK(next_event_end("data: a\n") == 0);
  SseClassifier c;
  CHECK(c.classify("data: [DONE]\n\n") == EventKind::done);
  CHECK(c.classify(": keep-alive\n\n") == EventKind::preamble);
  CHECK(c.classify(R"(data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})"
                   "\n\n") == EventKind::preamble);
  CHECK(c.classify(R"(data: {"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]})"
                   "\n\n") == EventKind::token);
  CHECK(c.classify(R"(data: {"choices":[{"index":0,"text":" x","finish_reason":null}]})"
                   "\n\n") == EventKind::token);
  CHECK(c.classify(R"(data: {"choices":[{"index":0,"delta":{},"finish_reason":"length"}]})"
                   "\n\n") == EventKind::token);
  CHECK(c.classify(R"(data: {"choices":[{"delta":{"tool_calls":[{"id":"1"}]}}]})"
                   "\n\n") == EventKind::token);
  CHECK(c.classify(R"(data: {"choices":[],"usage":{"prompt_tokens":1}})"
                   "\n\n") == EventKind::usage);
  CHECK(c.classify(R"(data: {"error":{"message":"x"}})"
                   "\n\n") == EventKind::error);
  CHECK(c.classify("data: {not json\n\n") == EventKind::preamble);
  CHECK(c.classify("data: {\"choices\":\r\ndata: []}\r\n\r\n") == EventKind::preamble);  // multi-line data joined
}

TEST_CASE("completion request: what routing needs, and 400s", "[gw-request]") {
  CompletionRequest r;
  REQUIRE_FALSE(parse_completion(
      R"({"model":"m","stream":true,"priority":-3,"max_tokens":7,"temperature":0.2,
          "messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi"}]}]})",
      true, r));
  CHECK(r.model == "m");
  CHECK(r.stream);
  CHECK(r.priority == -3);
  CHECK(r.max_tokens == 7);
  CHECK(r.prompt == "system\nbe brief\nuser\nhi\n");
  CompletionRequest p;
  REQUIRE_FALSE(parse_completion(R"({"model":"m","prompt":["a","b"]})", false, p));
  CHECK(p.prompt == "ab");
  auto e = [](const char* body, bool chat) {
    CompletionRequest x;
    auto err = parse_completion(body, chat, x);
    return err ? err->param + ":" + std::to_string(err->status) : std::string("ok");
  };
  CHECK(e(R"({"model":"m","messages":[]} trailing)", true) == ":400");
  CHECK(e(R"([1,2])", true) == ":400");
  CHECK(e(R"({"messages":[]})", true) == "model:400");
  CHECK(e(R"({"model":5,"messages":[]})", true) == "model:400");
  CHECK(e(R"({"model":"m"})", true) == "messages:400");
  CHECK(e(R"({"model":"m","prompt":{}})", false) == "prompt:400");
  CHECK(e(R"({"model":"m","messages":[],"stream":1})", true) == "stream:400");
  CHECK(e(R"({"model":"m","messages":[],"max_tokens":-1})", true) == "max_tokens:400");
  CHECK(e(R"({"model":"m","messages":[],"priority":"high"})", true) == "priority:400");
  CHECK(e(R"({"model":"m","messages":[],"stream":null,"max_tokens":null})", true) == "ok");
}
