// slip-netecho: a Slipstream host on a DPDK port (direct mode) or behind
// iokerneld (shared mode, --iokernel) serving UDP and TCP echo and a minimal
// HTTP page, and optionally dialing out once. It is the Slipstream side of the
// Linux interop and IOKernel tests and a quick way to poke the stack by hand
// (ping, curl, nc against it). With --rtc its echo runs to completion in the
// stack's poll (udp_serve, tcp_serve) instead of on uthreads.
// SIGUSR1, and the stop, print each open TCP connection's state (TcpConn::info).
#include "slip/common/cli11.h"

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "slip/net/select.h"
#include "slip/net/stack.h"
#include "slip/runtime/cpu_limit.h"
#include "slip/runtime/runtime.h"
#include "slip/runtime/stats.h"
#include "slip/runtime/sync.h"

namespace net = slip::net;
namespace rt = slip::rt;

namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_report{false};  // SIGUSR1: print the open connections
bool g_failed = false;  // a service could not start

// The TCP connections being served, so that SIGUSR1 and a stop can report
// them (a stalled flow says where it stalled) and a stop can end them. The
// servers block without deadlines, so a lost wake-up stalls a flow visibly
// instead of healing at the next deadline.
rt::Mutex g_open_lk;
std::vector<net::TcpConn*> g_open;

void print_open_conns(const char* when) {
  std::lock_guard g(g_open_lk);
  for (net::TcpConn* c : g_open) {
    const net::TcpInfo i = c->info();
    std::printf("slip-netecho: open %s: tcp %s %.*s unacked %lu unsent %lu unread %lu send window %lu cwnd %lu "
                "srtt %lu us rto %lu us retransmits %lu rto expiries %lu next timer in %s\n",
                when, c->remote().str().c_str(), static_cast<int>(i.state.size()), i.state.data(), i.unacked_bytes,
                i.unsent_bytes, i.unread_bytes, i.send_window, i.cwnd_bytes, i.srtt_ns / 1000, i.rto_ns / 1000,
                i.retransmits, i.rto_expiries,
                i.next_timer_in_ns == UINT64_MAX ? "(none)" : (std::to_string(i.next_timer_in_ns / 1000) + " us").c_str());
  }
  std::fflush(stdout);
}

// RST to every connection still open, which wakes its server with an error.
// Slip stack only: its abort() is safe beside a reader blocked on the same
// connection, where the kernel stack's closes the descriptor under it.
void abort_open_conns() {
  std::lock_guard g(g_open_lk);
  for (net::TcpConn* c : g_open) c->abort();
}

size_t open_conns() {
  std::lock_guard g(g_open_lk);
  return g_open.size();
}

// Accepts on port until stop, running serve(conn) in a uthread per connection.
template <typename Serve>
void serve_tcp(net::Stack& st, uint16_t port, Serve serve) {
  auto lis = st.tcp_listen(port);
  if (!lis) {
    std::fprintf(stderr, "slip-netecho: listen on tcp/%u: %s\n", port, lis.message().c_str());
    return;
  }
  auto l = std::shared_ptr<net::TcpListener>(std::move(*lis));
  rt::spawn_detached([l, serve] {
    while (!g_stop) {
      auto c = l->accept(slip::now_ns() + 100'000'000);
      if (!c) continue;
      rt::spawn_detached([serve, c = std::shared_ptr<net::TcpConn>(std::move(*c))] {
        {
          std::lock_guard g(g_open_lk);
          g_open.push_back(c.get());
        }
        serve(*c);
        std::lock_guard g(g_open_lk);
        g_open.erase(std::find(g_open.begin(), g_open.end(), c.get()));
      });
    }
  });
}

void echo_conn(net::TcpConn& c) {
  char buf[16384];
  for (;;) {
    auto n = c.read(buf, sizeof buf);
    if (!n || *n == 0 || !c.write_full(buf, *n)) return;
  }
}

// Answers every request on a connection with a fixed page (HTTP/1.1 keep-alive).
void http_conn(net::TcpConn& c) {
  static const std::string kBody = "hello from slipstream\n";
  static const std::string kResp = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                                   std::to_string(kBody.size()) + "\r\n\r\n" + kBody;
  std::string req;
  char buf[4096];
  for (;;) {
    auto n = c.read(buf, sizeof buf);
    if (!n || *n == 0) return;
    req.append(buf, *n);
    size_t end;
    while ((end = req.find("\r\n\r\n")) != std::string::npos) {
      req.erase(0, end + 4);
      if (!c.write_full(kResp.data(), kResp.size())) return;
    }
    if (req.size() > 65536) return;  // no request headers that long
  }
}

