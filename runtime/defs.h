// Runtime internals shared by runtime/*.cc; not API. Caladan keeps the same
// split: public headers in include/, one internal defs header beside the code.
#pragma once

#include <boost/context/detail/fcontext.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "runtime/run_queue.h"
#include "slip/runtime/config.h"
#include "slip/runtime/cores.h"
#include "slip/runtime/cpu_limit.h"
#include "slip/runtime/poll.h"
#include "slip/runtime/spin_park_lock.h"
#include "slip/runtime/stats.h"
#include "slip/runtime/timer.h"

namespace slip::rt::detail {

namespace bctx = boost::context::detail;
struct Kthread;

// A pooled stack: [base, base + guard) is PROT_NONE, the rest is usable.
struct Stack {
  void* base = nullptr;
  size_t map_size = 0;
  Stack* next_free = nullptr;  // intrusive link while pooled (stored at the stack top)
  char* top() const noexcept { return static_cast<char*>(base) + map_size; }
};

// A user-level thread. It lives at the top of its own stack, so creating one
// allocates nothing beyond the pooled stack.
struct alignas(64) Uthread {
  bctx::fcontext_t ctx = nullptr;
  Uthread* next = nullptr;        // link in the inject/overflow lists
  void (*entry)(void*) = nullptr;
  void* payload = nullptr;
  Stack stack;
  void* asan_fake_stack = nullptr;
  uint64_t ready_ns = 0;          // set when sampled for the run-queue delay histogram
  // Join state; guarded by join_lock.
  SpinParkLock join_lock;
  bool finished = false;
  bool detached = false;
  Uthread* joiner = nullptr;
};

// What the context we switch to does for the one we left, once the old
// context is saved (Boost.Fiber and Go's mcall do the same): only then may
// another kthread see the old uthread.
enum class PostSwitch : uint8_t { kNone, kRequeue, kUnlock, kExit };
struct SwitchArgs {
  Kthread* k;         // the kthread performing the switch
  Uthread* prev;      // nullptr: the scheduler context
  PostSwitch action;
  SpinParkLock* lock;     // kUnlock
};

// Where a stack's Stack record (while pooled) and its Uthread (while in use) live.
inline void* stack_record(const Stack& s) noexcept {
  return reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(s.top() - sizeof(Uthread)) & ~uintptr_t{63});
}

// Stack pool shared by the runtime's kthreads; each kthread keeps a local cache.
class StackPool {
 public:
  explicit StackPool(size_t usable_size);
  ~StackPool();
  Stack* get(Kthread* k);          // throws std::bad_alloc when none can be mapped
  void put(Kthread* k, Stack* s) noexcept;
  void release_cache(Kthread* k) noexcept;  // moves k's cache to the shared pool
  size_t usable_size() const noexcept { return usable_; }

 private:
  Stack* map_new();
  size_t usable_, map_size_, page_;
  SpinParkLock lock_;
  Stack* shared_ = nullptr;
  size_t shared_count_ = 0;
};

// Per-kthread timer heap; the lock lets other kthreads cancel and steal.
struct TimerHeap {
  SpinParkLock lock;
  std::vector<TimerEntry*> heap;
  std::atomic<uint64_t> next_deadline{UINT64_MAX};  // readable without the lock
  void insert(TimerEntry* e);        // lock held
  void erase(TimerEntry* e);         // lock held
  TimerEntry* pop_due(uint64_t now); // lock held
 private:
  void sift_up(size_t i);
  void sift_down(size_t i);
  void publish() noexcept;
};

// Counters written only by the owner kthread (relaxed single-writer stores).
struct alignas(64) KthreadCounters {
  std::atomic<uint64_t> switches{0}, spawns{0}, steals{0}, steal_attempts{0}, parks{0}, wakeups{0},
      timers_fired{0}, overflows{0};
  Histogram rq_delay_ns;
  static void inc(std::atomic<uint64_t>& c, uint64_t n = 1) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

// One per core given to the runtime.
struct alignas(64) Kthread {
  RunQueue rq;
  // Uthreads that did not fit in rq; also how foreign threads hand work over.
  SpinParkLock overflow_lock;
  Uthread* overflow_head = nullptr;
  Uthread* overflow_tail = nullptr;
  std::atomic<uint32_t> overflow_len{0};

