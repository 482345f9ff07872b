// Active health checks: a uthread probes each worker's GET /health every
// interval (an ejected worker once its backoff has passed) and reports the
// outcome to the Pool, which ejects and readmits.
#pragma once

#include <atomic>

#include "pool.h"
#include "upstream.h"

namespace slip::gateway {

// Runs until stop is set; interval and timeout come from cfg() at each round.
void run_health_checks(Pool& pool, Transport& t, const std::atomic<bool>& stop,
                       const std::function<std::shared_ptr<const GatewayConfig>()>& cfg);

}  // namespace slip::gateway
