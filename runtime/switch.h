// The context switch itself, inline so that the call chain that crosses a
// switch is short: every return across it is mispredicted (the return stack
// buffer holds the other context's calls), so each frame costs a few ns.
#pragma once

#include "runtime/defs.h"

#if defined(SLIP_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace slip::rt::detail {

// ASan must be told about each switch (__sanitizer_*_switch_fiber), or it reports
// false stack overflows and misses use-after-return across uthreads.
// Switches away from a->prev (or the scheduler) to `to`; returns when the old
// context is resumed, possibly on another kthread.
[[gnu::always_inline]] inline void jump(SwitchArgs* a, bctx::fcontext_t to, Uthread* to_th) {
#if defined(SLIP_ASAN)
  Kthread* k = a->k;
  Uthread* self = a->prev;
  void** fake = a->action == PostSwitch::kExit ? nullptr : (self ? &self->asan_fake_stack : &k->sched_asan_fake_stack);
  if (to_th) __sanitizer_start_switch_fiber(fake, to_th->stack.base, to_th->stack.map_size);
  else __sanitizer_start_switch_fiber(fake, k->sched_stack_bottom, k->sched_stack_size);
  bctx::transfer_t t = bctx::jump_fcontext(to, a);
  // Resumed, maybe on another kthread: `k` is stale, but a scheduler context never moves.
  __sanitizer_finish_switch_fiber(self ? self->asan_fake_stack : this_kthread()->sched_asan_fake_stack, nullptr, nullptr);
#else
  (void)to_th;
  bctx::transfer_t t = bctx::jump_fcontext(to, a);
#endif
  finish_switch(t);
}

// Records a sampled ready-to-run delay; out of line, off the switch path.
[[gnu::noinline, gnu::cold]] void record_rq_delay(Kthread* k, Uthread* next) noexcept;

[[gnu::always_inline]] inline void switch_to_uthread(SwitchArgs* a, Uthread* next) {
  Kthread* k = a->k;
  k->current = next;
  KthreadCounters::inc(k->counters.switches);
  if (next->ready_ns) record_rq_delay(k, next);
  jump(a, next->ctx, next);
}

[[gnu::always_inline]] inline void switch_to_scheduler(SwitchArgs* a) {
  Kthread* k = a->k;
  k->current = nullptr;
  jump(a, k->sched_ctx, nullptr);
}

}  // namespace slip::rt::detail
