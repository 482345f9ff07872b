// The kernel backend's netpoller: one epoll instance (edge-triggered) that
// kthreads poll run-to-completion and that one idle kthread sleeps in. Each fd
// has a Readiness record whose sequence numbers let a uthread that saw EAGAIN
// park without missing an edge that arrived in between.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>

#include "slip/runtime/poll.h"
#include "slip/runtime/spin_park_lock.h"
#include "slip/runtime/wait_queue.h"

namespace slip::net::kernel {

// A socket served run-to-completion (udp_serve, tcp_serve): the poller calls
// it with each edge's epoll events instead of waking parked uthreads.
struct ReadyHook {
  virtual void on_ready(uint32_t epoll_events) noexcept = 0;

 protected:
  ~ReadyHook() = default;
};

struct Readiness {
  rt::SpinParkLock lk;
  rt::WaitQueue readers, writers;
  std::atomic<uint32_t> rseq{0}, wseq{0};  // bumped (under lk) on each readiness edge
  std::atomic<bool> hup{false};            // the peer closed or the socket failed: set before rseq moves
  std::atomic<ReadyHook*> hook{nullptr};
  std::atomic<int> hook_calls{0};  // dispatchers inside hook->on_ready()
};

enum class Dir { read, write };

class Netpoll final : public rt::Poller {
 public:
  Netpoll();  // throws std::system_error
  ~Netpoll() override;
  Netpoll(const Netpoll&) = delete;
  Netpoll& operator=(const Netpoll&) = delete;

  // Starts watching fd (non-blocking, new or reused number); false with errno set.
  bool watch(int fd) noexcept;
  // The sequence to pass to wait() before trying the syscall that may EAGAIN.
  uint32_t seq(int fd, Dir d) noexcept;
  // Parks until fd's readiness in d moves past seen, or the deadline; false on timeout.
  bool wait(int fd, Dir d, uint32_t seen, uint64_t deadline);
  // Whether an edge said the peer closed (or the socket failed) since watch():
  // after that a short read does not mean drained, as the end is still to read.
  bool hung_up(int fd) noexcept;

  // Routes fd's edges to h; unhook() returns once no call is running.
  void hook(int fd, ReadyHook* h) noexcept;
  void unhook(int fd) noexcept;
  // unhook() from inside fd's own hook call: returns once no other call is running.
  void unhook_self(int fd) noexcept;
  // Calls fd's hook with events as an edge would (counted, so unhook waits for it).
  void dispatch(int fd, uint32_t events) noexcept;

  unsigned poll(unsigned kthread) noexcept override;
  bool can_block() const noexcept override { return true; }
  unsigned block(unsigned kthread, uint64_t timeout_ns) noexcept override;
  void interrupt() noexcept override;

 private:
  // fd-indexed records in lazily allocated chunks; never freed while the
  // poller lives, so a late event for a closed fd only causes a spurious wake.
  static constexpr int kChunk = 1024, kChunks = 1024;
  Readiness* record(int fd) noexcept;

  int ep_ = -1, wake_fd_ = -1;
  std::array<std::atomic<Readiness*>, kChunks> chunks_{};
  static constexpr int kEvents = 64;
  struct Events;
  std::unique_ptr<Events> ev_;  // one buffer per kthread slot
};

}  // namespace slip::net::kernel
