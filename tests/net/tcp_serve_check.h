// Servers written with Stack::tcp_serve, shared by the slip stack's tests
// (uthread clients over the test wire) and the kernel stack's (blocking Linux
// clients over loopback). Each callback checks the rules it relies on: no
// uthread in the path, no two calls for one connection at once, the handle
// valid from on_accept to on_close. (Whether a uthread is current says
// nothing here: kthreads also poll from yield() and between switches.)
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "slip/net/stack.h"
#include "slip/runtime/runtime.h"

namespace slip::net::test {

// 64-bit FNV-1a, streamed: what both ends of a large transfer compare.
struct Fnv {
  uint64_t h = 1469598103934665603ull;
  void update(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
  }
};

struct ServeStats {
  std::atomic<int> accepts{0}, refused{0}, live{0}, off_kthread{0}, overlaps{0}, bad_handle{0};
  std::atomic<int> writable{0}, wrapped{0}, short_reply{0};
  std::atomic<uint64_t> sunk{0};  // bytes taken without echo after "!shut"
  std::array<std::atomic<int>, 5> closes{};  // by TcpCloseReason
  std::array<std::atomic<int>, 5> close_err{};  // the last err seen per reason
  int closed(TcpCloseReason r) const { return closes[static_cast<size_t>(r)].load(); }
  int total_closed() const {
    int n = 0;
    for (const auto& c : closes) n += c.load();
    return n;
  }
};

// Per-connection state, behind TcpServiceConn::context().
struct ConnState {
  static constexpr uint32_t kMagic = 0x5e7ec0de;
  uint32_t magic = kMagic;
  std::atomic<int> busy{0};
  bool started = false, sink = false;
};

// Enters a callback: checks the rules, returns the connection's state.
// Every call runs on a runtime kthread, inside a poll (on_close(kStopped) on
// the thread destroying the service, a uthread here).
inline ConnState* enter(ServeStats& s, TcpServiceConn& c) {
  if (rt::kthread_index() < 0) s.off_kthread++;
  auto* st = static_cast<ConnState*>(c.context());
  if (!st || st->magic != ConnState::kMagic) {
    s.bad_handle++;
    return nullptr;
  }
  if (st->busy.fetch_add(1) != 0) s.overlaps++;
  return st;
}
inline void leave(ConnState* st) {
  if (st) st->busy.fetch_sub(1);
}

// on_accept and on_close that keep the books; banner: what on_accept sends.
inline void add_bookkeeping(TcpHandlers& h, ServeStats& s, const std::string& banner = {}) {
  h.on_accept = [&s, banner](TcpServiceConn& c) {
    if (rt::kthread_index() < 0) s.off_kthread++;
    if (c.context() != nullptr) s.bad_handle++;
    c.set_context(new ConnState);
    s.accepts++;
    s.live++;
    if (!banner.empty()) (void)c.send(banner.data(), banner.size());
    return true;
  };
  h.on_close = [&s](TcpServiceConn& c, TcpCloseReason why, int err) {
    ConnState* st = enter(s, c);
    s.closes[static_cast<size_t>(why)]++;
    s.close_err[static_cast<size_t>(why)] = err;
    s.live--;
    if (why == TcpCloseReason::kStopped) (void)c.send("bye\n", 4);  // still goes out, then FIN
    leave(st);
    if (st) st->magic = 0;
    delete st;
  };
}

// Echo with back-pressure: on_data takes only what send() queued, so a full
// send buffer leaves bytes in the receive buffer (closing the peer's window)
// until on_writable, after which they are offered again. A connection whose
// first bytes are a command does that instead: "!abort" (RST), "!close"
// ("bye", then an orderly close), "!shut" ("bye", then FIN; what arrives
// afterwards is counted in `sunk`).
inline TcpHandlers echo_handlers(ServeStats& s) {
  TcpHandlers h;
  add_bookkeeping(h, s);
  h.on_data = [&s](TcpServiceConn& c, TcpRxBytes d) -> size_t {
    ConnState* st = enter(s, c);
    if (!st) return d.size();
    if (!d.second.empty()) s.wrapped++;
    size_t took = 0;
    if (!st->started) {
      st->started = true;
      char head[6] = {};
      const size_t n = d.copy(0, head, sizeof head);
      const std::string_view cmd(head, n);
      if (cmd.starts_with("!abort")) {
        c.abort();
        leave(st);
        return 6;
      }
      if (cmd.starts_with("!close") || cmd.starts_with("!shut")) {
        (void)c.send("bye\n", 4);
        if (cmd.starts_with("!close")) c.close();
        else c.shutdown(), st->sink = true;
        leave(st);
        return cmd.starts_with("!close") ? 6 : 5;
      }
    }
    if (st->sink) {  // shut down: no more sending, keep receiving
      s.sunk += d.size();
      leave(st);
      return d.size();
    }
    for (std::span<const uint8_t> run : {d.first, d.second}) {
      if (run.empty()) continue;
      auto r = c.send(run.data(), run.size());
      if (!r) {
        c.abort();
        break;
      }
      took += *r;
      if (*r < run.size()) break;  // full: the rest waits for on_writable
    }
    leave(st);
    return took;
  };
  h.on_writable = [&s](TcpServiceConn& c) {
    ConnState* st = enter(s, c);
    s.writable++;
    leave(st);
  };
  return h;
}

// Fixed-size records, consumed only whole: each 1000-byte record is answered
// with its 8-byte FNV-1a. A record split across segments (or across the
// receive ring's wrap) stays until the rest arrives.
inline constexpr size_t kRecord = 1000;
inline TcpHandlers record_handlers(ServeStats& s) {
  TcpHandlers h;
  add_bookkeeping(h, s);
  h.on_data = [&s](TcpServiceConn& c, TcpRxBytes d) -> size_t {
    ConnState* st = enter(s, c);
    if (!st) return d.size();
    if (!d.second.empty()) s.wrapped++;
    size_t took = 0;
    uint8_t rec[kRecord];
    while (d.size() - took >= kRecord) {
      d.copy(took, rec, kRecord);
      Fnv f;
      f.update(rec, kRecord);
      auto r = c.send(&f.h, sizeof f.h);
      if (!r || *r != sizeof f.h) {  // the client reads as it goes: never full
        s.short_reply++;
        c.abort();
        break;
      }
      took += kRecord;
    }
    leave(st);
    return took;
  };
  return h;
}

// A refusing service: on_accept says no, so connections get RST and no on_close.
inline TcpHandlers refusing_handlers(ServeStats& s) {
  TcpHandlers h;
  h.on_accept = [&s](TcpServiceConn&) {
    s.refused++;
    return false;
  };
  h.on_data = [](TcpServiceConn&, TcpRxBytes d) { return d.size(); };
  h.on_close = [&s](TcpServiceConn&, TcpCloseReason, int) { s.bad_handle++; };
  return h;
}

}  // namespace slip::net::test
