// The IOKernel contract: layout, validation of what a runtime hands over, and
// a ring shared by two processes that map the region at different addresses.
#include <catch2/catch.hpp>

#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "slip/iok/ring.h"

using namespace slip::iok;

namespace {

struct Region {
  std::vector<uint8_t> mem;
  RegionLayout layout;
  explicit Region(uint32_t kthreads = 2, uint32_t slots = 256, uint32_t buf = 2048, uint32_t bufs = 64)
      : mem(region_bytes(kthreads, slots, buf, bufs)) {
    const char* err = nullptr;
    REQUIRE(init_region(mem.data(), mem.size(), kthreads, slots, buf, &layout, &err));
  }
  RegionHdr& hdr() { return *reinterpret_cast<RegionHdr*>(mem.data()); }
  KthreadShm& k(uint32_t i) { return reinterpret_cast<KthreadShm*>(mem.data() + layout.kthreads_off)[i]; }
  const char* validate() {
    RegionLayout l;
    return validate_region(mem.data(), mem.size(), &l);
  }
};

RegisterMsg good_register() {
  RegisterMsg m{};
  m.magic = kMagic;
  m.version_major = kVersionMajor;
  m.version_minor = kVersionMinor;
  m.ip = (198u << 24) | (18u << 16) | 1;
  const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 1};
  std::memcpy(m.mac, mac, 6);
  m.n_kthreads = 4;
  m.guaranteed_cores = 1;
  m.max_cores = 4;
  m.klass = static_cast<uint8_t>(Class::kLatencyCritical);
  m.delay_threshold_us = 10;
  m.region_size = 1 << 20;
  return m;
}

}  // namespace

TEST_CASE("a laid-out region validates to the same geometry", "[iok]") {
  Region r(3, 128, 2048, 100);
  RegionLayout l;
  REQUIRE(validate_region(r.mem.data(), r.mem.size(), &l) == nullptr);
  CHECK(l.n_kthreads == 3);
  CHECK(l.ring_slots == 128);
  CHECK(l.n_bufs == 100);
  CHECK(l.bufs_off % 4096 == 0);
  CHECK(l.bufs_off + uint64_t{l.n_bufs} * l.buf_size == r.mem.size());
  CHECK(r.k(2).completions.slots_off == l.slots_off(2, kRingCompletions));
  CHECK(r.k(2).rx_return.slots_off == l.slots_off(2, kRingRxReturn));
  CHECK(r.k(2).rx_return.slots == 128);
  // The four rings' slots follow each other, the last one ends before the buffers.
  CHECK(l.slots_off(0, kRingRxReturn) == l.slots_off(0, kRingRx) + 3 * 128 * sizeof(PktDesc));
  CHECK(l.slots_off(2, kRingRxReturn) + 128 * sizeof(PktDesc) <= l.bufs_off);
}

TEST_CASE("init_region refuses geometry it cannot lay out", "[iok]") {
  std::vector<uint8_t> mem(1 << 16);
  RegionLayout l;
  const char* err = nullptr;
  CHECK_FALSE(init_region(mem.data(), mem.size(), 0, 64, 2048, &l, &err));
  CHECK_FALSE(init_region(mem.data(), mem.size(), 1, 100, 2048, &l, &err));  // not a power of two
  CHECK_FALSE(init_region(mem.data(), mem.size(), 1, 64, 1000, &l, &err));
  CHECK_FALSE(init_region(mem.data(), 4096, 1, 64, 2048, &l, &err));  // too small
  CHECK(err != nullptr);
}

TEST_CASE("validate_region names what a runtime got wrong", "[iok]") {
  {
    Region r;
    r.hdr().magic = 0;
    CHECK(std::string(r.validate()).find("magic") != std::string::npos);
  }
  {
    Region r;
    r.hdr().version_major = 1;  // a v1 runtime's region
    const std::string e = r.validate();
    CHECK(e.find("version v1") != std::string::npos);
    CHECK(e.find("v" + std::to_string(kVersionMajor)) != std::string::npos);
  }
  {
    Region r;
    r.hdr().region_size += 4096;
    CHECK(r.validate() != nullptr);
  }
  {
    Region r;
    r.hdr().n_kthreads = 65;
    CHECK(r.validate() != nullptr);
  }
  {
    Region r;
    r.k(1).tx.slots_off = 0;  // would alias the header
    CHECK(std::string(r.validate()).find("ring") != std::string::npos);
  }
  {
    Region r;
    r.k(0).rx.slots = 3;
    CHECK(r.validate() != nullptr);
  }
  {
    Region r;
    r.k(1).rx_return.slots_off = r.k(1).rx.slots_off;  // two rings sharing slots
    CHECK(std::string(r.validate()).find("ring") != std::string::npos);
  }
  {
    Region r;
    r.k(0).rx_return.slots = 128;  // the 4th ring must match the others too
    CHECK(r.validate() != nullptr);
  }
  {
    Region r;
    r.hdr().bufs_off = 64;
    CHECK(r.validate() != nullptr);
  }
  {
    Region r;
    r.hdr().n_bufs = 1000;  // past the end
    CHECK(r.validate() != nullptr);
  }
  std::vector<uint8_t> tiny(10);
  RegionLayout l;
  CHECK(validate_region(tiny.data(), tiny.size(), &l) != nullptr);
}

