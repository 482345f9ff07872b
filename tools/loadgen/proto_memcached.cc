// memcached's text and binary protocols: get/set of fixed-width keys drawn
// uniformly, pipelined on a TCP connection. Responses are self-describing, so
// the parsers keep no per-request state and check every byte they consume.
#include <algorithm>
#include <charconv>
#include <cstring>
#include <random>
#include <string_view>

#include "protocol.h"

namespace slip::loadgen {
namespace {

constexpr uint32_t kMaxKey = 250;             // memcached's key length limit
constexpr size_t kMaxLine = 2048;             // a text response line, \r\n included
constexpr uint64_t kMaxItem = uint64_t{1} << 20;  // memcached's default item size limit

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
    key_len_ = std::clamp<uint32_t>(cfg.key_size, 4 + digits, kMaxKey);
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

  void append_key(uint64_t k, std::string& out) const {
    const size_t at = out.size();
    out.resize(at + key_len_, '0');
    std::memcpy(out.data() + at, "key:", 4);
    for (size_t i = at + key_len_; k != 0 && i > at + 4; k /= 10) out[--i] = static_cast<char>('0' + k % 10);
  }

  uint32_t key_len() const { return key_len_; }
  uint64_t keys() const { return keys_; }
  bool preload() const { return preload_; }
  const std::string& value() const { return value_; }
  // Largest item a response may carry: what we store, or anything memcached would.
  uint64_t max_item() const { return kMaxItem + value_.size(); }

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
  std::string value_;
  std::mt19937_64 rng_;
};

// One parsed response: its length in bytes (0: incomplete) and how it ended.
struct Frame {
  size_t len = 0;
  Outcome outcome = Outcome::ok;
};

// A decimal number with nothing else, no larger than max.
bool parse_u64(std::string_view s, uint64_t max, uint64_t& v) {
  if (s.empty() || s.size() > 20) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc{} && end == s.data() + s.size() && v <= max;
}

// Cuts the token before the next space (or the end) off the front of s.
std::string_view take_token(std::string_view& s) {
  const size_t sp = s.find(' ');
  std::string_view t = s.substr(0, sp);
  s = sp == std::string_view::npos ? std::string_view{} : s.substr(sp + 1);
  return t;
}

bool valid_key(std::string_view k) {
  if (k.empty() || k.size() > kMaxKey) return false;
  return std::none_of(k.begin(), k.end(), [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; });
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// The text protocol: `get <key>` and `set <key> 0 0 <n>`.
class Text final : public ClientProtocol {
 public:
  Text(const ProtocolConfig& cfg, uint32_t conn) : w_(cfg, conn) {
    set_tail_ = " 0 0 " + std::to_string(w_.value().size()) + "\r\n";
  }

  void build_request(uint64_t, std::string& out) override {
    const Workload::Op op = w_.next();
    op.get ? append_get(op.key, out) : append_set(op.key, out);
  }
  uint64_t preload_count() const override { return w_.preload() ? w_.keys() : 0; }
  void build_preload(uint64_t i, std::string& out) override { append_set(i % w_.keys(), out); }

  Result<size_t> parse(const uint8_t* p, size_t n, uint64_t now, ResponseSink& sink) override {
    size_t used = 0;
    while (used < n) {
      Result<Frame> f = frame(reinterpret_cast<const char*>(p) + used, n - used);
      if (!f) return err(f.error());
      if (f->len == 0) break;
      sink.complete(0, f->outcome, now);
      used += f->len;
    }
    return used;
  }

 private:
  void append_get(uint64_t key, std::string& out) const {
    out += "get ";
    w_.append_key(key, out);
    out += "\r\n";
  }
  void append_set(uint64_t key, std::string& out) const {
    out += "set ";
    w_.append_key(key, out);
    out += set_tail_;
    out += w_.value();
    out += "\r\n";
  }

  // One response from the front of [s, s + n).
  Result<Frame> frame(const char* s, size_t n) const {
    const size_t scan = std::min(n, kMaxLine);
    const auto* nl = static_cast<const char*>(std::memchr(s, '\n', scan));
    if (nl == nullptr) return n >= kMaxLine ? Result<Frame>(err(EBADMSG)) : Frame{};
    if (nl == s || nl[-1] != '\r') return err(EBADMSG);
    const std::string_view line(s, static_cast<size_t>(nl - s) - 1);
    const size_t line_len = line.size() + 2;
    if (line == "STORED") return Frame{line_len, Outcome::ok};
    if (line == "END") return Frame{line_len, Outcome::miss};
    if (line == "NOT_STORED" || line == "EXISTS" || line == "NOT_FOUND" || line == "ERROR" || line == "SERVER_ERROR" ||
        line == "CLIENT_ERROR" || starts_with(line, "SERVER_ERROR ") || starts_with(line, "CLIENT_ERROR "))
      return Frame{line_len, Outcome::error};
    if (!starts_with(line, "VALUE ")) return err(EBADMSG);
    return value(line, s + line_len, n - line_len);
  }

  // A hit: `VALUE <key> <flags> <bytes> [<cas>]`, the data, \r\n, END\r\n.
  // rest/avail are the bytes after the VALUE line.
  Result<Frame> value(std::string_view line, const char* rest, size_t avail) const {
    std::string_view f = line.substr(6);
    const std::string_view key = take_token(f);
    const std::string_view flags = take_token(f);
    const std::string_view bytes = take_token(f);
    uint64_t v = 0;
    uint64_t len = 0;
    if (!valid_key(key) || !parse_u64(flags, UINT32_MAX, v) || !parse_u64(bytes, w_.max_item(), len))
      return err(EBADMSG);
    if (!f.empty() && !parse_u64(take_token(f), UINT64_MAX, v)) return err(EBADMSG);
    if (!f.empty() || line.back() == ' ') return err(EBADMSG);
    // Check what has arrived of the trailer now, so garbage fails early.
    static constexpr std::string_view kTrailer = "\r\nEND\r\n";
    const size_t len_sz = static_cast<size_t>(len);
    for (size_t i = 0; i < kTrailer.size() && len_sz + i < avail; i++)
      if (rest[len_sz + i] != kTrailer[i]) return err(EBADMSG);
    if (avail < len_sz + kTrailer.size()) return Frame{};
    return Frame{line.size() + 2 + len_sz + kTrailer.size(), Outcome::ok};
  }

  Workload w_;
  std::string set_tail_;
};

// The binary protocol: a 24-byte big-endian header, then extras, key, value.
constexpr uint8_t kMagicRequest = 0x80;
constexpr uint8_t kMagicResponse = 0x81;
constexpr uint8_t kOpGet = 0x00;
constexpr uint8_t kOpSet = 0x01;
constexpr uint16_t kStatusOk = 0x0000;
constexpr uint16_t kStatusNotFound = 0x0001;
constexpr size_t kHeader = 24;

void put_be(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; i--) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t get_be(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v = v << 8 | p[i];
  return v;
}

class Binary final : public ClientProtocol {
 public:
  Binary(const ProtocolConfig& cfg, uint32_t conn) : w_(cfg, conn) {}

  void build_request(uint64_t id, std::string& out) override {
    const Workload::Op op = w_.next();
    op.get ? append_get(id, op.key, out) : append_set(id, op.key, out);
  }
  uint64_t preload_count() const override { return w_.preload() ? w_.keys() : 0; }
  void build_preload(uint64_t i, std::string& out) override { append_set(i, i % w_.keys(), out); }

  Result<size_t> parse(const uint8_t* p, size_t n, uint64_t now, ResponseSink& sink) override {
    size_t used = 0;
    while (used < n) {
      const uint8_t* h = p + used;
      const size_t avail = n - used;
      if (h[0] != kMagicResponse) return err(EBADMSG);
      if (avail < kHeader) break;
      const uint8_t op = h[1];
      const uint64_t key_len = get_be(h + 2, 2);
      const uint8_t extras = h[4];
      const uint16_t status = static_cast<uint16_t>(get_be(h + 6, 2));
      const uint64_t body = get_be(h + 8, 4);
      const uint64_t opaque = get_be(h + 12, 4);
      if ((op != kOpGet && op != kOpSet) || h[5] != 0 || extras + key_len > body || body > max_body())
        return err(EBADMSG);
      if (op == kOpGet && status == kStatusOk && extras != 4) return err(EBADMSG);  // flags must be there
      if (avail - kHeader < body) break;
      Outcome o = Outcome::error;
      if (status == kStatusOk) o = Outcome::ok;
      if (status == kStatusNotFound && op == kOpGet) o = Outcome::miss;
      sink.complete(opaque, o, now);
      used += kHeader + static_cast<size_t>(body);
    }
    return used;
  }

 private:
  uint64_t max_body() const { return w_.max_item() + kMaxKey + 8; }

  void header(std::string& out, uint8_t op, uint8_t extras, uint64_t body, uint64_t id) const {
    out.push_back(static_cast<char>(kMagicRequest));
    out.push_back(static_cast<char>(op));
    put_be(out, w_.key_len(), 2);
    out.push_back(static_cast<char>(extras));
    out.push_back(0);   // data type: raw bytes
    put_be(out, 0, 2);  // vbucket
    put_be(out, body, 4);
    put_be(out, id & 0xffffffffu, 4);  // opaque: the response echoes it
    put_be(out, 0, 8);                 // cas
  }
  void append_get(uint64_t id, uint64_t key, std::string& out) const {
    header(out, kOpGet, 0, w_.key_len(), id);
    w_.append_key(key, out);
  }
  void append_set(uint64_t id, uint64_t key, std::string& out) const {
    header(out, kOpSet, 8, 8 + w_.key_len() + w_.value().size(), id);
    put_be(out, 0, 4);  // flags
    put_be(out, 0, 4);  // expiration: never
    w_.append_key(key, out);
    out += w_.value();
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
