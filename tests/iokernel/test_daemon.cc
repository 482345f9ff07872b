// iokerneld's decisions without the daemon: when a runtime counts as stalled
// (on a real region's rings), who may attach, config parsing and its errors,
// and the stats document.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>

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
