// slip-loadgen's memcached text and binary protocols: exact request bytes,
// outcomes of responses framed across any split, parse errors, the get/set
// mix, and preload covering the key space. The wire code's own checks are
// tested in tests/proto.
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "protocol.h"

using namespace slip::loadgen;
using namespace std::string_literals;

namespace {

struct Done {
  uint64_t id;
  Outcome outcome;
};

struct Recorder final : ResponseSink {
  std::vector<Done> done;
  void complete(uint64_t id, Outcome o, uint64_t) noexcept override { done.push_back({id, o}); }
  void token(uint64_t) noexcept override {}
};

std::vector<Outcome> outcomes(const Recorder& r) {
  std::vector<Outcome> v;
  for (const Done& d : r.done) v.push_back(d.outcome);
  return v;
}

// Feeds bytes in chunks of `step` like the engine does (keeping what parse()
// left), and expects every byte consumed in the end.
Recorder feed(ClientProtocol& p, const std::string& bytes, size_t step) {
  Recorder r;
  std::string buf;
  for (size_t at = 0; at < bytes.size(); at += step) {
    buf.append(bytes, at, step);
    auto n = p.parse(reinterpret_cast<const uint8_t*>(buf.data()), buf.size(), 0, r);
    REQUIRE(n);
    buf.erase(0, *n);
  }
  CHECK(buf.empty());
  return r;
}

// Both ways every test feeds: one byte at a time and in one piece.
std::vector<Outcome> feed_both(ClientProtocol& p, const std::string& bytes) {
  const Recorder one = feed(p, bytes, 1);
  const Recorder whole = feed(p, bytes, bytes.size());
  CHECK(outcomes(one) == outcomes(whole));
  return outcomes(whole);
}

// True when some prefix or the whole of bytes is rejected.
bool rejected(ClientProtocol& p, const std::string& bytes) {
  Recorder r;
  std::string buf;
  for (char c : bytes) {
    buf.push_back(c);
    auto n = p.parse(reinterpret_cast<const uint8_t*>(buf.data()), buf.size(), 0, r);
    if (!n) return n.error() == EBADMSG;
    buf.erase(0, *n);
  }
  return false;
}

ProtocolConfig one_key(double get_ratio) {
  ProtocolConfig cfg;
  cfg.keys = 1;
  cfg.key_size = 8;
  cfg.value_size = 5;
  cfg.get_ratio = get_ratio;
  return cfg;
}

std::string be(uint64_t v, int bytes) {
  std::string s;
  for (int i = bytes - 1; i >= 0; i--) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

// A binary response header and body.
std::string bin_response(uint8_t op, uint16_t status, uint32_t opaque, const std::string& extras,
                         const std::string& value) {
  return "\x81"s + static_cast<char>(op) + be(0, 2) + static_cast<char>(extras.size()) + '\0' + be(status, 2) +
         be(extras.size() + value.size(), 4) + be(opaque, 4) + be(7, 8) + extras + value;
}
std::string bin_hit(uint32_t opaque, const std::string& v) { return bin_response(0, 0, opaque, be(0, 4), v); }
std::string bin_miss(uint32_t opaque) { return bin_response(0, 1, opaque, "", "Not found"); }
std::string bin_stored(uint32_t opaque) { return bin_response(1, 0, opaque, "", ""); }

const std::string kHit = "VALUE key:0000 0 5\r\nabcde\r\nEND\r\n";

}  // namespace

TEST_CASE("memcached text requests are exact", "[proto]") {
  std::string out;
  make_memcached_text(one_key(1.0), 0)->build_request(1, out);
  CHECK(out == "get key:0000\r\n");
  out.clear();
  make_memcached_text(one_key(0.0), 0)->build_request(1, out);
  CHECK(out == "set key:0000 0 0 5\r\nabcde\r\n");
}

TEST_CASE("memcached keys are fixed-width, distinct, and within 250 bytes", "[proto]") {
  ProtocolConfig cfg = one_key(1.0);
  cfg.keys = 12345;
  cfg.key_size = 2;  // too short for distinct keys: widened to "key:" and five digits
  auto p = make_memcached_text(cfg, 0);
  std::string out;
  p->build_preload(12344, out);
  CHECK(out.substr(0, 14) == "set key:12344 ");
  cfg.key_size = 1000;
  out.clear();
  make_memcached_text(cfg, 0)->build_preload(7, out);
  CHECK(out.find(' ', 4) - 4 == 250);
  CHECK(out.substr(4, 4) == "key:");
  CHECK(out.substr(4 + 250 - 3, 5) == "007 0");
}

TEST_CASE("memcached binary requests are exact", "[proto]") {
  std::string out;
  make_memcached_binary(one_key(1.0), 0)->build_request(0x1122334455, out);
  CHECK(out == "\x80\x00"s + be(8, 2) + '\0' + '\0' + be(0, 2) + be(8, 4) + be(0x22334455, 4) + be(0, 8) + "key:0000");
  out.clear();
  make_memcached_binary(one_key(0.0), 0)->build_request(3, out);
  CHECK(out == "\x80\x01"s + be(8, 2) + '\x08' + '\0' + be(0, 2) + be(8 + 8 + 5, 4) + be(3, 4) + be(0, 8) + be(0, 8) +
                   "key:0000abcde");
}

TEST_CASE("memcached text responses: hits, misses, stores and errors, pipelined", "[proto]") {
  auto p = make_memcached_text(one_key(0.5), 0);
  CHECK(feed_both(*p, kHit) == std::vector{Outcome::ok});
  CHECK(feed_both(*p, "END\r\n") == std::vector{Outcome::miss});
  CHECK(feed_both(*p, "STORED\r\n") == std::vector{Outcome::ok});
  for (const char* e : {"NOT_STORED\r\n", "EXISTS\r\n", "NOT_FOUND\r\n", "ERROR\r\n", "SERVER_ERROR out of memory\r\n",
                        "CLIENT_ERROR bad data chunk\r\n", "SERVER_ERROR\r\n"})
    CHECK(feed_both(*p, e) == std::vector{Outcome::error});
  // A value with a cas, an empty value, and a value holding \r\nEND\r\n itself.
  const std::string tricky = "VALUE k 4294967295 7 99\r\n\r\nEND\r\n\r\nEND\r\nVALUE k 0 0\r\n\r\nEND\r\n";
  CHECK(feed_both(*p, tricky) == std::vector{Outcome::ok, Outcome::ok});
  const std::string mix = kHit + "END\r\n" + "STORED\r\n" + "SERVER_ERROR busy\r\n" + kHit;
  CHECK(feed_both(*p, mix) ==
        std::vector{Outcome::ok, Outcome::miss, Outcome::ok, Outcome::error, Outcome::ok});
}

TEST_CASE("memcached text waits for the whole response", "[proto]") {
  auto p = make_memcached_text(one_key(1.0), 0);
  Recorder r;
  const std::string two = kHit + "END\r\n";
  for (size_t cut = 0; cut < kHit.size(); cut++) {
    auto n = p->parse(reinterpret_cast<const uint8_t*>(two.data()), cut, 0, r);
    REQUIRE(n);
    CHECK(*n == 0);
  }
  auto n = p->parse(reinterpret_cast<const uint8_t*>(two.data()), two.size() - 1, 0, r);
  REQUIRE(n);
  CHECK(*n == kHit.size());
  CHECK(r.done.size() == 1);
}

TEST_CASE("malformed memcached text responses are rejected", "[proto]") {
  // Every malformation is tested in tests/proto; here: the adapter stops at one without an outcome.
  auto p = make_memcached_text(one_key(1.0), 0);
  const std::vector<std::string> bad = {"HELLO\r\n", "VALUE k 0 5\r\nabcdef\r\nEND\r\n", std::string(3000, 'S')};
  for (const std::string& b : bad) {
    INFO(b.substr(0, 60));
    CHECK(rejected(*p, b));
  }
  Recorder r;
  const std::string s = "VALUE k 0 5\r\nabcde\r\nEMD\r\n";
  CHECK_FALSE(p->parse(reinterpret_cast<const uint8_t*>(s.data()), s.size(), 0, r));
  CHECK(r.done.empty());
}

TEST_CASE("memcached binary responses: hits, misses, stores and errors, pipelined", "[proto]") {
  auto p = make_memcached_binary(one_key(0.5), 0);
  const std::string mix = bin_hit(1, "abcde") + bin_miss(2) + bin_stored(3) + bin_response(0, 0x81, 4, "", "Unknown") +
                          bin_response(1, 0x05, 5, "", "Not stored") + bin_response(1, 0x01, 6, "", "") +
                          bin_hit(7, "");
  CHECK(feed_both(*p, mix) == std::vector{Outcome::ok, Outcome::miss, Outcome::ok, Outcome::error, Outcome::error,
                                          Outcome::error, Outcome::ok});
  Recorder r = feed(*p, mix, 5);
  REQUIRE(r.done.size() == 7);
  for (uint64_t i = 0; i < 7; i++) CHECK(r.done[i].id == i + 1);  // the opaque
}

TEST_CASE("malformed memcached binary responses are rejected", "[proto]") {
  auto p = make_memcached_binary(one_key(1.0), 0);
  std::string wrong_magic = bin_stored(1);
  wrong_magic[0] = '\x80';
  std::string wrong_op = bin_stored(1);  // a well-formed reply to a command we never send
  wrong_op[1] = '\x0a';
  const std::string no_flags = bin_response(0, 0, 1, "", "abc");
  for (const std::string& b : {wrong_magic, wrong_op, no_flags}) CHECK(rejected(*p, b));
  CHECK_FALSE(rejected(*p, "\x81"s));
  CHECK(rejected(*p, bin_stored(1) + "\x00"s));  // garbage after a good response
}

TEST_CASE("memcached get ratio and key choice follow the config", "[proto]") {
  ProtocolConfig cfg;
  cfg.keys = 100;
  cfg.get_ratio = 0.7;
  auto p = make_memcached_text(cfg, 3);
  size_t gets = 0;
  std::set<std::string> keys;
  constexpr size_t kN = 20000;
  for (uint64_t i = 0; i < kN; i++) {
    std::string out;
    p->build_request(i, out);
    gets += out.starts_with("get ");
    keys.insert(out.substr(4, 16));
  }
  // Binomial: sd = sqrt(n p (1-p)) ~ 65; 5 sd either side.
  CHECK(gets > 0.7 * kN - 325);
  CHECK(gets < 0.7 * kN + 325);
  CHECK(keys.size() == 100);
  // Connections draw different sequences; the same seed draws the same one.
  std::string a, b, c;
  auto p0 = make_memcached_text(cfg, 0), p1 = make_memcached_text(cfg, 1), q0 = make_memcached_text(cfg, 0);
  for (uint64_t i = 0; i < 50; i++) {
    p0->build_request(i, a);
    p1->build_request(i, b);
    q0->build_request(i, c);
  }
  CHECK(a != b);
  CHECK(a == c);
}

TEST_CASE("memcached preload sets every key once", "[proto]") {
  for (auto make : {make_memcached_text, make_memcached_binary}) {
    ProtocolConfig cfg;
    cfg.keys = 500;
    auto p = make(cfg, 0);
    REQUIRE(p->preload_count() == 500);
    std::set<std::string> keys;
    for (uint64_t i = 0; i < p->preload_count(); i++) {
      std::string out;
      p->build_preload(i, out);
      const bool text = out.starts_with("set ");
      CHECK((text || (out[0] == '\x80' && out[1] == '\x01')));
      keys.insert(text ? out.substr(4, 16) : out.substr(24 + 8, 16));
    }
    CHECK(keys.size() == 500);
    CHECK(keys.count("key:000000000499") == 1);
    cfg.preload = false;
    CHECK(make(cfg, 0)->preload_count() == 0);
  }
}
