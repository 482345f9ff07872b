// Set-up errors of the DPDK backend name their cause and the fix. Hidden tag:
// it must run in a process where EAL has not started (run_dpdk_test.sh eal).
#include <catch2/catch.hpp>

#include <algorithm>

#include "tests/net/dpdk/dpdk_test_util.h"

namespace slip::net {
namespace {

using Catch::Matchers::Contains;

TEST_CASE("DPDK set-up errors say what went wrong and how to fix it", "[dpdk][.eal_errors]") {
  if (eal_initialized()) {
    std::printf("skipping [eal_errors]: EAL already runs in this process; run test_net_dpdk '[eal_errors]' alone\n");
    return;
  }
  CHECK_THROWS_WITH(BufPool::dpdk("early", 64), Contains("call slip::net::eal_init first"));
  DpdkPortConfig cfg;
  cfg.name = "net_ring0";
  CHECK_THROWS_WITH(DpdkPort(cfg), Contains("call slip::net::eal_init first"));
  CHECK_THROWS_WITH(register_thread(), Contains("call slip::net::eal_init first"));

  if (free_hugepages() == 0) {
    CHECK_THROWS_WITH(eal_init({"--no-pci"}), Contains("no hugepages: run tools/setup or pass --no-huge"));
  }

  const auto args = eal_args_for_test("net_ring0", "pfx");
  auto has = [&](const std::string& a) { return std::find(args.begin(), args.end(), a) != args.end(); };
  CHECK(has("--no-huge"));
  CHECK(has("--file-prefix"));
  CHECK(has("pfx"));
  CHECK(has("net_ring0"));
  CHECK(eal_args_for_test("", "pfx").size() == args.size() - 2);

  try {
    eal_init({"--no-huge", "--no-such-eal-option"});
    FAIL("rte_eal_init accepted an unknown option");
  } catch (const std::runtime_error& e) {
    CHECK_THAT(e.what(), Contains("rte_eal_init") && Contains("--no-such-eal-option") && Contains("bad EAL arguments"));
  }
  CHECK_FALSE(eal_initialized());
}

}  // namespace
}  // namespace slip::net
