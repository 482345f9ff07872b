// iokerneld's packet data path, on the loop thread, in bursts:
//  - rx: frames the port received into the shared pool are steered by
//    destination IP (ARP and broadcast to every runtime) and flow hash onto
//    one active kthread's rx ring as descriptors into the pool: zero copy.
//    Extra copies (a broadcast's second and later runtimes) come from the
//    same pool, so every runtime reads every frame where it maps the pool.
//  - rx_return: buffers a runtime is done with go back to the pool, if and
//    only if it holds them (RxOwners).
//  - tx: frames in a runtime's own region are copied into mbufs and sent on
//    the port, or, for another runtime on this host, copied into the pool
//    and steered to it without touching the port; each descriptor is then
//    completed at once (the copy is the daemon's, the buffer the runtime's
//    again). Why copy and not attach: docs/iokernel.md, "Tx".
#pragma once

#include <cstdint>

#include "iokernel/daemon/steer.h"
#include "slip/net/nic.h"
#include "slip_rte.h"

namespace slip::iok {

class ShmPktPool;

class DataPath {
 public:
  // rx_pool: what the port receives into and runtimes map; tx_mp: private
  // mbufs for frames to the wire. Both outlive the DataPath.
  DataPath(ShmPktPool& rx_pool, uint16_t port_id, rte_mempool* tx_mp);

  // One turn: returns, a port rx burst, every tx ring. Frames handled (0: idle).
  unsigned poll(RuntimeTable& t, uint64_t now_ns) noexcept;
  // Frees every rx buffer e holds and forgets its route (before its region goes).
  unsigned detach(RuntimeEntry& e) noexcept;  // returns the rx buffers it freed

  const DropCounters& drops() const noexcept { return drops_; }
  uint64_t rx_frames() const noexcept { return rx_frames_; }
  uint64_t rx_dropped() const noexcept { return rx_dropped_; }
  uint64_t local_frames() const noexcept { return local_frames_; }

 private:
  static constexpr uint32_t kStage = 2 * net::kBurst;
  struct Staged {
    rte_mbuf* m;
    int route;  // -1 once handled
    uint32_t kthread;
    bool from_port;
  };

  void receive(rte_mbuf** bufs, uint16_t n) noexcept;
  void to_all(rte_mbuf* first, const uint8_t* frame, uint32_t len, int exclude, bool from_port) noexcept;
  void stage(rte_mbuf* m, int route, uint32_t kthread, bool from_port) noexcept;
  void flush() noexcept;
  void push_batch(int route, uint32_t k, uint32_t first) noexcept;
  void drop(rte_mbuf* m, DropReason why, bool from_port) noexcept;
  rte_mbuf* copy_to(rte_mempool* mp, const uint8_t* frame, uint32_t len) noexcept;
  unsigned drain_returns(RuntimeEntry& e) noexcept;
  unsigned drain_tx(int route) noexcept;
  void tx_one(int route, const uint8_t* frame, uint32_t len) noexcept;
  void send_wire() noexcept;

  ShmPktPool& pool_;
  rte_mempool* rx_mp_;
  rte_mempool* tx_mp_;
  uint16_t port_id_;
  RouteTable routes_;
  RxOwners owners_;
  DropCounters drops_;
  uint64_t now_ns_ = 0;
  uint64_t rx_frames_ = 0, rx_dropped_ = 0, local_frames_ = 0;
  Staged staged_[kStage];
  uint32_t n_staged_ = 0;
  rte_mbuf* wire_[net::kBurst];
  uint16_t n_wire_ = 0;
};

}  // namespace slip::iok
