// A runtime as the daemon keeps it (Attached), on a real sealed memfd region
// laid out by create_region: what the daemon-side unit tests steer onto.
#pragma once

#include <catch2/catch.hpp>

#include <string>

#include "iokernel/registration.h"

namespace slip::iok::test {

inline Attached make_attached(uint32_t kthreads, uint32_t ip) {
  OwnRegion r;
  std::string why;
  REQUIRE(create_region(kthreads, 64, 2048, 32, true, &r, &why) == 0);
  Attached a;
  a.region_fd = r.fd;
  a.region = r.base;
  a.layout = r.layout;
  a.msg.magic = kMagic;
  a.msg.version_major = kVersionMajor;
  a.msg.ip = ip;
  a.msg.mac[0] = 0x02;
  a.msg.n_kthreads = static_cast<uint16_t>(kthreads);
  a.msg.guaranteed_cores = 1;
  a.msg.max_cores = static_cast<uint16_t>(kthreads);
  a.msg.region_size = r.size;
  return a;
}

}  // namespace slip::iok::test
