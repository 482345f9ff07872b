// The zero-copy receive contract, checked the same way on both stacks: 1 MiB
// of a pattern read with read_inplace by a consumer that takes at most 777
// bytes a call (so runs are left part-taken and ring wraps are crossed), then
// EOF once the sender closes.
#pragma once

#include <catch2/catch.hpp>

#include <vector>

#include "slip/net/stack.h"
#include "slip/runtime/runtime.h"
#include "slip/runtime/time.h"

namespace slip::net::test {

inline void check_inplace_read(Stack& sender, Stack& receiver, Endpoint at) {
  auto lis = receiver.tcp_listen(at.port);
  REQUIRE(lis.ok());
  constexpr size_t kBytes = 1 << 20;
  std::vector<uint8_t> data(kBytes);
  for (size_t i = 0; i < kBytes; i++) data[i] = static_cast<uint8_t>(i * 131 + (i >> 9));
  auto tx = rt::spawn([&] {
    auto c = sender.tcp_dial(at, slip::now_ns() + 5'000'000'000);
    if (!c) return;
    (void)(*c)->write_full(data.data(), data.size());
    (*c)->close();
  });
  auto c = (*lis)->accept(slip::now_ns() + 5'000'000'000);
  REQUIRE(c.ok());
  std::vector<uint8_t> got;
  size_t calls = 0, partial = 0;
  bool eof = false;
  while (!eof) {
    auto r = (*c)->read_inplace(
        [&](const uint8_t* p, size_t n) {
          calls++;
          const size_t take = n < 777 ? n : 777;
          if (take < n) partial++;
          got.insert(got.end(), p, p + take);
          return take;
        },
        slip::now_ns() + 10'000'000'000);
    INFO("read_inplace failed with errno " << (r.ok() ? 0 : r.error()) << " after " << got.size() << " bytes");
    REQUIRE(r.ok());
    eof = r->eof;
    if (!eof) REQUIRE(r->taken > 0);
  }
  tx.join();
  CHECK(got.size() == kBytes);
  CHECK(got == data);
  CHECK(partial > 0);
  CHECK(calls >= kBytes / 777);
}

}  // namespace slip::net::test
