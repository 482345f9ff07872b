// The slip stack's internals: receive dispatch, ARP, routing and transmit,
// the socket tables, and the TCP timer heap. Not API.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>

#include "net/proto/rx.h"
#include "slip/net/stack.h"
#include "slip/runtime/poll.h"
#include "slip/runtime/spinlock.h"

namespace slip::net::stack {

class UdpSock;
class TcpCore;
class TcpListenSock;

// A connection's 4-tuple, the key of the TCP table.
struct FlowKey {
  Endpoint local, remote;
  friend bool operator==(const FlowKey&, const FlowKey&) = default;
};
struct FlowHash {
  size_t operator()(const FlowKey& k) const noexcept {
    uint64_t h = (uint64_t{k.remote.ip.v} << 32) ^ (uint64_t{k.remote.port} << 16) ^ k.local.port;
    h ^= uint64_t{k.local.ip.v} * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    return static_cast<size_t>(h * 0xBF58476D1CE4E5B9ull);
  }
};

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

  unsigned poll(unsigned kthread) noexcept override;
  // With receive interrupts a parked kthread sleeps on the NIC until a frame
  // comes or the stack's next timer is due; without, it polls every
  // StackConfig::max_park_ns.
  uint64_t max_park_ns() const noexcept override;
  bool can_block() const noexcept override { return rx_fd_ >= 0; }
  unsigned block(unsigned kthread, uint64_t timeout_ns) noexcept override;
  void interrupt() noexcept override;

  // For sockets.
  const StackConfig& cfg() const noexcept { return cfg_; }
  MacAddr mac() const noexcept { return mac_; }
  NetCounters& ctr() noexcept;
  PacketBuf* alloc() noexcept;
  // A buffer for a TCP send queue (Nic::alloc_tx_data); nullptr when none is free.
  PacketBuf* alloc_send_data() noexcept;
  // Prepends IPv4 and Ethernet to the L4 datagram in b and sends it to dst
  // (resolving the next hop); takes b in every case.
  void ip_output(PacketBuf* b, Ipv4Addr dst, uint8_t proto, bool ect = false) noexcept;
  bool tx_csum_offload() const noexcept { return caps_.tx_l4_csum; }
  // The largest IP datagram one frame carries.
  uint16_t mtu() const noexcept { return caps_.mtu; }
  static constexpr uint16_t kMinMtu = 576;  // RFC 791: every host takes this
  uint32_t new_iss(const FlowKey& k) noexcept;

  // UDP table.
  void udp_unbind(uint16_t port) noexcept;
  // With tab_lk_ held: port, or a free ephemeral port when 0; EADDRINUSE.
  Result<uint16_t> udp_claim_port(uint16_t port) noexcept;
  // With tab_lk_ held: the next port of the ephemeral range that free(port)
  // accepts, round robin from the last one handed out; 0 when none is.
  template <class Free>
  uint16_t next_ephemeral(Free&& free) noexcept;
  // TCP tables; the core lock is held by callers of timer_update.
  // With tab_lk_ held: port, or a free ephemeral one when 0; EADDRINUSE.
  Result<uint16_t> tcp_claim_listen_port(uint16_t port) noexcept;
  void tcp_unlisten(uint16_t port) noexcept;
  bool tcp_insert(const FlowKey& k, std::shared_ptr<TcpCore> c) noexcept;
  void tcp_reap(TcpCore* c) noexcept;          // remove once closed (done in poll)
  void timer_update(TcpCore* c, uint64_t deadline) noexcept;
  // Sends what transmit() queued; every application-side path that may emit ends with it.
  void flush_tx() noexcept;

