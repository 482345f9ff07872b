// Shared pieces of the network benchmark (slip-bench-net): the cases, and the
// arguments the driver (net_bench.cc) hands to its server and client child
// processes (net_bench_cases.cc). Every case runs over Slipstream's stack on
// DPDK net_memif and over Linux sockets on loopback, each side its own process.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace slip::bench {

enum NetCase : unsigned {
  kUdpRtt64, kUdpRtt64Rtc, kTcpRtt64, kUdpRtt1k, kTcpRtt1k, kTcpBulk, kTcpRtt64x2k, kNumNetCases
};

struct NetCaseSpec {
  const char* name;
  bool tcp;
  bool bulk;       // throughput instead of round trips
  size_t payload;  // bytes per request (rtt cases)
  bool rtc = false;  // UDP served by a udp_serve handler, not a uthread
  // Kthreads (and, on slip, port queues) of each side, and concurrent flows:
  // with several flows the client runs them closed loop for a time window
  // and reports round trips per second beside the latencies.
  unsigned kthreads = 1, flows = 1;
};

inline constexpr std::array<NetCaseSpec, kNumNetCases> kNetCases = {{
    {"udp_rtt_64", false, false, 64},
    {"udp_rtt_64_rtc", false, false, 64, true},
    {"tcp_rtt_64", true, false, 64},
    {"udp_rtt_1k", false, false, 1024},
    {"tcp_rtt_1k", true, false, 1024},
    {"tcp_bulk", true, true, 0},
    {"tcp_rtt_64_2k", true, false, 64, false, 2, 64},
}};

// The server listens on all three whatever the case, so it needs no case argument.
inline constexpr uint16_t kUdpEchoPort = 7000, kTcpEchoPort = 7001, kTcpSinkPort = 7002, kUdpRtcPort = 7003;
inline constexpr size_t kBulkChunk = 64 * 1024;

// What a child process is told on its command line.
struct ChildArgs {
  std::string role;   // "server" or "client"
  std::string stack;  // "slip" or "kernel"
  std::string case_name;
  std::string vdev, file_prefix;  // slip only
  std::string ip, peer;           // own address; the server's (client only)
  int status_fd = -1;             // one JSON line goes here: {"ready":true} or the result
  // Warm-up must cover a full pass over memif's rings: with --no-huge their
  // pages fault in on first touch, and the first ~1000 round trips measure
  // about 26 us instead of 2-3 us.
  uint64_t samples = 20000, warmup = 5000;
  double bulk_seconds = 1.0;
  unsigned bulk_reps = 3;
  double window_seconds = 2.0;  // many-flow cases: measured after a quarter of it as warm-up
};

// Runs one child; never returns (the process _exits, see net_bench_cases.cc).
[[noreturn]] void net_child_main(const ChildArgs& a);

// ---- the driver's child processes (net_bench_proc.cc) ----------------------

struct Child {
  pid_t pid = -1;
  int fd = -1;  // read end of the child's status pipe
  std::string name, log_path, file_prefix;
};

// Starts, watches and ends children. Every wait has a limit, and children die
// with the driver (PR_SET_PDEATHSIG), so nothing hangs or outlives a run.
class Procs {
 public:
  Procs() = default;
  Procs(const Procs&) = delete;
  Procs& operator=(const Procs&) = delete;
  ~Procs();  // removes the log directory, unless keep_logs() was called
  void keep_logs() noexcept { keep_ = true; }
  // Finds this binary and the CPUs to use, makes the log directory; false (with a message) on failure.
  bool init();
  // Runs this binary in child mode pinned to CPU slot 0 (server) or 1 (client)
  // (kAllCpus: both, and its kthreads pin themselves), output to a log file.
  static constexpr unsigned kAllCpus = ~0u;
  Child spawn(ChildArgs a, unsigned cpu_slot, const std::string& name) const;
  // The child's one status line as JSON, or {"error": ...} on timeout (the child is killed) or exit without one.
  nlohmann::ordered_json await_line(Child& c, double seconds) const;
  // SIGTERM, then SIGKILL if it lingers; reaps it and removes what DPDK left behind.
  void stop(Child& c) const;
  // The last lines of the child's output, each indented, for failure messages.
  std::string log_tail(const Child& c) const;

 private:
  std::string exe_, dir_;
  std::vector<int> cpus_;
  bool keep_ = false;
};

}  // namespace slip::bench
