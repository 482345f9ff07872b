// The ARP cache (neighbor.h): lock-free lookups over a table of atomics,
// changes under the table's lock.
#include "net/stack/neighbor.h"

#include <cstring>
#include <mutex>

#include "slip/common/mix.h"

namespace slip::net::stack {

NeighborTable::NeighborTable(const StackConfig& cfg, StackLock& lock)
    : timeout_ns_(cfg.arp_timeout_ns),
      retry_ns_(cfg.arp_retry_ns),
      max_retries_(cfg.arp_max_retries),
      lk_(lock),
      slots_(std::make_unique<Slot[]>(kSlots)),
      waiting_(std::make_unique<Waiting[]>(kSlots)) {
  for (size_t i = 0; i < kSlots; i++) waiting_[i].frames.reserve(kPending);
  waiting_slots_.reserve(kSlots);
  std::lock_guard g(lk_);
  for (const auto& [ip, mac] : cfg.static_arp) {
    const size_t i = find_or_add(ip.v);
    if (i == kSlots) break;  // more static entries than slots: the rest resolve by ARP
    slots_[i].word.store(pack(mac, kResolvedBit | kPermanentBit), std::memory_order_release);
  }
}

NeighborTable::~NeighborTable() {
  for (size_t i = 0; i < kSlots; i++)
    for (PacketBuf* b : waiting_[i].frames) BufPool::release(b);
}

// The MAC's six bytes as they lie in memory, in the word's low 48 bits.
uint64_t NeighborTable::pack(MacAddr m, uint64_t bits) noexcept {
  uint64_t w = 0;
  std::memcpy(&w, m.b.data(), 6);
  return (w & ((uint64_t{1} << 48) - 1)) | bits;
}

MacAddr NeighborTable::unpack(uint64_t w) noexcept {
  MacAddr m;
  std::memcpy(m.b.data(), &w, 6);
  return m;
}

// Linear probing from the address's hash; slots are never freed, so a probe
// ends at the first free one.
size_t NeighborTable::find(uint32_t ip) const noexcept {
  size_t i = splitmix64(ip) & (kSlots - 1);
  for (size_t n = 0; n < kSlots; n++, i = (i + 1) & (kSlots - 1)) {
    const uint32_t v = slots_[i].ip.load(std::memory_order_acquire);
    if (v == ip) return i;
    if (v == 0) return kSlots;
  }
  return kSlots;
}

size_t NeighborTable::find_or_add(uint32_t ip) noexcept {
  if (ip == 0) return kSlots;
  size_t i = splitmix64(ip) & (kSlots - 1);
  for (size_t n = 0; n < kSlots; n++, i = (i + 1) & (kSlots - 1)) {
    const uint32_t v = slots_[i].ip.load(std::memory_order_relaxed);
    if (v == ip) return i;
    if (v == 0) {
      slots_[i].word.store(0, std::memory_order_relaxed);
      slots_[i].ip.store(ip, std::memory_order_release);  // published with its fields
      return i;
    }
  }
  return kSlots;
}

bool NeighborTable::lookup(Ipv4Addr ip, uint64_t now, MacAddr* mac, bool* refresh) noexcept {
  *refresh = false;
  const size_t i = find(ip.v);
  if (i == kSlots) return false;
  Slot& s = slots_[i];
  const uint64_t w = s.word.load(std::memory_order_acquire);
  if (!(w & kResolvedBit)) return false;
  *mac = unpack(w);
  if (w & kPermanentBit) return true;
  const uint64_t exp = s.expires.load(std::memory_order_relaxed);
  if (now < exp) return true;
  if (now >= exp + stale_limit()) return false;  // it stopped answering: the slow path starts over
  uint64_t at = s.refresh_at.load(std::memory_order_relaxed);
  if (now >= at) *refresh = s.refresh_at.compare_exchange_strong(at, now + retry_ns_, std::memory_order_relaxed);
  return true;
}

NeighborTable::Queued NeighborTable::queue(Ipv4Addr ip, PacketBuf* b, uint64_t now, MacAddr* mac) noexcept {
  std::lock_guard g(lk_);
  const size_t i = find_or_add(ip.v);
  if (i == kSlots) {
    BufPool::release(b);
    return Queued::kFull;
  }
  Slot& s = slots_[i];
  Waiting& w = waiting_[i];
  const uint64_t word = s.word.load(std::memory_order_relaxed);
  if ((word & kResolvedBit) &&
      ((word & kPermanentBit) || now < s.expires.load(std::memory_order_relaxed) + stale_limit())) {
    *mac = unpack(word);  // learnt since the caller looked
    return Queued::kResolved;
  }
  s.word.store(word & ~kResolvedBit, std::memory_order_release);  // stale past its limit: resolve again
  const bool first = w.frames.empty() && w.retries == 0;
  if (w.frames.size() >= kPending) {
    BufPool::release(b);
    return Queued::kDropped;
  }
  if (w.frames.empty()) {
    waiting_slots_.push_back(static_cast<uint16_t>(i));
    n_waiting_.store(waiting_slots_.size(), std::memory_order_relaxed);
  }
  w.frames.push_back(b);
  if (first) {
    w.retries = 1;
    w.next_retry = now + retry_ns_;
  }
  return first ? Queued::kFirst : Queued::kQueued;
}

size_t NeighborTable::learn(Ipv4Addr ip, MacAddr mac, bool create, uint64_t now, Ready& out) noexcept {
  // The common case, an answer or a request from a neighbour we know at the
  // same address: refresh it without the lock (nothing waits on a resolved entry).
  // Neither is a sender we do not know and need not add (a broadcast request
  // for another host).
  const uint64_t want = pack(mac, kResolvedBit);
  size_t i = find(ip.v);
  if (i == kSlots && !create) return 0;
  if (i != kSlots && slots_[i].word.load(std::memory_order_acquire) == want) {
    slots_[i].expires.store(now + timeout_ns_, std::memory_order_relaxed);
    slots_[i].refresh_at.store(0, std::memory_order_relaxed);
    return 0;
  }
  std::lock_guard g(lk_);
  i = find_or_add(ip.v);
  if (i == kSlots) return 0;
  Slot& s = slots_[i];
  if (!(s.word.load(std::memory_order_relaxed) & kPermanentBit)) {
    s.expires.store(now + timeout_ns_, std::memory_order_relaxed);
    s.refresh_at.store(0, std::memory_order_relaxed);
    s.word.store(want, std::memory_order_release);
  }
  Waiting& w = waiting_[i];
  w.retries = 0;
  const size_t n = w.frames.size();
  for (size_t k = 0; k < n; k++) out[k] = w.frames[k];
  w.frames.clear();
  if (n) forget_waiting(i);
  return n;
}

void NeighborTable::forget_waiting(size_t slot) noexcept {
  std::erase(waiting_slots_, static_cast<uint16_t>(slot));
  n_waiting_.store(waiting_slots_.size(), std::memory_order_relaxed);
}

void NeighborTable::tick(uint64_t now, std::vector<Ipv4Addr>& retry, std::vector<PacketBuf*>& dead) {
  if (n_waiting_.load(std::memory_order_relaxed) == 0) return;  // every tick of a resolved network
  std::lock_guard g(lk_);
  for (size_t j = waiting_slots_.size(); j-- > 0;) {
    const uint16_t i = waiting_slots_[j];
    Waiting& w = waiting_[i];
    if (now < w.next_retry) continue;
    if (w.retries >= max_retries_) {
      dead.insert(dead.end(), w.frames.begin(), w.frames.end());
      w.frames.clear();
      w.retries = 0;
      forget_waiting(i);
      continue;
    }
    w.retries++;
    w.next_retry = now + retry_ns_;
    retry.push_back(Ipv4Addr(slots_[i].ip.load(std::memory_order_relaxed)));
  }
}

}  // namespace slip::net::stack
