#include "iokernel/daemon/dpdk_backend.h"

#include "iokernel/daemon/fd.h"
#include "iokernel/daemon/runtimes.h"
#include "iokernel/shm_pool.h"
#include "net/dpdk/rte.h"
#include "slip/net/dpdk.h"

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
  return cfg;
}

class DpdkBackend final : public PortBackend {
 public:
  explicit DpdkBackend(const std::string& name)
      : pool_(make_rx_pool()), ro_fd_(pool_->readonly_fd()), port_(port_config(name, *pool_)), name_(port_.name()) {
    // After the port started, before any frame can have arrived in the pool
    // (a VFIO device needs it; the vdev bus accepts and ignores it).
    dma_mapped_ = pool_->dma_map(port_.port_id());
  }
  // Unmap while the port still exists; port_ closes (returning its rx
  // queue's mbufs) before pool_ is freed.
  ~DpdkBackend() override {
    if (dma_mapped_) pool_->dma_unmap(port_.port_id());
  }

  const std::string& name() const noexcept override { return name_; }
  std::string mac() const override { return port_.caps().mac.str(); }

  unsigned poll(RuntimeTable& runtimes) noexcept override {
    rte_mbuf* bufs[net::kBurst];
    const uint16_t n = rte_eth_rx_burst(port_.port_id(), 0, bufs, net::kBurst);
    if (n != 0) steer(runtimes, bufs, n);
    return n;
  }

  PortCounters counters() const override {
    const net::DpdkStats s = port_.stats();
    PortCounters c;
    c.rx_frames = rx_frames_;
    c.rx_dropped = rx_dropped_;
    c.tx_frames = s.tx_packets;
    c.tx_dropped = port_.tx_dropped();
    c.rx_missed = s.rx_missed + s.rx_no_mbuf;
    c.rx_errors = s.rx_errors;
    c.tx_errors = s.tx_errors;
    return c;
  }

  RxPool rx_pool() const noexcept override {
    return RxPool{ro_fd_.get(), pool_->size(), pool_->buf_size(), static_cast<uint32_t>(pool_->n_bufs())};
  }

 private:
  // Where the data path goes: look up each frame's destination IP among the
  // runtimes, hash its flow onto one of that runtime's kthreads, push
  // pool_->to_desc() of the mbuf onto that kthread's rx ring (zero copy: the
  // runtime reads the frame in the pool it mapped), record the runtime as the
  // buffer's owner (pool_->index_of) and free the mbuf when it comes back on
  // rx_return (adding to RuntimeEntry::rx_pushed, which the stall check
  // reads, and counters.rx_frames or rx_dropped), then kick a parked
  // kthread's eventfd. Until then every frame is counted and dropped.
  void steer(RuntimeTable& runtimes, rte_mbuf** bufs, uint16_t n) noexcept {
    (void)runtimes;
    rx_frames_ += n;
    rx_dropped_ += n;
    rte_pktmbuf_free_bulk(bufs, n);
  }

  std::unique_ptr<ShmPktPool> pool_;  // outlives port_, whose rx queue holds its mbufs
  Fd ro_fd_;                          // the pool, read-only: what registration replies carry
  net::DpdkPort port_;
  std::string name_;
  bool dma_mapped_ = false;
  uint64_t rx_frames_ = 0, rx_dropped_ = 0;
};

}  // namespace

std::unique_ptr<PortBackend> make_dpdk_backend(const std::string& name) {
  return std::make_unique<DpdkBackend>(name);
}

}  // namespace slip::iok
