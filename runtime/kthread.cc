// The per-kthread scheduler: run queues, work stealing, spinning and parking.
//
// Wake-up protocol (Go's, in short): a kthread that runs out of work spins for
// spin_before_park_ns, stealing, then sets its bit in idle_mask, looks at every
// queue once more, and only then sleeps on its futex. Whoever makes work
// runnable publishes it, then (after a full fence) wakes one idle kthread unless
// another kthread is still spinning. Either the parker sees the work or the
// waker sees the parker; nothing is lost.
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>

#include "runtime/defs.h"
#include "runtime/switch.h"
#include "slip/runtime/runtime.h"
#include "slip/runtime/wait_queue.h"

namespace slip::rt::detail {

namespace {

void futex_wait(std::atomic<uint32_t>* word, uint32_t expected, uint64_t timeout_ns) noexcept {
  timespec ts{};
  timespec* tsp = nullptr;
  if (timeout_ns != UINT64_MAX) {
    ts.tv_sec = static_cast<time_t>(timeout_ns / 1000000000);
    ts.tv_nsec = static_cast<long>(timeout_ns % 1000000000);
    tsp = &ts;
  }
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, tsp, nullptr, 0);
}

void futex_wake(std::atomic<uint32_t>* word) noexcept {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

void wake_kthread(Kthread* k) noexcept {
  k->park_seq.fetch_add(1, std::memory_order_seq_cst);
  futex_wake(&k->park_seq);
  // One parked in a core arbiter sleeps on its eventfd, not the futex.
  if (CoreArbiter* a = k->rt->arbiter.load(std::memory_order_seq_cst)) a->unpark(k->index);
  // A kthread asleep in a blocking poller (set before its idle bit) is woken
  // there. The count lets remove_poller() wait out a waker that loaded the
  // poller just before the sleeper left it, so the poller is never used freed.
  if (k->blocked_in.load(std::memory_order_seq_cst)) {
    Runtime* rt = k->rt;
    rt->interrupting.fetch_add(1, std::memory_order_seq_cst);
    if (Poller* p = k->blocked_in.load(std::memory_order_seq_cst)) p->interrupt();
    rt->interrupting.fetch_sub(1, std::memory_order_release);
  }
}


// Clears k's idle bit if set; true when this call did, i.e. owns waking it.
bool claim_idle(Runtime* rt, unsigned i) noexcept {
  const uint64_t bit = uint64_t{1} << i;
  return rt->idle_mask.fetch_and(~bit, std::memory_order_acq_rel) & bit;
}

void push_overflow(Kthread* k, Uthread* th) noexcept {
  th->next = nullptr;
  k->overflow_lock.lock();
  if (k->overflow_tail) k->overflow_tail->next = th;
  else k->overflow_head = th;
  k->overflow_tail = th;
  k->overflow_len.fetch_add(1, std::memory_order_release);
  k->overflow_lock.unlock();
}

// Takes the oldest overflowed uthread; `refill` also moves a batch into the
// ring (owner only), so a long overflow drains at ring speed.
Uthread* pop_overflow(Kthread* from, Kthread* owner_refill) noexcept {
  if (owner_refill) from->overflow_lock.lock();
  else if (!from->overflow_lock.try_lock()) return nullptr;
  Uthread* th = from->overflow_head;
  if (th) {
    from->overflow_head = th->next;
    uint32_t taken = 1;
    while (owner_refill && from->overflow_head && taken < RunQueue::kSize / 2) {
      Uthread* more = from->overflow_head;
      if (!owner_refill->rq.push(more)) break;
      from->overflow_head = more->next;
      taken++;
    }
    if (!from->overflow_head) from->overflow_tail = nullptr;
    from->overflow_len.fetch_sub(taken, std::memory_order_release);
  }
  from->overflow_lock.unlock();
  return th;
}

bool work_visible(Runtime* rt) noexcept {
  for (auto& k : rt->ks)
    if (!k->rq.empty() || k->overflow_len.load(std::memory_order_acquire)) return true;
  return false;
}

// One pass over the other kthreads, starting at a random one.
Uthread* steal(Runtime* rt, Kthread* k) noexcept {
  const size_t n = rt->ks.size();
  if (n < 2) return nullptr;
  KthreadCounters::inc(k->counters.steal_attempts);
  k->rng ^= k->rng << 13, k->rng ^= k->rng >> 7, k->rng ^= k->rng << 17;
  const size_t start = k->rng % n;
  for (size_t i = 0; i < n; i++) {
    Kthread* v = rt->ks[(start + i) % n].get();
    if (v == k) continue;
    const uint32_t before = k->rq.size();
    Uthread* th = v->rq.steal_into(k->rq);
    if (!th && v->overflow_len.load(std::memory_order_acquire) && !v->searching.load(std::memory_order_relaxed))
      th = pop_overflow(v, nullptr);
    if (th) {
      KthreadCounters::inc(k->counters.steals, 1 + k->rq.size() - before);
      return th;
    }
  }
  return nullptr;
}

uint64_t earliest_timer(Runtime* rt) noexcept {
  uint64_t d = UINT64_MAX;
  for (auto& k : rt->ks) d = std::min(d, k->timers.next_deadline.load(std::memory_order_acquire));
  return d;
}

// Fires expired timers of every kthread (others' only when their lock is free).
void fire_all_due(Runtime* rt, Kthread* k) noexcept {
  if (earliest_timer(rt) == UINT64_MAX) return;
  const uint64_t now = now_ns();
  fire_due_timers(k, k, now);
  for (auto& o : rt->ks)
    if (o.get() != k) fire_due_timers(k, o.get(), now);
}

// Not searching while asleep: what lands in its overflow list may be stolen.
struct NotSearching {
  explicit NotSearching(Kthread* k) noexcept : k_(k) { k_->searching.store(false, std::memory_order_relaxed); }
  ~NotSearching() { k_->searching.store(true, std::memory_order_relaxed); }
  Kthread* k_;
};

// A revoked kthread moves its queued uthreads to granted kthreads, then sleeps
// outside the idle mask (new work never wakes it) until granted again.
void park_revoked(Runtime* rt, Kthread* k) noexcept {
  const NotSearching asleep(k);
  while (Uthread* th = pop_local(k)) inject(rt, th);
  if (rt->n_pollers.load(std::memory_order_relaxed)) pollers_parking(rt, k);
  const uint32_t seq = k->park_seq.load(std::memory_order_acquire);
  if (!k->revoked.load(std::memory_order_seq_cst) || rt->stopping.load(std::memory_order_acquire)) return;
  KthreadCounters::inc(k->counters.parks);
  // Its uthreads' timers stay in its heap, and a granted kthread that parked
  // before they were armed never hears of them: wake for the first and fire
  // it (find_work then hands the readied uthread over), as the arbiter path does.
  const uint64_t deadline = k->timers.next_deadline.load(std::memory_order_acquire);
  const uint64_t now = deadline == UINT64_MAX ? 0 : now_ns();
  futex_wait(&k->park_seq, seq, deadline == UINT64_MAX ? UINT64_MAX : deadline > now ? deadline - now : 0);
  if (k->timers.next_deadline.load(std::memory_order_acquire) != UINT64_MAX) fire_due_timers(k, k, now_ns());
}

// Sleeps in a blocking poller when one is registered and no other kthread
// sleeps in it; false when the caller should use its futex instead.
bool block_in_poller(Runtime* rt, Kthread* k, uint32_t seq, uint64_t timeout) noexcept {
  // A poll section first, as in run_pollers: remove_poller() clears the slot
  // and then waits the section out, so a poller we load here outlives our use of it.
  enter_poll(k);
  Poller* p = blocking_poller(rt);
  Poller* none = nullptr;
  if (!p || !rt->poller_sleeper.compare_exchange_strong(none, p, std::memory_order_seq_cst)) {
    leave_poll(k);
    return false;
  }
  k->blocked_in.store(p, std::memory_order_seq_cst);
  const uint64_t bit = uint64_t{1} << k->index;
  rt->idle_mask.fetch_or(bit, std::memory_order_seq_cst);
  if (timeout != 0 && !work_visible(rt) && !rt->stopping.load(std::memory_order_acquire) &&
      k->park_seq.load(std::memory_order_acquire) == seq) {
    KthreadCounters::inc(k->counters.parks);
    p->block(k->index, timeout);
  }
  claim_idle(rt, k->index);
  k->blocked_in.store(nullptr, std::memory_order_seq_cst);  // before leaving the section: see wake_kthread
  leave_poll(k);
  rt->poller_sleeper.store(nullptr, std::memory_order_release);
  return true;
}

void park(Runtime* rt, Kthread* k) noexcept {
  const NotSearching asleep(k);
  const uint32_t seq = k->park_seq.load(std::memory_order_acquire);
  const uint64_t bit = uint64_t{1} << k->index;
  uint64_t timeout = UINT64_MAX;
  const uint64_t deadline = earliest_timer(rt);
  if (deadline != UINT64_MAX) {
    const uint64_t now = now_ns();
    timeout = deadline > now ? deadline - now : 0;
  }
  if (rt->n_pollers.load(std::memory_order_relaxed)) {
    timeout = std::min(timeout, pollers_max_park_ns(rt, k));
    if (block_in_poller(rt, k, seq, timeout)) return;
    if (timeout != 0) pollers_parking(rt, k);  // its receive queues go to whoever still polls
  }
  rt->idle_mask.fetch_or(bit, std::memory_order_seq_cst);
  if (timeout == 0 || work_visible(rt) || rt->stopping.load(std::memory_order_acquire)) {
    claim_idle(rt, k->index);
    return;
  }
  KthreadCounters::inc(k->counters.parks);
  if (!arbiter_park_idle(rt, k, seq, timeout)) futex_wait(&k->park_seq, seq, timeout);
  claim_idle(rt, k->index);
  if (k->park_seq.load(std::memory_order_acquire) != seq) KthreadCounters::inc(k->counters.wakeups);
}

Uthread* find_work_searching(Runtime* rt, Kthread* k) noexcept;

// The scheduler context's search for work; nullptr once the runtime stops.
Uthread* find_work(Runtime* rt, Kthread* k) noexcept {
  k->searching.store(true, std::memory_order_relaxed);
  Uthread* th = find_work_searching(rt, k);
  k->searching.store(false, std::memory_order_relaxed);
  return th;
}

Uthread* find_work_searching(Runtime* rt, Kthread* k) noexcept {
  bool spinning = false;
  uint64_t spin_start = 0;
  for (;;) {
    if (rt->stopping.load(std::memory_order_acquire)) {
      if (spinning) rt->spinning.fetch_sub(1);
      return nullptr;
    }
    if (arbiter_wait_grant(rt, k)) {  // not granted: it waited for a grant
      if (spinning) rt->spinning.fetch_sub(1);
      spinning = false;
      continue;
    }
    if (k->revoked.load(std::memory_order_acquire)) {
      if (spinning) rt->spinning.fetch_sub(1);
      spinning = false;
      park_revoked(rt, k);
      continue;
    }
    fire_all_due(rt, k);
    Uthread* th = pop_local(k);
    if (!th && rt->n_pollers.load(std::memory_order_relaxed) && run_pollers(rt, k)) {
      th = pop_local(k);
      if (!th) {
        spin_start = now_ns();  // the poller found work; keep polling before parking
        continue;
      }
    }
    if (!th) th = steal(rt, k);
    if (th) {
      if (spinning) {
        // The last spinner to find work wakes another, so queued work is not left behind.
        if (rt->spinning.fetch_sub(1) == 1 && work_visible(rt)) notify_work(rt);
      }
      return th;
    }
    if (!spinning) {
      spinning = true;
      rt->spinning.fetch_add(1);
      spin_start = now_ns();
    }
    const uint64_t idle_ns = now_ns() - spin_start;
    const bool waited = idle_ns >= k->spin_before_park_ns;
    if (waited && arbiter_release_idle(rt, k)) continue;  // gave its core back; it parks next look
    if (k->spins_forever || !waited) {
      for (int i = 0; i < 16; i++) __builtin_ia32_pause();
      if (k->spins_forever && idle_ns >= kSpinYieldAfterNs) k->give_way.idle();
      continue;
    }
    rt->spinning.fetch_sub(1);
    spinning = false;
    park(rt, k);
  }
}

void pin(Runtime* rt, Kthread* k) noexcept {
  cpu_set_t allowed;
  if (!rt->cfg.pin_kthreads || sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return;
  const int n = CPU_COUNT(&allowed);
  if (n <= 0) return;
  int want = static_cast<int>(k->index) % n, seen = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (!CPU_ISSET(cpu, &allowed)) continue;
    if (seen++ == want) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
      return;
    }
  }
}

}  // namespace

