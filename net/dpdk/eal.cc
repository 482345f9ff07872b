// EAL start-up once per process, and registration of non-EAL threads.
#include <pthread.h>
#include <sched.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "slip/net/dpdk.h"
#include "slip_rte.h"

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

}  // namespace

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

  const int argc = static_cast<int>(argv.size() - 1);
  // EAL pins the calling thread to its main lcore's CPU. Threads made after
  // this inherit the caller's CPUs, so a runtime started next would put
  // every kthread on that one CPU; the runtime places its kthreads itself
  // (Config::pin_kthreads), so the caller gets its CPUs back.
  cpu_set_t cpus;
  const bool had_cpus = pthread_getaffinity_np(pthread_self(), sizeof cpus, &cpus) == 0;
  const int used = rte_eal_init(argc, argv.data());
  if (had_cpus) pthread_setaffinity_np(pthread_self(), sizeof cpus, &cpus);
  if (used < 0) {
    const int err = rte_errno;
    throw std::runtime_error("eal_init: rte_eal_init(" + join(args) + ") failed: " + rte_strerror(err) +
                             ": " + eal_fix_hint(err));
  }
  g_args = args;
  g_done = true;
  // EAL parses options only; it moves the words it did not use after them.
  if (used < argc - 1) {
    std::vector<std::string> unused(argv.begin() + used + 1, argv.begin() + argc);
    throw std::runtime_error("eal_init: EAL started, but [" + join(unused) + "] in [" + join(args) +
                             "] are not EAL options and were ignored: remove them (an option's value goes right "
                             "after it; dpdk-testpmd --help lists the EAL options)");
  }
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
