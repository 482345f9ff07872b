// EmbeddedDaemon (embed/iokd_embed.h): the control plane's registration and
// the CoreAllocator, without a port, for tests and benchmarks.
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "iokernel/daemon/control.h"
#include "iokernel/daemon/cores.h"
#include "iokernel/daemon/log.h"
#include "iokernel/daemon/runtimes.h"
#include "iokernel/registration.h"
#include "iokd_embed.h"

namespace slip::iok {
namespace {

// The rx pool a registration reply must carry: one buffer, sealed like the
// daemon's, never received into.
constexpr uint32_t kPoolBytes = 4096, kPoolBufSize = 2176;

Fd make_pool() {
  Fd pool(memfd_create("iokd-embed-pool", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!pool || ftruncate(pool.get(), kPoolBytes) != 0 ||
      fcntl(pool.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0)
    throw std::runtime_error(std::string("EmbeddedDaemon: cannot make the rx pool memfd: ") + std::strerror(errno));
  return pool;
}

}  // namespace

struct EmbeddedDaemon::Impl {
  Impl(const std::string& socket, uint32_t cores)
      : listener(socket, SOCK_SEQPACKET, 0600, static_cast<gid_t>(-1)),
        pool(make_pool()),
        alloc(std::make_unique<DelayPolicy>(), cores) {}
  UnixListener listener;
  Fd pool;
  RuntimeTable table;
  CoreAllocator alloc;
  RuntimeEntry* entry = nullptr;
};

EmbeddedDaemon::EmbeddedDaemon(const std::string& socket, uint32_t cores)
    : impl_(std::make_unique<Impl>(socket, cores)) {}

EmbeddedDaemon::~EmbeddedDaemon() = default;

bool EmbeddedDaemon::accept_one(int timeout_ms) {
  if (impl_->entry) return true;
  pollfd p{impl_->listener.fd(), POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return false;
  Fd c(accept4(impl_->listener.fd(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!c) return false;
  Attached a;
  std::string why;
  const RxPool pool{impl_->pool.get(), kPoolBytes, kPoolBufSize, 1};
  if (accept_registration(c.get(), {}, 2000, pool, &a, &why) != 0)
    throw std::runtime_error("EmbeddedDaemon: registration refused: " + why);
  impl_->entry = &impl_->table.add(std::move(a), std::move(c), {}, mono_ns());
  return true;
}

void EmbeddedDaemon::allocate(uint64_t now_ns) { impl_->alloc.run(impl_->table, now_ns); }

uint64_t EmbeddedDaemon::passes() const noexcept { return impl_->alloc.passes(); }

KthreadShm& EmbeddedDaemon::kthread(uint32_t k) {
  if (!impl_->entry) throw std::logic_error("EmbeddedDaemon::kthread: no runtime attached yet (accept_one first)");
  return impl_->entry->kthread(k);
}

}  // namespace slip::iok
