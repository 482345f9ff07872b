#include "iokernel/daemon/dpdk_backend.h"

#include "iokernel/daemon/datapath.h"
#include "iokernel/daemon/fd.h"
#include "iokernel/daemon/log.h"
#include "iokernel/daemon/runtimes.h"
#include "iokernel/shm_pool.h"
#include "slip/net/dpdk.h"
#include "slip_rte.h"

namespace slip::iok {
namespace {

// The pool queue 0 receives into: buffers runtimes map read-only (extbuf, so
// the mbufs and the mempool's ring stay private to the daemon).
std::unique_ptr<ShmPktPool> make_rx_pool() {
  ShmPktPoolConfig c;
  c.name = "iokd_rx0";
  return ShmPktPool::create(c);
}

net::DpdkPortConfig port_config(const std::string& name, const ShmPktPool& rx) {
  net::DpdkPortConfig cfg;
  cfg.name = name;
  cfg.rx_mempool = rx.mempool();
  cfg.rx_interrupts = false;  // the daemon polls its port and its runtimes' rings together
  return cfg;
}

class DpdkBackend final : public PortBackend {
 public:
  explicit DpdkBackend(const std::string& name)
      : pool_(make_rx_pool()),
        ro_fd_(pool_->readonly_fd()),
        port_(port_config(name, *pool_)),
        name_(port_.name()),
        dp_(*pool_, port_.port_id(), static_cast<rte_mempool*>(net::mempool_of(port_.pool()))) {
    // After the port started, before any frame can have arrived in the pool
    // (a VFIO device needs it; the vdev bus accepts and ignores it).
    dma_mapped_ = pool_->dma_map(port_.port_id());
    // Runtimes have MACs of their own: a real NIC must pass their frames up.
    // Steering by IP drops what is for no runtime. (net_tap and net_ring
    // see every frame anyway; a PMD without the mode just logs.)
    if (const int r = rte_eth_promiscuous_enable(port_.port_id()); r != 0)
      log_event("port {}: promiscuous mode unavailable ({}); frames to runtimes' own MACs may not arrive", name_,
                rte_strerror(-r));
  }
  // Unmap while the port still exists; port_ closes (returning its rx
  // queue's mbufs) before pool_ is freed.
  ~DpdkBackend() override {
    if (dma_mapped_) pool_->dma_unmap(port_.port_id());
  }

  const std::string& name() const noexcept override { return name_; }
  std::string mac() const override { return port_.caps().mac.str(); }

  unsigned poll(RuntimeTable& runtimes) noexcept override { return dp_.poll(runtimes, mono_ns()); }
  unsigned detach_runtime(RuntimeEntry& e) noexcept override { return dp_.detach(e); }

  PortCounters counters() const override {
    const net::DpdkStats s = port_.stats();
    PortCounters c;
    c.rx_frames = dp_.rx_frames();
    c.rx_dropped = dp_.rx_dropped();
    c.local_frames = dp_.local_frames();
    c.drops = dp_.drops();
    c.tx_frames = s.tx_packets;
    c.tx_dropped = dp_.drops()[DropReason::kTxPortFull];
    c.rx_missed = s.rx_missed + s.rx_no_mbuf;
    c.rx_errors = s.rx_errors;
    c.tx_errors = s.tx_errors;
    c.rx_pool_free = pool_->free_bufs();
    return c;
  }

  RxPool rx_pool() const noexcept override {
    return RxPool{ro_fd_.get(), pool_->size(), pool_->buf_size(), static_cast<uint32_t>(pool_->n_bufs())};
  }

 private:
  std::unique_ptr<ShmPktPool> pool_;  // outlives port_, whose rx queue holds its mbufs
  Fd ro_fd_;                          // the pool, read-only: what registration replies carry
  net::DpdkPort port_;
  std::string name_;
  bool dma_mapped_ = false;
  DataPath dp_;
};

}  // namespace

std::unique_ptr<PortBackend> start_dpdk_port(const DaemonSettings& s) {
  std::string eal;
  for (const std::string& a : s.eal_args) eal += (eal.empty() ? "" : " ") + a;
  log_event("EAL arguments: {}; {}", eal, s.eal_memory_note);
  net::eal_init(s.eal_args);
  return std::make_unique<DpdkBackend>(s.port_name);
}

}  // namespace slip::iok
