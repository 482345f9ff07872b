#include "profile.h"

#include <sstream>
#include <stdexcept>
#include <toml++/toml.h>

namespace slip::gateway::worker {
namespace {

// Sets out from table[key] when present; throws when it has the wrong type or sign.
template <class T>
void get(const toml::table& t, std::string_view section, std::string_view key, T& out, const std::string& path) {
  const toml::node* n = t.at_path(std::string(section) + "." + std::string(key)).node();
  if (!n) return;
  const std::string where = path + ": [" + std::string(section) + "] " + std::string(key);
  if constexpr (std::is_same_v<T, std::string>) {
    if (!n->is_string()) throw std::runtime_error(where + " must be a string");
    out = *n->value<std::string>();
  } else if constexpr (std::is_floating_point_v<T>) {
    auto v = n->value<double>();
    if (!v || *v < 0) throw std::runtime_error(where + " must be a non-negative number");
    out = *v;
  } else {
    auto v = n->value<int64_t>();
    if (!v || *v < 0) throw std::runtime_error(where + " must be a non-negative integer");
    out = static_cast<T>(*v);
  }
}

}  // namespace

Profile load_profile(const std::string& path) {
  toml::table t;
  try {
    t = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::ostringstream m;
    m << path << ":" << e.source().begin.line << ":" << e.source().begin.column << ": " << e.description();
    throw std::runtime_error(m.str());
  }
  Profile p;
  get(t, "model", "name", p.model, path);
  get(t, "model", "max_model_len", p.max_model_len, path);
  get(t, "prefill", "base_ms", p.prefill_base_ms, path);
  get(t, "prefill", "per_token_ms", p.prefill_per_token_ms, path);
  get(t, "decode", "base_ms", p.decode_base_ms, path);
  get(t, "decode", "per_seq_ms", p.decode_per_seq_ms, path);
  get(t, "engine", "max_batch", p.max_batch, path);
  get(t, "engine", "max_batched_tokens", p.max_batched_tokens, path);
  get(t, "engine", "kv_tokens", p.kv_tokens, path);
  get(t, "engine", "block_tokens", p.block_tokens, path);
  get(t, "output", "min_tokens", p.min_output_tokens, path);
  get(t, "output", "max_tokens", p.max_output_tokens, path);
  if (p.block_tokens == 0 || p.max_batch == 0 || p.max_model_len == 0)
    throw std::runtime_error(path + ": block_tokens, max_batch and max_model_len must be positive");
  if (p.min_output_tokens == 0 || p.min_output_tokens > p.max_output_tokens)
    throw std::runtime_error(path + ": [output] needs 1 <= min_tokens <= max_tokens");
  return p;
}

}  // namespace slip::gateway::worker
