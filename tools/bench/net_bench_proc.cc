// The driver's side of slip-bench-net's child processes: fork/exec of this
// binary pinned to one CPU, a status pipe for the one line each child reports,
// and bounded waits. A child's stdout and stderr (DPDK logs on stdout) go to a
// log file whose tail is shown when the child fails.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/core.h>

#include "net_bench.h"

namespace slip::bench {
namespace {

using Json = nlohmann::ordered_json;
using namespace std::chrono_literals;

// Waits up to `seconds` for pid to exit; true once it is reaped.
bool reap_within(pid_t pid, double seconds, int* status) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  for (;;) {
    const pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(5ms);
  }
}

std::string describe_status(int st) {
  if (WIFEXITED(st)) return fmt::format("exit status {}", WEXITSTATUS(st));
  if (WIFSIGNALED(st)) return fmt::format("killed by signal {} ({})", WTERMSIG(st), strsignal(WTERMSIG(st)));
  return "unknown status";
}

}  // namespace

bool Procs::init() {
  std::error_code ec;
  exe_ = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec) {
    fmt::print(stderr, "slip-bench-net: cannot find this binary (/proc/self/exe): {}\n", ec.message());
    return false;
  }
  dir_ = fmt::format("/tmp/slip-bench-net-{}", getpid());
  std::filesystem::create_directories(dir_, ec);
  if (ec) {
    fmt::print(stderr, "slip-bench-net: cannot create {}: {}\n", dir_, ec.message());
    return false;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int c = 0; c < CPU_SETSIZE && cpus_.size() < 2; c++)
      if (CPU_ISSET(c, &set)) cpus_.push_back(c);
  if (cpus_.empty()) cpus_.push_back(0);
  if (cpus_.size() < 2)
    fmt::print(stderr, "slip-bench-net: warning: one CPU only; server and client share it, and busy-polling "
                       "makes every round trip wait for a time slice\n");
  return true;
}

Procs::~Procs() {
  std::error_code ec;
  if (!dir_.empty() && !keep_) std::filesystem::remove_all(dir_, ec);
}

Child Procs::spawn(ChildArgs a, unsigned cpu_slot, const std::string& name) const {
  Child c;
  c.name = name;
  c.log_path = dir_ + "/" + name + ".log";
  c.file_prefix = a.file_prefix;
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    fmt::print(stderr, "slip-bench-net: pipe for {}: {}\n", name, strerror(errno));
    return c;
  }
  a.status_fd = p[1];
  // Everything the child needs is built before fork: only async-signal-safe calls after it.
  std::vector<std::string> args = {exe_, "--role", a.role, "--stack", a.stack, "--ip", a.ip,
                                   "--status-fd", std::to_string(a.status_fd)};
  auto opt = [&](const char* flag, const std::string& v) {
    if (!v.empty()) args.insert(args.end(), {flag, v});
  };
  opt("--case", a.case_name);
  opt("--vdev", a.vdev);
  opt("--file-prefix", a.file_prefix);
  opt("--peer", a.peer);
  opt("--samples", std::to_string(a.samples));
  opt("--warmup", std::to_string(a.warmup));
  opt("--seconds", fmt::format("{}", a.bulk_seconds));
  opt("--bulk-reps", std::to_string(a.bulk_reps));
  opt("--window", fmt::format("{}", a.window_seconds));
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  cpu_set_t cpu;
  CPU_ZERO(&cpu);
  if (cpu_slot == kAllCpus)
    for (int c : cpus_) CPU_SET(c, &cpu);
  else
    CPU_SET(cpus_[cpu_slot % cpus_.size()], &cpu);
  const pid_t parent = getpid();

  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the driver died before prctl took hold
    const int log = open(c.log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log >= 0) {
      dup2(log, 1);
      dup2(log, 2);
    }
    fcntl(p[1], F_SETFD, 0);  // the status pipe is the one fd that survives exec
    sched_setaffinity(0, sizeof cpu, &cpu);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(p[1]);
  if (pid < 0) {
    fmt::print(stderr, "slip-bench-net: fork for {}: {}\n", name, strerror(errno));
    close(p[0]);
    return c;
  }
  c.pid = pid;
  c.fd = p[0];
  return c;
}

Json Procs::await_line(Child& c, double seconds) const {
  if (c.pid < 0) return Json{{"error", c.name + " could not be started"}};
  std::string buf;
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  for (;;) {
    if (const auto nl = buf.find('\n'); nl != std::string::npos) {
      Json j = Json::parse(buf.substr(0, nl), nullptr, false);
      if (j.is_discarded() || !j.is_object()) return Json{{"error", c.name + " sent a malformed line: " + buf}};
      return j;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill(c.pid, SIGKILL);
      return Json{{"error", fmt::format("{} gave no result within {:.0f} s; killed it", c.name, seconds)}};
    }
    pollfd pfd{c.fd, POLLIN, 0};
    const int r = poll(&pfd, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char tmp[4096];
    const ssize_t n = read(c.fd, tmp, sizeof tmp);
    if (n > 0) {
      buf.append(tmp, static_cast<size_t>(n));
      continue;
    }
    // EOF without a line: the child is gone (or about to be); say how it ended.
    int st = 0;
    const bool reaped = reap_within(c.pid, 2.0, &st);
    if (reaped) c.pid = -1;
    return Json{{"error", fmt::format("{} ended without a result ({})", c.name,
                                      reaped ? describe_status(st) : "status unknown")}};
  }
}

void Procs::stop(Child& c) const {
  if (c.pid > 0) {
    int st = 0;
    kill(c.pid, SIGTERM);
    if (!reap_within(c.pid, 3.0, &st)) {
      kill(c.pid, SIGKILL);
      reap_within(c.pid, 3.0, &st);
    }
    c.pid = -1;
  }
  if (c.fd >= 0) close(c.fd);
  c.fd = -1;
  // EAL's runtime directory: children _exit, so EAL never removes it itself.
  if (!c.file_prefix.empty()) {
    std::error_code ec;
    std::filesystem::remove_all("/var/run/dpdk/" + c.file_prefix, ec);
  }
}

std::string Procs::log_tail(const Child& c) const {
  std::ifstream in(c.log_path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(std::move(l));
  const size_t from = lines.size() > 15 ? lines.size() - 15 : 0;
  std::string out = fmt::format("  --- {} ({}), last {} lines ---\n", c.name, c.log_path, lines.size() - from);
  for (size_t i = from; i < lines.size(); i++) out += "  " + lines[i] + "\n";
  return out;
}

}  // namespace slip::bench
