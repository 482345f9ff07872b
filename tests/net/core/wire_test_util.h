// Helpers shared by the test-wire tests: numbered frames, burst send and drain.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <vector>

#include "slip/net/wire.h"

namespace slip::net::test {

inline const MacAddr kMacA{{0x02, 0, 0, 0, 0, 0x0a}};
inline const MacAddr kMacB{{0x02, 0, 0, 0, 0, 0x0b}};
inline constexpr size_t kLen = 64;

inline WireFaults faults(double drop, double dup, double reorder, double corrupt, double truncate, uint64_t seed = 1) {
  WireFaults f;
  f.drop = drop;
  f.duplicate = dup;
  f.reorder = reorder;
  f.corrupt = corrupt;
  f.truncate = truncate;
  f.seed = seed;
  return f;
}

// A frame of kLen bytes: the sequence number, then a pattern derived from it.
inline PacketBuf* make_frame(Nic& nic, uint32_t seq, size_t len = kLen) {
  PacketBuf* b = nic.alloc_tx();
  REQUIRE(b);
  uint8_t* p = b->append(len);
  for (size_t i = 0; i < len; i++) p[i] = static_cast<uint8_t>(seq * 7 + i);
  std::memcpy(p, &seq, sizeof seq);
  return b;
}

inline uint32_t seq_of(const PacketBuf* b) {
  uint32_t s;
  std::memcpy(&s, b->data, sizeof s);
  return s;
}

// Sends frames [first, first + n) from `from` in bursts; all must be taken.
inline void send(Nic& from, uint32_t first, uint32_t n) {
  PacketBuf* burst[kBurst];
  while (n > 0) {
    const uint16_t k = static_cast<uint16_t>(std::min<uint32_t>(n, kBurst));
    for (uint16_t i = 0; i < k; i++) burst[i] = make_frame(from, first + i);
    REQUIRE(from.tx_burst(0, burst, k) == k);
    first += k;
    n -= k;
  }
}

// Everything deliverable now; the caller owns (and must release) the frames.
inline std::vector<PacketBuf*> drain(Nic& to) {
  std::vector<PacketBuf*> out;
  PacketBuf* burst[kBurst];
  while (uint16_t k = to.rx_burst(0, burst, kBurst)) out.insert(out.end(), burst, burst + k);
  return out;
}

inline std::vector<uint32_t> seqs_and_release(std::vector<PacketBuf*> frames) {
  std::vector<uint32_t> s;
  for (PacketBuf* b : frames) {
    s.push_back(b->len >= 4 ? seq_of(b) : UINT32_MAX);
    BufPool::release(b);
  }
  return s;
}

inline void check_accounting(TestWire& w) {
  const WireStats s = w.stats();
  CHECK(s.sent + s.duplicated == s.delivered + s.dropped + w.in_flight());
}

}  // namespace slip::net::test
