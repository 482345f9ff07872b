#include "engine.h"

#include <algorithm>
#include <mutex>

namespace slip::gateway::worker {

const char* finish_name(Finish f) {
  switch (f) {
    case Finish::stop: return "stop";
    case Finish::length: return "length";
    case Finish::none: return "none";
    default: return "abort";
  }
}

Engine::Engine(const Profile& p, EngineOptions o)
    : p_(p), o_(o), total_blocks_(o.kv_tokens / p.block_tokens), free_blocks_(total_blocks_) {
  st_.kv_blocks = total_blocks_;
}

Engine::~Engine() { stop(); }

void Engine::start() { thread_ = rt::spawn([this] { loop(); }); }

void Engine::stop() {
  {
    std::lock_guard g(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  thread_.join();
}

uint64_t Engine::real_ns(uint64_t sim_ns) const {
  return static_cast<uint64_t>(static_cast<double>(sim_ns) / o_.time_scale);
}

bool Engine::submit(const std::shared_ptr<SimRequest>& r) {
  if (blocks_for(uint64_t{r->prompt_tokens} + r->max_tokens) > total_blocks_) return false;
  std::lock_guard g(mu_);
  if (stop_) return false;
  st_.submitted++;
  waiting_.push_back(r);
  cv_.notify_all();
  return true;
}

void Engine::cancel(const std::shared_ptr<SimRequest>& r) {
  std::lock_guard g(mu_);
  if (auto it = std::find(waiting_.begin(), waiting_.end(), r); it != waiting_.end()) {
    waiting_.erase(it);
  } else if (auto jt = std::find(running_.begin(), running_.end(), r); jt != running_.end()) {
    release(**jt);
    running_.erase(jt);
  } else {
    return;  // already finished
  }
  st_.cancelled++;
  end(*r, Finish::cancelled);
}

bool Engine::stopping() {
  std::lock_guard g(mu_);
  return stop_;
}

EngineStats Engine::stats() {
  std::lock_guard g(mu_);
  EngineStats s = st_;
  s.running = running_.size();
  s.waiting = waiting_.size();
  s.kv_blocks_used = total_blocks_ - free_blocks_ - lru_.size();
  return s;
}

void Engine::end(SimRequest& r, Finish f) {
  std::lock_guard g(r.mu);
  r.finish = f;
  r.cv.notify_all();
}

void Engine::take_block() {
  if (free_blocks_ > 0) {
    free_blocks_--;
  } else {
    cache_.erase(lru_.front());  // evict the least recently used unreferenced block
    lru_.pop_front();
  }
}

// Admits r when its prompt and its whole output fit in the KV cache now
// (a reservation, so no request is ever preempted); sets uncached to the
// prompt tokens its prefill must compute.
bool Engine::try_admit(SimRequest& r, uint64_t& uncached) {
  size_t hits = 0, hits_idle = 0;
  for (uint64_t h : r.block_hashes) {
    auto it = cache_.find(h);
    if (it == cache_.end()) break;
    hits++;
    hits_idle += it->second.refs == 0;
  }
  const uint64_t need = blocks_for(uint64_t{r.prompt_tokens} + r.max_tokens) - hits;
  if (need > free_blocks_ + lru_.size() - hits_idle) return false;
  auto ref = [&](Block& b) {
    if (b.refs++ == 0) lru_.erase(b.lru);
  };
  for (size_t i = 0; i < r.block_hashes.size(); i++) {
    const uint64_t h = r.block_hashes[i];
    auto it = cache_.find(h);
    if (it != cache_.end()) {
      ref(it->second);
    } else {
      take_block();
      cache_[h].refs = 1;
    }
    r.held.push_back(h);
  }
  r.private_blocks = blocks_for(uint64_t{r.prompt_tokens} + r.max_tokens) - r.block_hashes.size();
  for (uint64_t i = 0; i < r.private_blocks; i++) take_block();
  const uint32_t cached = static_cast<uint32_t>(hits * p_.block_tokens);
  // Like vLLM, a fully cached prompt still computes its last token.
  uncached = std::max<uint64_t>(1, r.prompt_tokens - std::min(cached, r.prompt_tokens));
  st_.prefix_queries += r.prompt_tokens;
  st_.prefix_hits += std::min(cached, r.prompt_tokens);
  st_.prompt_tokens += r.prompt_tokens;
  std::lock_guard g(r.mu);
  r.cached_tokens = std::min(cached, r.prompt_tokens);
  return true;
}

void Engine::release(SimRequest& r) {
  free_blocks_ += r.private_blocks;
  r.private_blocks = 0;
  for (uint64_t h : r.held) {
    auto it = cache_.find(h);
    if (it == cache_.end() || it->second.refs == 0) continue;
    if (--it->second.refs == 0) it->second.lru = lru_.insert(lru_.end(), h);
  }
  r.held.clear();
}

void Engine::loop() {
  for (;;) {
    uint64_t step_ns = 0;
    {
      std::lock_guard g(mu_);
      cv_.wait(mu_, [&] { return stop_ || !waiting_.empty() || !running_.empty(); });
      if (stop_) break;
      uint64_t uncached = 0, admitted = 0;
      // Like vLLM's max_num_batched_tokens: one step prefills at most this many
      // tokens (but always admits one request, however long).
      while (!waiting_.empty() && running_.size() < o_.max_batch &&
             (admitted == 0 || uncached + waiting_.front()->prompt_tokens <= p_.max_batched_tokens)) {
        uint64_t u = 0;
        if (!try_admit(*waiting_.front(), u)) break;
        uncached += u;
        admitted++;
        running_.push_back(std::move(waiting_.front()));
        waiting_.pop_front();
      }
      if (admitted) {
        const uint64_t prefill = p_.prefill_ns(uncached);
        step_ns += prefill;
        st_.prefill_ns += prefill;
      }
      step_ns += p_.decode_ns(running_.size());
      st_.max_running = std::max<uint64_t>(st_.max_running, running_.size());
    }
    std::lock_guard g(mu_);
    // Sleeps out the step; stop() cuts it short.
    const uint64_t until = now_ns() + real_ns(step_ns);
    while (!stop_ && now_ns() < until) cv_.wait_until(mu_, until);
    if (stop_) break;
    st_.steps++;
    // Requests cancelled during the step have left running_ and get nothing.
    for (size_t i = 0; i < running_.size();) {
      SimRequest& r = *running_[i];
      Finish f = Finish::none;
      {
        std::lock_guard rg(r.mu);
        r.produced++;
        if (r.produced >= r.max_tokens) f = Finish::length;
        else if (r.produced >= r.eos_after) f = Finish::stop;
        if (f == Finish::none) r.cv.notify_all();
      }
      st_.generation_tokens++;
      if (f == Finish::none) {
        i++;
        continue;
      }
      (f == Finish::length ? st_.finished_length : st_.finished_stop)++;
      release(r);
      end(r, f);
      running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
  std::lock_guard g(mu_);  // stopping: whatever is left is aborted
  for (auto& r : running_) {
    st_.aborted++;
    release(*r);
    end(*r, Finish::aborted);
  }
  running_.clear();
  for (auto& r : waiting_) {
    st_.aborted++;
    end(*r, Finish::aborted);
  }
  waiting_.clear();
}

}  // namespace slip::gateway::worker
