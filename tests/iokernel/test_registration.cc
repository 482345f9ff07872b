// The IOKernel's registration socket against sound, garbage and hostile
// runtimes: every refusal names its reason, reaches the runtime, and leaves
// no descriptor behind.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "iokernel/registration.h"

using namespace slip::iok;

namespace {

size_t open_fds() {
  size_t n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d)) n++;
    closedir(d);
  }
  return n;
}

struct Runtime {
  RegisterMsg msg{};
  int region_fd = -1;
  std::vector<int> efds;
  explicit Runtime(uint16_t kthreads = 2, uint32_t ip = (198u << 24) | (18u << 16) | 7) {
    const uint64_t size = region_bytes(kthreads, 64, 2048, 32);
    region_fd = memfd_create("slip-region", MFD_CLOEXEC);
    REQUIRE(ftruncate(region_fd, static_cast<off_t>(size)) == 0);
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, region_fd, 0);
    RegionLayout l;
    const char* err = nullptr;
    REQUIRE(init_region(p, size, kthreads, 64, 2048, &l, &err));
    munmap(p, size);
    for (int i = 0; i < kthreads; i++) efds.push_back(eventfd(0, EFD_CLOEXEC));
    msg.magic = kMagic;
    msg.version_major = kVersionMajor;
    msg.ip = ip;
    msg.mac[0] = 0x02;
    msg.mac[5] = 7;
    msg.n_kthreads = kthreads;
    msg.guaranteed_cores = 1;
    msg.max_cores = kthreads;
    msg.delay_threshold_us = 10;
    msg.region_size = size;
  }
  ~Runtime() {
    close(region_fd);
    for (int fd : efds) close(fd);
  }
};

struct Outcome {
  int daemon_rc = -1, runtime_rc = -1;
  std::string daemon_reason, runtime_reason;
  Attached attached;
};

// Runs the daemon's side in a thread against `client` on a SEQPACKET pair.
template <class Client>
Outcome exchange(Client client, std::vector<uint32_t> taken = {}, int timeout_ms = 2000) {
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
  Outcome o;
  std::thread daemon([&] { o.daemon_rc = accept_registration(sv[0], taken, timeout_ms, &o.attached, &o.daemon_reason); });
  o.runtime_rc = client(sv[1], o.runtime_reason);
  daemon.join();
  close(sv[0]);
  close(sv[1]);
  return o;
}

}  // namespace

TEST_CASE("a sound runtime attaches and the daemon maps its region", "[iok-reg]") {
  const size_t before = open_fds();
  {
    Runtime rt(2);
    Outcome o = exchange([&](int c, std::string& why) { return send_registration(c, rt.msg, rt.region_fd, rt.efds, &why); });
    REQUIRE(o.daemon_rc == 0);
    CHECK(o.runtime_rc == 0);
    CHECK(o.runtime_reason == "attached");
    CHECK(o.attached.layout.n_kthreads == 2);
    CHECK(o.attached.eventfds.size() == 2);
    auto* hdr = reinterpret_cast<RegionHdr*>(o.attached.region);
    CHECK(hdr->magic == kMagic);
    detach(o.attached);
  }
  CHECK(open_fds() == before);
}

TEST_CASE("bad registrations are refused with a reason and leak nothing", "[iok-reg]") {
  const size_t before = open_fds();
  auto refused = [](const Outcome& o) {
    return o.daemon_rc != 0 && o.runtime_rc == o.daemon_rc && !o.runtime_reason.empty() &&
           o.attached.region == nullptr;
  };
  {
    Runtime rt;
    rt.msg.version_major++;
    Outcome o = exchange([&](int c, std::string& why) { return send_registration(c, rt.msg, rt.region_fd, rt.efds, &why); });
    CHECK(refused(o));
    CHECK(o.runtime_reason.find("version") != std::string::npos);
  }
  {
    Runtime rt;
    Outcome o = exchange([&](int c, std::string& why) { return send_registration(c, rt.msg, rt.region_fd, rt.efds, &why); },
                         {rt.msg.ip});
    CHECK(refused(o));
    CHECK(o.daemon_rc == EADDRINUSE);
  }
  {
    Runtime rt;
    std::vector<int> one{rt.efds[0]};  // says 2 kthreads, sends 1 eventfd
    Outcome o = exchange([&](int c, std::string& why) { return send_registration(c, rt.msg, rt.region_fd, one, &why); });
    CHECK(refused(o));
  }
  {
    Runtime rt;
    int p[2];
    REQUIRE(pipe(p) == 0);
    std::vector<int> fds{rt.efds[0], p[0]};  // a pipe where an eventfd belongs
    Outcome o = exchange([&](int c, std::string& why) { return send_registration(c, rt.msg, rt.region_fd, fds, &why); });
    CHECK(refused(o));
    CHECK(o.runtime_reason.find("eventfd") != std::string::npos);
    close(p[0]);
    close(p[1]);
  }
  {
    Runtime rt;
    rt.msg.region_size += 4096;  // not the file's size
    Outcome o = exchange([&](int c, std::string& why) { return send_registration(c, rt.msg, rt.region_fd, rt.efds, &why); });
    CHECK(refused(o));
  }
  {
    Runtime rt;
    // A region whose header was scribbled on after layout.
    void* p = mmap(nullptr, rt.msg.region_size, PROT_READ | PROT_WRITE, MAP_SHARED, rt.region_fd, 0);
    reinterpret_cast<RegionHdr*>(p)->bufs_off = 8;
    munmap(p, rt.msg.region_size);
    Outcome o = exchange([&](int c, std::string& why) { return send_registration(c, rt.msg, rt.region_fd, rt.efds, &why); });
    CHECK(refused(o));
  }
  {
    // Garbage bytes, no descriptors.
    Outcome o = exchange([](int c, std::string&) {
      const char junk[] = "GET / HTTP/1.1\r\n\r\n";
      (void)!send(c, junk, sizeof junk, 0);
      RegisterReply r{};
      return recv(c, &r, sizeof r, 0) == static_cast<ssize_t>(sizeof r) ? r.status : -1;
    });
    CHECK(o.daemon_rc == EINVAL);
    CHECK(o.runtime_rc == EINVAL);
  }
  CHECK(open_fds() == before);
}

TEST_CASE("a silent or vanishing runtime does not hang the daemon", "[iok-reg]") {
  Outcome silent = exchange([](int, std::string&) { return 0; }, {}, 100);
  CHECK(silent.daemon_rc == ETIMEDOUT);
  Outcome gone = exchange([](int c, std::string&) {
    shutdown(c, SHUT_WR);
    return 0;
  });
  CHECK(gone.daemon_rc == EPROTO);
  CHECK(gone.daemon_reason.find("closed") != std::string::npos);
}
