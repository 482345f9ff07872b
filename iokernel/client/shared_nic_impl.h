// SharedNic's internals (the class behind connect_iokernel). Not API.
#pragma once

#include <sched.h>

#include <memory>
#include <string>
#include <vector>

#include "iokernel/registration.h"
#include "slip/iok/shared_nic.h"
#include "slip/net/buf.h"
#include "slip/runtime/cores.h"
#include "slip/runtime/spin_park_lock.h"

namespace slip::iok {

// Also the runtime's core arbiter (slip/runtime/cores.h): the IOKernel's
// grants in the region decide which kthreads run, and parked kthreads sleep
// on the eventfds the daemon writes to wake them (shared_nic_cores.cc).
class SharedNic final : public net::Nic, public rt::CoreArbiter {
 public:
  // Creates the region, registers it and maps the rx pool; throws.
  explicit SharedNic(const SharedNicConfig& cfg);
  // Hangs up (the daemon detaches this runtime and reclaims its rx
  // buffers) and unmaps. Destroy the stack first.
  ~SharedNic() override;
  SharedNic(const SharedNic&) = delete;
  SharedNic& operator=(const SharedNic&) = delete;

  // Queue q is kthread q's rings: the daemon steers each flow to one of them.
  const net::NicCaps& caps() const noexcept override { return caps_; }
  // From kthread q's rx ring.
  uint16_t rx_burst(uint16_t q, net::PacketBuf** bufs, uint16_t max) noexcept override;
  // Onto kthread q's tx ring; buffers not from alloc_tx (or chained) are
  // copied into one that is. Stops at a full ring.
  uint16_t tx_burst(uint16_t q, net::PacketBuf** bufs, uint16_t n) noexcept override;
  // The daemon's own choice while every kthread is active (steer_hash).
  uint16_t rx_queue_of(const net::FlowTuple& f) const noexcept override;
  net::PacketBuf* alloc_tx() noexcept override;
  // TCP send queues hold their buffers until acknowledged: they come from a
  // heap pool of their own, not from the region's few tx buffers, which
  // ACKs and every other frame need. tx_burst copies them into the region.
  net::PacketBuf* alloc_tx_data() noexcept override { return alloc_from(send_pools_); }

  static net::MacAddr default_mac(net::Ipv4Addr ip) noexcept;

  // rt::CoreArbiter, installed by the first rx_burst inside a runtime.
  unsigned guaranteed() const noexcept override { return guaranteed_; }
  bool granted(unsigned k) const noexcept override;
  uint32_t grant_seq(unsigned k) const noexcept override;
  void park(unsigned k, const std::atomic<uint32_t>& wake, uint32_t seen, uint32_t grant_seen, uint64_t timeout_ns,
            bool spin) noexcept override;
  void unpark(unsigned k) noexcept override;
  void report_ready(unsigned k, uint64_t since_ns) noexcept override;

 private:
  // One kthread's rings. The stack serializes rx_burst and tx_burst per
  // queue; rx buffers come back from any thread (ret_lk: the rx_return
  // ring's producer side and a burst of returns staged for it), and
  // completions are reaped by whoever gets comp_lk.
  struct alignas(64) Rings {
    RingView rx, tx, completions, rx_return;
    KthreadShm* shm = nullptr;
    uint32_t cpu_applied = 0;  // the grant_cpu this kthread last moved to (only it writes this)
    alignas(64) rt::SpinParkLock ret_lk;
    uint32_t ret_n = 0;
    PktDesc ret[net::kBurst];
    alignas(64) rt::SpinParkLock comp_lk;
  };
  struct RxMeta {
    uint64_t buf_off = 0, cookie = 0;
  };

  void map_pool(const RxPool& pool, const std::string& who);
  void setup_buffers();
  void publish_active() noexcept;
  void install_arbiter() noexcept;
  Rings& ring(uint32_t k) const noexcept { return rings_[k]; }
  void follow_grant_cpu(unsigned k) noexcept;
  void wait_wake(unsigned k, const std::atomic<uint32_t>& wake, uint32_t seen, uint32_t grant_seq,
                 uint64_t timeout_ns, bool spin) noexcept;
  uint32_t tx_index(const net::PacketBuf* b) const noexcept;
  net::PacketBuf* wrap_rx(const PktDesc& d) noexcept;
  // An rx buffer back to the daemon, staged on the calling kthread's ring.
  void give_back(const PktDesc& d) noexcept;
  static void on_rx_free(void* ctx, net::PacketBuf* b) noexcept;
  // With r.ret_lk held: staged returns onto r's ring; what does not fit
  // waits in the spill (spill_lk_) for a later burst.
  void flush_returns(Rings& r) noexcept;
  void drain_spill(Rings& r) noexcept;  // with r.ret_lk held
  void reap_completions(Rings& r) noexcept;
  net::PacketBuf* own_copy(net::PacketBuf* b, bool* too_long) noexcept;

  net::NicCaps caps_;
  OwnRegion region_;
  std::vector<int> efds_;
  int conn_ = -1;  // the control connection: its hang-up is how the daemon learns we are gone
  std::unique_ptr<Rings[]> rings_;
  uint32_t n_rings_ = 0;
  unsigned published_active_ = 0;
  unsigned guaranteed_ = 1;
  std::atomic<bool> arbiter_{false};  // installed as the runtime's core arbiter
  cpu_set_t home_cpus_;                // where kthreads may run when a grant names no CPU
  std::atomic<bool> pin_failed_{false};

  // Rx: the daemon's pool, read-only; a PacketBuf per pool buffer.
  const uint8_t* pool_ = nullptr;
  uint64_t pool_size_ = 0;
  uint32_t pool_buf_ = 0;
  size_t n_rx_slots_ = 0;
  std::unique_ptr<net::PacketBuf[]> rx_bufs_;
  std::unique_ptr<RxMeta[]> rx_meta_;
  std::unique_ptr<net::BufPool> rx_pool_;  // external: its last release() lands in on_rx_free
  // Returns that found their ring full, each buffer at most once; taken
  // after a ring's ret_lk, never before.
  rt::SpinParkLock spill_lk_;
  std::unique_ptr<PktDesc[]> spill_;
  size_t spill_n_ = 0;
  std::atomic<bool> spilled_{false};  // spill_n_ != 0, readable without the lock

  // Tx: buffers in our region, a pool per kthread, by index for completions.
  std::vector<std::unique_ptr<net::BufPool>> tx_pools_;
  std::vector<net::PacketBuf*> tx_bufs_;
  std::vector<std::unique_ptr<net::BufPool>> send_pools_;  // for alloc_tx_data, a pool per kthread
  // The calling kthread's pool, then the others'; nullptr when all are empty.
  static net::PacketBuf* alloc_from(const std::vector<std::unique_ptr<net::BufPool>>& pools) noexcept;
  bool in_region(const net::PacketBuf* b) const noexcept {
    return b->head >= region_.base + region_.layout.bufs_off &&
           b->head < region_.base + region_.layout.bufs_off + size_t{region_.layout.n_bufs} * region_.layout.buf_size;
  }
};

}  // namespace slip::iok
