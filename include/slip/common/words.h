// Common English words, short and one token each in the usual tokenizers:
// the vocabulary of slip-loadgen's prompts and slip-worker's simulated output.
#pragma once

#include <array>
#include <string_view>

namespace slip {

inline constexpr std::array<std::string_view, 64> kCommonWords = {
    "the",   "of",    "and",   "to",    "in",    "is",    "you",   "that",  "it",    "he",    "was",
    "for",   "on",    "are",   "as",    "with",  "his",   "they",  "at",    "be",    "this",  "have",
    "from",  "or",    "one",   "had",   "by",    "word",  "but",   "not",   "what",  "all",   "were",
    "we",    "when",  "your",  "can",   "said",  "there", "use",   "an",    "each",  "which", "she",
    "do",    "how",   "their", "if",    "will",  "up",    "other", "about", "out",   "many",  "then",
    "them",  "these", "so",    "some",  "her",   "would", "make",  "like",  "time"};

}  // namespace slip
