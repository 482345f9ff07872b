// A Linux TCP socket as a TcpConn (tcp_conn.cc). Not API.
#pragma once

#include <memory>

#include "net/kernel/netpoll.h"
#include "slip/net/stack.h"

namespace slip::net::kernel {

// Takes fd (a connected or connecting TCP socket, non-blocking, watched by
// np): the connection closes it.
std::unique_ptr<TcpConn> make_tcp_conn(Netpoll& np, int fd);

}  // namespace slip::net::kernel
