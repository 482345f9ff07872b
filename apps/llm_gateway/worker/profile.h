// The timing and capacity model of a simulated inference engine, read from a
// TOML profile (apps/llm_gateway/profiles/*.toml documents the fields).
#pragma once

#include <cstdint>
#include <string>

namespace slip::gateway::worker {

struct Profile {
  std::string model = "meta-llama/Meta-Llama-3-8B-Instruct";
  uint32_t max_model_len = 8192;
  double prefill_base_ms = 5.0, prefill_per_token_ms = 0.035;
  double decode_base_ms = 7.0, decode_per_seq_ms = 0.06;
  uint32_t max_batch = 256;
  uint64_t max_batched_tokens = 8192;  // prompt tokens one step may prefill
  uint64_t kv_tokens = 800000;
  uint32_t block_tokens = 16;
  uint32_t min_output_tokens = 16, max_output_tokens = 512;

  // Simulated nanoseconds of one prefill pass over `tokens` uncached prompt tokens.
  uint64_t prefill_ns(uint64_t tokens) const {
    return static_cast<uint64_t>((prefill_base_ms + prefill_per_token_ms * static_cast<double>(tokens)) * 1e6);
  }
  uint64_t decode_ns(uint64_t batch) const {
    return static_cast<uint64_t>((decode_base_ms + decode_per_seq_ms * static_cast<double>(batch)) * 1e6);
  }
};

// Reads a profile; fields it does not set keep the defaults above. Setup:
// throws std::runtime_error naming the file, line and column, or the bad field.
Profile load_profile(const std::string& path);

}  // namespace slip::gateway::worker
