#include "server.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

namespace slip::synthetic {
namespace {

// How long a blocking read or write waits before looking at the stop flag again.
constexpr uint64_t kPollNs = 100'000'000;
// TCP bytes read at once; requests larger than this are framed across reads.
constexpr size_t kReadBuf = 16384;
// Replies held before a write: the complete requests of one read are answered
// with one write, which saves a syscall per request on the kernel stack.
constexpr size_t kMaxBatch = 64;
// RNG streams: UDP worker i is stream 1 + i, TCP connection n is kTcpStream + n.
constexpr uint64_t kTcpStream = uint64_t{1} << 32;
constexpr const char* kBindHint = " (pick another --port, or --port 0 for ephemeral ports)";

}  // namespace

Worker::Worker(uint64_t seed, uint64_t stream) : rng(splitmix64(seed ^ splitmix64(stream))) {}

Framer::Step Framer::next(const uint8_t* p, size_t n, size_t& used, Header& h) noexcept {
  used = 0;
  if (!in_pad_) {
    const size_t take = std::min(n, sizeof(Header) - have_);
    std::memcpy(hdr_ + have_, p, take);
    have_ += take;
    used = take;
    if (have_ < sizeof(Header)) return Step::need_more;
    have_ = 0;
    if (!parse_header(hdr_, sizeof hdr_, cur_) || !work_ok(cur_)) return Step::bad;
    pad_left_ = cur_.len - static_cast<uint32_t>(sizeof(Header));
    in_pad_ = true;
  }
  const size_t skip = std::min<size_t>(pad_left_, n - used);
  pad_left_ -= static_cast<uint32_t>(skip);
  used += skip;
  if (pad_left_ > 0) return Step::need_more;
  in_pad_ = false;
  h = cur_;
  return Step::request;
}

Server::Server(net::Stack& st, ServerOptions opt) : st_(st), opt_(std::move(opt)) {}

// A server that was started is stopped first: its uthreads use this object.
Server::~Server() {
  if (!stop_.load()) (void)finish(now_ns() + 2 * kPollNs);
}

void Server::start() {
  if (opt_.udp) {
    auto u = st_.udp_bind(opt_.port);
    if (!u) throw std::runtime_error("udp port " + std::to_string(opt_.port) + ": " + u.message() + kBindHint);
    udp_ = std::move(*u);
    udp_port_ = udp_->local().port;
  }
  if (opt_.tcp) {
    auto l = st_.tcp_listen(opt_.port, 1024);
    if (!l) throw std::runtime_error("tcp port " + std::to_string(opt_.port) + ": " + l.message() + kBindHint);
    listener_ = std::move(*l);
    tcp_port_ = listener_->local().port;
  }
  if (udp_) {
    for (unsigned i = 0; i < opt_.udp_workers; i++) {
      udp_workers_.push_back(std::make_unique<Worker>(opt_.seed, 1 + i));
      Worker* w = udp_workers_.back().get();
      udp_threads_.push_back(rt::spawn([this, w] { udp_loop(*w); }));
    }
  }
  if (listener_) accept_thread_ = rt::spawn([this] { accept_loop(); });
}

// Busy-waits ns on this CPU, as the papers' spin servers do (no parking, so
// the core is really taken); returns the time spent. Ends early once stopping
// so that SIGTERM is not held up by a long request.
uint64_t Server::spin(uint64_t ns) const noexcept {
  const uint64_t t0 = now_ns();
  uint64_t t = t0;
  while (t - t0 < ns && !stopping()) t = now_ns();
  return t - t0;
}

Header Server::serve(const Header& req, Worker& w) noexcept {
  uint64_t ns = req.work_ns;
  if (ns == kServerChooses) ns = static_cast<uint64_t>(std::min(opt_.service.sample(w.rng), double(kMaxWorkNs)));
  Header r = req;
  r.len = sizeof(Header);
  r.served_ns = spin(ns);
  w.requests++;
  w.served.record(r.served_ns);
  return r;
}

// One of the UDP workers: all read the same socket, so a datagram goes to
// whichever is free, and each spins on its own kthread's CPU.
void Server::udp_loop(Worker& w) {
  // One byte more than the largest message, so an oversized datagram is seen
  // as such instead of being truncated to a plausible length.
  auto buf = std::make_unique<uint8_t[]>(kMaxMessage + 1);
  net::Endpoint from;
  while (!stopping()) {
    auto n = udp_->read_from(buf.get(), kMaxMessage + 1, &from, now_ns() + kPollNs);
    if (!n) {
      if (n.error() != ETIMEDOUT) rt::yield();  // a transient socket error: do not spin on it
      continue;
    }
    Header h;
    if (!parse_header(buf.get(), *n, h) || h.len != *n || !work_ok(h)) {
      w.bad++;
      continue;
    }
    const Header r = serve(h, w);
    (void)udp_->write_to(&r, sizeof r, from);  // a lost reply is the client's timeout, as with a lost request
  }
}

void Server::accept_loop() {
  while (!stopping()) {
    auto c = listener_->accept(now_ns() + kPollNs);
    if (!c) continue;
    auto w = std::make_unique<Worker>(opt_.seed, kTcpStream + accepted_++);
    live_conns_.fetch_add(1);
    rt::spawn_detached([this, conn = std::move(*c), w = std::move(w)]() mutable {
      tcp_conn(*conn, *w);
      conn->close();
      {
        std::lock_guard g(tcp_mu_);
        tcp_total_.requests += w->requests;
        tcp_total_.bad += w->bad;
        tcp_total_.served.merge(w->served);
      }
      // Everything that touches the stack is gone before finish() may let it be destroyed.
      conn.reset();
      w.reset();
      live_conns_.fetch_sub(1);
    });
  }
}

// Writes all of p, waking every kPollNs to look at the stop flag, so a client
// that stops reading cannot hold up shutdown.
bool Server::write_all(net::TcpConn& c, const void* p, size_t len) {
  auto* b = static_cast<const uint8_t*>(p);
  while (len > 0) {
    auto n = c.write(b, len, now_ns() + kPollNs);
    if (!n) {
      if (n.error() == ETIMEDOUT && !stopping()) continue;
      return false;
    }
    b += *n;
    len -= *n;
  }
  return true;
}

// Serves one connection until EOF, an error, a bad request or stop. Requests
// are answered in order; the complete ones of a read share one write.
void Server::tcp_conn(net::TcpConn& c, Worker& w) {
  auto in = std::make_unique<uint8_t[]>(kReadBuf);
  Header out[kMaxBatch];
  size_t nout = 0;
  Framer f;
  while (!stopping()) {
    auto n = c.read(in.get(), kReadBuf, now_ns() + kPollNs);
    if (!n) {
      if (n.error() == ETIMEDOUT) continue;
      return;
    }
    if (*n == 0) return;  // the client closed its side
    for (size_t off = 0; off < *n;) {
      size_t used = 0;
      Header h;
      const Framer::Step s = f.next(in.get() + off, *n - off, used, h);
      off += used;
      if (s == Framer::Step::bad) {
        w.bad++;
        (void)write_all(c, out, nout * sizeof(Header));  // the good requests before it still get answers
        return;
      }
      if (s == Framer::Step::request) out[nout++] = serve(h, w);
      if (nout == kMaxBatch) {
        if (!write_all(c, out, sizeof out)) return;
        nout = 0;
      }
    }
    if (nout > 0 && !write_all(c, out, nout * sizeof(Header))) return;
    nout = 0;
  }
}

Summary Server::finish(uint64_t deadline_ns) {
  stop_.store(true);
  Summary s;
  // Each of these sees the flag within kPollNs: their reads have deadlines and spins end early.
  for (auto& t : udp_threads_) t.join();
  accept_thread_.join();
  while (live_conns_.load() > 0 && now_ns() < deadline_ns) rt::sleep_for(std::chrono::milliseconds(5));
  s.all_stopped = live_conns_.load() == 0;
  for (const auto& w : udp_workers_) {
    s.udp_requests += w->requests;
    s.bad_requests += w->bad;
    s.served.merge(w->served);
  }
  std::lock_guard g(tcp_mu_);
  s.tcp_requests = tcp_total_.requests;
  s.bad_requests += tcp_total_.bad;
  s.tcp_connections = accepted_;
  s.served.merge(tcp_total_.served);
  return s;
}

}  // namespace slip::synthetic
