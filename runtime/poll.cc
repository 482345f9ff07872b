// Registration of pollers, the call into them from kthreads, and the poll
// sections that let a poller free what its polls may be using
// (synchronize_pollers, remove_poller).
#include <stdexcept>

#include "runtime/defs.h"
#include "slip/runtime/poll.h"

namespace slip::rt {
namespace detail {

unsigned run_pollers(Runtime* rt, Kthread* k) noexcept {
  unsigned work = 0;
  if (rt->poll_interval_tsc) k->next_poll_tsc = __builtin_ia32_rdtsc() + rt->poll_interval_tsc;
  enter_poll(k);
  for (auto& slot : rt->pollers)
    if (Poller* p = slot.load(std::memory_order_acquire)) work += p->poll(k->index);
  leave_poll(k);
  return work;
}

// Inside a poll section like run_pollers: remove_poller() clears the slot and
// then waits the section out, so a poller loaded here is not destroyed while
// we ask it (a kernel stack going away while a kthread parked was a use after
// free).
uint64_t pollers_max_park_ns(Runtime* rt, Kthread* k) noexcept {
  uint64_t m = UINT64_MAX;
  enter_poll(k);
  for (auto& slot : rt->pollers)
    if (Poller* p = slot.load(std::memory_order_acquire)) m = std::min(m, p->max_park_ns());
  leave_poll(k);
  return m;
}

void pollers_parking(Runtime* rt, Kthread* k) noexcept {
  enter_poll(k);
  for (auto& slot : rt->pollers)
    if (Poller* p = slot.load(std::memory_order_acquire)) p->parking(k->index);
  leave_poll(k);
}

Poller* blocking_poller(Runtime* rt) noexcept {
  for (auto& slot : rt->pollers)
    if (Poller* p = slot.load(std::memory_order_acquire); p && p->can_block()) return p;
  return nullptr;
}

// A kthread asleep in a blocking poller stays inside its section until a
// frame comes: interrupt it, as wake_kthread does (the count lets
// remove_poller wait out a waker that loaded the poller just before the
// sleeper left it).
void kick_blocked(Runtime* rt, Kthread* k) noexcept {
  if (!k->blocked_in.load(std::memory_order_seq_cst)) return;
  rt->interrupting.fetch_add(1, std::memory_order_seq_cst);
  if (Poller* p = k->blocked_in.load(std::memory_order_seq_cst)) p->interrupt();
  rt->interrupting.fetch_sub(1, std::memory_order_release);
}

void wait_out_polls(Runtime* rt, Kthread* self) noexcept {
  for (auto& k : rt->ks) {
    if (k.get() == self) continue;
    const uint64_t s = k->poll_seq.load(std::memory_order_seq_cst);
    if ((s & 1) == 0) continue;  // not in a section: any later one sees what the caller did before
    Backoff backoff;
    for (unsigned looks = 0; k->poll_seq.load(std::memory_order_seq_cst) == s; looks++) {
      if (looks % 64 == 0) kick_blocked(rt, k.get());
      backoff.pause();
    }
  }
}

}  // namespace detail

void add_poller(Poller* p) {
  detail::Runtime* rt = detail::g_runtime.load(std::memory_order_acquire);
  if (!rt) throw std::logic_error("slip::rt::add_poller(): no runtime is running; call it inside slip::rt::run()");
  for (auto& slot : rt->pollers) {
    Poller* expected = nullptr;
    if (slot.compare_exchange_strong(expected, p)) {
      rt->n_pollers.fetch_add(1);
      detail::notify_work(rt);  // a parked kthread must start polling
      return;
    }
  }
  throw std::logic_error("slip::rt::add_poller(): all kMaxPollers slots are in use");
}

void remove_poller(Poller* p) noexcept {
  detail::Runtime* rt = detail::g_runtime.load(std::memory_order_acquire);
  if (!rt) return;
  for (auto& slot : rt->pollers) {
    Poller* expected = p;
    if (slot.compare_exchange_strong(expected, nullptr)) {
      rt->n_pollers.fetch_sub(1);
      break;
    }
  }
  if (p->can_block()) p->interrupt();  // a kthread asleep in it must leave
  // Wait out any kthread still inside a poller call (not our own: we are not polling).
  detail::wait_out_polls(rt, detail::this_kthread());
  for (Backoff backoff; rt->interrupting.load(std::memory_order_seq_cst);) backoff.pause();
}

void synchronize_pollers() noexcept {
  detail::Runtime* rt = detail::g_runtime.load(std::memory_order_acquire);
  if (!rt) return;
  std::atomic_thread_fence(std::memory_order_seq_cst);  // the caller's unpublishing comes first
  detail::wait_out_polls(rt, detail::this_kthread());
}

}  // namespace slip::rt
