// One TCP connection as a state machine (RFC 9293), independent of threads,
// buffers and NICs: segments go in with the time, segments come out through an
// emit callback, and timers are checked with on_tick(now). The socket layer
// owns the lock and the wake-ups; tests drive it frame by frame with a virtual
// clock.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <utility>

#include "net/tcp/byte_ring.h"
#include "net/tcp/congestion.h"
#include "net/tcp/send_queue.h"
#include "net/tcp/seq.h"
#include "slip/net/tcp_config.h"

namespace slip::net::tcp {

using slip::net::TcpConfig;

// The MSS a Tcb announces when its config leaves it to the link (mss 0) and
// no NIC said otherwise: a 1500-byte Ethernet MTU less the IP and TCP headers.
inline constexpr uint16_t kEthernetMss = 1460;

enum class State : uint8_t {
  kClosed, kListen, kSynSent, kSynRcvd, kEstablished, kFinWait1, kFinWait2,
  kCloseWait, kClosing, kLastAck, kTimeWait,
};
std::string_view state_name(State s) noexcept;

enum : uint8_t { kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10, kUrg = 0x20, kEce = 0x40, kCwr = 0x80 };

struct SegOpts {
  uint16_t mss = 0;        // 0: absent
  int8_t wscale = -1;      // -1: absent
  bool sack_ok = false;
  bool has_ts = false;
  uint32_t ts_val = 0, ts_ecr = 0;
  uint8_t n_sack = 0;
  std::array<RangeSet::Range, 4> sack{};
};

// A received segment, already validated (checksum, lengths, options).
struct InSeg {
  Seq seq = 0, ack = 0;
  uint8_t flags = 0;
  uint16_t wnd = 0;        // raw header field
  SegOpts opts;
  const uint8_t* data = nullptr;
  uint32_t len = 0;
  bool ce = false;         // IP header carried Congestion Experienced
};

// A segment to transmit; its payload is `len` bytes of `payload` from offset
// `payload_off`, which the emitter sends by reference when they are one
// buffer's bytes (SendQueue::whole) and copies otherwise.
struct OutSeg {
  Seq seq = 0, ack = 0;
  uint8_t flags = 0;
  uint16_t wnd = 0;
  SegOpts opts;
  const SendQueue* payload = nullptr;
  uint32_t payload_off = 0, len = 0;
  bool ect = false;        // mark ECT(0) in the IP header
};

// What changed for the socket layer since the last take_events().
enum : uint32_t { kEvReadable = 1, kEvWritable = 2, kEvEstablished = 4, kEvClosed = 8, kEvError = 16 };

struct TcbStats {
  uint64_t segs_out = 0, segs_in = 0, retransmits = 0, rto_expiries = 0, fast_retransmits = 0;
  uint64_t dup_acks = 0, ooo_segments = 0, challenge_acks = 0, zero_window_probes = 0, keepalives = 0;
  uint64_t bytes_acked = 0, bytes_received = 0;
};

class Tcb {
 public:
  // How soon a writer that found no free packet buffer is told to try again.
  static constexpr uint64_t kBufferRetryNs = 1'000'000;
  using EmitFn = void (*)(void* ctx, const OutSeg& seg);
  Tcb(const TcpConfig& cfg, EmitFn emit, void* ctx);
  Tcb(const Tcb&) = delete;
  Tcb& operator=(const Tcb&) = delete;

  // Active open: SYN_SENT with initial sequence iss.
  void connect(uint64_t now, Seq iss);
  // Passive open from a listener that received syn: SYN_RCVD, SYN-ACK sent.
  void accept_syn(const InSeg& syn, uint64_t now, Seq iss);
  // RFC 9293 §3.10.7 segment arrival. With `batched`, what an in-window
  // segment lets us send (new data, the ACK it calls for) waits for flush():
  // the receive path takes in a whole burst first, so a run of segments is
  // acknowledged once, as with Linux's GRO, and the ACKs of a burst free the
  // window for one pass of output.
  void input(const InSeg& s, uint64_t now, bool batched = false);
  // Sends what batched input() held back.
  void flush(uint64_t now) { output(now); }

