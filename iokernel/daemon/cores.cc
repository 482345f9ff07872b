#include "iokernel/daemon/cores.h"

#include <sys/eventfd.h>

#include <algorithm>
#include <cstdlib>

#include "iokernel/daemon/runtimes.h"

namespace slip::iok {

void DelayPolicy::decide(const std::vector<RuntimeView>& rts, uint32_t capacity, Grants& out) noexcept {
  out.reset(rts.size());
  uint32_t used = 0;
  for (const RuntimeView& v : rts) used += v.active;
  // Guaranteed kthreads woke up past capacity: best-effort runtimes give back.
  for (int i; used > capacity && (i = victim(rts, out, SIZE_MAX)) >= 0; used--) out.delta[static_cast<size_t>(i)]--;
  order_.clear();
  for (uint32_t i = 0; i < rts.size(); i++)
    if (rts[i].congested()) order_.push_back(i);
  std::sort(order_.begin(), order_.end(), [&](uint32_t a, uint32_t b) {
    if (rts[a].best_effort != rts[b].best_effort) return !rts[a].best_effort;
    return rts[a].delay_ns > rts[b].delay_ns;
  });
  for (uint32_t i : order_) {
    const RuntimeView& v = rts[i];
    const int d = out.delta[i];
    if (d != 0 || v.granted() >= v.max || v.extra_idle == 0) continue;
    if (used < capacity) {
      out.delta[i] = 1;
      used++;
    } else if (const int from = victim(rts, out, i); from >= 0) {
      out.delta[static_cast<size_t>(from)]--;
      out.delta[i] = 1;
    }
  }
}

// The runtime that gives a core to for_rt (SIZE_MAX: to nobody, capacity is
// short): a best-effort one with an extra kthread still granted, the least
// congested first; a best-effort for_rt only takes from one not congested.
// -1 when there is none.
int DelayPolicy::victim(const std::vector<RuntimeView>& rts, const Grants& g, size_t for_rt) const noexcept {
  const bool be_asks = for_rt != SIZE_MAX && rts[for_rt].best_effort;
  int best = -1;
  for (size_t j = 0; j < rts.size(); j++) {
    const RuntimeView& v = rts[j];
    if (j == for_rt || !v.best_effort || g.delta[j] > 0) continue;
    if (static_cast<int>(v.extra_granted) + g.delta[j] <= 0 || (be_asks && v.congested())) continue;
    if (best < 0 || v.delay_ns < rts[static_cast<size_t>(best)].delay_ns) best = static_cast<int>(j);
  }
  return best;
}

CoreAllocator::CoreAllocator(std::unique_ptr<CorePolicy> policy, uint32_t capacity, std::vector<int> cpus)
    : policy_(std::move(policy)), capacity_(capacity), cpus_(std::move(cpus)), cpu_load_(cpus_.size()) {}

unsigned CoreAllocator::run(RuntimeTable& t, uint64_t now_ns) noexcept {
  passes_++;
  unsigned work = 0;
  views_.resize(t.size());
  const auto& es = t.entries();
  if (!cpus_.empty()) count_cpu_load(t);
  for (size_t i = 0; i < es.size(); i++) work += observe(*es[i], now_ns, views_[i]);
  policy_->decide(views_, capacity_, grants_);
  in_use_ = 0;
  for (size_t i = 0; i < es.size(); i++) {
    RuntimeEntry& e = *es[i];
    for (int d = grants_.delta[i]; d > 0; d--) grant_one(e, now_ns);
    for (int d = grants_.delta[i]; d < 0; d++) revoke_one(e);
    work += static_cast<unsigned>(std::abs(grants_.delta[i]));
    e.core_counters.granted = views_[i].granted() + static_cast<uint32_t>(grants_.delta[i]);
    e.core_counters.active = views_[i].active + static_cast<uint32_t>(grants_.delta[i]);
    in_use_ += e.core_counters.active;
  }
  return work;
}

// Fills v from e's region: who parked (a granted kthread that parked since
// its grant gave its core back), the queueing delay, and kicks a runtime
// whose kthreads all sleep while frames wait for it. Returns kicks made.
unsigned CoreAllocator::observe(RuntimeEntry& e, uint64_t now_ns, RuntimeView& v) noexcept {
  const RegisterMsg& m = e.attached.msg;
  const uint32_t n = e.attached.layout.n_kthreads;
  v = RuntimeView{};
  v.best_effort = m.klass == static_cast<uint8_t>(Class::kBestEffort);
  v.guaranteed = std::min<uint32_t>(m.guaranteed_cores, n);
  v.max = std::min<uint32_t>(std::max(m.max_cores, m.guaranteed_cores), n);
  v.threshold_ns = uint64_t{m.delay_threshold_us} * 1000;
  bool frames_waiting = false;
  for (uint32_t k = 0; k < n; k++) {
    KthreadShm& s = e.kthread(k);
    CoreSlot& c = e.cores[k];
    const bool parked = s.state.load(std::memory_order_acquire) == static_cast<uint32_t>(KthreadState::kParked);
    const uint32_t parks = s.parks.load(std::memory_order_acquire);
    if (k < v.guaranteed) {
      if (!c.granted) grant_one(e, now_ns);  // the guarantee: granted once, for good
      if (!parked) v.active++;
    } else if (c.granted && parked && parks != c.parks_at_grant) {
      c.granted = false;  // it parked since its grant: the core is free
      s.grant.store(0, std::memory_order_release);
      e.core_counters.yields++;
    } else if (c.granted) {
      v.extra_granted++;
      v.active++;
    } else if (k < n) {
      v.extra_idle++;
    }
    const uint64_t rx = e.ring(k, Ring::kRx).head_stamp();
    const uint64_t ready = s.oldest_ready_ns.load(std::memory_order_acquire);
    if (rx != 0) frames_waiting = true;
    if (rx != 0 && rx < now_ns) v.delay_ns = std::max(v.delay_ns, now_ns - rx);
    if (ready != 0 && ready < now_ns) v.delay_ns = std::max(v.delay_ns, now_ns - ready);
  }
  e.core_counters.delay_ns = v.delay_ns;
  if (!frames_waiting || v.active != 0 || v.guaranteed == 0) return 0;
  // Every kthread sleeps and frames wait: wake kthread 0 once per park of it.
  KthreadShm& s0 = e.kthread(0);
  const uint32_t parks = s0.parks.load(std::memory_order_acquire);
  if (e.cores[0].kicked_parks == parks) return 0;
  e.cores[0].kicked_parks = parks;
  if (!e.attached.eventfds.empty()) (void)eventfd_write(e.attached.eventfds[0], 1);
  e.core_counters.kicks++;
  return 1;
}

// Granted kthreads per CPU that run, or are waking (not parked since their
// grant): where the next grant should not go. A revoked kthread still counts
// until it parks.
void CoreAllocator::count_cpu_load(const RuntimeTable& t) noexcept {
  std::fill(cpu_load_.begin(), cpu_load_.end(), 0);
  for (const auto& e : t.entries())
    for (uint32_t k = 0; k < e->cores.size(); k++) {
      const CoreSlot& c = e->cores[k];
      if (!c.granted || c.cpu < 0) continue;
      const KthreadShm& s = e->kthread(k);
      const bool parked = s.state.load(std::memory_order_acquire) == static_cast<uint32_t>(KthreadState::kParked);
      if (parked && s.parks.load(std::memory_order_acquire) != c.parks_at_grant) continue;
      for (size_t i = 0; i < cpus_.size(); i++)
        if (cpus_[i] == c.cpu) cpu_load_[i]++;
    }
}

int CoreAllocator::pick_cpu(int last) noexcept {
  size_t best = 0;
  for (size_t i = 1; i < cpus_.size(); i++)
    if (cpu_load_[i] < cpu_load_[best] || (cpu_load_[i] == cpu_load_[best] && cpus_[i] == last)) best = i;
  cpu_load_[best]++;
  return cpus_[best];
}

// Grants the lowest kthread without a grant and wakes it: grant (and its
// CPU) first, then the sequence, then the eventfd, so the woken kthread sees
// its grant.
void CoreAllocator::grant_one(RuntimeEntry& e, uint64_t now_ns) noexcept {
  for (uint32_t k = 0; k < e.cores.size(); k++) {
    CoreSlot& c = e.cores[k];
    if (c.granted) continue;
    KthreadShm& s = e.kthread(k);
    c.granted = true;
    c.parks_at_grant = s.parks.load(std::memory_order_acquire);
    if (!cpus_.empty()) {
      c.cpu = pick_cpu(c.cpu);
      s.grant_cpu.store(static_cast<uint32_t>(c.cpu) + 1, std::memory_order_release);
    }
    s.grant.store(1, std::memory_order_release);
    s.grant_ns.store(now_ns, std::memory_order_release);
    s.grant_seq.fetch_add(1, std::memory_order_seq_cst);
    if (k >= e.attached.msg.guaranteed_cores) {
      if (k < e.attached.eventfds.size()) (void)eventfd_write(e.attached.eventfds[k], 1);
      e.core_counters.grants++;
    }
    return;
  }
}

// Takes back the highest extra kthread's grant; it notices between uthreads,
// hands its work over and parks.
void CoreAllocator::revoke_one(RuntimeEntry& e) noexcept {
  for (uint32_t k = static_cast<uint32_t>(e.cores.size()); k-- > e.attached.msg.guaranteed_cores;) {
    CoreSlot& c = e.cores[k];
    if (!c.granted) continue;
    c.granted = false;
    e.kthread(k).grant.store(0, std::memory_order_release);
    e.core_counters.revokes++;
    return;
  }
}

}  // namespace slip::iok
