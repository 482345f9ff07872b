// The IOKernel's control socket: one runtime registers per connection by
// sending a RegisterMsg with its region fd and one eventfd per kthread
// (SCM_RIGHTS). Everything is checked before it is kept; on any refusal every
// received fd is closed and the runtime gets an errno and a reason.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "slip/iok/ring.h"

namespace slip::iok {

// What the daemon keeps of an accepted runtime.
struct Attached {
  RegisterMsg msg{};
  int region_fd = -1;
  uint8_t* region = nullptr;  // mapped, region_size bytes
  RegionLayout layout;
  std::vector<int> eventfds;  // one per kthread
};

// Releases what an Attached holds (unmap, close); safe on a moved-from one.
void detach(Attached& a) noexcept;

// Reads one registration from conn (a connected Unix stream socket), waiting
// at most timeout_ms for it. On success fills *out and returns 0; otherwise
// returns an errno value with *reason set, and keeps no fd. taken_ips are
// the addresses already attached. Sends the RegisterReply either way.
int accept_registration(int conn, const std::vector<uint32_t>& taken_ips, int timeout_ms, Attached* out,
                        std::string* reason);

// Runtime side: sends msg with the fds on conn and waits for the reply.
int send_registration(int conn, const RegisterMsg& msg, int region_fd, const std::vector<int>& eventfds,
                      std::string* reason);

}  // namespace slip::iok