  TimerHeap timers;
  alignas(64) std::atomic<uint32_t> park_seq{0};  // futex word

  // Owner-only state.
  alignas(64) Uthread* current = nullptr;
  std::atomic<bool>* stopping = nullptr;  // the runtime's flag, one load away on hot paths
  struct Runtime* rt = nullptr;
  std::atomic<bool> revoked{false};       // core taken away: hand work over and park
  // Looking for work in find_work, not asleep: it will take what lands in its
  // overflow list itself, so stealers leave that list alone (spawn_on's
  // uthreads then run where they were sent).
  std::atomic<bool> searching{false};
  uint32_t poll_tick = 0;
  uint64_t next_poll_tsc = 0;             // a busy kthread polls again at this TSC reading
  // Poll sections: odd while this kthread is inside a poller call (poll,
  // block, max_park_ns). remove_poller and synchronize_pollers wait for the
  // section in progress to end, not for a moment with none in progress, so a
  // kthread that polls back to back cannot hold them up.
  std::atomic<uint64_t> poll_seq{0};
  std::atomic<Poller*> blocked_in{nullptr};  // the blocking poller it sleeps in, if any
  bctx::fcontext_t sched_ctx = nullptr;
  void* sched_asan_fake_stack = nullptr;
  const void* sched_stack_bottom = nullptr;
  size_t sched_stack_size = 0;
  unsigned index = 0;
  bool spins_forever = false;
  GiveWay give_way;  // spins_forever: lets a thread sharing its CPU run
  uint64_t spin_before_park_ns = 0;  // cfg's, shorter under a CPU quota (runtime.cc)
  std::atomic<int> tid{0};           // its OS thread, for /proc/self/task/TID (sched_stats)
  uint32_t ticks = 0;          // pops since the overflow list was last checked first
  uint32_t sample_tick = 0;
  uint64_t rng = 0;
  Stack* stack_cache = nullptr;
  size_t stack_cache_len = 0;
  KthreadCounters counters;
  std::thread thread;

