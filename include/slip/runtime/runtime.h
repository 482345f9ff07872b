// The Slipstream runtime: user-level threads (uthreads) on per-core kthreads.
//
//   slip::rt::Config cfg;            // or config_from_args_or_exit(argc, argv)
//   cfg.kthreads = 2;
//   slip::rt::run(cfg, [] {
//     auto h = slip::rt::spawn([] { ... });
//     h.join();
//   });
//
// Blocking calls park the uthread, never the kthread. Functions that may park
// throw NotInUthread when called from outside a uthread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "slip/runtime/config.h"
#include "slip/runtime/time.h"

namespace slip::rt {

// Raised when a uthread-only call (yield, sleep, lock, join, ...) is made from a
// thread that is not running a uthread, or a runtime-only call with no runtime.
class NotInUthread : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

namespace detail {
struct Uthread;
// Takes a pooled stack and carves a payload of `size` bytes at its top; the
// uthread runs entry(payload) once started. Throws std::bad_alloc when no stack can be had.
Uthread* uthread_create(void (*entry)(void*), size_t size, size_t align, void** payload);
// Makes a created uthread runnable on the current kthread (or the runtime's inject queue).
void uthread_start(Uthread* th, bool detached);
// The same on kthread `kthread` (modulo the kthread count).
void uthread_start_on(Uthread* th, unsigned kthread, bool detached);
void uthread_join(Uthread* th);
void uthread_detach(Uthread* th);
[[noreturn]] void throw_not_in_uthread(const char* what);
}  // namespace detail

// Handle to a spawned uthread. join() parks until it finishes. Like std::jthread,
// the destructor joins a handle that was neither joined nor detached.
class JoinHandle {
 public:
  JoinHandle() = default;
  explicit JoinHandle(detail::Uthread* th) noexcept : th_(th) {}
  JoinHandle(JoinHandle&& o) noexcept : th_(std::exchange(o.th_, nullptr)) {}
  JoinHandle& operator=(JoinHandle&& o) noexcept {
    if (this != &o) {
      if (th_) detail::uthread_join(th_);
      th_ = std::exchange(o.th_, nullptr);
    }
    return *this;
  }
  ~JoinHandle() {
    if (th_) detail::uthread_join(th_);
  }
  bool joinable() const noexcept { return th_ != nullptr; }
  void join() {
    if (th_) detail::uthread_join(std::exchange(th_, nullptr));
  }
  void detach() {
    if (th_) detail::uthread_detach(std::exchange(th_, nullptr));
  }

 private:
  detail::Uthread* th_ = nullptr;
};

namespace detail {
template <class F>
Uthread* make_uthread(F&& f) {
  using Fn = std::decay_t<F>;
  void* mem = nullptr;
  Uthread* th = uthread_create(
      [](void* p) {
        Fn* fn = static_cast<Fn*>(p);
        (*fn)();
        fn->~Fn();
      },
      sizeof(Fn), alignof(Fn), &mem);
  ::new (mem) Fn(std::forward<F>(f));
  return th;
}
}  // namespace detail

// Starts fn on a new uthread; the callable lives on the uthread's own stack, so
// spawning allocates nothing beyond a pooled stack. Callable from any runtime
// context (uthread, timer callback) and from foreign threads while run() is active.
template <class F>
[[nodiscard]] JoinHandle spawn(F&& fn) {
  detail::Uthread* th = detail::make_uthread(std::forward<F>(fn));
  detail::uthread_start(th, false);
  return JoinHandle(th);
}

// Starts fn on a new uthread that nobody joins; its stack returns to the pool when it ends.
template <class F>
void spawn_detached(F&& fn) {
  detail::uthread_start(detail::make_uthread(std::forward<F>(fn)), true);
}

// Starts fn on a new uthread queued on kthread `kthread` (modulo the kthread
// count), for work that belongs there: serving a connection whose receive
// path runs on that kthread (TcpInfo::kthread) keeps its wake-ups and its
// calls on one core, as Seastar's submit_to does for a shard. A kthread with
// nothing to do may still steal it, as any ready uthread; a revoked
// kthread's work goes to a running one.
template <class F>
[[nodiscard]] JoinHandle spawn_on(unsigned kthread, F&& fn) {
  detail::Uthread* th = detail::make_uthread(std::forward<F>(fn));
  detail::uthread_start_on(th, kthread, false);
  return JoinHandle(th);
}
template <class F>
void spawn_detached_on(unsigned kthread, F&& fn) {
  detail::uthread_start_on(detail::make_uthread(std::forward<F>(fn)), kthread, true);
}

// Lets other ready uthreads on this kthread run; returns at once when there are none.
void yield();
// Parks the calling uthread until now_ns() >= deadline_ns.
void sleep_until(uint64_t deadline_ns);
inline void sleep_for(std::chrono::nanoseconds d) {
  sleep_until(now_ns() + static_cast<uint64_t>(d.count() < 0 ? 0 : d.count()));
}

// True on a thread that is running a uthread right now.
bool in_uthread() noexcept;
// Index of the kthread running the caller; -1 outside the runtime.
int kthread_index() noexcept;
// Number of kthreads of the running runtime (0 when none runs).
unsigned kthread_count() noexcept;

// Core allocation, as an IOKernel drives it: grants kthreads [0, n) and
// revokes the rest. n is clamped to [guaranteed_kthreads, kthreads], and to
// the kthreads a CPU quota allows (slip/runtime/cpu_limit.h). A revoked
// kthread finishes the uthread it is running up to its next yield or block,
// hands its queue to granted kthreads and parks until granted again.
void set_active_kthreads(unsigned n);
unsigned active_kthreads() noexcept;

// Runs main on a uthread of a new runtime with cfg.kthreads kthreads and returns
// when main returns. Uthreads still alive then are abandoned without unwinding,
// as in Go. Throws ConfigError for a bad config and std::logic_error if a runtime
// is already running in this process.
void run(const Config& cfg, std::function<void()> main);

}  // namespace slip::rt
