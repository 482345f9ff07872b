// The IOKernel's registration socket against sound, garbage and hostile
// runtimes: every refusal names its reason, reaches the runtime, and leaves
// no descriptor behind.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>

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
  explicit Runtime(uint16_t kthreads = 2, uint32_t ip = (198u << 24) | (18u << 16) | 7, bool sealed = true) {
    const uint64_t size = region_bytes(kthreads, 64, 2048, 32);
    region_fd = memfd_create("slip-region", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    REQUIRE(ftruncate(region_fd, static_cast<off_t>(size)) == 0);
    if (sealed) REQUIRE(fcntl(region_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0);
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

// A stand-in for the daemon's rx pool: a sealed memfd, reopened read-only as
// ShmPktPool::readonly_fd() does.
struct FakePool {
  int rw = -1;
  RxPool pool;
  FakePool() {
    pool.size = 64 * 2048;
    pool.buf_size = 2048;
    pool.n_bufs = 64;
    rw = memfd_create("slip-pkt-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    REQUIRE(ftruncate(rw, static_cast<off_t>(pool.size)) == 0);
    REQUIRE(fcntl(rw, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0);
    pool.fd = open(("/proc/self/fd/" + std::to_string(rw)).c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(pool.fd >= 0);
  }
  ~FakePool() {
    close(pool.fd);
    close(rw);
  }
};

struct Outcome {
  int daemon_rc = -1, runtime_rc = -1;
  std::string daemon_reason, runtime_reason;
  Attached attached;
  RxPool runtime_pool;  // what the runtime received
};

// Runs the daemon's side in a thread against `client` on a SEQPACKET pair;
// the daemon offers `pool`.
template <class Client>
Outcome exchange(Client client, std::vector<uint32_t> taken = {}, int timeout_ms = 2000, RxPool pool = {}) {
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
  Outcome o;
  std::thread daemon(
      [&] { o.daemon_rc = accept_registration(sv[0], taken, timeout_ms, pool, &o.attached, &o.daemon_reason); });
  o.runtime_rc = client(sv[1], o.runtime_reason, o.runtime_pool);
  daemon.join();
  close(sv[0]);
  close(sv[1]);
  return o;
}

// The client of a runtime that registers rt with these eventfds.
auto sends(const Runtime& rt, std::vector<int> efds) {
  return [&rt, efds](int c, std::string& why, RxPool& pool) {
    return send_registration(c, rt.msg, rt.region_fd, efds, &pool, &why);
  };
}
auto sends(const Runtime& rt) { return sends(rt, rt.efds); }

// A fake daemon's side: reads the registration, answers with r and fds.
void answer(int conn, const void* r, size_t len, const std::vector<int>& fds) {
  char buf[256];
  (void)!recv(conn, buf, sizeof buf, 0);
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int) * 4)] = {};
  iovec iov{const_cast<void*>(r), len};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  if (!fds.empty()) {
    m.msg_control = ctl;
    m.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  (void)!sendmsg(conn, &m, MSG_NOSIGNAL);
}

// send_registration of rt against a fake daemon that answers with r and fds.
int against_fake_daemon(const Runtime& rt, const void* r, size_t len, const std::vector<int>& fds, RxPool* pool,
                        std::string* why) {
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
  std::thread daemon([&] { answer(sv[0], r, len, fds); });
  const int rc = send_registration(sv[1], rt.msg, rt.region_fd, rt.efds, pool, why);
  daemon.join();
  close(sv[0]);
  close(sv[1]);
  return rc;
}

}  // namespace

TEST_CASE("a sound runtime attaches and the daemon maps its region", "[iok-reg]") {
  const size_t before = open_fds();
  {
    Runtime rt(2);
    Outcome o = exchange(sends(rt));
    REQUIRE(o.daemon_rc == 0);
    CHECK(o.runtime_rc == 0);
    CHECK(o.runtime_reason == "attached");
    CHECK(o.attached.layout.n_kthreads == 2);
    CHECK(o.attached.eventfds.size() == 2);
    auto* hdr = reinterpret_cast<RegionHdr*>(o.attached.region);
    CHECK(hdr->magic == kMagic);
    CHECK(o.runtime_pool.fd == -1);  // a daemon without a port: no rx pool
    CHECK(o.runtime_pool.size == 0);
    detach(o.attached);
  }
  CHECK(open_fds() == before);
}

TEST_CASE("the rx pool fd reaches the runtime read-only and sealed", "[iok-reg]") {
  const size_t before = open_fds();
  {
    Runtime rt(2);
    FakePool fp;
    Outcome o = exchange(sends(rt), {}, 2000, fp.pool);
    REQUIRE(o.daemon_rc == 0);
    REQUIRE(o.runtime_rc == 0);
    const RxPool& p = o.runtime_pool;
    REQUIRE(p.fd >= 0);
    CHECK(p.fd != fp.pool.fd);
    CHECK(p.size == fp.pool.size);
    CHECK(p.buf_size == 2048);
    CHECK(p.n_bufs == 64);
    const int seals = fcntl(p.fd, F_GET_SEALS);
    CHECK((seals & (F_SEAL_SHRINK | F_SEAL_GROW)) == (F_SEAL_SHRINK | F_SEAL_GROW));
    errno = 0;
    CHECK(mmap(nullptr, p.size, PROT_READ | PROT_WRITE, MAP_SHARED, p.fd, 0) == MAP_FAILED);
    CHECK(errno == EACCES);
    CHECK(ftruncate(p.fd, 0) != 0);
    void* r = mmap(nullptr, p.size, PROT_READ, MAP_SHARED, p.fd, 0);
    REQUIRE(r != MAP_FAILED);
    const char mark[] = "frame";
    REQUIRE(pwrite(fp.rw, mark, sizeof mark, 4096) == static_cast<ssize_t>(sizeof mark));  // the "PMD" writes
    CHECK(std::memcmp(static_cast<uint8_t*>(r) + 4096, mark, sizeof mark) == 0);        // the runtime reads it
    munmap(r, p.size);
    close(p.fd);
    detach(o.attached);
  }
  CHECK(open_fds() == before);
}

TEST_CASE("a region not sealed against shrinking is refused", "[iok-reg]") {
  const size_t before = open_fds();
  {
    Runtime rt(2, (198u << 24) | (18u << 16) | 7, false);
    FakePool fp;
    Outcome o = exchange(sends(rt), {}, 2000, fp.pool);
    CHECK(o.daemon_rc == EINVAL);
    CHECK(o.runtime_rc == EINVAL);
    CHECK(o.runtime_reason.find("sealed against shrinking") != std::string::npos);
    CHECK(o.attached.region == nullptr);
    CHECK(o.runtime_pool.fd == -1);  // a refusal carries no pool
  }
  CHECK(open_fds() == before);
}

TEST_CASE("a v1 peer is refused with both versions named", "[iok-reg]") {
  const std::string v1 = "v1", ours = "v" + std::to_string(kVersionMajor);
  {
    Runtime rt;
    rt.msg.version_major = 1;  // a v1 runtime's registration
    Outcome o = exchange(sends(rt));
    CHECK(o.daemon_rc == EINVAL);
    CHECK(o.runtime_rc == EINVAL);
    CHECK(o.runtime_reason.find(v1) != std::string::npos);
    CHECK(o.runtime_reason.find(ours) != std::string::npos);
  }
  {
    // A v1 daemon's reply: 128 bytes, status and reason where v2 has them.
    Runtime rt;
    RegisterReply r{};
    r.magic = kMagic;
    r.version_major = 1;
    r.status = EINVAL;
    std::snprintf(r.reason, sizeof r.reason, "contract major version differs from the IOKernel's");
    RxPool pool;
    std::string why;
    CHECK(against_fake_daemon(rt, &r, offsetof(RegisterReply, pool_size), {}, &pool, &why) == EINVAL);
    CHECK(why.find("IOKernel speaks contract v1, this runtime " + ours) != std::string::npos);
    CHECK(pool.fd == -1);
  }
}

TEST_CASE("a reply whose descriptors do not match its pool is refused and closed", "[iok-reg]") {
  const size_t before = open_fds();
  {
    Runtime rt;
    FakePool fp;
    RegisterReply r{};
    r.magic = kMagic;
    r.version_major = kVersionMajor;
    r.pool_size = fp.pool.size;
    r.buf_size = fp.pool.buf_size;
    r.n_bufs = fp.pool.n_bufs;
    RxPool pool;
    std::string why;
    CHECK(against_fake_daemon(rt, &r, sizeof r, {fp.pool.fd, fp.pool.fd}, &pool, &why) == EPROTO);  // one too many
    CHECK(pool.fd == -1);
    CHECK(against_fake_daemon(rt, &r, sizeof r, {}, &pool, &why) == EPROTO);  // a pool, but no fd
    r.pool_size += 4096;  // not the fd's size
    CHECK(against_fake_daemon(rt, &r, sizeof r, {fp.pool.fd}, &pool, &why) == EPROTO);
    CHECK(pool.fd == -1);
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
    Outcome o = exchange(sends(rt));
    CHECK(refused(o));
    CHECK(o.runtime_reason.find("version") != std::string::npos);
  }
  {
    Runtime rt;
    Outcome o = exchange(sends(rt), {rt.msg.ip});
    CHECK(refused(o));
    CHECK(o.daemon_rc == EADDRINUSE);
  }
  {
    Runtime rt;
    std::vector<int> one{rt.efds[0]};  // says 2 kthreads, sends 1 eventfd
    Outcome o = exchange(sends(rt, one));
    CHECK(refused(o));
  }
  {
    Runtime rt;
    int p[2];
    REQUIRE(pipe(p) == 0);
    std::vector<int> fds{rt.efds[0], p[0]};  // a pipe where an eventfd belongs
    Outcome o = exchange(sends(rt, fds));
    CHECK(refused(o));
    CHECK(o.runtime_reason.find("eventfd") != std::string::npos);
    close(p[0]);
    close(p[1]);
  }
  {
    Runtime rt;
    rt.msg.region_size += 4096;  // not the file's size
    Outcome o = exchange(sends(rt));
    CHECK(refused(o));
  }
  {
    Runtime rt;
    // A region whose header was scribbled on after layout.
    void* p = mmap(nullptr, rt.msg.region_size, PROT_READ | PROT_WRITE, MAP_SHARED, rt.region_fd, 0);
    reinterpret_cast<RegionHdr*>(p)->bufs_off = 8;
    munmap(p, rt.msg.region_size);
    Outcome o = exchange(sends(rt));
    CHECK(refused(o));
  }
  {
    // Garbage bytes, no descriptors.
    Outcome o = exchange([](int c, std::string&, RxPool&) {
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
  Outcome silent = exchange([](int, std::string&, RxPool&) { return 0; }, {}, 100);
  CHECK(silent.daemon_rc == ETIMEDOUT);
  Outcome gone = exchange([](int c, std::string&, RxPool&) {
    shutdown(c, SHUT_WR);
    return 0;
  });
  CHECK(gone.daemon_rc == EPROTO);
  CHECK(gone.daemon_reason.find("closed") != std::string::npos);
}
