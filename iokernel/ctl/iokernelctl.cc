// iokernelctl: what iokerneld is doing. Reads the daemon's stats socket (one
// JSON document per connection) and prints a table, or the JSON itself.
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "slip/common/cli11.h"
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

namespace {

using nlohmann::json;

// The document the daemon sends on path; throws with what went wrong.
std::string fetch(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) throw std::runtime_error(path + ": path too long for a Unix socket");
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  const timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    const int e = errno;
    close(fd);
    throw std::runtime_error(fmt::format("cannot connect to {}: {}. Is iokerneld running? Start it, or point "
                                         "--stats-socket (or --socket) at the one it uses.",
                                         path, std::strerror(e)));
  }
  std::string out;
  char buf[16384];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  const int e = errno;
  close(fd);
  if (n < 0) throw std::runtime_error(fmt::format("reading {}: {}", path, std::strerror(e)));
  if (out.empty()) throw std::runtime_error("iokerneld closed the stats connection without an answer (busy?); retry");
  return out;
}

void print_table(const json& d) {
  const json& dm = d.at("daemon");
  fmt::print("iokerneld pid {}, up {:.1f} s, {} attached ({} so far, {} detached, {} refused)\n", dm.at("pid").get<int>(),
             dm.at("uptime_s").get<double>(), d.at("runtimes").size(), dm.at("attached_total").get<uint64_t>(),
             dm.at("detached_total").get<uint64_t>(), dm.at("refused_total").get<uint64_t>());
  const json& p = d.at("port");
  if (p.is_null()) {
    fmt::print("port: none (--no-port: control plane only)\n");
  } else {
    fmt::print("port {} ({}): rx {} tx {} rx_dropped {} tx_dropped {} missed {} errors {}/{}\n",
               p.at("name").get<std::string>(), p.at("mac").get<std::string>(), p.at("rx_frames").get<uint64_t>(),
               p.at("tx_frames").get<uint64_t>(), p.at("rx_dropped").get<uint64_t>(),
               p.at("tx_dropped").get<uint64_t>(), p.at("rx_missed").get<uint64_t>(),
               p.at("rx_errors").get<uint64_t>(), p.at("tx_errors").get<uint64_t>());
    // Newer daemons add runtime-to-runtime frames and drops by reason (only the nonzero ones are shown).
    std::string drops;
    if (p.contains("drops"))
      for (const auto& [why, n] : p.at("drops").items())
        if (n.get<uint64_t>() != 0) drops += fmt::format(" {} {}", why, n.get<uint64_t>());
    fmt::print("  local (runtime to runtime) {}; drops:{}\n", p.value("local_frames", uint64_t{0}),
               drops.empty() ? " none" : drops);
  }
  if (d.at("runtimes").empty()) return;
  fmt::print("\n{:>4} {:>8} {:<15} {:<17} {:<16} {:>3} {:>12} {:>10} {:>10} {:>10}\n", "ID", "PID", "IP", "MAC",
             "CLASS", "KT", "CORES g/m/on", "RX", "RX_DROP", "TX");
  for (const json& r : d.at("runtimes")) {
    const std::string cores = fmt::format("{}/{}/{}", r.at("guaranteed_cores").get<int>(),
                                          r.at("max_cores").get<int>(), r.at("cores_granted").get<int>());
    fmt::print("{:>4} {:>8} {:<15} {:<17} {:<16} {:>3} {:>12} {:>10} {:>10} {:>10}\n", r.at("id").get<uint64_t>(),
               r.at("pid").get<int>(), r.at("ip").get<std::string>(), r.at("mac").get<std::string>(),
               r.at("class").get<std::string>(), r.at("n_kthreads").get<int>(), cores,
               r.at("rx_frames").get<uint64_t>(), r.at("rx_dropped").get<uint64_t>(), r.at("tx_frames").get<uint64_t>());
    for (const json& k : r.at("kthreads"))
      fmt::print("{:>14} kthread {:<3} rx {:>5}/{:<5} tx {:>5}/{:<5} completions {:>5}/{:<5} returns {:>5}/{:<5} {}\n",
                 "", k.at("kthread").get<int>(), k.at("rx_fill").get<uint32_t>(), k.at("ring_slots").get<uint32_t>(),
                 k.at("tx_fill").get<uint32_t>(), k.at("ring_slots").get<uint32_t>(),
                 k.at("completions_fill").get<uint32_t>(), k.at("ring_slots").get<uint32_t>(),
                 k.at("rx_return_fill").get<uint32_t>(), k.at("ring_slots").get<uint32_t>(),
                 k.at("state").get<std::string>());
    // Newer daemons allocate cores: what is in use, the queueing delay, and the grant counters.
    if (r.contains("cores_active"))
      fmt::print("{:>14} cores in use {}, queueing delay {:.1f} us; grants {}, revokes {}, yields {}, kicks {}\n", "",
                 r.at("cores_active").get<int>(), r.at("queue_delay_us").get<double>(),
                 r.at("core_grants").get<uint64_t>(), r.at("core_revokes").get<uint64_t>(),
                 r.at("core_yields").get<uint64_t>(), r.at("core_kicks").get<uint64_t>());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"iokernelctl: show what iokerneld is doing (attached runtimes, rings, port counters)", "iokernelctl"};
  std::string socket = "/run/slip/iokernel.sock", stats_socket;
  bool raw = false;
  app.add_option("--socket", socket, "iokerneld's control socket; the stats socket is <socket>.stats");
  app.add_option("--stats-socket", stats_socket, "iokerneld's stats socket (overrides --socket)");
  app.add_flag("--json", raw, "print the daemon's JSON document as it came");
  CLI11_PARSE(app, argc, argv);
  const std::string path = stats_socket.empty() ? socket + ".stats" : stats_socket;
  try {
    const std::string text = fetch(path);
    if (raw) {
      fmt::print("{}", text);
      return 0;
    }
    print_table(json::parse(text));
  } catch (const json::exception& e) {
    fmt::print(stderr, "iokernelctl: {} answered something unexpected: {}\n", path, e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "iokernelctl: {}\n", e.what());
    return 1;
  }
  return 0;
}
