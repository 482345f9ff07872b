// libFuzzer target for what a runtime hands the IOKernel: the registration
// message and the shared region's header and ring geometry. Every input must
// be refused with a reason or accepted, and an accepted region's four rings
// per kthread must stay inside it. Seeds: region_ok/register_ok (v2, sound),
// region_v1/register_v1 (the v1 layout, refused by version).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "slip/iok/ring.h"

using namespace slip::iok;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)validate_register(data, size);
  if (size < sizeof(RegisterMsg)) return 0;
  (void)validate_register(data, sizeof(RegisterMsg));
  // The input as the start of a region; the rest of the mapping is zeroes.
  // Aligned copy: a real region is page-aligned.
  const uint64_t mapped = std::max<uint64_t>(size, 1 << 16);
  std::vector<uint64_t> mem((mapped + 7) / 8);
  std::memcpy(mem.data(), data, size);
  RegionLayout l;
  if (validate_region(mem.data(), mapped, &l) != nullptr) return 0;
  auto* base = reinterpret_cast<uint8_t*>(mem.data());
  auto* ks = reinterpret_cast<KthreadShm*>(base + l.kthreads_off);
  for (uint32_t k = 0; k < l.n_kthreads; k++) {
    RingHdr* rings[kRingsPerKthread] = {&ks[k].rx, &ks[k].tx, &ks[k].completions, &ks[k].rx_return};
    for (uint32_t r = 0; r < kRingsPerKthread; r++) {
      RingView v(base, rings[r], l.ring_slots, l.slots_off(k, r));
      PktDesc d[4];
      (void)v.pop(d, 4);  // ASan checks every slot read lies in the region
      (void)v.push(d, 4);
    }
  }
  return 0;
}
