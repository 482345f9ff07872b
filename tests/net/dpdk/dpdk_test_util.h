// Shared by the DPDK tests: EAL start-up with a unique --file-prefix, and
// frame helpers. EAL runs once per process, so each scenario ([ring], [tap])
// runs as its own process (run_dpdk_test.sh, one meson test each).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "slip/net/buf.h"
#include "slip/net/dpdk.h"

namespace slip::net::dpdk_test {

// run_dpdk_test.sh passes the prefix so it can delete /var/run/dpdk/PREFIX.
inline std::string file_prefix(const char* scenario) {
  if (const char* p = std::getenv("SLIP_DPDK_PREFIX")) return p;
  return std::string("slipdpdk-") + scenario + "-" + std::to_string(getpid());
}

// Starts EAL for this scenario, or returns false (with a reason printed) when
// another scenario already started it in this process.
inline bool start_eal(const char* scenario, const std::string& vdev) {
  static std::string owner;
  if (!owner.empty() && owner != scenario) {
    std::printf("skipping [%s]: EAL already runs for [%s] in this process; run each scenario "
                "alone (e.g. test_net_dpdk '[%s]')\n", scenario, owner.c_str(), scenario);
    return false;
  }
  eal_init(eal_args_for_test(vdev, file_prefix(scenario)));
  owner = scenario;
  return true;
}

// Writes a big-endian 16-bit value.
inline void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

}  // namespace slip::net::dpdk_test
