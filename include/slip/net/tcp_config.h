// TCP tuning knobs, one struct per stack (ENGINEERING.md: knobs in one place).
// The slip stack applies them all. The kernel stack (Linux sockets) applies
// `nagle` (TCP_NODELAY) and, for tcp_serve, `rcv_buf` as the bytes it holds
// unconsumed per connection; the rest is Linux's, whose autotuned socket
// buffers a fixed SO_RCVBUF/SO_SNDBUF would switch off.
#pragma once

#include <cstdint>
#include <string_view>

namespace slip::net {

struct TcpConfig {
  // What we announce. 0: the NIC's MTU less 40 (the slip stack reads it from
  // the port; a bare Tcb takes 1460, Ethernet's). Larger than the MTU allows
  // is lowered to it.
  uint16_t mss = 0;
  uint32_t rcv_buf = 256 * 1024;       // receive buffer, bounds the window
  uint32_t snd_buf = 256 * 1024;
  bool window_scale = true, timestamps = true, sack = true;
  bool nagle = false;                  // off: latency first
  uint64_t rto_initial_ns = 1'000'000'000;   // RFC 6298 §2.1
  uint64_t rto_min_ns = 200'000'000;         // Linux's floor; RFC 6298 says 1 s
  uint64_t rto_max_ns = 60'000'000'000;
  uint64_t delack_ns = 40'000'000;     // an ACK waits at most this for a second segment
  uint64_t time_wait_ns = 60'000'000'000;    // 2 MSL
  uint64_t keepalive_idle_ns = 0;      // 0: keepalive off
  uint64_t keepalive_intvl_ns = 75'000'000'000;
  uint32_t keepalive_probes = 9;
  uint32_t max_retransmits = 15;       // RTO expiries in a row before ETIMEDOUT
  uint32_t syn_retransmits = 6;
  std::string_view cc = "newreno";     // or "dctcp"
};

}  // namespace slip::net
