// The synthetic service's protocol (slip/proto/synthetic.h) and plain echo, over UDP or TCP.
#include <algorithm>
#include <cstring>
#include <random>

#include "protocol.h"
#include "slip/proto/synthetic.h"

namespace slip::loadgen {
namespace {

namespace synthetic = proto::synthetic;

// Synthetic: a header (plus padding to --req-size) per request; the response
// is a bare header. Over UDP the echoed id says which request it answers.
class Synthetic final : public ClientProtocol {
 public:
  Synthetic(const ProtocolConfig& cfg, uint32_t conn)
      : size_(std::max<uint32_t>(cfg.req_size, sizeof(synthetic::Header))), work_(cfg.work), rng_(cfg.seed * 7919 + conn) {}

  void build_request(uint64_t id, std::string& out) override {
    synthetic::Header h{};
    h.magic = synthetic::kMagic;
    h.len = size_;
    h.id = id;
    h.work_ns = work_ ? static_cast<uint64_t>(work_->sample(rng_)) : synthetic::kServerChooses;
    const size_t at = out.size();
    out.resize(at + size_, '\0');
    std::memcpy(out.data() + at, &h, sizeof h);
  }

  Result<size_t> parse(const uint8_t* p, size_t n, uint64_t now, ResponseSink& sink) override {
    size_t used = 0;
    while (n - used >= sizeof(synthetic::Header)) {
      synthetic::Header h;
      if (!synthetic::parse_header(p + used, n - used, h)) return err(EBADMSG);
      if (n - used < h.len) break;
      sink.complete(h.id, Outcome::ok, now);
      used += h.len;
    }
    return used;
  }

 private:
  uint32_t size_;
  std::optional<Distribution> work_;
  std::mt19937_64 rng_;
};

// Echo: --req-size bytes carrying the id in their first 8; the same bytes come back.
class Echo final : public ClientProtocol {
 public:
  explicit Echo(const ProtocolConfig& cfg) : size_(std::max<uint32_t>(cfg.req_size, 8)) {}

  void build_request(uint64_t id, std::string& out) override {
    const size_t at = out.size();
    out.resize(at + size_, 'x');
    std::memcpy(out.data() + at, &id, sizeof id);
  }

  Result<size_t> parse(const uint8_t* p, size_t n, uint64_t now, ResponseSink& sink) override {
    size_t used = 0;
    while (n - used >= size_) {
      uint64_t id;
      std::memcpy(&id, p + used, sizeof id);
      sink.complete(id, Outcome::ok, now);
      used += size_;
    }
    return used;
  }

 private:
  uint32_t size_;
};

}  // namespace

std::unique_ptr<ClientProtocol> make_synthetic(const ProtocolConfig& cfg, uint32_t conn) {
  return std::make_unique<Synthetic>(cfg, conn);
}
std::unique_ptr<ClientProtocol> make_echo(const ProtocolConfig& cfg, uint32_t) { return std::make_unique<Echo>(cfg); }

}  // namespace slip::loadgen
