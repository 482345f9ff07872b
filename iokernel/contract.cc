// Laying out and validating the shared region and the registration message.
// The IOKernel trusts nothing a runtime wrote until validate_* said so.
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "slip/iok/ring.h"

namespace slip::iok {
namespace {

constexpr uint32_t kRings = kRingsPerKthread;
constexpr uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
constexpr bool pow2(uint32_t v) { return v && !(v & (v - 1)); }

uint64_t slots_area_off(uint32_t n_kthreads) { return sizeof(RegionHdr) + uint64_t{n_kthreads} * sizeof(KthreadShm); }

uint64_t bufs_area_off(uint32_t n_kthreads, uint32_t ring_slots) {
  return align_up(slots_area_off(n_kthreads) + uint64_t{n_kthreads} * kRings * ring_slots * sizeof(PktDesc), 4096);
}

// "contract v1 (the runtime's) differs from the IOKernel's v2: ...", in a
// per-thread buffer (the validators are noexcept and allocate nothing).
const char* version_error(uint16_t theirs) noexcept {
  thread_local char buf[128];
  std::snprintf(buf, sizeof buf,
                "contract major version v%u (the runtime's) differs from the IOKernel's v%u: rebuild the runtime",
                unsigned{theirs}, unsigned{kVersionMajor});
  return buf;
}

const char* check_geometry(uint32_t n_kthreads, uint32_t ring_slots, uint32_t buf_size) {
  if (n_kthreads == 0 || n_kthreads > kMaxKthreads) return "n_kthreads must be 1..64";
  if (!pow2(ring_slots) || ring_slots < 2 || ring_slots > 65536) return "ring slots must be a power of two, 2..65536";
  if (buf_size < 256 || buf_size > 65536 || buf_size % kCacheLine) return "buf_size must be 256..65536, a multiple of 64";
  return nullptr;
}

}  // namespace

uint64_t RegionLayout::slots_off(uint32_t kthread, uint32_t ring) const noexcept {
  return slots_area_off(n_kthreads) + (uint64_t{kthread} * kRings + ring) * ring_slots * sizeof(PktDesc);
}

uint64_t region_bytes(uint32_t n_kthreads, uint32_t ring_slots, uint32_t buf_size, uint32_t n_bufs) noexcept {
  return bufs_area_off(n_kthreads, ring_slots) + uint64_t{n_bufs} * buf_size;
}

bool init_region(void* base, uint64_t size, uint32_t n_kthreads, uint32_t ring_slots, uint32_t buf_size,
                 RegionLayout* out, const char** err) noexcept {
  if ((*err = check_geometry(n_kthreads, ring_slots, buf_size))) return false;
  const uint64_t bufs_off = bufs_area_off(n_kthreads, ring_slots);
  if (size < bufs_off + buf_size) {
    *err = "region too small for its rings and one buffer";
    return false;
  }
  RegionLayout l;
  l.n_kthreads = n_kthreads;
  l.ring_slots = ring_slots;
  l.buf_size = buf_size;
  l.n_bufs = static_cast<uint32_t>(std::min<uint64_t>((size - bufs_off) / buf_size, UINT32_MAX));
  l.region_size = size;
  l.kthreads_off = sizeof(RegionHdr);
  l.bufs_off = bufs_off;
  auto* p = static_cast<uint8_t*>(base);
  auto* h = reinterpret_cast<RegionHdr*>(p);
  std::memset(p, 0, bufs_off);
  h->magic = kMagic;
  h->version_major = kVersionMajor;
  h->version_minor = kVersionMinor;
  h->region_size = size;
  h->n_kthreads = n_kthreads;
  h->buf_size = buf_size;
  h->kthreads_off = l.kthreads_off;
  h->bufs_off = bufs_off;
  h->n_bufs = l.n_bufs;
  auto* ks = reinterpret_cast<KthreadShm*>(p + l.kthreads_off);
  for (uint32_t k = 0; k < n_kthreads; k++) {
    RingHdr* rings[kRings] = {&ks[k].rx, &ks[k].tx, &ks[k].completions, &ks[k].rx_return};
    for (uint32_t r = 0; r < kRings; r++) {
      rings[r]->slots = ring_slots;
      rings[r]->slots_off = l.slots_off(k, r);
    }
  }
  *out = l;
  return true;
}

const char* validate_region(const void* base, uint64_t mapped_size, RegionLayout* out) noexcept {
  if (mapped_size < sizeof(RegionHdr)) return "region smaller than its header";
  const auto* p = static_cast<const uint8_t*>(base);
  const auto* h = reinterpret_cast<const RegionHdr*>(p);
  if (h->magic != kMagic) return "bad magic: not a Slipstream region";
  if (h->version_major != kVersionMajor) return version_error(h->version_major);
  if (h->region_size != mapped_size) return "region_size differs from the size of the file passed";
  if (h->n_kthreads == 0 || h->n_kthreads > kMaxKthreads) return "n_kthreads must be 1..64";
  if (h->kthreads_off != sizeof(RegionHdr)) return "kthreads_off is not where the contract puts it";
  if (slots_area_off(h->n_kthreads) > mapped_size) return "kthread table runs past the region";
  const auto* ks = reinterpret_cast<const KthreadShm*>(p + h->kthreads_off);
  const uint32_t slots = ks[0].rx.slots;
  if (const char* e = check_geometry(h->n_kthreads, slots, h->buf_size)) return e;
  RegionLayout l;
  l.n_kthreads = h->n_kthreads;
  l.ring_slots = slots;
  l.buf_size = h->buf_size;
  l.n_bufs = h->n_bufs;
  l.region_size = mapped_size;
  l.kthreads_off = h->kthreads_off;
  l.bufs_off = bufs_area_off(h->n_kthreads, slots);
  if (h->bufs_off != l.bufs_off) return "bufs_off is not where the contract puts it";
  if (l.n_bufs == 0 || l.bufs_off + uint64_t{l.n_bufs} * l.buf_size > mapped_size)
    return "buffer area is empty or runs past the region";
  for (uint32_t k = 0; k < l.n_kthreads; k++) {
    const RingHdr* rings[kRings] = {&ks[k].rx, &ks[k].tx, &ks[k].completions, &ks[k].rx_return};
    for (uint32_t r = 0; r < kRings; r++)
      if (rings[r]->slots != slots || rings[r]->slots_off != l.slots_off(k, r))
        return "a ring's geometry differs from the contract's layout";
  }
  *out = l;
  return nullptr;
}

const char* validate_register(const void* msg, size_t len) noexcept {
  if (len != sizeof(RegisterMsg)) return "registration has the wrong size";
  RegisterMsg m;
  std::memcpy(&m, msg, sizeof m);  // the socket buffer need not be aligned
  if (m.magic != kMagic) return "bad magic: not a Slipstream runtime";
  if (m.version_major != kVersionMajor) return version_error(m.version_major);
  if (m.n_kthreads == 0 || m.n_kthreads > kMaxKthreads) return "n_kthreads must be 1..64";
  if (m.max_cores == 0 || m.max_cores > m.n_kthreads) return "max_cores must be 1..n_kthreads";
  if (m.guaranteed_cores > m.max_cores) return "guaranteed_cores exceeds max_cores";
  if (m.klass > static_cast<uint8_t>(Class::kBestEffort)) return "unknown class";
  const uint8_t first = static_cast<uint8_t>(m.ip >> 24);
  if (m.ip == 0 || m.ip == UINT32_MAX || (first >= 224 && first < 240)) return "ip must be a unicast address";
  if (m.mac[0] & 1) return "mac must be unicast";
  if (m.mac[0] == 0 && m.mac[1] == 0 && m.mac[2] == 0 && m.mac[3] == 0 && m.mac[4] == 0 && m.mac[5] == 0)
    return "mac is zero";
  if (m.delay_threshold_us == 0 || m.delay_threshold_us > 1'000'000) return "delay_threshold_us must be 1..1000000";
  if (m.region_size < sizeof(RegionHdr)) return "region_size smaller than the region header";
  return nullptr;
}

}  // namespace slip::iok
