// The slip stack's port tables: UDP sockets and TCP listeners by port. They
// change under the control lock (bind, listen, close) and are read without
// one on the receive path; a socket that leaves them is freed only after
// synchronize_pollers(), so no poll still holds it.
#include "net/stack/sockets.h"

#include <mutex>

namespace slip::net::stack {

// The next port of the ephemeral range, round robin from a random start.
uint16_t SlipStack::ephemeral_candidate() noexcept {
  const uint32_t range = uint32_t{cfg_.ephemeral_hi} - cfg_.ephemeral_lo + 1;
  return static_cast<uint16_t>(cfg_.ephemeral_lo + next_ephemeral_.fetch_add(1, std::memory_order_relaxed) % range);
}

template <class Free>
uint16_t SlipStack::next_ephemeral(Free&& free) noexcept {
  const uint32_t range = uint32_t{cfg_.ephemeral_hi} - cfg_.ephemeral_lo + 1;
  for (uint32_t tries = 0; tries < range; tries++)
    if (const uint16_t p = ephemeral_candidate(); free(p)) return p;
  return 0;
}

// Under ctl_lk_: port, or a free ephemeral one when 0; EADDRINUSE.
Result<uint16_t> SlipStack::udp_claim_port(uint16_t port) noexcept {
  auto taken = [&](uint16_t p) { return udp_[p].load(std::memory_order_relaxed) != nullptr; };
  if (port == 0) port = next_ephemeral([&](uint16_t p) { return !taken(p); });
  if (port == 0 || taken(port)) return err(EADDRINUSE);
  return port;
}

Result<std::unique_ptr<UdpConn>> SlipStack::udp_bind(uint16_t port) {
  std::lock_guard g(ctl_lk_);
  auto p = udp_claim_port(port);
  if (!p) return Error{p.error()};
  auto s = std::make_unique<UdpSock>(this, *p);
  udp_[*p].store(s.get(), std::memory_order_release);
  return std::unique_ptr<UdpConn>(std::move(s));
}

Result<std::unique_ptr<UdpService>> SlipStack::udp_serve(uint16_t port, UdpHandler handler) {
  if (!handler) return err(EINVAL);
  std::lock_guard g(ctl_lk_);
  auto p = udp_claim_port(port);
  if (!p) return Error{p.error()};
  auto s = std::make_unique<UdpSvc>(this, *p, std::move(handler));
  udp_[*p].store(&s->sock(), std::memory_order_release);
  return std::unique_ptr<UdpService>(std::move(s));
}

void SlipStack::udp_unbind(uint16_t port) noexcept {
  std::lock_guard g(ctl_lk_);
  udp_[port].store(nullptr, std::memory_order_seq_cst);
}

// Under ctl_lk_: port, or a free ephemeral one when 0, as Linux's listen does; EADDRINUSE.
Result<uint16_t> SlipStack::tcp_claim_listen_port(uint16_t port) noexcept {
  auto taken = [&](uint16_t p) { return listeners_[p].load(std::memory_order_relaxed) != nullptr; };
  if (port == 0) port = next_ephemeral([&](uint16_t p) { return !taken(p); });
  if (port == 0 || taken(port)) return err(EADDRINUSE);
  return port;
}

Result<std::unique_ptr<TcpListener>> SlipStack::tcp_listen(uint16_t port, int backlog) {
  std::lock_guard g(ctl_lk_);
  auto p = tcp_claim_listen_port(port);
  if (!p) return Error{p.error()};
  auto l = std::make_unique<TcpListenSock>(this, *p, backlog < 1 ? 1 : backlog);
  listeners_[*p].store(l.get(), std::memory_order_release);
  return std::unique_ptr<TcpListener>(std::move(l));
}

Result<std::unique_ptr<TcpService>> SlipStack::tcp_serve(uint16_t port, TcpHandlers handlers) {
  if (!handlers.on_data) return err(EINVAL);
  std::lock_guard g(ctl_lk_);
  auto p = tcp_claim_listen_port(port);
  if (!p) return Error{p.error()};
  auto s = std::make_unique<TcpSvc>(this, *p, std::move(handlers));
  listeners_[*p].store(&s->listener(), std::memory_order_release);
  return std::unique_ptr<TcpService>(std::move(s));
}

void SlipStack::tcp_unlisten(uint16_t port) noexcept {
  std::lock_guard g(ctl_lk_);
  listeners_[port].store(nullptr, std::memory_order_seq_cst);
}

}  // namespace slip::net::stack
