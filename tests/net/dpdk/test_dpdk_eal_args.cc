// eal_args_for_port: the EAL arguments for a NIC or a virtual device, the
// hugepage choice, the user's own arguments, and the combinations it refuses.
// Pure string work: no EAL starts, so it runs in any process.
#include <catch2/catch.hpp>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "slip/net/eal_args.h"

namespace slip::net {
namespace {

using Catch::Matchers::Contains;
using Args = std::vector<std::string>;

bool has(const Args& a, const std::string& x) { return std::find(a.begin(), a.end(), x) != a.end(); }

// Whether b follows a directly.
bool pair(const Args& a, const std::string& x, const std::string& y) {
  for (size_t i = 0; i + 1 < a.size(); i++)
    if (a[i] == x && a[i + 1] == y) return true;
  return false;
}

EalPortSpec pci_spec(std::string extra = "") {
  EalPortSpec s;
  s.pci = "3b:00.0";
  s.file_prefix = "pfx";
  s.extra = split_eal_args(extra);
  return s;
}

std::string error_of(const EalPortSpec& s, uint64_t free_pages = 0) {
  try {
    eal_args_for_port(s, free_pages);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

TEST_CASE("a PCI port: -a with the full address, no --no-pci, our prefix, lcore and log level", "[eal-args]") {
  const EalPlan p = eal_args_for_port(pci_spec(), 0);
  CHECK(p.port_name == "0000:3b:00.0");
  CHECK(pair(p.args, "-a", "0000:3b:00.0"));
  CHECK_FALSE(has(p.args, "--no-pci"));
  CHECK_FALSE(has(p.args, "--vdev"));
  CHECK(pair(p.args, "--file-prefix", "pfx"));
  CHECK(has(p.args, "-l"));
  CHECK(has(p.args, "--log-level=warning"));

  EalPortSpec d = pci_spec();
  d.pci = "0000:3B:00.1,rxq_cqe_comp_en=1,mprq_en=1";  // devargs stay with the address
  const EalPlan dp = eal_args_for_port(d, 0);
  CHECK(dp.port_name == "0000:3b:00.1");
  CHECK(pair(dp.args, "-a", "0000:3b:00.1,rxq_cqe_comp_en=1,mprq_en=1"));
}

TEST_CASE("a virtual device: --no-pci --vdev, named by what comes before the comma", "[eal-args]") {
  EalPortSpec s;
  s.vdev = "net_tap0,iface=dtap0";
  s.file_prefix = "pfx";
  const EalPlan p = eal_args_for_port(s, 0);
  CHECK(p.port_name == "net_tap0");
  CHECK(has(p.args, "--no-pci"));
  CHECK(pair(p.args, "--vdev", "net_tap0,iface=dtap0"));
  CHECK_FALSE(has(p.args, "-a"));
}

TEST_CASE("hugepages: used when free unless told otherwise, else --no-huge -m 256 and a note", "[eal-args]") {
  SECTION("auto with none free") {
    const EalPlan p = eal_args_for_port(pci_spec(), 0);
    CHECK(has(p.args, "--no-huge"));
    CHECK(pair(p.args, "-m", "256"));
    CHECK_THAT(p.memory_note, Contains("none free") && Contains("--no-huge"));
  }
  SECTION("auto with some free") {
    const EalPlan p = eal_args_for_port(pci_spec(), 64);
    CHECK_FALSE(has(p.args, "--no-huge"));
    CHECK_FALSE(has(p.args, "-m"));
    CHECK_THAT(p.memory_note, Contains("64 free"));
  }
  SECTION("on") {
    EalPortSpec s = pci_spec();
    s.huge = true;
    CHECK_FALSE(has(eal_args_for_port(s, 8).args, "--no-huge"));
    CHECK_THAT(error_of(s, 0), Contains("none are free") && Contains("tools/setup --hugepages"));
    s.extra = {"--no-huge"};
    CHECK_THAT(error_of(s, 8), Contains("contradicts --no-huge"));
  }
  SECTION("off, though some are free") {
    EalPortSpec s = pci_spec();
    s.huge = false;
    const EalPlan p = eal_args_for_port(s, 64);
    CHECK(has(p.args, "--no-huge"));
    CHECK_THAT(p.memory_note, Contains("off"));
  }
  SECTION("the user's --no-huge and -m are kept, not doubled") {
    const EalPlan p = eal_args_for_port(pci_spec("--no-huge -m 512"), 64);
    CHECK(std::count(p.args.begin(), p.args.end(), "--no-huge") == 1);
    CHECK(std::count(p.args.begin(), p.args.end(), "-m") == 1);
    CHECK(pair(p.args, "-m", "512"));
  }
  SECTION("options that need hugepages are refused without them") {
    CHECK_THAT(error_of(pci_spec("--in-memory"), 0), Contains("--in-memory") && Contains("needs hugepages"));
    CHECK_THAT(error_of(pci_spec("--socket-mem=512"), 0), Contains("--socket-mem"));
    CHECK_NOTHROW(eal_args_for_port(pci_spec("--in-memory"), 64));
  }
}

TEST_CASE("the user's -l, --lcores, -c or --file-prefix replace ours; their --log-level follows ours",
          "[eal-args]") {
  for (const char* lc : {"-l 2-3", "-l2", "--lcores=2@3", "--lcores 2", "-c 0x4", "--main-lcore 2"}) {
    CAPTURE(lc);
    const EalPlan p = eal_args_for_port(pci_spec(lc), 0);
    const Args user = split_eal_args(lc);
    CHECK(std::count(p.args.begin(), p.args.end(), "-l") == std::count(user.begin(), user.end(), "-l"));
    CHECK(p.args.back() == user.back());  // the user's, at the end
  }
  const EalPlan fp = eal_args_for_port(pci_spec("--file-prefix=mine"), 0);
  CHECK_FALSE(has(fp.args, "pfx"));
  const Args ll = eal_args_for_port(pci_spec("--log-level=pmd.net.mlx5:debug"), 0).args;
  CHECK(std::find(ll.begin(), ll.end(), "--log-level=warning") <
        std::find(ll.begin(), ll.end(), "--log-level=pmd.net.mlx5:debug"));
}

TEST_CASE("iova_va adds --iova-mode=va unless the user chose a mode", "[eal-args]") {
  EalPortSpec s = pci_spec();
  CHECK_FALSE(has(eal_args_for_port(s, 0).args, "--iova-mode=va"));
  s.iova_va = true;
  CHECK(has(eal_args_for_port(s, 64).args, "--iova-mode=va"));
  s.extra = {"--iova-mode=pa"};
  const Args a = eal_args_for_port(s, 64).args;
  CHECK_FALSE(has(a, "--iova-mode=va"));
  CHECK(a.back() == "--iova-mode=pa");
}

TEST_CASE("bad combinations are refused with the fix", "[eal-args]") {
  EalPortSpec both = pci_spec();
  both.vdev = "net_ring0";
  CHECK_THAT(error_of(both), Contains("not both"));
  EalPortSpec none;
  CHECK_THAT(error_of(none), Contains("--pci") && Contains("--vdev"));
  EalPortSpec bad = pci_spec();
  bad.pci = "3b:00";
  CHECK_THAT(error_of(bad), Contains("not a PCI address") && Contains("lspci"));
  CHECK_THAT(error_of(pci_spec("--no-pci")), Contains("--no-pci contradicts --pci"));
  CHECK_THAT(error_of(pci_spec("-a 0000:3b:00.1")), Contains("devargs go after a comma"));
  CHECK_THAT(error_of(pci_spec("--vdev=net_ring0")), Contains("names a device"));
  CHECK_THAT(error_of(pci_spec("-b 0000:00:02.0")), Contains("names a device"));
  CHECK_THAT(error_of(pci_spec("--proc-type secondary")), Contains("primary process"));
  CHECK_NOTHROW(eal_args_for_port(pci_spec("--proc-type=primary"), 0));
  CHECK_THAT(error_of(pci_spec("--help")), Contains("exit"));
  CHECK_THAT(error_of(pci_spec("-n 4 --")), Contains("EAL options only"));
  EalPortSpec nameless;
  nameless.vdev = ",iface=x";
  CHECK_THAT(error_of(nameless), Contains("device name comes first"));
}

TEST_CASE("EAL argument strings split at whitespace; quotes are refused", "[eal-args]") {
  CHECK(split_eal_args("") == Args{});
  CHECK(split_eal_args("  -l 2-3\t-n  4\n") == Args{"-l", "2-3", "-n", "4"});
  CHECK_THROWS_WITH(split_eal_args("-a '0000:3b:00.0'"), Contains("quotes are not interpreted"));
  CHECK_THROWS_WITH(split_eal_args("--vdev \"x\""), Contains("quotes"));
}

TEST_CASE("PCI addresses normalize to DPDK's port names", "[eal-args]") {
  CHECK(normalize_pci("3b:00.0") == "0000:3b:00.0");
  CHECK(normalize_pci("0000:3B:00.7") == "0000:3b:00.7");
  CHECK(normalize_pci("1:2.3") == "0000:01:02.3");
  CHECK(normalize_pci("10000:00:1f.0") == "10000:00:1f.0");  // VMD domains have five digits
  for (const char* bad :
       {"", "3b:00", "3b.00.0", "3b:00.8", "3b:20.0", "zz:00.0", "3b:00.0,x=1", ":00.0", "net_ring0"}) {
    CAPTURE(bad);
    CHECK_FALSE(is_pci_address(bad));
    CHECK_THROWS_AS(normalize_pci(bad), std::invalid_argument);
  }
}

TEST_CASE("eal_args_for_test stays as tests need it: --no-huge, --no-pci, --no-shconf", "[eal-args]") {
  const Args a = eal_args_for_test("net_ring0", "pfx");
  CHECK(has(a, "--no-huge"));
  CHECK(has(a, "--no-pci"));
  CHECK(has(a, "--no-shconf"));
  CHECK(pair(a, "--vdev", "net_ring0"));
}

}  // namespace
}  // namespace slip::net
