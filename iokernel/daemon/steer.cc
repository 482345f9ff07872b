#include "iokernel/daemon/steer.h"

#include "iokernel/daemon/runtimes.h"
#include "net/proto/arp.h"
#include "net/proto/ether.h"
#include "net/proto/ipv4.h"

namespace slip::iok {
namespace {

namespace proto = net::proto;

FrameDest drop(DropReason why) noexcept { return FrameDest{FrameKind::kDrop, why, 0, 0}; }

// Only what steering needs: addresses, protocol and ports. Checksums, lengths
// and options are the runtime stack's to validate; fragments go by their
// addresses alone, so the pieces of a datagram stay together.
FrameDest classify_ipv4(const proto::EtherHdr& eth, const uint8_t* p, uint32_t len) noexcept {
  if (len < proto::kIpv4HdrLen) return drop(DropReason::kRunt);
  const auto* ip = reinterpret_cast<const proto::Ipv4Hdr*>(p);
  const uint32_t ihl = static_cast<uint32_t>(ip->hdr_len());
  if (ihl < proto::kIpv4HdrLen || ihl > len) return drop(DropReason::kRunt);
  const uint32_t src = ip->src().v, dst = ip->dst().v;
  const bool to_all = eth.dst.is_multicast() || ip->dst().is_broadcast() || ip->dst().is_multicast();
  const bool fragment = (ip->frag() & (proto::kIpFlagMf | proto::kIpFragOffMask)) != 0;
  uint32_t ports = 0;
  if ((ip->proto == proto::kIpProtoTcp || ip->proto == proto::kIpProtoUdp) && !fragment && ihl + 4 <= len)
    ports = proto::load_be32(p + ihl);
  return FrameDest{to_all ? FrameKind::kBroadcast : FrameKind::kUnicast, DropReason::kRunt, dst,
                   steer_hash(src, dst, ports, ip->proto)};
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
  const proto::Parsed<proto::EtherView> e = proto::parse_ether(f, len);
  if (!e) return drop(DropReason::kRunt);
  const auto payload_len = static_cast<uint32_t>(e.view.payload_len);
  switch (e.view.hdr->ethertype()) {
    case proto::kEtherTypeArp: {
      if (payload_len < proto::kArpLen) return drop(DropReason::kRunt);
      const auto* a = reinterpret_cast<const proto::ArpPacket*>(e.view.payload);
      return FrameDest{FrameKind::kArp, DropReason::kRunt, a->tpa().v, 0};
    }
    case proto::kEtherTypeIpv4:
      return classify_ipv4(*e.view.hdr, e.view.payload, payload_len);
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
