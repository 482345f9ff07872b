// DpdkPort: a Nic over one ethdev port. Set-up reads what the PMD can do and
// asks for no more; the data path is rte_eth_rx_burst/tx_burst plus the
// PacketBuf <-> mbuf sync in buf_dpdk.cc.
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bitset>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>

#include "net/dpdk/mbuf_buf.h"
#include "net/proto/flow.h"
#include "slip/net/dpdk.h"
#include "slip_rte.h"

namespace slip::net {
namespace {

inline rte_mbuf* mb(void* p) noexcept { return static_cast<rte_mbuf*>(p); }

// Ports a DpdkPort has open, so a second one cannot reconfigure (or, failing,
// close) a port in use.
std::mutex g_open_mu;
std::bitset<RTE_MAX_ETHPORTS> g_open;

void claim_port(uint16_t id, const std::string& name) {
  std::lock_guard lk(g_open_mu);
  if (g_open.test(id))
    throw std::runtime_error("DpdkPort: port " + name + " is already open in this process: share that DpdkPort");
  g_open.set(id);
}

void unclaim_port(uint16_t id) noexcept {
  std::lock_guard lk(g_open_mu);
  g_open.reset(id);
}

std::string err_text(int ret) { return rte_strerror(ret < 0 ? -ret : ret); }

// What sysfs says about PCI device addr: why DPDK may not have taken it.
std::string pci_device_hint(const std::string& addr) {
  const std::string dev = "/sys/bus/pci/devices/" + addr;
  struct stat st;
  if (stat(dev.c_str(), &st) != 0) return "there is no PCI device " + addr + " on this host (lspci -D lists them)";
  char link[PATH_MAX];
  const ssize_t n = readlink((dev + "/driver").c_str(), link, sizeof link - 1);
  if (n <= 0) return addr + " has no driver";
  link[n] = 0;
  const std::string drv = std::strrchr(link, '/') ? std::strrchr(link, '/') + 1 : link;
  if (drv == "vfio-pci" || drv == "uio_pci_generic" || drv == "igb_uio")
    return addr + " is bound to " + drv + ", yet no PMD took it: is DPDK's driver for this NIC installed? "
                  "(EAL log above)";
  if (drv == "mlx5_core") return addr + " is an mlx5 NIC (mlx5_core): see the mlx5 PMD's log above";
  return addr + " is bound to the kernel driver " + drv;
}

// The port id for cfg, or a message listing the ports DPDK found and how a
// missing one is usually made to appear.
uint16_t find_port(const DpdkPortConfig& cfg) {
  // DPDK names a PCI port by its full address: "3b:00.0" is "0000:3b:00.0".
  const bool pci = is_pci_address(cfg.name);
  const std::string name = pci ? normalize_pci(cfg.name) : cfg.name;
  uint16_t id = cfg.port_id;
  if (name.empty() ? rte_eth_dev_is_valid_port(id) : rte_eth_dev_get_port_by_name(name.c_str(), &id) == 0) return id;
  std::string found;
  for (const auto& n : DpdkPort::port_names()) found += (found.empty() ? "" : ", ") + n;
  const std::string what = name.empty() ? "with id " + std::to_string(id) : "named \"" + name + "\"";
  std::string msg = "DpdkPort: no DPDK port " + what + " found; ports DPDK found (" +
                    std::to_string(rte_eth_dev_count_avail()) + "): " + (found.empty() ? "none" : found) + "; ";
  if (pci) {
    msg += pci_device_hint(name) + "; bind the device to vfio-pci (dpdk-devbind.py -b vfio-pci " + name +
           ") or, for mlx5, keep the kernel driver (mlx5_core) and install rdma-core (Debian: ibverbs-providers) "
           "and the mlx5 PMD (librte-net-mlx5-23)";
  } else {
    msg += "pass the device to EAL (--pci ADDR for a NIC, --vdev for a virtual device, e.g. net_tap0,iface=NAME), "
           "or name one of the ports found (--port-name)";
  }
  throw std::runtime_error(msg);
}

// Whether every segment of the chain is an mbuf (not from a heap pool).
bool dpdk_backed(const PacketBuf* b) noexcept {
  for (; b; b = b->next)
    if (!b->mbuf) return false;
  return true;
}

// Hands the caller's reference on b to the PMD before transmission. Returns
// true when software keeps other references: the mbufs then get one extra
// refcount for the PMD, and the caller's PacketBuf reference is dropped after
// the send. Sole-owned packets go to the PMD as they are.
bool tx_take(PacketBuf* b) noexcept {
  bool shared = false;
  for (PacketBuf* s = b; s; s = s->next) shared |= s->refs.load(std::memory_order_relaxed) != 1;
  for (PacketBuf* s = b; s; s = s->next) {
    if (shared) rte_mbuf_refcnt_update(mb(s->mbuf), 1);
    else s->refs.store(0, std::memory_order_relaxed);
  }
  to_mbuf(b);
  return shared;
}

// Undoes tx_take for a packet the PMD did not accept.
void tx_untake(PacketBuf* b, bool shared) noexcept {
  for (PacketBuf* s = b; s; s = s->next) {
    if (shared) rte_mbuf_refcnt_update(mb(s->mbuf), -1);
    else s->refs.store(1, std::memory_order_relaxed);
  }
}

}  // namespace

std::vector<std::string> DpdkPort::port_names() {
  std::vector<std::string> v;
  uint16_t p;
  RTE_ETH_FOREACH_DEV(p) {
    char name[RTE_ETH_NAME_MAX_LEN];
    if (rte_eth_dev_get_name_by_port(p, name) == 0) v.emplace_back(name);
  }
  return v;
}

DpdkPort::DpdkPort(const DpdkPortConfig& cfg) {
  if (!eal_initialized()) throw std::runtime_error("DpdkPort: EAL is not running: call slip::net::eal_init first");
  port_id_ = find_port(cfg);
  char name[RTE_ETH_NAME_MAX_LEN] = {};
  rte_eth_dev_get_name_by_port(port_id_, name);
  name_ = name;
  configure(cfg);
}

DpdkPort::~DpdkPort() {
  if (rx_epfd_ >= 0) {
    for (uint16_t q = 0; q < caps_.rx_queues; q++)
      rte_eth_dev_rx_intr_ctl_q(port_id_, q, rx_epfd_, RTE_INTR_EVENT_DEL, nullptr);
    close(rx_epfd_);
  }
  rte_eth_dev_stop(port_id_);
  rte_eth_dev_close(port_id_);
  unclaim_port(port_id_);
}

// Configures queues and offloads from dev_info, then starts the port.
void DpdkPort::configure(const DpdkPortConfig& cfg) {
  const std::string who = "DpdkPort(" + name_ + "): ";
  rte_eth_dev_info info;
  if (int r = rte_eth_dev_info_get(port_id_, &info); r != 0)
    throw std::runtime_error(who + "rte_eth_dev_info_get failed: " + err_text(r) + ": see the PMD log above");
  if (cfg.rx_queues == 0 || cfg.rx_queues > info.max_rx_queues || cfg.tx_queues == 0 ||
      cfg.tx_queues > info.max_tx_queues)
    throw std::runtime_error(who + "asked for " + std::to_string(cfg.rx_queues) + " rx / " +
                             std::to_string(cfg.tx_queues) + " tx queues, the PMD has 1.." +
                             std::to_string(info.max_rx_queues) + " rx / 1.." + std::to_string(info.max_tx_queues) +
                             " tx: lower rx_queues/tx_queues");

  rte_eth_conf conf;
  std::memset(&conf, 0, sizeof(conf));
  if (cfg.mtu) {
    // ethdev bounds the MTU by the largest frame too, less the PMD's framing
    // (Ethernet header and CRC unless it says otherwise): memif's 1518 is 1500.
    const uint32_t framing = info.max_mtu != UINT16_MAX && info.max_rx_pktlen > info.max_mtu
                                 ? info.max_rx_pktlen - info.max_mtu
                                 : uint32_t{RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN};
    const uint32_t max_mtu = std::min<uint32_t>(info.max_mtu, info.max_rx_pktlen - framing);
    if (cfg.mtu < info.min_mtu || cfg.mtu > max_mtu)
      throw std::runtime_error(who + "MTU " + std::to_string(cfg.mtu) + " is outside what the PMD takes (" +
                               std::to_string(info.min_mtu) + ".." + std::to_string(max_mtu) + "): pick one in it");
  }
  conf.rxmode.mtu = cfg.mtu;  // 0: ethdev's default
  // Without RSS (net_ring, net_tap) every frame arrives on queue 0.
  const uint64_t rss_hf = (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
  if (cfg.rx_queues > 1 && rss_hf) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
    caps_.rss = true;
  }
  const uint64_t rx_want = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
  const uint64_t tx_want = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM |
                           RTE_ETH_TX_OFFLOAD_TCP_CKSUM | RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
  conf.rxmode.offloads = rx_want & info.rx_offload_capa;
  conf.txmode.offloads = tx_want & info.tx_offload_capa;
  // net_tap "offloads" L4 checksums in software and writes 0xffff where RFC
  // 1624 wants 0x0000 for TCP (1 frame in 65536; tshark flags it); our own
  // software checksum is as fast and exact, so take it instead.
  if (info.driver_name && std::strcmp(info.driver_name, "net_tap") == 0)
    conf.txmode.offloads &= ~(RTE_ETH_TX_OFFLOAD_UDP_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM);
  const uint64_t rx_l4 = RTE_ETH_RX_OFFLOAD_UDP_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
  const uint64_t tx_l4 = RTE_ETH_TX_OFFLOAD_UDP_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
  caps_.rx_ip_csum = conf.rxmode.offloads & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
  caps_.rx_l4_csum = (conf.rxmode.offloads & rx_l4) == rx_l4;
  caps_.tx_ip_csum = conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
  caps_.tx_l4_csum = (conf.txmode.offloads & tx_l4) == tx_l4;

  uint16_t rx_desc = cfg.rx_desc, tx_desc = cfg.tx_desc;
  if (int r = rte_eth_dev_adjust_nb_rx_tx_desc(port_id_, &rx_desc, &tx_desc); r != 0)
    throw std::runtime_error(who + "rte_eth_dev_adjust_nb_rx_tx_desc failed: " + err_text(r) +
                             ": pass other rx_desc/tx_desc");
  const size_t ring_bufs = size_t{cfg.rx_queues} * rx_desc + size_t{cfg.tx_queues} * tx_desc;
  if (cfg.pool_bufs < ring_bufs + 2 * kBurst)
    throw std::runtime_error(who + "pool_bufs " + std::to_string(cfg.pool_bufs) + " cannot fill " +
                             std::to_string(ring_bufs) + " descriptors and keep buffers to spare: "
                             "raise pool_bufs or lower rx_desc/tx_desc");

  // Errors above leave the port untouched; from here on a failure closes it,
  // as its queues may point into the pool that goes away with this object.
  claim_port(port_id_, name_);
  auto bring_up = [&] {
    if (int r = rte_eth_dev_configure(port_id_, cfg.rx_queues, cfg.tx_queues, &conf); r != 0)
      throw std::runtime_error(who + "rte_eth_dev_configure failed: " + err_text(r) +
                               ": see the PMD log above; try fewer queues");
    // Configure records the MTU; PMDs with a device behind them (net_tap's
    // kernel interface, a NIC's frame size register) apply it here.
    if (cfg.mtu) {
      const int r = rte_eth_dev_set_mtu(port_id_, cfg.mtu);
      if (r != 0 && r != -ENOTSUP)
        throw std::runtime_error(who + "cannot set MTU " + std::to_string(cfg.mtu) + ": " + err_text(r) +
                                 ": see the PMD log above");
    }
    setup_queues(cfg, rx_desc, tx_desc, conf.rxmode.offloads, conf.txmode.offloads);
    start(cfg);
  };
  try {
    conf.intr_conf.rxq = cfg.rx_interrupts ? 1 : 0;
    try {
      bring_up();
    } catch (const std::exception& e) {
      // Some PMDs refuse rx interrupts only at start (igb_uio has no vectors
      // for them): polling is still a working port.
      if (!conf.intr_conf.rxq) throw;
      rte_eth_dev_stop(port_id_);
      rx_intr_off_ = std::string("the port would not start with them: ") + e.what();
      conf.intr_conf.rxq = 0;
      bring_up();
    }
    if (conf.intr_conf.rxq) setup_rx_interrupts();
  } catch (...) {
    rte_eth_dev_stop(port_id_);
    rte_eth_dev_close(port_id_);
    unclaim_port(port_id_);
    throw;
  }
}

// Promiscuous mode, start, then what the started port reports (MAC, MTU).
void DpdkPort::start(const DpdkPortConfig& cfg) {
  const std::string who = "DpdkPort(" + name_ + "): ";
  if (cfg.promiscuous) {
    if (int r = rte_eth_promiscuous_enable(port_id_); r != 0)
      throw std::runtime_error(who + "cannot enable promiscuous mode: " + err_text(r) +
                               ": set promiscuous = false for this PMD");
  }
  if (int r = rte_eth_dev_start(port_id_); r != 0)
    throw std::runtime_error(who + "rte_eth_dev_start failed: " + err_text(r) + ": see the PMD log above");

  rte_ether_addr mac;
  if (int r = rte_eth_macaddr_get(port_id_, &mac); r != 0)
    throw std::runtime_error(who + "cannot read the MAC address: " + err_text(r));
  std::copy(std::begin(mac.addr_bytes), std::end(mac.addr_bytes), caps_.mac.b.begin());
  uint16_t mtu = 1500;
  if (rte_eth_dev_get_mtu(port_id_, &mtu) == 0) caps_.mtu = mtu;
  caps_.rx_queues = cfg.rx_queues;
  caps_.tx_queues = cfg.tx_queues;
  if (caps_.rss) learn_rss();
}

// The key and redirection table the port hashes flows with, so that
// rx_queue_of can compute a flow's queue as the NIC will. A PMD that will
// not say (net_tap's kernel side picks queues itself) leaves the default.
void DpdkPort::learn_rss() noexcept {
  rte_eth_dev_info info;
  if (rte_eth_dev_info_get(port_id_, &info) != 0 || info.hash_key_size == 0 || info.reta_size == 0) return;
  std::vector<uint8_t> key(info.hash_key_size);
  rte_eth_rss_conf rc{};
  rc.rss_key = key.data();
  rc.rss_key_len = info.hash_key_size;
  if (rte_eth_dev_rss_hash_conf_get(port_id_, &rc) != 0 || rc.rss_key_len < 16) return;
  std::vector<rte_eth_rss_reta_entry64> groups((info.reta_size + RTE_ETH_RETA_GROUP_SIZE - 1) / RTE_ETH_RETA_GROUP_SIZE);
  for (auto& g : groups) g.mask = ~uint64_t{0};
  if (rte_eth_dev_rss_reta_query(port_id_, groups.data(), info.reta_size) != 0) return;
  reta_.resize(info.reta_size);
  for (uint16_t i = 0; i < info.reta_size; i++)
    reta_[i] = groups[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE];
  key.resize(rc.rss_key_len);
  rss_key_ = std::move(key);
}

uint16_t DpdkPort::rx_queue_of(const FlowTuple& f) const noexcept {
  if (reta_.empty()) return Nic::rx_queue_of(f);
  // As the NIC sees the flow's frames arrive: from the remote end.
  const uint32_t h = proto::rss_ipv4_l4(rss_key_.data(), rss_key_.size(), f.remote.v, f.local.v, f.remote_port,
                                        f.local_port);
  return reta_[h % reta_.size()];
}

// Creates the pool (sized by configure) and the rx/tx queues.
void DpdkPort::setup_queues(const DpdkPortConfig& cfg, uint16_t rx_desc, uint16_t tx_desc, uint64_t rx_offloads,
                            uint64_t tx_offloads) {
  const std::string who = "DpdkPort(" + name_ + "): ";
  int socket = rte_eth_dev_socket_id(port_id_);
  if (socket < 0) socket = SOCKET_ID_ANY;
  // Every buffer holds a whole frame (VLAN tag included), so neither receive
  // nor a TCP segment built in a send buffer ever needs a chain.
  const size_t frame = size_t{cfg.mtu ? cfg.mtu : uint16_t{RTE_ETHER_MTU}} + RTE_ETHER_HDR_LEN + RTE_VLAN_HLEN;
  const size_t data_bytes = std::max(BufPool::kDefaultDataBytes, frame);
  if (!pool_) pool_ = make_dpdk_pool("slip_port" + std::to_string(port_id_), cfg.pool_bufs, socket, data_bytes);
  if (cfg.send_pool_bufs && !send_pool_)
    send_pool_ = make_dpdk_pool("slip_send" + std::to_string(port_id_), cfg.send_pool_bufs, socket, data_bytes);

  rte_eth_dev_info info;
  rte_eth_dev_info_get(port_id_, &info);
  rte_eth_rxconf rxconf = info.default_rxconf;
  rte_eth_txconf txconf = info.default_txconf;
  rxconf.offloads = rx_offloads;
  txconf.offloads = tx_offloads;
  auto* mp = static_cast<rte_mempool*>(cfg.rx_mempool ? cfg.rx_mempool : mempool_of(*pool_));
  for (uint16_t q = 0; q < cfg.rx_queues; q++) {
    if (int r = rte_eth_rx_queue_setup(port_id_, q, rx_desc, socket, &rxconf, mp); r != 0)
      throw std::runtime_error(who + "rx queue " + std::to_string(q) + " setup failed: " + err_text(r) +
                               ": lower rx_desc or raise EAL -m");
  }
  for (uint16_t q = 0; q < cfg.tx_queues; q++) {
    if (int r = rte_eth_tx_queue_setup(port_id_, q, tx_desc, socket, &txconf); r != 0)
      throw std::runtime_error(who + "tx queue " + std::to_string(q) + " setup failed: " + err_text(r) +
                               ": lower tx_desc or raise EAL -m");
  }
}

// One epoll set for every queue's interrupt fd, registered by DPDK itself:
// how to clear a fd after it fired is the PMD's business (an eventfd is read,
// net_tap's queue fd must not be), and rte_epoll_wait knows it.
void DpdkPort::setup_rx_interrupts() {
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) {
    rx_intr_off_ = std::string("epoll_create1 failed: ") + std::strerror(errno);
    return;
  }
  for (uint16_t q = 0; q < caps_.rx_queues; q++) {
    if (int r = rte_eth_dev_rx_intr_ctl_q(port_id_, q, ep, RTE_INTR_EVENT_ADD, nullptr); r != 0) {
      close(ep);
      rx_intr_off_ = "the PMD has none (rte_eth_dev_rx_intr_ctl_q: " + err_text(r) + ")";
      return;
    }
  }
  // net_tap's queue fds are always armed (-ENOTSUP); a NIC's vectors toggle.
  rx_intr_toggles_ = rte_eth_dev_rx_intr_enable(port_id_, 0) == 0;
  if (rx_intr_toggles_) rte_eth_dev_rx_intr_disable(port_id_, 0);
  // net_tap reads a queue only after its signal handler has counted a
  // signal (O_ASYNC on the queue fd, F_SETSIG) since the last read. The
  // kernel sends it to the process, so the main thread (pinned by EAL to
  // kthread 0's CPU) took it: one wake-up of that thread per frame, and a
  // woken kthread that read before the handler ran found nothing and slept
  // again with the frame queued (1 ping in 20 waited for the next timer).
  // rx_arm(true) makes the sleeping kthread the fds' owner until rx_arm(false),
  // so the signal interrupts the thread that is about to read; where that
  // fails, rx_arm raises it in that thread after a wake.
  tap_signal_ = 0;
  rte_eth_dev_info info;
  if (rte_eth_dev_info_get(port_id_, &info) == 0 && info.driver_name && std::strcmp(info.driver_name, "net_tap") == 0) {
    for (uint16_t q = 0; q < caps_.rx_queues; q++) tap_fds_.push_back(rte_eth_dev_rx_intr_ctl_q_get_fd(port_id_, q));
    const int qfd = tap_fds_[0];
    if (qfd >= 0 && (fcntl(qfd, F_GETFL) & O_ASYNC)) {
      int sig = fcntl(qfd, F_GETSIG);
      if (sig == 0) sig = SIGIO;
      struct sigaction sa {};
      if (sig > 0 && sigaction(sig, nullptr, &sa) == 0 && sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN)
        tap_signal_ = sig;
    }
    if (!tap_signal_) tap_fds_.clear();
  }
  rx_epfd_ = ep;
  rx_intr_off_.clear();
}

