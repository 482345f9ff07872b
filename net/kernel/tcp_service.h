// tcp_serve on Linux sockets (tcp_service.cc). Not API.
#pragma once

#include <cstddef>
#include <memory>

#include "net/kernel/netpoll.h"
#include "slip/net/stack.h"

namespace slip::net::kernel {

// Serves lfd (listening, non-blocking, watched by np; the service closes it)
// with h: accepts on its readable edges and drains each connection on its own,
// holding up to rcv_buf unconsumed bytes per connection.
std::unique_ptr<TcpService> make_tcp_service(Netpoll& np, int lfd, TcpHandlers h, size_t rcv_buf, bool nodelay);

}  // namespace slip::net::kernel
