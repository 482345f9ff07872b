// iokerneld's decisions without the daemon: when a runtime counts as stalled
// (on a real region's rings), who may attach, config parsing and its errors,
// and the stats document.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "iokernel/daemon/control.h"
#include "iokernel/daemon/cores.h"
#include "iokernel/daemon/liveness.h"
#include "iokernel/daemon/options.h"
#include "iokernel/daemon/runtimes.h"
#include "iokernel/daemon/stats.h"
#include "tests/iokernel/attached_region.h"

using namespace slip::iok;
using slip::iok::test::make_attached;

namespace {

constexpr uint64_t kSec = 1'000'000'000;
constexpr uint64_t kTimeout = 2 * kSec;

PktDesc frame(uint64_t i) { return PktDesc{0, 60, 0, 0, i, i}; }

}  // namespace

TEST_CASE("an empty or draining rx ring never stalls", "[iok-daemon]") {
  RxWatch w;
  uint64_t t = 1000;
  CHECK(observe_rx(w, 0, 0, t, kTimeout) == RxVerdict::kIdle);
  t += 10 * kSec;
  CHECK(observe_rx(w, 0, 0, t, kTimeout) == RxVerdict::kIdle);
  // Frames keep arriving and the runtime keeps taking some: progress, however long.
  uint64_t pushed = 0;
  for (int i = 0; i < 100; i++) {
    pushed += 8;
    t += kSec;
    CHECK(observe_rx(w, 5, pushed, t, kTimeout) == RxVerdict::kProgress);
  }
}

TEST_CASE("waiting frames with nothing consumed stall after the timeout", "[iok-daemon]") {
  RxWatch w;
  uint64_t t = 1000;
  CHECK(observe_rx(w, 4, 4, t, kTimeout) == RxVerdict::kWaiting);
  CHECK(observe_rx(w, 4, 4, t + kSec, kTimeout) == RxVerdict::kWaiting);
  CHECK(observe_rx(w, 4, 4, t + kTimeout - 1, kTimeout) == RxVerdict::kWaiting);
  CHECK(observe_rx(w, 4, 4, t + kTimeout, kTimeout) == RxVerdict::kStalled);
  // More frames piling onto a ring nobody reads is no sign of life.
  RxWatch w2;
  CHECK(observe_rx(w2, 1, 1, t, kTimeout) == RxVerdict::kWaiting);
  CHECK(observe_rx(w2, 9, 9, t + kSec, kTimeout) == RxVerdict::kWaiting);
  CHECK(observe_rx(w2, 64, 64, t + kTimeout, kTimeout) == RxVerdict::kStalled);
}

TEST_CASE("one consumed frame restarts the stall clock", "[iok-daemon]") {
  RxWatch w;
  const uint64_t t = 1000;
  observe_rx(w, 4, 4, t, kTimeout);
  CHECK(observe_rx(w, 4, 4, t + kSec + kSec / 2, kTimeout) == RxVerdict::kWaiting);
  // 4 held + 2 pushed, 5 held now: one consumed.
  CHECK(observe_rx(w, 5, 6, t + kSec + kSec / 2 + 1, kTimeout) == RxVerdict::kProgress);
  CHECK(observe_rx(w, 5, 6, t + kTimeout + kSec, kTimeout) == RxVerdict::kWaiting);
  CHECK(observe_rx(w, 5, 6, t + 2 * kTimeout + kSec / 2 + 1, kTimeout) == RxVerdict::kStalled);
  // Draining it clears the stall.
  CHECK(observe_rx(w, 0, 6, t + 3 * kTimeout, kTimeout) == RxVerdict::kProgress);
  CHECK(w.waiting_since_ns == 0);
}

TEST_CASE("the pushed count may wrap past 2^64 without a false verdict", "[iok-daemon]") {
  RxWatch w;
  w.last_pushed = UINT64_MAX - 1;
  w.last_fill = 2;
  CHECK(observe_rx(w, 2, 1, 1000, kTimeout) == RxVerdict::kProgress);  // 3 pushed, 3 consumed
}

