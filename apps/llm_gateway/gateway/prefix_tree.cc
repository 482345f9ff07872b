#include "prefix_tree.h"

#include <algorithm>

namespace slip::gateway {
namespace {

size_t common_prefix(std::string_view a, std::string_view b) {
  return static_cast<size_t>(std::mismatch(a.begin(), a.end(), b.begin(), b.end()).first - a.begin());
}

}  // namespace

PrefixTree::Node* PrefixTree::Node::kid(char c) const {
  for (const auto& k : kids)
    if (k->edge[0] == c) return k.get();
  return nullptr;
}

size_t PrefixTree::match(std::string_view s, uint64_t now) {
  Node* n = &root_;
  size_t matched = 0;
  while (matched < s.size()) {
    Node* k = n->kid(s[matched]);
    if (!k) break;
    const std::string_view rest = s.substr(matched);
    const size_t common = common_prefix(k->edge, rest);
    matched += common;
    k->last_used = now;
    if (common < k->edge.size()) break;
    n = k;
  }
  return matched;
}

void PrefixTree::insert(std::string_view s, uint64_t now) {
  Node* n = &root_;
  size_t at = 0;
  while (at < s.size()) {
    Node* k = n->kid(s[at]);
    const std::string_view rest = s.substr(at);
    if (!k) {
      auto leaf = std::make_unique<Node>();
      leaf->edge.assign(rest);
      leaf->parent = n;
      leaf->last_used = now;
      bytes_ += rest.size();
      n->kids.push_back(std::move(leaf));
      break;
    }
    const size_t common = common_prefix(k->edge, rest);
    k->last_used = now;
    if (common < k->edge.size()) {
      // Split k's edge: a new middle node holds the shared part.
      auto mid = std::make_unique<Node>();
      mid->edge = k->edge.substr(0, common);
      mid->parent = n;
      mid->last_used = now;
      auto& slot = *std::find_if(n->kids.begin(), n->kids.end(), [&](auto& p) { return p.get() == k; });
      std::unique_ptr<Node> old = std::move(slot);
      old->edge.erase(0, common);
      old->parent = mid.get();
      mid->kids.push_back(std::move(old));
      slot = std::move(mid);
      k = slot.get();
    }
    at += common;
    n = k;
  }
  if (bytes_ > capacity_) evict();
}

void PrefixTree::evict() {
  // Down to 90% so eviction runs once per many inserts, not on every one.
  const uint64_t target = capacity_ - capacity_ / 10;
  while (bytes_ > target) {
    std::vector<Node*> leaves;
    std::vector<Node*> stack{&root_};
    while (!stack.empty()) {
      Node* n = stack.back();
      stack.pop_back();
      if (n != &root_ && n->kids.empty()) leaves.push_back(n);
      for (auto& k : n->kids) stack.push_back(k.get());
    }
    if (leaves.empty()) return;
    std::sort(leaves.begin(), leaves.end(), [](Node* a, Node* b) { return a->last_used < b->last_used; });
    for (Node* leaf : leaves) {
      if (bytes_ <= target) break;
      bytes_ -= leaf->edge.size();
      auto& kids = leaf->parent->kids;
      kids.erase(std::find_if(kids.begin(), kids.end(), [&](auto& p) { return p.get() == leaf; }));
    }
  }
}

}  // namespace slip::gateway
