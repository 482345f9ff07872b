// Shared helpers for the runtime tests.
#pragma once

#include <functional>

#include "slip/runtime/runtime.h"

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

}  // namespace slip::rt::test