  // Core arbiter (cores.cc). in_arbiter: inside a call to it, which
  // set_core_arbiter(nullptr) waits out. ready_since_ns: since when the run
  // queue has held work without draining (owner only, kept while
  // track_ready); published: what the arbiter last heard. released: an idle
  // kthread gave its core back and runs again only on a grant newer than
  // released_seq.
  alignas(64) std::atomic<bool> in_arbiter{false};
  std::atomic<bool> track_ready{false};
  uint64_t ready_since_ns = 0, ready_published_ns = 0;
  bool released = false;
  uint32_t released_seq = 0;
};

// The process's running runtime.
struct Runtime {
  Config cfg;
  std::vector<std::unique_ptr<Kthread>> ks;
  std::unique_ptr<StackPool> stacks;
  alignas(64) std::atomic<uint64_t> idle_mask{0};   // bit i: kthread i is parked
  std::atomic<int> spinning{0};                     // kthreads searching for work
  std::atomic<bool> stopping{false};
  std::atomic<uint32_t> next_inject{0};             // round robin for foreign spawns
  std::atomic<unsigned> n_active{0};              // kthreads [0, n_active) are granted
  std::atomic<Poller*> pollers[kMaxPollers] = {};
  std::atomic<unsigned> n_pollers{0};
  std::atomic<Poller*> poller_sleeper{nullptr};  // at most one kthread sleeps in a poller
  std::atomic<int> interrupting{0};               // wakers inside Poller::interrupt()
  std::atomic<CoreArbiter*> arbiter{nullptr};      // grants cores from outside (cores.cc)
  uint64_t poll_interval_tsc = 0;                   // kPollIntervalNs in TSC ticks; 0: no TSC
  CpuLimit cpu_limit;                               // read at start
  unsigned quota_kthreads = 0;                      // kthreads [this, n) never run: the CPU quota
};

// Owner: brackets a poll section (see Kthread::poll_seq). Entering is a
// seq_cst store, so what the section loads afterwards cannot be older than
// a concurrent synchronize_pollers() that found the section not yet begun.
inline void enter_poll(Kthread* k) noexcept {
  k->poll_seq.store(k->poll_seq.load(std::memory_order_relaxed) + 1, std::memory_order_seq_cst);
}
inline void leave_poll(Kthread* k) noexcept {
  k->poll_seq.store(k->poll_seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}
// Between two uthreads: whether a busy kthread is due to poll its sources:
// every kPollEverySwitches switches, and, while another kthread spins idle
// (and would take its receive queue over), kPollIntervalNs after its last poll.
inline bool poll_due(Kthread* k) noexcept {
  if (++k->poll_tick % kPollEverySwitches == 0) return true;
  return k->rt->poll_interval_tsc != 0 && k->rt->spinning.load(std::memory_order_relaxed) != 0 &&
         __builtin_ia32_rdtsc() >= k->next_poll_tsc;
}
// Waits until every kthread but `self` has left the poll section it was in
// at the call (kicking one asleep in a blocking poller).
void wait_out_polls(Runtime* rt, Kthread* self) noexcept;
// Runs every registered poller for kthread k; returns the work they did.
unsigned run_pollers(Runtime* rt, Kthread* k) noexcept;
// Tells the pollers that kthread k is about to park (Poller::parking).
void pollers_parking(Runtime* rt, Kthread* k) noexcept;
// Shortest max_park_ns() over the registered pollers.
uint64_t pollers_max_park_ns(Runtime* rt, Kthread* k) noexcept;
// The first registered poller that can_block(), or nullptr.
Poller* blocking_poller(Runtime* rt) noexcept;

extern std::atomic<Runtime*> g_runtime;

// The kthread of the calling OS thread, or nullptr. Never inlined and opaque to
// the optimizer, so a value read before a context switch (after which the
// uthread may run on another kthread) is never reused after it.
Kthread* this_kthread() noexcept;
extern thread_local Kthread* tls_kthread;
// Inline read for entry points that never look at the kthread again after a
// switch (the optimizer may reuse a TLS address across the switch).
inline Kthread* this_kthread_before_switch() noexcept { return tls_kthread; }
void set_this_kthread(Kthread* k) noexcept;

// Context switching (uthread.cc).
// Runs on the context switched to, once the previous one is saved (uthread.cc).
void finish_switch(bctx::transfer_t t) noexcept;
[[noreturn]] void exit_current(Kthread* k);
void free_uthread(Kthread* k, Uthread* th) noexcept;

// Scheduling (kthread.cc).
void kthread_main(Runtime* rt, Kthread* k);
void push_ready(Kthread* k, Uthread* th) noexcept;    // onto k's queue (k is the caller's kthread)
void inject(Runtime* rt, Uthread* th) noexcept;       // from a foreign thread
void ready_on(Uthread* th, unsigned kthread) noexcept;  // onto that kthread's queue, from anywhere
Uthread* pop_local(Kthread* k) noexcept;
void notify_work(Runtime* rt) noexcept;
void wake_all(Runtime* rt) noexcept;
void set_kthread_revoked(Runtime* rt, Kthread* k, bool revoked) noexcept;
// Core arbiter steps (cores.cc), each a no-op without an arbiter.
// find_work: true when k is not granted and waited for a grant (look again).
bool arbiter_wait_grant(Runtime* rt, Kthread* k) noexcept;
// find_work, idle: true when k (beyond the guarantee) gave its core back.
bool arbiter_release_idle(Runtime* rt, Kthread* k) noexcept;
// park(): sleeps through the arbiter (its eventfd) instead of the futex;
// false when there is no arbiter.
bool arbiter_park_idle(Runtime* rt, Kthread* k, uint32_t seq, uint64_t timeout_ns) noexcept;
// Between uthreads: publishes the ready signal, notices a revoked grant.
void arbiter_switch_point(Runtime* rt, Kthread* k) noexcept;
// Owner: the run queue got work (starts the ready clock).
inline void note_ready(Kthread* k) noexcept {
  if (k->ready_since_ns == 0 && k->track_ready.load(std::memory_order_relaxed)) k->ready_since_ns = now_ns();
}
// Parks the current uthread with `action` run once its context is saved.
void block_current(Kthread* k, PostSwitch action, SpinParkLock* lock);
void fire_due_timers(Kthread* k, Kthread* owner, uint64_t now) noexcept;

}  // namespace slip::rt::detail
