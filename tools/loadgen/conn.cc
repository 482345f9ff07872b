// A load-generating connection (see conn.h): the send schedule, response
// matching and per-request accounting.
#include "conn.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include <fmt/core.h>

#include "slip/runtime/runtime.h"

namespace slip::loadgen {
namespace {

// Gaps longer than this park the sender; the last stretch is spun (with
// yields) so sends leave on time. A parked kthread's wake-up on this kind of
// VM takes ~15 us typically and far more in the tail, so the sender wakes
// this early; --spin (kthreads never park) is more precise still.
constexpr uint64_t kSpinWindowNs = 200'000;
constexpr size_t kMaxBatch = 64;          // requests due together go out in one write
constexpr size_t kRxInitial = 256 * 1024;
constexpr size_t kRxMax = 16 * 1024 * 1024;

void wait_until(uint64_t t) {
  if (const uint64_t now = now_ns(); t > now + kSpinWindowNs) rt::sleep_until(t - kSpinWindowNs / 2);
  while (now_ns() < t) rt::yield();
}

uint64_t ring_size(const LoadConfig& cfg) {
  // Anything outstanding beyond what the timeout allows would time out anyway.
  const double per_conn = cfg.mode == Mode::open ? cfg.rate / cfg.conns * cfg.timeout_s * 2 : 0;
  const uint64_t want = static_cast<uint64_t>(std::min(per_conn, 1e9)) + cfg.depth + 64;
  return std::bit_ceil(std::clamp<uint64_t>(want, 64, std::max<uint64_t>(cfg.max_outstanding, 64)));
}

}  // namespace

void AtomicCounts::add_to(Counts& c) const noexcept {
  auto r = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  c.scheduled += r(scheduled);
  c.sent += r(sent);
  c.completed += r(completed);
  c.ok += r(ok);
  c.miss += r(miss);
  c.error += r(error);
  c.timeouts += r(timeouts);
  c.dropped += r(dropped);
  c.conn_errors += r(conn_errors);
  c.parse_errors += r(parse_errors);
  c.goodput += r(goodput);
}

Conn::Conn(const LoadConfig& cfg, const Window& w, uint32_t index)
    : cfg_(cfg), w_(w), index_(index), server_(cfg.servers[index % cfg.servers.size()]), proto_(cfg.proto->make(cfg.pcfg, index)), ring_(ring_size(cfg)),
      rng_(cfg.seed * 1'000'003 + index) {
  mask_ = ring_.size() - 1;
  rxbuf_.resize(kRxInitial);
}

void Conn::open(net::Stack& stack, uint64_t deadline) {
  if (udp()) {
    auto u = stack.udp_bind(0);
    if (!u) throw LoadError("cannot open a UDP socket: " + u.message());
    udp_ = std::move(*u);
    return;
  }
  auto c = stack.tcp_dial(server_, deadline);
  if (!c) {
    throw LoadError(fmt::format("cannot connect to {} (connection {}): {}", server_.str(), index_,
                                c.error() == ETIMEDOUT ? "no answer within the connect timeout" : c.message()));
  }
  tcp_ = std::move(*c);
}

bool Conn::push(uint64_t id, uint64_t intended) noexcept {
  if (udp()) {
    Pending& e = ring_[id & mask_];
    // A slot still held means its request went unanswered for a whole ring of
    // requests: it timed out (unless the receiver completes it first).
    if (uint64_t k = e.key.load(std::memory_order_acquire); k != 0 && e.key.compare_exchange_strong(k, 0)) {
      if (w_.measured(e.intended.load(std::memory_order_relaxed))) counts.timeouts.fetch_add(1, std::memory_order_relaxed);
      outstanding_.fetch_sub(1, std::memory_order_relaxed);
    }
    e.intended.store(intended, std::memory_order_relaxed);
    e.tokens = 0;
    outstanding_.fetch_add(1, std::memory_order_relaxed);
    e.key.store(id + 1, std::memory_order_release);
    return true;
  }
  const uint64_t t = tail_.load(std::memory_order_relaxed);
  if (t - head_.load(std::memory_order_acquire) > mask_) return false;  // full: overloaded
  Pending& e = ring_[t & mask_];
  e.intended.store(intended, std::memory_order_relaxed);
  e.tokens = 0;
  e.first_token = e.last_token = 0;
  outstanding_.fetch_add(1, std::memory_order_relaxed);
  tail_.store(t + 1, std::memory_order_release);
  return true;
}

void Conn::unpush(uint64_t id) noexcept {
  Pending& e = ring_[id & mask_];
  if (uint64_t k = id + 1; e.key.compare_exchange_strong(k, 0)) outstanding_.fetch_sub(1, std::memory_order_relaxed);
}

void Conn::complete(uint64_t id, Outcome o, uint64_t now) noexcept {
  Pending* e;
  uint64_t intended;
  uint64_t h = 0;
  if (udp()) {
    e = &ring_[id & mask_];
    uint64_t k = e->key.load(std::memory_order_acquire);
    if (k != id + 1) return;  // late after its slot was reused, or a duplicate: not ours any more
    intended = e->intended.load(std::memory_order_relaxed);
    if (!e->key.compare_exchange_strong(k, 0)) return;
  } else {
    h = head_.load(std::memory_order_relaxed);
    if (h == tail_.load(std::memory_order_acquire)) {
      unsolicited_ = true;
      return;
    }
    e = &ring_[h & mask_];
    intended = e->intended.load(std::memory_order_relaxed);
  }
  if (setup_phase_) {
    setup_done_++;
    if (o == Outcome::error) setup_errors_++;
  } else {
    record(*e, intended, o, now);
  }
  if (!udp()) head_.store(h + 1, std::memory_order_release);
  outstanding_.fetch_sub(1, std::memory_order_relaxed);
  if (cfg_.mode == Mode::closed && !setup_phase_) credits_++;
}

void Conn::token(uint64_t now) noexcept {
  if (udp()) return;
  const uint64_t h = head_.load(std::memory_order_relaxed);
  if (h == tail_.load(std::memory_order_acquire)) return;
  Pending& e = ring_[h & mask_];
  if (e.tokens == 0) {
    e.first_token = now;
  } else if (!setup_phase_ && w_.measured(e.intended.load(std::memory_order_relaxed))) {
    itl.record(now - e.last_token);
  }
  e.last_token = now;
  e.tokens++;
}

void Conn::record(Pending& e, uint64_t intended, Outcome o, uint64_t now) noexcept {
  if (!w_.measured(intended)) return;
  const uint64_t lat = now > intended ? now - intended : 0;
  if (lat > w_.timeout_ns) {
    counts.timeouts.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  counts.completed.fetch_add(1, std::memory_order_relaxed);
  (o == Outcome::ok ? counts.ok : o == Outcome::miss ? counts.miss : counts.error).fetch_add(1, std::memory_order_relaxed);
  latency.record(lat);
  if (!cfg_.proto->streaming) return;
  e2e.record(lat);
  if (e.tokens == 0) return;
  const uint64_t first = e.first_token - std::min(e.first_token, intended);
  const uint64_t per_token = e.tokens > 1 ? (e.last_token - e.first_token) / (e.tokens - 1) : 0;
  ttft.record(first);
  if (e.tokens > 1) tpot.record(per_token);
  const bool ttft_ok = cfg_.slo_ttft_ms <= 0 || static_cast<double>(first) <= cfg_.slo_ttft_ms * 1e6;
  const bool tpot_ok = cfg_.slo_tpot_ms <= 0 || static_cast<double>(per_token) <= cfg_.slo_tpot_ms * 1e6;
  if (o == Outcome::ok && ttft_ok && tpot_ok) counts.goodput.fetch_add(1, std::memory_order_relaxed);
}

void Conn::fail() noexcept {
  if (!dead_.exchange(true)) counts.conn_errors.fetch_add(1, std::memory_order_relaxed);
}

bool Conn::send_batch() noexcept {
  if (txbuf_.empty()) return true;
  bool ok = true;
  if (udp()) {
    size_t from = 0;
    for (size_t end : tx_ends_) {
      // A full NIC or socket queue loses the datagram; it is then a timeout, as on a real network.
      (void)udp_->write_to(txbuf_.data() + from, end - from, server_);
      from = end;
    }
  } else {
    ok = static_cast<bool>(tcp_->write_full(txbuf_.data(), txbuf_.size()));
    if (!ok) fail();
  }
  txbuf_.clear();
  tx_ends_.clear();
  return ok;
}

void Conn::run_sender() {
  if (cfg_.mode == Mode::closed) {
    const uint64_t now = now_ns();
    for (uint32_t i = 0; i < cfg_.depth && enqueue_closed(now); i++) {
    }
    send_batch();
    sender_done_.store(true, std::memory_order_release);
    return;
  }
  const Distribution gaps = cfg_.arrival.with_mean(1e9 * cfg_.conns / cfg_.rate);
  // Connections start spread over one mean gap, so constant arrivals interleave.
  double t = static_cast<double>(w_.start) + gaps.mean_ns() * index_ / cfg_.conns;
  while (t < static_cast<double>(w_.send_until)) {
    if (!dead_.load(std::memory_order_relaxed)) wait_until(static_cast<uint64_t>(t));
    const uint64_t now = now_ns();
    while (t < static_cast<double>(w_.send_until) && (t <= static_cast<double>(now) || dead_.load(std::memory_order_relaxed)) &&
           tx_ends_.size() < kMaxBatch) {
      const uint64_t intended = static_cast<uint64_t>(t);
      const bool measured = w_.measured(intended);
      t += gaps.sample(rng_);
      if (measured) counts.scheduled.fetch_add(1, std::memory_order_relaxed);
      const uint64_t id = next_id_.fetch_add(1, std::memory_order_relaxed);
      if (dead_.load(std::memory_order_relaxed) || !push(id, intended)) {
        if (measured) counts.dropped.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      proto_->build_request(id, txbuf_);
      tx_ends_.push_back(txbuf_.size());
      if (measured) {
        counts.sent.fetch_add(1, std::memory_order_relaxed);
        send_lag.record(now > intended ? now - intended : 0);
      }
    }
    if (!send_batch()) continue;  // the rest of the schedule is counted as dropped
  }
  sender_done_.store(true, std::memory_order_release);
}

Conn::ReadStatus Conn::read_and_parse(uint64_t deadline) noexcept {
  size_t n = 0;
  if (udp()) {
    net::Endpoint from;
    auto r = udp_->read_from(rxbuf_.data(), rxbuf_.size(), &from, deadline);
    if (!r) return r.error() == ETIMEDOUT ? ReadStatus::timeout : ReadStatus::failed;
    if (from != server_) return ReadStatus::data;  // not from our server: ignore
    auto p = proto_->parse(rxbuf_.data(), *r, now_ns(), *this);
    if (!p) counts.parse_errors.fetch_add(1, std::memory_order_relaxed);  // one bad datagram, not the connection
    return ReadStatus::data;
  }
  if (rx_have_ == rxbuf_.size()) {
    if (rxbuf_.size() >= kRxMax) return ReadStatus::failed;  // a response larger than we accept
    rxbuf_.resize(rxbuf_.size() * 2);
  }
  auto r = tcp_->read(rxbuf_.data() + rx_have_, rxbuf_.size() - rx_have_, deadline);
  if (!r) return r.error() == ETIMEDOUT ? ReadStatus::timeout : ReadStatus::failed;
  if (*r == 0) return ReadStatus::failed;  // the server closed
  n = *r;
  rx_have_ += n;
  auto p = proto_->parse(rxbuf_.data(), rx_have_, now_ns(), *this);
  if (!p || unsolicited_) {
    counts.parse_errors.fetch_add(1, std::memory_order_relaxed);
    return ReadStatus::failed;
  }
  std::memmove(rxbuf_.data(), rxbuf_.data() + *p, rx_have_ - *p);
  rx_have_ -= *p;
  return ReadStatus::data;
}

void Conn::send_closed_credits() noexcept {
  const uint64_t now = now_ns();
  for (; credits_ > 0; credits_--) {
    if (now >= w_.send_until) {
      credits_ = 0;
      break;
    }
    if (!enqueue_closed(now)) break;
  }
  send_batch();
}

bool Conn::enqueue_closed(uint64_t now) noexcept {
  const uint64_t id = next_id_.fetch_add(1, std::memory_order_relaxed);
  if (!push(id, now)) return false;
  proto_->build_request(id, txbuf_);
  tx_ends_.push_back(txbuf_.size());
  if (w_.measured(now)) {
    counts.scheduled.fetch_add(1, std::memory_order_relaxed);
    counts.sent.fetch_add(1, std::memory_order_relaxed);
  }
  return true;
}

void Conn::expire_udp(uint64_t now) noexcept {
  for (Pending& e : ring_) {
    uint64_t k = e.key.load(std::memory_order_acquire);
    if (k == 0) continue;
    const uint64_t intended = e.intended.load(std::memory_order_relaxed);
    if (now - std::min(now, intended) <= w_.timeout_ns || !e.key.compare_exchange_strong(k, 0)) continue;
    if (w_.measured(intended)) counts.timeouts.fetch_add(1, std::memory_order_relaxed);
    outstanding_.fetch_sub(1, std::memory_order_relaxed);
    if (cfg_.mode == Mode::closed) credits_++;  // the lost request's place goes to a new one
  }
}

void Conn::run_receiver() {
  uint64_t last_expire = now_ns();
  for (;;) {
    const uint64_t now = now_ns();
    if (dead_.load(std::memory_order_relaxed) || now >= w_.drain_until) break;
    if (sender_done_.load(std::memory_order_acquire) && outstanding_.load(std::memory_order_relaxed) == 0 &&
        (cfg_.mode == Mode::open || now >= w_.send_until))
      break;
    const ReadStatus s = read_and_parse(std::min(now + 50'000'000, w_.drain_until));
    if (s == ReadStatus::failed) {
      fail();
      break;
    }
    if (udp() && now_ns() - last_expire > 50'000'000) {
      last_expire = now_ns();
      expire_udp(last_expire);
    }
    if (cfg_.mode == Mode::closed && credits_ > 0) send_closed_credits();
  }
}

void Conn::probe(uint64_t deadline) {
  setup_phase_ = true;
  const uint64_t before = setup_done_;
  uint64_t next_send = 0;
  while (setup_done_ == before) {
    const uint64_t now = now_ns();
    if (now >= deadline) {
      setup_phase_ = false;
      throw LoadError(fmt::format("no answer from {} ({}) within the connect timeout; is the server running?",
                                  server_.str(), cfg_.proto->name));
    }
    // TCP sends once; UDP retries every 200 ms, since a datagram may be lost.
    if (now >= next_send && (udp() || next_send == 0)) {
      const uint64_t id = next_id_.fetch_add(1, std::memory_order_relaxed);
      push(id, now);
      proto_->build_request(id, txbuf_);
      tx_ends_.push_back(txbuf_.size());
      if (!send_batch()) throw LoadError(fmt::format("{}: the connection failed while sending", server_.str()));
      next_send = now + 200'000'000;
    }
    const ReadStatus s = read_and_parse(std::min(deadline, now + 200'000'000));
    if (s == ReadStatus::failed) {
      setup_phase_ = false;
      throw LoadError(fmt::format("{} answered with {} for protocol {} (is it a {} server?)", server_.str(),
                                  counts.parse_errors.load() ? "malformed bytes" : "a closed connection",
                                  cfg_.proto->name, cfg_.proto->name));
    }
  }
  // UDP: retried probes still outstanding are not part of the run.
  if (udp())
    for (uint64_t id = 1; id < next_id_.load(); id++) unpush(id);
  counts.parse_errors.store(0);
  setup_phase_ = false;
}

void Conn::preload(uint64_t from, uint64_t to, uint64_t step) {
  setup_phase_ = true;
  uint64_t i = from;
  while (i < to) {
    const uint64_t before = setup_done_, now = now_ns();
    uint64_t n = 0;
    for (; i < to && n < kMaxBatch; i += step, n++) {
      push(next_id_.fetch_add(1, std::memory_order_relaxed), now);
      proto_->build_preload(i, txbuf_);
      tx_ends_.push_back(txbuf_.size());
    }
    if (!send_batch()) throw LoadError(fmt::format("preload: the connection to {} failed", server_.str()));
    const uint64_t deadline = now_ns() + static_cast<uint64_t>(cfg_.connect_timeout_s * 1e9);
    while (setup_done_ - before < n) {
      if (now_ns() >= deadline || read_and_parse(deadline) == ReadStatus::failed)
        throw LoadError(fmt::format("preload: {} stopped answering", server_.str()));
    }
  }
  if (setup_errors_) throw LoadError(fmt::format("preload: {} answered {} requests with errors", server_.str(), setup_errors_));
  setup_phase_ = false;
}

void Conn::finish() {
  // What is left was never answered: a timeout on a live connection, dropped on a failed one.
  const bool dead = dead_.load();
  auto left = [&](uint64_t intended) {
    if (w_.measured(intended)) (dead ? counts.dropped : counts.timeouts).fetch_add(1, std::memory_order_relaxed);
  };
  if (udp()) {
    for (Pending& e : ring_)
      if (e.key.exchange(0)) left(e.intended.load());
  } else {
    for (uint64_t h = head_.load(); h != tail_.load(); h++) left(ring_[h & mask_].intended.load());
    head_.store(tail_.load());
  }
  outstanding_.store(0);
  if (tcp_) dead ? tcp_->abort() : tcp_->close();
}

}  // namespace slip::loadgen
