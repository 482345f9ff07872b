// NewReno and DCTCP window arithmetic.
#include "net/tcp/congestion.h"

#include <algorithm>

namespace slip::net::tcp {

void CongestionControl::init(CcState& s) noexcept {
  // RFC 6928 initial window of 10 segments.
  s.cwnd = 10 * s.mss;
  s.ssthresh = UINT32_MAX;
}

void CongestionControl::on_ack(CcState& s, uint32_t acked, bool, bool cwnd_limited) noexcept {
  if (!cwnd_limited) return;
  if (s.cwnd < s.ssthresh) {
    s.cwnd += std::min(acked, 2 * s.mss);  // slow start, appropriate byte counting
  } else {
    // Congestion avoidance: about one MSS per window.
    s.cwnd += std::max<uint32_t>(1, static_cast<uint32_t>(uint64_t{s.mss} * s.mss / s.cwnd));
  }
}

void CongestionControl::on_loss(CcState& s, uint32_t flight) noexcept {
  s.ssthresh = std::max(flight / 2, 2 * s.mss);
  s.cwnd = s.ssthresh + 3 * s.mss;
}

void CongestionControl::on_timeout(CcState& s, uint32_t flight) noexcept {
  s.ssthresh = std::max(flight / 2, 2 * s.mss);
  s.cwnd = s.mss;  // loss window (RFC 5681 §3.1)
}

void Dctcp::on_ack(CcState& s, uint32_t acked, bool ece, bool cwnd_limited) noexcept {
  acked_ += acked;
  if (ece) marked_ += acked;
  total_acked_ += acked;
  if (total_acked_ >= window_end_bytes_) {
    // One observation window (about one RTT of data) ended: update alpha.
    const double f = acked_ ? static_cast<double>(marked_) / static_cast<double>(acked_) : 0.0;
    alpha_ = (1 - kG) * alpha_ + kG * f;
    if (marked_) {
      s.cwnd = std::max<uint32_t>(static_cast<uint32_t>(s.cwnd * (1 - alpha_ / 2)), 2 * s.mss);
      s.ssthresh = s.cwnd;
    }
    acked_ = marked_ = 0;
    window_end_bytes_ = total_acked_ + s.cwnd;
    if (ece) return;
  }
  if (!ece) CongestionControl::on_ack(s, acked, false, cwnd_limited);
}

std::unique_ptr<CongestionControl> make_congestion_control(std::string_view name) {
  if (name == "newreno") return std::make_unique<NewReno>();
  if (name == "dctcp") return std::make_unique<Dctcp>();
  return nullptr;
}

}  // namespace slip::net::tcp