TEST_CASE("validate_register accepts a sound registration and refuses each bad field", "[iok]") {
  RegisterMsg m = good_register();
  CHECK(validate_register(&m, sizeof m) == nullptr);
  CHECK(validate_register(&m, sizeof m - 1) != nullptr);
  auto bad = [](auto mutate) {
    RegisterMsg x = good_register();
    mutate(x);
    return validate_register(&x, sizeof x) != nullptr;
  };
  CHECK(bad([](RegisterMsg& x) { x.magic ^= 1; }));
  CHECK(bad([](RegisterMsg& x) { x.version_major++; }));
  RegisterMsg v1 = good_register();
  v1.version_major = 1;
  const std::string e = validate_register(&v1, sizeof v1);
  CHECK(e.find("v1") != std::string::npos);
  CHECK(e.find("v" + std::to_string(kVersionMajor)) != std::string::npos);
  CHECK(bad([](RegisterMsg& x) { x.n_kthreads = 0; }));
  CHECK(bad([](RegisterMsg& x) { x.n_kthreads = 65; }));
  CHECK(bad([](RegisterMsg& x) { x.max_cores = 5; }));
  CHECK(bad([](RegisterMsg& x) { x.guaranteed_cores = 5; }));
  CHECK(bad([](RegisterMsg& x) { x.klass = 7; }));
  CHECK(bad([](RegisterMsg& x) { x.ip = 0; }));
  CHECK(bad([](RegisterMsg& x) { x.ip = 0xe0000001; }));  // multicast
  CHECK(bad([](RegisterMsg& x) { x.mac[0] = 1; }));
  CHECK(bad([](RegisterMsg& x) { x.delay_threshold_us = 0; }));
  CHECK(bad([](RegisterMsg& x) { x.region_size = 8; }));
  // A newer minor version only adds: accepted.
  CHECK_FALSE(bad([](RegisterMsg& x) { x.version_minor++; }));
}

TEST_CASE("a ring refuses impossible fill levels instead of overrunning", "[iok]") {
  Region r(1, 64);
  KthreadShm& k = r.k(0);
  RingView v(r.mem.data(), &k.rx, r.layout.ring_slots, r.layout.slots_off(0, 0));
  PktDesc d[8]{};
  CHECK(v.push(d, 8) == 8);
  CHECK(v.size() == 8);
  k.rx.tail.store(k.rx.head.load() + 1000);  // a hostile producer
  CHECK(v.pop(d, 8) == 0);
  CHECK(v.size() == 0);
  CHECK(v.push(d, 1) == 0);
}

TEST_CASE("two processes pass a million descriptors in order through a ring", "[iok]") {
  constexpr uint32_t kSlots = 1024;
  constexpr uint64_t kCount = 1'000'000;
  const uint64_t size = region_bytes(1, kSlots, 2048, 16);
  const int fd = memfd_create("slip-iok-test", MFD_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(ftruncate(fd, static_cast<off_t>(size)) == 0);
  auto* a = static_cast<uint8_t*>(mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  REQUIRE(a != MAP_FAILED);
  RegionLayout l;
  const char* err = nullptr;
  REQUIRE(init_region(a, size, 1, kSlots, 2048, &l, &err));
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // A second mapping: the same region at another address, as a peer sees it.
    auto* b = static_cast<uint8_t*>(mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    RegionLayout cl;
    if (b == MAP_FAILED || b == a || validate_region(b, size, &cl) != nullptr) _exit(2);
    auto* k = reinterpret_cast<KthreadShm*>(b + cl.kthreads_off);
    RingView tx(b, &k->rx, cl.ring_slots, cl.slots_off(0, 0));
    PktDesc batch[32];
    for (uint64_t next = 0; next < kCount;) {
      uint32_t n = 0;
      for (; n < 32 && next + n < kCount; n++) batch[n] = PktDesc{cl.bufs_off, 60, 0, 0, 0, next + n};
      const uint32_t pushed = tx.push(batch, n);
      next += pushed;
      if (pushed == 0) sched_yield();  // full: let the consumer run
    }
    _exit(0);
  }
  auto* k = reinterpret_cast<KthreadShm*>(a + l.kthreads_off);
  RingView rx(a, &k->rx, l.ring_slots, l.slots_off(0, 0));
  PktDesc got[32];
  uint64_t expect = 0;
  bool in_order = true;
  while (expect < kCount && in_order) {
    const uint32_t n = rx.pop(got, 32);
    for (uint32_t i = 0; i < n; i++) in_order &= got[i].cookie == expect++ && got[i].buf_off == l.bufs_off;
    if (n == 0) {
      int st;
      if (waitpid(child, &st, WNOHANG) == child) break;  // producer died early
      sched_yield();
    }
  }
  int status = 0;
  waitpid(child, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(in_order);
  CHECK(expect == kCount);
  munmap(a, size);
  close(fd);
}
