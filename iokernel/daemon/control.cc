#include "iokernel/daemon/control.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "iokernel/registration.h"
#include "slip/iok/contract.h"

namespace slip::iok {
namespace {

sockaddr_un address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  return a;
}

[[noreturn]] void fail(const std::string& what, int err, const std::string& fix) {
  throw std::runtime_error(fmt::format("{}: {}; {}", what, std::strerror(err), fix));
}

// mkdir -p of path's parent.
void make_parent(const std::string& path) {
  for (size_t i = path.find('/', 1); i != std::string::npos; i = path.find('/', i + 1)) {
    const std::string dir = path.substr(0, i);
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
      fail("cannot create " + dir, errno, "create it yourself or pass a socket path in a writable directory");
  }
}

// Removes a stale socket at path; throws if a live daemon answers there or
// the path is something else.
void clear_stale(const std::string& path, int type) {
  struct stat st{};
  if (lstat(path.c_str(), &st) != 0) return;
  if (!S_ISSOCK(st.st_mode))
    throw std::runtime_error(path + " exists and is not a socket; remove it or pass another path");
  Fd probe(socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
  const sockaddr_un a = address(path);
  if (probe && connect(probe.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0)
    throw std::runtime_error("another iokerneld is listening on " + path + "; stop it or pass another path");
  unlink(path.c_str());
}

ino_t inode_of(const std::string& path) noexcept {
  struct stat st{};
  return lstat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

}  // namespace

bool peer_cred(int fd, PeerCred* out) {
  ucred c{};
  socklen_t len = sizeof c;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) != 0) return false;
  out->pid = c.pid;
  out->uid = c.uid;
  out->gid = c.gid;
  gid_t groups[256];
  len = sizeof groups;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0)
    out->groups.assign(groups, groups + len / sizeof(gid_t));
  return true;  // a peer with more than 256 groups is judged by its primary group
}

bool PeerPolicy::allows(const PeerCred& c) const noexcept {
  if (c.uid == 0 || c.uid == self_uid) return true;
  if (std::find(uids.begin(), uids.end(), c.uid) != uids.end()) return true;
  for (gid_t g : gids)
    if (c.gid == g || std::find(c.groups.begin(), c.groups.end(), g) != c.groups.end()) return true;
  return false;
}

UnixListener::UnixListener(const std::string& path, int type, mode_t mode, gid_t gid) : path_(path) {
  make_parent(path);
  clear_stale(path, type);
  fd_.reset(socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd_) fail("socket(AF_UNIX)", errno, "check the process's descriptor limit");
  const sockaddr_un a = address(path);
  const mode_t old = umask(0177);  // bound as 0600 until the mode below is set
  const int rc = bind(fd_.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a);
  const int err = errno;
  umask(old);
  if (rc != 0) fail("cannot bind " + path, err, "check the directory's permissions or pass another path");
  ino_ = inode_of(path);
  if (gid != static_cast<gid_t>(-1) && chown(path.c_str(), static_cast<uid_t>(-1), gid) != 0) {
    const int e = errno;
    close();
    fail(fmt::format("cannot give {} to group {}", path, gid), e, "run iokerneld as root or as a member of that group");
  }
  if (chmod(path.c_str(), mode) != 0 || listen(fd_.get(), 64) != 0) {
    const int e = errno;
    close();
    fail("cannot set up " + path, e, "check the directory's permissions and the system's socket limits");
  }
}

void UnixListener::close() noexcept {
  if (!fd_) return;
  fd_.reset();
  if (ino_ != 0 && inode_of(path_) == ino_) unlink(path_.c_str());
}

ssize_t drain_message(int conn) noexcept {
  char buf[sizeof(RegisterMsg)];
  return recv_with_fds(conn, buf, sizeof buf, MSG_DONTWAIT, [](int fd) { ::close(fd); });
}

void refuse(int conn, int status, const std::string& reason) noexcept {
  (void)drain_message(conn);
  RegisterReply r{};
  r.magic = kMagic;
  r.version_major = kVersionMajor;
  r.version_minor = kVersionMinor;
  r.status = status;
  std::snprintf(r.reason, sizeof r.reason, "%s", reason.c_str());
  (void)!send(conn, &r, sizeof r, MSG_NOSIGNAL | MSG_DONTWAIT);
}


}  // namespace slip::iok
