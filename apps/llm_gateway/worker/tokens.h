// The simulator's stand-in for a tokenizer and a model's output: about one
// token per word of the prompt, chained hashes of 16-token blocks for the
// prefix cache, and deterministic output words from a seed and the prompt.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace slip::gateway::worker {

// Appends the token ids of text: one per whitespace-separated word, plus one
// per further 8 bytes of a long word (roughly what BPE tokenizers do).
void tokenize(std::string_view text, std::vector<uint64_t>& out);
// One id for a template marker (chat roles, BOS), distinct from word ids.
uint64_t special_token(std::string_view name);
// Hashes of the full `block` sized blocks of tokens, each chained to the one before.
std::vector<uint64_t> block_hashes(const std::vector<uint64_t>& tokens, uint32_t block);
// A seed that identifies the request's output: the same prompt and seed give the same words.
uint64_t output_seed(const std::vector<uint64_t>& tokens, uint64_t seed);
// Output token i as text: a word, with a leading space after the first.
std::string output_token(uint64_t out_seed, uint32_t i);

}  // namespace slip::gateway::worker
