#include "iokernel/daemon/stats.h"

#include <sys/socket.h>

#include <cerrno>

#include "iokernel/daemon/cores.h"
#include "iokernel/daemon/port.h"
#include "iokernel/daemon/runtimes.h"

namespace slip::iok {
namespace {

constexpr size_t kMaxClients = 16;
constexpr uint64_t kClientDeadlineNs = 1'000'000'000;

std::string state_name(uint32_t s) {
  switch (static_cast<KthreadState>(s)) {
    case KthreadState::kParked: return "parked";
    case KthreadState::kActive: return "active";
    case KthreadState::kRevoked: return "revoked";
  }
  return "unknown(" + std::to_string(s) + ")";
}

nlohmann::json drops_json(const DropCounters& d) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t i = 0; i < kDropReasons; i++) j[drop_name(static_cast<DropReason>(i))] = d.n[i];
  return j;
}

nlohmann::json runtime_json(const RuntimeEntry& e, uint64_t now_ns) {
  const RegisterMsg& m = e.attached.msg;
  nlohmann::json kthreads = nlohmann::json::array();
  for (uint32_t k = 0; k < e.attached.layout.n_kthreads; k++) {
    const KthreadShm& ks = e.kthread(k);
    const bool granted = ks.grant.load(std::memory_order_relaxed) == 1;
    const uint32_t cpu = ks.grant_cpu.load(std::memory_order_relaxed);
    kthreads.push_back({{"kthread", k},
                        {"rx_fill", e.ring(k, Ring::kRx).size()},
                        {"tx_fill", e.ring(k, Ring::kTx).size()},
                        {"completions_fill", e.ring(k, Ring::kCompletions).size()},
                        {"rx_return_fill", e.ring(k, Ring::kRxReturn).size()},
                        {"ring_slots", e.attached.layout.ring_slots},
                        {"state", state_name(ks.state.load(std::memory_order_relaxed))},
                        {"granted", granted},
                        {"cpu", granted && cpu != 0 ? nlohmann::json(cpu - 1) : nlohmann::json(nullptr)},
                        {"parks", ks.parks.load(std::memory_order_relaxed)}});
  }
  return {{"id", e.id},
          {"pid", e.cred.pid},
          {"uid", e.cred.uid},
          {"ip", ip_str(m.ip)},
          {"mac", mac_str(m.mac)},
          {"class", m.klass == static_cast<uint8_t>(Class::kBestEffort) ? "best-effort" : "latency-critical"},
          {"n_kthreads", m.n_kthreads},
          {"guaranteed_cores", m.guaranteed_cores},
          {"max_cores", m.max_cores},
          {"cores_granted", e.core_counters.granted},
          {"cores_active", e.core_counters.active},
          {"queue_delay_us", static_cast<double>(e.core_counters.delay_ns) / 1e3},
          {"core_grants", e.core_counters.grants},
          {"core_revokes", e.core_counters.revokes},
          {"core_yields", e.core_counters.yields},
          {"core_kicks", e.core_counters.kicks},
          {"delay_threshold_us", m.delay_threshold_us},
          {"region_bytes", m.region_size},
          {"attached_s", static_cast<double>(now_ns - e.attached_ns) / 1e9},
          {"rx_frames", e.counters.rx_frames},
          {"rx_dropped", e.counters.rx_dropped},
          {"tx_frames", e.counters.tx_frames},
          {"tx_local", e.counters.tx_local},
          {"rx_held", e.rx_held},
          {"rx_returned", e.counters.rx_returned},
          {"bad_returns", e.counters.bad_returns},
          {"unexpected_msgs", e.counters.unexpected_msgs},
          {"kthreads", std::move(kthreads)}};
}

}  // namespace

nlohmann::json stats_json(const DaemonInfo& d, const PortBackend* port, const RuntimeTable& t, uint64_t now_ns) {
  nlohmann::json doc;
  doc["daemon"] = {{"pid", d.pid},
                   {"uptime_s", static_cast<double>(now_ns - d.started_ns) / 1e9},
                   {"socket", d.socket},
                   {"stats_socket", d.stats_socket},
                   {"idle_backoff", d.idle_backoff},
                   {"stall_timeout_s", static_cast<double>(d.stall_timeout_ns) / 1e9},
                   {"attached_total", d.attached_total},
                   {"detached_total", d.detached_total},
                   {"refused_total", d.refused_total}};
  if (d.cores)
    doc["cores"] = {{"policy", d.cores->policy()},
                    {"capacity", d.cores->capacity()},
                    {"in_use", d.cores->in_use()},
                    {"interval_us", static_cast<double>(d.core_interval_ns) / 1e3},
                    {"passes", d.cores->passes()}};
  if (port) {
    const PortCounters c = port->counters();
    doc["port"] = {{"name", port->name()},       {"mac", port->mac()},          {"rx_frames", c.rx_frames},
                   {"tx_frames", c.tx_frames},   {"rx_dropped", c.rx_dropped},  {"tx_dropped", c.tx_dropped},
                   {"rx_missed", c.rx_missed},   {"rx_errors", c.rx_errors},    {"tx_errors", c.tx_errors},
                   {"local_frames", c.local_frames}, {"rx_pool_free", c.rx_pool_free},
                   {"drops", drops_json(c.drops)}};
  } else {
    doc["port"] = nullptr;
  }
  doc["runtimes"] = nlohmann::json::array();
  for (const auto& e : t.entries()) doc["runtimes"].push_back(runtime_json(*e, now_ns));
  return doc;
}

unsigned StatsServer::accept_all(const std::function<std::string()>& render, uint64_t now_ns) {
  unsigned n = 0;
  std::string doc;
  for (;;) {
    Fd c(accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!c) break;  // EAGAIN, or a connection that died before we got to it
    if (clients_.size() >= kMaxClients) continue;  // closed unanswered: iokernelctl says so
    if (n++ == 0) doc = render() + "\n";
    clients_.push_back({std::move(c), doc, 0, now_ns + kClientDeadlineNs});
  }
  return n + flush(now_ns);
}

unsigned StatsServer::flush(uint64_t now_ns) noexcept {
  unsigned n = 0;
  for (size_t i = 0; i < clients_.size();) {
    Client& c = clients_[i];
    const ssize_t w = send(c.fd.get(), c.out.data() + c.off, c.out.size() - c.off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      c.off += static_cast<size_t>(w);
      n++;
    }
    const bool again = w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    if (c.off == c.out.size() || (w < 0 && !again) || now_ns > c.deadline_ns) {
      clients_.erase(clients_.begin() + static_cast<ptrdiff_t>(i));
    } else {
      i++;
    }
  }
  return n;
}

}  // namespace slip::iok