// net_tap's rx signal (see setup_rx_interrupts) goes to the sleeping thread
// while it is armed, and to the process otherwise: a thread owner that exits
// would get no more signals, and the port would read no more.
bool DpdkPort::tap_signal_to(bool self) noexcept {
  const f_owner_ex owner{self ? F_OWNER_TID : F_OWNER_PID, self ? static_cast<pid_t>(gettid()) : getpid()};
  bool ok = true;
  for (int fd : tap_fds_) ok &= fd >= 0 && fcntl(fd, F_SETOWN_EX, &owner) == 0;
  return ok;
}

void DpdkPort::rx_arm(bool on) noexcept {
  if (rx_epfd_ < 0) return;
  bool signal_here = false;
  if (on && tap_signal_) signal_here = tap_signal_to(true);
  if (rx_intr_toggles_) {
    for (uint16_t q = 0; q < caps_.rx_queues; q++) {
      if (on) rte_eth_dev_rx_intr_enable(port_id_, q);
      else rte_eth_dev_rx_intr_disable(port_id_, q);
    }
  }
  // Edge-triggered registrations: what fired is consumed here, so the next
  // wait sleeps until a frame that arrives after this.
  rte_epoll_event ev[8];
  int n, fired = 0;
  while ((n = rte_epoll_wait(rx_epfd_, ev, 8, 0)) > 0) {
    fired += n;
    if (n < 8) break;
  }
  if (!tap_signal_) return;
  // Frames that fired before arming signalled the process, and a frame while
  // armed signalled this thread, unless it could not take the signal over.
  if (fired && (on || !armed_here_)) raise(tap_signal_);
  if (on) armed_here_ = signal_here;
  else if (armed_here_) tap_signal_to(false);
}

