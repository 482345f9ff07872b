// slip-gateway's API: POST /v1/chat/completions and /v1/completions relayed
// to a worker chosen by the Pool, streamed event by event as they arrive;
// GET /v1/models, /health and /metrics answered here.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "config.h"
#include "http_server.h"
#include "metrics.h"
#include "pool.h"
#include "sse.h"
#include "sse_relay.h"
#include "upstream.h"

namespace slip::gateway {

namespace http = app::http;

class Gateway {
 public:
  Gateway(Pool& pool, Transport& t, GatewayMetrics& m, std::shared_ptr<const GatewayConfig> cfg);
  void set_config(std::shared_ptr<const GatewayConfig> c);
  void add_routes(http::Router& r);

 private:
  // How one attempt at one worker ended.
  enum class Outcome {
    done,         // the client has its whole answer (success, or the worker's own 4xx)
    retry,        // the worker failed before anything reached the client: try another
    client_gone,  // the client left; the upstream request was cancelled
    failed,       // the worker failed after the first token: an error event and [DONE] were sent
  };
  struct Attempt;

  std::shared_ptr<const GatewayConfig> config() const;
  bool authorized(const http::Request& req, const GatewayConfig& c) const;
  void completion(const http::Request& req, http::Responder& res, bool chat);
  Outcome attempt(Attempt& a);
  Outcome relay_stream(Attempt& a, UpstreamCall& call);
  Outcome relay_events(Attempt& a, UpstreamCall& call, SseRelay& relay);
  Outcome relay_whole(Attempt& a, UpstreamCall& call, int status, const std::string& content_type);
  void answer(http::Responder& res, int status, const std::string& message, std::string_view code = {},
              uint32_t retry_after_s = 0, std::string_view param = {});
  void health(http::Responder& res);
  void models(http::Responder& res);
  void metrics(http::Responder& res);

  Pool& pool_;
  Transport& transport_;
  GatewayMetrics& m_;
  mutable rt::Mutex cfg_mu_;
  std::shared_ptr<const GatewayConfig> cfg_;
  std::atomic<uint64_t> next_id_{1};
  const int64_t created_;
};

}  // namespace slip::gateway
