// The one narrow NIC interface: receive a burst, transmit a burst, and say what
// the port can offload. Backends: DPDK ethdev (any PMD), the in-process test
// wire, and the IOKernel's shared-memory rings (slip/iok/shared_nic.h). Calls are per burst, never
// per packet, so the virtual dispatch costs nothing measurable.
#pragma once

#include <cstdint>

#include "slip/net/addr.h"
#include "slip/net/buf.h"

namespace slip::net {

inline constexpr uint16_t kBurst = 32;  // DPDK's customary burst size

struct NicCaps {
  MacAddr mac;
  uint16_t mtu = 1500;
  uint16_t rx_queues = 1, tx_queues = 1;
  bool rx_ip_csum = false, rx_l4_csum = false;  // RX reports checksum status
  bool tx_ip_csum = false, tx_l4_csum = false;  // TX computes checksums
  bool rss = false;
  bool rx_readonly = false;  // received bytes may not be written (a pool mapped read-only): never reply in place
};

// A flow as seen from this host, for steering.
struct FlowTuple {
  Ipv4Addr local, remote;
  uint16_t local_port = 0, remote_port = 0;
  uint8_t proto = 0;  // IP protocol: 6 TCP, 17 UDP
};

class Nic {
 public:
  virtual ~Nic() = default;
  virtual const NicCaps& caps() const noexcept = 0;
  // Up to max received packets from queue q; the caller owns them.
  virtual uint16_t rx_burst(uint16_t q, PacketBuf** bufs, uint16_t max) noexcept = 0;
  // Queues up to n packets on q and returns how many it took; it owns those
  // (and releases them once sent), the caller keeps the rest.
  virtual uint16_t tx_burst(uint16_t q, PacketBuf** bufs, uint16_t n) noexcept = 0;
  // A buffer to build a packet in, from the pool this NIC transmits from.
  virtual PacketBuf* alloc_tx() noexcept = 0;
  // A buffer for a TCP send queue, which holds it until the peer acknowledges
  // its bytes and transmits it by reference meanwhile. A backend with its own
  // receive pool gives these from another pool, so that full send queues
  // cannot leave the NIC without buffers to receive the ACKs into.
  virtual PacketBuf* alloc_tx_data() noexcept { return alloc_tx(); }

  // Receive interrupts, where the backend has them: a file descriptor that
  // polls readable once a frame arrives on any queue after rx_arm(true);
  // -1 without them, and the stack then polls every StackConfig::max_park_ns.
  virtual int rx_wait_fd() const noexcept { return -1; }
  // Arms every queue's interrupt (true) or disarms it (false). Both clear the
  // fd's pending events, so poll the queues after arming and before waiting.
  virtual void rx_arm(bool /*on*/) noexcept {}

  // The receive queue this port delivers the flow's frames to, as far as the
  // backend can tell: the slip stack keeps each flow's state on that queue's
  // kthread, and picks a dialing connection's port so that its replies come
  // back to the kthread that dialed. The default is the symmetric flow hash
  // (net/proto/flow.h) over caps().rx_queues, which is right where the far
  // end picks the queue the same way (two slip stacks on memif, the test
  // wire) and converges where the far end follows the queue it hears a flow
  // on (net_tap's kernel side). A frame that arrives elsewhere is still
  // handled, under its home queue's lock, and counted.
  virtual uint16_t rx_queue_of(const FlowTuple& f) const noexcept;
};

}  // namespace slip::net
