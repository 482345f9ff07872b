// EAL start-up once per process, and registration of non-EAL threads.
#include <dirent.h>
#include <sched.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "net/dpdk/rte.h"
#include "slip/net/dpdk.h"

namespace slip::net {
namespace {

std::mutex g_mu;
bool g_done = false;
std::vector<std::string> g_args;       // arguments of the successful init
std::vector<std::string> g_argv_keep;  // EAL may keep pointers into argv

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& a : v) s += (s.empty() ? "" : " ") + a;
  return s;
}

bool has_arg(const std::vector<std::string>& args, const std::string& a) {
  for (const auto& x : args)
    if (x == a) return true;
  return false;
}

// What usually fixes an rte_eal_init failure with this errno.
std::string eal_fix_hint(int err) {
  switch (err) {
    case EACCES:
      return "permission denied: run as root, or give this user /dev/hugepages and /var/run/dpdk";
    case ENOMEM:
      return "not enough memory: lower -m, or add hugepages (tools/setup)";
    case EALREADY:
      return "EAL was started outside slip::net::eal_init: start it only through eal_init";
    case EINVAL:
      return "bad EAL arguments: check them (dpdk-testpmd --help lists the EAL options)";
    case ENODEV:
      return "no usable device or driver: check --vdev/-a and that the PMD plugin is installed";
    case EBUSY:
      return "another DPDK process uses this --file-prefix: pass a unique --file-prefix";
    default:
      return "see the EAL log above; on machines without hugepages pass --no-huge -m 256 "
             "and a unique --file-prefix";
  }
}

// The first CPU this process may run on, for -l in test arguments.
int first_allowed_cpu() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
  for (int c = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, &set)) return c;
  return 0;
}

uint64_t read_u64_file(const std::string& path) noexcept {
  std::ifstream f(path);
  uint64_t v = 0;
  if (!(f >> v)) return 0;
  return v;
}

}  // namespace

uint64_t free_hugepages() noexcept {
  // sysfs lists every page size; /proc/meminfo only the default one.
  const char* dir = "/sys/kernel/mm/hugepages";
  if (DIR* d = opendir(dir)) {
    uint64_t total = 0;
    while (dirent* e = readdir(d)) {
      if (std::string(e->d_name).rfind("hugepages-", 0) == 0)
        total += read_u64_file(std::string(dir) + "/" + e->d_name + "/free_hugepages");
    }
    closedir(d);
    return total;
  }
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t v = 0;
  while (meminfo >> key) {
    if (key == "HugePages_Free:" && meminfo >> v) return v;
    meminfo.ignore(256, '\n');
  }
  return 0;
}

std::vector<std::string> eal_args_for_test(const std::string& vdev, const std::string& prefix) {
  std::vector<std::string> a = {"--no-huge", "-m", "256", "--no-pci", "--no-telemetry", "--no-shconf",
                                "-l", std::to_string(first_allowed_cpu()),
                                "--file-prefix", prefix, "--log-level=warning"};
  if (!vdev.empty()) {
    a.push_back("--vdev");
    a.push_back(vdev);
  }
  return a;
}

bool eal_initialized() noexcept {
  std::lock_guard lk(g_mu);
  return g_done;
}

void eal_init(const std::vector<std::string>& args) {
  std::lock_guard lk(g_mu);
  if (g_done) {
    if (args == g_args) return;
    throw std::runtime_error("eal_init: EAL is already running in this process with [" + join(g_args) +
                             "], not [" + join(args) +
                             "]: EAL starts once per process, so pass the same arguments or use another process");
  }
  if (!has_arg(args, "--no-huge") && free_hugepages() == 0)
    throw std::runtime_error("eal_init: no hugepages: run tools/setup or pass --no-huge (with -m MB)");

  g_argv_keep.clear();
  g_argv_keep.push_back("slip");
  g_argv_keep.insert(g_argv_keep.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : g_argv_keep) argv.push_back(s.data());
  argv.push_back(nullptr);

  if (rte_eal_init(static_cast<int>(argv.size() - 1), argv.data()) < 0) {
    const int err = rte_errno;
    throw std::runtime_error("eal_init: rte_eal_init(" + join(args) + ") failed: " + rte_strerror(err) +
                             ": " + eal_fix_hint(err));
  }
  g_args = args;
  g_done = true;
}

void register_thread() {
  if (!eal_initialized())
    throw std::runtime_error("register_thread: EAL is not running: call slip::net::eal_init first");
  if (rte_lcore_id() != LCORE_ID_ANY) return;
  if (rte_thread_register() != 0) {
    const int err = rte_errno;
    throw std::runtime_error(std::string("register_thread: rte_thread_register failed: ") + rte_strerror(err) +
                             ": all " + std::to_string(RTE_MAX_LCORE) +
                             " lcore ids are taken; call unregister_thread when threads exit, or use fewer");
  }
}

void unregister_thread() noexcept {
  if (!eal_initialized() || rte_lcore_id() == LCORE_ID_ANY) return;
  // The main lcore and EAL workers are not ours to give back.
  if (rte_eal_lcore_role(rte_lcore_id()) != ROLE_NON_EAL) return;
  rte_thread_unregister();
}

}  // namespace slip::net
