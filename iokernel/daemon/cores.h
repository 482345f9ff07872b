// Core allocation, Shenango style. Every interval (--core-interval-us) the
// CoreAllocator reads each runtime's congestion signals from its region (the
// age of the oldest frame waiting in its rx rings and of its oldest ready
// uthread), notes which kthreads parked, asks a CorePolicy for grants and
// revocations, and applies them: grant flags in the region and a write to
// the kthread's eventfd to wake it. Policies see plain RuntimeViews, so they
// are unit-tested without regions; docs/iokernel.md, "Core allocation".
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace slip::iok {

class RuntimeTable;
struct RuntimeEntry;

// One runtime as a policy sees it.
struct RuntimeView {
  bool best_effort = false;
  uint32_t guaranteed = 0;     // kthreads always granted
  uint32_t max = 0;            // never more cores than this
  uint32_t extra_granted = 0;  // kthreads beyond the guarantee holding a grant
  uint32_t extra_idle = 0;     // kthreads beyond the guarantee that could be granted
  uint32_t active = 0;         // cores in use: unparked guaranteed kthreads plus extra_granted
  uint64_t delay_ns = 0;       // oldest waiting frame or ready uthread, whichever is older
  uint64_t threshold_ns = 0;   // delay that asks for another core
  bool congested() const noexcept { return delay_ns > threshold_ns; }
  uint32_t granted() const noexcept { return guaranteed + extra_granted; }
};

// A policy's answer: per view, kthreads to grant (> 0) or revoke (< 0).
struct Grants {
  std::vector<int> delta;
  void reset(size_t n) { delta.assign(n, 0); }  // keeps its capacity: no allocation per pass
};

class CorePolicy {
 public:
  virtual ~CorePolicy() = default;
  virtual const char* name() const noexcept = 0;
  // capacity: cores the daemon hands out in all. out is reset to rts.size().
  virtual void decide(const std::vector<RuntimeView>& rts, uint32_t capacity, Grants& out) noexcept = 0;
};

// Shenango's policy on queueing delay. Each pass, every congested runtime
// (latency-critical first, then the longest delay) gets one more kthread if
// it is below its max and has one to wake: from a free core, else taken from
// a best-effort runtime (a latency-critical one is never robbed; a
// best-effort one only robs another that is not congested). When unparked
// guaranteed kthreads push the cores in use over capacity, best-effort
// runtimes give back first. Idle kthreads give their cores back themselves.
class DelayPolicy final : public CorePolicy {
 public:
  const char* name() const noexcept override { return "delay"; }
  void decide(const std::vector<RuntimeView>& rts, uint32_t capacity, Grants& out) noexcept override;

 private:
  int victim(const std::vector<RuntimeView>& rts, const Grants& g, size_t for_rt) const noexcept;
  std::vector<uint32_t> order_;
};

// Reads the regions, runs the policy, applies its answer. Loop thread only.
// With CPUs to pin to (iokerneld --cpus), each grant also names a CPU in the
// kthread's grant_cpu, and the kthread moves there: the one with the fewest
// running granted kthreads, the kthread's last CPU on a tie (its cache).
class CoreAllocator {
 public:
  CoreAllocator(std::unique_ptr<CorePolicy> policy, uint32_t capacity, std::vector<int> cpus = {});
  // One pass; returns how many grants, revocations and kicks it made.
  unsigned run(RuntimeTable& t, uint64_t now_ns) noexcept;
  uint32_t capacity() const noexcept { return capacity_; }
  uint32_t in_use() const noexcept { return in_use_; }
  uint64_t passes() const noexcept { return passes_; }
  const char* policy() const noexcept { return policy_->name(); }
  const std::vector<int>& cpus() const noexcept { return cpus_; }

 private:
  unsigned observe(RuntimeEntry& e, uint64_t now_ns, RuntimeView& v) noexcept;
  void grant_one(RuntimeEntry& e, uint64_t now_ns) noexcept;
  void count_cpu_load(const RuntimeTable& t) noexcept;
  int pick_cpu(int last) noexcept;
  void revoke_one(RuntimeEntry& e) noexcept;

  std::unique_ptr<CorePolicy> policy_;
  uint32_t capacity_;
  uint32_t in_use_ = 0;
  uint64_t passes_ = 0;
  std::vector<RuntimeView> views_;
  Grants grants_;
  std::vector<int> cpus_;            // empty: grants name no CPU
  std::vector<uint32_t> cpu_load_;   // per cpus_ entry: granted kthreads running there this pass
};

}  // namespace slip::iok
