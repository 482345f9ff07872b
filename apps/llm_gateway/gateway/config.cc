#include "config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <sstream>

namespace slip::gateway {
namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) { throw ConfigError(where + ": " + what); }

// Unknown keys are errors: a typo must not silently fall back to a default.
void check_keys(const toml::table& t, const std::string& where, std::initializer_list<std::string_view> keys) {
  for (const auto& [k, v] : t) {
    if (std::find(keys.begin(), keys.end(), k.str()) != keys.end()) continue;
    std::string list;
    for (auto key : keys) list += (list.empty() ? "" : ", ") + std::string(key);
    fail(where, "unknown key \"" + std::string(k.str()) + "\" (valid: " + list + ")");
  }
}

template <class T>
void get_uint(const toml::table& t, const std::string& where, std::string_view key, T& out, uint64_t lo = 0,
              uint64_t hi = std::numeric_limits<T>::max()) {
  const toml::node* n = t.get(key);
  if (!n) return;
  auto v = n->value<int64_t>();
  if (!v || *v < 0 || static_cast<uint64_t>(*v) < lo || static_cast<uint64_t>(*v) > hi)
    fail(where + " " + std::string(key), "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
  out = static_cast<T>(*v);
}

void get_double(const toml::table& t, const std::string& where, std::string_view key, double& out, double lo,
                double hi) {
  const toml::node* n = t.get(key);
  if (!n) return;
  auto v = n->value<double>();
  if (!v || *v < lo || *v > hi)
    fail(where + " " + std::string(key), "must be a number from " + std::to_string(lo) + " to " + std::to_string(hi));
  out = *v;
}

std::string get_string(const toml::table& t, const std::string& where, std::string_view key) {
  const toml::node* n = t.get(key);
  if (!n) return {};
  if (!n->is_string()) fail(where + " " + std::string(key), "must be a string");
  return *n->value<std::string>();
}

std::vector<std::string> get_strings(const toml::table& t, const std::string& where, std::string_view key) {
  std::vector<std::string> out;
  const toml::node* n = t.get(key);
  if (!n) return out;
  const toml::array* a = n->as_array();
  if (!a) fail(where + " " + std::string(key), "must be an array of strings");
  for (const auto& e : *a) {
    if (!e.is_string() || e.value<std::string>()->empty())
      fail(where + " " + std::string(key), "must be an array of non-empty strings");
    out.push_back(*e.value<std::string>());
  }
  return out;
}

const toml::table* table(const toml::table& root, const std::string& source, std::string_view name) {
  const toml::node* n = root.get(name);
  if (!n) return nullptr;
  if (!n->is_table()) fail(source + ": [" + std::string(name) + "]", "must be a table");
  return n->as_table();
}

WorkerConfig parse_worker(const toml::table& t, const std::string& where) {
  check_keys(t, where, {"url", "name", "models", "max_concurrency", "api_key"});
  const std::string url = get_string(t, where, "url");
  if (url.empty()) fail(where, "needs url = \"http://IP:PORT\"");
  WorkerConfig w;
  try {
    w = parse_worker_url(url);
  } catch (const ConfigError& e) {
    fail(where + " url", e.what());
  }
  if (auto name = get_string(t, where, "name"); !name.empty()) w.name = name;
  w.models = get_strings(t, where, "models");
  get_uint(t, where, "max_concurrency", w.max_concurrency, 1, 1u << 20);
  w.api_key = get_string(t, where, "api_key");
  return w;
}

}  // namespace

std::optional<Policy> parse_policy(std::string_view s) {
  if (s == "round_robin") return Policy::round_robin;
  if (s == "least_requests") return Policy::least_requests;
  if (s == "least_tokens") return Policy::least_tokens;
  if (s == "p2c") return Policy::p2c;
  if (s == "prefix_aware") return Policy::prefix_aware;
  return std::nullopt;
}

const char* policy_name(Policy p) {
  switch (p) {
    case Policy::round_robin: return "round_robin";
    case Policy::least_requests: return "least_requests";
    case Policy::least_tokens: return "least_tokens";
    case Policy::p2c: return "p2c";
    case Policy::prefix_aware: return "prefix_aware";
  }
  return "?";
}

WorkerConfig parse_worker_url(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme)
    throw ConfigError("\"" + std::string(url) + "\" must start with http:// (https is not supported upstream)");
  std::string_view rest = url.substr(kScheme.size());
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || rest.find('/') != std::string_view::npos)
    throw ConfigError("\"" + std::string(url) + "\" must be http://IPV4:PORT with no path");
  std::string host(rest.substr(0, colon));
  if (host == "localhost") host = "127.0.0.1";
  auto ip = net::Ipv4Addr::parse(host);
  if (!ip) throw ConfigError("\"" + host + "\" is not an IPv4 address (the gateway does not resolve names)");
  unsigned port = 0;
  const std::string_view ps = rest.substr(colon + 1);
  auto [p, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), port);
  if (ec != std::errc() || p != ps.data() + ps.size() || port == 0 || port > 65535)
    throw ConfigError("\"" + std::string(ps) + "\" is not a port (1-65535)");
  WorkerConfig w;
  w.ip = *ip;
  w.port = static_cast<uint16_t>(port);
  w.name = host + ":" + std::to_string(port);
  return w;
}

