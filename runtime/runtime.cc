// Runtime start-up and shutdown, and the uthread calls that are not about
// synchronization (yield, sleep, introspection).
#include <algorithm>
#include <exception>
#include <stdexcept>

#include "runtime/defs.h"
#include "runtime/switch.h"
#include "slip/runtime/runtime.h"
#include "slip/runtime/wait_queue.h"

namespace slip::rt {

namespace detail {
std::atomic<Runtime*> g_runtime{nullptr};

namespace {
// Each running kthread's share of a CPU quota it must follow (quota CPUs per
// running kthread); 1 or more when spinning cannot overrun the quota.
double quota_share(const CpuLimit& limit, const Config& cfg, unsigned running) {
  if (!cfg.follow_cpu_quota || !limit.quota) return 1;
  return limit.quota->cpus() / running;
}

// Start-up in explicit steps, in order (Caladan's init table, in small).
std::unique_ptr<Runtime> make_runtime(const Config& cfg) {
  auto rt = std::make_unique<Runtime>();
  rt->cfg = cfg;
  rt->stacks = std::make_unique<StackPool>(cfg.stack_size);
  // Busy kthreads poll at least every kPollIntervalNs, counted in TSC ticks
  // so that the check between switches is one rdtsc (without a TSC: every
  // kPollEverySwitches switches only).
  if (clock_uses_tsc()) rt->poll_interval_tsc = tsc_hz() * kPollIntervalNs / 1'000'000'000;
  rt->cpu_limit = read_cpu_limit();
  rt->quota_kthreads = kthreads_allowed(rt->cpu_limit, cfg);
  // Under a quota smaller than the kthreads that run, idle spinning spends
  // quota the work needs: spin less, by each kthread's share of the quota,
  // and let spinning kthreads park after kQuotaSpinNs (scaled the same way).
  const double share = quota_share(rt->cpu_limit, cfg, rt->quota_kthreads);
  for (unsigned i = 0; i < cfg.kthreads; i++) {
    auto k = std::make_unique<Kthread>();
    k->index = i;
    k->stopping = &rt->stopping;
    k->rt = rt.get();
    k->revoked.store(i >= rt->quota_kthreads, std::memory_order_relaxed);  // revoked before it ever runs
    const bool spinning = i < cfg.spinning_kthreads;
    k->spins_forever = spinning && share >= 1;
    const uint64_t spin_ns = spinning ? kQuotaSpinNs : cfg.spin_before_park_ns;
    k->spin_before_park_ns = share >= 1 ? cfg.spin_before_park_ns : static_cast<uint64_t>(spin_ns * share);
    k->rng = 0x9E3779B97F4A7C15ull * (i + 1);
    k->timers.heap.reserve(1024);
    rt->ks.push_back(std::move(k));
  }
  rt->n_active.store(rt->quota_kthreads);
  return rt;
}
}  // namespace
}  // namespace detail

using namespace detail;

void run(const Config& cfg, std::function<void()> main) {
  cfg.validate();
  now_ns();  // calibrate the clock before any kthread needs it
  std::unique_ptr<Runtime> rt = make_runtime(cfg);
  Runtime* expected = nullptr;
  if (!g_runtime.compare_exchange_strong(expected, rt.get()))
    throw std::logic_error("slip::rt::run(): a runtime is already running in this process");

  std::exception_ptr failure;
  Runtime* r = rt.get();
  try {
    Uthread* th = make_uthread([&failure, r, &main] {
      try {
        main();
      } catch (...) {
        failure = std::current_exception();
      }
      r->stopping.store(true, std::memory_order_release);
      wake_all(r);
    });
    th->detached = true;
    th->next = nullptr;
    r->ks[0]->overflow_head = r->ks[0]->overflow_tail = th;
    r->ks[0]->overflow_len.store(1);
    for (auto& k : r->ks) k->thread = std::thread(kthread_main, r, k.get());
  } catch (...) {
    r->stopping.store(true);
    for (auto& k : r->ks)
      if (k->thread.joinable()) {
        wake_all(r);
        k->thread.join();
      }
    g_runtime.store(nullptr);
    throw;
  }
  for (auto& k : r->ks) k->thread.join();
  g_runtime.store(nullptr, std::memory_order_release);
  rt.reset();
  if (failure) std::rethrow_exception(failure);
}

void yield() {
  Kthread* k = this_kthread_before_switch();
  if (!k || !k->current) throw_not_in_uthread("yield");
  if (k->timers.next_deadline.load(std::memory_order_relaxed) != UINT64_MAX)
    fire_due_timers(k, k, now_ns());
  SwitchArgs a{k, k->current, PostSwitch::kRequeue, nullptr};
  if (k->stopping->load(std::memory_order_relaxed) || k->revoked.load(std::memory_order_relaxed)) {
    switch_to_scheduler(&a);
    return;
  }
  Uthread* next = pop_local(k);
  // Nothing else ready: poll the NIC queues (and netpoller) now, so a uthread
  // that spins with yield() -- a load generator waiting for a send slot --
  // does not starve the receives that would wake others on this kthread.
  if (!next && k->rt->n_pollers.load(std::memory_order_relaxed) && run_pollers(k->rt, k)) next = pop_local(k);
  if (next) switch_to_uthread(&a, next);
}

void sleep_until(uint64_t deadline_ns) {
  Kthread* k = this_kthread();
  if (!k || !k->current) throw_not_in_uthread("sleep_until");
  if (now_ns() >= deadline_ns) {
    yield();
    return;
  }
  TimerEntry e;
  e.arg = k->current;
  e.fn = [](TimerEntry* t) { ready(static_cast<Uthread*>(t->arg)); };
  k->timers.lock.lock();
  e.owner = k;
  e.deadline_ns = deadline_ns;
  e.state.store(TimerEntry::kArmed, std::memory_order_relaxed);
  k->timers.insert(&e);
  // The timer cannot fire before the heap lock is dropped, which happens only
  // once this uthread's context is saved.
  block_current(k, PostSwitch::kUnlock, &k->timers.lock);
  timer_cancel(&e);  // waits out a callback that is still returning
}

void set_active_kthreads(unsigned n) {
  Runtime* rt = g_runtime.load(std::memory_order_acquire);
  if (!rt) throw NotInUthread("slip::rt::set_active_kthreads(): no runtime is running");
  n = std::clamp(n, std::max(1u, rt->cfg.guaranteed_kthreads), rt->quota_kthreads);
  rt->n_active.store(n, std::memory_order_seq_cst);
  for (unsigned i = 0; i < rt->ks.size(); i++) {
    Kthread* k = rt->ks[i].get();
    const bool revoke = i >= n;
    if (k->revoked.load(std::memory_order_relaxed) != revoke) set_kthread_revoked(rt, k, revoke);
  }
}

unsigned active_kthreads() noexcept {
  Runtime* rt = g_runtime.load(std::memory_order_acquire);
  return rt ? rt->n_active.load(std::memory_order_acquire) : 0;
}

bool in_uthread() noexcept {
  Kthread* k = this_kthread();
  return k && k->current;
}

int kthread_index() noexcept {
  Kthread* k = this_kthread();
  return k ? static_cast<int>(k->index) : -1;
}

unsigned kthread_count() noexcept {
  Runtime* rt = g_runtime.load(std::memory_order_acquire);
  return rt ? static_cast<unsigned>(rt->ks.size()) : 0;
}

}  // namespace slip::rt
