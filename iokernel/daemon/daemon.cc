// The loop. Registration handshakes run on the loop thread but never wait on
// a peer: a new connection is parked in pending_ until its message has
// arrived (EPOLLIN) or it hangs up, and only then does accept_registration
// run, with a 0 ms timeout, on a non-blocking socket. What is left is fstat,
// mmap and validating a few header lines of the region: microseconds. So a
// slow or silent peer costs one descriptor until its deadline, never loop
// time, and the table of runtimes (and the taken-IP check) stays owned by one
// thread. A handshake thread would instead have to reserve IPs across
// threads so two registrations of one IP cannot both pass, and would cost a
// thread creation per connection. Caveat: validating touches the region's
// first pages; a region on a filesystem whose page faults block (FUSE) could
// stall that; registration only takes a region it can check is sealed
// against shrinking (F_GET_SEALS), which only memfds (shmem, hugetlbfs) pass.
#include "iokernel/daemon/daemon.h"

#include <sched.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "iokernel/daemon/log.h"
#include "iokernel/registration.h"

namespace slip::iok {
namespace {

constexpr uint64_t kControlPeriodNs = 50'000;       // control plane every 50 us of busy polling
constexpr uint64_t kLivenessPeriodNs = 10'000'000;  // stall check every 10 ms
constexpr uint64_t kHandshakeNs = 1'000'000'000;    // a connection must register within 1 s
constexpr size_t kMaxPending = 32;                  // handshakes in flight; more are refused
constexpr uint64_t kMinBackoffNs = 1'000, kMaxBackoffNs = 50'000;

enum Kind : uint64_t { kCtlListener = 1, kStatsListener = 2, kPendingConn = 3, kRuntimeConn = 4 };
constexpr uint64_t tag(Kind k, uint64_t id) noexcept { return (uint64_t{k} << 56) | id; }
constexpr Kind kind_of(uint64_t t) noexcept { return static_cast<Kind>(t >> 56); }
constexpr uint64_t id_of(uint64_t t) noexcept { return t & ((uint64_t{1} << 56) - 1); }

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

std::string who(const PeerCred& c) { return fmt::format("pid={} uid={}", c.pid, c.uid); }

}  // namespace

Daemon::Daemon(const DaemonSettings& s, std::unique_ptr<PortBackend> port)
    : s_(s),
      port_(std::move(port)),
      ctl_(s.opts.socket, SOCK_SEQPACKET, s.socket_mode, s.socket_gid),
      stats_sock_(s.stats_socket, SOCK_STREAM, s.socket_mode, s.socket_gid),
      stats_(stats_sock_.fd()),
      epoll_(epoll_create1(EPOLL_CLOEXEC)),
      cores_(std::make_unique<DelayPolicy>(), s.cores, s.cpus) {
  policy_.self_uid = geteuid();
  policy_.uids = s.allow_uids;
  policy_.gids = s.allow_gids;
  if (!epoll_ || !watch(ctl_.fd(), EPOLLIN, tag(kCtlListener, 0)) ||
      !watch(stats_sock_.fd(), EPOLLIN, tag(kStatsListener, 0)))
    throw std::runtime_error(std::string("epoll: ") + std::strerror(errno) + "; check the descriptor limit");
  info_.pid = getpid();
  info_.started_ns = mono_ns();
  info_.socket = s.opts.socket;
  info_.stats_socket = s.stats_socket;
  info_.idle_backoff = s.opts.idle_backoff;
  info_.stall_timeout_ns = s.stall_timeout_ns;
  info_.cores = &cores_;
  info_.core_interval_ns = s.core_interval_ns;
}

Daemon::~Daemon() { shutdown(); }

bool Daemon::watch(int fd, uint32_t events, uint64_t t) noexcept {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = t;
  return epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
}

void Daemon::run(const std::atomic<bool>& stop) {
  // Linux stretches every nanosleep by the thread's timer slack (50 us by
  // default): a 20 us backoff slept 84 us at the median. The backoff's
  // schedule is the point, so ask for exact wake-ups.
  if (s_.opts.idle_backoff) prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  if (!s_.cpus.empty()) {
    cpu_set_t mine;
    std::string shared;
    if (sched_getaffinity(0, sizeof mine, &mine) == 0)
      for (const int c : s_.cpus)
        if (CPU_ISSET(c, &mine)) shared += (shared.empty() ? "" : ",") + std::to_string(c);
    log_event("granted kthreads are pinned to CPUs {}{}", s_.opts.cpus,
              shared.empty() ? ""
                             : fmt::format("; WARNING: this loop may run on CPU {} too, so runtimes share it with the "
                                           "daemon (give the daemon a CPU of its own: EAL -l, or leave it out of --cpus)",
                                           shared));
  }
  log_event("listening on {} (mode {:o}), stats on {}; port {}; {}; stall timeout {} s; {} cores for runtimes, "
            "'{}' policy every {} us",
            s_.opts.socket, s_.socket_mode, s_.stats_socket, port_ ? port_->name() : "NONE",
            s_.opts.idle_backoff ? "idle backoff up to 50 us" : "busy-polling", s_.opts.stall_timeout_s, s_.cores,
            cores_.policy(), s_.opts.core_interval_us);
  while (!stop.load(std::memory_order_relaxed)) {
    unsigned work = port_ ? port_->poll(runtimes_) : 0;
    const uint64_t now = mono_ns();
    if (now >= next_cores_ns_) {
      work += cores_.run(runtimes_, now);
      next_cores_ns_ = now + s_.core_interval_ns;
    }
    if (now >= next_control_ns_) {
      work += control_tick(now);
      next_control_ns_ = now + kControlPeriodNs;
    }
    if (s_.opts.idle_backoff) idle(work);
    else if (work == 0) cpu_relax();
  }
  shutdown();
}

unsigned Daemon::control_tick(uint64_t now) {
  epoll_event ev[64];
  const int n = epoll_wait(epoll_.get(), ev, 64, 0);
  for (int i = 0; i < n; i++) {
    const uint64_t t = ev[i].data.u64;
    switch (kind_of(t)) {
      case kCtlListener: accept_connections(now); break;
      case kStatsListener: stats_.accept_all([&] { return render_stats(now); }, now); break;
      case kPendingConn: on_pending(id_of(t), now); break;
      case kRuntimeConn: on_runtime(id_of(t), ev[i].events); break;
    }
  }
  unsigned work = n > 0 ? static_cast<unsigned>(n) : 0;
  if (!pending_.empty()) expire_pending(now);
  if (stats_.busy()) work += stats_.flush(now);
  if (now >= next_liveness_ns_) {
    for (const RuntimeTable::Stall& st : runtimes_.check_stalls(now, s_.stall_timeout_ns))
      drop_runtime(st.id, fmt::format("not responding: kthread {}'s rx ring held {} frames unconsumed for {} s",
                                      st.kthread, st.fill, s_.opts.stall_timeout_s));
    next_liveness_ns_ = now + kLivenessPeriodNs;
  }
  return work;
}

void Daemon::accept_connections(uint64_t now) {
  for (;;) {
    Fd c(accept4(ctl_.fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!c) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == ECONNABORTED || errno == EINTR) continue;
      if (!accept_failing_) log_event("accept on {}: {} (retrying)", ctl_.path(), std::strerror(errno));
      accept_failing_ = true;  // e.g. EMFILE: logged once until an accept succeeds
      return;
    }
    accept_failing_ = false;
    Pending p;
    p.id = next_pending_id_++;
    p.conn = std::move(c);
    p.deadline_ns = now + kHandshakeNs;
    if (!peer_cred(p.conn.get(), &p.cred)) {
      p.refuse_status = EPERM;
      p.refuse_reason = "the IOKernel could not read the peer's credentials";
    } else if (!policy_.allows(p.cred)) {
      p.refuse_status = EPERM;
      p.refuse_reason = fmt::format("uid {} may not attach to this IOKernel (see --allow-uid, --allow-gid)",
                                    p.cred.uid);
    }
    if (pending_.size() >= kMaxPending) {
      refuse(p.conn.get(), EAGAIN, "too many registrations in progress; retry");
      info_.refused_total++;
      log_event("refused connection from {}: EAGAIN: {} handshakes already in progress", who(p.cred), kMaxPending);
      continue;
    }
    if (!watch(p.conn.get(), EPOLLIN | EPOLLRDHUP, tag(kPendingConn, p.id))) {
      log_event("refused connection from {}: epoll: {}", who(p.cred), std::strerror(errno));
      continue;
    }
    pending_.push_back(std::move(p));
  }
}

