// The simulated inference engine of slip-worker: continuous batching as vLLM
// does it, on simulated time. One engine uthread runs steps; each step admits
// waiting requests that fit (batch and KV-cache room), spends their prefill
// time (base + per uncached prompt token), then one decode step for the whole
// running batch (base + per sequence), which gives every running request one
// token. A prefix cache of hashed 16-token prompt blocks lets repeated
// prompt prefixes skip their prefill. This is a simulator: no model runs.
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "profile.h"
#include "slip/runtime/runtime.h"
#include "slip/runtime/sync.h"

namespace slip::gateway::worker {

enum class Finish { none, stop, length, cancelled, aborted };
const char* finish_name(Finish f);  // "stop", "length", "abort" (cancelled and aborted)

// One generation. The submitter fills the inputs; the engine fills progress
// under mu and signals cv on each token and at the end.
struct SimRequest {
  std::vector<uint64_t> block_hashes;  // chained hashes of the full prompt blocks
  uint32_t prompt_tokens = 0;
  uint32_t max_tokens = 0;   // the limit asked for ("length")
  uint32_t eos_after = 0;    // the simulated end of sequence ("stop") when smaller

  rt::Mutex mu;
  rt::CondVar cv;
  uint32_t produced = 0;       // tokens generated so far
  uint32_t cached_tokens = 0;  // prompt tokens served from the prefix cache
  Finish finish = Finish::none;

  // Engine-owned KV-cache holdings.
  std::vector<uint64_t> held;  // cache blocks referenced
  uint64_t private_blocks = 0;
};

struct EngineOptions {
  uint32_t max_batch = 256;
  uint64_t kv_tokens = 800000;
  double time_scale = 1.0;  // simulated seconds per real second
};

// A snapshot for /metrics.
struct EngineStats {
  uint64_t submitted = 0, finished_stop = 0, finished_length = 0, cancelled = 0, aborted = 0;
  uint64_t prompt_tokens = 0, generation_tokens = 0, prefix_queries = 0, prefix_hits = 0, steps = 0;
  uint64_t running = 0, waiting = 0, max_running = 0, kv_blocks = 0, kv_blocks_used = 0;
  uint64_t prefill_ns = 0;  // simulated time spent in prefill, summed over steps
};

class Engine {
 public:
  Engine(const Profile& p, EngineOptions o);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  void start();
  // Ends the loop; requests still in it finish as aborted.
  void stop();
  // False when the request could never fit in the KV cache.
  bool submit(const std::shared_ptr<SimRequest>& r);
  // Takes the request out of the queue or the batch now (the client left).
  void cancel(const std::shared_ptr<SimRequest>& r);
  EngineStats stats();
  bool stopping();
  uint64_t blocks_for(uint64_t tokens) const { return (tokens + p_.block_tokens - 1) / p_.block_tokens; }

 private:
  void loop();
  bool try_admit(SimRequest& r, uint64_t& uncached);
  void take_block();
  void release(SimRequest& r);
  void end(SimRequest& r, Finish f);
  uint64_t real_ns(uint64_t sim_ns) const;

  const Profile p_;
  const EngineOptions o_;
  rt::Mutex mu_;
  rt::CondVar cv_;
  bool stop_ = false;
  std::deque<std::shared_ptr<SimRequest>> waiting_;
  std::vector<std::shared_ptr<SimRequest>> running_;
  struct Block {
    uint32_t refs = 0;
    std::list<uint64_t>::iterator lru;  // valid while refs == 0
  };
  const uint64_t total_blocks_;
  uint64_t free_blocks_;
  std::unordered_map<uint64_t, Block> cache_;
  std::list<uint64_t> lru_;  // unreferenced cached blocks, oldest first (evicted first)
  EngineStats st_;
  rt::JoinHandle thread_;
};

}  // namespace slip::gateway::worker
