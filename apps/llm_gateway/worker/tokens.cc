#include "tokens.h"

#include <xxhash.h>

#include <array>

#include "slip/common/words.h"

namespace slip::gateway::worker {
namespace {

uint64_t hash(const void* p, size_t n, uint64_t seed) { return XXH3_64bits_withSeed(p, n, seed); }

}  // namespace

void tokenize(std::string_view text, std::vector<uint64_t>& out) {
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) i++;
    size_t j = i;
    while (j < text.size() && !(text[j] == ' ' || text[j] == '\t' || text[j] == '\n' || text[j] == '\r')) j++;
    for (size_t k = i; k < j; k += 8) out.push_back(hash(text.data() + k, std::min<size_t>(8, j - k), k == i));
    i = j;
  }
}

uint64_t special_token(std::string_view name) { return hash(name.data(), name.size(), 0x5eed5eed); }

std::vector<uint64_t> block_hashes(const std::vector<uint64_t>& tokens, uint32_t block) {
  std::vector<uint64_t> out;
  uint64_t prev = 0;
  for (size_t i = 0; i + block <= tokens.size(); i += block) {
    prev = hash(tokens.data() + i, block * sizeof(uint64_t), prev);
    out.push_back(prev);
  }
  return out;
}

uint64_t output_seed(const std::vector<uint64_t>& tokens, uint64_t seed) {
  return hash(tokens.data(), tokens.size() * sizeof(uint64_t), seed);
}

std::string output_token(uint64_t out_seed, uint32_t i) {
  const std::string_view w = kCommonWords[hash(&i, sizeof i, out_seed) % kCommonWords.size()];
  std::string s;
  if (i > 0) s.push_back(' ');
  s.append(w);
  return s;
}

}  // namespace slip::gateway::worker
