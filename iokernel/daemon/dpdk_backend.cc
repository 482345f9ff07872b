#include "iokernel/daemon/dpdk_backend.h"

#include "iokernel/daemon/runtimes.h"
#include "slip/net/dpdk.h"

namespace slip::iok {
namespace {

class DpdkBackend final : public PortBackend {
 public:
  explicit DpdkBackend(const net::DpdkPortConfig& cfg) : port_(cfg), name_(port_.name()) {}

  const std::string& name() const noexcept override { return name_; }
  std::string mac() const override { return port_.caps().mac.str(); }

  unsigned poll(RuntimeTable& runtimes) noexcept override {
    net::PacketBuf* bufs[net::kBurst];
    const uint16_t n = port_.rx_burst(0, bufs, net::kBurst);
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

 private:
  // Where the data path goes: look up each frame's destination IP among the
  // runtimes, hash its flow onto one of that runtime's kthreads, copy it into
  // a buffer of the runtime's region and push a PktDesc onto that kthread's
  // rx ring (adding to RuntimeEntry::rx_pushed, which the stall check reads,
  // and counters.rx_frames or rx_dropped), then kick a parked kthread's
  // eventfd. Until then every frame is counted and dropped.
  void steer(RuntimeTable& runtimes, net::PacketBuf** bufs, uint16_t n) noexcept {
    (void)runtimes;
    rx_frames_ += n;
    rx_dropped_ += n;
    for (uint16_t i = 0; i < n; i++) net::BufPool::release(bufs[i]);
  }

  net::DpdkPort port_;
  std::string name_;
  uint64_t rx_frames_ = 0, rx_dropped_ = 0;
};

}  // namespace

std::unique_ptr<PortBackend> make_dpdk_backend(const std::string& name) {
  net::DpdkPortConfig cfg;
  cfg.name = name;
  return std::make_unique<DpdkBackend>(cfg);
}

}  // namespace slip::iok
