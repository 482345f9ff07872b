// Segment arrival, RFC 9293 §3.10.7, with RFC 5961 checks, RFC 7323 PAWS,
// RFC 6582 NewReno recovery and RFC 2018 SACK bookkeeping.
#include <cerrno>

#include "net/tcp/tcb.h"

namespace slip::net::tcp {

void Tcb::take_options(const SegOpts& o, bool syn) {
  if (!syn) return;
  peer_mss_ = o.mss ? o.mss : 536;  // RFC 9293 §3.7.1 default
  if (cfg_.window_scale && o.wscale >= 0) {
    snd_wscale_ = static_cast<uint8_t>(o.wscale > 14 ? 14 : o.wscale);
  } else {
    snd_wscale_ = 0;
    rcv_wscale_ = 0;  // scaling only when both sides offer it
  }
  ts_ok_ = cfg_.timestamps && o.has_ts;
  if (ts_ok_) ts_recent_ = o.ts_val;
  sack_ok_ = cfg_.sack && o.sack_ok;
  cc_.mss = eff_mss();
  ccalg_->init(cc_);
}

void Tcb::input_syn_sent(const InSeg& s, uint64_t now) {
  const bool has_ack = s.flags & kAck;
  if (has_ack && (seq_le(s.ack, iss_) || seq_gt(s.ack, snd_max_))) {
    if (!(s.flags & kRst)) send_rst(s.ack);
    return;
  }
  if (s.flags & kRst) {
    if (has_ack) set_closed(ECONNREFUSED);
    return;
  }
  if (!(s.flags & kSyn)) return;
  irs_ = s.seq;
  rcv_nxt_ = s.seq + 1;
  rcv_adv_ = rcv_nxt_;
  take_options(s.opts, true);
  if (has_ack) {
    snd_una_ = s.ack;
    snd_wnd_ = s.wnd;  // never scaled in a SYN
    snd_wl1_ = s.seq;
    snd_wl2_ = s.ack;
    rto_deadline_ = UINT64_MAX;
    retries_ = 0;
    if (timing_) {
      timing_ = false;
      rtt_sample(now);
    }
    set_state(State::kEstablished);
    events_ |= kEvEstablished | kEvWritable;
    ack_now_ = true;
    output(now);
  } else {
    // Simultaneous open: answer with SYN-ACK from the same ISS.
    set_state(State::kSynRcvd);
    snd_nxt_ = iss_;
    send_syn(now);
  }
}

bool Tcb::acceptable(const InSeg& s) const noexcept {
  const uint32_t wnd = rcv_adv_ - rcv_nxt_;
  const uint32_t len = s.len + ((s.flags & kSyn) ? 1 : 0) + ((s.flags & kFin) ? 1 : 0);
  if (len == 0) return wnd == 0 ? s.seq == rcv_nxt_ : seq_in(s.seq, rcv_nxt_, rcv_nxt_ + wnd);
  if (wnd == 0) return false;
  return seq_in(s.seq, rcv_nxt_, rcv_nxt_ + wnd) || seq_in(s.seq + len - 1, rcv_nxt_, rcv_nxt_ + wnd);
}

// RFC 9293 §3.10.7.4: with a zero receive window no segment is acceptable,
// "but special allowance should be made to accept valid ACKs". A peer whose
// probe went past our closed window sends ACKs from beyond it; ignoring them
// would keep our send buffer full, so an echo-like application (reading only
// as it can write) never reopens the window and both sides stall. Only the
// ACK is taken, as if the segment sat at rcv_nxt (so the window bookkeeping
// never moves past us), and only from up to a buffer's length ahead.
bool Tcb::zero_window_ack(const InSeg& s, uint64_t now) {
  if (rcv_adv_ != rcv_nxt_ || !(s.flags & kAck) || (s.flags & (kRst | kSyn)) || state_ == State::kSynRcvd) return false;
  if (!seq_in(s.seq, rcv_nxt_, rcv_nxt_ + static_cast<uint32_t>(rcv_.capacity()) + 1)) return false;
  InSeg a = s;
  a.seq = rcv_nxt_;
  process_ack(a, now);
  return true;
}

// RFC 5961 §3: only an exact RST resets; one elsewhere in the window gets a
// challenge ACK. Returns true when processing of s must stop.
bool Tcb::process_rst(const InSeg& s) {
  if (!(s.flags & kRst)) return false;
  if (s.seq == rcv_nxt_) {
    set_closed(state_ == State::kSynRcvd ? ECONNREFUSED : ECONNRESET);
  } else {
    st_.challenge_acks++;
    ack_now_ = true;
  }
  return true;
}

void Tcb::update_window(const InSeg& s) {
  if (seq_lt(snd_wl1_, s.seq) || (snd_wl1_ == s.seq && seq_le(snd_wl2_, s.ack))) {
    const uint32_t old = snd_wnd_;
    snd_wnd_ = uint32_t{s.wnd} << snd_wscale_;
    snd_wl1_ = s.seq;
    snd_wl2_ = s.ack;
    if (snd_wnd_ > 0) {
      persist_deadline_ = UINT64_MAX;
      persist_backoff_ = 0;
    }
    if (old == 0 && snd_wnd_ > 0) events_ |= kEvWritable;
  }
}

void Tcb::sack_update(const InSeg& s) {
  if (!sack_ok_) return;
  for (uint8_t i = 0; i < s.opts.n_sack; i++) {
    const RangeSet::Range r = s.opts.sack[i];
    // Ignore blocks outside what we have sent (RFC 2018 §5 receivers may renege; D-SACKs below una).
    if (seq_le(r.start, snd_una_) || seq_gt(r.end, snd_max_) || !seq_lt(r.start, r.end)) continue;
    sacked_.add(r.start, r.end);
  }
  sacked_.trim_below(snd_una_);
}

void Tcb::ack_new_data(const InSeg& s, uint32_t acked, uint64_t now) {
  st_.bytes_acked += acked;
  const bool cwnd_limited = flight() + 2 * eff_mss() >= cc_.cwnd;
  // Bytes of the send ring now acknowledged (SYN and FIN take sequence space only).
  Seq data_end = snd_buf_seq_ + static_cast<uint32_t>(snd_.size());
  const Seq upto = seq_min(s.ack, data_end);
  if (seq_gt(upto, snd_buf_seq_)) {
    snd_.consume(upto - snd_buf_seq_);
    snd_buf_seq_ = upto;
    events_ |= kEvWritable;
  }
  snd_una_ = s.ack;
  if (seq_lt(snd_nxt_, snd_una_)) snd_nxt_ = snd_una_;
  if (timing_ && seq_gt(s.ack, rtt_seq_)) {
    timing_ = false;
    rtt_sample(now);
  }
  retries_ = 0;
  if (in_recovery_) {
    if (seq_ge(s.ack, recover_)) {
      in_recovery_ = false;  // full acknowledgment (RFC 6582 §3.2 step 3)
      cc_.cwnd = std::min(cc_.ssthresh, flight() + eff_mss());
    } else {
      // Partial ACK: retransmit the next hole and deflate (RFC 6582 §3.2 step 3),
      // without rewinding the sending of new data.
      const Seq keep = snd_nxt_;
      snd_nxt_ = snd_una_;
      retransmit_one(now);
      rexmit_hi_ = seq_max(rexmit_hi_, snd_nxt_);
      snd_nxt_ = seq_max(keep, snd_nxt_);
      cc_.cwnd = cc_.cwnd > acked ? cc_.cwnd - acked : 0;
      cc_.cwnd += eff_mss();
    }
  } else {
    ccalg_->on_ack(cc_, acked, s.flags & kEce, cwnd_limited);
  }
  dupacks_ = 0;
  rto_deadline_ = snd_una_ == snd_max_ ? UINT64_MAX : now + rto_;
}

void Tcb::on_dup_ack(const InSeg& s, uint64_t now) {
  (void)s;
  st_.dup_acks++;
  if (in_recovery_) {
    cc_.cwnd += eff_mss();  // each dup ACK: a segment left the network
    if (sack_ok_) retransmit_next_hole(now);
    return;
  }
  if (++dupacks_ < 3) {
    output(now);  // limited transmit
    return;
  }
  // Fast retransmit (RFC 5681 §3.2) unless this loss predates the last recovery.
  if (seq_gt(snd_una_, recover_) || recover_ == iss_) {
    in_recovery_ = true;
    recover_ = snd_max_;
    ccalg_->on_loss(cc_, flight());
    st_.fast_retransmits++;
    const Seq keep = snd_nxt_;
    snd_nxt_ = snd_una_;
    retransmit_one(now);
    rexmit_hi_ = snd_nxt_;
    snd_nxt_ = seq_max(keep, snd_nxt_);
  }
}

// SACK-based recovery (the gist of RFC 6675): each further duplicate ACK
// retransmits the next hole below the highest SACKed byte, once per recovery.
void Tcb::retransmit_next_hole(uint64_t now) {
  if (sacked_.count() == 0) return;
  const Seq high = sacked_[sacked_.count() - 1].end;
  Seq hole = seq_max(rexmit_hi_, snd_una_);
  while (const RangeSet::Range* r = sacked_.covering(hole)) hole = r->end;
  if (!seq_lt(hole, high)) return;
  const Seq keep = snd_nxt_;
  snd_nxt_ = hole;
  retransmit_one(now);
  rexmit_hi_ = snd_nxt_;
  snd_nxt_ = seq_max(keep, snd_nxt_);
}

// Returns false when processing must stop (the segment was consumed or dropped).
bool Tcb::process_ack(const InSeg& s, uint64_t now) {
  if (state_ == State::kSynRcvd) {
    if (!seq_in(s.ack, snd_una_ + 1, snd_max_ + 1)) {
      send_rst(s.ack);
      return false;
    }
    snd_wnd_ = uint32_t{s.wnd} << snd_wscale_;
    snd_wl1_ = s.seq;
    snd_wl2_ = s.ack;
    set_state(State::kEstablished);
    events_ |= kEvEstablished | kEvWritable;
  }
  if (seq_gt(s.ack, snd_max_)) {  // acknowledges something never sent
    ack_now_ = true;
    return false;
  }
  sack_update(s);
  if (seq_gt(s.ack, snd_una_)) {
    ack_new_data(s, s.ack - snd_una_, now);
    update_window(s);
  } else if (s.ack == snd_una_) {
    const uint32_t old_wnd = snd_wnd_;
    update_window(s);
    if (s.len == 0 && !(s.flags & (kSyn | kFin)) && snd_wnd_ == old_wnd && flight() > 0) on_dup_ack(s, now);
  }
  const bool fin_acked = fin_sent_ && seq_gt(snd_una_, fin_seq_);
  switch (state_) {
    case State::kFinWait1:
      if (fin_acked) set_state(State::kFinWait2);
      break;
    case State::kClosing:
      if (fin_acked) enter_time_wait(now);
      break;
    case State::kLastAck:
      if (fin_acked) {
        set_closed(0);
        return false;
      }
      break;
    default:
      break;
  }
  return true;
}

void Tcb::process_data(const InSeg& s, uint64_t now) {
  (void)now;
  if (s.len == 0) return;
  if (state_ != State::kEstablished && state_ != State::kFinWait1 && state_ != State::kFinWait2) return;
  // Trim to [rcv_nxt, rcv_adv).
  Seq start = s.seq;
  const uint8_t* p = s.data;
  uint32_t len = s.len;
  if (seq_lt(start, rcv_nxt_)) {
    const uint32_t skip = rcv_nxt_ - start;
    if (skip >= len) {
      ack_now_ = true;  // a duplicate: tell the peer where we are
      return;
    }
    p += skip, len -= skip, start = rcv_nxt_;
  }
  const Seq edge = rcv_adv_;
  if (seq_ge(start, edge)) {
    ack_now_ = true;
    return;
  }
  if (seq_gt(start + len, edge)) len = edge - start;
  const size_t off = rcv_.size() + (start - rcv_nxt_);
  if (off + len > rcv_.capacity()) len = static_cast<uint32_t>(rcv_.capacity() - off);
  rcv_.write_at(off, p, len);
  st_.bytes_received += len;
  if (start == rcv_nxt_) {
    Seq end = start + len;
    // Pull in out-of-order data that is now contiguous.
    if (const RangeSet::Range* r = ooo_.covering(end - 1); r && seq_gt(r->end, end)) end = r->end;
    while (const RangeSet::Range* r = ooo_.covering(end)) end = r->end;
    rcv_.commit(end - rcv_nxt_);
    rcv_nxt_ = end;
    ooo_.trim_below(rcv_nxt_);
    events_ |= kEvReadable;
    const bool filled_hole = ooo_.count() > 0 || end != start + len;
    // Delayed ACK (RFC 1122 §4.2.3.2): at least every second segment, and at
    // once when the segment filled a hole.
    if (filled_hole || ++ack_pending_ >= 2) ack_now_ = true;
    else if (delack_deadline_ == UINT64_MAX) delack_deadline_ = now + cfg_.delack_ns;
  } else {
    st_.ooo_segments++;
    if (!ooo_.add(start, start + len)) return;  // too fragmented: the peer retransmits
    ack_now_ = true;  // immediate duplicate ACK with SACK (RFC 5681 §4.2)
  }
}

void Tcb::process_fin(const InSeg& s, uint64_t now) {
  if (s.flags & kFin) {
    if (fin_received_) {  // a retransmitted FIN: our ACK was lost
      ack_now_ = true;
      if (state_ == State::kTimeWait) tw_deadline_ = now + cfg_.time_wait_ns;
      return;
    }
    if (!have_peer_fin_) {
      have_peer_fin_ = true;
      peer_fin_seq_ = s.seq + s.len;
    }
  }
  // The FIN counts once every byte before it has arrived (it may have come early).
  if (!have_peer_fin_ || fin_received_ || rcv_nxt_ != peer_fin_seq_) return;
  fin_received_ = true;
  rcv_nxt_ += 1;
  events_ |= kEvReadable;
  ack_now_ = true;
  switch (state_) {
    case State::kSynRcvd:
    case State::kEstablished:
      set_state(State::kCloseWait);
      break;
    case State::kFinWait1:
      if (fin_sent_ && seq_gt(snd_una_, fin_seq_)) enter_time_wait(now);
      else set_state(State::kClosing);
      break;
    case State::kFinWait2:
      enter_time_wait(now);
      break;
    default:
      break;
  }
}

void Tcb::input(const InSeg& s, uint64_t now, bool batched) {
  st_.segs_in++;
  last_rx_ = now;
  keepalive_sent_ = 0;
  if (cfg_.keepalive_idle_ns) keepalive_deadline_ = now + cfg_.keepalive_idle_ns;
  switch (state_) {
    case State::kClosed:
    case State::kListen:
      return;
    case State::kSynSent:
      input_syn_sent(s, now);
      return;
    default:
      break;
  }
  // PAWS (RFC 7323 §5): an old timestamp marks a stale duplicate.
  if (ts_ok_ && s.opts.has_ts && !(s.flags & kRst) && static_cast<int32_t>(s.opts.ts_val - ts_recent_) < 0) {
    ack_now_ = true;
    output(now);
    return;
  }
  if (!acceptable(s)) {
    if (!(s.flags & kRst)) ack_now_ = true;
    if (zero_window_ack(s, now) && state_ == State::kClosed) return;
    output(now);
    return;
  }
  if (process_rst(s)) {
    output(now);
    return;
  }
  if (s.flags & kSyn) {
    if (state_ == State::kSynRcvd && s.seq + 1 == rcv_nxt_) {
      send_syn(now);  // our SYN-ACK was lost: repeat it
      return;
    }
    st_.challenge_acks++;  // RFC 5961 §4
    ack_now_ = true;
    output(now);
    return;
  }
  if (!(s.flags & kAck)) return;
  if (ts_ok_ && s.opts.has_ts && seq_le(s.seq, rcv_nxt_)) ts_recent_ = s.opts.ts_val;
  if (ccalg_->ecn() && s.len > 0 && s.ce != ce_state_) {
    // RFC 8257 §3.2: when the CE state flips, acknowledge what came before
    // under the old state, so ECE covers exactly the marked bytes.
    if (ack_pending_ > 0) send_ack(now);
    ce_state_ = s.ce;
  }
  if (!process_ack(s, now)) {
    if (state_ != State::kClosed) output(now);
    return;
  }
  process_data(s, now);
  process_fin(s, now);
  if (!batched) output(now);
}

}  // namespace slip::net::tcp
