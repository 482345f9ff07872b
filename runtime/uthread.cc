// Uthread lifecycle and context switching on Boost.Context's fcontext layer.
//
// Why fcontext (jump_fcontext/make_fcontext) rather than callcc or fiber: it is
// the assembly primitive under both, a switch is a handful of register saves
// with no allocation, no exception plumbing and no ontop call, and it hands a
// pointer across the switch, which carries our post-switch action.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

#include "runtime/defs.h"
#include "runtime/switch.h"
#include "slip/runtime/runtime.h"
#include "slip/runtime/wait_queue.h"


namespace slip::rt::detail {

// Runs on the context we switched to, once the previous one is saved.
void finish_switch(bctx::transfer_t t) noexcept {
  auto* a = static_cast<SwitchArgs*>(t.data);
  Kthread* k = a->k;
  if (a->prev) a->prev->ctx = t.fctx;
  else k->sched_ctx = t.fctx;
  switch (a->action) {
    case PostSwitch::kNone:
      break;
    case PostSwitch::kRequeue:
      push_ready(k, a->prev);
      break;
    case PostSwitch::kUnlock:
      a->lock->unlock();
      break;
    case PostSwitch::kExit: {
      Uthread* th = a->prev;
      th->join_lock.lock();
      th->finished = true;
      Uthread* joiner = th->joiner;
      const bool detached = th->detached;
      th->join_lock.unlock();
      if (joiner) ready(joiner);
      if (detached) free_uthread(k, th);
      break;
    }
  }
  // Busy kthreads still poll their NIC queues now and then, and fire timers
  // between direct uthread-to-uthread switches, so nothing starves.
  if (poll_due(k)) {
    if (k->rt->n_pollers.load(std::memory_order_relaxed)) run_pollers(k->rt, k);
    if (k->track_ready.load(std::memory_order_relaxed)) arbiter_switch_point(k->rt, k);
  } else if (k->ready_since_ns != k->ready_published_ns && k->track_ready.load(std::memory_order_relaxed)) {
    arbiter_switch_point(k->rt, k);  // the congestion signal changed: tell the arbiter now
  }
  const uint64_t next = k->timers.next_deadline.load(std::memory_order_relaxed);
  if (next != UINT64_MAX) {
    const uint64_t now = now_ns();
    if (now >= next) fire_due_timers(k, k, now);
  }
}

namespace {

// Where every new uthread starts.
void trampoline(bctx::transfer_t t) noexcept {
#if defined(SLIP_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
  finish_switch(t);
  Kthread* k = this_kthread();
  Uthread* self = k->current;
  try {
    self->entry(self->payload);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slip: uncaught exception in a uthread: %s\n", e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "slip: uncaught non-standard exception in a uthread\n");
    std::abort();
  }
  exit_current(this_kthread());
}

}  // namespace

void record_rq_delay(Kthread* k, Uthread* next) noexcept {
  const uint64_t now = now_ns();
  k->counters.rq_delay_ns.record(now > next->ready_ns ? now - next->ready_ns : 0);
  next->ready_ns = 0;
}

void exit_current(Kthread* k) {
  SwitchArgs a{k, k->current, PostSwitch::kExit, nullptr};
  Uthread* next = pop_local(k);
  if (next) switch_to_uthread(&a, next);
  else switch_to_scheduler(&a);
  std::fprintf(stderr, "slip: an exited uthread was resumed\n");
  std::abort();
}

void free_uthread(Kthread* k, Uthread* th) noexcept {
  Runtime* rt = g_runtime.load(std::memory_order_acquire);
  const Stack copy = th->stack;
  th->~Uthread();
  rt->stacks->put(k, new (th) Stack(copy));
}

Uthread* uthread_create(void (*entry)(void*), size_t size, size_t align, void** payload) {
  Runtime* rt = g_runtime.load(std::memory_order_acquire);
  if (!rt) throw NotInUthread("slip::rt::spawn() called with no runtime running: call it inside slip::rt::run()");
  Kthread* k = this_kthread();
  Stack* s = rt->stacks->get(k);
  const Stack st = *s;
  auto* th = new (s) Uthread();  // the pool keeps each Stack record where its Uthread goes
  th->stack = st;
  uintptr_t p = (reinterpret_cast<uintptr_t>(th) - size) & ~(uintptr_t{align < 16 ? 16 : align} - 1);
  th->payload = reinterpret_cast<void*>(p);
  th->entry = entry;
  *payload = th->payload;
  char* sp = reinterpret_cast<char*>(p & ~uintptr_t{63});
  const size_t room = static_cast<size_t>(sp - static_cast<char*>(st.base));
  if (room < 4096 + rt->stacks->usable_size() / 4) {
    rt->stacks->put(k, s);
    throw std::length_error("slip::rt::spawn(): the callable's captures do not fit on a uthread stack; "
                            "capture large state by pointer or raise stack_size");
  }
  th->ctx = bctx::make_fcontext(sp, room, trampoline);
  if (k) KthreadCounters::inc(k->counters.spawns);
  return th;
}

void uthread_start(Uthread* th, bool detached) {
  th->detached = detached;
  ready(th);
}

void uthread_start_on(Uthread* th, unsigned kthread, bool detached) {
  th->detached = detached;
  ready_on(th, kthread);
}

void uthread_join(Uthread* th) {
  Uthread* self = current_or_throw("JoinHandle::join");
  if (th == self) {
    std::fprintf(stderr, "slip: a uthread tried to join itself\n");
    std::abort();
  }
  th->join_lock.lock();
  if (!th->finished) {
    th->joiner = self;
    park_and_unlock(th->join_lock);
    th->join_lock.lock();  // pairs with the exit path's unlock before it readied us
  }
  th->join_lock.unlock();
  free_uthread(this_kthread(), th);
}

void uthread_detach(Uthread* th) {
  th->join_lock.lock();
  const bool finished = th->finished;
  th->detached = true;
  th->join_lock.unlock();
  if (finished) free_uthread(this_kthread(), th);
}

[[noreturn]] void throw_not_in_uthread(const char* what) {
  std::string msg = std::string("slip::rt::") + what +
                    "() must be called from a uthread (code started by slip::rt::run() or spawn())";
  throw NotInUthread(msg);
}

Uthread* current_or_throw(const char* what) {
  Kthread* k = this_kthread();
  if (!k || !k->current) throw_not_in_uthread(what);
  return k->current;
}

void park_and_unlock(SpinParkLock& lk) {
  Kthread* k = this_kthread();
  if (!k || !k->current) {
    lk.unlock();
    throw_not_in_uthread("park");
  }
  block_current(k, PostSwitch::kUnlock, &lk);
}

}  // namespace slip::rt::detail
