// The DPDK backend: process-wide EAL start-up, thread registration, and
// DpdkPort, a Nic over one ethdev port (any PMD: mlx5/ice on hardware, net_tap,
// net_memif, net_af_xdp or net_ring here). No DPDK header leaks from here.
//
// Buffers: a port's pool is make_dpdk_pool(); each mbuf carries its PacketBuf
// in the mbuf private area. The PacketBuf refcount is what the stack uses; the
// mbuf refcount stays 1 except while a PMD holds a packet that software also
// still references (tx_burst of a packet after PacketBuf::ref()), so TCP can
// keep a sent segment for retransmission without copying.
//
// TX checksum offload follows DPDK's convention: with kTxIpCsum the stack
// leaves the IPv4 checksum 0; with kTxTcpCsum/kTxUdpCsum it writes the
// pseudo-header sum (as rte_ipv4_phdr_cksum) into the L4 checksum field, and
// sets l2_len/l3_len (and l4_len). Check caps() before asking for it.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "slip/net/buf.h"
#include "slip/net/eal_args.h"  // eal_args_for_port, eal_args_for_test, free_hugepages
#include "slip/net/nic.h"

namespace slip::net {

struct EalOptions {
  std::vector<std::string> args;  // EAL arguments, without argv[0]
};

// Starts DPDK's EAL. EAL runs once per process: a later call with the same
// arguments does nothing, one with other arguments throws. Throws with the
// cause and a fix when rte_eal_init fails, or when hugepages are needed but
// none are free. The calling thread becomes the EAL main lcore (and is pinned
// to its CPU by EAL). Arguments that are not EAL options (a stray word) are
// an error too, though EAL has started by then.
void eal_init(const std::vector<std::string>& args);
inline void eal_init(const EalOptions& o) { eal_init(o.args); }
bool eal_initialized() noexcept;

// Runtime kthreads are not EAL lcores. A thread that uses a port or a DPDK pool
// should call this first: it gets an lcore id, so mempool per-lcore caches
// serve its alloc/free instead of the shared ring. No-op when the thread
// already has one (the EAL main thread, or a second call). Throws when EAL is
// not initialized or all RTE_MAX_LCORE ids are taken.
void register_thread();
// Gives the lcore id back (call before the thread exits); no-op if none.
void unregister_thread() noexcept;

// n mbufs from a new rte_mempool on `socket` (-1: any), each with data_bytes
// beyond the headroom, as a BufPool whose ops allocate and free mbufs; EAL
// must be running. Throws with the cause and a fix.
std::unique_ptr<BufPool> make_dpdk_pool(std::string name, size_t n, int socket = -1,
                                        size_t data_bytes = BufPool::kDefaultDataBytes);
// The rte_mempool under a make_dpdk_pool() pool (void*: no DPDK header
// here); nullptr for any other pool.
void* mempool_of(const BufPool& pool) noexcept;

struct DpdkPortConfig {
  std::string name;      // ethdev name, e.g. "net_tap0"; when empty, port_id is used
  uint16_t port_id = 0;
  uint16_t rx_queues = 1, tx_queues = 1;
  uint16_t rx_desc = 1024, tx_desc = 1024;  // the PMD may round these
  // The port's MTU (IP bytes per frame); 0 keeps the PMD's default (1500 on
  // most). Buffers are sized to carry a whole frame, and the slip stack's TCP
  // announces the MTU less 40 as its MSS. 9000 is the usual jumbo setting.
  uint16_t mtu = 0;
  size_t pool_bufs = 8192;  // must exceed the descriptors of all queues
  // Buffers for TCP send queues (alloc_tx_data), a pool of their own so that
  // full send queues cannot starve reception; 0: they come from the port's pool.
  size_t send_pool_bufs = 8192;
  bool promiscuous = false;
  // An rte_mempool* the rx queues receive into instead of the port's own pool
  // (iokerneld's ShmPktPool); the caller keeps it alive until the port is
  // closed. Its mbufs carry no PacketBuf, so rx_burst() cannot wrap them:
  // read such a port with rte_eth_rx_burst on port_id(). Tx still uses pool().
  void* rx_mempool = nullptr;
  // Ask for receive interrupts (rx_wait_fd) where the PMD has them: net_tap
  // and NICs under vfio-pci do; memif, af_xdp and ring in DPDK 22.11 do not.
  // A PMD that refuses them at configure or start is started without.
  bool rx_interrupts = true;
};

// rte_eth_stats, summed over queues.
struct DpdkStats {
  uint64_t rx_packets = 0, tx_packets = 0, rx_bytes = 0, tx_bytes = 0;
  uint64_t rx_missed = 0, rx_errors = 0, tx_errors = 0, rx_no_mbuf = 0;
  // Frames received and sent per queue, for the first kQueueStats queues (where the PMD counts them).
  static constexpr size_t kQueueStats = 16;
  std::array<uint64_t, kQueueStats> rx_queue_packets{}, tx_queue_packets{};
};

// A started ethdev port. Queue q's bursts belong to one thread at a time (the
// kthread that owns q); alloc_tx may be called from any registered thread.
class DpdkPort final : public Nic {
 public:
  // Looks the port up, configures queues (RSS when rx_queues > 1 and the PMD
  // has it), turns on the checksum offloads the PMD advertises, creates the
  // pool and starts the port. Throws with the cause and a fix.
  explicit DpdkPort(const DpdkPortConfig& cfg);
  // Stops and closes the port. Release every PacketBuf from its pool first.
  ~DpdkPort() override;
  DpdkPort(const DpdkPort&) = delete;
  DpdkPort& operator=(const DpdkPort&) = delete;

