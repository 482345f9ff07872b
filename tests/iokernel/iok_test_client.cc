// A test runtime for run_iokerneld.sh: registers with iokerneld over its
// control socket (or misbehaves on purpose) and checks the answer.
//   iok_test_client --socket PATH [--ip A.B.C.D] [--kthreads N] [--version-major V]
//                   [--garbage | --silent | --unsealed] [--hold] [--expect OK|EPERM|EINVAL|...]
//                   [--pool yes|no]
// Exits 0 when the daemon's status is the expected one (default OK) and, with
// --pool, the rx pool came (read-only, sealed) or did not; 1 when not, 2 for
// bad arguments. --unsealed registers a region not sealed against
// shrinking. --hold stays attached (prints "attached") until killed or until
// the daemon hangs up (prints "daemon hung up", exits 0).
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "iokernel/registration.h"

using namespace slip::iok;

namespace {

struct Args {
  std::string socket, ip = "10.9.0.1", expect = "OK", pool;
  int kthreads = 2, version_major = kVersionMajor;
  bool garbage = false, silent = false, hold = false, unsealed = false;
};


bool parse(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; i++) {
    const std::string f = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (f == "--socket") a->socket = value();
    else if (f == "--ip") a->ip = value();
    else if (f == "--kthreads") a->kthreads = std::atoi(value().c_str());
    else if (f == "--version-major") a->version_major = std::atoi(value().c_str());
    else if (f == "--expect") a->expect = value();
    else if (f == "--garbage") a->garbage = true;
    else if (f == "--silent") a->silent = true;
    else if (f == "--hold") a->hold = true;
    else if (f == "--unsealed") a->unsealed = true;
    else if (f == "--pool") a->pool = value();
    else return false;
  }
  return !a->socket.empty() && a->kthreads >= 1 && a->kthreads <= 64 &&
         (a->pool.empty() || a->pool == "yes" || a->pool == "no");
}

// Waits up to 5 s for the daemon's RegisterReply.
int read_reply(int fd, std::string* reason) {
  pollfd p{fd, POLLIN, 0};
  RegisterReply r{};
  if (poll(&p, 1, 5000) != 1 || recv(fd, &r, sizeof r, 0) != static_cast<ssize_t>(sizeof r) || r.magic != kMagic) {
    *reason = "no reply";
    return EPROTO;
  }
  r.reason[sizeof r.reason - 1] = '\0';
  *reason = r.reason;
  return r.status;
}

// What a runtime checks of the rx pool it got: its size, sealed against
// resizing, mappable for reading and not for writing. Empty when sound.
std::string check_pool(const RxPool& p) {
  struct stat st{};
  if (fstat(p.fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != p.size) return "pool fd size differs";
  const int seals = fcntl(p.fd, F_GET_SEALS);
  if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW)) return "pool not sealed";
  void* w = mmap(nullptr, p.size, PROT_READ | PROT_WRITE, MAP_SHARED, p.fd, 0);
  if (w != MAP_FAILED) {
    munmap(w, p.size);
    return "pool mappable for writing";
  }
  void* r = mmap(nullptr, p.size, PROT_READ, MAP_SHARED, p.fd, 0);
  if (r == MAP_FAILED) return std::string("pool mmap: ") + std::strerror(errno);
  munmap(r, p.size);
  return "";
}

// A registration of args' shape (sound unless --version-major or --unsealed
// say otherwise), sent on fd; *pool gets the daemon's rx pool.
int register_runtime(int fd, const Args& args, RxPool* pool, std::string* reason) {
  const uint32_t n = static_cast<uint32_t>(args.kthreads);
  const uint64_t size = region_bytes(n, 64, 2048, 32);
  const int region = memfd_create("iok-test-region", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (region < 0 || ftruncate(region, static_cast<off_t>(size)) != 0) return errno;
  if (!args.unsealed && fcntl(region, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) return errno;
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, region, 0);
  if (p == MAP_FAILED) return errno;
  RegionLayout l;
  const char* err = nullptr;
  if (!init_region(p, size, n, 64, 2048, &l, &err)) {
    *reason = err;
    return EINVAL;
  }
  munmap(p, size);
  std::vector<int> efds;
  for (uint32_t i = 0; i < n; i++) efds.push_back(eventfd(0, EFD_CLOEXEC));
  RegisterMsg m{};
  m.magic = kMagic;
  m.version_major = static_cast<uint16_t>(args.version_major);
  m.version_minor = kVersionMinor;
  in_addr ip{};
  inet_pton(AF_INET, args.ip.c_str(), &ip);
  m.ip = ntohl(ip.s_addr);
  const uint8_t mac[6] = {0x02, 0, 0, 0, 0, static_cast<uint8_t>(m.ip & 0xff)};
  std::memcpy(m.mac, mac, sizeof mac);
  m.n_kthreads = static_cast<uint16_t>(n);
  m.guaranteed_cores = 1;
  m.max_cores = static_cast<uint16_t>(n);
  m.klass = static_cast<uint8_t>(Class::kLatencyCritical);
  m.delay_threshold_us = 10;
  m.region_size = size;
  const int rc = send_registration(fd, m, region, efds, pool, reason);
  close(region);
  for (int e : efds) close(e);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!parse(argc, argv, &args)) {
    std::fprintf(stderr, "usage: iok_test_client --socket PATH [--ip IP] [--kthreads N] [--version-major V] "
                         "[--garbage|--silent|--unsealed] [--hold] [--expect STATUS] [--pool yes|no]\n");
    return 2;
  }
  const int fd = connect_control(args.socket);
  std::string reason;
  RxPool pool;
  int status;
  if (fd < 0) {
    status = errno;
    reason = std::string("connect: ") + std::strerror(errno);
  } else if (args.garbage) {
    const char http[] = "GET / HTTP/1.1\r\nHost: iokernel\r\n\r\n";
    (void)!send(fd, http, sizeof http - 1, MSG_NOSIGNAL);
    status = read_reply(fd, &reason);
  } else if (args.silent) {
    status = read_reply(fd, &reason);
  } else {
    status = register_runtime(fd, args, &pool, &reason);
  }
  std::printf("iok_test_client: pid=%d ip=%s status=%s reason=%s pool=%llu bytes/%u bufs of %u\n", getpid(),
              args.ip.c_str(), errno_name(status).c_str(), reason.c_str(), static_cast<unsigned long long>(pool.size),
              pool.n_bufs, pool.buf_size);
  std::fflush(stdout);
  if (errno_name(status) != args.expect) return 1;
  if (args.pool == "no" && pool.fd >= 0) return 1;
  if (args.pool == "yes") {
    const std::string bad = pool.fd >= 0 ? check_pool(pool) : "no rx pool came with the reply";
    if (!bad.empty()) {
      std::printf("iok_test_client: %s\n", bad.c_str());
      return 1;
    }
  }
  if (pool.fd >= 0) close(pool.fd);
  if (args.hold && status == 0) {
    std::printf("attached\n");
    std::fflush(stdout);
    pollfd p{fd, POLLRDHUP, 0};  // until the daemon hangs up (its shutdown) or we are killed
    while (poll(&p, 1, -1) != 1) {
    }
    std::printf("daemon hung up\n");
  }
  return 0;
}
