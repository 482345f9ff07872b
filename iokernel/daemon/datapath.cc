#include "iokernel/daemon/datapath.h"

#include <cstring>
#include <utility>

#include "iokernel/daemon/runtimes.h"
#include "iokernel/shm_pool.h"

namespace slip::iok {
namespace {

// A runtime may hold at most this share of the pool: one stuck runtime
// cannot starve the port and the others (docs, "Crash reclaim", 4).
constexpr uint32_t kCapShare = 4;

}  // namespace

DataPath::DataPath(ShmPktPool& rx_pool, uint16_t port_id, rte_mempool* tx_mp)
    : pool_(rx_pool), rx_mp_(rx_pool.mempool()), tx_mp_(tx_mp), port_id_(port_id) {
  owners_.init(rx_pool.size(), rx_pool.buf_size(), static_cast<uint32_t>(rx_pool.n_bufs() / kCapShare));
}

unsigned DataPath::poll(RuntimeTable& t, uint64_t now_ns) noexcept {
  now_ns_ = now_ns;
  if (routes_.stale(t)) routes_.rebuild(t);  // only after an attach or detach
  routes_.refresh_active();
  unsigned work = 0;
  for (size_t r = 0; r < routes_.size(); r++) work += drain_returns(*routes_[r].rt);
  rte_mbuf* bufs[net::kBurst];
  const uint16_t n = rte_eth_rx_burst(port_id_, 0, bufs, net::kBurst);
  if (n != 0) {
    rx_frames_ += n;
    receive(bufs, n);
    work += n;
  }
  for (size_t r = 0; r < routes_.size(); r++) work += drain_tx(static_cast<int>(r));
  flush();
  send_wire();
  return work;
}

void DataPath::receive(rte_mbuf** bufs, uint16_t n) noexcept {
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = bufs[i];
    if (m->nb_segs != 1) {
      drop(m, DropReason::kChained, true);
      continue;
    }
    const uint8_t* f = rte_pktmbuf_mtod(m, const uint8_t*);
    const RxTarget t = steer_rx(routes_, f, rte_pktmbuf_data_len(m), drops_);
    if (t.route >= 0) {
      stage(m, t.route, t.kthread, true);
    } else if (t.route == RxTarget::kToAll) {
      to_all(m, f, rte_pktmbuf_data_len(m), -1, true);
    } else {
      rx_dropped_++;  // counted by reason in steer_rx
      rte_pktmbuf_free(m);
    }
  }
}

// Every runtime but `exclude` gets the frame: the first one `first` (when
// given), the rest copies in the pool.
void DataPath::to_all(rte_mbuf* first, const uint8_t* frame, uint32_t len, int exclude, bool from_port) noexcept {
  for (size_t r = 0; r < routes_.size(); r++) {
    if (static_cast<int>(r) == exclude) continue;
    rte_mbuf* m = first ? std::exchange(first, nullptr) : copy_to(rx_mp_, frame, len);
    if (!m) {
      drops_.add(DropReason::kNoBuffer);
      routes_[r].rt->counters.rx_dropped++;
      continue;
    }
    stage(m, static_cast<int>(r), routes_.pick_kthread(static_cast<int>(r), 0), from_port);
  }
  if (first) drop(first, DropReason::kNoRuntime, from_port);
}

void DataPath::stage(rte_mbuf* m, int route, uint32_t kthread, bool from_port) noexcept {
  if (n_staged_ == kStage) flush();
  staged_[n_staged_++] = Staged{m, route, kthread, from_port};
}

// Pushes the staged frames, one burst per (runtime, kthread), each burst in
// arrival order so a flow's frames stay in order.
void DataPath::flush() noexcept {
  for (uint32_t i = 0; i < n_staged_; i++)
    if (staged_[i].route >= 0) push_batch(staged_[i].route, staged_[i].kthread, i);
  n_staged_ = 0;
}

void DataPath::push_batch(int route, uint32_t k, uint32_t first) noexcept {
  RuntimeEntry& e = *routes_[static_cast<size_t>(route)].rt;
  PktDesc d[kStage];
  rte_mbuf* ms[kStage];
  bool port[kStage];
  uint32_t n = 0;
  for (uint32_t i = first; i < n_staged_; i++) {
    Staged& s = staged_[i];
    if (s.route != route || s.kthread != k) continue;
    s.route = -1;
    PktDesc& pd = d[n];
    pool_.to_desc(s.m, pd);  // single segment of this pool: checked before staging
    if (!owners_.take(e, pd.buf_off)) {
      e.counters.rx_dropped++;
      drop(s.m, DropReason::kOverCap, s.from_port);
      continue;
    }
    pd.stamp_ns = now_ns_;
    pd.cookie = 0;
    ms[n] = s.m;
    port[n++] = s.from_port;
  }
  const uint32_t pushed = n ? e.ring(k, Ring::kRx).push(d, n) : 0;
  e.rx_pushed[k] += pushed;
  e.counters.rx_frames += pushed;
  for (uint32_t i = pushed; i < n; i++) {
    owners_.give_back(e, d[i].buf_off);
    e.counters.rx_dropped++;
    drop(ms[i], DropReason::kRingFull, port[i]);
  }
}

void DataPath::drop(rte_mbuf* m, DropReason why, bool from_port) noexcept {
  drops_.add(why);
  if (from_port) rx_dropped_++;
  rte_pktmbuf_free(m);
}

rte_mbuf* DataPath::copy_to(rte_mempool* mp, const uint8_t* frame, uint32_t len) noexcept {
  rte_mbuf* m = rte_pktmbuf_alloc(mp);
  if (!m) return nullptr;
  char* p = len <= rte_pktmbuf_tailroom(m) ? rte_pktmbuf_append(m, static_cast<uint16_t>(len)) : nullptr;
  if (!p) {
    rte_pktmbuf_free(m);
    return nullptr;
  }
  std::memcpy(p, frame, len);
  return m;
}

unsigned DataPath::drain_returns(RuntimeEntry& e) noexcept {
  unsigned total = 0;
  for (uint32_t k = 0; k < e.attached.layout.n_kthreads; k++) {
    PktDesc d[net::kBurst];
    const uint32_t n = e.ring(k, Ring::kRxReturn).pop(d, net::kBurst);
    rte_mbuf* ms[net::kBurst];
    unsigned nm = 0;
    for (uint32_t i = 0; i < n; i++) {
      rte_mbuf* m = owners_.give_back(e, d[i].buf_off) ? pool_.mbuf_of(d[i].buf_off) : nullptr;
      if (m) {
        ms[nm++] = m;
      } else {
        drops_.add(DropReason::kBadReturn);
        e.counters.bad_returns++;
      }
    }
    if (nm) rte_pktmbuf_free_bulk(ms, nm);
    e.counters.rx_returned += nm;
    total += n;
  }
  return total;
}

unsigned DataPath::detach(RuntimeEntry& e) noexcept {
  const unsigned n = owners_.reclaim(e, e.id, [this](uint64_t off) {
    if (rte_mbuf* m = pool_.mbuf_of(off)) rte_pktmbuf_free(m);
  });
  routes_ = RouteTable{};  // rebuilt (without e) on the next poll
  return n;
}

}  // namespace slip::iok
