// slip-loadgen's engine: connections, the open- or closed-loop schedule, and
// the statistics. Latency is measured from each request's intended send time
// (its slot in the arrival schedule), so a generator or server that falls
// behind shows up in the numbers instead of slowing the schedule down
// (no coordinated omission).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "protocol.h"
#include "slip/common/dist.h"
#include "slip/common/histogram.h"
#include "slip/net/stack.h"

namespace slip::loadgen {

enum class Mode { open, closed };

struct LoadConfig {
  std::vector<net::Endpoint> servers;  // connection i goes to servers[i % size]
  const ProtocolInfo* proto = nullptr;
  ProtocolConfig pcfg;
  Mode mode = Mode::open;
  double rate = 1000;                                  // open loop: requests/s over all connections
  Distribution arrival = Distribution::exponential(1);  // gap shape; scaled to the rate
  uint32_t conns = 1;
  uint32_t depth = 1;                                  // closed loop: outstanding per connection
  double duration_s = 5, warmup_s = 1;
  double timeout_s = 1;                                // a later response counts as a timeout
  double connect_timeout_s = 3;
  uint64_t seed = 1;
  uint32_t max_outstanding = 65536;                    // per connection; more are dropped, not sent
  double progress_s = 1;                               // 0: no progress line
  double slo_ttft_ms = 0, slo_tpot_ms = 0;             // sse goodput SLOs; 0: not applied
};

struct Counts {
  uint64_t scheduled = 0;  // intended sends inside the measured window
  uint64_t sent = 0, completed = 0, ok = 0, miss = 0, error = 0;
  uint64_t timeouts = 0, dropped = 0, conn_errors = 0, parse_errors = 0;
  uint64_t goodput = 0;    // sse: completed ok within both SLOs
};

struct LoadResult {
  Counts counts;
  double measured_s = 0;   // length of the measured window
  Histogram latency, send_lag;
  Histogram ttft, itl, tpot, e2e;  // streaming protocols
};

// Thrown for a setup failure (cannot connect, no answer): what() is the message for the user.
class LoadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Runs one load step on stack; call inside slip::rt::run(). Throws LoadError
// when the server cannot be reached within connect_timeout_s.
LoadResult run_load(net::Stack& stack, const LoadConfig& cfg);

}  // namespace slip::loadgen
