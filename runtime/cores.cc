// Core allocation by an arbiter outside the process (slip/runtime/cores.h).
// Kthreads beyond the guarantee run only while granted: one that loses its
// grant hands its queued uthreads to running kthreads and waits in the
// arbiter's park(); one that finds no work gives its core back (released)
// and runs again only on a newer grant, so the arbiter can count a parked
// kthread's core as free the moment it sees it parked. Guaranteed kthreads
// park idle through the arbiter too, so the arbiter can kick them when work
// arrives for a runtime that is asleep.
#include <algorithm>
#include <stdexcept>

#include "runtime/defs.h"
#include "slip/runtime/runtime.h"

namespace slip::rt {
namespace detail {
namespace {

// Marks k inside the arbiter for as long as it lives and hands out the
// arbiter; set_core_arbiter(nullptr) waits until no kthread holds one.
class ArbiterRef {
 public:
  ArbiterRef(Runtime* rt, Kthread* k) noexcept : k_(k) {
    k->in_arbiter.store(true, std::memory_order_seq_cst);
    a_ = rt->arbiter.load(std::memory_order_seq_cst);
  }
  ~ArbiterRef() { k_->in_arbiter.store(false, std::memory_order_release); }
  ArbiterRef(const ArbiterRef&) = delete;
  ArbiterRef& operator=(const ArbiterRef&) = delete;
  CoreArbiter* get() const noexcept { return a_; }

 private:
  Kthread* k_;
  CoreArbiter* a_;
};

bool may_run(Kthread* k, CoreArbiter* a) noexcept {
  if (k->index < a->guaranteed()) return true;
  if (!a->granted(k->index) || k->index >= k->rt->quota_kthreads) return false;
  if (k->released && a->grant_seq(k->index) == k->released_seq) return false;  // the grant it gave back
  k->released = false;
  return true;
}

// Owner only: k's revoked flag and the runtime's count of running kthreads.
void mark_revoked(Runtime* rt, Kthread* k, bool revoked) noexcept {
  if (k->revoked.load(std::memory_order_relaxed) == revoked) return;
  k->revoked.store(revoked, std::memory_order_seq_cst);
  if (revoked) rt->n_active.fetch_sub(1, std::memory_order_acq_rel);
  else rt->n_active.fetch_add(1, std::memory_order_acq_rel);
}

void publish_ready(Kthread* k, CoreArbiter* a) noexcept {
  if (k->rq.empty() && k->overflow_len.load(std::memory_order_relaxed) == 0) k->ready_since_ns = 0;
  if (k->ready_since_ns == k->ready_published_ns) return;
  k->ready_published_ns = k->ready_since_ns;
  a->report_ready(k->index, k->ready_since_ns);
}

}  // namespace

bool arbiter_wait_grant(Runtime* rt, Kthread* k) noexcept {
  if (!rt->arbiter.load(std::memory_order_relaxed)) return false;
  ArbiterRef ref(rt, k);
  CoreArbiter* a = ref.get();
  if (!a) return false;
  publish_ready(k, a);
  if (may_run(k, a)) {
    mark_revoked(rt, k, false);
    return false;
  }
  mark_revoked(rt, k, true);  // inject() passes k by from here
  while (Uthread* th = pop_local(k)) inject(rt, th);
  if (rt->n_pollers.load(std::memory_order_relaxed)) pollers_parking(rt, k);  // its queues go to granted kthreads
  publish_ready(k, a);
  const uint32_t seq = k->park_seq.load(std::memory_order_acquire);
  const uint32_t grant = a->grant_seq(k->index);  // a grant after this wakes the park at once
  if (rt->stopping.load(std::memory_order_acquire) || may_run(k, a)) return true;
  // Timers its uthreads armed stay in its heap, and a granted kthread that
  // parked before they were armed does not know of them: wake for the first
  // and fire it, which hands the uthread it readies to a granted kthread.
  const uint64_t deadline = k->timers.next_deadline.load(std::memory_order_acquire);
  const uint64_t now = deadline == UINT64_MAX ? 0 : now_ns();
  KthreadCounters::inc(k->counters.parks);
  a->park(k->index, k->park_seq, seq, grant, deadline == UINT64_MAX ? UINT64_MAX : deadline > now ? deadline - now : 0,
          k->spins_forever);
  if (k->timers.next_deadline.load(std::memory_order_acquire) != UINT64_MAX) fire_due_timers(k, k, now_ns());
  return true;
}

bool arbiter_release_idle(Runtime* rt, Kthread* k) noexcept {
  if (!rt->arbiter.load(std::memory_order_relaxed)) return false;
  ArbiterRef ref(rt, k);
  CoreArbiter* a = ref.get();
  if (!a || k->index < a->guaranteed()) return false;
  k->released = true;
  k->released_seq = a->grant_seq(k->index);
  return true;  // find_work's next look finds it not granted and parks it
}

bool arbiter_park_idle(Runtime* rt, Kthread* k, uint32_t seq, uint64_t timeout_ns) noexcept {
  if (!rt->arbiter.load(std::memory_order_relaxed)) return false;
  ArbiterRef ref(rt, k);
  CoreArbiter* a = ref.get();
  if (!a) return false;
  publish_ready(k, a);
  a->park(k->index, k->park_seq, seq, a->grant_seq(k->index), timeout_ns, false);
  return true;
}

void arbiter_switch_point(Runtime* rt, Kthread* k) noexcept {
  ArbiterRef ref(rt, k);
  CoreArbiter* a = ref.get();
  if (!a) return;
  publish_ready(k, a);
  if (!may_run(k, a)) mark_revoked(rt, k, true);  // the next block or yield leaves for find_work
}

}  // namespace detail

using namespace detail;

void set_core_arbiter(CoreArbiter* a) {
  Runtime* rt = g_runtime.load(std::memory_order_acquire);
  if (!rt) throw std::logic_error("slip::rt::set_core_arbiter(): no runtime is running; call it inside slip::rt::run()");
  CoreArbiter* old = rt->arbiter.exchange(a, std::memory_order_seq_cst);
  for (auto& k : rt->ks) k->track_ready.store(a != nullptr, std::memory_order_relaxed);
  if (a || !old) {
    notify_work(rt);
    return;
  }
  // Removal: wake every kthread out of the old arbiter and wait until none is
  // inside it; kthreads it had revoked run again at their next look.
  for (auto& k : rt->ks) {
    k->park_seq.fetch_add(1, std::memory_order_seq_cst);
    old->unpark(k->index);
  }
  Kthread* self = this_kthread();
  for (auto& k : rt->ks)
    if (k.get() != self)
      for (Backoff backoff; k->in_arbiter.load(std::memory_order_seq_cst);) backoff.pause();
  for (auto& k : rt->ks)
    if (k->revoked.load(std::memory_order_acquire) && k->index < rt->quota_kthreads) {
      rt->n_active.fetch_add(1, std::memory_order_acq_rel);
      set_kthread_revoked(rt, k.get(), false);
    }
}

CoreArbiter* core_arbiter() noexcept {
  Runtime* rt = g_runtime.load(std::memory_order_acquire);
  return rt ? rt->arbiter.load(std::memory_order_acquire) : nullptr;
}

}  // namespace slip::rt
