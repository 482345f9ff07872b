#include "iokernel/daemon/liveness.h"

namespace slip::iok {

RxVerdict observe_rx(RxWatch& w, uint32_t fill, uint64_t pushed, uint64_t now_ns, uint64_t timeout_ns) noexcept {
  // What the ring held plus what arrived, less what it holds now, was consumed.
  const uint64_t offered = uint64_t{w.last_fill} + (pushed - w.last_pushed);
  const bool consumed = offered > fill;
  w.last_fill = fill;
  w.last_pushed = pushed;
  if (fill == 0) {
    w.waiting_since_ns = 0;
    return consumed ? RxVerdict::kProgress : RxVerdict::kIdle;
  }
  if (consumed || w.waiting_since_ns == 0) {
    w.waiting_since_ns = now_ns;  // the clock starts at the last sign of life
    return consumed ? RxVerdict::kProgress : RxVerdict::kWaiting;
  }
  return now_ns - w.waiting_since_ns >= timeout_ns ? RxVerdict::kStalled : RxVerdict::kWaiting;
}

}  // namespace slip::iok
