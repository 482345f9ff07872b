// TCP scenarios driven segment by segment over a virtual-clock pipe.
#include <catch2/catch.hpp>

#include <cerrno>
#include <random>

#include "tcp_pipe.h"

using namespace slip::net::tcp;
using slip::net::tcp::test::Pipe;
using slip::net::tcp::test::transfer;

using slip::net::tcp::test::pattern;

namespace {
TcpConfig fast_timers() {
  TcpConfig c;
  c.rto_initial_ns = 10'000'000;
  c.rto_min_ns = 5'000'000;  // above the delayed-ACK timer, as 200 ms is above 40 ms by default
  c.delack_ns = 2'000'000;
  c.time_wait_ns = 50'000'000;
  return c;
}
}  // namespace

TEST_CASE("three-way handshake negotiates MSS, window scale, timestamps and SACK", "[tcp]") {
  TcpConfig ca, cb;
  cb.mss = 1400;
  Pipe p(ca, cb);
  p.connect();
  REQUIRE(p.sent_by_a.size() == 1);
  const OutSeg syn = p.sent_by_a[0];
  CHECK(syn.flags == kSyn);
  CHECK(syn.opts.mss == 1460);
  CHECK(syn.opts.wscale == 3);  // 256 KiB buffer: 262144 >> 3 fits in 16 bits
  CHECK(syn.opts.sack_ok);
  CHECK(syn.opts.has_ts);
  REQUIRE(p.run_until([&] { return p.established(); }));
  CHECK(p.sent_by_b[0].flags == (kSyn | kAck));
  CHECK(p.sent_by_b[0].ack == syn.seq + 1);
  CHECK(p.a.peer_mss() == 1400);
  CHECK(p.b.peer_mss() == 1460);
  CHECK(p.a.sack_enabled());
  CHECK(p.a.ts_enabled());
  CHECK(p.a.snd_wscale() == 3);
  CHECK(p.a.srtt_ns() > 0);
}