TEST_CASE("check_stalls reads real rings: a runtime that stops popping is reported", "[iok-daemon]") {
  RuntimeTable t;
  RuntimeEntry& e = t.add(make_attached(2, 0x0a000001), Fd(), PeerCred{}, 0);
  RuntimeEntry& ok = t.add(make_attached(1, 0x0a000002), Fd(), PeerCred{}, 0);
  const uint64_t id = e.id;
  RingView prod = e.ring(1, Ring::kRx), cons = e.ring(1, Ring::kRx);
  RingView ok_prod = ok.ring(0, Ring::kRx), ok_cons = ok.ring(0, Ring::kRx);
  PktDesc d[8], out[8];
  for (uint64_t i = 0; i < 8; i++) d[i] = frame(i);
  uint64_t now = 1000;
  for (int step = 0; step < 30; step++, now += kSec / 5) {
    e.rx_pushed[1] += prod.push(d, 4);
    ok.rx_pushed[0] += ok_prod.push(d, 4);
    ok_cons.pop(out, 8);                   // the healthy runtime keeps up
    if (step < 5) cons.pop(out, 2);        // the other stops after a second
    const auto stalls = t.check_stalls(now, kTimeout);
    // The last pop was at step 4 (0.8 s): stalled from 0.8 s + the timeout on.
    if (now - 1000 < 4 * kSec / 5 + kTimeout) {
      CHECK(stalls.empty());
    } else {
      REQUIRE(stalls.size() == 1);
      CHECK(stalls[0].id == id);
      CHECK(stalls[0].kthread == 1);
      CHECK(stalls[0].fill == cons.size());
      break;
    }
    REQUIRE(step < 29);
  }
  CHECK(t.remove(id));
  CHECK(t.ips() == std::vector<uint32_t>{0x0a000002});
}

TEST_CASE("root, the daemon's user, listed users and group members may attach", "[iok-daemon]") {
  PeerPolicy p;
  p.self_uid = 1000;
  p.uids = {2000};
  p.gids = {300};
  auto cred = [](uid_t u, gid_t g, std::vector<gid_t> groups = {}) {
    PeerCred c;
    c.uid = u;
    c.gid = g;
    c.groups = std::move(groups);
    return c;
  };
  CHECK(p.allows(cred(0, 0)));
  CHECK(p.allows(cred(1000, 1000)));
  CHECK(p.allows(cred(2000, 2000)));
  CHECK(p.allows(cred(3000, 300)));
  CHECK(p.allows(cred(3000, 3000, {5, 300})));
  CHECK_FALSE(p.allows(cred(65534, 65534)));
  CHECK_FALSE(p.allows(cred(3000, 3000, {5, 6})));
}

