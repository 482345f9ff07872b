// Text forms of MacAddr, Ipv4Addr and Endpoint: round trips and strict rejects.
#include <catch2/catch.hpp>

#include <string>

#include "slip/net/addr.h"

using namespace slip::net;

TEST_CASE("MacAddr parses and prints", "[addr]") {
  auto m = MacAddr::parse("02:00:5e:Aa:fF:01");
  REQUIRE(m);
  CHECK(m->b == std::array<uint8_t, 6>{0x02, 0x00, 0x5e, 0xaa, 0xff, 0x01});
  CHECK(m->str() == "02:00:5e:aa:ff:01");
  CHECK(MacAddr::parse(m->str()) == m);
  CHECK(MacAddr::parse("ff:ff:ff:ff:ff:ff")->is_broadcast());
  CHECK(MacAddr::parse("00:00:00:00:00:00")->is_zero());
  CHECK(MacAddr::parse("01:00:5e:00:00:01")->is_multicast());
  CHECK(MacAddr{}.str() == "00:00:00:00:00:00");
}

TEST_CASE("MacAddr rejects malformed text", "[addr]") {
  for (const char* bad : {"", "02:00:00:00:00", "02:00:00:00:00:01:", " 02:00:00:00:00:01", "02:00:00:00:00:01 ",
                          "02:00:00:00:00:0g", "02-00-00-00-00-01", "2:00:00:00:00:01", "02:00:00:00:00:001",
                          "02:00:00:00:00:1", "02::00:00:00:00:01", "0200.0000.0001", "02:00:00:00:00:01x"}) {
    INFO(bad);
    CHECK_FALSE(MacAddr::parse(bad));
  }
}

TEST_CASE("Ipv4Addr parses and prints", "[addr]") {
  CHECK(Ipv4Addr::parse("198.18.0.1") == Ipv4Addr::of(198, 18, 0, 1));
  CHECK(Ipv4Addr::parse("0.0.0.0") == Ipv4Addr{});
  CHECK(Ipv4Addr::parse("255.255.255.255")->is_broadcast());
  CHECK(Ipv4Addr::parse("224.0.0.251")->is_multicast());
  CHECK(Ipv4Addr::of(10, 1, 2, 3).v == 0x0a010203u);
  CHECK(Ipv4Addr::of(10, 1, 2, 3).str() == "10.1.2.3");
  CHECK(Ipv4Addr(0xffffffffu).str() == "255.255.255.255");
  for (uint32_t v : {0u, 1u, 0x7f000001u, 0xc0a80101u, 0xdeadbeefu, 0xffffffffu})
    CHECK(Ipv4Addr::parse(Ipv4Addr(v).str()) == Ipv4Addr(v));
}

TEST_CASE("Ipv4Addr rejects malformed text", "[addr]") {
  for (const char* bad : {"", "1", "1.2.3", "1.2.3.4.", ".1.2.3.4", "1.2.3.4.5", "1..3.4", "256.0.0.1", "1.2.3.256",
                          "1.2.3.1000", "01.2.3.4", "1.2.3.04", "1.2.3.4 ", " 1.2.3.4", "1.2.3.4x", "1.2.3.-4",
                          "+1.2.3.4", "1.2.3.4/24", "a.b.c.d", "0x1.2.3.4", "1.2.3.4:80", "4294967296.0.0.0"}) {
    INFO(bad);
    CHECK_FALSE(Ipv4Addr::parse(bad));
  }
}

TEST_CASE("Endpoint parses and prints", "[addr]") {
  auto e = Endpoint::parse("198.18.0.1:80");
  REQUIRE(e);
  CHECK(e->ip == Ipv4Addr::of(198, 18, 0, 1));
  CHECK(e->port == 80);
  CHECK(e->str() == "198.18.0.1:80");
  CHECK(Endpoint::parse("0.0.0.0:0") == Endpoint{});
  CHECK(Endpoint::parse("10.0.0.1:65535")->port == 65535);
  const Endpoint x{Ipv4Addr::of(127, 0, 0, 1), 11211};
  CHECK(Endpoint::parse(x.str()) == x);
}

TEST_CASE("Endpoint rejects malformed text", "[addr]") {
  for (const char* bad : {"", ":", "1.2.3.4", "1.2.3.4:", ":80", "1.2.3.4:65536", "1.2.3.4:99999", "1.2.3.4:080",
                          "1.2.3.4:8a", "1.2.3.4:-1", "1.2.3.4:+80", "1.2.3.4:80 ", "1.2.3.4::80", "1.2.3:80",
                          "256.1.1.1:80", "1.2.3.4:100000", "host:80"}) {
    INFO(bad);
    CHECK_FALSE(Endpoint::parse(bad));
  }
}
