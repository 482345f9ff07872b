// The slip stack's internals: per-queue shards (shard.h), receive dispatch,
// ARP, routing and transmit, the port tables. Not API.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "net/proto/rx.h"
#include "net/stack/neighbor.h"
#include "net/stack/shard.h"
#include "net/stack/stack_lock.h"
#include "slip/net/stack.h"
#include "slip/runtime/poll.h"

namespace slip::net::stack {

class UdpSock;
class TcpListenSock;

class SlipStack final : public Stack, public rt::Poller {
 public:
  SlipStack(Nic& nic, const StackConfig& cfg);
  ~SlipStack() override;

  Result<std::unique_ptr<UdpConn>> udp_bind(uint16_t port) override;
  Result<std::unique_ptr<UdpService>> udp_serve(uint16_t port, UdpHandler handler) override;
  Result<std::unique_ptr<TcpListener>> tcp_listen(uint16_t port, int backlog) override;
  Result<std::unique_ptr<TcpService>> tcp_serve(uint16_t port, TcpHandlers handlers) override;
  Result<std::unique_ptr<TcpConn>> tcp_dial(Endpoint remote, uint64_t deadline) override;
  Ipv4Addr ip() const override { return cfg_.ip; }
  void counters(NetCounters& out) const override;
  bool kthread_counters(unsigned k, NetCounters& out) const override;
  std::vector<QueueStats> queue_stats() const override;

  // Kthread k polls the queues it owns, then any whose owner is parked or
  // behind (StackConfig::steal_after_ns).
  unsigned poll(unsigned kthread) noexcept override;
  // With receive interrupts a parked kthread sleeps on the NIC until a frame
  // comes or the stack's next timer is due; without, it polls every
  // StackConfig::max_park_ns.
  uint64_t max_park_ns() const noexcept override;
  bool can_block() const noexcept override { return rx_fd_ >= 0; }
  unsigned block(unsigned kthread, uint64_t timeout_ns) noexcept override;
  void interrupt() noexcept override;
  void parking(unsigned kthread) noexcept override;

  // ---- for sockets
  const StackConfig& cfg() const noexcept { return cfg_; }
  MacAddr mac() const noexcept { return mac_; }
  NetCounters& ctr() noexcept;
  PacketBuf* alloc() noexcept;
  // A buffer for a TCP send queue (Nic::alloc_tx_data); nullptr when none is free.
  PacketBuf* alloc_send_data() noexcept;
  bool tx_csum_offload() const noexcept { return caps_.tx_l4_csum; }
  uint16_t mtu() const noexcept { return caps_.mtu; }  // the largest IP datagram one frame carries
  static constexpr uint16_t kMinMtu = 576;             // RFC 791: every host takes this
  uint32_t new_iss(const FlowKey& k) noexcept;

  // Prepends IPv4 and Ethernet to the L4 datagram in b and sends it to dst,
  // resolving the next hop; takes b in every case. With a shard (held by
  // the caller) the frame joins its transmit burst; without, it leaves at
  // once on the calling kthread's queue.
  void ip_output(Shard* s, PacketBuf* b, Ipv4Addr dst, uint8_t proto, bool ect = false) noexcept;
  // The shard this thread holds for this stack's receive path, if any (a
  // udp_serve handler's send joins its burst).
  Shard* rx_shard() const noexcept { return t_rx.stack == this ? t_rx.shard : nullptr; }
  // Sends the frames the shard's holder queued (end of a poll or an application call).
  void flush_tx(Shard& s) noexcept;
  // Takes s's lock for an application call, counting a wait.
  void lock_shard(Shard& s) noexcept;
  Shard& shard(uint16_t i) noexcept { return shards_[i]; }
  uint16_t n_shards() const noexcept { return n_shards_; }
  // The shard an application call from this thread works on: its kthread's.
  Shard& local_shard() noexcept;

  // ---- port tables (stack_ports.cc), under the control lock
  void udp_unbind(uint16_t port) noexcept;
  void tcp_unlisten(uint16_t port) noexcept;

  // ---- TCP (stack_tcp.cc)
  // The shard a flow lives on: the queue the port steers its frames to.
  uint16_t home_of(const FlowKey& k) const noexcept;
  // With s locked: a closed connection leaves the table at the next housekeeping.
  void tcp_reap(Shard& s, TcpCore* c) noexcept;
  void timer_update(Shard& s, TcpCore* c, uint64_t deadline) noexcept;