TEST_CASE("config: [iokernel] keys apply, the command line's validation holds", "[iok-daemon]") {
  DaemonOptions o;
  apply_config_text("[runtime]\nkthreads = 2\n[iokernel]\nsocket = \"/tmp/x/iok.sock\"\nsocket_mode = 0o600\n"
                    "allow_uid = [\"root\", 1234]\nno_port = true\nidle_backoff = true\nstall_timeout = 0.5\n"
                    "cores = 3\ncore_interval_us = 20\n",
                    "test.toml", o);
  CHECK(o.socket == "/tmp/x/iok.sock");
  CHECK(o.socket_mode == "0600");
  CHECK(o.allow_uid == std::vector<std::string>{"root", "1234"});
  const DaemonSettings s = resolve(o);
  CHECK(s.socket_mode == 0600);
  CHECK(s.stats_socket == "/tmp/x/iok.sock.stats");
  CHECK(s.allow_uids == std::vector<uid_t>{0, 1234});
  CHECK(s.stall_timeout_ns == kSec / 2);
  CHECK(s.cores == 3);
  CHECK(s.core_interval_ns == 20'000);
  DaemonOptions dflt;
  dflt.no_port = true;
  CHECK(resolve(dflt).cores >= 1);  // 0: the CPUs it may use, less its own
}

TEST_CASE("--cpus: CPU lists, the capacity they set, and their errors", "[iok-daemon]") {
  CHECK(parse_cpu_list("3") == std::vector<int>{3});
  CHECK(parse_cpu_list("2-4,7") == std::vector<int>{2, 3, 4, 7});
  CHECK(parse_cpu_list("9,1") == std::vector<int>{9, 1});  // the order given is the order tried
  for (const char* bad : {"", "a", "1,", ",1", "1-", "-1", "4-2", "1,1", "1-3,2", "1 2", "99999"})
    CHECK_THROWS_WITH(parse_cpu_list(bad), Catch::Contains("--cpus") && Catch::Contains("write CPUs like"));
  CHECK_THROWS_WITH(parse_cpu_list("4-2"), Catch::Contains("backwards"));
  CHECK_THROWS_WITH(parse_cpu_list("1-3,2"), Catch::Contains("CPU 2 is listed twice"));

  cpu_set_t mine;
  REQUIRE(sched_getaffinity(0, sizeof mine, &mine) == 0);
  int allowed = -1, not_allowed = -1;
  for (int c = 0; c < 1024; c++) {
    if (CPU_ISSET(c, &mine) && allowed < 0) allowed = c;
    if (!CPU_ISSET(c, &mine) && not_allowed < 0) not_allowed = c;
  }
  REQUIRE(allowed >= 0);
  DaemonOptions o;
  o.no_port = true;
  o.cpus = std::to_string(allowed);
  const DaemonSettings s = resolve(o);
  CHECK(s.cpus == std::vector<int>{allowed});
  CHECK(s.cores == 1);  // the list sets the capacity
  o.cores = 2;
  CHECK_THROWS_WITH(resolve(o), Catch::Contains("disagree"));
  o.cores = 0;
  o.cpus = std::to_string(not_allowed);
  CHECK_THROWS_WITH(resolve(o), Catch::Contains("is not one this process may run on"));
  DaemonOptions t;
  apply_config_text("[iokernel]\nno_port = true\ncpus = \"" + std::to_string(allowed) + "\"\n", "t.toml", t);
  CHECK(resolve(t).cpus == std::vector<int>{allowed});
}

TEST_CASE("config errors name the line, the key and the fix", "[iok-daemon]") {
  DaemonOptions o;
  auto error_of = [&](const std::string& text) {
    try {
      apply_config_text(text, "f.toml", o);
    } catch (const OptionsError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error_of("[iokernel]\nsocket = \"/a\"\nsockt_mode = \"0600\"\n"),
             Catch::StartsWith("f.toml:3:1: iokernel.sockt_mode: unknown key"));
  CHECK_THAT(error_of("[iokernel]\n\nstall_timeout = \"2s\"\n"), Catch::StartsWith("f.toml:3:"));
  CHECK_THAT(error_of("[iokernel]\nsocket_mode = 660\n"), Catch::Contains("not octal"));
  CHECK_THAT(error_of("[iokernel]\ncore_interval_us = 0\n"), Catch::Contains("microseconds from 1"));
  CHECK_THAT(error_of("[iokernel]\ncores = -1\n"), Catch::Contains("an integer from 0"));
  CHECK_THAT(error_of("socket = \"/a\"\n"), Catch::Contains("belong in the [iokernel] table"));
  CHECK_THAT(error_of("[iokernal]\n"), Catch::StartsWith("f.toml:1:"));
  CHECK_THAT(error_of("[iokernel\n"), Catch::StartsWith("f.toml:1:"));
  CHECK_THROWS_WITH(parse_mode("0999"), Catch::Contains("octal"));
  DaemonOptions no_port;
  CHECK_THROWS_WITH(resolve(no_port), Catch::Contains("--no-port"));
  no_port.vdev = "net_tap0,iface=x";
  CHECK(resolve(no_port).port_name == "net_tap0");
}

TEST_CASE("config: a real NIC by --pci or pci, EAL arguments and hugepages", "[iok-daemon]") {
  auto has = [](const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  DaemonOptions o;
  apply_config_text("[iokernel]\npci = \"3b:00.0,mprq_en=1\"\neal_args = [\"-l\", \"2\", \"-n\", \"4\"]\n"
                    "hugepages = \"off\"\nfile_prefix = \"nic\"\n",
                    "nic.toml", o);
  CHECK(o.pci == "3b:00.0,mprq_en=1");
  CHECK(o.eal_args == "-l 2 -n 4");
  CHECK(o.hugepages == "off");
  const DaemonSettings s = resolve(o);
  CHECK(s.port_name == "0000:3b:00.0");
  CHECK(has(s.eal_args, "0000:3b:00.0,mprq_en=1"));
  CHECK(has(s.eal_args, "--no-huge"));
  CHECK(has(s.eal_args, "--iova-mode=va"));  // the memfd rx pool needs it
  CHECK_FALSE(has(s.eal_args, "--no-pci"));
  CHECK(std::count(s.eal_args.begin(), s.eal_args.end(), "-l") == 1);  // the user's
  CHECK(s.eal_args.back() == "4");
  CHECK_THAT(s.eal_memory_note, Catch::Contains("off"));

  DaemonOptions str;
  apply_config_text("[iokernel]\nvdev = \"net_ring0\"\neal_args = \"-n 4\"\nhugepages = false\n", "s.toml", str);
  CHECK(str.eal_args == "-n 4");
  CHECK(str.hugepages == "off");
  CHECK(resolve(str).port_name == "net_ring0");
}

TEST_CASE("port errors: exactly one of --vdev, --pci and --no-port; bad EAL arguments name the fix", "[iok-daemon]") {
  auto error_of = [](DaemonOptions o) {
    try {
      resolve(o);
    } catch (const OptionsError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  DaemonOptions both;
  both.vdev = "net_ring0";
  both.pci = "3b:00.0";
  CHECK_THAT(error_of(both), Catch::Contains("exactly one of --vdev, --pci and --no-port") &&
                                 Catch::Contains("--vdev net_ring0, --pci 3b:00.0"));
  DaemonOptions np;
  np.no_port = true;
  np.pci = "3b:00.0";
  CHECK_THAT(error_of(np), Catch::Contains("exactly one"));
  np.pci.clear();
  np.eal_args = "-n 4";
  CHECK_THAT(error_of(np), Catch::Contains("--no-port starts no DPDK"));
  DaemonOptions p;
  p.pci = "3b:00";
  CHECK_THAT(error_of(p), Catch::Contains("--pci: \"3b:00\" is not a PCI address"));
  p.pci = "3b:00.0";
  p.eal_args = "-a 0000:3b:00.1";
  CHECK_THAT(error_of(p), Catch::Contains("--eal-args: -a names a device"));
  p.eal_args = "-l '2'";
  CHECK_THAT(error_of(p), Catch::Contains("quotes are not interpreted"));
  p.eal_args = "--no-huge";
  p.hugepages = "on";
  CHECK_THAT(error_of(p), Catch::Contains("--hugepages on"));

  DaemonOptions f;
  auto file_error = [&](const std::string& text) {
    try {
      apply_config_text(text, "f.toml", f);
    } catch (const OptionsError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(file_error("[iokernel]\nhugepages = \"yes\"\n"),
             Catch::StartsWith("f.toml:2:13: iokernel.hugepages: expected \"auto\", \"on\" or \"off\""));
  CHECK_THAT(file_error("[iokernel]\neal_args = [\"-l 2\"]\n"),
             Catch::StartsWith("f.toml:2:13: iokernel.eal_args: expected an EAL argument without spaces"));
  CHECK_THAT(file_error("[iokernel]\neal_args = 4\n"), Catch::Contains("expected a string like"));
  CHECK_THAT(file_error("[iokernel]\npci = 3\n"), Catch::StartsWith("f.toml:2:7: iokernel.pci: expected a string"));
}

TEST_CASE("the command line's port replaces the config file's", "[iok-daemon]") {
  char path[] = "/tmp/iokd-test-XXXXXX.toml";
  const int fd = mkstemps(path, 5);
  REQUIRE(fd >= 0);
  const std::string text = "[iokernel]\nvdev = \"net_ring0\"\nsocket = \"/tmp/iokd-test.sock\"\n";
  REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  close(fd);
  auto parse = [&](std::vector<const char*> argv, DaemonSettings* s) {
    argv.insert(argv.begin(), {"iokerneld", "--config", path});
    return parse_options(static_cast<int>(argv.size()), argv.data(), s);
  };
  DaemonSettings s;
  CHECK(parse({}, &s) == -1);
  CHECK(s.port_name == "net_ring0");
  CHECK(parse({"--pci", "0000:3b:00.0", "--eal-args", "-n 4", "--hugepages", "off"}, &s) == -1);
  CHECK(s.opts.vdev.empty());
  CHECK(s.port_name == "0000:3b:00.0");
  CHECK(s.eal_args.back() == "4");
  CHECK(parse({"--no-port"}, &s) == -1);
  CHECK(s.opts.no_port);
  CHECK(s.eal_args.empty());
  CHECK(parse({"--hugepages", "maybe"}, &s) == 2);
  unlink(path);
}

TEST_CASE("the stats document lists each runtime with its rings", "[iok-daemon]") {
  RuntimeTable t;
  RuntimeEntry& e = t.add(make_attached(2, (10u << 24) | 7), Fd(), PeerCred{4242, 1000, 1000, {}}, 0);
  PktDesc d[3] = {frame(0), frame(1), frame(2)};
  REQUIRE(e.ring(1, Ring::kRx).push(d, 3) == 3);
  e.kthread(0).state.store(static_cast<uint32_t>(KthreadState::kActive));
  CoreAllocator cores(std::make_unique<DelayPolicy>(), 3);
  cores.run(t, 5 * kSec);  // grants the guarantee
  DaemonInfo info;
  info.pid = 1;
  info.cores = &cores;
  const nlohmann::json doc = stats_json(info, nullptr, t, 5 * kSec);
  CHECK(doc.at("port").is_null());
  CHECK(doc.at("cores").at("capacity") == 3);
  CHECK(doc.at("cores").at("in_use") == 1);
  CHECK(doc.at("cores").at("policy") == "delay");
  REQUIRE(doc.at("runtimes").size() == 1);
  const auto& r = doc.at("runtimes")[0];
  CHECK(r.at("pid") == 4242);
  CHECK(r.at("ip") == "10.0.0.7");
  CHECK(r.at("mac") == "02:00:00:00:00:00");
  CHECK(r.at("cores_granted") == 1);
  CHECK(r.at("cores_active") == 1);
  CHECK(r.at("core_grants") == 0);  // the guarantee is not counted as a grant
  REQUIRE(r.at("kthreads").size() == 2);
  CHECK(r.at("kthreads")[0].at("granted") == true);
  CHECK(r.at("kthreads")[1].at("granted") == false);
  CHECK(r.at("kthreads")[0].at("state") == "active");
  CHECK(r.at("kthreads")[1].at("state") == "parked");
  CHECK(r.at("kthreads")[1].at("rx_fill") == 3);
  CHECK(r.at("kthreads")[0].at("rx_fill") == 0);
}
