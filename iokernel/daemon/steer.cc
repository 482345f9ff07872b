#include "iokernel/daemon/steer.h"

#include "iokernel/daemon/runtimes.h"

namespace slip::iok {
namespace {

constexpr uint16_t kEtherIpv4 = 0x0800, kEtherArp = 0x0806;
constexpr uint32_t kEthHdr = 14, kArpLen = 28, kIpv4Min = 20;
constexpr uint8_t kProtoTcp = 6, kProtoUdp = 17;

inline uint16_t be16(const uint8_t* p) noexcept { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t be32(const uint8_t* p) noexcept {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

FrameDest drop(DropReason why) noexcept { return FrameDest{FrameKind::kDrop, why, 0, 0}; }

FrameDest classify_ipv4(const uint8_t* f, uint32_t len) noexcept {
  const uint8_t* ip = f + kEthHdr;
  const uint32_t ihl = (ip[0] & 0x0fu) * 4;
  if (ihl < kIpv4Min || kEthHdr + ihl > len) return drop(DropReason::kRunt);
  const uint32_t src = be32(ip + 12), dst = be32(ip + 16);
  const bool to_all = (f[0] & 1) != 0 || dst == 0xffffffffu || (dst >> 28) == 0xe;  // bcast/mcast MAC or IP
  const uint8_t proto = ip[9];
  const bool fragment = (be16(ip + 6) & 0x3fff) != 0;  // MF or an offset
  uint32_t ports = 0;
  if ((proto == kProtoTcp || proto == kProtoUdp) && !fragment && kEthHdr + ihl + 4 <= len)
    ports = be32(ip + ihl);
  return FrameDest{to_all ? FrameKind::kBroadcast : FrameKind::kUnicast, DropReason::kRunt, dst,
                   steer_hash(src, dst, ports, proto)};
}

}  // namespace

const char* drop_name(DropReason r) noexcept {
  switch (r) {
    case DropReason::kRunt: return "runt";
    case DropReason::kNotIpv4: return "not_ipv4";
    case DropReason::kChained: return "chained";
    case DropReason::kNoRuntime: return "no_runtime";
    case DropReason::kRingFull: return "ring_full";
    case DropReason::kOverCap: return "over_cap";
    case DropReason::kNoBuffer: return "no_buffer";
    case DropReason::kBadReturn: return "bad_return";
    case DropReason::kTxBadDesc: return "tx_bad_desc";
    case DropReason::kTxPortFull: return "tx_port_full";
    case DropReason::kCount: break;
  }
  return "unknown";
}

FrameDest classify_frame(const uint8_t* f, uint32_t len) noexcept {
  if (len < kEthHdr) return drop(DropReason::kRunt);
  switch (be16(f + 12)) {
    case kEtherArp:
      if (len < kEthHdr + kArpLen) return drop(DropReason::kRunt);
      return FrameDest{FrameKind::kArp, DropReason::kRunt, be32(f + kEthHdr + 24), 0};
    case kEtherIpv4:
      if (len < kEthHdr + kIpv4Min) return drop(DropReason::kRunt);
      return classify_ipv4(f, len);
    default:
      return drop(DropReason::kNotIpv4);
  }
}

void RouteTable::rebuild(const RuntimeTable& t) {
  routes_.clear();
  for (const auto& e : t.entries()) {
    Route r;
    r.ip = e->attached.msg.ip;
    r.rt = e.get();
    routes_.push_back(r);
  }
  generation_ = t.generation();
  refresh_active();
}

bool RouteTable::stale(const RuntimeTable& t) const noexcept { return generation_ != t.generation(); }

void RouteTable::refresh_active() noexcept {
  for (Route& r : routes_) {
    const uint32_t n = r.rt->attached.layout.n_kthreads;
    r.n_active = 0;
    for (uint32_t k = 0; k < n; k++)
      if (r.rt->kthread(k).state.load(std::memory_order_relaxed) == static_cast<uint32_t>(KthreadState::kActive))
        r.active[r.n_active++] = static_cast<uint8_t>(k);
    if (r.n_active == 0) {
      for (uint32_t k = 0; k < n; k++) r.active[k] = static_cast<uint8_t>(k);
      r.n_active = n;
    }
  }
}

int RouteTable::find(uint32_t ip) const noexcept {
  for (size_t i = 0; i < routes_.size(); i++)
    if (routes_[i].ip == ip) return static_cast<int>(i);
  return -1;
}

uint32_t RouteTable::pick_kthread(int route, uint32_t hash) const noexcept {
  const Route& r = routes_[static_cast<size_t>(route)];
  return r.active[steer_pick(hash, r.n_active)];
}

RxTarget steer_rx(const RouteTable& routes, const uint8_t* frame, uint32_t len, DropCounters& drops) noexcept {
  const FrameDest d = classify_frame(frame, len);
  switch (d.kind) {
    case FrameKind::kDrop: drops.add(d.why); return {};
    case FrameKind::kArp:
    case FrameKind::kBroadcast: return RxTarget{RxTarget::kToAll, 0};
    case FrameKind::kUnicast: break;
  }
  const int r = routes.find(d.ip);
  if (r < 0) {
    drops.add(DropReason::kNoRuntime);
    return {};
  }
  return RxTarget{r, routes.pick_kthread(r, d.hash)};
}

void RxOwners::init(uint64_t pool_size, uint32_t buf_size, uint32_t cap_per_runtime) {
  buf_size_ = buf_size ? buf_size : 1;
  slots_.assign(buf_size ? pool_size / buf_size + 1 : 0, Slot{});
  cap_ = cap_per_runtime;
}

bool RxOwners::take(RuntimeEntry& rt, uint64_t buf_off) noexcept {
  const uint64_t i = buf_off / buf_size_;
  if (i >= slots_.size() || slots_[i].owner != 0 || rt.rx_held >= cap_) return false;
  slots_[i] = Slot{buf_off, rt.id};
  rt.rx_held++;
  return true;
}

bool RxOwners::give_back(RuntimeEntry& rt, uint64_t buf_off) noexcept {
  const uint64_t i = buf_off / buf_size_;
  if (i >= slots_.size() || slots_[i].owner != rt.id || slots_[i].off != buf_off) return false;
  slots_[i].owner = 0;
  rt.rx_held--;
  return true;
}

void RxOwners::reset_held(RuntimeEntry& rt) noexcept { rt.rx_held = 0; }

}  // namespace slip::iok
