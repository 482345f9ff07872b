// slip-gateway's configuration: a TOML file (reloaded on SIGHUP) and the
// command line. Every error names the file, the table and the key.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "slip/net/addr.h"

namespace slip::gateway {

enum class Policy { round_robin, least_requests, least_tokens, p2c, prefix_aware };
std::optional<Policy> parse_policy(std::string_view s);
const char* policy_name(Policy p);

struct WorkerConfig {
  std::string name;  // default "ip:port"
  net::Ipv4Addr ip;
  uint16_t port = 0;
  std::vector<std::string> models;  // empty: serves any model name
  uint32_t max_concurrency = 256;   // requests in flight at this worker; more wait in the gateway's queue
  std::string api_key;              // sent upstream as Authorization: Bearer, if set
};

// SGLang's cache-aware routing knobs, same meaning.
struct PrefixConfig {
  uint32_t balance_abs = 32;       // imbalanced when max - min outstanding exceeds this...
  double balance_rel = 1.5;        // ...and max exceeds min times this: then least-loaded wins
  double cache_threshold = 0.5;    // matched fraction of the prompt that makes a worker "hit"
  uint64_t tree_chars = 4u << 20;  // prompt bytes remembered per worker (LRU beyond)
};

struct GatewayConfig {
  // [server]
  uint16_t port = 8080;
  uint64_t max_body = 4u << 20;
  std::vector<std::string> api_keys;  // empty: no authentication
  uint64_t request_timeout_ms = 10'000, idle_timeout_ms = 60'000;
  uint32_t max_connections = 10'000;
  // [routing]
  Policy policy = Policy::least_requests;
  PrefixConfig prefix;
  // [admission]
  uint32_t max_concurrency = 4096;  // requests in flight to all workers
  uint32_t queue_size = 1024;       // requests waiting for a slot; more: 429
  uint64_t queue_timeout_ms = 30'000;
  uint64_t ttft_slo_ms = 0;         // > 0: refuse (429) a request whose predicted TTFT exceeds it
  // [health]
  uint64_t health_interval_ms = 1000, health_timeout_ms = 1000;
  uint32_t eject_after = 2;  // consecutive failures (probes or requests) that eject a worker
  uint64_t backoff_min_ms = 500, backoff_max_ms = 30'000;
  // [upstream]
  uint64_t connect_timeout_ms = 1000;
  uint64_t first_token_timeout_ms = 600'000, token_timeout_ms = 60'000;
  uint32_t max_retries = 2;         // other workers tried when one fails before the first token
  uint32_t idle_conns = 64;         // kept-alive connections per worker
  uint64_t idle_conn_ms = 4000;     // below uvicorn's 5 s keep-alive, so vLLM never closes one under us
  uint64_t max_response = 64u << 20;
  std::vector<WorkerConfig> workers;
};

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Throws ConfigError. `source` names the text in messages (the file path).
GatewayConfig parse_config(std::string_view toml_text, const std::string& source);
GatewayConfig load_config(const std::string& path);
// "http://198.18.0.2:8000" (an IPv4 literal or localhost; no path). Throws ConfigError.
WorkerConfig parse_worker_url(std::string_view url);

}  // namespace slip::gateway
