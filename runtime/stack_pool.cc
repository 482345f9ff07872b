// Uthread stacks: mmap'ed with a PROT_NONE guard page below, pooled so that a
// spawn costs a list pop rather than two system calls.
#include <sys/mman.h>
#include <unistd.h>

#include <new>

#include "runtime/defs.h"

#if defined(SLIP_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace slip::rt::detail {

namespace {
// Above this many pooled stacks in the shared pool, stacks are unmapped, so a
// burst of uthreads does not pin its memory (or its mappings) forever.
constexpr size_t kSharedMax = 4096;
}  // namespace

StackPool::StackPool(size_t usable_size) {
  page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  usable_ = (usable_size + page_ - 1) / page_ * page_;
  map_size_ = usable_ + page_;
}

StackPool::~StackPool() {
  while (shared_) {
    Stack* s = shared_;
    shared_ = s->next_free;
    munmap(s->base, s->map_size);
  }
}

Stack* StackPool::map_new() {
  void* p = mmap(nullptr, map_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  if (mprotect(p, page_, PROT_NONE) != 0) {
    munmap(p, map_size_);
    throw std::bad_alloc();
  }
  Stack st;
  st.base = p;
  st.map_size = map_size_;
  return new (stack_record(st)) Stack(st);
}

Stack* StackPool::get(Kthread* k) {
  Stack* s = nullptr;
  if (k && k->stack_cache) {
    s = k->stack_cache;
    k->stack_cache = s->next_free;
    k->stack_cache_len--;
  } else {
    lock_.lock();
    if (shared_) {
      s = shared_;
      shared_ = s->next_free;
      shared_count_--;
    }
    lock_.unlock();
    if (!s) s = map_new();
  }
#if defined(SLIP_ASAN)
  // Frames of the stack's previous uthread left redzones behind.
  const Stack st = *s;
  ASAN_UNPOISON_MEMORY_REGION(static_cast<char*>(st.base) + page_, st.map_size - page_);
#endif
  return s;
}

void StackPool::put(Kthread* k, Stack* s) noexcept {
  Runtime* rt = g_runtime.load(std::memory_order_relaxed);
  const size_t cache_max = rt ? rt->cfg.stack_cache : 0;
  if (k && k->stack_cache_len < cache_max) {
    s->next_free = k->stack_cache;
    k->stack_cache = s;
    k->stack_cache_len++;
    return;
  }
  lock_.lock();
  if (shared_count_ < kSharedMax) {
    s->next_free = shared_;
    shared_ = s;
    shared_count_++;
    lock_.unlock();
    return;
  }
  lock_.unlock();
  munmap(s->base, s->map_size);
}

void StackPool::release_cache(Kthread* k) noexcept {
  while (k->stack_cache) {
    Stack* s = k->stack_cache;
    k->stack_cache = s->next_free;
    lock_.lock();
    s->next_free = shared_;
    shared_ = s;
    shared_count_++;
    lock_.unlock();
  }
  k->stack_cache_len = 0;
}

}  // namespace slip::rt::detail
