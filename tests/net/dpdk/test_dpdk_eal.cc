// Set-up errors of the DPDK backend name their cause and the fix. Hidden tag:
// it must run in a process where EAL has not started (run_dpdk_test.sh
// eal_errors); it ends with EAL running (--no-pci, no vdev: no ports).
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
  CHECK_THROWS_WITH(make_dpdk_pool("early", 64), Contains("call slip::net::eal_init first"));
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

  // Last, as EAL then runs: a stray word is named, though EAL started.
  auto stray = eal_args_for_test("", dpdk_test::file_prefix("eal_errors"));
  stray.push_back("stray-word");
  CHECK_THROWS_WITH(eal_init(stray), Contains("[stray-word]") && Contains("not EAL options"));
  CHECK(eal_initialized());
  // A PCI port EAL did not take: the ports it found and how to bind one.
  cfg.name = "3b:00.0";
  CHECK_THROWS_WITH(DpdkPort(cfg), Contains("no DPDK port named \"0000:3b:00.0\" found; ports DPDK found (0): none") &&
                                       Contains("vfio-pci") && Contains("rdma-core"));
  cfg.name = "net_ring7";
  CHECK_THROWS_WITH(DpdkPort(cfg), Contains("no DPDK port named \"net_ring7\"") && Contains("--vdev"));
}

}  // namespace
}  // namespace slip::net
