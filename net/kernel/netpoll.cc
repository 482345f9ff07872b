#include "net/kernel/netpoll.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "slip/runtime/runtime.h"

namespace slip::net::kernel {

// Per-kthread event buffers, so concurrent polls never share one.
struct Netpoll::Events {
  static constexpr unsigned kSlots = 64;
  epoll_event ev[kSlots][kEvents];
};

Netpoll::Netpoll() : ev_(std::make_unique<Events>()) {
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  if (ep_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    const int e = errno;
    close(ep_);
    throw std::system_error(e, std::generic_category(), "eventfd");
  }
  epoll_event e{};
  e.events = EPOLLIN;  // level-triggered: stays ready until block() drains it
  e.data.u64 = UINT64_MAX;
  epoll_ctl(ep_, EPOLL_CTL_ADD, wake_fd_, &e);
}

Netpoll::~Netpoll() {
  close(wake_fd_);
  close(ep_);
  for (auto& c : chunks_) delete[] c.load();
}

Readiness* Netpoll::record(int fd) noexcept {
  if (fd < 0 || fd >= kChunk * kChunks) return nullptr;
  auto& slot = chunks_[fd / kChunk];
  Readiness* c = slot.load(std::memory_order_acquire);
  if (!c) {
    auto* fresh = new (std::nothrow) Readiness[kChunk];
    if (!fresh) return nullptr;
    if (slot.compare_exchange_strong(c, fresh, std::memory_order_acq_rel)) c = fresh;
    else delete[] fresh;  // another thread won; c holds its chunk
  }
  return &c[fd % kChunk];
}

bool Netpoll::watch(int fd) noexcept {
  Readiness* r = record(fd);
  if (!r) {
    errno = EMFILE;
    return false;
  }
  r->hup.store(false, std::memory_order_relaxed);  // a reused number: a late edge of the old fd only costs a recv
  epoll_event e{};
  e.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  e.data.u64 = static_cast<uint64_t>(fd);
  return epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &e) == 0;
}

bool Netpoll::hung_up(int fd) noexcept { return record(fd)->hup.load(std::memory_order_acquire); }

uint32_t Netpoll::seq(int fd, Dir d) noexcept {
  Readiness* r = record(fd);
  return (d == Dir::read ? r->rseq : r->wseq).load(std::memory_order_acquire);
}

bool Netpoll::wait(int fd, Dir d, uint32_t seen, uint64_t deadline) {
  Readiness* r = record(fd);
  r->lk.lock();
  auto& s = d == Dir::read ? r->rseq : r->wseq;
  if (s.load(std::memory_order_relaxed) != seen) {
    r->lk.unlock();
    return true;
  }
  auto& q = d == Dir::read ? r->readers : r->writers;
  return q.wait_until(r->lk, deadline);
}


namespace {

// The counted call of r's hook; false when it has none.
bool call_hook(Readiness* r, uint32_t events) noexcept {
  // Announce the call before looking at the hook again, and unhook() clears
  // the hook before counting calls: one of the two always sees the other.
  r->hook_calls.fetch_add(1, std::memory_order_seq_cst);
  ReadyHook* h = r->hook.load(std::memory_order_seq_cst);
  if (h) h->on_ready(events);
  r->hook_calls.fetch_sub(1, std::memory_order_release);
  return h != nullptr;
}

void wake(Readiness* r, uint32_t events) noexcept {
  // Plain sockets (no hook) skip the counted path: no read-modify-write per
  // event. A hooked socket has no parked uthreads to wake.
  if (r->hook.load(std::memory_order_relaxed) && call_hook(r, events)) return;
  r->lk.lock();
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) r->hup.store(true, std::memory_order_relaxed);
    r->rseq.fetch_add(1, std::memory_order_release);
    r->readers.wake_all();
  }
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
    r->wseq.fetch_add(1, std::memory_order_release);
    r->writers.wake_all();
  }
  r->lk.unlock();
}

}  // namespace

void Netpoll::hook(int fd, ReadyHook* h) noexcept { record(fd)->hook.store(h, std::memory_order_seq_cst); }

void Netpoll::unhook(int fd) noexcept {
  Readiness* r = record(fd);
  r->hook.store(nullptr, std::memory_order_seq_cst);
  for (rt::Backoff backoff; r->hook_calls.load(std::memory_order_seq_cst) != 0;) {
    if (rt::in_uthread()) rt::yield();
    else backoff.pause();
  }
}

void Netpoll::unhook_self(int fd) noexcept {
  Readiness* r = record(fd);
  r->hook.store(nullptr, std::memory_order_seq_cst);
  // Calls that loaded the hook before it was cleared return at once (the
  // hooks make their calls exclusive without waiting).
  for (rt::Backoff backoff; r->hook_calls.load(std::memory_order_seq_cst) > 1;) backoff.pause();
}

void Netpoll::dispatch(int fd, uint32_t events) noexcept {
  if (Readiness* r = record(fd)) call_hook(r, events);
}

unsigned Netpoll::poll(unsigned kthread) noexcept { return block(kthread, 0); }

unsigned Netpoll::block(unsigned kthread, uint64_t timeout_ns) noexcept {
  epoll_event* ev = ev_->ev[kthread % Events::kSlots];
  timespec ts{static_cast<time_t>(timeout_ns / 1000000000), static_cast<long>(timeout_ns % 1000000000)};
  const int n = epoll_pwait2(ep_, ev, kEvents, timeout_ns == UINT64_MAX ? nullptr : &ts, nullptr);
  unsigned woke = 0;
  for (int i = 0; i < n; i++) {
    if (ev[i].data.u64 == UINT64_MAX) {
      // Only the sleeper consumes an interrupt: a busy kthread's poll leaves
      // it pending (level-triggered), so it cannot steal the sleeper's wake.
      uint64_t v;
      if (timeout_ns != 0) (void)!read(wake_fd_, &v, sizeof v);
      continue;
    }
    if (Readiness* r = record(static_cast<int>(ev[i].data.u64))) {
      wake(r, ev[i].events);
      woke++;
    }
  }
  return woke;
}

void Netpoll::interrupt() noexcept {
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
}

}  // namespace slip::net::kernel
