// SharedNic as the runtime's core arbiter: the IOKernel writes each kthread's
// grant into the region and wakes it through its eventfd; the kthread
// publishes when it parks (bumping parks first, so the daemon can tell a
// fresh park from a wake still in flight) and its run queue's congestion.
// Protocol: docs/iokernel.md, "Core allocation".
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "iokernel/client/shared_nic_impl.h"
#include "slip/runtime/runtime.h"
#include "slip/runtime/spin_park_lock.h"
#include "slip/runtime/time.h"

namespace slip::iok {

// First rx_burst on a kthread: from here on the daemon's grants decide which
// kthreads run. Outside a runtime (tests driving the Nic by hand) nothing
// changes.
void SharedNic::install_arbiter() noexcept {
  if (rt::kthread_index() < 0 || rt::core_arbiter() != nullptr || arbiter_.exchange(true)) return;
  for (uint32_t k = 0; k < n_rings_; k++)
    rings_[k].shm->state.store(static_cast<uint32_t>(KthreadState::kActive), std::memory_order_release);
  try {
    rt::set_core_arbiter(this);
  } catch (...) {
    arbiter_.store(false);  // the runtime ended under us
  }
}

bool SharedNic::granted(unsigned k) const noexcept {
  return k < n_rings_ && rings_[k].shm->grant.load(std::memory_order_acquire) == 1;
}

uint32_t SharedNic::grant_seq(unsigned k) const noexcept {
  return k < n_rings_ ? rings_[k].shm->grant_seq.load(std::memory_order_acquire) : 0;
}

void SharedNic::park(unsigned k, const std::atomic<uint32_t>& wake, uint32_t seen, uint32_t grant_seen,
                     uint64_t timeout_ns, bool spin) noexcept {
  if (k >= n_rings_) {  // a kthread the daemon does not know: nothing will grant it
    wait_wake(k, wake, seen, 0, timeout_ns, false);
    return;
  }
  KthreadShm& s = *rings_[k].shm;
  s.parks.fetch_add(1, std::memory_order_seq_cst);
  s.state.store(static_cast<uint32_t>(KthreadState::kParked), std::memory_order_seq_cst);
  wait_wake(k, wake, seen, grant_seen, timeout_ns, spin);
  s.state.store(static_cast<uint32_t>(KthreadState::kActive), std::memory_order_seq_cst);
  follow_grant_cpu(k);
}

// Called by kthread k itself (after a park, and on each rx burst it polls):
// moves it to the CPU its grant names (iokerneld --cpus), or back to the
// process's CPUs when the grant names none. One load when nothing changed.
void SharedNic::follow_grant_cpu(unsigned k) noexcept {
  Rings& r = rings_[k];
  const uint32_t want = r.shm->grant_cpu.load(std::memory_order_acquire);
  if (want == r.cpu_applied || want > CPU_SETSIZE || pin_failed_.load(std::memory_order_relaxed)) return;
  cpu_set_t set = home_cpus_;
  if (want != 0) {
    CPU_ZERO(&set);
    CPU_SET(want - 1, &set);
  }
  if (CPU_COUNT(&set) == 0 || sched_setaffinity(0, sizeof set, &set) != 0) {
    if (!pin_failed_.exchange(true))  // once: a cpuset that excludes the daemon's CPUs, say
      std::fprintf(stderr, "slip: cannot move kthread %u to CPU %u as iokerneld's grant asks (%s); kthreads stay "
                   "where they are\n", k, want - 1, std::strerror(errno));
    return;
  }
  r.cpu_applied = want;
}

// Until the grant sequence moves past grant_seq, wake moves past seen, the
// eventfd is written, or timeout_ns passes. Spinning polls the first two.
void SharedNic::wait_wake(unsigned k, const std::atomic<uint32_t>& wake, uint32_t seen, uint32_t grant_seq,
                          uint64_t timeout_ns, bool spin) noexcept {
  const uint64_t start = now_ns();
  auto moved = [&] {
    return wake.load(std::memory_order_acquire) != seen ||
           (k < n_rings_ && rings_[k].shm->grant_seq.load(std::memory_order_acquire) != grant_seq);
  };
  if (spin) {  // on a shared CPU, GiveWay lets the other thread run (not sched_yield: see GiveWay)
    rt::GiveWay give_way;
    while (!moved() && now_ns() - start < timeout_ns) {
      for (int i = 0; i < 64; i++) __builtin_ia32_pause();
      give_way.idle();
    }
    return;
  }
  if (k >= efds_.size() || moved()) return;
  pollfd p{efds_[k], POLLIN, 0};
  timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000), static_cast<long>(timeout_ns % 1'000'000'000)};
  if (ppoll(&p, 1, timeout_ns == UINT64_MAX ? nullptr : &ts, nullptr) > 0) {
    eventfd_t v;
    (void)eventfd_read(efds_[k], &v);  // non-blocking: resets the count
  }
}

void SharedNic::unpark(unsigned k) noexcept {
  if (k < efds_.size()) (void)eventfd_write(efds_[k], 1);
}

void SharedNic::report_ready(unsigned k, uint64_t since_ns) noexcept {
  if (k < n_rings_) rings_[k].shm->oldest_ready_ns.store(since_ns, std::memory_order_release);
}

}  // namespace slip::iok