GatewayConfig parse_config(std::string_view text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream m;
    m << source << ":" << e.source().begin.line << ":" << e.source().begin.column << ": " << e.description();
    throw ConfigError(m.str());
  }
  check_keys(root, source, {"server", "routing", "admission", "health", "upstream", "worker"});
  GatewayConfig c;
  if (auto* t = table(root, source, "server")) {
    const std::string w = source + ": [server]";
    check_keys(*t, w, {"port", "max_body", "api_keys", "request_timeout_ms", "idle_timeout_ms", "max_connections"});
    get_uint(*t, w, "port", c.port, 0, 65535);
    get_uint(*t, w, "max_body", c.max_body, 1, uint64_t{1} << 30);
    c.api_keys = get_strings(*t, w, "api_keys");
    get_uint(*t, w, "request_timeout_ms", c.request_timeout_ms, 1);
    get_uint(*t, w, "idle_timeout_ms", c.idle_timeout_ms, 1);
    get_uint(*t, w, "max_connections", c.max_connections, 1, 1u << 20);
  }
  if (auto* t = table(root, source, "routing")) {
    const std::string w = source + ": [routing]";
    check_keys(*t, w, {"policy", "balance_abs", "balance_rel", "cache_threshold", "tree_chars"});
    if (auto s = get_string(*t, w, "policy"); !s.empty()) {
      auto p = parse_policy(s);
      if (!p) fail(w + " policy", "\"" + s + "\" is not one of round_robin, least_requests, least_tokens, p2c, prefix_aware");
      c.policy = *p;
    }
    get_uint(*t, w, "balance_abs", c.prefix.balance_abs);
    get_double(*t, w, "balance_rel", c.prefix.balance_rel, 1.0, 1e6);
    get_double(*t, w, "cache_threshold", c.prefix.cache_threshold, 0.0, 1.0);
    get_uint(*t, w, "tree_chars", c.prefix.tree_chars, 1024, uint64_t{1} << 34);
  }
  if (auto* t = table(root, source, "admission")) {
    const std::string w = source + ": [admission]";
    check_keys(*t, w, {"max_concurrency", "queue_size", "queue_timeout_ms", "ttft_slo_ms"});
    get_uint(*t, w, "max_concurrency", c.max_concurrency, 1, 1u << 24);
    get_uint(*t, w, "queue_size", c.queue_size, 0, 1u << 24);
    get_uint(*t, w, "queue_timeout_ms", c.queue_timeout_ms, 1);
    get_uint(*t, w, "ttft_slo_ms", c.ttft_slo_ms);
  }
  if (auto* t = table(root, source, "health")) {
    const std::string w = source + ": [health]";
    check_keys(*t, w, {"interval_ms", "timeout_ms", "eject_after", "backoff_min_ms", "backoff_max_ms"});
    get_uint(*t, w, "interval_ms", c.health_interval_ms, 10);
    get_uint(*t, w, "timeout_ms", c.health_timeout_ms, 1);
    get_uint(*t, w, "eject_after", c.eject_after, 1, 1000);
    get_uint(*t, w, "backoff_min_ms", c.backoff_min_ms, 1);
    get_uint(*t, w, "backoff_max_ms", c.backoff_max_ms, 1);
    if (c.backoff_max_ms < c.backoff_min_ms) fail(w, "backoff_max_ms must be at least backoff_min_ms");
  }
  if (auto* t = table(root, source, "upstream")) {
    const std::string w = source + ": [upstream]";
    check_keys(*t, w, {"connect_timeout_ms", "first_token_timeout_ms", "token_timeout_ms", "max_retries",
                       "idle_conns", "idle_conn_ms", "max_response"});
    get_uint(*t, w, "connect_timeout_ms", c.connect_timeout_ms, 1);
    get_uint(*t, w, "first_token_timeout_ms", c.first_token_timeout_ms, 1);
    get_uint(*t, w, "token_timeout_ms", c.token_timeout_ms, 1);
    get_uint(*t, w, "max_retries", c.max_retries, 0, 16);
    get_uint(*t, w, "idle_conns", c.idle_conns, 0, 1u << 16);
    get_uint(*t, w, "idle_conn_ms", c.idle_conn_ms, 1);
    get_uint(*t, w, "max_response", c.max_response, 1024, uint64_t{1} << 32);
  }
  if (const toml::node* n = root.get("worker")) {
    const toml::array* a = n->as_array();
    if (!a) fail(source + ": worker", "must be an array of tables: [[worker]]");
    for (size_t i = 0; i < a->size(); i++) {
      const std::string w = source + ": [[worker]] #" + std::to_string(i + 1);
      const toml::table* t = (*a)[i].as_table();
      if (!t) fail(w, "must be a table");
      c.workers.push_back(parse_worker(*t, w));
      for (size_t j = 0; j + 1 < c.workers.size(); j++)
        if (c.workers[j].name == c.workers.back().name)
          fail(w, "name \"" + c.workers.back().name + "\" is used twice (give each worker its own name)");
    }
  }
  return c;
}

GatewayConfig load_config(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw ConfigError(path + ": cannot open the config file");
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_config(ss.str(), path);
}

}  // namespace slip::gateway