thread_local Kthread* tls_kthread = nullptr;

[[gnu::noinline]] Kthread* this_kthread() noexcept {
  Kthread* k = tls_kthread;
  asm volatile("" : "+r"(k));
  return k;
}

void set_this_kthread(Kthread* k) noexcept { tls_kthread = k; }

void push_ready(Kthread* k, Uthread* th) noexcept {
  note_ready(k);
  th->ready_ns = (++k->sample_tick % kRqDelaySampleEvery == 0) ? now_ns() : 0;
  if (!k->rq.push(th)) {
    KthreadCounters::inc(k->counters.overflows);
    push_overflow(k, th);
  }
}

void inject(Runtime* rt, Uthread* th) noexcept {
  // Round robin over the kthreads that are not revoked (kthread 0 never is
  // for long: it is always granted).
  const unsigned n = static_cast<unsigned>(rt->ks.size());
  unsigned i = rt->next_inject.fetch_add(1, std::memory_order_relaxed) % n;
  for (unsigned t = 0; t < n && rt->ks[i]->revoked.load(std::memory_order_acquire); t++) i = i + 1 < n ? i + 1 : 0;
  th->ready_ns = 0;
  push_overflow(rt->ks[i].get(), th);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (claim_idle(rt, i)) wake_kthread(rt->ks[i].get());
  else notify_work(rt);
}

