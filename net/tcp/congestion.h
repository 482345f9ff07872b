// Congestion control behind a small interface (RFC 5681 NewReno with RFC 6582
// recovery, and DCTCP per RFC 8257), so a connection can pick one at setup.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

namespace slip::net::tcp {

struct CcState {
  uint32_t cwnd = 0;       // bytes
  uint32_t ssthresh = 0;   // bytes
  uint32_t mss = 1460;
};

class CongestionControl {
 public:
  virtual ~CongestionControl() = default;
  virtual std::string_view name() const noexcept = 0;
  virtual void init(CcState& s) noexcept;
  // New data cumulatively acknowledged outside recovery; ece: the ACK carried
  // ECE; cwnd_limited: the sender was using its window, so growth is earned
  // (an application- or receiver-limited sender must not inflate cwnd, RFC 7661).
  virtual void on_ack(CcState& s, uint32_t acked, bool ece, bool cwnd_limited) noexcept;
  // Entering fast recovery (three duplicate ACKs or SACK loss).
  virtual void on_loss(CcState& s, uint32_t flight) noexcept;
  // The retransmission timer fired.
  virtual void on_timeout(CcState& s, uint32_t flight) noexcept;
  // Whether outgoing data packets carry ECT(0).
  virtual bool ecn() const noexcept { return false; }
};

// RFC 5681 slow start and congestion avoidance (byte counting, RFC 3465 L=2).
class NewReno : public CongestionControl {
 public:
  std::string_view name() const noexcept override { return "newreno"; }
};

// RFC 8257: the sender keeps alpha, the EWMA of the marked fraction, and cuts
// cwnd by alpha/2 once per window of data in which marks arrived.
class Dctcp : public CongestionControl {
 public:
  std::string_view name() const noexcept override { return "dctcp"; }
  void on_ack(CcState& s, uint32_t acked, bool ece, bool cwnd_limited) noexcept override;
  bool ecn() const noexcept override { return true; }
  double alpha() const noexcept { return alpha_; }

 private:
  double alpha_ = 1.0;  // RFC 8257 §4.2: start conservative
  uint64_t acked_ = 0, marked_ = 0;
  uint64_t window_end_bytes_ = 0, total_acked_ = 0;
  static constexpr double kG = 1.0 / 16;
};

// "newreno" or "dctcp"; nullptr for an unknown name.
std::unique_ptr<CongestionControl> make_congestion_control(std::string_view name);

}  // namespace slip::net::tcp