void Daemon::on_pending(uint64_t id, uint64_t now) {
  auto it = std::find_if(pending_.begin(), pending_.end(), [id](const Pending& p) { return p.id == id; });
  if (it == pending_.end()) return;
  Pending p = std::move(*it);
  pending_.erase(it);
  finish_handshake(p, now);
}

void Daemon::expire_pending(uint64_t now) {
  for (size_t i = 0; i < pending_.size();) {
    if (now < pending_[i].deadline_ns) {
      i++;
      continue;
    }
    Pending p = std::move(pending_[i]);
    pending_.erase(pending_.begin() + static_cast<ptrdiff_t>(i));
    finish_handshake(p, now);
  }
}

void Daemon::finish_handshake(Pending& p, uint64_t now) {
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, p.conn.get(), nullptr);
  if (p.refuse_status != 0) {
    refuse(p.conn.get(), p.refuse_status, p.refuse_reason);
    info_.refused_total++;
    log_event("refused registration from {}: {}: {}", who(p.cred), errno_name(p.refuse_status), p.refuse_reason);
    return;
  }
  Attached a;
  std::string why;
  const int rc = accept_registration(p.conn.get(), runtimes_.ips(), 0, port_ ? port_->rx_pool() : RxPool{}, &a, &why);
  if (rc != 0) {
    info_.refused_total++;
    log_event("refused registration from {}: {}: {}", who(p.cred), errno_name(rc), why);
    return;
  }
  RuntimeEntry& e = runtimes_.add(std::move(a), std::move(p.conn), p.cred, now);
  info_.attached_total++;
  const RegisterMsg& m = e.attached.msg;
  log_event("attached runtime id={} {} ip={} mac={} kthreads={} cores={}..{} class={} region={} bytes", e.id,
            who(e.cred), ip_str(m.ip), mac_str(m.mac), m.n_kthreads, m.guaranteed_cores, m.max_cores,
            m.klass == static_cast<uint8_t>(Class::kBestEffort) ? "best-effort" : "latency-critical", m.region_size);
  if (!watch(e.conn.get(), EPOLLIN | EPOLLRDHUP, tag(kRuntimeConn, e.id)))
    drop_runtime(e.id, std::string("cannot watch its control socket: ") + std::strerror(errno));
}

