// A per-worker radix tree of recent prompt prefixes, for cache-aware routing:
// it approximates which prompts a worker's prefix cache still holds (the
// worker evicts least-recently-used blocks; so does the tree, by bytes).
// Not thread-safe: the Pool calls it under its lock.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace slip::gateway {

class PrefixTree {
 public:
  explicit PrefixTree(uint64_t capacity_bytes) : capacity_(capacity_bytes) {}

  // Bytes of the longest stored prefix of s; marks that path used at `now`.
  size_t match(std::string_view s, uint64_t now);
  // Stores s; then evicts least-recently-used leaves while over capacity.
  void insert(std::string_view s, uint64_t now);
  uint64_t bytes() const { return bytes_; }
  void set_capacity(uint64_t c) { capacity_ = c; }

 private:
  struct Node {
    std::string edge;  // bytes from the parent to here
    Node* parent = nullptr;
    std::vector<std::unique_ptr<Node>> kids;
    uint64_t last_used = 0;
    Node* kid(char c) const;
  };
  void evict();

  Node root_;
  uint64_t bytes_ = 0, capacity_;
};

}  // namespace slip::gateway
