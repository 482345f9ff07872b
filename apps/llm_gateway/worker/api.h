// slip-worker's OpenAI-compatible API over the simulated engine:
// POST /v1/chat/completions and /v1/completions (streamed as vLLM streams
// them, or whole), GET /v1/models, /health and /metrics (Prometheus text,
// vLLM's metric names where vLLM has one).
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine.h"
#include "http_server.h"
#include "profile.h"

namespace slip::gateway::worker {

namespace http = app::http;

// A completion request after validation.
struct Job {
  bool chat = true, stream = false, include_usage = false, ignore_eos = false;
  std::vector<uint64_t> tokens;  // the prompt, after the chat template
  uint32_t max_tokens = 0;
};

// A 4xx to answer with an OpenAI error body.
struct ApiError {
  int status = 400;
  std::string message, param, code;
};

// Checks the content type and parses the JSON body of a completion request
// for `model`; an error says what to answer instead.
std::optional<ApiError> parse_job(const http::Request& req, bool chat, const std::string& model,
                                  const Profile& p, Job& out);

struct ApiOptions {
  std::string model;
  uint64_t seed = 1;
};

class Api {
 public:
  Api(Engine& e, const Profile& p, ApiOptions o);
  void add_routes(http::Router& r);

 private:
  void completion(const http::Request& req, http::Responder& res, bool chat);
  void stream(http::Responder& res, const Job& job, const std::shared_ptr<SimRequest>& r, const std::string& id,
              uint64_t out_seed);
  void whole(http::Responder& res, const Job& job, const std::shared_ptr<SimRequest>& r, const std::string& id,
             uint64_t out_seed);
  // Waits until r has more than `seen` tokens or ends; false when the client
  // left or the server stops (r is then cancelled).
  bool wait_progress(http::Responder& res, const std::shared_ptr<SimRequest>& r, uint32_t seen, uint32_t& produced,
                     Finish& f);
  void metrics(http::Responder& res);

  Engine& engine_;
  const Profile& p_;
  const ApiOptions o_;
  const int64_t created_;
  std::atomic<uint64_t> next_id_{1}, bad_requests_{0}, requests_{0};
};

}  // namespace slip::gateway::worker
