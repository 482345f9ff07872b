// TCP sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4).
#pragma once

#include <cstdint>

namespace slip::net::tcp {

using Seq = uint32_t;

inline bool seq_lt(Seq a, Seq b) noexcept { return static_cast<int32_t>(a - b) < 0; }
inline bool seq_le(Seq a, Seq b) noexcept { return static_cast<int32_t>(a - b) <= 0; }
inline bool seq_gt(Seq a, Seq b) noexcept { return static_cast<int32_t>(a - b) > 0; }
inline bool seq_ge(Seq a, Seq b) noexcept { return static_cast<int32_t>(a - b) >= 0; }
inline Seq seq_max(Seq a, Seq b) noexcept { return seq_gt(a, b) ? a : b; }
inline Seq seq_min(Seq a, Seq b) noexcept { return seq_lt(a, b) ? a : b; }
// a <= x < b, on the circle.
inline bool seq_in(Seq x, Seq a, Seq b) noexcept { return seq_le(a, x) && seq_lt(x, b); }

}  // namespace slip::net::tcp
