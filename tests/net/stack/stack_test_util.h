// Two slip stacks joined by the test wire on a 2-kthread runtime: what the
// stack tests share.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "slip/net/stack.h"
#include "slip/net/wire.h"
#include "slip/runtime/runtime.h"

namespace slip::net::test {

inline const MacAddr kMacA{{0x02, 0, 0, 0, 0, 0x0a}};
inline const MacAddr kMacB{{0x02, 0, 0, 0, 0, 0x0b}};
inline const Ipv4Addr kIpA = Ipv4Addr::of(198, 18, 0, 1);
inline const Ipv4Addr kIpB = Ipv4Addr::of(198, 18, 0, 2);

inline StackConfig config(Ipv4Addr ip) {
  StackConfig c;
  c.ip = ip;
  c.tcp.rto_min_ns = 5'000'000;  // the wire's round trip is microseconds
  c.tcp.rto_initial_ns = 20'000'000;
  c.tcp.delack_ns = 1'000'000;
  c.tcp.time_wait_ns = 10'000'000;
  c.arp_retry_ns = 20'000'000;
  return c;
}

// Runs body(a, b) on a 2-kthread runtime with two hosts joined by a wire of
// the given MTU; tune(cfg) may adjust both stacks' configuration first.
inline void with_hosts(const WireFaults& faults, const std::function<void(Stack&, Stack&, TestWire&)>& body,
                       const std::function<void(StackConfig&)>& tune = {}, uint16_t mtu = 1500) {
  rt::Config rc;
  rc.kthreads = 2;
  rc.pin_kthreads = false;
  rt::run(rc, [&] {
    TestWire wire(kMacA, kMacB, faults, false, 8192, mtu);
    StackConfig ca = config(kIpA), cb = config(kIpB);
    if (tune) tune(ca), tune(cb);
    auto a = make_slip_stack(wire.end_a(), ca);
    auto b = make_slip_stack(wire.end_b(), cb);
    body(*a, *b, wire);
  });
}

inline std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  std::mt19937 rng(seed);
  for (auto& x : v) x = static_cast<uint8_t>(rng());
  return v;
}

inline uint64_t deadline_in(uint64_t ns) { return slip::now_ns() + ns; }

}  // namespace slip::net::test