Uthread* pop_local(Kthread* k) noexcept {
  Uthread* th = nullptr;
  if (k->overflow_len.load(std::memory_order_relaxed) && (++k->ticks % 61 == 0 || k->rq.empty()))
    th = pop_overflow(k, k);
  if (!th) th = k->rq.pop();
  // The backlog drained: stop the ready clock (the next switch tells an arbiter).
  if (k->ready_since_ns != 0 && k->rq.empty() && k->overflow_len.load(std::memory_order_relaxed) == 0)
    k->ready_since_ns = 0;
  return th;
}

void notify_work(Runtime* rt) noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (rt->spinning.load(std::memory_order_relaxed) != 0) return;
  uint64_t m = rt->idle_mask.load(std::memory_order_relaxed);
  while (m) {
    const unsigned i = static_cast<unsigned>(__builtin_ctzll(m));
    if (claim_idle(rt, i)) {
      wake_kthread(rt->ks[i].get());
      return;
    }
    m = rt->idle_mask.load(std::memory_order_relaxed);
  }
}

void set_kthread_revoked(Runtime* rt, Kthread* k, bool revoked) noexcept {
  k->revoked.store(revoked, std::memory_order_seq_cst);
  wake_kthread(k);  // revoked: leave the idle mask and hand work over; granted: resume
  if (revoked) claim_idle(rt, k->index);
}

