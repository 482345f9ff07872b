// The tx half of DataPath: runtimes' tx rings to the port or, for an address
// on this host, straight onto another runtime's rx ring.
#include <algorithm>

#include "iokernel/daemon/datapath.h"
#include "iokernel/daemon/runtimes.h"

namespace slip::iok {
namespace {

// Where a tx descriptor's frame lies in the region, or nullptr when any of
// it falls outside one of the runtime's own buffers.
const uint8_t* tx_frame(const RuntimeEntry& e, const PktDesc& d) noexcept {
  const RegionLayout& l = e.attached.layout;
  const uint64_t end = l.bufs_off + uint64_t{l.n_bufs} * l.buf_size;
  if (d.buf_off < l.bufs_off || d.buf_off >= end || (d.buf_off - l.bufs_off) % l.buf_size != 0) return nullptr;
  if (uint64_t{d.data_off} + d.len > l.buf_size || d.len == 0) return nullptr;
  return e.attached.region + d.buf_off + d.data_off;
}

}  // namespace

// Takes at most as many frames as the completion ring has room for, so every
// frame taken is completed in the same turn.
unsigned DataPath::drain_tx(int route) noexcept {
  RuntimeEntry& e = *routes_[static_cast<size_t>(route)].rt;
  unsigned total = 0;
  for (uint32_t k = 0; k < e.attached.layout.n_kthreads; k++) {
    RingView comp = e.ring(k, Ring::kCompletions);
    const uint32_t room = comp.capacity() - comp.size();
    PktDesc d[net::kBurst];
    const uint32_t n = e.ring(k, Ring::kTx).pop(d, std::min<uint32_t>(room, net::kBurst));
    if (n == 0) continue;
    for (uint32_t i = 0; i < n; i++) {
      const uint8_t* f = tx_frame(e, d[i]);
      if (f) tx_one(route, f, d[i].len);
      else drops_.add(DropReason::kTxBadDesc);
    }
    comp.push(d, n);  // the cookies go back unchanged
    e.counters.tx_frames += n;
    total += n;
  }
  return total;
}

// One frame from runtime `route`: to another runtime on this host when its
// destination is one (ARP by target address), else to the wire; broadcasts
// (and ARP for addresses not here) to both, never back to the sender.
void DataPath::tx_one(int route, const uint8_t* f, uint32_t len) noexcept {
  const FrameDest d = classify_frame(f, len);
  if (d.kind == FrameKind::kDrop && d.why == DropReason::kRunt) {
    drops_.add(DropReason::kRunt);
    return;
  }
  const int to = d.kind == FrameKind::kUnicast || d.kind == FrameKind::kArp ? routes_.find(d.ip) : -1;
  if (to >= 0 && to != route) {
    rte_mbuf* m = copy_to(rx_mp_, f, len);
    if (!m) {
      drops_.add(DropReason::kNoBuffer);
      return;
    }
    local_frames_++;
    routes_[static_cast<size_t>(route)].rt->counters.tx_local++;
    stage(m, to, routes_.pick_kthread(to, d.hash), false);
    return;
  }
  if (d.kind == FrameKind::kArp || d.kind == FrameKind::kBroadcast) to_all(nullptr, f, len, route, false);
  if (n_wire_ == net::kBurst) send_wire();
  rte_mbuf* m = copy_to(tx_mp_, f, len);
  if (!m) drops_.add(DropReason::kNoBuffer);
  else wire_[n_wire_++] = m;
}

void DataPath::send_wire() noexcept {
  if (n_wire_ == 0) return;
  const uint16_t sent = rte_eth_tx_burst(port_id_, 0, wire_, n_wire_);
  if (sent < n_wire_) {
    drops_.add(DropReason::kTxPortFull, n_wire_ - sent);
    rte_pktmbuf_free_bulk(wire_ + sent, n_wire_ - sent);
  }
  n_wire_ = 0;
}

}  // namespace slip::iok
