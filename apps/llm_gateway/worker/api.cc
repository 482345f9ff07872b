#include "api.h"

#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>

#include "sched_metrics.h"
#include "tokens.h"

namespace slip::gateway::worker {
namespace {

using ojson = nlohmann::ordered_json;

// How often a waiting handler looks at its connection and the stop flag.
constexpr uint64_t kPollNs = 20'000'000;

std::string dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

ojson usage(const SimRequest& r, uint32_t produced) {
  ojson u;
  u["prompt_tokens"] = r.prompt_tokens;
  u["completion_tokens"] = produced;
  u["total_tokens"] = r.prompt_tokens + produced;
  u["prompt_tokens_details"] = {{"cached_tokens", r.cached_tokens}};
  return u;
}

}  // namespace

Api::Api(Engine& e, const Profile& p, ApiOptions o)
    : engine_(e), p_(p), o_(std::move(o)), created_(static_cast<int64_t>(::time(nullptr))) {}

void Api::add_routes(http::Router& r) {
  r.add("POST", "/v1/chat/completions", [this](const http::Request& q, http::Responder& s) { completion(q, s, true); });
  r.add("POST", "/v1/completions", [this](const http::Request& q, http::Responder& s) { completion(q, s, false); });
  r.add("GET", "/v1/models", [this](const http::Request&, http::Responder& s) {
    ojson m = {{"id", o_.model}, {"object", "model"}, {"created", created_}, {"owned_by", "slip-worker"},
               {"max_model_len", p_.max_model_len}};
    (void)s.respond(200, "application/json", dump(ojson{{"object", "list"}, {"data", ojson::array({m})}}));
  });
  r.add("GET", "/health", [](const http::Request&, http::Responder& s) { (void)s.respond(200, "", ""); });
  r.add("GET", "/metrics", [this](const http::Request&, http::Responder& s) { metrics(s); });
}

void Api::completion(const http::Request& req, http::Responder& res, bool chat) {
  requests_.fetch_add(1, std::memory_order_relaxed);
  Job job;
  if (auto e = parse_job(req, chat, o_.model, p_, job)) {
    bad_requests_.fetch_add(1, std::memory_order_relaxed);
    (void)res.error(e->status, e->message, {}, e->param, e->code);
    return;
  }
  auto r = std::make_shared<SimRequest>();
  r->prompt_tokens = static_cast<uint32_t>(job.tokens.size());
  r->max_tokens = job.max_tokens;
  r->block_hashes = block_hashes(job.tokens, p_.block_tokens);
  const uint64_t out_seed = output_seed(job.tokens, o_.seed);
  const uint32_t span = p_.max_output_tokens - p_.min_output_tokens + 1;
  r->eos_after = job.ignore_eos ? UINT32_MAX : p_.min_output_tokens + static_cast<uint32_t>(out_seed % span);
  if (!engine_.submit(r)) {
    if (res.stopping() || engine_.stopping()) {
      (void)res.error(503, "the server is shutting down");
      return;
    }
    bad_requests_.fetch_add(1, std::memory_order_relaxed);
    (void)res.error(400, "the prompt and max_tokens do not fit in the KV cache (--kv-tokens)", {}, "max_tokens");
    return;
  }
  const std::string id =
      fmt::format("{}-{:016x}", chat ? "chatcmpl" : "cmpl", next_id_.fetch_add(1) * 0x9e3779b97f4a7c15ULL ^ o_.seed);
  if (job.stream) stream(res, job, r, id, out_seed);
  else whole(res, job, r, id, out_seed);
}

bool Api::wait_progress(http::Responder& res, const std::shared_ptr<SimRequest>& r, uint32_t seen, uint32_t& produced,
                        Finish& f) {
  for (;;) {
    {
      std::lock_guard g(r->mu);
      r->cv.wait_until(r->mu, now_ns() + kPollNs, [&] { return r->produced > seen || r->finish != Finish::none; });
      produced = r->produced;
      f = r->finish;
    }
    if (produced > seen || f != Finish::none) return true;
    if (res.stopping() || res.peer_gone()) {
      engine_.cancel(r);
      return false;
    }
  }
}

void Api::stream(http::Responder& res, const Job& job, const std::shared_ptr<SimRequest>& r, const std::string& id,
                 uint64_t out_seed) {
  auto gone = [&] { engine_.cancel(r); };
  if (!res.start_stream(200, "text/event-stream", {{"Cache-Control", "no-cache"}})) return gone();
  ojson base;
  base["id"] = id;
  base["object"] = job.chat ? "chat.completion.chunk" : "text_completion";
  base["created"] = static_cast<int64_t>(::time(nullptr));
  base["model"] = o_.model;
  auto event = [&](ojson choice, bool with_choices = true) {
    ojson j = base;
    j["choices"] = with_choices ? ojson::array({std::move(choice)}) : ojson::array();
    return "data: " + dump(j) + "\n\n";
  };
  auto choice = [&](const std::string* text, const char* finish) {
    ojson c;
    c["index"] = 0;
    if (job.chat) c["delta"] = text ? ojson{{"content", *text}} : ojson::object();
    else c["text"] = text ? *text : "";
    c["logprobs"] = nullptr;
    c["finish_reason"] = finish ? ojson(finish) : ojson(nullptr);
    return c;
  };
  if (job.chat) {
    ojson c = choice(nullptr, nullptr);
    c["delta"] = {{"role", "assistant"}, {"content", ""}};
    if (!res.send_chunk(event(c))) return gone();
  }
  uint32_t sent = 0, produced = 0;
  Finish f = Finish::none;
  while (f == Finish::none) {
    if (!wait_progress(res, r, sent, produced, f)) return;
    for (; sent < produced; sent++) {
      const std::string tok = output_token(out_seed, sent);
      if (!res.send_chunk(event(choice(&tok, nullptr)))) return gone();
    }
    if (f == Finish::none && res.peer_gone()) return gone();
  }
  if (f != Finish::stop && f != Finish::length) return;  // aborted: the stream ends unfinished
  std::string tail = event(choice(nullptr, finish_name(f)));
  if (job.include_usage) {
    ojson j = base;
    j["choices"] = ojson::array();
    j["usage"] = usage(*r, produced);
    tail += "data: " + dump(j) + "\n\n";
  }
  tail += "data: [DONE]\n\n";
  if (res.send_chunk(tail)) (void)res.end_stream();
}

void Api::whole(http::Responder& res, const Job& job, const std::shared_ptr<SimRequest>& r, const std::string& id,
                uint64_t out_seed) {
  uint32_t produced = 0;
  Finish f = Finish::none;
  while (f == Finish::none)
    if (!wait_progress(res, r, produced, produced, f)) return;
  if (f != Finish::stop && f != Finish::length) {
    (void)res.error(503, "the request was aborted: the server is shutting down");
    return;
  }
  std::string text;
  for (uint32_t i = 0; i < produced; i++) text += output_token(out_seed, i);
  ojson c;
  c["index"] = 0;
  if (job.chat) c["message"] = {{"role", "assistant"}, {"content", text}};
  else c["text"] = text;
  c["logprobs"] = nullptr;
  c["finish_reason"] = finish_name(f);
  ojson j;
  j["id"] = id;
  j["object"] = job.chat ? "chat.completion" : "text_completion";
  j["created"] = static_cast<int64_t>(::time(nullptr));
  j["model"] = o_.model;
  j["choices"] = ojson::array({c});
  j["usage"] = usage(*r, produced);
  (void)res.respond(200, "application/json", dump(j));
}

void Api::metrics(http::Responder& res) {
  const EngineStats s = engine_.stats();
  std::string out;
  const std::string label = "{model_name=\"" + o_.model + "\"}";
  auto metric = [&](const char* name, const char* type, const char* help, auto value, const std::string& lbl) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} {2}\n{0}{3} {4}\n", name, help, type, lbl, value);
  };
  metric("vllm:num_requests_running", "gauge", "Requests in the running batch.", s.running, label);
  metric("vllm:num_requests_waiting", "gauge", "Requests waiting to be admitted.", s.waiting, label);
  metric("vllm:kv_cache_usage_perc", "gauge", "KV-cache blocks held by requests (0-1).",
         s.kv_blocks ? static_cast<double>(s.kv_blocks_used) / static_cast<double>(s.kv_blocks) : 0.0, label);
  metric("vllm:prompt_tokens_total", "counter", "Prompt tokens admitted.", s.prompt_tokens, label);
  metric("vllm:generation_tokens_total", "counter", "Tokens generated.", s.generation_tokens, label);
  metric("vllm:prefix_cache_queries_total", "counter", "Prompt tokens looked up in the prefix cache.",
         s.prefix_queries, label);
  metric("vllm:prefix_cache_hits_total", "counter", "Prompt tokens found in the prefix cache.", s.prefix_hits, label);
  out += "# HELP vllm:request_success_total Requests finished, by finish reason.\n"
         "# TYPE vllm:request_success_total counter\n";
  for (auto [reason, v] : {std::pair{"stop", s.finished_stop}, {"length", s.finished_length},
                           {"abort", s.cancelled + s.aborted}})
    out += fmt::format("vllm:request_success_total{{model_name=\"{}\",finished_reason=\"{}\"}} {}\n", o_.model, reason, v);
  metric("slip_worker_requests_total", "counter", "Completion requests received (valid or not).",
         requests_.load(), label);
  metric("slip_worker_bad_requests_total", "counter", "Completion requests refused with a 4xx.",
         bad_requests_.load(), label);
  metric("slip_worker_requests_cancelled_total", "counter", "Requests whose client left before the end.",
         s.cancelled, label);
  metric("slip_worker_batch_size_max", "gauge", "Largest running batch so far.", s.max_running, label);
  metric("slip_worker_prefill_seconds_total", "counter", "Simulated seconds spent in prefill steps.",
         static_cast<double>(s.prefill_ns) / 1e9, label);
  metric("slip_worker_engine_steps_total", "counter", "Engine steps (one decode step each).", s.steps, label);
  app::render_sched_metrics(out, "slip_worker_");
  (void)res.respond(200, "text/plain; version=0.0.4; charset=utf-8", out);
}

}  // namespace slip::gateway::worker
