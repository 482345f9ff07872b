// SharedNic (the runtime's shared-mode Nic) against a fake daemon in this
// process: registration over a real control socket, one queue per kthread
// ring, rx by offset into a read-only pool with the buffer coming back on
// rx_return only when the last reference goes, tx by offset from the region,
// completions recycled, and the queue it predicts for a flow being the one
// the daemon's steering picks. No DPDK and no root.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "iokernel/daemon/fd.h"
#include "iokernel/daemon/runtimes.h"
#include "iokernel/daemon/steer.h"
#include "slip/iok/shared_nic.h"
#include "slip/net/buf.h"

using namespace slip::iok;
namespace net = slip::net;

namespace {

constexpr uint32_t kPoolBuf = 2176, kPoolBufs = 16;

// The daemon's half: a listening socket, a pool memfd it can write, and the
// runtime's region once registered.
struct FakeDaemon {
  std::string path = "/tmp/slip-iok-nic-" + std::to_string(getpid()) + ".sock";
  Fd listener, pool_fd, pool_ro;
  uint8_t* pool = nullptr;
  RuntimeTable table;
  RuntimeEntry* rt = nullptr;
  std::thread th;

  FakeDaemon() {
    unlink(path.c_str());
    listener = Fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    REQUIRE(bind(listener.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(listen(listener.get(), 4) == 0);
    pool_fd = Fd(memfd_create("fake-pool", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    REQUIRE(ftruncate(pool_fd.get(), kPoolBuf * kPoolBufs) == 0);
    REQUIRE(fcntl(pool_fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0);
    void* p = mmap(nullptr, kPoolBuf * kPoolBufs, PROT_READ | PROT_WRITE, MAP_SHARED, pool_fd.get(), 0);
    REQUIRE(p != MAP_FAILED);
    pool = static_cast<uint8_t*>(p);
    pool_ro = Fd(open(("/proc/self/fd/" + std::to_string(pool_fd.get())).c_str(), O_RDONLY | O_CLOEXEC));
    // Answers one registration in the background (the runtime waits for the reply).
    th = std::thread([this] {
      Fd c(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
      Attached att;
      std::string why;
      const RxPool rp{pool_ro.get(), uint64_t{kPoolBuf} * kPoolBufs, kPoolBuf, kPoolBufs};
      if (accept_registration(c.get(), {}, 2000, rp, &att, &why) == 0)
        rt = &table.add(std::move(att), std::move(c), {}, 0);
    });
  }
  ~FakeDaemon() {
    if (th.joinable()) th.join();
    munmap(pool, kPoolBuf * kPoolBufs);
    unlink(path.c_str());
  }
  std::unique_ptr<net::Nic> attach(uint32_t kthreads, uint32_t tx_bufs) {
    SharedNicConfig c;
    c.socket = path;
    c.ip = net::Ipv4Addr::of(198, 18, 0, 2);
    c.kthreads = kthreads;
    c.ring_slots = 64;
    c.tx_bufs = tx_bufs;
    auto nic = connect_iokernel(c);
    th.join();
    REQUIRE(rt != nullptr);
    return nic;
  }
  // Puts text in pool buffer i (after 128 bytes of headroom) and its descriptor on kthread k's rx ring.
  void deliver(uint32_t k, uint32_t i, const std::string& text, uint64_t cookie) {
    std::memcpy(pool + uint64_t{i} * kPoolBuf + 128, text.data(), text.size());
    const PktDesc d{uint64_t{i} * kPoolBuf, static_cast<uint32_t>(text.size()), 128, kDescRxCsumOk, 1, cookie};
    REQUIRE(rt->ring(k, Ring::kRx).push(&d, 1) == 1);
  }
  std::vector<PktDesc> drain(Ring r) {
    std::vector<PktDesc> out;
    for (uint32_t k = 0; k < rt->attached.layout.n_kthreads; k++) {
      PktDesc d[64];
      const uint32_t n = rt->ring(k, r).pop(d, 64);
      out.insert(out.end(), d, d + n);
    }
    return out;
  }
};

std::string text_of(const net::PacketBuf* b) { return std::string(reinterpret_cast<const char*>(b->data), b->len); }

}  // namespace

TEST_CASE("shared NIC: rx by offset, returned when the last reference goes", "[iok-nic]") {
  FakeDaemon d;
  auto nic = d.attach(2, 64);
  CHECK(nic->caps().mac.str() == "02:53:c6:12:00:02");
  CHECK(nic->caps().rx_readonly);
  CHECK(nic->caps().rx_queues == 2);  // queue k is kthread k's ring
  CHECK(nic->caps().tx_queues == 2);
  CHECK(d.rt->attached.msg.ip == net::Ipv4Addr::of(198, 18, 0, 2).v);
  d.deliver(1, 3, "frame on kthread 1", 77);
  d.deliver(0, 5, "frame on kthread 0", 78);
  const PktDesc bad{uint64_t{kPoolBuf} * kPoolBufs * 2, 10, 0, 0, 0, 79};  // outside the pool
  REQUIRE(d.rt->ring(0, Ring::kRx).push(&bad, 1) == 1);
  net::PacketBuf* bufs[8];
  REQUIRE(nic->rx_burst(0, bufs, 8) == 1);  // its own ring only: the bad one goes straight back
  CHECK(bufs[0]->rx_queue == 0);
  REQUIRE(nic->rx_burst(1, bufs + 1, 7) == 1);
  CHECK(bufs[1]->rx_queue == 1);
  std::vector<std::string> got{text_of(bufs[0]), text_of(bufs[1])};
  CHECK(got == std::vector<std::string>{"frame on kthread 0", "frame on kthread 1"});
  CHECK(bufs[0]->offload_flags == (net::PacketBuf::kRxIpCsumGood | net::PacketBuf::kRxL4CsumGood));
  CHECK(bufs[0]->tailroom() == 0);  // nothing to append into a read-only buffer
  // Both stay with the runtime while referenced; a second reference delays the return.
  bufs[0]->ref();
  net::BufPool::release(bufs[0]);
  net::BufPool::release(bufs[1]);
  CHECK(nic->rx_burst(0, bufs, 8) == 0);  // flushes pending returns
  std::vector<PktDesc> back = d.drain(Ring::kRxReturn);
  REQUIRE(back.size() == 2);  // the bad one and bufs[1]
  net::BufPool::release(bufs[0]);
  CHECK(nic->rx_burst(0, bufs, 8) == 0);
  std::vector<PktDesc> more = d.drain(Ring::kRxReturn);
  back.insert(back.end(), more.begin(), more.end());
  REQUIRE(back.size() == 3);
  std::vector<uint64_t> cookies;
  for (const PktDesc& p : back) cookies.push_back(p.cookie);
  std::sort(cookies.begin(), cookies.end());
  CHECK(cookies == std::vector<uint64_t>{77, 78, 79});
  // The same buffer can come again once returned.
  d.deliver(0, 3, "again", 80);
  REQUIRE(nic->rx_burst(0, bufs, 8) == 1);
  CHECK(text_of(bufs[0]) == "again");
  net::BufPool::release(bufs[0]);
}

TEST_CASE("shared NIC: tx by offset from the region, buffers back on completion", "[iok-nic]") {
  FakeDaemon d;
  auto nic = d.attach(1, 4);
  const RegionLayout& l = d.rt->attached.layout;
  std::vector<net::PacketBuf*> held;
  for (net::PacketBuf* b; (b = nic->alloc_tx());) held.push_back(b);
  REQUIRE(held.size() == l.n_bufs);
  std::memcpy(held[0]->append(60), std::string(60, 'x').data(), 60);
  REQUIRE(nic->tx_burst(0, held.data(), 1) == 1);
  // A heap buffer (not the region's) is copied in; with every region buffer
  // taken it has to wait, and stays the caller's.
  auto heap = net::BufPool::heap("test-heap", 2);
  net::PacketBuf* h = heap->alloc();
  std::memcpy(h->append(5), "heap!", 5);
  CHECK(nic->tx_burst(0, &h, 1) == 0);
  std::vector<PktDesc> sent = d.drain(Ring::kTx);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].len == 60);
  CHECK(sent[0].buf_off >= l.bufs_off);
  CHECK(std::memcmp(d.rt->attached.region + sent[0].buf_off + sent[0].data_off, std::string(60, 'x').data(), 60) == 0);
  // The daemon completes it: the buffer is free again, and the heap frame goes out as a copy.
  REQUIRE(d.rt->ring(0, Ring::kCompletions).push(sent.data(), 1) == 1);
  REQUIRE(nic->tx_burst(0, &h, 1) == 1);
  CHECK(heap->available() == 2);  // the copy's source went back
  sent = d.drain(Ring::kTx);
  REQUIRE(sent.size() == 1);
  CHECK(std::memcmp(d.rt->attached.region + sent[0].buf_off + sent[0].data_off, "heap!", 5) == 0);
  for (size_t i = 1; i < held.size(); i++) net::BufPool::release(held[i]);
  REQUIRE(d.rt->ring(0, Ring::kCompletions).push(sent.data(), 1) == 1);
  CHECK(nic->rx_burst(0, held.data(), 1) == 0);  // reaps
  held.clear();
  for (net::PacketBuf* b; (b = nic->alloc_tx());) held.push_back(b);
  CHECK(held.size() == l.n_bufs);  // every buffer is back
  for (net::PacketBuf* b : held) net::BufPool::release(b);
}

// A frame of the flow as the port would hand it to the daemon: from the
// remote end to the runtime.
static std::vector<uint8_t> tcp_frame(const net::FlowTuple& f) {
  std::vector<uint8_t> b(14 + 20 + 20, 0);
  b[12] = 0x08;  // IPv4
  uint8_t* ip = b.data() + 14;
  ip[0] = 0x45;
  ip[9] = f.proto;
  auto be32 = [](uint8_t* p, uint32_t v) { p[0] = uint8_t(v >> 24), p[1] = uint8_t(v >> 16), p[2] = uint8_t(v >> 8), p[3] = uint8_t(v); };
  be32(ip + 12, f.remote.v);
  be32(ip + 16, f.local.v);
  be32(ip + 20, uint32_t{f.remote_port} << 16 | f.local_port);
  return b;
}

TEST_CASE("shared NIC: the queue it predicts for a flow is the kthread the daemon steers it to", "[iok-nic]") {
  FakeDaemon d;
  auto nic = d.attach(4, 64);
  RouteTable routes;
  routes.rebuild(d.table);
  const int route = routes.find(d.rt->attached.msg.ip);
  REQUIRE(route >= 0);
  REQUIRE(routes[static_cast<size_t>(route)].n_active == 4);  // every kthread active: the prediction holds
  std::vector<int> per_queue(4);
  for (uint16_t port = 40000; port < 40400; port++) {
    const net::FlowTuple f{net::Ipv4Addr::of(198, 18, 0, 2), net::Ipv4Addr::of(198, 18, 0, 9), port, 80, 6};
    const std::vector<uint8_t> frame = tcp_frame(f);
    DropCounters drops;
    const RxTarget t = steer_rx(routes, frame.data(), static_cast<uint32_t>(frame.size()), drops);
    REQUIRE(t.route == route);
    const uint16_t q = nic->rx_queue_of(f);
    REQUIRE(q == t.kthread);
    per_queue[q]++;
  }
  for (int n : per_queue) CHECK(n > 50);  // 400 flows spread over all four
}
