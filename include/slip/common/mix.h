// Integer mixing for hashes and seeds, shared by everything that steers or
// seeds: one definition, so every program that must agree on a flow's hash
// (iokerneld and its runtimes) computes the same one.
#pragma once

#include <cstdint>

namespace slip {

// splitmix64's step: spreads nearby inputs (a seed and a stream or request
// number, or a flow's addresses) over unrelated 64-bit values.
inline constexpr uint64_t splitmix64(uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace slip