  // Where the send buffer's packet buffers come from (see SendQueue), and
  // whether it sums their bytes (false when the NIC computes checksums).
  void set_send_buffers(SendQueue::AllocFn fn, void* ctx, bool summing) noexcept {
    snd_.set_allocator(fn, ctx);
    snd_.set_summing(summing);
  }
  // Copies up to n bytes into the send buffer and sends what the windows allow.
  // Fewer than fit means no packet buffer was free: kEvWritable follows when
  // the next acknowledgement frees some, or after kBufferRetryNs.
  size_t write(const uint8_t* p, size_t n, uint64_t now);
  // Copies up to n in-order bytes out; may send a window update.
  size_t read(uint8_t* out, size_t n, uint64_t now);
  // Zero-copy read: offers the in-order bytes in place, one contiguous run at
  // a time (at most two: the buffer is a ring); fn returns how many it took,
  // and a run not taken whole ends the call. Returns the bytes taken.
  using InplaceFn = size_t (*)(void* ctx, const uint8_t* p, size_t n);
  size_t read_inplace(InplaceFn fn, void* ctx, uint64_t now);
  // The in-order received bytes where they lie, without taking them: at most
  // two runs (the second only when they wrap the ring).
  void rcv_peek(std::span<const uint8_t>& first, std::span<const uint8_t>& second) const noexcept;
  // Drops the first n in-order bytes (taken by a peeking reader); may send a window update.
  void rcv_take(size_t n, uint64_t now);
  // No more writes: FIN after the buffered data.
  void shutdown_write(uint64_t now);
  // RST and CLOSED at once.
  void abort(uint64_t now);

  void on_tick(uint64_t now);
  uint64_t next_deadline() const noexcept;  // UINT64_MAX: no timer armed

  State state() const noexcept { return state_; }
  size_t readable() const noexcept { return rcv_.size(); }
  size_t writable() const noexcept { return write_closed_ ? 0 : snd_.space(); }
  bool peer_finished() const noexcept { return fin_received_; }  // EOF after readable() bytes
  int error() const noexcept { return error_; }                 // errno value or 0
  uint32_t take_events() noexcept { return std::exchange(events_, 0u); }
  const TcbStats& stats() const noexcept { return st_; }
  uint32_t cwnd() const noexcept { return cc_.cwnd; }
  uint32_t ssthresh() const noexcept { return cc_.ssthresh; }
  uint64_t rto_ns() const noexcept { return rto_; }
  uint64_t srtt_ns() const noexcept { return srtt_; }
  uint16_t peer_mss() const noexcept { return peer_mss_; }
  bool sack_enabled() const noexcept { return sack_ok_; }
  bool ts_enabled() const noexcept { return ts_ok_; }
  uint8_t snd_wscale() const noexcept { return snd_wscale_; }
  uint32_t snd_wnd() const noexcept { return snd_wnd_; }
  const CongestionControl& congestion() const noexcept { return *ccalg_; }
  uint32_t unacked_bytes() const noexcept { return flight(); }
  uint32_t unsent_bytes() const noexcept {
    const Seq data_end = snd_buf_seq_ + static_cast<uint32_t>(snd_.size());
    return seq_gt(data_end, snd_nxt_) ? data_end - snd_nxt_ : 0;
  }
  Seq snd_una() const noexcept { return snd_una_; }
  Seq snd_nxt() const noexcept { return snd_nxt_; }
  Seq rcv_nxt() const noexcept { return rcv_nxt_; }
  Seq iss() const noexcept { return iss_; }

  // A RST answering seg when no connection exists (RFC 9293 §3.10.7.1).
  static bool rst_for(const InSeg& seg, OutSeg* out) noexcept;

 private:
  void rcv_consumed(size_t n, uint64_t now);
  // tcp_input.cc
  void input_syn_sent(const InSeg& s, uint64_t now);
  bool acceptable(const InSeg& s) const noexcept;
  bool zero_window_ack(const InSeg& s, uint64_t now);
  bool process_rst(const InSeg& s);
  bool process_ack(const InSeg& s, uint64_t now);
  void ack_new_data(const InSeg& s, uint32_t acked, uint64_t now);
  void on_dup_ack(const InSeg& s, uint64_t now);
  void retransmit_next_hole(uint64_t now);
  void process_data(const InSeg& s, uint64_t now);
  void process_fin(const InSeg& s, uint64_t now);
  void take_options(const SegOpts& o, bool syn);
  void update_window(const InSeg& s);
  void sack_update(const InSeg& s);

