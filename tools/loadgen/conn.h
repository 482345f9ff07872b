// One load-generating connection: its protocol instance, the requests it has
// outstanding, and its share of the statistics. A sender uthread pushes
// requests and a receiver uthread completes them; they may run on different
// kthreads, so what they share is atomic (single producer, single consumer).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine.h"

namespace slip::loadgen {

// The run's time line (now_ns()): sends happen in [start, send_until);
// requests intended in [measure_from, send_until) are measured; receivers
// give up at drain_until.
struct Window {
  uint64_t start = 0, measure_from = 0, send_until = 0, drain_until = 0, timeout_ns = 0;
  bool measured(uint64_t intended) const noexcept { return intended >= measure_from && intended < send_until; }
};

// Counters with one writer each (or fetch_add where two may write), read by the progress line.
struct AtomicCounts {
  std::atomic<uint64_t> scheduled{0}, sent{0}, completed{0}, ok{0}, miss{0}, error{0};
  std::atomic<uint64_t> timeouts{0}, dropped{0}, conn_errors{0}, parse_errors{0}, goodput{0};
  void add_to(Counts& c) const noexcept;
};

class Conn final : public ResponseSink {
 public:
  Conn(const LoadConfig& cfg, const Window& w, uint32_t index);

  // Connects (TCP) or binds (UDP); throws LoadError with the cause.
  void open(net::Stack& stack, uint64_t deadline);
  // Sends one request and waits for its answer, before the run: proves the
  // server speaks the protocol. Throws LoadError otherwise.
  void probe(uint64_t deadline);
  // Runs the protocol's preload requests [from, to) with a pipeline of 64; throws LoadError.
  void preload(uint64_t from, uint64_t to, uint64_t step);
  void run_sender();    // the open-loop schedule, or the first `depth` requests of a closed loop
  void run_receiver();  // until every request is answered, the connection fails, or drain_until
  // Counts what is still outstanding (timeouts, or dropped on a failed connection) and closes.
  void finish();

  void complete(uint64_t id, Outcome outcome, uint64_t now) noexcept override;
  void token(uint64_t now) noexcept override;

  AtomicCounts counts;
  Histogram latency, send_lag, ttft, itl, tpot, e2e;

 private:
  struct Pending {
    std::atomic<uint64_t> key{0};       // udp: id + 1 while outstanding
    std::atomic<uint64_t> intended{0};
    uint64_t first_token = 0, last_token = 0;
    uint32_t tokens = 0;
  };
  bool udp() const noexcept { return cfg_.proto->transport == Transport::udp; }
  bool push(uint64_t id, uint64_t intended) noexcept;
  void unpush(uint64_t id) noexcept;
  void record(Pending& e, uint64_t intended, Outcome o, uint64_t now) noexcept;
  bool send_batch() noexcept;  // txbuf_ as built; false when the connection failed
  // Reads once (until deadline) and parses; false when the connection failed or ended.
  enum class ReadStatus { data, timeout, failed };
  ReadStatus read_and_parse(uint64_t deadline) noexcept;
  void fail() noexcept;
  void expire_udp(uint64_t now) noexcept;
  void send_closed_credits() noexcept;
  // Closed loop: builds one request sent now into txbuf_; false when the ring is full.
  bool enqueue_closed(uint64_t now) noexcept;

  const LoadConfig& cfg_;
  const Window& w_;
  uint32_t index_;
  net::Endpoint server_;  // this connection's server
  std::unique_ptr<ClientProtocol> proto_;
  std::unique_ptr<net::TcpConn> tcp_;
  std::unique_ptr<net::UdpConn> udp_;
  std::vector<Pending> ring_;
  uint64_t mask_ = 0;
  std::atomic<uint64_t> head_{0}, tail_{0};  // tcp: the FIFO of outstanding requests
  std::atomic<uint64_t> outstanding_{0};
  std::atomic<bool> dead_{false}, sender_done_{false};
  std::atomic<uint64_t> next_id_{1};
  std::string txbuf_;
  std::vector<size_t> tx_ends_;  // udp: where each datagram in txbuf_ ends
  std::vector<uint8_t> rxbuf_;
  size_t rx_have_ = 0;
  bool unsolicited_ = false;     // a response arrived with nothing outstanding
  uint64_t credits_ = 0;         // closed loop: answers not yet replaced by a new request
  // Set while probing or preloading: answers are counted here, not measured.
  bool setup_phase_ = false;
  uint64_t setup_done_ = 0, setup_errors_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace slip::loadgen