TEST_CASE("options are only used when both sides offer them", "[tcp]") {
  TcpConfig plain;
  plain.window_scale = plain.timestamps = plain.sack = false;
  Pipe p({}, plain);
  p.connect();
  REQUIRE(p.run_until([&] { return p.established(); }));
  CHECK_FALSE(p.a.sack_enabled());
  CHECK_FALSE(p.a.ts_enabled());
  CHECK(p.a.snd_wscale() == 0);
  auto data = pattern(300'000);
  CHECK(transfer(p, p.a, p.b, data) == data);
}

TEST_CASE("bulk data in both directions arrives intact", "[tcp]") {
  Pipe p;
  p.connect();
  REQUIRE(p.run_until([&] { return p.established(); }));
  auto d1 = pattern(4 << 20, 1), d2 = pattern(1 << 20, 2);
  CHECK(transfer(p, p.a, p.b, d1) == d1);
  CHECK(transfer(p, p.b, p.a, d2) == d2);
  CHECK(p.a.stats().retransmits == 0);
  CHECK(p.b.snd_wnd() > 65535);  // window scaling in effect
}

TEST_CASE("one lost segment is repaired by fast retransmit, not by the timer", "[tcp]") {
  Pipe p(fast_timers(), fast_timers());
  p.connect();
  REQUIRE(p.run_until([&] { return p.established(); }));
  int data_segs = 0;
  p.drop = [&](bool from_a, const OutSeg& s) { return from_a && s.len > 0 && ++data_segs == 5; };
  auto d = pattern(200'000);
  CHECK(transfer(p, p.a, p.b, d) == d);
  CHECK(p.a.stats().fast_retransmits == 1);
  CHECK(p.a.stats().rto_expiries == 0);
  CHECK(p.b.stats().ooo_segments > 0);
}

TEST_CASE("several losses in one window recover with SACK and without a timeout", "[tcp]") {
  Pipe p(fast_timers(), fast_timers());
  p.connect();
  REQUIRE(p.run_until([&] { return p.established(); }));
  int n = 0;
  p.drop = [&](bool from_a, const OutSeg& s) {
    if (!from_a || s.len == 0) return false;
    ++n;
    return n == 20 || n == 23 || n == 26;
  };
  auto d = pattern(400'000);
  CHECK(transfer(p, p.a, p.b, d) == d);
  CHECK(p.a.stats().rto_expiries == 0);
  CHECK(p.a.stats().retransmits >= 3);
}

// RFC 6691: the sender makes room in a segment for the options it carries.
// A data segment that also carries SACK blocks (the sender holds
// out-of-order data of the other direction) must still fit the peer's MSS:
// a frame over the MTU is dropped (DPDK's net_tap drops it at tx), and so is
// every retransmission of it while the hole lasts, which stalled both ways.
TEST_CASE("data segments that carry SACK blocks still fit the peer's MSS", "[tcp]") {
  Pipe p(fast_timers(), fast_timers());
  p.connect();
  REQUIRE(p.run_until([&] { return p.established(); }));
  int n = 0;
  p.drop = [&](bool from_a, const OutSeg& s) { return !from_a && s.len > 0 && ++n % 10 == 3; };
  const auto to_b = pattern(300'000, 5), to_a = pattern(300'000, 6);
  std::vector<uint8_t> got_a, got_b;
  size_t off_a = 0, off_b = 0;
  uint8_t buf[65536];
  REQUIRE(p.run_until([&] {
    off_a += p.a.write(to_b.data() + off_a, to_b.size() - off_a, p.now);
    off_b += p.b.write(to_a.data() + off_b, to_a.size() - off_b, p.now);
    for (size_t k; (k = p.a.read(buf, sizeof buf, p.now)) > 0;) got_a.insert(got_a.end(), buf, buf + k);
    for (size_t k; (k = p.b.read(buf, sizeof buf, p.now)) > 0;) got_b.insert(got_b.end(), buf, buf + k);
    return got_a.size() == to_a.size() && got_b.size() == to_b.size();
  }));
  CHECK(got_a == to_a);
  CHECK(got_b == to_b);
  size_t with_sack = 0, too_big = 0;
  for (const OutSeg& s : p.sent_by_a) {
    if (s.len == 0) continue;
    const uint32_t opts = (s.opts.has_ts ? 12 : 0) + (s.opts.n_sack ? 4 + 8 * s.opts.n_sack : 0);
    if (s.opts.n_sack) with_sack++;
    if (s.len + opts > p.a.peer_mss()) too_big++;
  }
  CHECK(with_sack > 0);  // the case this test is about happened
  CHECK(too_big == 0);
}

TEST_CASE("2% loss with reordering still delivers every byte", "[tcp]") {
  Pipe p(fast_timers(), fast_timers());
  p.connect();
  REQUIRE(p.run_until([&] { return p.established(); }));
  std::mt19937_64 rng(42);
  p.drop = [&](bool, const OutSeg&) { return rng() % 100 < 2; };
  auto d1 = pattern(8 << 20, 3), d2 = pattern(2 << 20, 4);
  CHECK(transfer(p, p.a, p.b, d1) == d1);
  CHECK(transfer(p, p.b, p.a, d2) == d2);
  CHECK(p.a.stats().retransmits > 0);
}

TEST_CASE("the retransmission timer backs off exponentially and gives up with ETIMEDOUT", "[tcp]") {
  TcpConfig c = fast_timers();
  c.max_retransmits = 5;
  Pipe p(c, c);
  p.connect();
  REQUIRE(p.run_until([&] { return p.established(); }));
  p.drop = [](bool from_a, const OutSeg&) { return from_a; };  // a's packets all vanish
  uint8_t byte = 1;
  p.a.write(&byte, 1, p.now);
  std::vector<uint64_t> rto_times;
  uint64_t last_rto = p.a.stats().rto_expiries;
  p.run_until([&] {
    if (p.a.stats().rto_expiries != last_rto) {
      last_rto = p.a.stats().rto_expiries;
      rto_times.push_back(p.now);
    }
    return p.a.state() == State::kClosed;
  });
  CHECK(p.a.state() == State::kClosed);
  CHECK(p.a.error() == ETIMEDOUT);
  REQUIRE(rto_times.size() >= 4);
  for (size_t i = 2; i < rto_times.size(); i++) {
    const double ratio = double(rto_times[i] - rto_times[i - 1]) / double(rto_times[i - 1] - rto_times[i - 2]);
    CHECK(ratio == Approx(2.0).epsilon(0.01));
  }
}

TEST_CASE("SYN retransmission, then ECONNREFUSED on RST", "[tcp]") {
  Pipe p(fast_timers(), fast_timers());
  p.b_listens = false;
  int syns = 0;
  p.drop = [&](bool from_a, const OutSeg& s) { return from_a && (s.flags & kSyn) && ++syns < 3; };
  p.connect();
  // b is closed and does not listen: the third SYN gets through and b answers
  // nothing (a closed Tcb); emulate the stack's RST for it.
  REQUIRE(p.run_until([&] { return syns >= 3; }));
  CHECK(p.a.stats().rto_expiries >= 2);
  OutSeg rst;
  InSeg syn;
  syn.seq = p.a.iss();
  syn.flags = kSyn;
  REQUIRE(Tcb::rst_for(syn, &rst));
  InSeg in;
  in.seq = rst.seq;
  in.ack = rst.ack;
  in.flags = rst.flags;
  p.a.input(in, p.now);
  CHECK(p.a.state() == State::kClosed);
  CHECK(p.a.error() == ECONNREFUSED);
}

TEST_CASE("RST handling follows RFC 5961: exact resets, in-window challenges", "[tcp]") {
  Pipe p;
  p.connect();
  REQUIRE(p.run_until([&] { return p.established(); }));
  InSeg rst;
  rst.flags = kRst;
  rst.seq = p.b.rcv_nxt() + 100;  // in window, not exact
  p.b.input(rst, p.now);
  CHECK(p.b.state() == State::kEstablished);
  CHECK(p.b.stats().challenge_acks == 1);
  rst.seq = p.b.rcv_nxt() + 10'000'000;  // outside the window: ignored
  p.b.input(rst, p.now);
  CHECK(p.b.state() == State::kEstablished);
  rst.seq = p.b.rcv_nxt();
  p.b.input(rst, p.now);
  CHECK(p.b.state() == State::kClosed);
  CHECK(p.b.error() == ECONNRESET);
}

TEST_CASE("a SYN in a synchronized state draws a challenge ACK", "[tcp]") {
  Pipe p;
  p.connect();
  REQUIRE(p.run_until([&] { return p.established(); }));
  InSeg syn;
  syn.flags = kSyn;
  syn.seq = p.b.rcv_nxt() + 5;
  const size_t before = p.sent_by_b.size();
  p.b.input(syn, p.now);
  CHECK(p.b.state() == State::kEstablished);
  REQUIRE(p.sent_by_b.size() == before + 1);
  CHECK(p.sent_by_b.back().flags == kAck);
}

TEST_CASE("orderly close: FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSED", "[tcp]") {
  Pipe p(fast_timers(), fast_timers());
  p.connect();
  REQUIRE(p.run_until([&] { return p.established(); }));
  auto d = pattern(10'000);
  p.a.write(d.data(), d.size(), p.now);
  p.a.shutdown_write(p.now);
  CHECK(p.a.state() == State::kFinWait1);
  REQUIRE(p.run_until([&] { return p.b.state() == State::kCloseWait; }));
  CHECK(p.b.peer_finished());
  std::vector<uint8_t> got(d.size());
  CHECK(p.b.read(got.data(), got.size(), p.now) == d.size());
  CHECK(got == d);
  REQUIRE(p.run_until([&] { return p.a.state() == State::kFinWait2; }));
  p.b.shutdown_write(p.now);
  CHECK(p.b.state() == State::kLastAck);
  REQUIRE(p.run_until([&] { return p.b.state() == State::kClosed; }));
  CHECK(p.b.error() == 0);
  CHECK(p.a.state() == State::kTimeWait);
  REQUIRE(p.run_until([&] { return p.a.state() == State::kClosed; }));
  CHECK(p.a.error() == 0);
}

TEST_CASE("simultaneous close passes through CLOSING", "[tcp]") {
  Pipe p(fast_timers(), fast_timers());
  p.connect();
  REQUIRE(p.run_until([&] { return p.established(); }));
  p.a.shutdown_write(p.now);
  p.b.shutdown_write(p.now);
  bool saw_closing = false;
  REQUIRE(p.run_until([&] {
    saw_closing |= p.a.state() == State::kClosing || p.b.state() == State::kClosing;
    return p.a.state() == State::kTimeWait && p.b.state() == State::kTimeWait;
  }));
  CHECK(saw_closing);
  REQUIRE(p.run_until([&] { return p.a.state() == State::kClosed && p.b.state() == State::kClosed; }));
}

TEST_CASE("simultaneous open: crossing SYNs both reach ESTABLISHED", "[tcp]") {
  Pipe p;
  p.b_listens = false;
  p.a.connect(p.now, 1000);
  p.b.connect(p.now, 9000);
  REQUIRE(p.run_until([&] { return p.established(); }));
  auto d = pattern(50'000);
  CHECK(transfer(p, p.a, p.b, d) == d);
}

TEST_CASE("a zero window is probed and the transfer resumes when the reader reads", "[tcp]") {
  TcpConfig small = fast_timers();
  small.rcv_buf = 16 * 1024;
  Pipe p(fast_timers(), small);
  p.connect();
  REQUIRE(p.run_until([&] { return p.established(); }));
  auto d = pattern(64 * 1024);
  size_t off = p.a.write(d.data(), d.size(), p.now);
  p.run_until([&] { return p.a.snd_wnd() == 0; });
  REQUIRE(p.a.snd_wnd() == 0);
  p.settle(200'000'000);  // nobody reads for 200 ms
  CHECK(p.a.stats().zero_window_probes >= 2);
  std::vector<uint8_t> got;
  uint8_t buf[4096];
  REQUIRE(p.run_until([&] {
    off += p.a.write(d.data() + off, d.size() - off, p.now);
    for (size_t n; (n = p.b.read(buf, sizeof buf, p.now)) > 0;) got.insert(got.end(), buf, buf + n);
    return got.size() == d.size();
  }));
  CHECK(got == d);
}

TEST_CASE("an ACK beyond a closed receive window still counts (RFC 9293 3.10.7.4)", "[tcp]") {
  // Both windows closed at once (an echo whose reader waits on its writer):
  // a's probe into b's zero window moved a's snd_nxt past b's edge, so a's
  // ACKs carry a sequence number b cannot accept. Their ACK fields must still
  // free b's send buffer, or neither side ever moves again.
  TcpConfig small = fast_timers();
  small.rcv_buf = 16 * 1024;
  Pipe p(small, small);
  p.connect();
  REQUIRE(p.run_until([&] { return p.established(); }));
  auto d = pattern(64 * 1024);
  p.a.write(d.data(), d.size(), p.now);
  REQUIRE(p.run_until([&] { return p.a.snd_wnd() == 0; }));
  p.drop = [](bool from_a, const OutSeg&) { return from_a; };  // a's own ACKs are lost
  REQUIRE(p.b.write(d.data(), 1000, p.now) == 1000);
  p.settle(1'000'000);
  REQUIRE(p.b.snd_una() != p.b.snd_nxt());
  InSeg ack;
  ack.seq = p.b.rcv_nxt() + 1448;  // a's snd_nxt after its probe
  ack.ack = p.b.snd_nxt();
  ack.flags = kAck;
  ack.wnd = 1000;
  p.b.input(ack, p.now);
  CHECK(p.b.snd_una() == p.b.snd_nxt());
  CHECK(p.b.readable() == 16 * 1024);  // and no data was taken beyond the window
}

TEST_CASE("delayed ACK: one segment waits, a second is acknowledged at once", "[tcp]") {
  Pipe p(fast_timers(), fast_timers());
  p.connect();
  REQUIRE(p.run_until([&] { return p.established(); }));
  p.settle(10'000'000);
  const size_t before = p.sent_by_b.size();
  uint8_t byte = 'x';
  p.a.write(&byte, 1, p.now);
  p.run_until([&] { return p.b.readable() == 1; });
  CHECK(p.sent_by_b.size() == before);  // no ACK yet
  const uint64_t arrived = p.now;
  p.run_until([&] { return p.sent_by_b.size() > before; });
  CHECK(p.now - arrived >= 2'000'000);  // waited for the delayed-ACK timer
  std::vector<uint8_t> two(2920, 'y');
  const size_t before2 = p.sent_by_b.size();
  p.a.write(two.data(), two.size(), p.now);
  const uint64_t sent = p.now;
  p.run_until([&] { return p.sent_by_b.size() > before2; });
  CHECK(p.now - sent < 1'000'000);  // the second full segment drew an immediate ACK
}

TEST_CASE("a burst of segments taken in one receive batch is acknowledged once", "[tcp]") {
  for (const bool batched : {false, true}) {
    Pipe p(fast_timers(), fast_timers());
    p.connect();
    REQUIRE(p.run_until([&] { return p.established(); }));
    p.settle(10'000'000);
    p.batch_to_b = batched;
    const size_t acks_before = p.sent_by_b.size(), segs_before = p.sent_by_a.size();
    std::vector<uint8_t> data(8 * 1400, 'z');  // 8 segments, sent at once (initial window 10)
    REQUIRE(p.a.write(data.data(), data.size(), p.now) == data.size());
    REQUIRE(p.sent_by_a.size() - segs_before == 8);
    REQUIRE(p.run_until([&] { return p.b.readable() == data.size(); }));
    p.settle(1'000'000);  // under the delayed-ACK timer: only ACKs the burst called for
    INFO("batched " << batched);
    // Every second segment draws an ACK when each is handled alone; a batch
    // draws one, for all of it.
    CHECK(p.sent_by_b.size() - acks_before == (batched ? 1u : 4u));
    CHECK(p.sent_by_b.back().ack == p.sent_by_a.back().seq + p.sent_by_a.back().len);
  }
}

TEST_CASE("keepalive probes an idle peer and times out when it is gone", "[tcp]") {
  TcpConfig c = fast_timers();
  c.keepalive_idle_ns = 100'000'000;
  c.keepalive_intvl_ns = 10'000'000;
  c.keepalive_probes = 3;
  Pipe p(c, fast_timers());
  p.connect();
  REQUIRE(p.run_until([&] { return p.established(); }));
  p.settle(150'000'000);
  CHECK(p.a.stats().keepalives >= 1);  // answered: the connection stays
  CHECK(p.a.state() == State::kEstablished);
  p.drop = [](bool from_a, const OutSeg&) { return !from_a; };  // b vanishes
  REQUIRE(p.run_until([&] { return p.a.state() == State::kClosed; }));
  CHECK(p.a.error() == ETIMEDOUT);
}

TEST_CASE("DCTCP cuts cwnd in proportion to the fraction of CE marks", "[tcp]") {
  TcpConfig c;
  c.cc = "dctcp";
  c.rcv_buf = 128 * 1024;  // keeps each observation window near one RTT of data
  Pipe p(c, c);
  p.connect();
  REQUIRE(p.run_until([&] { return p.established(); }));
  CHECK(p.a.congestion().name() == "dctcp");
  const auto& dctcp = static_cast<const Dctcp&>(p.a.congestion());
  auto d = pattern(16 << 20);
  CHECK(transfer(p, p.a, p.b, d) == d);
  const uint32_t unmarked_cwnd = p.a.cwnd();
  CHECK(dctcp.alpha() < 0.2);  // decays from 1 without marks
  int n = 0;
  p.mark_ce = [&](bool from_a, const OutSeg& s) { return from_a && s.len > 0 && (++n % 4 == 0); };
  CHECK(transfer(p, p.a, p.b, d) == d);
  INFO("cwnd unmarked " << unmarked_cwnd << ", marked " << p.a.cwnd());
  CHECK(p.a.cwnd() < unmarked_cwnd);
  CHECK(dctcp.alpha() == Approx(0.25).margin(0.1));  // tracks the marked fraction
  CHECK(p.a.stats().retransmits == 0);  // marks are not losses
}
