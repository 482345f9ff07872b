// Is a runtime still consuming its rx rings? The IOKernel is the rx ring's
// producer, so it knows how many descriptors it pushed; with the ring's fill
// level it knows how many the runtime consumed since the last look. A ring
// that holds frames and consumed none for the stall timeout means the
// runtime is wedged (or stopped in a debugger): it is detached so its frames
// stop piling up and its IP can be reused.
#pragma once

#include <cstdint>

namespace slip::iok {

// What the daemon remembers of one rx ring between looks.
struct RxWatch {
  uint32_t last_fill = 0;
  uint64_t last_pushed = 0;      // descriptors pushed onto the ring, all time
  uint64_t waiting_since_ns = 0;  // when frames last sat unconsumed with no progress; 0: not waiting
};

enum class RxVerdict { kIdle, kProgress, kWaiting, kStalled };

// One look at a ring: fill is RingView::size() now (an impossible level
// reads as 0), pushed is the running total pushed. kStalled once frames have
// waited with nothing consumed for at least timeout_ns.
RxVerdict observe_rx(RxWatch& w, uint32_t fill, uint64_t pushed, uint64_t now_ns, uint64_t timeout_ns) noexcept;

}  // namespace slip::iok
