// Registration of pollers and the call into them from kthreads.
#include <stdexcept>

#include "runtime/defs.h"
#include "slip/runtime/poll.h"

namespace slip::rt {
namespace detail {

unsigned run_pollers(Runtime* rt, Kthread* k) noexcept {
  unsigned work = 0;
  k->in_poll.store(true, std::memory_order_seq_cst);
  for (auto& slot : rt->pollers)
    if (Poller* p = slot.load(std::memory_order_acquire)) work += p->poll(k->index);
  k->in_poll.store(false, std::memory_order_release);
  return work;
}

// Inside in_poll like run_pollers: remove_poller() clears the slot and then
// waits for in_poll, so a poller loaded here is not destroyed while we ask it
// (a kernel stack going away while a kthread parked was a use after free).
uint64_t pollers_max_park_ns(Runtime* rt, Kthread* k) noexcept {
  uint64_t m = UINT64_MAX;
  k->in_poll.store(true, std::memory_order_seq_cst);
  for (auto& slot : rt->pollers)
    if (Poller* p = slot.load(std::memory_order_acquire)) m = std::min(m, p->max_park_ns());
  k->in_poll.store(false, std::memory_order_release);
  return m;
}

Poller* blocking_poller(Runtime* rt) noexcept {
  for (auto& slot : rt->pollers)
    if (Poller* p = slot.load(std::memory_order_acquire); p && p->can_block()) return p;
  return nullptr;
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
  // Wait out any kthread still inside poll() (not our own: we are not polling).
  detail::Kthread* self = detail::this_kthread();
  for (auto& k : rt->ks)
    if (k.get() != self)
      while (k->in_poll.load(std::memory_order_seq_cst)) __builtin_ia32_pause();
  while (rt->interrupting.load(std::memory_order_seq_cst)) __builtin_ia32_pause();
}

}  // namespace slip::rt
