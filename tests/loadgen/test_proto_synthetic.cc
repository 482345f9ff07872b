// The synthetic and echo protocols: request layout, response framing across
// partial reads, and malformed responses.
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "protocol.h"
#include "slip/proto/synthetic.h"

using namespace slip::loadgen;
namespace syn = slip::proto::synthetic;

namespace {

struct Recorder final : ResponseSink {
  std::vector<uint64_t> ids;
  size_t tokens = 0;
  void complete(uint64_t id, Outcome o, uint64_t) noexcept override {
    if (o == Outcome::ok) ids.push_back(id);
  }
  void token(uint64_t) noexcept override { tokens++; }
};

std::string response(uint64_t id) {
  syn::Header h{syn::kMagic, sizeof(syn::Header), id, 5, 7};
  return std::string(reinterpret_cast<const char*>(&h), sizeof h);
}

}  // namespace

TEST_CASE("synthetic requests carry the header, padding and the asked work", "[proto]") {
  ProtocolConfig cfg;
  cfg.req_size = 100;
  cfg.work = slip::Distribution::constant(2500);
  auto p = make_synthetic(cfg, 0);
  std::string out;
  p->build_request(77, out);
  REQUIRE(out.size() == 100);
  syn::Header h;
  REQUIRE(syn::parse_header(out.data(), out.size(), h));
  CHECK(h.id == 77);
  CHECK(h.len == 100);
  CHECK(h.work_ns == 2500);
  cfg.work.reset();
  cfg.req_size = 1;  // below the header: rounded up
  out.clear();
  make_synthetic(cfg, 0)->build_request(1, out);
  REQUIRE(syn::parse_header(out.data(), out.size(), h));
  CHECK(h.len == sizeof(syn::Header));
  CHECK(h.work_ns == syn::kServerChooses);
}

TEST_CASE("synthetic responses are framed across partial reads", "[proto]") {
  auto p = make_synthetic(ProtocolConfig{}, 0);
  const std::string stream = response(1) + response(2) + response(3);
  Recorder r;
  std::string buf;
  // Feed one byte at a time, keeping what parse() did not consume.
  for (char c : stream) {
    buf.push_back(c);
    auto n = p->parse(reinterpret_cast<const uint8_t*>(buf.data()), buf.size(), 0, r);
    REQUIRE(n);
    buf.erase(0, *n);
  }
  CHECK(buf.empty());
  CHECK(r.ids == std::vector<uint64_t>{1, 2, 3});
}

TEST_CASE("a malformed synthetic response is an error, not a completion", "[proto]") {
  auto p = make_synthetic(ProtocolConfig{}, 0);
  std::string bad = response(9);
  bad[0] ^= 0x5a;  // magic
  Recorder r;
  CHECK_FALSE(p->parse(reinterpret_cast<const uint8_t*>(bad.data()), bad.size(), 0, r));
  std::string huge = response(9);
  const uint32_t len = syn::kMaxMessage + 1;
  std::memcpy(huge.data() + 4, &len, 4);
  CHECK_FALSE(p->parse(reinterpret_cast<const uint8_t*>(huge.data()), huge.size(), 0, r));
  CHECK(r.ids.empty());
}

TEST_CASE("echo requests carry their id and complete when the bytes return", "[proto]") {
  ProtocolConfig cfg;
  cfg.req_size = 16;
  auto p = make_echo(cfg, 0);
  std::string out;
  p->build_request(5, out);
  p->build_request(6, out);
  REQUIRE(out.size() == 32);
  Recorder r;
  auto n = p->parse(reinterpret_cast<const uint8_t*>(out.data()), 20, 0, r);
  REQUIRE(n);
  CHECK(*n == 16);
  CHECK(r.ids == std::vector<uint64_t>{5});
}

TEST_CASE("every protocol is listed once and can be found by name", "[proto]") {
  for (const ProtocolInfo& p : protocols()) {
    CHECK(find_protocol(p.name) == &p);
    CHECK_FALSE(p.help.empty());
  }
  CHECK(find_protocol("gopher") == nullptr);
}
