// tcp_serve on the slip stack: run-to-completion TCP. A served connection's
// callbacks run inside TcpCore::after(), on the kthread that received the
// segment (or ran its timer), with its home shard's lock held: that lock is
// what keeps calls for one connection from overlapping, and what ~TcpSvc
// takes to wait out a running callback. The callbacks' own calls (ServedConn) act on
// the Tcb directly, without locking again; their segments join the stack's
// transmit burst, which leaves at the end of the poll.
#include <algorithm>
#include <cerrno>
#include <vector>

#include "net/stack/sockets.h"
#include "slip/runtime/runtime.h"

namespace slip::net::stack {

// ---- the connection as the callbacks see it ------------------------------------

Result<size_t> ServedConn::send(const void* buf, size_t len) noexcept {
  tcp::Tcb& t = c_->tcb_;
  if (close_ != Close::kNone) return err(EPIPE);
  const tcp::State s = t.state();
  if (s != tcp::State::kEstablished && s != tcp::State::kCloseWait) return err(t.error() ? t.error() : EPIPE);
  const size_t n = t.write(static_cast<const uint8_t*>(buf), len, now_ns());
  if (n < len) want_write_ = true;
  return n;
}

void ServedConn::shutdown() noexcept {
  if (close_ == Close::kNone) c_->tcb_.shutdown_write(now_ns());
}

void ServedConn::close() noexcept {
  if (close_ == Close::kNone) close_ = Close::kClose;
}

void ServedConn::abort() noexcept { close_ = Close::kAbort; }

Endpoint ServedConn::local() const noexcept { return c_->key().local; }
Endpoint ServedConn::remote() const noexcept { return c_->key().remote; }

// ---- the core's side ---------------------------------------------------------------

// An established connection of a serving listener becomes the service's.
// It links itself while still the listener's child, under its home shard's
// lock, so ~TcpSvc (which first detaches the children, shard by shard under
// the same locks) finds it in the list afterwards.
void TcpCore::adopt(TcpSvc* s, TcpListenSock* l, uint64_t now) noexcept {
  s->link(this);
  l->half_open_gone(this);
  svc_ = s;
  const TcpHandlers& h = s->handlers();
  if (!h.on_accept || h.on_accept(served_)) return;
  s->unlink(this);
  svc_ = nullptr;
  tcb_.abort(now);  // refused: RST, and no on_close
}

// Offers the received bytes to on_data until it takes none, takes all, or
// asks to close; what it leaves stays in the ring.
void TcpCore::offer(const TcpHandlers& h, uint64_t now) noexcept {
  for (;;) {
    TcpRxBytes d;
    tcb_.rcv_peek(d.first, d.second);
    const size_t total = d.size();
    if (total == 0) {
      served_.left_ = 0;
      return;
    }
    const size_t took = std::min(h.on_data(served_, d), total);
    tcb_.rcv_take(took, now);
    served_.left_ = total - took;
    if (took == 0 || served_.left_ == 0 || served_.close_ != ServedConn::Close::kNone ||
        tcb_.state() == tcp::State::kClosed)
      return;
  }
}

// The callbacks for events ev (with the home shard locked): writable, data, then the end.
void TcpCore::serve(uint32_t ev, uint64_t now) noexcept {
  const TcpHandlers& h = svc_->handlers();
  const tcp::State st = tcb_.state();
  const bool open = st == tcp::State::kEstablished || st == tcp::State::kCloseWait;
  bool again = false;
  if (served_.want_write_ && (ev & tcp::kEvWritable) && open && tcb_.writable() >= st_->cfg().tcp.snd_buf / 2) {
    served_.want_write_ = false;
    if (h.on_writable) h.on_writable(served_);
    again = tcb_.readable() > 0;  // what on_data left for want of room is offered again
  }
  if (served_.close_ == ServedConn::Close::kNone && tcb_.state() != tcp::State::kClosed &&
      (tcb_.readable() > served_.left_ || again))
    offer(h, now);
  if (served_.close_ != ServedConn::Close::kNone) {
    finish(TcpCloseReason::kLocal, 0, now);
  } else if (tcb_.state() == tcp::State::kClosed) {
    const int e = tcb_.error();
    finish(e == ECONNRESET ? TcpCloseReason::kReset : e ? TcpCloseReason::kError : TcpCloseReason::kPeerFin, e, now);
  } else if (tcb_.peer_finished() && !(served_.want_write_ && served_.left_ > 0)) {
    // The end once on_data had every byte, unless bytes wait on on_writable
    // (an echo held back by a full send buffer): they are offered first.
    finish(TcpCloseReason::kPeerFin, 0, now);
  }
}

// Reports the end once and hands the connection back to the stack. For the
// application's close or abort the TCP side acts first; otherwise on_close may
// still send, and the orderly close follows it.
void TcpCore::finish(TcpCloseReason why, int err, uint64_t now) noexcept {
  TcpSvc* s = svc_;
  s->unlink(this);
  const bool abort = served_.close_ == ServedConn::Close::kAbort;
  const auto close_tcp = [&] {
    if (tcb_.state() == tcp::State::kClosed) return;
    if (why == TcpCloseReason::kPeerFin && !abort) tcb_.rcv_take(tcb_.readable(), now);  // nothing more will come
    if (abort || tcb_.readable() > 0) tcb_.abort(now);  // unconsumed bytes are lost: RST (RFC 2525 §2.17)
    else tcb_.shutdown_write(now);
  };
  if (why == TcpCloseReason::kLocal) close_tcp();
  if (s->handlers().on_close) s->handlers().on_close(served_, why, err);
  if (why != TcpCloseReason::kLocal) close_tcp();
  svc_ = nullptr;
}

void TcpCore::stop_serving(uint64_t now) noexcept {
  finish(TcpCloseReason::kStopped, 0, now);
  after(now);
}

// ---- the service ---------------------------------------------------------------------

TcpSvc::TcpSvc(SlipStack* st, uint16_t port, TcpHandlers h)
    : st_(st),
      port_(port),
      h_(std::move(h)),
      lis_(std::make_unique<TcpListenSock>(st, port, 1, this)),
      heads_(std::make_unique<TcpCore*[]>(st->n_shards())) {}

// With the listener gone no connection is adopted any more; each shard's
// live ones end under its lock, which also waits out a running callback.
TcpSvc::~TcpSvc() {
  lis_.reset();
  for (uint16_t i = 0; i < st_->n_shards(); i++) {
    Shard& s = st_->shard(i);
    st_->lock_shard(s);
    const uint64_t now = now_ns();
    while (TcpCore* c = heads_[i]) c->stop_serving(now);  // finish() unlinks it
    st_->flush_tx(s);
    s.lk.unlock();
  }
}

void TcpSvc::link(TcpCore* c) noexcept {
  TcpCore*& head = heads_[c->home().index];
  c->sv_prev_ = nullptr;
  c->sv_next_ = head;
  if (head) head->sv_prev_ = c;
  head = c;
  c->sv_linked_ = true;
}

void TcpSvc::unlink(TcpCore* c) noexcept {
  if (!c->sv_linked_) return;
  if (c->sv_prev_) c->sv_prev_->sv_next_ = c->sv_next_;
  else heads_[c->home().index] = c->sv_next_;
  if (c->sv_next_) c->sv_next_->sv_prev_ = c->sv_prev_;
  c->sv_prev_ = c->sv_next_ = nullptr;
  c->sv_linked_ = false;
}

}  // namespace slip::net::stack
