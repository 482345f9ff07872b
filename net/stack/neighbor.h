// The slip stack's ARP cache. Every transmitted IP frame looks its next hop
// up here, on whichever kthread sends it, so lookups take no lock: entries
// sit in a fixed open-addressed table of atomics, written under the table's
// lock only when an entry is made, changes its MAC or waits on a request. A
// kthread that finds an entry past its timeout keeps using it and sends one
// request to refresh it (Linux's STALE state), so a busy neighbour is never
// held up by the 60 s ageing; one that never answers is dropped after
// arp_max_retries requests.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>
#include <vector>

#include "net/stack/stack_lock.h"
#include "slip/net/addr.h"
#include "slip/net/buf.h"
#include "slip/net/stack.h"

namespace slip::net::stack {

class NeighborTable {
 public:
  static constexpr size_t kSlots = 1024;    // neighbours one stack knows at once
  static constexpr size_t kPending = 8;     // frames one unresolved neighbour holds
  using Ready = std::array<PacketBuf*, kPending>;

  NeighborTable(const StackConfig& cfg, StackLock& lock);
  ~NeighborTable();  // releases frames still waiting
  NeighborTable(const NeighborTable&) = delete;
  NeighborTable& operator=(const NeighborTable&) = delete;

  // Lock-free. True with *mac when ip is resolved (fresh, or stale and still
  // being refreshed); *refresh is set for the one caller that should now
  // send a request to refresh it.
  bool lookup(Ipv4Addr ip, uint64_t now, MacAddr* mac, bool* refresh) noexcept;

  enum class Queued : uint8_t {
    kFirst,     // queued; the caller sends the first request
    kQueued,    // queued behind an outstanding request
    kDropped,   // the neighbour already holds kPending frames: b released
    kFull,      // no slot left for a new neighbour: b released
    kResolved,  // resolved meanwhile: *mac set, b not taken
  };
  // Slow path, under the lock: holds b until ip answers.
  Queued queue(Ipv4Addr ip, PacketBuf* b, uint64_t now, MacAddr* mac) noexcept;

  // ip is at mac (RFC 826's merge; `create` adds it when unknown). Frames
  // that waited for it go to out[0..return).
  size_t learn(Ipv4Addr ip, MacAddr mac, bool create, uint64_t now, Ready& out) noexcept;

  // Request retries that are due (appended to retry) and frames whose
  // neighbour never answered (appended to dead), under the lock.
  void tick(uint64_t now, std::vector<Ipv4Addr>& retry, std::vector<PacketBuf*>& dead);

 private:
  static constexpr uint64_t kResolvedBit = uint64_t{1} << 48, kPermanentBit = uint64_t{1} << 49;
  static_assert(std::endian::native == std::endian::little, "pack() keeps the MAC in the low six bytes");
  struct Slot {
    std::atomic<uint32_t> ip{0};          // host order; 0: free (0.0.0.0 is no neighbour)
    std::atomic<uint64_t> word{0};        // the MAC in bits 0-47, kResolvedBit, kPermanentBit
    std::atomic<uint64_t> expires{0};
    std::atomic<uint64_t> refresh_at{0};  // stale: when the next refreshing request may go
  };
  // What only the lock's holder touches: requests outstanding and the frames behind them.
  struct Waiting {
    std::vector<PacketBuf*> frames;  // capacity kPending, reserved once
    uint64_t next_retry = 0;
    uint32_t retries = 0;
  };

  static uint64_t pack(MacAddr m, uint64_t bits) noexcept;
  static MacAddr unpack(uint64_t w) noexcept;
  size_t find(uint32_t ip) const noexcept;  // kSlots: absent
  size_t find_or_add(uint32_t ip) noexcept;  // lock held; kSlots: full
  void forget_waiting(size_t slot) noexcept;  // lock held: nothing waits on slot any more
  uint64_t stale_limit() const noexcept { return retry_ns_ * max_retries_; }

  uint64_t timeout_ns_, retry_ns_;
  uint32_t max_retries_;
  StackLock& lk_;
  std::unique_ptr<Slot[]> slots_;
  std::unique_ptr<Waiting[]> waiting_;
  std::vector<uint16_t> waiting_slots_;   // slots with frames waiting, under the lock (tick walks only these)
  std::atomic<size_t> n_waiting_{0};     // its size, readable without the lock
};

}  // namespace slip::net::stack