  // tcp_output.cc
  void output(uint64_t now);
  void send_syn(uint64_t now);
  void send_ack(uint64_t now);
  void send_rst(Seq seq);
  void emit_segment(Seq seq, uint8_t flags, uint32_t off, uint32_t len, uint64_t now);
  void retransmit_one(uint64_t now);
  uint16_t advertised_window() noexcept;
  uint32_t eff_mss() const noexcept;
  uint32_t data_mss() const noexcept;
  static constexpr uint32_t kSackBlockRoom = 12;  // two NOPs, kind, length and one block
  uint32_t flight() const noexcept { return snd_max_ - snd_una_; }
  void fill_options(SegOpts& o, bool syn, uint32_t len, uint64_t now) const noexcept;
  bool fin_pending() const noexcept;

  // tcp_timers.cc
  void arm_rto(uint64_t now) noexcept { rto_deadline_ = now + rto_; }
  void rtt_sample(uint64_t now) noexcept;  // the round trip since rtt_start_
  void on_rto(uint64_t now);
  void enter_time_wait(uint64_t now) noexcept;
  void set_closed(int err) noexcept;
  void set_state(State s) noexcept;

  TcpConfig cfg_;
  EmitFn emit_;
  void* ctx_;
  State state_ = State::kClosed;
  int error_ = 0;
  uint32_t events_ = 0;
  TcbStats st_;

  // Send side (RFC 9293 §3.3.1 names).
  Seq iss_ = 0, snd_una_ = 0, snd_nxt_ = 0, snd_max_ = 0, snd_wl1_ = 0, snd_wl2_ = 0;
  uint32_t snd_wnd_ = 0;
  Seq snd_buf_seq_ = 0;  // sequence number of the send buffer's first byte
  SendQueue snd_;
  uint64_t buf_retry_deadline_ = UINT64_MAX;  // a write found no packet buffer: try again then
  bool write_closed_ = false;  // shutdown_write() called: FIN goes after the ring
  bool fin_sent_ = false;
  Seq fin_seq_ = 0;
  RangeSet sacked_;            // peer's SACK scoreboard above snd_una
  // Receive side.
  Seq irs_ = 0, rcv_nxt_ = 0, rcv_adv_ = 0;  // rcv_adv_: right edge last advertised
  ByteRing rcv_;
  RangeSet ooo_;               // out-of-order data held in rcv_ beyond rcv_nxt
  bool fin_received_ = false;
  bool have_peer_fin_ = false;
  Seq peer_fin_seq_ = 0;
  uint32_t ack_pending_ = 0;   // in-order segments not yet acknowledged
  bool ack_now_ = false;

  // Negotiated options.
  uint16_t peer_mss_ = 536;
  uint8_t snd_wscale_ = 0, rcv_wscale_ = 0;
  bool ts_ok_ = false, sack_ok_ = false;
  uint32_t ts_recent_ = 0;
  mutable uint32_t ts_last_ = 0;  // the newest ts_val sent (fill_options)
  uint64_t ts_base_ns_ = 0;

  // Congestion control and loss recovery.
  std::unique_ptr<CongestionControl> ccalg_;
  CcState cc_;
  uint32_t dupacks_ = 0;
  bool in_recovery_ = false;
  Seq recover_ = 0;
  Seq rexmit_hi_ = 0;          // highest sequence retransmitted in this recovery
  bool ce_state_ = false;      // DCTCP receiver: CE of the last data segment, echoed as ECE

  // Timers (absolute ns; UINT64_MAX: off).
  uint64_t rto_ = 0, srtt_ = 0, rttvar_ = 0;
  uint64_t rto_deadline_ = UINT64_MAX, delack_deadline_ = UINT64_MAX, persist_deadline_ = UINT64_MAX;
  uint64_t tw_deadline_ = UINT64_MAX, keepalive_deadline_ = UINT64_MAX;
  uint32_t retries_ = 0, keepalive_sent_ = 0;
  uint64_t persist_backoff_ = 0;
  bool timing_ = false;
  Seq rtt_seq_ = 0;
  uint64_t rtt_start_ = 0;
  uint64_t last_rx_ = 0;
};

}  // namespace slip::net::tcp
