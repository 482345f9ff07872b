// The spin server of apps/synthetic: answers each request (slip/proto/synthetic.h)
// after busy-spinning its service time on the CPU, over UDP and TCP on any
// slip::net::Stack, and keeps per-uthread counts and served-time histograms
// that are merged when it stops.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "slip/common/dist.h"
#include "slip/common/histogram.h"
#include "slip/net/stack.h"
#include "slip/runtime/runtime.h"
#include "slip/proto/synthetic.h"
#include "slip/runtime/sync.h"

namespace slip::synthetic {

using proto::synthetic::Header;
using proto::synthetic::kMaxMessage;
using proto::synthetic::kServerChooses;
using proto::synthetic::parse_header;

// Longest spin a request may ask for; a larger work_ns is a bad request, so a
// stray client cannot pin a core for minutes.
inline constexpr uint64_t kMaxWorkNs = 1'000'000'000;

struct ServerOptions {
  uint16_t port = 9000;  // 0: an ephemeral port per protocol (see Server::udp_port/tcp_port)
  bool udp = true, tcp = true;
  Distribution service = Distribution::exponential(10'000);  // for work_ns == kServerChooses
  uint64_t seed = 1;
  unsigned udp_workers = 1;
  // Optional flag set from outside the runtime (a signal handler): serving
  // uthreads stop as if finish() had been called. A spin holds its kthread,
  // so with one kthread nothing else would run to call finish() until it ends.
  const std::atomic<bool>* stop_flag = nullptr;
};

// True when h asks for a service time the server will spin.
inline bool work_ok(const Header& h) noexcept { return h.work_ns == kServerChooses || h.work_ns <= kMaxWorkNs; }

// Splits a TCP byte stream into requests: the header is collected, then the
// padding is skipped as it arrives, so a request of any allowed size needs no
// buffer of its size.
class Framer {
 public:
  enum class Step { need_more, request, bad };
  // Takes bytes from [p, p + n) and sets used to how many. `request`: h is a
  // whole request's header. `bad`: the stream is garbage from here on.
  Step next(const uint8_t* p, size_t n, size_t& used, Header& h) noexcept;

 private:
  uint8_t hdr_[sizeof(Header)] = {};
  size_t have_ = 0;  // header bytes collected
  bool in_pad_ = false;
  uint32_t pad_left_ = 0;
  Header cur_{};
};

// What one serving uthread (a UDP worker or a TCP connection) owns: its RNG
// for server-chosen service times and its statistics. One writer, no locks.
struct alignas(64) Worker {
  explicit Worker(uint64_t seed, uint64_t stream);
  std::mt19937_64 rng;
  uint64_t requests = 0, bad = 0;
  Histogram served;  // service time actually spun, ns
};

struct Summary {
  uint64_t udp_requests = 0, tcp_requests = 0, tcp_connections = 0, bad_requests = 0;
  Histogram served;
  bool all_stopped = true;  // every serving uthread ended before finish()'s deadline
};

class Server {
 public:
  Server(net::Stack& st, ServerOptions opt);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the sockets and starts the serving uthreads. Throws
  // std::runtime_error naming the port and the cause when a bind fails.
  void start();
  uint16_t udp_port() const noexcept { return udp_port_; }
  uint16_t tcp_port() const noexcept { return tcp_port_; }

  // Tells every uthread to stop (spins in progress end early), waits for
  // them until deadline_ns, and merges their statistics.
  Summary finish(uint64_t deadline_ns);

 private:
  bool stopping() const noexcept {
    return stop_.load(std::memory_order_relaxed) || (opt_.stop_flag && opt_.stop_flag->load(std::memory_order_relaxed));
  }
  uint64_t spin(uint64_t ns) const noexcept;
  Header serve(const Header& req, Worker& w) noexcept;
  void udp_loop(Worker& w);
  void accept_loop();
  void tcp_conn(net::TcpConn& c, Worker& w);
  bool write_all(net::TcpConn& c, const void* p, size_t len);

  net::Stack& st_;
  const ServerOptions opt_;
  std::atomic<bool> stop_{false};
  uint16_t udp_port_ = 0, tcp_port_ = 0;

  std::unique_ptr<net::UdpConn> udp_;
  std::vector<std::unique_ptr<Worker>> udp_workers_;
  std::vector<rt::JoinHandle> udp_threads_;

  std::unique_ptr<net::TcpListener> listener_;
  rt::JoinHandle accept_thread_;
  uint64_t accepted_ = 0;              // written by the accept uthread only
  std::atomic<int> live_conns_{0};     // connection uthreads not yet ended
  rt::Mutex tcp_mu_;                   // guards tcp_total_
  Worker tcp_total_{0, 0};             // ended connections' statistics
};

}  // namespace slip::synthetic
