// Shared helpers for the runtime tests.
#pragma once

#include <atomic>
#include <functional>
#include <utility>
#include <vector>

#include "slip/runtime/runtime.h"
#include "slip/runtime/time.h"

namespace slip::rt::test {

// Runs fn as the main uthread of a fresh runtime with n kthreads. Pinning is
// off so tests running side by side under `meson test` share the cores fairly.
inline void run_with(unsigned n, std::function<void()> fn, unsigned spinning = 0) {
  Config cfg;
  cfg.kthreads = n;
  cfg.guaranteed_kthreads = 1;
  cfg.spinning_kthreads = spinning;
  cfg.pin_kthreads = false;
  run(cfg, std::move(fn));
}

// Spawns `tasks` uthreads that each compute (yielding) for 300 us and joins
// them: how many ran on kthread 0 and on kthread 1.
inline std::pair<int, int> ran_on_each(int tasks) {
  std::atomic<int> ran_on[2] = {0, 0};
  std::vector<JoinHandle> hs;
  for (int i = 0; i < tasks; i++)
    hs.push_back(spawn([&] {
      const uint64_t end = slip::now_ns() + 300'000;
      while (slip::now_ns() < end) yield();
      ran_on[kthread_index() == 1]++;
    }));
  for (auto& h : hs) h.join();
  return {ran_on[0].load(), ran_on[1].load()};
}

}  // namespace slip::rt::test