void serve_udp_echo(net::Stack& st, uint16_t port) {
  auto u = st.udp_bind(port);
  if (!u) return;
  auto s = std::shared_ptr<net::UdpConn>(std::move(*u));
  rt::spawn_detached([s] {
    char buf[2048];
    net::Endpoint from;
    while (!g_stop) {
      auto n = s->read_from(buf, sizeof buf, &from, slip::now_ns() + 100'000'000);
      if (n) (void)s->write_to(buf, *n, from);
    }
  });
}

// --rtc: echo run to completion, with no uthread in the path. TCP bytes are
// echoed from the kthread that received them; what the send buffer cannot
// take stays unconsumed (closing the peer's window) and is offered again once
// there is room.
net::TcpHandlers rtc_tcp_echo() {
  net::TcpHandlers h;
  h.on_data = [](net::TcpServiceConn& c, net::TcpRxBytes d) -> size_t {
    size_t took = 0;
    for (std::span<const uint8_t> run : {d.first, d.second}) {
      if (run.empty()) continue;
      auto r = c.send(run.data(), run.size());
      if (!r) {
        c.abort();
        return d.size();
      }
      took += *r;
      if (*r < run.size()) break;
    }
    return took;
  };
  return h;
}

void rtc_udp_echo(const uint8_t* p, size_t len, net::Endpoint from, net::UdpService& s) { (void)s.send(p, len, from); }

