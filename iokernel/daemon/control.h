// The daemon's Unix sockets: creating them with the right owner and mode,
// who is on the other end (SO_PEERCRED, SO_PEERGROUPS), who may attach, and
// refusing a peer with a RegisterReply.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "iokernel/daemon/fd.h"

namespace slip::iok {

struct PeerCred {
  pid_t pid = 0;
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  std::vector<gid_t> groups;  // supplementary groups
};

// The credentials of a connected Unix socket's peer; false if unavailable.
bool peer_cred(int fd, PeerCred* out);

// Who may attach beyond what the socket file's mode lets connect: root, the
// daemon's own user, the listed users, and members of the listed groups.
struct PeerPolicy {
  uid_t self_uid = 0;
  std::vector<uid_t> uids;
  std::vector<gid_t> gids;
  bool allows(const PeerCred& c) const noexcept;
};

// A listening Unix socket of `type` and its file. Creating it makes missing
// parent directories, replaces a stale socket (never a live one or a
// non-socket), binds under a tight umask, then sets the group (gid -1: keep)
// and mode before listening, so no one connects with looser permissions.
// Non-blocking and close-on-exec. Throws with the cause and the fix.
class UnixListener {
 public:
  UnixListener(const std::string& path, int type, mode_t mode, gid_t gid);
  ~UnixListener() { close(); }
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;

  int fd() const noexcept { return fd_.get(); }
  const std::string& path() const noexcept { return path_; }
  // Stops accepting and unlinks the file if it is still the one we bound.
  void close() noexcept;

 private:
  Fd fd_;
  std::string path_;
  ino_t ino_ = 0;
};

// Receives one message on conn without waiting and closes any descriptors it
// carried: what recvmsg returned (0 at EOF, -1 with errno).
ssize_t drain_message(int conn) noexcept;

// Reads and discards one message on conn (closing any descriptors it
// carried), then answers it with a RegisterReply carrying status and reason.
void refuse(int conn, int status, const std::string& reason) noexcept;


}  // namespace slip::iok