 private:
  friend class TcpCore;
  void rx_frame(PacketBuf* b, uint64_t now) noexcept;
  // Around one receive burst: TCP segments hold back their sending until
  // the flush (see RxBatch in stack_tcp.cc).
  void begin_rx_batch() noexcept;
  void flush_rx_batch(uint64_t now) noexcept;
  void rx_arp(PacketBuf* b, const proto::ArpPacket& a) noexcept;
  void rx_icmp(PacketBuf* b, const proto::RxFrame& f) noexcept;
  // b's bytes in a buffer of our own (b released); nullptr when none is free.
  PacketBuf* writable_copy(PacketBuf* b) noexcept;
  void rx_udp(PacketBuf* b, const proto::RxFrame& f) noexcept;
  void rx_tcp(PacketBuf* b, const proto::RxFrame& f, uint64_t now) noexcept;
  void send_rst(const proto::RxFrame& f) noexcept;
  void send_port_unreachable(const proto::RxFrame& f) noexcept;
  void transmit(PacketBuf* b) noexcept;
  void arp_learn(Ipv4Addr ip, MacAddr mac, bool create) noexcept;
  void arp_request(Ipv4Addr target) noexcept;
  void arp_tick(uint64_t now) noexcept;
  void run_timers(uint64_t now) noexcept;
  void reap() noexcept;
  // Timers, ARP ageing and reaping, with queue 0's lock held.
  void housekeeping(uint64_t now) noexcept;
  Ipv4Addr next_hop(Ipv4Addr dst) const noexcept;

  Nic& nic_;
  StackConfig cfg_;
  NicCaps caps_;
  MacAddr mac_;
  std::vector<std::unique_ptr<NetCounters>> ctrs_;  // [0]: foreign threads, [i+1]: kthread i
  // Each receive queue is polled by one kthread at a time (its own lock).
  // Housekeeping runs under queue 0's: one at a time is also what keeps a
  // core alive while run_timers() calls it.
  std::unique_ptr<rt::SpinLock[]> rxq_lk_;
  uint16_t rx_queues_ = 1;
  // Frames wait per transmit queue and leave in bursts. A frame goes out on
  // the queue in its rx_queue field: a connection answers on the queue its
  // segments arrive on, which keeps a flow on one queue where the port
  // steers by what it saw sent (net_tap's kernel side does).
  struct TxBatch {
    rt::SpinLock lk;
    PacketBuf* q[kBurst] = {};
    uint16_t n = 0;
    std::atomic<bool> queued{false};  // n > 0, readable without the lock
  };
  std::unique_ptr<TxBatch[]> txb_;
  uint16_t tx_queues_ = 1;
  void flush_tx_locked(uint16_t q) noexcept;
  std::atomic<uint16_t> ip_id_{1};
  uint64_t iss_secret_;

  struct ArpEntry {
    MacAddr mac;
    bool resolved = false, permanent = false;
    uint64_t expires = 0, next_retry = 0;
    uint32_t retries = 0;
    std::vector<PacketBuf*> pending;  // capacity reserved once; at most kArpPending
  };
  static constexpr size_t kArpPending = 8;
  rt::SpinLock arp_lk_;
  std::unordered_map<uint32_t, ArpEntry> arp_;
  std::atomic<uint64_t> next_arp_tick_{0};

  int rx_fd_ = -1;    // the NIC's rx_wait_fd(): -1 without receive interrupts
  int wake_fd_ = -1;  // eventfd: interrupt() ends a block()

  rt::SpinLock tab_lk_;  // guards the socket tables below
  std::vector<UdpSock*> udp_;                     // by port
  std::vector<TcpListenSock*> listeners_;         // by port
  std::unordered_map<FlowKey, std::shared_ptr<TcpCore>, FlowHash> conns_;
  std::vector<TcpCore*> dead_;
  std::atomic<bool> any_dead_{false};  // dead_ is not empty, readable without tab_lk_
  uint16_t next_ephemeral_;

  rt::SpinLock tmr_lk_;  // TCP timer heap: cores by next deadline
  std::vector<TcpCore*> tmr_heap_;
  std::atomic<uint64_t> next_timer_{UINT64_MAX};  // the heap's top deadline, for max_park_ns
  void heap_fix(size_t i) noexcept;
  void heap_remove(TcpCore* c) noexcept;
};

}  // namespace slip::net::stack
