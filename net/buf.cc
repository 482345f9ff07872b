// Heap buffer pools and the pool-independent parts of PacketBuf handling. DPDK
// pools are made in net/dpdk/; their per-buffer operations go through the hooks
// in net/dpdk_buf_hooks.h.
#include "slip/net/buf.h"

#include <cassert>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>

#include "net/dpdk_buf_hooks.h"

namespace slip::net {
namespace {

void spin_lock(std::atomic<bool>& l) noexcept {
  while (l.exchange(true, std::memory_order_acquire)) {
    while (l.load(std::memory_order_relaxed)) __builtin_ia32_pause();
  }
}

void spin_unlock(std::atomic<bool>& l) noexcept { l.store(false, std::memory_order_release); }

[[noreturn]] void missing_hook(const char* what) noexcept {
  std::fprintf(stderr, "slipstream: %s called for a DPDK pool but net/dpdk did not define it\n", what);
  std::abort();
}

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

// Weak defaults so the core links without the DPDK backend; net/dpdk overrides them.
[[gnu::weak]] void free_dpdk_buf(PacketBuf*) noexcept { missing_hook("free_dpdk_buf"); }
[[gnu::weak]] PacketBuf* alloc_dpdk_buf(BufPool&) noexcept { missing_hook("alloc_dpdk_buf"); }
[[gnu::weak]] size_t dpdk_pool_available(const BufPool&) noexcept { missing_hook("dpdk_pool_available"); }
[[gnu::weak]] bool dpdk_buf_idle(const PacketBuf*) noexcept { missing_hook("dpdk_buf_idle"); }
[[gnu::weak]] void destroy_dpdk_pool(void*) noexcept { missing_hook("destroy_dpdk_pool"); }

std::unique_ptr<BufPool> BufPool::heap(std::string name, size_t n, size_t buf_size) {
  const std::string who = "BufPool::heap(\"" + name + "\"): ";
  if (std::string e = pool_shape_error(n, buf_size); !e.empty()) throw std::invalid_argument(who + e);
  std::unique_ptr<BufPool> p(new BufPool(std::move(name), n));
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
  std::unique_ptr<BufPool> p(new BufPool(std::move(name), n));
  p->bufs_ = std::make_unique<PacketBuf[]>(n);
  p->carve(mem, buf_size);
  return p;
}

std::unique_ptr<BufPool> BufPool::external(std::string name, FreeFn on_free, void* ctx) {
  std::unique_ptr<BufPool> p(new BufPool(std::move(name), 0));
  p->on_free_ = on_free;
  p->free_ctx_ = ctx;
  return p;
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
    b.next = free_;
    free_ = &b;
  }
  free_count_ = n_;
}

BufPool::~BufPool() {
  if (mempool_) destroy_dpdk_pool(mempool_);
}

PacketBuf* BufPool::alloc() noexcept {
  PacketBuf* b;
  if (mempool_) {
    b = alloc_dpdk_buf(*this);
  } else {
    spin_lock(lock_);
    b = free_;
    if (b) {
      free_ = b->next;
      free_count_--;
    }
    spin_unlock(lock_);
  }
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
    if (old == 1) b->pool->free_one(b);
    b = next;
  }
}

void BufPool::free_one(PacketBuf* b) noexcept {
  if (on_free_) {
    on_free_(free_ctx_, b);
    return;
  }
  if (mempool_) {
    free_dpdk_buf(b);
    return;
  }
  spin_lock(lock_);
  b->next = free_;
  free_ = b;
  free_count_++;
  spin_unlock(lock_);
}

bool BufPool::only_ours(const PacketBuf* b) noexcept {
  for (; b; b = b->next) {
    if (b->refs.load(std::memory_order_acquire) != 1) return false;
    if (b->mbuf && !dpdk_buf_idle(b)) return false;
  }
  return true;
}

size_t BufPool::available() const noexcept {
  if (mempool_) return dpdk_pool_available(*this);
  spin_lock(lock_);
  const size_t n = free_count_;
  spin_unlock(lock_);
  return n;
}

}  // namespace slip::net
