// Endpoint <-> sockaddr_in, and the socket calls both kernel-stack files make.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "slip/net/addr.h"

namespace slip::net::kernel {

inline sockaddr_in to_sockaddr(Endpoint e) noexcept {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(e.port);
  sa.sin_addr.s_addr = htonl(e.ip.v);
  return sa;
}

inline Endpoint from_sockaddr(const sockaddr_in& sa) noexcept {
  return {Ipv4Addr(ntohl(sa.sin_addr.s_addr)), ntohs(sa.sin_port)};
}

inline Endpoint local_of(int fd) noexcept {
  sockaddr_in sa{};
  socklen_t l = sizeof sa;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &l);
  return from_sockaddr(sa);
}

inline Endpoint remote_of(int fd) noexcept {
  sockaddr_in sa{};
  socklen_t l = sizeof sa;
  getpeername(fd, reinterpret_cast<sockaddr*>(&sa), &l);
  return from_sockaddr(sa);
}

// close(2) after this sends RST instead of FIN.
inline void set_reset_on_close(int fd) noexcept {
  const linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

}  // namespace slip::net::kernel
