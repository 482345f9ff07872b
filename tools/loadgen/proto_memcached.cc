// memcached's text and binary protocols as load: get/set of fixed-width keys
// drawn uniformly, pipelined on a TCP connection. The bytes on the wire are
// slip/proto/memcached.h's; this file picks the requests and turns each
// response into an outcome. Responses are self-describing, so the parsers
// keep no per-request state.
#include <algorithm>
#include <cstring>
#include <random>
#include <string_view>

#include "protocol.h"
#include "slip/proto/memcached.h"

namespace slip::loadgen {
namespace {

namespace mc = proto::memcached;

// The request mix of one connection: which key, get or set, and the bytes of
// keys and values. Keys are "key:" and a zero-padded number, all one width.
class Workload {
 public:
  Workload(const ProtocolConfig& cfg, uint32_t conn)
      : keys_(std::max<uint64_t>(cfg.keys, 1)),
        get_ratio_(cfg.get_ratio),
        preload_(cfg.preload),
        rng_(mix(cfg.seed, conn)) {
    uint32_t digits = 1;
    for (uint64_t k = keys_ - 1; k >= 10; k /= 10) digits++;
    key_len_ = std::clamp<uint32_t>(cfg.key_size, 4 + digits, mc::kMaxKey);
    value_.resize(cfg.value_size);
    for (size_t i = 0; i < value_.size(); i++) value_[i] = static_cast<char>('a' + i % 26);
  }

  struct Op {
    bool get;
    uint64_t key;
  };
  Op next() {
    // Lemire's multiply-shift: uniform enough and the same on every library.
    const uint64_t key = static_cast<uint64_t>((static_cast<unsigned __int128>(rng_()) * keys_) >> 64);
    const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
    return {u < get_ratio_, key};
  }

  // Key k: "key:" and k zero-padded to the key width, in a buffer reused per call.
  std::string_view key(uint64_t k) {
    key_.assign(key_len_, '0');
    std::memcpy(key_.data(), "key:", 4);
    for (size_t i = key_len_; k != 0 && i > 4; k /= 10) key_[--i] = static_cast<char>('0' + k % 10);
    return key_;
  }

  uint64_t keys() const { return keys_; }
  bool preload() const { return preload_; }
  const std::string& value() const { return value_; }
  // Largest item a response may carry: what we store, or anything memcached would.
  uint64_t max_item() const { return mc::kDefaultMaxItem + value_.size(); }

 private:
  static uint64_t mix(uint64_t seed, uint32_t conn) {
    uint64_t z = seed * 0x9e3779b97f4a7c15ull + conn + 1;  // splitmix64 finaliser
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

  uint64_t keys_;
  double get_ratio_;
  bool preload_;
  uint32_t key_len_ = 0;
  std::string value_, key_;
  std::mt19937_64 rng_;
};

// The text protocol: `get <key>` and `set <key> 0 0 <n>`.
class Text final : public ClientProtocol {
 public:
  Text(const ProtocolConfig& cfg, uint32_t conn) : w_(cfg, conn) {}

  void build_request(uint64_t, std::string& out) override {
    const Workload::Op op = w_.next();
    op.get ? mc::append_text_get(out, w_.key(op.key)) : append_set(op.key, out);
  }
  uint64_t preload_count() const override { return w_.preload() ? w_.keys() : 0; }
  void build_preload(uint64_t i, std::string& out) override { append_set(i % w_.keys(), out); }

  Result<size_t> parse(const uint8_t* p, size_t n, uint64_t now, ResponseSink& sink) override {
    const std::string_view in(reinterpret_cast<const char*>(p), n);
    size_t used = 0;
    while (used < n) {
      auto r = mc::parse_text_reply(in.substr(used), w_.max_item());
      if (!r) return err(r.error());
      if (r->len == 0) break;
      sink.complete(0, outcome(r->kind), now);
      used += r->len;
    }
    return used;
  }

 private:
  void append_set(uint64_t key, std::string& out) { mc::append_text_set(out, w_.key(key), 0, 0, w_.value()); }

  static Outcome outcome(mc::TextReply::Kind k) {
    switch (k) {
      case mc::TextReply::Kind::stored:
      case mc::TextReply::Kind::value: return Outcome::ok;
      case mc::TextReply::Kind::miss: return Outcome::miss;
      default: return Outcome::error;
    }
  }

  Workload w_;
};

// The binary protocol; the opaque field carries the request id.
class Binary final : public ClientProtocol {
 public:
  Binary(const ProtocolConfig& cfg, uint32_t conn) : w_(cfg, conn) {}

  void build_request(uint64_t id, std::string& out) override {
    const Workload::Op op = w_.next();
    op.get ? mc::append_binary_get(out, w_.key(op.key), opaque(id)) : append_set(id, op.key, out);
  }
  uint64_t preload_count() const override { return w_.preload() ? w_.keys() : 0; }
  void build_preload(uint64_t i, std::string& out) override { append_set(i, i % w_.keys(), out); }

  Result<size_t> parse(const uint8_t* p, size_t n, uint64_t now, ResponseSink& sink) override {
    size_t used = 0;
    while (used < n) {
      auto r = mc::parse_binary_reply(p + used, n - used, max_body());
      if (!r) return err(r.error());
      if (r->opcode != mc::kOpGet && r->opcode != mc::kOpSet) return err(EBADMSG);  // not what we asked
      if (r->len == 0) break;
      Outcome o = Outcome::error;
      if (r->status == mc::kStatusOk) o = Outcome::ok;
      if (r->status == mc::kStatusKeyNotFound && r->opcode == mc::kOpGet) o = Outcome::miss;
      sink.complete(r->opaque, o, now);
      used += r->len;
    }
    return used;
  }

 private:
  static uint32_t opaque(uint64_t id) { return static_cast<uint32_t>(id); }
  uint64_t max_body() const { return w_.max_item() + mc::kMaxKey + 8; }
  void append_set(uint64_t id, uint64_t key, std::string& out) {
    mc::append_binary_set(out, w_.key(key), 0, 0, w_.value(), opaque(id));
  }

  Workload w_;
};

}  // namespace

std::unique_ptr<ClientProtocol> make_memcached_text(const ProtocolConfig& cfg, uint32_t conn) {
  return std::make_unique<Text>(cfg, conn);
}
std::unique_ptr<ClientProtocol> make_memcached_binary(const ProtocolConfig& cfg, uint32_t conn) {
  return std::make_unique<Binary>(cfg, conn);
}

}  // namespace slip::loadgen