// Dials a TCP echo server, sends msg, and prints whether it came back.
// One dial and echo; says which kthread dialed and where the connection
// lives (on the slip stack: the queue its replies are steered to).
void dial_once(net::Stack& st, net::Endpoint to, const std::string& msg) {
  const int k = rt::kthread_index();
  auto c = st.tcp_dial(to, slip::now_ns() + 5'000'000'000);
  if (!c) {
    std::printf("dial %s: error %s\n", to.str().c_str(), c.message().c_str());
    std::fflush(stdout);
    return;
  }
  std::string got(msg.size(), '\0');
  const bool ok = (*c)->write_full(msg.data(), msg.size()) &&
                  (*c)->read_full(got.data(), got.size(), slip::now_ns() + 5'000'000'000) && got == msg;
  const net::TcpInfo i = (*c)->info();
  std::printf("dial %s: %s from kthread %d, connection on queue %d of kthread %d\n", to.str().c_str(),
              ok ? "echo ok" : "echo mismatch", k, i.queue, i.kthread);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"slip-netecho: Slipstream echo/HTTP host on a DPDK port"};
  std::string stack_s = "slip", vdev, port_name = "net_tap0", ip_s, gw_s, prefix = "slip-netecho", dial_s, dial_msg = "hello linux";
  std::string iok_socket;
  int prefix_len = 24;
  unsigned kthreads = 1, guaranteed = 1;
  uint16_t queues = 1, mtu = 0;
  uint16_t echo_port = 7, http_port = 80;
  double duration = 0;
  unsigned dial_count = 1;
  bool rtc = false, rx_interrupts = true, spin = false, follow_cpu_quota = true;
  double nic_poll_us = 100;
  app.add_option("--stack", stack_s, "slip (this project's stack on a DPDK port) or kernel (Linux sockets)")
      ->check(CLI::IsMember({"slip", "kernel"}));
  app.add_option("--vdev", vdev, "DPDK virtual device, e.g. net_tap0,iface=dtap0 (slip stack)");
  app.add_option("--port-name", port_name, "ethdev name of the port to use");
  app.add_option("--iokernel", iok_socket, "shared mode: attach to the iokerneld at this control socket (no --vdev)");
  app.add_option("--ip", ip_s, "this host's IPv4 address")->required();
  app.add_option("--prefix-len", prefix_len, "subnet prefix length")->check(CLI::Range(0, 32));
  app.add_option("--gateway", gw_s, "default gateway");
  app.add_option("--file-prefix", prefix, "DPDK --file-prefix (unique per process)");
  app.add_option("--kthreads", kthreads, "runtime kthreads")->check(CLI::Range(1, 64));
  app.add_option("--guaranteed-cores", guaranteed,
                 "shared mode: kthreads iokerneld always grants a core (the rest only under load)")
      ->check(CLI::Range(1, 64));
  app.add_option("--queues", queues, "the port's receive and transmit queues (direct mode); kthread i polls queue i "
                                     "and keeps its flows")
      ->check(CLI::Range(1, 16));
  app.add_option("--mtu", mtu, "the port's MTU, e.g. 9000 (direct mode; default: the PMD's)")->check(CLI::Range(576, 65000));
  app.add_option("--echo-port", echo_port, "UDP and TCP echo port");
  app.add_option("--http-port", http_port, "HTTP port");
  app.add_option("--dial", dial_s, "after start, dial this TCP echo server (IP:PORT) once");
  app.add_option("--dial-count", dial_count, "with --dial: dial this many times at once, spread over the kthreads")
      ->check(CLI::Range(1, 1024));
  app.add_option("--dial-message", dial_msg, "what --dial sends");
  app.add_option("--duration", duration, "seconds to run (0: until SIGTERM or SIGINT)");
  app.add_option("--nic-poll-us", nic_poll_us, "a port without receive interrupts: how often a parked kthread polls it")
      ->check(CLI::Range(1.0, 1e8));
  app.add_flag("!--no-rx-interrupts", rx_interrupts, "poll every --nic-poll-us even where the port has receive interrupts");
  app.add_flag("--spin", spin, "kthreads busy-poll and never park");
  app.add_flag("!--ignore-cpu-quota", follow_cpu_quota, "run all --kthreads even where the CPU quota allows fewer");
  app.add_flag("--rtc", rtc, "serve the UDP and TCP echo run to completion (udp_serve, tcp_serve), not from uthreads");
  CLI11_PARSE(app, argc, argv);

  const bool kernel = *net::parse_stack_kind(stack_s) == net::StackKind::kernel;
  if (!kernel && vdev.empty() == iok_socket.empty()) {
    std::fprintf(stderr, "error: --stack slip needs --vdev (a DPDK port of its own) or --iokernel (shared mode)\n");
    return 2;
  }
  if (!kernel && !vdev.empty() && !net::direct_mode_unavailable().empty()) {
    std::fprintf(stderr, "error: %s\n", std::string(net::direct_mode_unavailable()).c_str());
    return 2;
  }
  auto ip = net::Ipv4Addr::parse(ip_s);
  if (!ip) {
    std::fprintf(stderr, "error: --ip %s is not an IPv4 address\n", ip_s.c_str());
    return 2;
  }
  net::StackConfig sc;
  sc.ip = *ip;
  sc.prefix_len = static_cast<uint8_t>(prefix_len);
  sc.max_park_ns = static_cast<uint64_t>(nic_poll_us * 1000.0);
  if (!gw_s.empty()) {
    auto gw = net::Ipv4Addr::parse(gw_s);
    if (!gw) {
      std::fprintf(stderr, "error: --gateway %s is not an IPv4 address\n", gw_s.c_str());
      return 2;
    }
    sc.gateway = *gw;
  }
  std::optional<net::Endpoint> dial;
  if (!dial_s.empty() && !(dial = net::Endpoint::parse(dial_s))) {
    std::fprintf(stderr, "error: --dial %s is not IP:PORT\n", dial_s.c_str());
    return 2;
  }
  std::signal(SIGTERM, [](int) { g_stop = true; });
  std::signal(SIGINT, [](int) { g_stop = true; });
  std::signal(SIGUSR1, [](int) { g_report = true; });
  auto serve = [&](net::Stack& st, const std::string& where) {
    std::unique_ptr<net::UdpService> rtc_udp;
    std::unique_ptr<net::TcpService> rtc_tcp;  // both go before the stack does
    if (rtc) {
      auto u = st.udp_serve(echo_port, rtc_udp_echo);
      auto t = st.tcp_serve(echo_port, rtc_tcp_echo());
      if (!u || !t) {
        std::fprintf(stderr, "slip-netecho: run-to-completion echo on :%u: %s\n", echo_port,
                     (!u ? u.message() : t.message()).c_str());
        g_failed = true;
        return;
      }
      rtc_udp = std::move(*u);
      rtc_tcp = std::move(*t);
    } else {
      serve_udp_echo(st, echo_port);
      serve_tcp(st, echo_port, echo_conn);
    }
    serve_tcp(st, http_port, http_conn);
    std::printf("slip-netecho: %s on %s: udp+tcp echo :%u%s, http :%u; %s\n", ip->str().c_str(), where.c_str(),
                echo_port, rtc ? " (run to completion)" : "", http_port, rt::describe_cpu_limit().c_str());
    std::fflush(stdout);
    if (dial)
      for (unsigned i = 0; i < dial_count; i++)
        rt::spawn_detached_on(i, [&st, &dial, &dial_msg] { dial_once(st, *dial, dial_msg); });
    const uint64_t end = duration > 0 ? slip::now_ns() + static_cast<uint64_t>(duration * 1e9) : UINT64_MAX;
    while (!g_stop && slip::now_ns() < end) {
      if (g_report.exchange(false)) print_open_conns("on SIGUSR1");
      rt::sleep_for(std::chrono::milliseconds(20));
    }
    print_open_conns("at stop");
    g_stop = true;
    rt::sleep_for(std::chrono::milliseconds(150));  // let servers see the stop flag
    if (!kernel) abort_open_conns();
    for (int i = 0; i < 20 && open_conns() > 0; i++) rt::sleep_for(std::chrono::milliseconds(50));
    net::NetCounters c;
    st.counters(c);
    std::printf("slip-netecho: rx %lu frames, tx %lu frames, %lu receive-interrupt wake-ups, stopping\n",
                c.rx_frames.load(), c.tx_frames.load(), c.rx_wakeups.load());
    // What was lost on the way, for a test log to explain a stall with.
    std::printf("slip-netecho: drops:");
    for (size_t d = 0; d < static_cast<size_t>(net::Drop::kCount); d++) {
      const auto why = static_cast<net::Drop>(d);
      const std::string_view name = net::drop_name(why);
      if (uint64_t n = c.drops_of(why)) std::printf(" %.*s %lu", static_cast<int>(name.size()), name.data(), n);
    }
    std::printf(" (tx ring full %lu, waiting on ARP %lu)\n", c.tx_ring_full.load(), c.tx_arp_pending_drops.load());
    // Who handled each receive queue (the slip stack's per-core dataplane).
    const std::vector<net::QueueStats> qs = st.queue_stats();
    for (size_t q = 0; q < qs.size(); q++)
      std::printf("slip-netecho: queue %zu: kthread %u rx %lu stolen %lu bursts %lu sampled %lu concurrent %lu "
                  "from-other-queue %lu lock-waits %lu\n",
                  q, qs[q].owner_kthread, qs[q].rx_frames, qs[q].rx_stolen, qs[q].rx_bursts, qs[q].bursts_sampled,
                  qs[q].bursts_concurrent, qs[q].tcp_from_other_queue, qs[q].lock_waits);
    std::printf("slip-netecho: stack-wide locks on the receive path %lu\n", c.rx_stack_locks.load());
    std::printf("slip-netecho: sched %s\n", rt::describe(rt::sched_stats()).c_str());
  };
  rt::Config rc;
  rc.kthreads = kthreads;
  if (spin) rc.spinning_kthreads = kthreads;
  rc.follow_cpu_quota = follow_cpu_quota;
  try {
    net::NicChoice nc;
    nc.mode = kernel ? net::NicMode::kKernel : iok_socket.empty() ? net::NicMode::kDirect : net::NicMode::kShared;
    nc.vdev = vdev;
    nc.port_name = port_name;
    nc.queues = queues;
    nc.mtu = mtu;
    nc.rx_interrupts = rx_interrupts;
    nc.file_prefix = prefix;
    nc.shared.socket = iok_socket;
    nc.shared.ip = *ip;
    nc.shared.kthreads = kthreads;
    nc.shared.guaranteed_cores = static_cast<uint16_t>(std::min(guaranteed, kthreads));
    nc.shared.max_cores = static_cast<uint16_t>(
        std::max<unsigned>(rt::kthreads_allowed(rt::read_cpu_limit(), rc), nc.shared.guaranteed_cores));
    auto nic = net::open_nic(nc);
    const std::string where = kernel ? "linux sockets"
                              : (iok_socket.empty() ? port_name : "iokerneld " + iok_socket) + " (mac " +
                                    nic->nic()->caps().mac.str() + ")";
    rt::run(rc, [&] { serve(*nic->make_stack(sc), where); });
    if (const net::NicQueueStats qs = nic->queue_stats(); queues > 1 && !qs.rx_frames.empty()) {
      std::printf("slip-netecho: rx frames per queue:");
      for (uint64_t n : qs.rx_frames) std::printf(" %lu", n);
      std::printf("\nslip-netecho: tx frames per queue:");
      for (uint64_t n : qs.tx_frames) std::printf(" %lu", n);
      std::printf("\n");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return g_failed ? 1 : 0;
}
