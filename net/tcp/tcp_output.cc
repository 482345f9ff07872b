// Segment transmission: windows, Nagle (optional), FIN placement, options,
// retransmission of one segment (skipping SACKed data), ACKs and RSTs.
#include <algorithm>

#include "net/tcp/tcb.h"

namespace slip::net::tcp {

uint32_t Tcb::eff_mss() const noexcept {
  const uint32_t m = std::min<uint32_t>(peer_mss_, cfg_.mss);
  return m - (ts_ok_ ? 12 : 0);  // the timestamp option rides in every segment
}

// Data per segment: eff_mss() less room for one SACK block when SACK is on.
// RFC 6691: the peer's MSS leaves options out, so the sender makes room for
// its own. While we hold out-of-order data every segment carries SACK blocks
// (fill_options); a frame over the MTU is dropped (net_tap drops it at tx),
// and so is each retransmission of it for as long as the hole lasts, which
// stalled a flow both ways. Sizing the send buffers, and so the segments, for
// one block keeps full segments going by reference in that state too; a
// data segment carries as many more blocks as still fit.
uint32_t Tcb::data_mss() const noexcept { return eff_mss() - (sack_ok_ ? kSackBlockRoom : 0); }

uint16_t Tcb::advertised_window() noexcept {
  uint32_t space = static_cast<uint32_t>(rcv_.capacity() - rcv_.size());
  // Receiver-side silly-window avoidance (RFC 1122 §4.2.3.3): do not offer a
  // sliver; wait until a full segment or half the buffer is free.
  if (space < std::min<uint32_t>(static_cast<uint32_t>(rcv_.capacity() / 2), cfg_.mss)) space = 0;
  Seq edge = rcv_nxt_ + space;
  if (seq_lt(edge, rcv_adv_)) edge = rcv_adv_;  // never move the right edge left
  const uint32_t wnd = edge - rcv_nxt_;
  if (state_ == State::kSynSent || state_ == State::kSynRcvd) {
    const uint16_t raw = static_cast<uint16_t>(std::min<uint32_t>(wnd, 65535));  // SYNs are never scaled
    rcv_adv_ = seq_max(rcv_adv_, rcv_nxt_ + raw);
    return raw;
  }
  const uint16_t raw = static_cast<uint16_t>(std::min<uint32_t>(wnd >> rcv_wscale_, 65535));
  rcv_adv_ = seq_max(rcv_adv_, rcv_nxt_ + (uint32_t{raw} << rcv_wscale_));
  return raw;
}

void Tcb::fill_options(SegOpts& o, bool syn, uint32_t len, uint64_t now) const noexcept {
  if (syn) {
    o.mss = cfg_.mss;
    if (cfg_.window_scale) o.wscale = static_cast<int8_t>(rcv_wscale_);
    o.sack_ok = cfg_.sack;
  }
  if (syn ? cfg_.timestamps : ts_ok_) {
    o.has_ts = true;
    // 1 ms ticks (RFC 7323 §5.4), never behind one already sent: a stale
    // clock reading (see rtt_sample) would make the peer drop the segment as
    // an old duplicate (PAWS).
    const uint32_t tick = static_cast<uint32_t>((now > ts_base_ns_ ? now - ts_base_ns_ : 0) / 1'000'000) + iss_;
    if (static_cast<int32_t>(tick - ts_last_) > 0) ts_last_ = tick;
    o.ts_val = ts_last_;
    o.ts_ecr = ts_recent_;
  }
  if (!syn && sack_ok_ && ooo_.count() > 0) {
    // Most recent block first (RFC 2018 §4), then the others, as many as fit
    // beside len bytes of data in the peer's MSS (data_mss leaves room for one).
    const uint32_t mss = std::min<uint32_t>(peer_mss_, cfg_.mss);
    const uint32_t used = len + (o.has_ts ? 12 : 0) + 4;
    const size_t fit = used + 8 <= mss ? (mss - used) / 8 : 0;
    const size_t room = std::min<size_t>(o.has_ts ? 3 : 4, fit);
    const size_t first = ooo_.last_added() < ooo_.count() ? ooo_.last_added() : 0;
    if (room > 0) o.sack[o.n_sack++] = ooo_[first];
    for (size_t i = 0; i < ooo_.count() && o.n_sack < room; i++)
      if (i != first) o.sack[o.n_sack++] = ooo_[i];
  }
}

void Tcb::emit_segment(Seq seq, uint8_t flags, uint32_t off, uint32_t len, uint64_t now) {
  OutSeg o;
  o.seq = seq;
  o.flags = flags;
  if (flags & kAck) o.ack = rcv_nxt_;
  if (ce_state_ && (flags & kAck)) o.flags |= kEce;
  o.wnd = advertised_window();
  fill_options(o.opts, flags & kSyn, len, now);
  o.payload = &snd_;
  o.payload_off = off;
  o.len = len;
  o.ect = len > 0 && ccalg_->ecn();
  emit_(ctx_, o);
  if (len) snd_.sent_up_to(off + len);  // later writes start a new buffer
  st_.segs_out++;
  if (flags & kAck) {
    ack_pending_ = 0;
    ack_now_ = false;
    delack_deadline_ = UINT64_MAX;
  }
}

void Tcb::send_syn(uint64_t now) {
  const uint8_t flags = state_ == State::kSynRcvd ? (kSyn | kAck) : kSyn;
  emit_segment(iss_, flags, 0, 0, now);
  snd_nxt_ = iss_ + 1;
  snd_max_ = seq_max(snd_max_, snd_nxt_);
  if (rto_deadline_ == UINT64_MAX) arm_rto(now);
  if (!timing_ && retries_ == 0) {
    timing_ = true;
    rtt_seq_ = iss_;
    rtt_start_ = now;
  }
}

void Tcb::send_ack(uint64_t now) { emit_segment(snd_nxt_, kAck, 0, 0, now); }

void Tcb::send_rst(Seq seq) {
  OutSeg o;
  o.seq = seq;
  o.flags = kRst;
  emit_(ctx_, o);
  st_.segs_out++;
}

bool Tcb::fin_pending() const noexcept { return write_closed_ && snd_nxt_ == fin_seq_; }

// Sends the segment at snd_nxt_ again (after RTO or on loss), trimmed so it
// does not resend data the peer has SACKed.
void Tcb::retransmit_one(uint64_t now) {
  if (state_ == State::kSynSent || state_ == State::kSynRcvd) {
    send_syn(now);
    return;
  }
  const Seq data_end = snd_buf_seq_ + static_cast<uint32_t>(snd_.size());
  while (const RangeSet::Range* r = sacked_.covering(snd_nxt_)) snd_nxt_ = seq_min(r->end, data_end);
  if (seq_lt(snd_nxt_, data_end)) {
    uint32_t len = std::min<uint32_t>(data_mss(), data_end - snd_nxt_);
    for (size_t i = 0; i < sacked_.count(); i++)
      if (seq_in(sacked_[i].start, snd_nxt_ + 1, snd_nxt_ + len)) len = sacked_[i].start - snd_nxt_;
    len = std::min<uint32_t>(len, static_cast<uint32_t>(snd_.run_from(snd_nxt_ - snd_buf_seq_)));
    uint8_t flags = kAck;
    if (write_closed_ && snd_nxt_ + len == fin_seq_) flags |= kFin;
    emit_segment(snd_nxt_, flags, snd_nxt_ - snd_buf_seq_, len, now);
    snd_nxt_ += len + ((flags & kFin) ? 1 : 0);
    st_.retransmits++;
  } else if (fin_pending() && fin_sent_) {
    emit_segment(snd_nxt_, kAck | kFin, 0, 0, now);
    snd_nxt_ += 1;
    st_.retransmits++;
  }
  snd_max_ = seq_max(snd_max_, snd_nxt_);
}

void Tcb::output(uint64_t now) {
  const bool can_send = state_ == State::kEstablished || state_ == State::kCloseWait ||
                        state_ == State::kFinWait1 || state_ == State::kClosing || state_ == State::kLastAck;
  if (can_send) {
    const Seq data_end = snd_buf_seq_ + static_cast<uint32_t>(snd_.size());
    for (;;) {
      // Usable window: the peer's right edge (anchored at the ACK that
      // announced it) and the congestion window, whichever is tighter.
      const uint32_t inflight = snd_nxt_ - snd_una_;
      const Seq edge = snd_wl2_ + snd_wnd_;
      const uint32_t peer_room = seq_gt(edge, snd_nxt_) ? edge - snd_nxt_ : 0;
      // Limited transmit (RFC 3042): each of the first two duplicate ACKs
      // lets one new segment out, so small windows still reach three.
      const uint32_t cwnd = cc_.cwnd + (in_recovery_ ? 0 : std::min(dupacks_, 2u) * eff_mss());
      const uint32_t cc_room = cwnd > inflight ? cwnd - inflight : 0;
      const uint32_t avail = std::min(peer_room, cc_room);
      // Going back over sent data (after a timeout): skip what the peer SACKed.
      if (seq_lt(snd_nxt_, snd_max_))
        while (const RangeSet::Range* r = sacked_.covering(snd_nxt_)) snd_nxt_ = seq_min(r->end, data_end);
      if (seq_lt(snd_nxt_, data_end)) {
        const uint32_t unsent = data_end - snd_nxt_;
        const uint32_t room = data_mss();
        uint32_t len = std::min({unsent, avail, room});
        if (seq_lt(snd_nxt_, snd_max_))
          for (size_t i = 0; i < sacked_.count(); i++)
            if (seq_in(sacked_[i].start, snd_nxt_ + 1, snd_nxt_ + len)) len = sacked_[i].start - snd_nxt_;
        if (len == 0) break;
        // Sender-side silly-window avoidance and optional Nagle: a short
        // segment goes out only when it is all we have and nothing waits.
        if (len < room && len < unsent && inflight > 0) break;
        if (len < room && cfg_.nagle && inflight > 0) break;
        // Stop at the end of the send buffer's packet buffer: after a segment
        // the window cut short, the next one starts a buffer again and goes
        // by reference (SendQueue), instead of every later one straddling two.
        len = std::min<uint32_t>(len, static_cast<uint32_t>(snd_.run_from(snd_nxt_ - snd_buf_seq_)));
        uint8_t flags = kAck;
        if (snd_nxt_ + len == data_end) flags |= kPsh;
        if (write_closed_ && snd_nxt_ + len == fin_seq_) flags |= kFin;
        if (!timing_ && snd_nxt_ == snd_max_) {
          timing_ = true;  // time one new segment per round trip (Karn: never a retransmission)
          rtt_seq_ = snd_nxt_;
          rtt_start_ = now;
        }
        const bool rexmit = seq_lt(snd_nxt_, snd_max_);
        emit_segment(snd_nxt_, flags, snd_nxt_ - snd_buf_seq_, len, now);
        if (rexmit) st_.retransmits++;
        snd_nxt_ += len;
        if (flags & kFin) {
          fin_sent_ = true;
          snd_nxt_ += 1;
        }
        snd_max_ = seq_max(snd_max_, snd_nxt_);
        if (rto_deadline_ == UINT64_MAX) arm_rto(now);
        continue;
      }
      if (fin_pending()) {
        emit_segment(snd_nxt_, kAck | kFin, 0, 0, now);
        fin_sent_ = true;
        snd_nxt_ += 1;
        snd_max_ = seq_max(snd_max_, snd_nxt_);
        if (rto_deadline_ == UINT64_MAX) arm_rto(now);
      }
      break;
    }
    // Zero window with data waiting and nothing in flight: probe it (RFC 9293 §3.8.6.1).
    if (snd_wnd_ == 0 && seq_lt(snd_nxt_, data_end) && snd_una_ == snd_max_ && persist_deadline_ == UINT64_MAX) {
      persist_backoff_ = std::max(rto_, cfg_.rto_min_ns);
      persist_deadline_ = now + persist_backoff_;
    }
  }
  if (ack_now_ && state_ != State::kClosed && state_ != State::kSynSent && state_ != State::kListen) send_ack(now);
}

bool Tcb::rst_for(const InSeg& seg, OutSeg* out) noexcept {
  if (seg.flags & kRst) return false;
  *out = OutSeg{};
  if (seg.flags & kAck) {
    out->seq = seg.ack;
    out->flags = kRst;
  } else {
    out->seq = 0;
    out->ack = seg.seq + seg.len + ((seg.flags & kSyn) ? 1 : 0) + ((seg.flags & kFin) ? 1 : 0);
    out->flags = kRst | kAck;
  }
  return true;
}

}  // namespace slip::net::tcp
