// Shared pieces of the runtime benchmark (slip-bench-runtime): the cases, the
// systems they run on, and the per-system entry points in runtime_cases.cc.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "slip/runtime/config.h"

namespace slip::bench {

enum Case : unsigned { kSpawnJoin, kYieldPingpong, kCondvarPingpong, kMutexHandoff, kSleepWake, kNumCases };
enum System : unsigned { kSlip, kFiber, kPthread, kNumSystems };

inline constexpr std::array<const char*, kNumCases> kCaseNames = {
    "spawn_join", "yield_pingpong", "condvar_pingpong", "mutex_handoff", "sleep_wake"};
inline constexpr std::array<const char*, kNumSystems> kSystemNames = {"slip", "fiber", "pthread"};

// What one op of each case is; the same text goes into the JSON.
inline constexpr std::array<const char*, kNumCases> kCaseDefinitions = {
    "spawn of an empty task followed at once by its join",
    "round trip of a turn token between two threads that wait for it by calling yield() "
    "(2 yields per round trip when only those two are runnable on one CPU)",
    "round trip A->B->A of a turn token guarded by one mutex, each side waiting on its own condvar",
    "one critical section {lock; counter++; yield(); unlock} while a second thread runs the same "
    "loop; the yield inside makes the other thread contend",
    "one sleep_for(1us) call, measured as wall time from call to return",
};

// Fiber stacks match the runtime's default uthread stack size.
inline constexpr size_t kFiberStackSize = 64 * 1024;

using Iters = std::array<uint64_t, kNumCases>;  // iterations per case, for one system
using CaseNs = std::array<double, kNumCases>;   // ns per op, per case

// Each runs every case once (after a short warm-up) and returns ns per op.
// run_slip_cases runs them all inside one slip::rt::run(cfg, ...).
CaseNs run_slip_cases(const Iters& n, const rt::Config& cfg);
// Boost.Fiber with its default round_robin scheduler on the calling thread.
CaseNs run_fiber_cases(const Iters& n);
// std::thread; yield_pingpong pins both threads to `yield_cpu`.
CaseNs run_pthread_cases(const Iters& n, int yield_cpu);

}  // namespace slip::bench