namespace {

// Runtime kthreads are not EAL threads: without an lcore id, every mbuf
// alloc and free bypasses the mempool's per-lcore cache and hits the shared
// ring. The first burst on a thread registers it; the thread_local gives the
// id back when the thread exits, so runtimes that come and go never run out.
struct LcoreLease {
  bool held = false;
  ~LcoreLease() {
    if (held) unregister_thread();
  }
};
thread_local LcoreLease t_lcore;

inline void ensure_lcore() noexcept {
  if (rte_lcore_id() != LCORE_ID_ANY) return;
  if (rte_thread_register() == 0) t_lcore.held = true;  // else: uncached, still correct
}

}  // namespace

uint16_t DpdkPort::rx_burst(uint16_t q, PacketBuf** bufs, uint16_t max) noexcept {
  ensure_lcore();
  rte_mbuf* mbufs[kBurst];
  uint16_t got = 0;
  while (got < max) {
    const uint16_t want = std::min<uint16_t>(max - got, kBurst);
    const uint16_t n = rte_eth_rx_burst(port_id_, q, mbufs, want);
    for (uint16_t i = 0; i < n; i++) {
      if (PacketBuf* b = wrap_rx_mbuf(mbufs[i], q)) bufs[got++] = b;
    }
    if (n < want) break;
  }
  return got;
}