 private:
  friend class TcpCore;
  // One pass over shard s, whose lock the caller took: a receive burst, its
  // housekeeping, its transmit burst; then the segments it found for other
  // shards, each under its own shard's lock. Unlocks s.
  unsigned run_shard(Shard& s, unsigned kthread) noexcept;
  void run_foreign() noexcept;
  void rx_frame(Shard& s, PacketBuf* b, uint64_t now) noexcept;
  void flush_rx_batch(uint64_t now) noexcept;
  void rx_arp(Shard& s, PacketBuf* b, const proto::ArpPacket& a) noexcept;
  void rx_icmp(Shard& s, PacketBuf* b, const proto::RxFrame& f) noexcept;
  // b's bytes in a buffer of our own (b released); nullptr when none is free.
  PacketBuf* writable_copy(PacketBuf* b) noexcept;
  void rx_udp(Shard& s, PacketBuf* b, const proto::RxFrame& f) noexcept;
  void rx_tcp(Shard& s, PacketBuf* b, const proto::RxFrame& f, uint64_t now) noexcept;
  void tcp_new_flow(Shard& s, PacketBuf* b, const proto::RxFrame& f, const FlowKey& k, uint64_t now) noexcept;
  void send_rst(Shard& s, const proto::RxFrame& f) noexcept;
  void send_port_unreachable(Shard& s, const proto::RxFrame& f) noexcept;
  void transmit(Shard* s, PacketBuf* b) noexcept;
  void send_now(PacketBuf* b) noexcept;
  void send_on(Shard& s, PacketBuf* b) noexcept;
  void tx_out(Shard& s, PacketBuf** bufs, uint16_t n) noexcept;
  void arp_request(Shard* s, Ipv4Addr target) noexcept;
  void arp_learn(Shard* s, Ipv4Addr ip, MacAddr mac, bool create) noexcept;
  void arp_tick(Shard& s, uint64_t now) noexcept;
  void housekeeping(Shard& s, uint64_t now) noexcept;
  void run_timers(Shard& s, uint64_t now) noexcept;
  void reap(Shard& s) noexcept;
  void heap_fix(Shard& s, size_t i) noexcept;
  void heap_remove(Shard& s, TcpCore* c) noexcept;
  void note_concurrency(Shard& s, unsigned kthread, const uint64_t* seen) noexcept;
  Ipv4Addr next_hop(Ipv4Addr dst) const noexcept;
  uint16_t ephemeral_candidate() noexcept;
  template <class Free>
  uint16_t next_ephemeral(Free&& free) noexcept;
  Result<uint16_t> udp_claim_port(uint16_t port) noexcept;
  Result<uint16_t> tcp_claim_listen_port(uint16_t port) noexcept;

  Nic& nic_;
  StackConfig cfg_;
  NicCaps caps_;
  MacAddr mac_;
  uint16_t n_shards_ = 1;
  unsigned n_kthreads_ = 1;
  std::unique_ptr<Shard[]> shards_;
  std::vector<std::unique_ptr<NetCounters>> ctrs_;  // [0]: foreign threads, [i+1]: kthread i
  uint64_t iss_secret_;
  int rx_fd_ = -1;    // the NIC's rx_wait_fd(): -1 without receive interrupts
  int wake_fd_ = -1;  // eventfd: interrupt() ends a block()

  std::atomic<uint64_t> rx_stack_locks_{0};
  StackLock ctl_lk_{rx_stack_locks_};  // the port tables and the ephemeral cursor
  StackLock arp_lk_{rx_stack_locks_};
  NeighborTable arp_;
  std::atomic<uint64_t> next_arp_tick_{0};

  // By port, looked up lock-free on the receive path: a socket leaves its
  // slot before synchronize_pollers() and only then is freed.
  std::unique_ptr<std::atomic<UdpSock*>[]> udp_;
  std::unique_ptr<std::atomic<TcpListenSock*>[]> listeners_;
  std::atomic<uint32_t> next_ephemeral_{0};  // the next port dial or bind tries, from a random start
};

}  // namespace slip::net::stack