void Daemon::on_runtime(uint64_t id, uint32_t events) {
  RuntimeEntry* e = runtimes_.find(id);
  if (!e) return;
  if (events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR)) {
    drop_runtime(id, "closed its control socket (exited or crashed)");
    return;
  }
  const ssize_t n = drain_message(e->conn.get());
  if (n == 0) {
    drop_runtime(id, "closed its control socket (exited or crashed)");
  } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    drop_runtime(id, std::string("control socket failed: ") + std::strerror(errno));
  } else if (n > 0 && e->counters.unexpected_msgs++ == 0) {
    log_event("runtime id={} {} sent an unexpected control message ({} bytes); ignored", id, who(e->cred), n);
  }
}

void Daemon::drop_runtime(uint64_t id, const std::string& why) {
  RuntimeEntry* e = runtimes_.find(id);
  if (!e) return;
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, e->conn.get(), nullptr);
  // Its rx buffers go back to the pool before its region goes.
  const unsigned reclaimed = port_ ? port_->detach_runtime(*e) : 0;
  log_event("detached runtime id={} {} ip={}: {}; {} rx buffers reclaimed", id, who(e->cred),
            ip_str(e->attached.msg.ip), why, reclaimed);
  runtimes_.remove(id);  // unmaps the region, closes its descriptors; the IP is free again
  info_.detached_total++;
}

void Daemon::idle(unsigned work) noexcept {
  if (work != 0) {
    backoff_ns_ = 0;
    return;
  }
  backoff_ns_ = std::clamp(backoff_ns_ * 2, kMinBackoffNs, kMaxBackoffNs);
  const timespec ts{0, static_cast<long>(backoff_ns_)};
  nanosleep(&ts, nullptr);
}

std::string Daemon::render_stats(uint64_t now) const {
  return stats_json(info_, port_.get(), runtimes_, now).dump();
}

void Daemon::shutdown() {
  if (ctl_.fd() < 0) return;  // done already
  log_event("stopping: {} runtime(s) attached, {} handshake(s) pending", runtimes_.size(), pending_.size());
  ctl_.close();  // no new registrations from here on
  stats_sock_.close();
  for (Pending& p : pending_) refuse(p.conn.get(), ESHUTDOWN, "the IOKernel is shutting down");
  pending_.clear();
  while (runtimes_.size() > 0) drop_runtime(runtimes_.entries().front()->id, "the IOKernel is shutting down");
  if (port_) {
    const std::string name = port_->name();
    port_.reset();
    log_event("port {} closed", name);
  }
  log_event("stopped");
}

}  // namespace slip::iok
