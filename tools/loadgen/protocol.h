// slip-loadgen's protocols: each builds requests and parses responses for one
// connection. The engine (engine.cc) owns timing, connections and statistics;
// a protocol only says when a response ended, and for streaming protocols
// when each token arrived.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "slip/common/dist.h"
#include "slip/common/result.h"

namespace slip::loadgen {

enum class Transport { udp, tcp };

// How one response ended. `miss` is a well-formed answer without the item
// (memcached get miss); `error` a well-formed error answer (HTTP 5xx,
// SERVER_ERROR, an SSE error event). Malformed bytes are a parse error instead.
enum class Outcome { ok, miss, error };

class ResponseSink {
 public:
  // A response ended at now_ns. Stream transports: it answers the oldest
  // outstanding request (id is ignored). Datagram transports: it answers the
  // request with this id.
  virtual void complete(uint64_t id, Outcome outcome, uint64_t now_ns) noexcept = 0;
  // Streaming protocols: one token (SSE content event) of the oldest
  // outstanding response arrived at now_ns.
  virtual void token(uint64_t now_ns) noexcept = 0;

 protected:
  ~ResponseSink() = default;
};

// Everything any protocol can be configured with (one struct, so main.cc owns the flags).
struct ProtocolConfig {
  std::string name;
  uint32_t req_size = 32;               // synthetic/echo: request bytes
  std::optional<Distribution> work;     // synthetic: service time to ask for (unset: the server chooses)
  uint64_t seed = 1;
  // memcached
  uint64_t keys = 10000;                // key space, uniform
  uint32_t key_size = 16;               // bytes per key
  uint32_t value_size = 64;
  double get_ratio = 0.9;               // the rest are sets
  bool preload = true;                  // set every key before the run
  // http / sse
  std::string host = "localhost";       // Host header
  std::string path = "/";               // http: GET path
  std::string endpoint = "chat";        // sse: chat (/v1/chat/completions) or completions (/v1/completions)
  std::string model = "slip-sim";
  uint32_t prompt_tokens = 128;         // sse: prompt length in words (after any shared prefix)
  uint32_t shared_prefix = 0;           // sse: words of a prefix shared by every prompt of a group
  uint32_t prefix_groups = 1;           // sse: groups (a system prompt each); a request picks one at random
  uint32_t max_tokens = 64;
  std::string api_key;                  // sse: Authorization: Bearer, when set
};

// One protocol's client side, one instance per connection (it may keep parse state).
class ClientProtocol {
 public:
  virtual ~ClientProtocol() = default;
  // Appends request number id (unique per connection, increasing) to out.
  virtual void build_request(uint64_t id, std::string& out) = 0;
  // Stream transports: consumes whole responses (or, for streaming ones, whole
  // events) from the front of [p, p + n), calling sink for each, and returns
  // the bytes consumed; the caller keeps the rest and calls again when more
  // arrived. Datagram transports: [p, p + n) is one datagram. An error means
  // the bytes are malformed: the engine counts it and closes the connection.
  virtual Result<size_t> parse(const uint8_t* p, size_t n, uint64_t now_ns, ResponseSink& sink) = 0;
  // Requests sent before the run, one at a time, to fill the server (memcached
  // sets of every key); their responses go through parse() and are not measured.
  virtual uint64_t preload_count() const { return 0; }
  virtual void build_preload(uint64_t /*i*/, std::string& /*out*/) {}
};

struct ProtocolInfo {
  std::string_view name;
  Transport transport;
  bool streaming;  // calls token()
  std::string_view help;
  std::unique_ptr<ClientProtocol> (*make)(const ProtocolConfig& cfg, uint32_t conn_index);
};

// Every protocol, for --proto and --help.
const std::vector<ProtocolInfo>& protocols();
const ProtocolInfo* find_protocol(std::string_view name);

// The head of an HTTP/1.1 request from slip-loadgen (request line, Host,
// User-Agent), for the http and sse protocols. Setup: throws
// std::invalid_argument naming --path or --host when target or host would
// break the framing.
std::string loadgen_request_head(std::string_view method, std::string_view target, std::string_view host);

// Factories, one per file.
std::unique_ptr<ClientProtocol> make_synthetic(const ProtocolConfig& cfg, uint32_t conn_index);
std::unique_ptr<ClientProtocol> make_echo(const ProtocolConfig& cfg, uint32_t conn_index);
std::unique_ptr<ClientProtocol> make_memcached_text(const ProtocolConfig& cfg, uint32_t conn_index);
std::unique_ptr<ClientProtocol> make_memcached_binary(const ProtocolConfig& cfg, uint32_t conn_index);
std::unique_ptr<ClientProtocol> make_http(const ProtocolConfig& cfg, uint32_t conn_index);
std::unique_ptr<ClientProtocol> make_sse(const ProtocolConfig& cfg, uint32_t conn_index);

}  // namespace slip::loadgen
