// slip-bench-net: echo round trips and TCP bulk throughput over Slipstream's
// stack (DPDK net_memif between two processes) against Linux sockets (loopback
// between two processes), in the same run. This file is the driver: it starts
// a server and a client child (this binary, see net_bench_cases.cc) per case
// and stack, each pinned to its own CPU, and reports medians over --reps.
#include <sys/utsname.h>
#include <unistd.h>

#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "slip/common/cli11.h"
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "net_bench.h"
#include "slip/net/eal_args.h"
#include "slip/runtime/time.h"

namespace slip::bench {
namespace {

using Json = nlohmann::ordered_json;

struct Options {
  std::string json_path;
  unsigned reps = 3;
  std::vector<std::string> cases, stacks = {"slip", "kernel"};
  bool instructions = false;     // also count the slip server's instructions per round trip
  std::string netecho_before;    // slip-netecho of the commit to compare with
};

// The slip server's instructions per round trip from callgrind
// (net_instructions.py): {"skipped": why} when it cannot run here.
Json count_instructions(const Options& o) {
  const std::string out = fmt::format("/tmp/slip-bench-net-instr-{}.json", getpid());
  std::string cmd = fmt::format("python3 '{}' --netecho '{}' --json '{}'", SLIP_NET_INSTRUCTIONS, SLIP_NETECHO, out);
  if (!o.netecho_before.empty()) cmd += fmt::format(" --netecho-before '{}'", o.netecho_before);
  fmt::print(stderr, "counting instructions: {}\n", cmd);
  const int rc = std::system(cmd.c_str());
  Json r;
  if (WIFEXITED(rc) && WEXITSTATUS(rc) == 0) {
    std::ifstream in(out);
    r = Json::parse(in, nullptr, false);
  }
  std::remove(out.c_str());
  if (r.is_discarded() || r.is_null())
    r = Json{{"skipped", WIFEXITED(rc) && WEXITSTATUS(rc) == 77 ? "needs root and valgrind (net_instructions.py said why)"
                                                                : "net_instructions.py failed (see above)"}};
  return r;
}

// One (case, stack, rep): both children, start to finish. Returns the client's
// result line, or {"error": ...} naming what failed, with the children's log tails.
Json run_pair(const Procs& env, const ChildArgs& base, const NetCaseSpec& c, const std::string& stack, unsigned rep) {
  const std::string tag = fmt::format("{}-{}-{}", c.name, stack, rep);
  ChildArgs srv = base, cli = base;
  srv.role = "server";
  cli.role = "client";
  srv.stack = cli.stack = stack;
  srv.case_name = cli.case_name = c.name;
  if (stack == "slip") {
    // An abstract socket: nothing is left in the file system when a child dies.
    const std::string sock = fmt::format("/run/slip-bench-net-{}-{}.sock", getpid(), tag);
    srv.vdev = "net_memif0,role=server,socket-abstract=yes,mac=02:00:00:00:01:01,socket=" + sock;
    cli.vdev = "net_memif0,role=client,socket-abstract=yes,mac=02:00:00:00:01:02,socket=" + sock;
    srv.file_prefix = fmt::format("slipbn{}-{}-s", getpid(), tag);
    cli.file_prefix = fmt::format("slipbn{}-{}-c", getpid(), tag);
    srv.ip = "198.18.1.1";
    cli.ip = "198.18.1.2";
  } else {
    srv.ip = cli.ip = "127.0.0.1";
  }
  cli.peer = srv.ip;

  const unsigned srv_cpu = c.kthreads > 1 ? Procs::kAllCpus : 0, cli_cpu = c.kthreads > 1 ? Procs::kAllCpus : 1;
  Child server = env.spawn(srv, srv_cpu, tag + "-server");
  Json ready = env.await_line(server, 30.0);
  if (!ready.contains("ready")) {
    Json e = {{"error", fmt::format("server: {}", ready.value("error", "no ready line"))},
              {"log", env.log_tail(server)}};
    env.stop(server);
    return e;
  }
  // The client's own deadlines (15 s to reach the server, 2 s per request) come first; this only stops a hang.
  const double limit = 60.0 + static_cast<double>(base.samples + base.warmup) * 1e-3 +
                       (c.bulk ? base.bulk_reps * (base.bulk_seconds + 15.0) : 0.0) + base.window_seconds;
  Child client = env.spawn(cli, cli_cpu, tag + "-client");
  Json res = env.await_line(client, limit);
  env.stop(client);
  env.stop(server);
  if (!res.contains("error")) return res;
  res["log"] = env.log_tail(client) + env.log_tail(server);
  return res;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Medians over reps, key by key; the last error when every rep of this stack failed.
Json combine(const std::vector<Json>& reps) {
  std::vector<Json> ok;
  for (const auto& r : reps)
    if (!r.contains("error")) ok.push_back(r);
  if (ok.empty()) return reps.empty() ? Json() : Json{{"error", reps.back()["error"]}};
  Json out;
  for (const char* key : {"rps", "p50_ns", "p99_ns", "p999_ns", "samples", "gbps", "tx_segs_by_ref", "tx_segs_copied",
                          "tx_ring_full"}) {
    if (!ok[0].contains(key)) continue;
    std::vector<double> v;
    for (const auto& r : ok) v.push_back(r[key].get<double>());
    const std::string k = key;
    if (k == "gbps" || k == "rps") out[key] = median(v);
    else out[key] = static_cast<uint64_t>(median(v) + 0.5);
    if (k == "rps" && ok[0].contains("client_queues")) out["client_queues_rep1"] = ok[0]["client_queues"];
    if (k == "rps" && v.size() > 1) {
      std::sort(v.begin(), v.end());
      out["rps_min"] = v.front();
      out["rps_max"] = v.back();
    }
  }
  return out;
}

Json ratio(const Json& num, const Json& den, const char* key) {
  if (!num.contains(key) || !den.contains(key) || den[key].get<double>() == 0) return nullptr;
  return num[key].get<double>() / den[key].get<double>();
}

// A failed stack shows "FAILED" where its numbers would be; the error is in the JSON and above the table.
std::string us(const Json& r, const char* key) {
  if (r.contains("error")) return "FAILED";
  return r.contains(key) ? fmt::format("{:.1f}", r[key].get<double>() / 1000) : "-";
}
std::string num(const Json& v) {
  if (v.is_object() && v.contains("error")) return "FAILED";
  return v.is_number() ? fmt::format("{:.2f}", v.get<double>()) : "-";
}

std::string gbps(const Json& bulk, const char* stack) {
  if (!bulk.contains(stack)) return "-";
  const Json& s = bulk[stack];
  return num(s.contains("error") ? s : s.value("gbps", Json()));
}

void print_table(const Json& j, const ChildArgs& base, unsigned reps) {
  const auto& m = j["machine"];
  fmt::print("\nslip network benchmark: slip = Slipstream TCP/IP over DPDK net_memif, kernel = Linux sockets on "
             "loopback;\n2 processes each, one CPU each, 1 busy-polling kthread; {} samples after {} warm-up; "
             "median of {} rep(s)\nmachine: {}, {} CPUs, {}\n"
             "a spinning thread here loses the CPU {} times a second for over 10 us ({:.1f}% of the time, worst "
             "{:.0f} us): the floor under every p99.9 below\n",
             base.samples, base.warmup, reps, m["cpu_model"].get<std::string>(), m["cores"].get<long>(),
             m["kernel"].get<std::string>(), m["cpu_stalls"]["stalls_over_10us_per_s"].get<uint64_t>(),
             m["cpu_stalls"]["time_lost_pct"].get<double>(), m["cpu_stalls"]["worst_stall_us"].get<double>());
  if (m["slip_memory"] == "hugepages")
    fmt::print("slip's DPDK memory: hugepages\n\n");
  else
    fmt::print("slip's DPDK memory: 4 KiB pages (--no-huge), as no hugepages are free; a deployment would use them "
               "(as root: tools/setup --hugepages 512)\n\n");
  fmt::print("{:<14} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} | {:>9} {:>10}\n", "rtt (us)", "slip p50", "p99",
             "p99.9", "kern p50", "p99", "p99.9", "p50 k/s", "p99.9 k/s");
  for (const auto& [name, c] : j["cases"].items()) {
    if (name == "tcp_bulk" || c.contains("rps_ratio")) continue;
    const Json s = c.value("slip", Json()), k = c.value("kernel", Json());
    fmt::print("{:<14} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} | {:>9} {:>10}\n", name, us(s, "p50_ns"),
               us(s, "p99_ns"), us(s, "p999_ns"), us(k, "p50_ns"), us(k, "p99_ns"), us(k, "p999_ns"),
               num(c["p50_ratio"]), num(c["p999_ratio"]));
  }
  if (j["cases"].contains("tcp_bulk")) {
    const auto& b = j["cases"]["tcp_bulk"];
    fmt::print("\ntcp_bulk ({} x {:.1f} s of 64 KiB writes, median): slip {} Gbit/s, kernel {} Gbit/s, "
               "slip/kernel {}\n",
               base.bulk_reps, base.bulk_seconds, gbps(b, "slip"), gbps(b, "kernel"),
               num(b["ratio"]));
    if (b.contains("slip") && b["slip"].contains("tx_segs_by_ref"))
      fmt::print("  slip data segments sent by reference: {}, copied: {}\n",
                 b["slip"]["tx_segs_by_ref"].get<uint64_t>(), b["slip"].value("tx_segs_copied", uint64_t{0}));
  }
  for (const auto& c : kNetCases) {
    if (c.flows < 2 || !j["cases"].contains(c.name)) continue;
    const Json& r = j["cases"][c.name];
    auto krps = [&](const char* stack) {
      if (!r.contains(stack)) return std::string("-");
      const Json& s = r[stack];
      if (s.contains("error")) return std::string("FAILED");
      return fmt::format("{:.0f}k rt/s, p50 {} p99 {} p99.9 {} us", s.value("rps", 0.0) / 1000, us(s, "p50_ns"),
                         us(s, "p99_ns"), us(s, "p999_ns"));
    };
    fmt::print("\n{} ({} kthreads each side, kthread i of both on CPU i; {} concurrent {}-byte echo flows, "
               "{:.1f} s window, median):\n  slip   {}\n  kernel {}\n  slip/kernel round trips per second: {}\n",
               c.name, c.kthreads, c.flows, c.payload, base.window_seconds, krps("slip"), krps("kernel"),
               num(r["rps_ratio"]));
  }
}

// How often this CPU is taken away from a spinning thread (hypervisor,
// interrupts, timer ticks): it is the floor under any p99.9 measured here,
// so the report states it beside the results.
Json measure_stalls() {
  constexpr uint64_t kSpanNs = 500'000'000, kStallNs = 10'000;
  uint64_t stalls = 0, lost = 0, worst = 0;
  const uint64_t start = slip::now_ns();
  for (uint64_t last = start, t; (t = slip::now_ns()) - start < kSpanNs; last = t) {
    if (t - last > kStallNs) {
      stalls++;
      lost += t - last;
      worst = std::max(worst, t - last);
    }
  }
  return Json{{"stalls_over_10us_per_s", stalls * 1'000'000'000 / kSpanNs},
              {"time_lost_pct", 100.0 * static_cast<double>(lost) / kSpanNs},
              {"worst_stall_us", static_cast<double>(worst) / 1000.0}};
}

Json describe_machine() {
  std::string model = "unknown", kernel = "unknown";
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line);)
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      model = line.substr(line.find_first_not_of(" \t", line.find(':') + 1));
      break;
    }
  utsname u{};
  if (uname(&u) == 0) kernel = std::string(u.sysname) + " " + u.release;
  return Json{{"cpu_model", model}, {"cores", sysconf(_SC_NPROCESSORS_ONLN)}, {"kernel", kernel},
              {"clock", clock_uses_tsc() ? "tsc" : "clock_monotonic"}, {"cpu_stalls", measure_stalls()},
              {"slip_memory", net::free_hugepages() > 0 ? "hugepages" : "4k_pages"}};
}

int driver_main(const Options& o, const ChildArgs& base) {
  Procs env;
  if (!env.init()) return 1;
  Json j;
  j["machine"] = describe_machine();
  bool failed = false;
  for (const auto& c : kNetCases) {
    if (!o.cases.empty() && std::find(o.cases.begin(), o.cases.end(), c.name) == o.cases.end()) continue;
    std::vector<std::vector<Json>> per_stack(o.stacks.size());
    for (unsigned r = 0; r < o.reps; r++)
      for (size_t i = 0; i < o.stacks.size(); i++) {
        const size_t s = (i + r) % o.stacks.size();  // alternate the order so drift hits both alike
        Json res = run_pair(env, base, c, o.stacks[s], r);
        if (res.contains("error")) {
          failed = true;
          fmt::print(stderr, "slip-bench-net: {} over {} (rep {}) FAILED: {}\n{}", c.name, o.stacks[s], r + 1,
                     res["error"].get<std::string>(), res.value("log", ""));
        } else {
          fmt::print(stderr, "{} {} rep {}: {}\n", c.name, o.stacks[s], r + 1, res.dump());
        }
        per_stack[s].push_back(std::move(res));
      }
    Json& jc = j["cases"][c.name];
    for (size_t s = 0; s < o.stacks.size(); s++) jc[o.stacks[s]] = combine(per_stack[s]);
    const Json slip = jc.value("slip", Json()), kern = jc.value("kernel", Json());
    if (c.bulk) {
      jc["ratio"] = ratio(slip, kern, "gbps");
    } else if (c.flows > 1) {
      jc["rps_ratio"] = ratio(slip, kern, "rps");
      jc["p50_ratio"] = ratio(kern, slip, "p50_ns");
    } else {
      jc["p50_ratio"] = ratio(kern, slip, "p50_ns");
      jc["p999_ratio"] = ratio(kern, slip, "p999_ns");
    }
  }
  if (o.instructions) j["instructions"] = count_instructions(o);
  print_table(j, base, o.reps);
  if (j.contains("instructions") && !j["instructions"].contains("skipped")) {
    fmt::print("\nslip server instructions per 64-byte round trip (callgrind; {}):\n", j["instructions"].value("method", ""));
    for (const char* c : {"udp_rtt_64", "tcp_rtt_64"}) {
      const Json& r = j["instructions"][c];
      fmt::print("  {:<11} after {} ({} atomic read-modify-writes){}\n", c, r.value("after", 0),
                 r.value("atomics_after", 0.0),
                 r.contains("before") ? fmt::format(", before {} ({})", r["before"].get<long>(),
                                                    r.value("atomics_before", 0.0))
                                      : std::string());
    }
  }
  if (!o.json_path.empty()) {
    const std::filesystem::path path(o.json_path);
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
    std::ofstream out(path);
    out << j.dump(2) << "\n";
    if (!out) {
      fmt::print(stderr, "slip-bench-net: cannot write {}\n", o.json_path);
      return 1;
    }
    fmt::print("\nwrote {}\n", o.json_path);
  }
  if (failed) {
    env.keep_logs();
    fmt::print(stderr, "slip-bench-net: some runs failed (see above; logs kept); their entries hold the error\n");
  }
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace slip::bench

int main(int argc, char** argv) {
  using namespace slip::bench;
  CLI::App app{"slip-bench-net: UDP/TCP echo round trips and TCP bulk, Slipstream over DPDK net_memif vs Linux "
               "sockets on loopback. Without --role it is the driver and starts its own children."};
  Options o;
  ChildArgs a;
  app.add_option("--json", o.json_path, "write results there (tools/bench/run passes build/bench/net.json)");
  app.add_option("--samples", a.samples, "round trips measured per rtt case")
      ->capture_default_str()->check(CLI::Range(1, 10'000'000));
  app.add_option("--warmup", a.warmup, "round trips before measuring")
      ->capture_default_str()->check(CLI::Range(0, 10'000'000));
  app.add_option("--seconds", a.bulk_seconds, "length of one tcp_bulk transfer")
      ->capture_default_str()->check(CLI::Range(0.05, 60.0));
  app.add_option("--bulk-reps", a.bulk_reps, "tcp_bulk transfers per run (median)")
      ->capture_default_str()->check(CLI::Range(1, 100));
  app.add_option("--window", a.window_seconds, "many-flow cases (tcp_rtt_64_2k): seconds of closed-loop load, "
                                              "the first quarter warm-up")
      ->capture_default_str()->check(CLI::Range(0.05, 60.0));
  app.add_flag("--instructions", o.instructions,
               "also count the slip server's user-space instructions per round trip with callgrind (root, valgrind; "
               "about 2 minutes)");
  app.add_option("--instructions-before", o.netecho_before,
                 "with --instructions: slip-netecho built from the commit to compare with (build it side by side)");
  app.add_option("--reps", o.reps, "runs of every case and stack (median)")
      ->capture_default_str()->check(CLI::Range(1, 100));
  std::vector<std::string> case_names;
  for (const auto& c : kNetCases) case_names.emplace_back(c.name);
  app.add_option("--cases", o.cases, "only these cases")->check(CLI::IsMember(case_names));
  app.add_option("--stacks", o.stacks, "only these stacks")->check(CLI::IsMember({"slip", "kernel"}));
  // Child mode, for the driver's own use.
  app.add_option("--role", a.role, "child mode: server or client")->check(CLI::IsMember({"server", "client"}));
  app.add_option("--stack", a.stack, "child: slip or kernel")->check(CLI::IsMember({"slip", "kernel"}));
  app.add_option("--case", a.case_name, "child: the case (client)");
  app.add_option("--vdev", a.vdev, "child: DPDK vdev (slip)");
  app.add_option("--file-prefix", a.file_prefix, "child: DPDK --file-prefix (slip)");
  app.add_option("--ip", a.ip, "child: own IPv4 address");
  app.add_option("--peer", a.peer, "child: the server's IPv4 address (client)");
  app.add_option("--status-fd", a.status_fd, "child: where the one result line goes");
  CLI11_PARSE(app, argc, argv);
  if (!a.role.empty()) net_child_main(a);
  return driver_main(o, a);
}