void wake_all(Runtime* rt) noexcept {
  for (auto& k : rt->ks) wake_kthread(k.get());
}

void ready(Uthread* th) noexcept {
  Runtime* rt = g_runtime.load(std::memory_order_acquire);
  Kthread* k = this_kthread();
  if (!k) {
    inject(rt, th);
    return;
  }
  push_ready(k, th);
  if (rt->ks.size() > 1) notify_work(rt);
}

void ready_on(Uthread* th, unsigned i) noexcept {
  Runtime* rt = g_runtime.load(std::memory_order_acquire);
  i %= static_cast<unsigned>(rt->ks.size());
  Kthread* target = rt->ks[i].get();
  Kthread* self = this_kthread();
  if (self == target) {
    push_ready(self, th);
    if (rt->ks.size() > 1) notify_work(rt);
    return;
  }
  // A revoked kthread is parked outside the idle mask and would not see it.
  if (target->revoked.load(std::memory_order_acquire)) return inject(rt, th);
  th->ready_ns = 0;
  push_overflow(target, th);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (claim_idle(rt, i)) wake_kthread(target);
  else notify_work(rt);
}

void block_current(Kthread* k, PostSwitch action, SpinParkLock* lock) {
  SwitchArgs a{k, k->current, action, lock};
  const bool leave = k->stopping->load(std::memory_order_relaxed) || k->revoked.load(std::memory_order_relaxed);
  Uthread* next = leave ? nullptr : pop_local(k);
  if (next) switch_to_uthread(&a, next);
  else switch_to_scheduler(&a);
}

void kthread_main(Runtime* rt, Kthread* k) {
  k->tid.store(gettid(), std::memory_order_release);  // for sched_stats()
  set_this_kthread(k);
  pin(rt, k);
  char name[16];
  std::snprintf(name, sizeof name, "slip-k%u", k->index);  // for top -H, perf and the tests
  pthread_setname_np(pthread_self(), name);
  // Timed sleeps (parks until a timer, GiveWay) end when asked
  // rather than up to 50 us later, Linux's default slack.
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* lo = nullptr;
    size_t sz = 0;
    pthread_attr_getstack(&attr, &lo, &sz);
    k->sched_stack_bottom = lo;
    k->sched_stack_size = sz;
    pthread_attr_destroy(&attr);
  }
  for (;;) {
    Uthread* th = find_work(rt, k);
    if (!th) break;
    SwitchArgs a{k, nullptr, PostSwitch::kNone, nullptr};
    switch_to_uthread(&a, th);
  }
  rt->stacks->release_cache(k);
  set_this_kthread(nullptr);
}

}  // namespace slip::rt::detail
