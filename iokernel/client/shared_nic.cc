// SharedNic: the Nic of a runtime in shared mode (slip/iok/shared_nic.h).
// Queue k is kthread k's rings. Locking: the stack serializes rx_burst and
// tx_burst per queue, as for any Nic; what else can run concurrently is a
// release() of an rx buffer on any thread (returns, under the releasing
// kthread's ring's ret_lk) and completion reaping (each ring's comp_lk,
// try-locked: whoever gets it reaps).
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "iokernel/client/shared_nic_impl.h"
#include "slip/runtime/runtime.h"

namespace slip::iok {
namespace {

constexpr uint32_t kBufSize = 2048 + net::BufPool::kHeadroom;
// TCP send-queue buffers of this process (alloc_tx_data): 8192 segments in
// flight or waiting over all connections, about 17 MiB.
constexpr size_t kSendBufs = 8192;

RegisterMsg register_msg(const SharedNicConfig& c, const net::MacAddr& mac, uint64_t region_size) {
  RegisterMsg m{};
  m.magic = kMagic;
  m.version_major = kVersionMajor;
  m.version_minor = kVersionMinor;
  m.ip = c.ip.v;
  std::copy(mac.b.begin(), mac.b.end(), m.mac);
  m.n_kthreads = static_cast<uint16_t>(c.kthreads);
  m.guaranteed_cores = c.guaranteed_cores;
  m.max_cores = c.max_cores;
  m.klass = static_cast<uint8_t>(c.best_effort ? Class::kBestEffort : Class::kLatencyCritical);
  m.delay_threshold_us = c.delay_threshold_us;
  m.region_size = region_size;
  return m;
}

}  // namespace

net::MacAddr SharedNic::default_mac(net::Ipv4Addr ip) noexcept {
  return net::MacAddr{{0x02, 0x53, static_cast<uint8_t>(ip.v >> 24), static_cast<uint8_t>(ip.v >> 16),
                       static_cast<uint8_t>(ip.v >> 8), static_cast<uint8_t>(ip.v)}};
}

SharedNic::SharedNic(const SharedNicConfig& cfg) {
  const std::string who = "shared NIC (iokerneld at " + cfg.socket + "): ";
  if (cfg.ip.is_zero()) throw std::invalid_argument(who + "no IPv4 address configured: set the runtime's ip");
  if (cfg.kthreads < 1 || cfg.kthreads > kMaxKthreads)
    throw std::invalid_argument(who + "kthreads must be 1.." + std::to_string(kMaxKthreads));
  caps_.mac = cfg.mac.is_zero() ? default_mac(cfg.ip) : cfg.mac;
  caps_.rx_readonly = true;  // the pool is mapped PROT_READ
  guaranteed_ = std::max<unsigned>(1, cfg.guaranteed_cores);
  if (sched_getaffinity(0, sizeof home_cpus_, &home_cpus_) != 0) CPU_ZERO(&home_cpus_);
  std::string why;
  if (const int rc = create_region(cfg.kthreads, cfg.ring_slots, kBufSize, cfg.tx_bufs, true, &region_, &why))
    throw std::runtime_error(who + "cannot create the shared region: " + why + " (" + std::strerror(rc) +
                             "): lower ring_slots or tx_bufs, or raise the memlock/memory limit");
  for (uint32_t k = 0; k < cfg.kthreads; k++) efds_.push_back(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  conn_ = connect_control(cfg.socket);
  if (conn_ < 0)
    throw std::runtime_error(who + "cannot connect: " + std::strerror(errno) +
                             ": start iokerneld, or point the runtime at its --socket");
  RxPool pool;
  const RegisterMsg msg = register_msg(cfg, caps_.mac, region_.size);
  if (const int rc = send_registration(conn_, msg, region_.fd, efds_, &pool, &why))
    throw std::runtime_error(who + "registration refused: " + std::strerror(rc) + ": " + why);
  if (pool.fd < 0) throw std::runtime_error(who + "the daemon has no port (--no-port): give it a NIC (--vdev)");
  map_pool(pool, who);
  setup_buffers();
}

void SharedNic::map_pool(const RxPool& pool, const std::string& who) {
  void* p = mmap(nullptr, pool.size, PROT_READ, MAP_SHARED, pool.fd, 0);
  const int e = errno;
  close(pool.fd);
  if (p == MAP_FAILED) throw std::runtime_error(who + "cannot map the rx pool: " + std::strerror(e));
  pool_ = static_cast<const uint8_t*>(p);
  pool_size_ = pool.size;
  pool_buf_ = pool.buf_size;
}

void SharedNic::setup_buffers() {
  const RegionLayout& l = region_.layout;
  n_rx_slots_ = pool_size_ / pool_buf_ + 1;  // one per buffer: buffers of pool_buf_ bytes never overlap
  rx_bufs_ = std::make_unique<net::PacketBuf[]>(n_rx_slots_);
  for (size_t i = 0; i < n_rx_slots_; i++) rx_bufs_[i].refs.store(0, std::memory_order_relaxed);  // idle
  rx_meta_ = std::make_unique<RxMeta[]>(n_rx_slots_);
  spill_ = std::make_unique<PktDesc[]>(n_rx_slots_);
  rx_pool_ = net::BufPool::external("iok-rx", &SharedNic::on_rx_free, this);
  // The region's tx buffers and the send-queue buffers, a share per kthread:
  // each pool's lock is then its own kthread's (a freed buffer goes back to
  // the pool it came from, and a kthread short of buffers borrows).
  const uint32_t n = l.n_kthreads;
  for (uint32_t k = 0; k < n; k++) {
    const uint32_t first = l.n_bufs * k / n, count = l.n_bufs * (k + 1) / n - first;
    tx_pools_.push_back(net::BufPool::in_memory("iok-tx" + std::to_string(k),
                                                region_.base + l.bufs_off + size_t{first} * l.buf_size,
                                                std::max(count, 1u), l.buf_size));
    send_pools_.push_back(net::BufPool::heap("iok-send" + std::to_string(k), std::max<size_t>(kSendBufs / n, 64),
                                             kBufSize));
  }
  // Learn each tx buffer's PacketBuf by its offset: completions name buffers that way.
  tx_bufs_.assign(l.n_bufs, nullptr);
  for (auto& pool : tx_pools_) {
    std::vector<net::PacketBuf*> all;
    while (net::PacketBuf* b = pool->alloc()) all.push_back(b);
    for (net::PacketBuf* b : all) {
      tx_bufs_[tx_index(b)] = b;
      net::BufPool::release(b);
    }
  }
  n_rings_ = l.n_kthreads;
  rings_ = std::make_unique<Rings[]>(n_rings_);
  for (uint32_t k = 0; k < n_rings_; k++) {
    KthreadShm& ks = reinterpret_cast<KthreadShm*>(region_.base + l.kthreads_off)[k];
    Rings& r = rings_[k];
    r.rx = RingView(region_.base, &ks.rx, l.ring_slots, l.slots_off(k, kRingRx));
    r.tx = RingView(region_.base, &ks.tx, l.ring_slots, l.slots_off(k, kRingTx));
    r.completions = RingView(region_.base, &ks.completions, l.ring_slots, l.slots_off(k, kRingCompletions));
    r.rx_return = RingView(region_.base, &ks.rx_return, l.ring_slots, l.slots_off(k, kRingRxReturn));
    r.shm = &ks;
  }
  caps_.rx_queues = caps_.tx_queues = static_cast<uint16_t>(n_rings_);
  publish_active();
}

SharedNic::~SharedNic() {
  if (arbiter_.load() && rt::core_arbiter() == this) rt::set_core_arbiter(nullptr);  // kthreads leave our eventfds
  if (conn_ >= 0) close(conn_);  // the daemon detaches us and reclaims our rx buffers
  for (int fd : efds_) close(fd);
  if (pool_) munmap(const_cast<uint8_t*>(pool_), pool_size_);
  tx_pools_.clear();
  release_region(region_);
}

uint32_t SharedNic::tx_index(const net::PacketBuf* b) const noexcept {
  return static_cast<uint32_t>((b->head - (region_.base + region_.layout.bufs_off)) / region_.layout.buf_size);
}

// Tells the daemon which kthreads take new flows: those the runtime has
// granted (all of them outside a runtime). Revoked ones' rings are still
// drained, since rx_burst polls every ring. Once this Nic is the runtime's
// core arbiter, each kthread publishes its own state as it parks and runs.
void SharedNic::publish_active() noexcept {
  if (arbiter_.load(std::memory_order_relaxed)) return;
  const uint32_t n = region_.layout.n_kthreads;
  unsigned a = rt::active_kthreads();
  if (a == 0 || a > n) a = n;
  if (a == published_active_) return;
  published_active_ = a;
  for (uint32_t k = 0; k < n; k++)
    rings_[k].shm->state.store(static_cast<uint32_t>(k < a ? KthreadState::kActive : KthreadState::kRevoked),
                               std::memory_order_release);
}

}  // namespace slip::iok
