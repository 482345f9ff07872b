// The child processes of slip-bench-net. The server echoes UDP and TCP and
// sinks TCP bulk data; the client measures one case and writes one JSON line to
// its status fd. Both run the same code over either stack: only how the Stack
// is made differs (DPDK net_memif + make_slip_stack, or make_kernel_stack).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "net_bench.h"
#include "slip/net/dpdk.h"
#include "slip/net/stack.h"
#include "slip/runtime/runtime.h"

namespace slip::bench {
namespace {

namespace net = slip::net;
using Json = nlohmann::json;

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kLinkUpNs = 15'000 * kMs;  // memif connect + ARP, both ways
constexpr uint64_t kOpNs = 2'000 * kMs;       // one TCP request or reply

// A failed step: its text goes into the result line, so the driver can name it.
struct Failure {
  std::string what;
};

void send_status(int fd, const Json& j) {
  const std::string s = j.dump() + "\n";
  for (size_t off = 0; off < s.size();) {
    const ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return;  // the driver is gone or gave up; nobody is left to tell
    off += static_cast<size_t>(n);
  }
}

template <class T>
T& check(Result<T>& r, const std::string& what) {
  if (!r) throw Failure{what + ": " + r.message()};
  return *r;
}

// ---- server ---------------------------------------------------------------

void echo_conn(net::TcpConn& c) {
  std::vector<char> buf(kBulkChunk);
  for (;;) {
    auto n = c.read(buf.data(), buf.size());
    if (!n || *n == 0 || !c.write_full(buf.data(), *n)) break;
  }
  c.close();
}

// Discards everything, then answers the sender's FIN with one byte, so the
// client's clock stops only when every byte has arrived here.
void sink_conn(net::TcpConn& c) {
  std::vector<char> buf(kBulkChunk);
  for (;;) {
    auto n = c.read(buf.data(), buf.size());
    if (!n) return c.abort();
    if (*n == 0) break;
  }
  const char done = 'k';
  (void)c.write_full(&done, 1);
  c.close();
}

// Each connection is served on the kthread its segments arrive on (the slip
// stack says which; Linux sockets have no such place).
template <class Serve>
void accept_loop(net::Stack& st, uint16_t port, Serve serve) {
  auto lis = st.tcp_listen(port);
  auto l = std::shared_ptr<net::TcpListener>(std::move(check(lis, "listen on tcp/" + std::to_string(port))));
  rt::spawn_detached([l, serve] {
    for (;;) {
      auto c = l->accept();
      if (!c) continue;
      auto conn = std::shared_ptr<net::TcpConn>(std::move(*c));
      const int home = conn->info().kthread;
      auto run = [serve, conn] { serve(*conn); };
      if (home >= 0) rt::spawn_detached_on(static_cast<unsigned>(home), std::move(run));
      else rt::spawn_detached(std::move(run));
    }
  });
}

// Serves until the driver sends SIGTERM (default action: the process ends).
void run_server(net::Stack& st, int status_fd) {
  auto u = st.udp_bind(kUdpEchoPort);
  auto udp = std::shared_ptr<net::UdpConn>(std::move(check(u, "bind udp/7000")));
  rt::spawn_detached([udp] {
    std::vector<char> buf(2048);
    net::Endpoint from;
    for (;;) {
      auto n = udp->read_from(buf.data(), buf.size(), &from);
      if (n) (void)udp->write_to(buf.data(), *n, from);
    }
  });
  // Run to completion: the echo is sent from the receive path itself.
  auto rtc = st.udp_serve(kUdpRtcPort, [](const uint8_t* p, size_t len, net::Endpoint from,
                                           net::UdpService& s) { (void)s.send(p, len, from); });
  check(rtc, "udp_serve on udp/7003");  // lives as long as this loop: until SIGTERM
  accept_loop(st, kTcpEchoPort, echo_conn);
  accept_loop(st, kTcpSinkPort, sink_conn);
  send_status(status_fd, Json{{"ready", true}});
  for (;;) rt::sleep_for(std::chrono::seconds(1));
}

// ---- client ---------------------------------------------------------------

// One UDP round trip of out, whose first 8 bytes carry seq: a reply with another
// seq is a late one from an earlier, timed-out request and is skipped.
// Returns the round trip in ns, or nullopt when the reply did not come in time.
std::optional<uint64_t> udp_round_trip(net::UdpConn& u, net::Endpoint srv, std::vector<char>& out,
                                       std::vector<char>& in, uint64_t seq, uint64_t timeout_ns) {
  std::memcpy(out.data(), &seq, sizeof seq);
  const uint64_t t0 = now_ns();
  auto w = u.write_to(out.data(), out.size(), srv);
  if (!w && w.error() != EHOSTUNREACH && w.error() != EAGAIN && w.error() != ENOBUFS)
    throw Failure{"udp write_to: " + w.message()};
  for (;;) {
    auto n = u.read_from(in.data(), in.size(), nullptr, t0 + timeout_ns);
    if (!n) {
      if (n.error() == ETIMEDOUT) return std::nullopt;
      throw Failure{"udp read_from: " + n.message()};
    }
    uint64_t got = 0;
    if (*n >= sizeof got) std::memcpy(&got, in.data(), sizeof got);
    if (got != seq) continue;
    if (*n != out.size()) throw Failure{"udp echo of " + std::to_string(*n) + " bytes, sent " + std::to_string(out.size())};
    return now_ns() - t0;
  }
}

// Waits until the server answers over UDP: the memif link is up and ARP has
// resolved both ways (a no-op formality on loopback).
void wait_reachable(net::Stack& st, net::Ipv4Addr peer) {
  auto u = st.udp_bind(0);
  auto& conn = check(u, "bind udp");
  std::vector<char> out(64, 'p'), in(2048);
  const uint64_t end = now_ns() + kLinkUpNs;
  for (uint64_t seq = 1; now_ns() < end; seq++)
    if (udp_round_trip(*conn, {peer, kUdpEchoPort}, out, in, seq, 100 * kMs)) return;
  throw Failure{"server " + peer.str() + " did not answer UDP within 15 s (link or ARP never came up)"};
}

std::unique_ptr<net::TcpConn> dial(net::Stack& st, net::Endpoint to) {
  auto c = st.tcp_dial(to, now_ns() + kLinkUpNs);
  return std::move(check(c, "tcp_dial " + to.str()));
}

Json percentiles(std::vector<uint64_t> v) {
  std::sort(v.begin(), v.end());
  // Nearest rank: the smallest sample with at least q of all samples at or below it.
  auto at = [&](double q) {
    const auto rank = static_cast<size_t>(q * static_cast<double>(v.size()) + 0.999999);
    return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
  };
  return Json{{"p50_ns", at(0.50)}, {"p99_ns", at(0.99)}, {"p999_ns", at(0.999)}, {"samples", v.size()}};
}

Json client_rtt(net::Stack& st, const ChildArgs& a, const NetCaseSpec& c, net::Ipv4Addr peer) {
  std::vector<char> out(c.payload, 'x'), in(c.payload + 64);
  std::vector<uint64_t> samples;
  samples.reserve(a.samples);
  const uint64_t total = a.warmup + a.samples;
  if (!c.tcp) {
    auto u = st.udp_bind(0);
    auto& conn = check(u, "bind udp");
    uint64_t lost = 0;
    for (uint64_t i = 0, seq = 1000; i < total; seq++) {
      auto ns = udp_round_trip(*conn, {peer, c.rtc ? kUdpRtcPort : kUdpEchoPort}, out, in, seq, 200 * kMs);
      if (!ns) {
        // Loss is not expected on either path; a few are tolerated, a lossy path is a failure.
        if (++lost > 100) throw Failure{"more than 100 UDP requests lost"};
        continue;
      }
      if (i++ >= a.warmup) samples.push_back(*ns);
    }
    return percentiles(std::move(samples));
  }
  auto conn = dial(st, {peer, kTcpEchoPort});
  for (uint64_t i = 0; i < total; i++) {
    const uint64_t t0 = now_ns();
    auto w = conn->write_full(out.data(), out.size(), t0 + kOpNs);
    check(w, "tcp write");
    auto r = conn->read_full(in.data(), out.size(), t0 + kOpNs);
    check(r, "tcp read of the echo");
    if (i >= a.warmup) samples.push_back(now_ns() - t0);
  }
  conn->close();
  return percentiles(std::move(samples));
}

// Many concurrent flows, closed loop, each a uthread started on kthread
// i % kthreads: a quarter of the window warms up, the rest is measured.
// Round trips per second over the measured part, and the latencies in it.
Json client_flows(net::Stack& st, const ChildArgs& a, const NetCaseSpec& c, net::Ipv4Addr peer) {
  struct Flow {
    std::vector<uint64_t> samples;
    std::string error;
  };
  std::vector<Flow> flows(c.flows);
  std::atomic<int> phase{0}, connected{0};  // 0 warm-up, 1 measured, 2 stop
  std::vector<rt::JoinHandle> hs;
  for (unsigned i = 0; i < c.flows; i++)
    hs.push_back(rt::spawn_on(i % c.kthreads, [&, i] {
      Flow& f = flows[i];
      f.samples.reserve(1 << 16);
      auto conn = st.tcp_dial({peer, kTcpEchoPort}, now_ns() + kLinkUpNs);
      if (!conn) {
        f.error = "tcp_dial: " + conn.message();
        connected++;
        return;
      }
      connected++;
      std::vector<char> out(c.payload, 'x'), in(c.payload);
      while (phase.load(std::memory_order_relaxed) != 2) {
        const uint64_t t0 = now_ns();
        if (!(*conn)->write_full(out.data(), out.size(), t0 + kOpNs) ||
            !(*conn)->read_full(in.data(), in.size(), t0 + kOpNs)) {
          f.error = "a round trip failed or took over 2 s";
          break;
        }
        if (phase.load(std::memory_order_relaxed) == 1) f.samples.push_back(now_ns() - t0);
      }
      (*conn)->close();
    }));
  const uint64_t dial_end = now_ns() + kLinkUpNs;
  while (connected.load() < static_cast<int>(c.flows) && now_ns() < dial_end) rt::sleep_for(std::chrono::milliseconds(1));
  const auto window = std::chrono::nanoseconds(static_cast<uint64_t>(a.window_seconds * 1e9));
  rt::sleep_for(window / 4);
  phase = 1;
  const uint64_t t0 = now_ns();
  rt::sleep_for(window - window / 4);
  phase = 2;
  const uint64_t elapsed = now_ns() - t0;
  for (auto& h : hs) h.join();
  std::vector<uint64_t> all;
  for (const Flow& f : flows) {
    if (!f.error.empty()) throw Failure{f.error};
    all.insert(all.end(), f.samples.begin(), f.samples.end());
  }
  if (all.empty()) throw Failure{"no round trip completed in the measured window"};
  Json out = percentiles(std::move(all));
  out["rps"] = static_cast<double>(out["samples"].get<uint64_t>()) * 1e9 / static_cast<double>(elapsed);
  out["flows"] = c.flows;
  out["kthreads"] = c.kthreads;
  // The client's receive queues (slip only): who handled them, what crossed.
  for (const net::QueueStats& q : st.queue_stats())
    out["client_queues"].push_back(Json{{"kthread", q.owner_kthread}, {"rx_frames", q.rx_frames},
                                        {"rx_stolen", q.rx_stolen}, {"bursts", q.rx_bursts},
                                        {"bursts_sampled", q.bursts_sampled}, {"bursts_concurrent", q.bursts_concurrent},
                                        {"tcp_from_other_queue", q.tcp_from_other_queue}, {"lock_waits", q.lock_waits}});
  return out;
}

// One transfer per repetition on a fresh connection; the median goes back.
Json client_bulk(net::Stack& st, const ChildArgs& a, net::Ipv4Addr peer) {
  std::vector<char> chunk(kBulkChunk, 'b');
  std::vector<double> gbps;
  for (unsigned r = 0; r < a.bulk_reps; r++) {
    auto conn = dial(st, {peer, kTcpSinkPort});
    const uint64_t t0 = now_ns(), stop = t0 + static_cast<uint64_t>(a.bulk_seconds * 1e9);
    uint64_t bytes = 0;
    while (now_ns() < stop) {
      auto w = conn->write_full(chunk.data(), chunk.size(), now_ns() + kOpNs);
      bytes += check(w, "tcp bulk write");
    }
    conn->shutdown();
    char done = 0;
    auto r1 = conn->read_full(&done, 1, now_ns() + 10'000 * kMs);
    check(r1, "tcp bulk: the sink's reply after FIN");
    gbps.push_back(static_cast<double>(bytes) * 8 / static_cast<double>(now_ns() - t0));
    conn->close();
  }
  std::sort(gbps.begin(), gbps.end());
  const size_t n = gbps.size();
  Json out{{"gbps", n % 2 ? gbps[n / 2] : (gbps[n / 2 - 1] + gbps[n / 2]) / 2}, {"runs", gbps}};
  net::NetCounters c;
  st.counters(c);
  if (c.tx_frames.load() > 0) {  // the slip stack: how its data segments left (the kernel keeps no such count)
    out["tx_segs_by_ref"] = c.tx_tcp_by_ref.load();
    out["tx_segs_copied"] = c.tx_tcp_copied.load();
    out["tx_ring_full"] = c.tx_ring_full.load();  // frames the NIC refused (TCP sends them again)
  }
  return out;
}

Json run_client(net::Stack& st, const ChildArgs& a) {
  const auto it = std::find_if(kNetCases.begin(), kNetCases.end(),
                               [&](const NetCaseSpec& c) { return a.case_name == c.name; });
  if (it == kNetCases.end()) throw Failure{"unknown case " + a.case_name};
  const auto peer = net::Ipv4Addr::parse(a.peer);
  if (!peer) throw Failure{"--peer " + a.peer + " is not an IPv4 address"};
  wait_reachable(st, *peer);
  if (it->bulk) return client_bulk(st, a, *peer);
  return it->flows > 1 ? client_flows(st, a, *it, *peer) : client_rtt(st, a, *it, *peer);
}

void run_role(net::Stack& st, const ChildArgs& a) {
  if (a.role == "server") return run_server(st, a.status_fd);
  send_status(a.status_fd, run_client(st, a));
}

}  // namespace

void net_child_main(const ChildArgs& a) {
  std::signal(SIGPIPE, SIG_IGN);  // a peer that goes away is an error result, not a silent death
  net::StackConfig sc;
  // ARP retries often and for long: the memif link comes up some time after start.
  sc.arp_retry_ns = 20 * kMs;
  sc.arp_max_retries = 500;
  // Kthreads that busy-poll and never park, on both stacks, so a request
  // never waits for a wake-up. With one each, the driver gives each process
  // its own core; with more, both processes get every CPU and kthread i of
  // each is pinned to the i-th (spinning kthreads that share a CPU give way
  // to each other when idle: kSpinYieldAfterNs).
  const auto spec = std::find_if(kNetCases.begin(), kNetCases.end(),
                                 [&](const NetCaseSpec& c) { return a.case_name == c.name; });
  const unsigned kthreads = spec != kNetCases.end() ? spec->kthreads : 1;
  rt::Config rc;
  rc.kthreads = kthreads;
  rc.spinning_kthreads = kthreads;
  Json result;
  try {
    const auto ip = net::Ipv4Addr::parse(a.ip);
    if (!ip) throw Failure{"--ip " + a.ip + " is not an IPv4 address"};
    sc.ip = *ip;
    std::unique_ptr<net::DpdkPort> port;
    if (a.stack == "slip") {
      // Hugepages when free (tools/setup --hugepages 512), as a deployment
      // would; --in-memory leaves no hugepage files behind a killed child.
      net::EalPortSpec spec;
      spec.vdev = a.vdev;
      spec.file_prefix = a.file_prefix;
      spec.extra = {"--no-telemetry", net::free_hugepages() > 0 ? "--in-memory" : "--no-shconf"};
      net::eal_init(net::eal_args_for_port(spec).args);
      net::DpdkPortConfig pc;
      pc.name = "net_memif0";
      pc.rx_queues = pc.tx_queues = static_cast<uint16_t>(kthreads);  // a queue per kthread
      port = std::make_unique<net::DpdkPort>(pc);
    }
    rt::run(rc, [&] {
      try {
        std::unique_ptr<net::Stack> st;
        if (port) {
          net::register_thread();  // the one kthread allocates from the port's pool: give it the lcore cache
          st = net::make_slip_stack(*port, sc);
        } else {
          st = net::make_kernel_stack(sc);
        }
        run_role(*st, a);
      } catch (const Failure& f) {
        result = Json{{"error", f.what}};
      } catch (const std::exception& e) {
        result = Json{{"error", e.what()}};
      }
    });
  } catch (const Failure& f) {
    result = Json{{"error", f.what}};
  } catch (const std::exception& e) {
    result = Json{{"error", e.what()}};
  }
  if (!result.is_null()) {
    std::fprintf(stderr, "slip-bench-net %s/%s: %s\n", a.role.c_str(), a.stack.c_str(),
                 result["error"].get<std::string>().c_str());
    send_status(a.status_fd, result);
  }
  std::fflush(stdout);
  std::fflush(stderr);
  // _exit, not return: abandoned uthreads still hold connections and buffers
  // of the port, and nothing left in this process needs tearing down.
  ::_exit(result.is_null() ? 0 : 1);
}

}  // namespace slip::bench
