// BufPool and the built-in ops of heap, in-memory and external pools. Pools
// whose buffers live elsewhere (net/dpdk's mempools) bring their own
// BufPoolOps through BufPool::with_ops.
#include "slip/net/buf.h"

#include <cassert>
#include <cstdint>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>

namespace slip::net {
namespace {

// Why n buffers of buf_size bytes cannot be a pool; empty when they can.
std::string pool_shape_error(size_t n, size_t buf_size) {
  if (n == 0) return "zero buffers requested: pass n >= 1";
  if (buf_size <= BufPool::kHeadroom)
    return "buf_size " + std::to_string(buf_size) + " leaves no room after the " +
           std::to_string(BufPool::kHeadroom) + "-byte headroom: pass a larger buf_size";
  if (buf_size > std::numeric_limits<uint32_t>::max())
    return "buf_size " + std::to_string(buf_size) + " exceeds 4 GiB: pass a smaller one";
  if (n > std::numeric_limits<size_t>::max() / buf_size)
    return std::to_string(n) + " buffers of " + std::to_string(buf_size) + " bytes overflow size_t: lower the count";
  return {};
}

}  // namespace

// The ops of pools with a free list (heap, in-memory) and of external ones;
// a friend of BufPool for its FreeList.
struct BuiltinBufOps {
  static PacketBuf* list_alloc(void* ctx) noexcept {
    auto* l = static_cast<BufPool::FreeList*>(ctx);
    l->lock.lock();
    PacketBuf* b = l->head;
    if (b) {
      l->head = b->next;
      l->count--;
    }
    l->lock.unlock();
    return b;
  }
  static void list_free(void* ctx, PacketBuf* b) noexcept {
    auto* l = static_cast<BufPool::FreeList*>(ctx);
    l->lock.lock();
    b->next = l->head;
    l->head = b;
    l->count++;
    l->lock.unlock();
  }
  static size_t list_available(const void* ctx) noexcept {
    const auto* l = static_cast<const BufPool::FreeList*>(ctx);
    l->lock.lock();
    const size_t n = l->count;
    l->lock.unlock();
    return n;
  }
  static PacketBuf* none(void*) noexcept { return nullptr; }
  static size_t zero(const void*) noexcept { return 0; }

  static constexpr BufPoolOps kList{.alloc = list_alloc, .free = list_free, .available = list_available};

  // A pool over a free list: ctx is its own FreeList, set once it exists.
  static std::unique_ptr<BufPool> list_pool(std::string name, size_t n) {
    std::unique_ptr<BufPool> p(new BufPool(std::move(name), n, kList, nullptr));
    p->ctx_ = &p->free_;
    return p;
  }
};

std::unique_ptr<BufPool> BufPool::heap(std::string name, size_t n, size_t buf_size) {
  const std::string who = "BufPool::heap(\"" + name + "\"): ";
  if (std::string e = pool_shape_error(n, buf_size); !e.empty()) throw std::invalid_argument(who + e);
  std::unique_ptr<BufPool> p = BuiltinBufOps::list_pool(std::move(name), n);
  try {
    p->mem_ = std::make_unique_for_overwrite<uint8_t[]>(n * buf_size);
    p->bufs_ = std::make_unique<PacketBuf[]>(n);
  } catch (const std::bad_alloc&) {
    throw std::runtime_error(who + "cannot allocate " + std::to_string(n) + " x " + std::to_string(buf_size) +
                             " bytes: lower the buffer count or size");
  }
  p->carve(p->mem_.get(), buf_size);
  return p;
}

std::unique_ptr<BufPool> BufPool::in_memory(std::string name, uint8_t* mem, size_t n, size_t buf_size) {
  const std::string who = "BufPool::in_memory(\"" + name + "\"): ";
  if (std::string e = pool_shape_error(n, buf_size); !e.empty()) throw std::invalid_argument(who + e);
  if (!mem) throw std::invalid_argument(who + "no memory given");
  std::unique_ptr<BufPool> p = BuiltinBufOps::list_pool(std::move(name), n);
  p->bufs_ = std::make_unique<PacketBuf[]>(n);
  p->carve(mem, buf_size);
  return p;
}

std::unique_ptr<BufPool> BufPool::external(std::string name, FreeFn on_free, void* ctx) {
  const BufPoolOps ops{.alloc = BuiltinBufOps::none, .free = on_free, .available = BuiltinBufOps::zero};
  return std::unique_ptr<BufPool>(new BufPool(std::move(name), 0, ops, ctx));
}

std::unique_ptr<BufPool> BufPool::with_ops(std::string name, size_t n, const BufPoolOps& ops, void* ctx) {
  if (!ops.alloc || !ops.free || !ops.available)
    throw std::invalid_argument("BufPool::with_ops(\"" + name + "\"): alloc, free and available are required");
  return std::unique_ptr<BufPool>(new BufPool(std::move(name), n, ops, ctx));
}

// Threads n_ buffers of buf_size bytes at mem onto the free list, pushed in
// reverse so that alloc() hands out buffer 0 first.
void BufPool::carve(uint8_t* mem, size_t buf_size) noexcept {
  for (size_t i = n_; i-- > 0;) {
    PacketBuf& b = bufs_[i];
    b.head = mem + i * buf_size;
    b.data = b.head + kHeadroom;
    b.capacity = static_cast<uint32_t>(buf_size);
    b.pool = this;
    b.refs.store(0, std::memory_order_relaxed);
    b.next = free_.head;
    free_.head = &b;
  }
  free_.count = n_;
}

BufPool::~BufPool() {
  if (ops_.destroy) ops_.destroy(ctx_);
}

PacketBuf* BufPool::alloc() noexcept {
  PacketBuf* b = ops_.alloc(ctx_);
  if (!b) return nullptr;
  b->data = b->head + kHeadroom;
  b->len = 0;
  b->next = nullptr;
  b->refs.store(1, std::memory_order_relaxed);
  b->rx_queue = 0;
  b->offload_flags = 0;
  b->l2_len = b->l3_len = b->l4_len = 0;
  b->user = 0;
  return b;
}

void BufPool::release(PacketBuf* b) noexcept {
  while (b) {
    // Read next first: once our reference is gone another holder may free b.
    PacketBuf* next = b->next;
    const uint16_t old = b->refs.fetch_sub(1, std::memory_order_acq_rel);
    assert(old != 0 && "PacketBuf released more often than referenced");
    if (old == 1) b->pool->ops_.free(b->pool->ctx_, b);
    b = next;
  }
}

bool BufPool::only_ours(const PacketBuf* b) noexcept {
  for (; b; b = b->next) {
    if (b->refs.load(std::memory_order_acquire) != 1) return false;
    if (const auto idle = b->pool->ops_.idle; idle && !idle(b)) return false;
  }
  return true;
}

}  // namespace slip::net
