// ShmPktPool end to end: frames received into the shared pool (over net_ring,
// net_memif and net_tap) are read by a forked child that maps the memfd
// afresh, at another address, using only the fd and the descriptors it gets
// over a Unix socket, as a runtime would; then the parent frees the mbufs and
// checks the pool is whole again. EAL runs once for the whole process
// (--no-huge, no root needed); the tap case needs root for its own network
// namespace and says so when it cannot run.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "iokernel/shm_pool.h"
#include "slip/net/dpdk.h"
#include "slip_rte.h"

namespace slip::iok {
namespace {

using Placement = ShmPktPoolConfig::Placement;
constexpr uint16_t kEtherType = 0x88b5;  // IEEE local experimental
constexpr uint32_t kFrames = 64;
constexpr uint32_t kPoolBufs = 2047;

std::string g_runtime_dir;
void remove_runtime_dir() {
  std::error_code ec;
  if (!g_runtime_dir.empty()) std::filesystem::remove_all(g_runtime_dir, ec);
}

struct Env {
  bool netns = false;     // this process has a network namespace of its own (for tap)
  std::string netns_why;  // why not
};

// EAL for the process: no hugepages, a unique prefix removed at exit. As
// root the process first moves into a new network namespace, so the tap
// device it makes vanishes with it.
Env& env() {
  static Env e = [] {
    Env x;
    if (geteuid() != 0) x.netns_why = "not root (a tap device needs CAP_NET_ADMIN)";
    else if (unshare(CLONE_NEWNET) != 0) x.netns_why = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
    else x.netns = true;
    auto args = net::eal_args_for_test("", "slip-iokshm-" + std::to_string(getpid()));
    // For manual experiments: EAL on hugepages (IOVA as PA when root without VFIO).
    if (const char* h = std::getenv("SLIP_IOKSHM_EAL_HUGE"); h && *h == '1')
      args = {"--in-memory", "--no-pci", "--no-telemetry", "-l", args[7], "--log-level=warning"};
    net::eal_init(args);
    g_runtime_dir = rte_eal_get_runtime_dir();
    std::atexit(remove_runtime_dir);
    std::printf("EAL IOVA mode: %s\n", rte_eal_iova_mode() == RTE_IOVA_VA ? "VA" : "PA");
    return x;
  }();
  return e;
}

size_t frame_len(uint8_t tag, uint32_t i) { return 60 + (i * 37 + tag * 11u) % 1455; }

// Frame i of scenario `tag`: broadcast, EtherType 0x88b5, tag, seq, pattern.
void fill_frame(uint8_t* p, uint8_t tag, uint32_t i) {
  const size_t n = frame_len(tag, i);
  std::memset(p, 0xff, 6);
  const uint8_t src[6] = {0x02, 0, 0, 0, 0, tag};
  std::memcpy(p + 6, src, 6);
  p[12] = kEtherType >> 8;
  p[13] = kEtherType & 0xff;
  p[14] = tag;
  p[15] = static_cast<uint8_t>(i >> 8);
  p[16] = static_cast<uint8_t>(i);
  for (size_t k = 17; k < n; k++) p[k] = static_cast<uint8_t>(i * 7 + k + tag);
}

bool is_test_frame(const rte_mbuf* m, uint8_t tag) {
  const auto* p = rte_pktmbuf_mtod(m, const uint8_t*);
  return m->data_len >= 17 && p[12] == (kEtherType >> 8) && p[13] == (kEtherType & 0xff) && p[14] == tag;
}

// ---- the child: a stand-in runtime ---------------------------------------------

struct Handoff {
  uint64_t region_size, parent_base;
  uint32_t n, tag, writable;
};

bool read_all(int s, void* p, size_t n) {
  auto* b = static_cast<uint8_t*>(p);
  while (n) {
    const ssize_t r = read(s, b, n);
    if (r <= 0) return false;
    b += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

const char* child_rc_text(int rc) {
  switch (rc) {
    case 0: return "ok";
    case 10: return "child: no handoff or fd on the socket";
    case 11: return "child: mmap of the received fd failed";
    case 12: return "child: a writable MAP_SHARED mapping of the read-only fd was allowed";
    case 13: return "child: ftruncate of the sealed memfd was allowed";
    case 14: return "child: a descriptor points outside the region";
    case 15: return "child: a frame's length differs";
    case 16: return "child: a frame's bytes differ";
    case 17: return "child: the pool fd reopened O_RDWR via /proc could be written";
    default: return "child: died or unknown code";
  }
}

// Maps the fd it receives (never the inherited mapping, which it unmaps) and
// checks every frame by offset. Async-signal-safe calls only: we forked a
// threaded process.
int child_main(int s) {
  Handoff h{};
  char ctl[CMSG_SPACE(sizeof(int))] = {};
  iovec iov{&h, sizeof(h)};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = ctl;
  mh.msg_controllen = sizeof(ctl);
  if (recvmsg(s, &mh, MSG_WAITALL) != static_cast<ssize_t>(sizeof(h))) return 10;
  cmsghdr* c = CMSG_FIRSTHDR(&mh);
  if (!c || c->cmsg_type != SCM_RIGHTS) return 10;
  int fd;
  std::memcpy(&fd, CMSG_DATA(c), sizeof(fd));
  static PktDesc descs[kFrames];
  if (h.n > kFrames || !read_all(s, descs, h.n * sizeof(PktDesc))) return 10;

  // Mapped before the inherited one goes, so the address must differ.
  void* a = mmap(nullptr, h.region_size, PROT_READ, MAP_SHARED, fd, 0);
  if (a == MAP_FAILED) return 11;
  munmap(reinterpret_cast<void*>(h.parent_base), h.region_size);
  const auto* base = static_cast<const uint8_t*>(a);
  if (!h.writable) {
    void* w = mmap(nullptr, h.region_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (w != MAP_FAILED || errno != EACCES) return 12;
    // Reopened O_RDWR through /proc (root may): the write seal still refuses.
    char path[32] = "/proc/self/fd/";
    char digits[12];
    int nd = 0;
    for (int v = fd; nd == 0 || v > 0; v /= 10) digits[nd++] = static_cast<char>('0' + v % 10);
    for (int i = 0; i < nd; i++) path[14 + i] = digits[nd - 1 - i];
    if (const int rw = open(path, O_RDWR); rw >= 0) {
      void* w2 = mmap(nullptr, h.region_size, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
      const char byte = 0;
      if (w2 != MAP_FAILED || pwrite(rw, &byte, 1, 0) == 1) return 17;
      close(rw);
    }
  } else if (ftruncate(fd, 0) == 0 || errno != EPERM) {
    return 13;
  }
  for (uint32_t k = 0; k < h.n; k++) {
    const PktDesc& d = descs[k];
    if (d.buf_off >= h.region_size || d.data_off + uint64_t{d.len} > h.region_size - d.buf_off) return 14;
    const auto tag = static_cast<uint8_t>(h.tag);
    if (d.len != frame_len(tag, k)) return 15;
    uint8_t want[1600];
    fill_frame(want, tag, k);
    if (std::memcmp(base + d.buf_off + d.data_off, want, d.len) != 0) return 16;
  }
  return 0;
}

// Forks the child, sends it the fd and the descriptors, returns its exit code.
int run_child(const ShmPktPool& pool, int fd, bool writable, uint8_t tag, const std::vector<PktDesc>& descs) {
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  std::fflush(nullptr);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(sv[0]);
    _exit(child_main(sv[1]));
  }
  close(sv[1]);
  Handoff h{pool.size(), reinterpret_cast<uintptr_t>(pool.base()), static_cast<uint32_t>(descs.size()), tag,
            writable ? 1u : 0u};
  char ctl[CMSG_SPACE(sizeof(int))] = {};
  iovec iov{&h, sizeof(h)};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = ctl;
  mh.msg_controllen = sizeof(ctl);
  cmsghdr* c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(fd));
  CHECK(sendmsg(sv[0], &mh, 0) == static_cast<ssize_t>(sizeof(h)));
  const size_t bytes = descs.size() * sizeof(PktDesc);
  CHECK(write(sv[0], descs.data(), bytes) == static_cast<ssize_t>(bytes));
  close(sv[0]);
  int st = 0;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// The daemon's side of a hand-off: descriptors for the received mbufs (each
// must map back to its mbuf by offset), the child's check, then the frees.
void hand_off_and_free(const ShmPktPool& pool, std::vector<rte_mbuf*>& got, uint8_t tag, bool readonly) {
  std::vector<PktDesc> descs;
  for (uint32_t k = 0; k < got.size(); k++) {
    PktDesc d{};
    REQUIRE(pool.to_desc(got[k], d));
    CHECK(pool.mbuf_of(d.buf_off) == got[k]);
    CHECK(pool.index_of(d.buf_off) >= 0);
    CHECK(d.buf_off + d.data_off == pool.offset_of(rte_pktmbuf_mtod(got[k], void*), d.len));
    descs.push_back(d);
  }
  const int fd = readonly ? pool.readonly_fd() : pool.fd();
  const int rc = run_child(pool, fd, !readonly, tag, descs);
  if (readonly) close(fd);
  INFO("child exit " << rc << ": " << child_rc_text(rc));
  CHECK(rc == 0);
  for (rte_mbuf* m : got) rte_pktmbuf_free(m);
  got.clear();
}

// ---- ports ---------------------------------------------------------------------

void start_port(uint16_t id, rte_mempool* rx_pool) {
  rte_eth_conf conf;
  std::memset(&conf, 0, sizeof(conf));
  REQUIRE(rte_eth_dev_configure(id, 1, 1, &conf) == 0);
  const int socket = rte_eth_dev_socket_id(id);
  REQUIRE(rte_eth_rx_queue_setup(id, 0, 256, static_cast<unsigned>(socket), nullptr, rx_pool) == 0);
  REQUIRE(rte_eth_tx_queue_setup(id, 0, 256, static_cast<unsigned>(socket), nullptr) == 0);
  REQUIRE(rte_eth_dev_start(id) == 0);
}

uint16_t port_named(const std::string& name) {
  uint16_t id = 0;
  INFO("port " << name);
  REQUIRE(rte_eth_dev_get_port_by_name(name.c_str(), &id) == 0);
  return id;
}

// Receives until `want` frames of this scenario arrived in order, or 3 s
// passed; anything else (the kernel's IPv6 chatter on tap) is freed.
std::vector<rte_mbuf*> receive(uint16_t port, uint8_t tag, size_t want) {
  std::vector<rte_mbuf*> got;
  rte_mbuf* b[32];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
    const uint16_t n = rte_eth_rx_burst(port, 0, b, 32);
    for (uint16_t i = 0; i < n; i++) {
      if (is_test_frame(b[i], tag)) got.push_back(b[i]);
      else rte_pktmbuf_free(b[i]);
    }
    if (n == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  for (uint32_t k = 0; k < got.size(); k++) {
    const auto* p = rte_pktmbuf_mtod(got[k], const uint8_t*);
    INFO("frame " << k);
    CHECK((p[15] << 8 | p[16]) == static_cast<int>(k));
  }
  return got;
}

// kFrames frames allocated from `pool`, filled and sent on `port`.
void send_frames(uint16_t port, rte_mempool* pool, uint8_t tag) {
  std::vector<rte_mbuf*> tx;
  for (uint32_t i = 0; i < kFrames; i++) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    REQUIRE(m);
    auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(frame_len(tag, i))));
    REQUIRE(p);
    fill_frame(p, tag, i);
    tx.push_back(m);
  }
  uint32_t sent = 0;
  for (int tries = 0; sent < kFrames && tries < 1000; tries++)
    sent += rte_eth_tx_burst(port, 0, tx.data() + sent, static_cast<uint16_t>(kFrames - sent));
  REQUIRE(sent == kFrames);
}

bool link_up(uint16_t port) {
  rte_eth_link l;
  std::memset(&l, 0, sizeof(l));
  return rte_eth_link_get_nowait(port, &l) == 0 && l.link_status == RTE_ETH_LINK_UP;
}

// A net_ring port whose one ring is both its rx and tx queue: tx loops to rx
// with the very same mbufs, so this checks the pool and the hand-off, not a
// PMD writing into the region.
void ring_round_trip(const ShmPktPoolConfig& cfg, uint8_t tag, bool readonly) {
  env();
  auto pool = ShmPktPool::create(cfg);
  rte_ring* r = rte_ring_create(("loop-" + cfg.name).c_str(), 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
  REQUIRE(r);
  const int id = rte_eth_from_ring(r);
  REQUIRE(id >= 0);
  const auto port = static_cast<uint16_t>(id);
  start_port(port, pool->mempool());
  send_frames(port, pool->mempool(), tag);
  auto got = receive(port, tag, kFrames);
  REQUIRE(got.size() == kFrames);
  bool mapped = false;
  CHECK_NOTHROW(mapped = pool->dma_map(port));  // the vdev bus accepts and ignores it
  hand_off_and_free(*pool, got, tag, readonly);
  if (mapped) pool->dma_unmap(port);
  rte_eth_dev_stop(port);
  CHECK(rte_vdev_uninit(("net_ring_loop-" + cfg.name).c_str()) == 0);
  rte_ring_free(r);
  CHECK(rte_mempool_avail_count(pool->mempool()) == cfg.n_mbufs);
}

TEST_CASE("extbuf pool: net_ring frames read by another process by offset", "[iok-shm]") {
  ShmPktPoolConfig cfg;
  cfg.name = "shm-ext";
  cfg.n_mbufs = kPoolBufs;
  ring_round_trip(cfg, 1, /*readonly=*/true);
}

TEST_CASE("heap pool: the whole mempool in a shared malloc heap also works", "[iok-shm]") {
  ShmPktPoolConfig cfg;
  cfg.name = "shm-heap";
  cfg.n_mbufs = kPoolBufs;
  cfg.placement = Placement::kHeap;
  ring_round_trip(cfg, 2, /*readonly=*/false);
}

TEST_CASE("extbuf pool on a hugetlb memfd", "[iok-shm]") {
  env();
  if (net::free_hugepages() == 0) {
    WARN("skipping the hugepage case: no free hugepages (run tools/setup to test it)");
    return;
  }
  ShmPktPoolConfig cfg;
  cfg.name = "shm-huge";
  cfg.n_mbufs = 511;
  cfg.hugepages = true;
  ring_round_trip(cfg, 3, /*readonly=*/true);
}

// Stops and removes both memif ends on EAL's interrupt thread. With both ends
// in one process, stopping one from the test thread races the interrupt
// thread handling that end's disconnect at the other (DPDK 22.11 crashed in
// rte_intr_instance_free about 1 run in 10); an alarm callback runs on that
// thread, so the two are serialized.
struct MemifTeardown {
  uint16_t server, client;
  std::atomic<bool> done{false};
};

void memif_teardown(void* arg) {
  auto* t = static_cast<MemifTeardown*>(arg);
  rte_eth_dev_stop(t->client);
  rte_eth_dev_stop(t->server);
  rte_vdev_uninit("net_memif_c");
  rte_vdev_uninit("net_memif_s");
  t->done.store(true);
}

// Two memif ports of one process on one socket: the client sends from a
// private pool; the server's PMD copies each frame into the shared pool.
TEST_CASE("net_memif writes received frames into the shared pool", "[iok-shm]") {
  env();
  ShmPktPoolConfig cfg;
  cfg.name = "shm-memif";
  cfg.n_mbufs = kPoolBufs;
  auto pool = ShmPktPool::create(cfg);
  rte_mempool* priv = rte_pktmbuf_pool_create("memif-priv", 1023, 32, 0, 2048 + 128, SOCKET_ID_ANY);
  REQUIRE(priv);
  const std::string sock = "/tmp/slip-iokshm-" + std::to_string(getpid()) + ".sock";
  REQUIRE(rte_vdev_init("net_memif_s", ("role=server,id=0,socket=" + sock).c_str()) == 0);
  REQUIRE(rte_vdev_init("net_memif_c", ("role=client,id=0,socket=" + sock).c_str()) == 0);
  const uint16_t server = port_named("net_memif_s"), client = port_named("net_memif_c");
  start_port(server, pool->mempool());
  start_port(client, priv);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!(link_up(server) && link_up(client)) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(link_up(server));
  REQUIRE(link_up(client));
  send_frames(client, priv, 4);
  auto got = receive(server, 4, kFrames);
  REQUIRE(got.size() == kFrames);
  for (rte_mbuf* m : got) CHECK(m->pool == pool->mempool());
  hand_off_and_free(*pool, got, 4, /*readonly=*/true);
  MemifTeardown t{server, client};
  REQUIRE(rte_eal_alarm_set(1, memif_teardown, &t) == 0);
  for (int i = 0; i < 5000 && !t.done.load(); i++) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(t.done.load());
  unlink(sock.c_str());
  CHECK(rte_mempool_avail_count(pool->mempool()) == cfg.n_mbufs);
  rte_mempool_free(priv);
}

// Frames a packet socket sends out of the tap interface arrive on the DPDK
// side, read by the PMD into mbufs of the shared pool.
TEST_CASE("net_tap reads received frames into the shared pool", "[iok-shm]") {
  Env& e = env();
  if (!e.netns) {
    WARN("skipping the tap case: " << e.netns_why);
    return;
  }
  ShmPktPoolConfig cfg;
  cfg.name = "shm-tap";
  cfg.n_mbufs = kPoolBufs;
  auto pool = ShmPktPool::create(cfg);
  const char* iface = "sliptapshm0";
  REQUIRE(rte_vdev_init("net_tap_shm", (std::string("iface=") + iface).c_str()) == 0);
  const uint16_t port = port_named("net_tap_shm");
  start_port(port, pool->mempool());

  const int ctl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(ctl >= 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, iface, IFNAMSIZ - 1);
  REQUIRE(ioctl(ctl, SIOCGIFFLAGS, &ifr) == 0);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  REQUIRE(ioctl(ctl, SIOCSIFFLAGS, &ifr) == 0);
  close(ctl);

  const int ps = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  REQUIRE(ps >= 0);
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = static_cast<int>(if_nametoindex(iface));
  to.sll_halen = 6;
  REQUIRE(to.sll_ifindex > 0);
  for (uint32_t i = 0; i < kFrames; i++) {
    uint8_t f[1600];
    fill_frame(f, 5, i);
    const size_t n = frame_len(5, i);
    REQUIRE(sendto(ps, f, n, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == static_cast<ssize_t>(n));
  }
  close(ps);
  auto got = receive(port, 5, kFrames);
  REQUIRE(got.size() == kFrames);
  for (rte_mbuf* m : got) CHECK(m->pool == pool->mempool());
  hand_off_and_free(*pool, got, 5, /*readonly=*/true);
  rte_eth_dev_stop(port);
  rte_vdev_uninit("net_tap_shm");
  CHECK(rte_mempool_avail_count(pool->mempool()) == cfg.n_mbufs);
}

TEST_CASE("ShmPktPool refuses bad input with a fix and rejects foreign offsets", "[iok-shm]") {
  env();
  ShmPktPoolConfig cfg;
  cfg.name = "a-name-much-too-long-for-a-heap";
  CHECK_THROWS_WITH(ShmPktPool::create(cfg), Catch::Matchers::Contains("1..20 characters"));
  cfg.name = "shm-small";
  cfg.n_mbufs = 63;
  auto pool = ShmPktPool::create(cfg);
  CHECK(pool->n_bufs() == 63);
  CHECK(pool->mbuf_of(0) != nullptr);
  CHECK(pool->mbuf_of(1) == nullptr);  // not a buffer start
  CHECK(pool->index_of(pool->size()) == -1);
  CHECK(pool->offset_of(pool->base() + pool->size()) == ShmPktPool::kBadOff);
  CHECK(pool->offset_of(pool->base() + pool->size() - 1, 2) == ShmPktPool::kBadOff);
  cfg.name = "shm-small";  // taken
  CHECK_THROWS_WITH(ShmPktPool::create(cfg), Catch::Matchers::Contains("unique name"));
}

}  // namespace
}  // namespace slip::iok
