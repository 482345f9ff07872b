// A test runtime for run_iokerneld.sh: registers with iokerneld over its
// control socket (or misbehaves on purpose) and checks the answer.
//   iok_test_client --socket PATH [--ip A.B.C.D] [--kthreads N] [--version-major V]
//                   [--garbage | --silent] [--hold] [--expect OK|EPERM|EINVAL|...]
// Exits 0 when the daemon's status is the expected one (default OK), 1 when
// not, 2 for bad arguments. --hold stays attached (prints "attached") until
// killed or until the daemon hangs up (prints "daemon hung up", exits 0).
#include <arpa/inet.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
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
  std::string socket, ip = "10.9.0.1", expect = "OK";
  int kthreads = 2, version_major = kVersionMajor;
  bool garbage = false, silent = false, hold = false;
};

const char* name_of(int e) {
  switch (e) {
    case 0: return "OK";
    case EPERM: return "EPERM";
    case EINVAL: return "EINVAL";
    case EADDRINUSE: return "EADDRINUSE";
    case EPROTO: return "EPROTO";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EAGAIN: return "EAGAIN";
    case EPIPE: return "EPIPE";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    default: return "other";
  }
}

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
    else return false;
  }
  return !a->socket.empty() && a->kthreads >= 1 && a->kthreads <= 64;
}

int connect_to(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  if (connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    const int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
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

// A sound registration of args' shape, sent on fd.
int register_runtime(int fd, const Args& args, std::string* reason) {
  const uint32_t n = static_cast<uint32_t>(args.kthreads);
  const uint64_t size = region_bytes(n, 64, 2048, 32);
  const int region = memfd_create("iok-test-region", MFD_CLOEXEC);
  if (region < 0 || ftruncate(region, static_cast<off_t>(size)) != 0) return errno;
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
  const int rc = send_registration(fd, m, region, efds, reason);
  close(region);
  for (int e : efds) close(e);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!parse(argc, argv, &args)) {
    std::fprintf(stderr, "usage: iok_test_client --socket PATH [--ip IP] [--kthreads N] [--version-major V] "
                         "[--garbage|--silent] [--hold] [--expect STATUS]\n");
    return 2;
  }
  const int fd = connect_to(args.socket);
  std::string reason;
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
    status = register_runtime(fd, args, &reason);
  }
  std::printf("iok_test_client: pid=%d ip=%s status=%s reason=%s\n", getpid(), args.ip.c_str(), name_of(status),
              reason.c_str());
  std::fflush(stdout);
  if (name_of(status) != args.expect) return 1;
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
