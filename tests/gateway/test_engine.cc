// slip-worker's simulated engine: continuous batching up to max_batch, KV
// reservations that hold requests back, prefix-cache hits, cancellation,
// stop, and its deterministic tokens.
#include <catch2/catch.hpp>
#include <memory>
#include <mutex>
#include <vector>

#include "engine.h"
#include "tokens.h"

using namespace slip::gateway::worker;
namespace rt = slip::rt;

namespace {

// A request for `prompt` distinct tokens (offset by `salt`) and max_tokens.
std::shared_ptr<SimRequest> make(uint32_t prompt, uint32_t max_tokens, uint64_t salt = 0) {
  std::vector<uint64_t> toks;
  for (uint32_t i = 0; i < prompt; i++) toks.push_back(salt * 100000 + i);
  auto r = std::make_shared<SimRequest>();
  r->prompt_tokens = prompt;
  r->max_tokens = max_tokens;
  r->eos_after = UINT32_MAX;
  r->block_hashes = block_hashes(toks, 16);
  return r;
}

Finish wait(SimRequest& r) {
  std::lock_guard g(r.mu);
  r.cv.wait(r.mu, [&] { return r.finish != Finish::none; });
  return r.finish;
}

// Runs body(engine) in a runtime with fast simulated time.
template <class F>
void with_engine(EngineOptions o, F body) {
  rt::Config cfg;
  cfg.kthreads = 1;
  rt::run(cfg, [&] {
    Profile p;
    o.time_scale = 1000;
    Engine e(p, o);
    e.start();
    body(e);
    e.stop();
  });
}

}  // namespace

TEST_CASE("engine: batches up to max_batch and gives every request its tokens", "[engine]") {
  with_engine(EngineOptions{2, 800000, 1}, [](Engine& e) {
    std::vector<std::shared_ptr<SimRequest>> rs;
    for (int i = 0; i < 3; i++) rs.push_back(make(20, 5, i));
    for (auto& r : rs) REQUIRE(e.submit(r));
    for (auto& r : rs) CHECK(wait(*r) == Finish::length);
    for (auto& r : rs) CHECK(r->produced == 5);
    const EngineStats s = e.stats();
    CHECK(s.max_running == 2);
    CHECK(s.generation_tokens == 15);
    CHECK(s.finished_length == 3);
    CHECK(s.kv_blocks_used == 0);
  });
}

TEST_CASE("engine: the KV cache holds requests back and rejects what never fits", "[engine]") {
  with_engine(EngineOptions{8, 64, 1}, [](Engine& e) {  // 4 blocks of 16
    auto a = make(16, 40, 1), b = make(16, 40, 2);       // 56 tokens: all 4 blocks each
    REQUIRE(e.submit(a));
    REQUIRE(e.submit(b));
    CHECK(wait(*a) == Finish::length);
    CHECK(wait(*b) == Finish::length);
    CHECK(e.stats().max_running == 1);
    CHECK_FALSE(e.submit(make(16, 60, 3)));  // 76 tokens > 64
  });
}

TEST_CASE("engine: a repeated prompt prefix hits the prefix cache", "[engine]") {
  with_engine(EngineOptions{8, 800000, 1}, [](Engine& e) {
    auto a = make(40, 2, 7), b = make(40, 2, 7), c = make(40, 2, 8);
    REQUIRE(e.submit(a));
    wait(*a);
    REQUIRE(e.submit(b));
    wait(*b);
    REQUIRE(e.submit(c));
    wait(*c);
    CHECK(a->cached_tokens == 0);
    CHECK(b->cached_tokens == 32);  // two full blocks; the partial third is never cached
    CHECK(c->cached_tokens == 0);
    const EngineStats s = e.stats();
    CHECK(s.prefix_hits == 32);
    CHECK(s.prefix_queries == 120);
  });
}

TEST_CASE("engine: cancel takes a request out at once; stop aborts the rest", "[engine]") {
  with_engine(EngineOptions{8, 800000, 1}, [](Engine& e) {
    auto r = make(20, 100000, 1);
    REQUIRE(e.submit(r));
    {
      std::lock_guard g(r->mu);
      r->cv.wait(r->mu, [&] { return r->produced >= 3; });
    }
    e.cancel(r);
    CHECK(wait(*r) == Finish::cancelled);
    const EngineStats s = e.stats();
    CHECK(s.cancelled == 1);
    CHECK(s.running == 0);
    CHECK(s.kv_blocks_used == 0);
    auto q = make(20, 100000, 2);
    REQUIRE(e.submit(q));
    e.stop();
    CHECK(wait(*q) == Finish::aborted);
  });
}

TEST_CASE("engine: output words are deterministic per seed and prompt", "[engine]") {
  std::vector<uint64_t> t;
  tokenize("hello brave new world", t);
  CHECK(t.size() == 4);
  tokenize("supercalifragilistic", t);  // 20 bytes: 3 tokens
  CHECK(t.size() == 7);
  const uint64_t s1 = output_seed(t, 1), s2 = output_seed(t, 2);
  CHECK(output_token(s1, 0) == output_token(output_seed(t, 1), 0));
  CHECK(output_token(s1, 1).front() == ' ');
  std::string a, b;
  for (uint32_t i = 0; i < 20; i++) {
    a += output_token(s1, i);
    b += output_token(s2, i);
  }
  CHECK(a != b);
}
