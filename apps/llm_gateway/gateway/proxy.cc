#include "proxy.h"

#include <fmt/format.h>

#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>

#include "completion_request.h"
#include "sched_metrics.h"
#include "slip/proto/http/syntax.h"
#include "slip/runtime/time.h"

namespace slip::gateway {
namespace {

// How often a request waiting on its worker looks at its client's connection.
constexpr uint64_t kGonePollNs = 20'000'000;

uint64_t ms(uint64_t v) { return v * 1'000'000; }

}  // namespace

struct Gateway::Attempt {
  const http::Request& req;
  http::Responder& res;
  const GatewayConfig& cfg;
  const CompletionRequest& cr;
  std::string_view path, id;
  uint64_t t0 = 0;             // the request arrived
  std::shared_ptr<Worker> w;   // this attempt's worker
  std::string why;             // the last failure, for the client if every attempt fails
  bool stream_started = false;
};

Gateway::Gateway(Pool& pool, Transport& t, GatewayMetrics& m, std::shared_ptr<const GatewayConfig> cfg)
    : pool_(pool), transport_(t), m_(m), cfg_(std::move(cfg)), created_(static_cast<int64_t>(::time(nullptr))) {}

void Gateway::set_config(std::shared_ptr<const GatewayConfig> c) {
  std::lock_guard g(cfg_mu_);
  cfg_ = std::move(c);
}

std::shared_ptr<const GatewayConfig> Gateway::config() const {
  std::lock_guard g(cfg_mu_);
  return cfg_;
}

void Gateway::add_routes(http::Router& r) {
  r.add("POST", "/v1/chat/completions", [this](const http::Request& q, http::Responder& s) { completion(q, s, true); });
  r.add("POST", "/v1/completions", [this](const http::Request& q, http::Responder& s) { completion(q, s, false); });
  r.add("GET", "/v1/models", [this](const http::Request& q, http::Responder& s) {
    if (!authorized(q, *config())) return answer(s, 401, "Incorrect API key provided.", "invalid_api_key");
    models(s);
  });
  r.add("GET", "/health", [this](const http::Request&, http::Responder& s) { health(s); });
  r.add("GET", "/metrics", [this](const http::Request&, http::Responder& s) { metrics(s); });
}

bool Gateway::authorized(const http::Request& req, const GatewayConfig& c) const {
  if (c.api_keys.empty()) return true;
  const std::string* h = req.header("authorization");
  if (!h || h->size() < 7 || !proto::http::iequals(std::string_view(*h).substr(0, 7), "bearer ")) return false;
  const std::string_view key = proto::http::trim_ows(std::string_view(*h).substr(7));
  for (const auto& k : c.api_keys)
    if (k == key) return true;
  return false;
}

void Gateway::answer(http::Responder& res, int status, const std::string& message, std::string_view code,
                     uint32_t retry_after_s, std::string_view param) {
  m_.by_status[static_cast<size_t>(status)].fetch_add(1, std::memory_order_relaxed);
  const std::string body = http::openai_error_body(message, http::error_type_for(status), param, code);
  if (retry_after_s > 0) {
    const std::string ra = std::to_string(retry_after_s);
    (void)res.respond(status, "application/json", body, {{"Retry-After", ra}});
  } else {
    (void)res.respond(status, "application/json", body);
  }
}

void Gateway::completion(const http::Request& req, http::Responder& res, bool chat) {
  const uint64_t t0 = now_ns();
  const auto cfg = config();
  if (!authorized(req, *cfg)) return answer(res, 401, "Incorrect API key provided.", "invalid_api_key");
  const std::string* ct = req.header("content-type");
  if (!ct || !proto::http::media_type_is(*ct, "application/json"))
    return answer(res, 415, "Content-Type must be application/json", "unsupported_media_type");
  CompletionRequest cr;
  if (auto e = parse_completion(req.body, chat, cr)) return answer(res, e->status, e->message, e->code, 0, e->param);
  if (!pool_.serves(cr.model))
    return answer(res, 404, "The model `" + cr.model + "` does not exist.", "model_not_found", 0, "model");
  m_.prompt_bytes.fetch_add(cr.prompt.size(), std::memory_order_relaxed);

  const std::string id = fmt::format("gw-{:x}", next_id_.fetch_add(1, std::memory_order_relaxed));
  Attempt a{req, res, *cfg, cr, req.path, id, t0, {}, {}, false};
  const Ask ask{cr.model, RouteInput{cr.prompt, cr.prompt.size() / 4 + (cr.max_tokens ? cr.max_tokens : 256)},
                cr.priority};
  std::vector<const Worker*> tried;
  auto gone = [&res] { return res.peer_gone(); };
  for (uint32_t n = 0;; n++) {
    Grant g = pool_.acquire(ask, tried, t0 + ms(cfg->queue_timeout_ms), gone);
    if (g.status == 499) {
      m_.client_disconnects.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (g.status == 502) return answer(res, 502, g.message + ": " + a.why, "worker_failed");
    if (g.status) return answer(res, g.status, g.message, g.status == 404 ? "model_not_found" : "", g.retry_after_s);
    if (n == 0) m_.queue.observe_ns(now_ns() - t0);
    a.w = std::move(g.worker);
    const Outcome o = attempt(a);
    pool_.release(*a.w, ask.route.tokens);
    if (o == Outcome::client_gone) m_.client_disconnects.fetch_add(1, std::memory_order_relaxed);
    if (o != Outcome::retry) return;
    m_.upstream_failures.fetch_add(1, std::memory_order_relaxed);
    if (n >= cfg->max_retries) return answer(res, 502, "the worker failed: " + a.why, "worker_failed");
    m_.retries.fetch_add(1, std::memory_order_relaxed);
    tried.push_back(a.w.get());
  }
}

Gateway::Outcome Gateway::attempt(Attempt& a) {
  const uint64_t t_up = now_ns();
  Worker& w = *a.w;
  UpstreamRequest ur{"POST", a.path, a.req.body, a.cr.stream, a.id};
  auto call = transport_.call(w, ur, t_up + ms(a.cfg.connect_timeout_ms));
  if (!call) {
    a.why = w.cfg.name + ": cannot send the request: " + call.message();
    pool_.report(w, false);
    transport_.forget(w);
    return Outcome::retry;
  }
  const uint64_t first_deadline = t_up + ms(a.cfg.first_token_timeout_ms);
  UpstreamHead h;
  for (;;) {
    auto r = (*call)->head(std::min(first_deadline, now_ns() + kGonePollNs));
    if (r) {
      h = std::move(*r);
      break;
    }
    if (r.error() != ETIMEDOUT) {
      a.why = w.cfg.name + ": no response: " + r.message();
      pool_.report(w, false);
      return Outcome::retry;
    }
    if (a.res.peer_gone()) {
      (*call)->abort();
      return Outcome::client_gone;
    }
    if (now_ns() >= first_deadline) {
      a.why = w.cfg.name + ": no response within first_token_timeout_ms";
      pool_.report(w, false);
      return Outcome::retry;
    }
  }
  if (h.status == 200 && a.cr.stream && h.event_stream) {
    const Outcome o = relay_stream(a, **call);
    if (o == Outcome::done) pool_.record_service(now_ns() - t_up);
    return o;
  }
  return relay_whole(a, **call, h.status, h.content_type);
}

Gateway::Outcome Gateway::relay_whole(Attempt& a, UpstreamCall& call, int status, const std::string& content_type) {
  Worker& w = *a.w;
  const uint64_t deadline = now_ns() + ms(a.cfg.first_token_timeout_ms);
  std::string body;
  for (;;) {
    auto r = call.read_body_to(body, std::min(deadline, now_ns() + kGonePollNs));
    if (r && !*r) break;
    if (r) continue;
    if (r.error() == ETIMEDOUT && now_ns() < deadline) {
      if (!a.res.peer_gone()) continue;
      call.abort();
      return Outcome::client_gone;
    }
    a.why = w.cfg.name + ": response cut short: " + r.message();
    pool_.report(w, false);
    return Outcome::retry;
  }
  // 5xx: the worker is in trouble; 429: it is full. Either way another may answer.
  if (status >= 500 || status == 429 || (status == 200 && a.cr.stream)) {
    a.why = w.cfg.name + (status == 200 ? std::string(": answered a stream request without text/event-stream")
                                        : ": answered " + std::to_string(status));
    if (status != 429) pool_.report(w, false);
    return Outcome::retry;
  }
  pool_.report(w, true);
  m_.by_status[static_cast<size_t>(status)].fetch_add(1, std::memory_order_relaxed);
  if (status == 200) m_.e2e.observe_ns(now_ns() - a.t0);
  const std::string worker_name = w.cfg.name;
  (void)a.res.respond(status, content_type.empty() ? "application/json" : content_type, body,
                      {{"X-Slip-Worker", worker_name}});
  return Outcome::done;
}

Gateway::Outcome Gateway::relay_stream(Attempt& a, UpstreamCall& call) {
  SseRelay relay;
  const Outcome o = relay_events(a, call, relay);
  m_.relayed_bytes.fetch_add(relay.relayed_bytes(), std::memory_order_relaxed);
  m_.relay_copied_bytes.fetch_add(relay.copied_bytes(), std::memory_order_relaxed);
  return o;
}

Gateway::Outcome Gateway::relay_events(Attempt& a, UpstreamCall& call, SseRelay& relay) {
  Worker& w = *a.w;
  SseClassifier classify;
  bool first = false, done = false;
  uint64_t last_token = 0;
  const uint64_t first_deadline = a.t0 + ms(a.cfg.first_token_timeout_ms);
  // The head waits for the first token (until then another worker may
  // still answer) and then goes out in the same write as that token.
  auto send = [&](std::string_view data) {
    if (a.stream_started) return bool(a.res.send_chunk(data));
    a.stream_started = true;
    return bool(a.res.start_stream(200, "text/event-stream",
                                   {{"Cache-Control", "no-cache"}, {"X-Slip-Worker", std::string_view(w.cfg.name)}},
                                   data));
  };
  for (;;) {
    const uint64_t deadline = first ? last_token + ms(a.cfg.token_timeout_ms) : first_deadline;
    auto r = call.read_body(relay, std::min(deadline, now_ns() + kGonePollNs));
    if (!r && r.error() == ETIMEDOUT && now_ns() < deadline) {
      if (!a.res.peer_gone()) continue;
      call.abort();
      return Outcome::client_gone;
    }
    const bool ended = !r || !*r;
    // Classify the whole events that arrived; pass them on together, now.
    while (const auto ev = relay.next_event()) {
      const EventKind k = classify.classify(*ev);
      if (!first) {
        if (k == EventKind::error) {
          // The worker gave up before any output: as good as a failed connection.
          a.why = w.cfg.name + ": error event before the first token";
          call.abort();
          pool_.report(w, false);
          return Outcome::retry;
        }
        if (k != EventKind::token && k != EventKind::done) continue;  // held in the relay until the first token
        first = true;
        last_token = now_ns();
        m_.ttft.observe_ns(last_token - a.t0);
        pool_.record_ttft(last_token - a.t0);
      } else if (k == EventKind::token) {
        const uint64_t now = now_ns();
        m_.itl.observe_ns(now - last_token);
        last_token = now;
      }
      if (k == EventKind::token) m_.tokens.fetch_add(1, std::memory_order_relaxed);
      done |= k == EventKind::done;
    }
    if (first && !relay.ready().empty()) {
      if (!send(relay.ready())) {
        call.abort();
        return Outcome::client_gone;
      }
      relay.sent();
    }
    if (!ended) continue;
    if (done) {
      (void)a.res.end_stream();
      pool_.report(w, true);
      m_.by_status[200].fetch_add(1, std::memory_order_relaxed);
      m_.e2e.observe_ns(now_ns() - a.t0);
      return Outcome::done;
    }
    a.why = w.cfg.name + (r ? std::string(": the stream ended without [DONE]")
                            : (r.error() == ETIMEDOUT ? std::string(": no token within the timeout")
                                                      : ": stream broken: " + r.message()));
    call.abort();
    pool_.report(w, false);
    if (!first) return Outcome::retry;
    // After the first token the client has part of an answer: end it cleanly.
    m_.mid_stream_errors.fetch_add(1, std::memory_order_relaxed);
    m_.by_status[502].fetch_add(1, std::memory_order_relaxed);
    const std::string tail = "data: " + http::openai_error_body(a.why, "server_error", {}, "worker_failed") +
                             "\n\ndata: [DONE]\n\n";
    if (a.res.send_chunk(tail)) (void)a.res.end_stream();
    return Outcome::failed;
  }
}

void Gateway::health(http::Responder& res) {
  size_t healthy = 0, total = 0;
  for (const auto& w : pool_.workers()) {
    total++;
    healthy += w->healthy_now.load(std::memory_order_relaxed);
  }
  nlohmann::ordered_json j{{"status", healthy ? "ok" : "no healthy worker"}, {"workers", total},
                           {"healthy_workers", healthy}};
  (void)res.respond(healthy ? 200 : 503, "application/json", j.dump());
}

void Gateway::models(http::Responder& res) {
  nlohmann::ordered_json data = nlohmann::ordered_json::array();
  for (const auto& m : pool_.models())
    data.push_back({{"id", m}, {"object", "model"}, {"created", created_}, {"owned_by", "slip-gateway"}});
  (void)res.respond(200, "application/json", nlohmann::ordered_json{{"object", "list"}, {"data", data}}.dump());
}

void Gateway::metrics(http::Responder& res) {
  std::string out;
  m_.ttft.render(out, "slip_gateway:time_to_first_token_seconds", "Arrival at the gateway to the first token sent.");
  m_.itl.render(out, "slip_gateway:inter_token_latency_seconds", "Time between tokens as the gateway relays them.");
  m_.e2e.render(out, "slip_gateway:e2e_request_latency_seconds", "Arrival to the last byte of a successful answer.");
  m_.queue.render(out, "slip_gateway:request_queue_time_seconds", "Arrival to a slot on a worker.");
  out += "# HELP slip_gateway:requests_total Completion requests answered, by HTTP status.\n"
         "# TYPE slip_gateway:requests_total counter\n";
  for (size_t s = 100; s < m_.by_status.size(); s++)
    if (uint64_t v = m_.by_status[s].load(std::memory_order_relaxed))
      out += fmt::format("slip_gateway:requests_total{{status=\"{}\"}} {}\n", s, v);
  auto counter = [&](const char* name, const char* help, uint64_t v, const char* type = "counter") {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", name, help, type, v);
  };
  const PoolCounters pc = pool_.counters();
  counter("slip_gateway:num_requests_running", "Requests holding a worker slot.", pc.running, "gauge");
  counter("slip_gateway:num_requests_waiting", "Requests queued for a slot.", pc.waiting, "gauge");
  counter("slip_gateway:client_disconnects_total", "Requests whose client left before the end.",
          m_.client_disconnects.load());
  counter("slip_gateway:upstream_retries_total", "Requests retried on another worker before the first token.",
          m_.retries.load());
  counter("slip_gateway:upstream_failures_total", "Attempts that failed at a worker.", m_.upstream_failures.load());
  counter("slip_gateway:mid_stream_errors_total", "Streams ended with an error event after the first token.",
          m_.mid_stream_errors.load());
  counter("slip_gateway:generation_tokens_total", "Token events relayed.", m_.tokens.load());
  counter("slip_gateway:relay_bytes_total", "Bytes of event streams relayed to clients.", m_.relayed_bytes.load());
  counter("slip_gateway:relay_copied_bytes_total",
          "Bytes of relayed streams copied into the gateway's buffers on the way (1 per relayed byte, more for "
          "events a read cut).",
          m_.relay_copied_bytes.load());
  out += "# HELP slip_gateway:rejected_total Requests refused by admission, by reason.\n"
         "# TYPE slip_gateway:rejected_total counter\n";
  out += fmt::format("slip_gateway:rejected_total{{reason=\"queue_full\"}} {}\n", pc.rejected_queue_full);
  out += fmt::format("slip_gateway:rejected_total{{reason=\"ttft_slo\"}} {}\n", pc.rejected_slo);
  out += fmt::format("slip_gateway:rejected_total{{reason=\"queue_timeout\"}} {}\n", pc.rejected_timeout);
  out += fmt::format("slip_gateway:rejected_total{{reason=\"no_healthy_worker\"}} {}\n", pc.rejected_unhealthy);
  const auto workers = pool_.workers();
  auto per_worker = [&](const char* name, const char* type, const char* help, auto get) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} {2}\n", name, help, type);
    for (const auto& w : workers) out += fmt::format("{}{{worker=\"{}\"}} {}\n", name, w->cfg.name, get(*w));
  };
  per_worker("slip_gateway:worker_requests_running", "gauge", "Requests in flight at each worker.",
             [](const Worker& w) { return w.outstanding_now.load(); });
  per_worker("slip_gateway:worker_requests_total", "counter", "Requests sent to each worker.",
             [](const Worker& w) { return w.requests.load(); });
  per_worker("slip_gateway:worker_failures_total", "counter", "Failed probes and requests at each worker.",
             [](const Worker& w) { return w.failed.load(); });
  per_worker("slip_gateway:worker_ejections_total", "counter", "Times each worker was ejected.",
             [](const Worker& w) { return w.ejections.load(); });
  per_worker("slip_gateway:worker_healthy", "gauge", "1 while a worker takes requests.",
             [](const Worker& w) { return w.healthy_now.load() ? 1 : 0; });
  app::render_sched_metrics(out, "slip_gateway:");
  (void)res.respond(200, "text/plain; version=0.0.4", out);
}

}  // namespace slip::gateway