// A copy of a heap-pool packet in one mbuf of this port's pool; nullptr when
// the pool is empty or (too_long set) the packet does not fit in one mbuf.
PacketBuf* DpdkPort::copy_foreign(PacketBuf* b, bool& too_long) noexcept {
  too_long = false;
  PacketBuf* c = pool_->alloc();
  if (!c) return nullptr;
  uint8_t* dst = c->append(b->chain_len());
  if (!dst) {
    BufPool::release(c);
    too_long = true;
    return nullptr;
  }
  for (const PacketBuf* s = b; s; s = s->next) {
    std::memcpy(dst, s->data, s->len);
    dst += s->len;
  }
  c->offload_flags = b->offload_flags;
  c->l2_len = b->l2_len;
  c->l3_len = b->l3_len;
  c->l4_len = b->l4_len;
  return c;
}

uint16_t DpdkPort::tx_burst(uint16_t q, PacketBuf** bufs, uint16_t n) noexcept {
  ensure_lcore();
  uint16_t done = 0;
  while (done < n) {
    const uint16_t chunk = std::min<uint16_t>(n - done, kBurst);
    PacketBuf* pkt[kBurst];
    PacketBuf* orig[kBurst];  // the heap packet a copy stands for, or nullptr
    bool shared[kBurst];
    rte_mbuf* mbufs[kBurst];
    uint16_t ready = 0;
    bool too_long = false;
    for (; ready < chunk; ready++) {
      PacketBuf* b = bufs[done + ready];
      orig[ready] = nullptr;
      if (!dpdk_backed(b)) [[unlikely]] {
        PacketBuf* c = copy_foreign(b, too_long);
        if (!c) break;  // pool empty (the caller keeps the rest) or too long
        orig[ready] = b;
        b = c;
      }
      pkt[ready] = b;
      shared[ready] = tx_take(b);
      mbufs[ready] = mb(b->mbuf);
    }
    const uint16_t sent = ready ? rte_eth_tx_burst(port_id_, q, mbufs, ready) : 0;
    for (uint16_t i = 0; i < ready; i++) {
      if (i < sent) {
        if (shared[i]) BufPool::release(pkt[i]);  // the caller's reference
        if (orig[i]) BufPool::release(orig[i]);
      } else {
        tx_untake(pkt[i], shared[i]);
        if (orig[i]) BufPool::release(pkt[i]);  // the copy; the caller keeps orig
      }
    }
    done += sent;
    if (sent < ready) break;
    if (too_long) {  // taken and dropped, so the caller does not retry it forever
      BufPool::release(bufs[done++]);
      tx_dropped_.store(tx_dropped_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    } else if (ready < chunk) {
      break;
    }
  }
  return done;
}

DpdkStats DpdkPort::stats() const {
  rte_eth_stats s;
  if (int r = rte_eth_stats_get(port_id_, &s); r != 0)
    throw std::runtime_error("DpdkPort(" + name_ + "): rte_eth_stats_get failed: " + err_text(r));
  DpdkStats d;
  d.rx_packets = s.ipackets;
  d.tx_packets = s.opackets;
  d.rx_bytes = s.ibytes;
  d.tx_bytes = s.obytes;
  d.rx_missed = s.imissed;
  d.rx_errors = s.ierrors;
  d.tx_errors = s.oerrors;
  d.rx_no_mbuf = s.rx_nombuf;
  static_assert(DpdkStats::kQueueStats <= RTE_ETHDEV_QUEUE_STAT_CNTRS);
  for (size_t q = 0; q < DpdkStats::kQueueStats; q++) {
    d.rx_queue_packets[q] = s.q_ipackets[q];
    d.tx_queue_packets[q] = s.q_opackets[q];
  }
  return d;
}

}  // namespace slip::net
