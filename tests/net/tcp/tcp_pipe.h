// Two TCP state machines joined by a scripted link with a virtual clock: the
// harness for frame-by-frame TCP scenarios. Segments can be dropped, marked
// with CE, or inspected as they cross.
#pragma once

#include <cstring>
#include <deque>
#include <functional>
#include <random>
#include <vector>

#include "net/tcp/tcb.h"

namespace slip::net::tcp::test {

struct Wire {
  OutSeg seg;
  std::vector<uint8_t> data;
  uint64_t due;
};

class Pipe {
 public:
  explicit Pipe(TcpConfig ca = {}, TcpConfig cb = {}, uint64_t one_way_ns = 50'000)
      : a(ca, &Pipe::emit_a, this), b(cb, &Pipe::emit_b, this), delay(one_way_ns) {}

  Tcb a, b;
  uint64_t now = 1'000'000;
  uint64_t delay;
  bool b_listens = true;                  // a SYN reaching a closed b is accepted
  // Return true to drop a segment; from_a says which way it goes.
  std::function<bool(bool from_a, const OutSeg&)> drop;
  std::function<bool(bool from_a, const OutSeg&)> mark_ce;
  std::vector<OutSeg> sent_by_a, sent_by_b;  // every segment, in order
  // b takes each delivery round as one receive burst (Tcb::input's
  // `batched`, then flush), as the slip stack does with an rx burst.
  bool batch_to_b = false;

  void connect() { a.connect(now, 1000); }

  // Advances virtual time event by event until pred() holds or limit passes.
  bool run_until(const std::function<bool()>& pred, uint64_t limit_ns = 120'000'000'000) {
    const uint64_t end = now + limit_ns;
    while (!pred()) {
      uint64_t next = std::min({a.next_deadline(), b.next_deadline(), due(to_a_), due(to_b_)});
      if (next == UINT64_MAX || next > end) return pred();
      now = std::max(now, next);
      deliver(to_b_, b, false);
      deliver(to_a_, a, true);
      if (a.next_deadline() <= now) a.on_tick(now);
      if (b.next_deadline() <= now) b.on_tick(now);
    }
    return true;
  }
  void settle(uint64_t ns = 1'000'000'000) { run_until([] { return false; }, ns); }
  bool established() const {
    return a.state() == State::kEstablished && b.state() == State::kEstablished;
  }

 private:
  static uint64_t due(const std::deque<Wire>& q) { return q.empty() ? UINT64_MAX : q.front().due; }
  static void emit_a(void* ctx, const OutSeg& s) { static_cast<Pipe*>(ctx)->enqueue(true, s); }
  static void emit_b(void* ctx, const OutSeg& s) { static_cast<Pipe*>(ctx)->enqueue(false, s); }

  void enqueue(bool from_a, const OutSeg& s) {
    (from_a ? sent_by_a : sent_by_b).push_back(s);
    if (drop && drop(from_a, s)) return;
    Wire w{s, std::vector<uint8_t>(s.len), now + delay};
    if (s.len) s.payload->read_at(s.payload_off, w.data.data(), s.len);
    w.seg.ect = s.ect && mark_ce && mark_ce(from_a, s);  // reuse: ect now means "CE marked"
    (from_a ? to_b_ : to_a_).push_back(std::move(w));
  }

  void deliver(std::deque<Wire>& q, Tcb& t, bool to_a) {
    while (!q.empty() && q.front().due <= now) {
      Wire w = std::move(q.front());
      q.pop_front();
      InSeg in;
      in.seq = w.seg.seq;
      in.ack = w.seg.ack;
      in.flags = w.seg.flags;
      in.wnd = w.seg.wnd;
      in.opts = w.seg.opts;
      in.data = w.data.data();
      in.len = static_cast<uint32_t>(w.data.size());
      in.ce = w.seg.ect;
      if (!to_a && b_listens && t.state() == State::kClosed && (in.flags & kSyn) && !(in.flags & kAck)) {
        t.accept_syn(in, now, 500'000);
        continue;
      }
      t.input(in, now, !to_a && batch_to_b);
    }
    if (!to_a && batch_to_b) t.flush(now);
  }

  std::deque<Wire> to_a_, to_b_;
};

// Moves `total` bytes from x to y through the pipe, reading as they arrive;
// returns what y received.
// n seeded pseudo-random bytes.
inline std::vector<uint8_t> pattern(size_t n, uint32_t seed = 7) {
  std::vector<uint8_t> v(n);
  std::mt19937 rng(seed);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

inline std::vector<uint8_t> transfer(Pipe& p, Tcb& x, Tcb& y, const std::vector<uint8_t>& data,
                                     uint64_t limit_ns = 600'000'000'000) {
  std::vector<uint8_t> got;
  size_t off = 0;
  uint8_t buf[65536];
  p.run_until(
      [&] {
        off += x.write(data.data() + off, data.size() - off, p.now);
        for (size_t n; (n = y.read(buf, sizeof buf, p.now)) > 0;) got.insert(got.end(), buf, buf + n);
        return got.size() >= data.size() || x.state() == State::kClosed || y.state() == State::kClosed;
      },
      limit_ns);
  return got;
}

}  // namespace slip::net::tcp::test
