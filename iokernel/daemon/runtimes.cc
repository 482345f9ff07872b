#include "iokernel/daemon/runtimes.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace slip::iok {

RingView RuntimeEntry::ring(uint32_t k, Ring r) const noexcept {
  KthreadShm& ks = kthread(k);
  RingHdr* hdr = r == Ring::kRx            ? &ks.rx
                 : r == Ring::kTx          ? &ks.tx
                 : r == Ring::kCompletions ? &ks.completions
                                           : &ks.rx_return;
  return RingView(attached.region, hdr, attached.layout.ring_slots,
                  attached.layout.slots_off(k, static_cast<uint32_t>(r)));
}

RuntimeEntry& RuntimeTable::add(Attached&& a, Fd conn, const PeerCred& cred, uint64_t now_ns) {
  auto e = std::make_unique<RuntimeEntry>();
  e->id = next_id_++;
  e->attached = std::exchange(a, Attached{});  // the entry owns the region and the eventfds now
  e->conn = std::move(conn);
  e->cred = cred;
  e->attached_ns = now_ns;
  e->rx_pushed.assign(e->attached.layout.n_kthreads, 0);
  e->rx_watch.assign(e->attached.layout.n_kthreads, RxWatch{});
  e->cores.assign(e->attached.layout.n_kthreads, CoreSlot{});
  entries_.push_back(std::move(e));
  generation_++;
  return *entries_.back();
}

RuntimeEntry* RuntimeTable::find(uint64_t id) noexcept {
  for (auto& e : entries_)
    if (e->id == id) return e.get();
  return nullptr;
}

bool RuntimeTable::remove(uint64_t id) noexcept {
  auto it = std::find_if(entries_.begin(), entries_.end(), [id](const auto& e) { return e->id == id; });
  if (it == entries_.end()) return false;
  entries_.erase(it);
  generation_++;
  return true;
}

std::vector<uint32_t> RuntimeTable::ips() const {
  std::vector<uint32_t> out;
  for (const auto& e : entries_) out.push_back(e->attached.msg.ip);
  return out;
}

std::vector<RuntimeTable::Stall> RuntimeTable::check_stalls(uint64_t now_ns, uint64_t timeout_ns) {
  std::vector<Stall> out;
  for (auto& e : entries_)
    for (uint32_t k = 0; k < e->attached.layout.n_kthreads; k++) {
      const uint32_t fill = e->ring(k, Ring::kRx).size();
      if (observe_rx(e->rx_watch[k], fill, e->rx_pushed[k], now_ns, timeout_ns) == RxVerdict::kStalled) {
        out.push_back({e->id, k, fill});
        break;
      }
    }
  return out;
}

std::string ip_str(uint32_t ip) {
  return fmt::format("{}.{}.{}.{}", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
}

std::string mac_str(const uint8_t (&m)[6]) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5]);
}

}  // namespace slip::iok
