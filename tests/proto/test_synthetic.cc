// slip/proto/synthetic.h: the synthetic service's header, what parse_header
// accepts, and its layout on the wire.
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "slip/proto/synthetic.h"

using namespace slip::proto::synthetic;

TEST_CASE("synthetic headers: valid ones parse, short, foreign and mis-sized ones do not", "[synthetic]") {
  Header h{};
  h.magic = kMagic;
  h.len = sizeof(Header);
  h.id = 7;
  h.work_ns = kServerChooses;
  std::vector<uint8_t> b(sizeof h);
  std::memcpy(b.data(), &h, sizeof h);
  CHECK(b[0] == 'S');  // "SLPS" little-endian: the magic reads as text on the wire
  Header out{};
  REQUIRE(parse_header(b.data(), b.size(), out));
  CHECK(out.id == 7);
  CHECK(out.work_ns == kServerChooses);
  CHECK_FALSE(parse_header(b.data(), b.size() - 1, out));
  for (uint32_t len : {uint32_t{sizeof(Header) - 1}, kMaxMessage + 1, uint32_t{0}}) {
    h.len = len;
    std::memcpy(b.data(), &h, sizeof h);
    CHECK_FALSE(parse_header(b.data(), b.size(), out));
  }
  h.len = kMaxMessage;
  std::memcpy(b.data(), &h, sizeof h);
  CHECK(parse_header(b.data(), b.size(), out));
  b[0] ^= 1;
  CHECK_FALSE(parse_header(b.data(), b.size(), out));
}
