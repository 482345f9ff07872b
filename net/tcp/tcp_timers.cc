// Construction, the application calls, and the timers: RTO (RFC 6298) with
// exponential backoff, delayed ACK, zero-window persist, keepalive, TIME_WAIT.
#include <algorithm>
#include <cerrno>

#include "net/tcp/tcb.h"

namespace slip::net::tcp {

std::string_view state_name(State s) noexcept {
  static constexpr std::string_view kNames[] = {"CLOSED",     "LISTEN",     "SYN_SENT",   "SYN_RCVD",
                                                "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT",
                                                "CLOSING",    "LAST_ACK",   "TIME_WAIT"};
  return kNames[static_cast<size_t>(s)];
}

Tcb::Tcb(const TcpConfig& cfg, EmitFn emit, void* ctx)
    : cfg_(cfg), emit_(emit), ctx_(ctx), snd_(cfg.snd_buf), rcv_(cfg.rcv_buf) {
  if (cfg_.mss == 0) cfg_.mss = kEthernetMss;
  ccalg_ = make_congestion_control(cfg.cc);
  if (!ccalg_) ccalg_ = std::make_unique<NewReno>();
  rto_ = cfg.rto_initial_ns;
  // The smallest shift that lets the whole receive buffer be advertised.
  while (rcv_wscale_ < 14 && (cfg.rcv_buf >> rcv_wscale_) > 65535) rcv_wscale_++;
  if (!cfg.window_scale) rcv_wscale_ = 0;
  cc_.mss = cfg_.mss;
  ccalg_->init(cc_);
}

void Tcb::connect(uint64_t now, Seq iss) {
  iss_ = snd_una_ = snd_nxt_ = snd_max_ = iss;
  snd_buf_seq_ = iss + 1;
  recover_ = iss;
  ts_base_ns_ = now;
  ts_last_ = iss;
  set_state(State::kSynSent);
  send_syn(now);
}

void Tcb::accept_syn(const InSeg& syn, uint64_t now, Seq iss) {
  iss_ = snd_una_ = snd_nxt_ = snd_max_ = iss;
  snd_buf_seq_ = iss + 1;
  recover_ = iss;
  ts_base_ns_ = now;
  ts_last_ = iss;
  irs_ = syn.seq;
  rcv_nxt_ = syn.seq + 1;
  rcv_adv_ = rcv_nxt_;
  take_options(syn.opts, true);
  snd_wnd_ = syn.wnd;
  snd_wl1_ = syn.seq;
  snd_wl2_ = iss;
  last_rx_ = now;
  set_state(State::kSynRcvd);
  send_syn(now);
}

size_t Tcb::write(const uint8_t* p, size_t n, uint64_t now) {
  if (write_closed_) return 0;
  switch (state_) {
    case State::kSynSent:
    case State::kSynRcvd:
    case State::kEstablished:
    case State::kCloseWait:
      break;
    default:
      return 0;
  }
  // A buffer per segment, so that each can go out by reference. Before the
  // handshake has told the peer's MSS, assume it matches ours.
  const bool synced = state_ != State::kSynSent && state_ != State::kSynRcvd;
  const uint32_t seg =
      synced ? data_mss() : cfg_.mss - (cfg_.timestamps ? 12u : 0u) - (cfg_.sack ? kSackBlockRoom : 0u);
  n = snd_.push(p, n, seg);
  if (snd_.short_of_buffers() && buf_retry_deadline_ == UINT64_MAX)
    buf_retry_deadline_ = now + kBufferRetryNs;
  output(now);
  return n;
}

size_t Tcb::read(uint8_t* out, size_t n, uint64_t now) {
  n = std::min(n, rcv_.size());
  rcv_.read_at(0, out, n);
  rcv_.consume(n);
  rcv_consumed(n, now);
  return n;
}

size_t Tcb::read_inplace(InplaceFn fn, void* ctx, uint64_t now) {
  size_t taken = 0;
  while (rcv_.size() > 0) {
    const auto [p, len] = rcv_.run_at(0);
    const size_t t = std::min(fn(ctx, p, len), len);
    rcv_.consume(t);
    taken += t;
    if (t < len) break;
  }
  rcv_consumed(taken, now);
  return taken;
}

void Tcb::rcv_peek(std::span<const uint8_t>& first, std::span<const uint8_t>& second) const noexcept {
  first = second = {};
  if (rcv_.size() == 0) return;
  const auto [p, len] = rcv_.run_at(0);
  first = {p, len};
  if (len < rcv_.size()) {
    const auto [q, rest] = rcv_.run_at(len);
    second = {q, rest};
  }
}

void Tcb::rcv_take(size_t n, uint64_t now) {
  n = std::min(n, rcv_.size());
  rcv_.consume(n);
  rcv_consumed(n, now);
}

// Window update once the window grew by enough to matter (RFC 1122 §4.2.3.3).
void Tcb::rcv_consumed(size_t n, uint64_t now) {
  if (n > 0 && state_ != State::kClosed && state_ != State::kTimeWait) {
    const uint32_t space = static_cast<uint32_t>(rcv_.capacity() - rcv_.size());
    const Seq edge = rcv_nxt_ + space;
    const uint32_t grow = seq_gt(edge, rcv_adv_) ? edge - rcv_adv_ : 0;
    if (grow >= std::min<uint32_t>(static_cast<uint32_t>(rcv_.capacity() / 2), 2 * eff_mss())) send_ack(now);
  }
}

void Tcb::shutdown_write(uint64_t now) {
  if (write_closed_) return;
  write_closed_ = true;
  fin_seq_ = snd_buf_seq_ + static_cast<uint32_t>(snd_.size());
  switch (state_) {
    case State::kSynSent:
      set_closed(0);
      return;
    case State::kSynRcvd:
    case State::kEstablished:
      set_state(State::kFinWait1);
      break;
    case State::kCloseWait:
      set_state(State::kLastAck);
      break;
    default:
      return;
  }
  output(now);
}

void Tcb::abort(uint64_t now) {
  (void)now;
  if (state_ != State::kClosed && state_ != State::kListen && state_ != State::kSynSent && state_ != State::kTimeWait)
    send_rst(snd_nxt_);
  set_closed(ECONNABORTED);
}

// A clock reading older than the send it times is no sample: kthreads read
// the clock at different moments (a receive burst keeps the reading from its
// start, an application call takes a fresh one), and the unsigned difference
// would be a sample of centuries, pinning the RTO to rto_max for the rest of
// the connection.
void Tcb::rtt_sample(uint64_t now) noexcept {
  if (now <= rtt_start_) return;
  const uint64_t r = now - rtt_start_;
  if (srtt_ == 0) {
    srtt_ = r;
    rttvar_ = r / 2;
  } else {
    const uint64_t delta = srtt_ > r ? srtt_ - r : r - srtt_;
    rttvar_ = (3 * rttvar_ + delta) / 4;
    srtt_ = (7 * srtt_ + r) / 8;
  }
  rto_ = std::clamp<uint64_t>(srtt_ + std::max<uint64_t>(1000, 4 * rttvar_), cfg_.rto_min_ns, cfg_.rto_max_ns);
}

void Tcb::on_rto(uint64_t now) {
  st_.rto_expiries++;
  const bool handshake = state_ == State::kSynSent || state_ == State::kSynRcvd;
  // Into a closed window the retransmission is a window probe: a peer that
  // answers it is alive, so it does not count towards giving up.
  if (!handshake && snd_wnd_ == 0) {
    st_.zero_window_probes++;
    retries_ = 0;
  }
  if (++retries_ > (handshake ? cfg_.syn_retransmits : cfg_.max_retransmits)) {
    set_closed(ETIMEDOUT);
    return;
  }
  rto_ = std::min(rto_ * 2, cfg_.rto_max_ns);  // back off (RFC 6298 §5.5)
  timing_ = false;                            // Karn's algorithm
  if (!handshake) {
    ccalg_->on_timeout(cc_, flight());
    in_recovery_ = false;
    recover_ = snd_max_;
    dupacks_ = 0;
    // SACKed data is kept and skipped when going back (RFC 6675 §5.1 allows
    // clearing it; receivers that renege are rare and then RTO again).
  }
  snd_nxt_ = handshake ? iss_ : snd_una_;
  retransmit_one(now);
  arm_rto(now);
}

void Tcb::enter_time_wait(uint64_t now) noexcept {
  set_state(State::kTimeWait);
  rto_deadline_ = persist_deadline_ = keepalive_deadline_ = UINT64_MAX;
  tw_deadline_ = now + cfg_.time_wait_ns;
  events_ |= kEvReadable | kEvWritable;
}

void Tcb::set_closed(int err) noexcept {
  state_ = State::kClosed;
  if (err && !error_) error_ = err;
  events_ |= kEvClosed | kEvReadable | kEvWritable | (err ? uint32_t{kEvError} : 0u);
  rto_deadline_ = delack_deadline_ = persist_deadline_ = tw_deadline_ = keepalive_deadline_ = UINT64_MAX;
  buf_retry_deadline_ = UINT64_MAX;
}

void Tcb::set_state(State s) noexcept {
  state_ = s;
  if (s == State::kEstablished && cfg_.keepalive_idle_ns) keepalive_deadline_ = last_rx_ + cfg_.keepalive_idle_ns;
}

uint64_t Tcb::next_deadline() const noexcept {
  return std::min({rto_deadline_, delack_deadline_, persist_deadline_, tw_deadline_, keepalive_deadline_,
                   buf_retry_deadline_});
}

void Tcb::on_tick(uint64_t now) {
  if (now >= tw_deadline_) {
    set_closed(0);
    return;
  }
  if (now >= rto_deadline_) on_rto(now);
  if (state_ == State::kClosed) return;
  if (now >= delack_deadline_) send_ack(now);
  if (now >= buf_retry_deadline_) {
    buf_retry_deadline_ = UINT64_MAX;
    events_ |= kEvWritable;
  }
  if (now >= persist_deadline_) {
    emit_segment(snd_una_ - 1, kAck, 0, 0, now);  // elicits an ACK carrying the window
    st_.zero_window_probes++;
    persist_backoff_ = std::min(persist_backoff_ * 2, cfg_.rto_max_ns);
    persist_deadline_ = now + persist_backoff_;
  }
  if (now >= keepalive_deadline_) {
    if (keepalive_sent_ >= cfg_.keepalive_probes) {
      set_closed(ETIMEDOUT);
      return;
    }
    emit_segment(snd_una_ - 1, kAck, 0, 0, now);
    st_.keepalives++;
    keepalive_sent_++;
    keepalive_deadline_ = now + cfg_.keepalive_intvl_ns;
  }
}

}  // namespace slip::net::tcp