  const NicCaps& caps() const noexcept override { return caps_; }
  uint16_t rx_burst(uint16_t q, PacketBuf** bufs, uint16_t max) noexcept override;
  // Buffers not from a DPDK pool (heap pools) are copied into this port's
  // pool; a packet too long for one mbuf is then dropped (and counted taken).
  uint16_t tx_burst(uint16_t q, PacketBuf** bufs, uint16_t n) noexcept override;
  PacketBuf* alloc_tx() noexcept override { return pool_->alloc(); }
  PacketBuf* alloc_tx_data() noexcept override { return (send_pool_ ? send_pool_ : pool_)->alloc(); }
  int rx_wait_fd() const noexcept override { return rx_epfd_; }
  void rx_arm(bool on) noexcept override;
  // With RSS whose key and redirection table the PMD reports, the queue the
  // NIC's Toeplitz hash picks; otherwise Nic's default.
  uint16_t rx_queue_of(const FlowTuple& f) const noexcept override;
  // Why rx_wait_fd() is -1 (empty when it is not): for start-up messages.
  const std::string& rx_interrupts_off_reason() const noexcept { return rx_intr_off_; }

  uint16_t port_id() const noexcept { return port_id_; }
  const std::string& name() const noexcept { return name_; }
  BufPool& pool() noexcept { return *pool_; }
  DpdkStats stats() const;
  uint64_t tx_dropped() const noexcept { return tx_dropped_.load(std::memory_order_relaxed); }  // see tx_burst

  // Names of every ethdev port EAL knows, for messages and tools.
  static std::vector<std::string> port_names();

 private:
  void configure(const DpdkPortConfig& cfg);
  void start(const DpdkPortConfig& cfg);
  void setup_rx_interrupts();
  void setup_queues(const DpdkPortConfig& cfg, uint16_t rx_desc, uint16_t tx_desc, uint64_t rx_offloads,
                    uint64_t tx_offloads);
  PacketBuf* copy_foreign(PacketBuf* b, bool& too_long) noexcept;
  void learn_rss() noexcept;

  uint16_t port_id_ = 0;
  std::string name_;
  NicCaps caps_;
  std::unique_ptr<BufPool> pool_, send_pool_;
  std::atomic<uint64_t> tx_dropped_{0};
  int rx_epfd_ = -1;              // epoll set holding every rx queue's interrupt fd
  bool rx_intr_toggles_ = false;  // the PMD arms and disarms (net_tap's queue fds are always armed)
  int tap_signal_ = 0;            // net_tap: its rx trigger signal (see setup_rx_interrupts)
  std::vector<int> tap_fds_;      // net_tap: the queue fds that signal
  bool armed_here_ = false;       // the last rx_arm(true) made its thread the owner of tap_fds_
  bool tap_signal_to(bool self) noexcept;
  std::string rx_intr_off_ = "not asked for";
  std::vector<uint8_t> rss_key_;  // empty: the port did not report its RSS configuration
  std::vector<uint16_t> reta_;
};

}  // namespace slip::net
