// ShmPktPool: a memfd region registered with DPDK as external memory, and an
// mbuf pool whose packet buffers live in it. See shm_pool.h.
#include "iokernel/shm_pool.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "slip_rte.h"

namespace slip::iok {
namespace {

using Placement = ShmPktPoolConfig::Placement;

size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

std::string errno_text(int e) { return std::strerror(e); }

// A run of pages whose IOVAs follow each other (all RTE_BAD_IOVA, or each
// page's IOVA = the previous one's + page size).
struct Run {
  size_t off, len;
  uint64_t iova;
};

std::vector<Run> iova_runs(const std::vector<uint64_t>& iova, size_t pg) {
  std::vector<Run> runs;
  for (size_t i = 0; i < iova.size(); i++) {
    const bool bad = iova[i] == RTE_BAD_IOVA;
    if (!runs.empty() && (bad ? runs.back().iova == RTE_BAD_IOVA
                              : runs.back().iova != RTE_BAD_IOVA && runs.back().iova + runs.back().len == iova[i]))
      runs.back().len += pg;
    else
      runs.push_back({i * pg, pg, iova[i]});
  }
  return runs;
}

// Bytes the region needs. Extbuf: the buffers back to back. Heap: the mempool
// never lets an object straddle a page of an external heap, so on 4 KiB pages
// each ~2.4 KiB mbuf takes a page; plus the ring, the mempool header with its
// RTE_MAX_LCORE caches, and slack for malloc and memzone headers.
size_t region_bytes(const ShmPktPoolConfig& cfg, size_t pg) {
  if (cfg.placement == Placement::kExtbuf) return round_up(size_t{cfg.n_mbufs} * cfg.data_room, pg);
  const uint32_t obj = rte_mempool_calc_obj_size(sizeof(rte_mbuf) + cfg.data_room, 0, nullptr);
  const size_t per_page = obj <= pg ? pg / obj : 0;
  const size_t objs = per_page ? (cfg.n_mbufs + per_page - 1) / per_page * pg : size_t{cfg.n_mbufs} * obj + pg;
  const size_t meta = sizeof(rte_mempool) + RTE_MAX_LCORE * sizeof(rte_mempool_cache) +
                      rte_ring_get_memsize(static_cast<unsigned>(rte_align32pow2(cfg.n_mbufs + 1)));
  return round_up(objs + meta + (1u << 20), pg);
}

}  // namespace

std::unique_ptr<ShmPktPool> ShmPktPool::create(const ShmPktPoolConfig& cfg) {
  const std::string who = "ShmPktPool(\"" + cfg.name + "\"): ";
  if (rte_lcore_count() == 0) throw std::runtime_error(who + "EAL is not running: call slip::net::eal_init first");
  if (cfg.name.empty() || cfg.name.size() > 20)
    throw std::invalid_argument(who + "the name must have 1..20 characters (it names a heap and a mempool)");
  if (cfg.n_mbufs == 0 || cfg.data_room < RTE_PKTMBUF_HEADROOM + 64 || cfg.data_room % 64 != 0)
    throw std::invalid_argument(who + "need n_mbufs >= 1 and data_room a multiple of 64 above the headroom");
  std::unique_ptr<ShmPktPool> p(new ShmPktPool());
  p->name_ = cfg.name;
  p->placement_ = cfg.placement;
  p->buf_size_ = cfg.data_room;
  p->map_region(cfg);
  p->register_region(cfg);
  p->make_pool(cfg);
  return p;
}

// memfd (4 KiB pages, or huge pages), sealed at its size, mapped and populated.
void ShmPktPool::map_region(const ShmPktPoolConfig& cfg) {
  const std::string who = "ShmPktPool(\"" + cfg.name + "\"): ";
  const unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING | (cfg.hugepages ? MFD_HUGETLB : 0u);
  fd_ = memfd_create(("slip-pkt-" + cfg.name).c_str(), flags);
  if (fd_ < 0)
    throw std::runtime_error(who + "memfd_create failed: " + errno_text(errno) +
                             (cfg.hugepages ? ": the kernel lacks MFD_HUGETLB: set hugepages = false" : ""));
  struct stat st {};
  if (fstat(fd_, &st) != 0) throw std::runtime_error(who + "fstat failed: " + errno_text(errno));
  page_sz_ = cfg.hugepages ? static_cast<size_t>(st.st_blksize) : static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_ = region_bytes(cfg, page_sz_);
  if (ftruncate(fd_, static_cast<off_t>(size_)) != 0)
    throw std::runtime_error(who + "ftruncate to " + std::to_string(size_) + " bytes failed: " + errno_text(errno));
  // A runtime holding the fd must not shrink it under the daemon (SIGBUS).
  if (fcntl(fd_, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0)
    throw std::runtime_error(who + "cannot seal the memfd: " + errno_text(errno) + ": needs Linux >= 4.16 for huge pages");
  void* a = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, 0);
  if (a == MAP_FAILED) {
    const int e = errno;
    throw std::runtime_error(who + "mmap of " + std::to_string(size_ >> 20) + " MiB failed: " + errno_text(e) +
                             (cfg.hugepages ? ": not enough free hugepages: run tools/setup or set hugepages = false"
                                            : ": lower n_mbufs or raise the memory limit"));
  }
  base_ = static_cast<uint8_t*>(a);
  // Only the mapping above may write: no later writable mapping or write(),
  // even through an fd a runtime reopens O_RDWR via /proc (Linux >= 5.1).
  if (fcntl(fd_, F_ADD_SEALS, F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) != 0) {
    const int e = errno;
    munmap(a, size_);
    throw std::runtime_error(who + "cannot write-seal the memfd: " + errno_text(e) + ": needs Linux >= 5.1");
  }
  // IOVA per page: the address itself in IOVA-as-VA mode (what --no-huge and
  // VFIO give), the physical address in PA mode (stable only for huge pages).
  iova_.resize(size_ / page_sz_);
  iova_known_ = true;
  const bool va = rte_eal_iova_mode() == RTE_IOVA_VA;
  for (size_t i = 0; i < iova_.size(); i++) {
    uint8_t* pg = base_ + i * page_sz_;
    iova_[i] = va ? reinterpret_cast<uintptr_t>(pg) : rte_mem_virt2phy(pg);
    if (iova_[i] == RTE_BAD_IOVA) iova_known_ = false;
  }
}

// Tells DPDK about the region: as a malloc heap (kHeap) or as registered
// external memory (kExtbuf). Both need va and len aligned to page_sz.
void ShmPktPool::register_region(const ShmPktPoolConfig& cfg) {
  const std::string who = "ShmPktPool(\"" + cfg.name + "\"): ";
  const auto n_pages = static_cast<unsigned>(iova_.size());
  if (placement_ == Placement::kHeap) {
    if (rte_malloc_heap_create(name_.c_str()) != 0)
      throw std::runtime_error(who + "rte_malloc_heap_create failed: " + rte_strerror(rte_errno) +
                               ": heap names must be unique, and EAL has at most RTE_MAX_HEAPS heaps");
    heap_made_ = true;
    if (rte_malloc_heap_memory_add(name_.c_str(), base_, size_, iova_.data(), n_pages, page_sz_) != 0)
      throw std::runtime_error(who + "rte_malloc_heap_memory_add failed: " + rte_strerror(rte_errno) +
                               ": ENOSPC means all RTE_MAX_MEMSEG_LISTS are used: free another pool");
    heap_added_ = true;
    return;
  }
  if (rte_extmem_register(base_, size_, iova_.data(), n_pages, page_sz_) != 0)
    throw std::runtime_error(who + "rte_extmem_register failed: " + rte_strerror(rte_errno) +
                             ": ENOSPC means all RTE_MAX_MEMSEG_LISTS are used: free another pool");
  registered_ = true;
}

void ShmPktPool::make_pool(const ShmPktPoolConfig& cfg) {
  const std::string who = "ShmPktPool(\"" + cfg.name + "\"): ";
  const unsigned cache = std::min(256u, cfg.n_mbufs / 8);
  if (placement_ == Placement::kHeap) {
    const int socket = rte_malloc_heap_get_socket(name_.c_str());
    mp_ = rte_pktmbuf_pool_create(name_.c_str(), cfg.n_mbufs, cache, 0, cfg.data_room, socket);
  } else {
    // One chunk per IOVA-contiguous run of pages; a buffer never spans runs.
    std::vector<rte_pktmbuf_extmem> ext;
    for (const Run& r : iova_runs(iova_, page_sz_)) ext.push_back({base_ + r.off, r.iova, r.len, cfg.data_room});
    size_t fits = 0;
    for (const auto& e : ext) fits += e.buf_len / e.elt_size;
    if (fits < cfg.n_mbufs)
      throw std::runtime_error(who + "the region's IOVA runs hold only " + std::to_string(fits) + " of " +
                               std::to_string(cfg.n_mbufs) +
                               " buffers (physical pages are scattered): use IOVA-as-VA (--iova-mode=va) or hugepages");
    mp_ = rte_pktmbuf_pool_create_extbuf(name_.c_str(), cfg.n_mbufs, cache, 0, cfg.data_room, SOCKET_ID_ANY,
                                         ext.data(), static_cast<unsigned>(ext.size()));
  }
  if (!mp_)
    throw std::runtime_error(who + "creating the mbuf pool failed: " + rte_strerror(rte_errno) +
                             ": ENOMEM: raise EAL -m (mbuf headers) or lower n_mbufs; EEXIST: use a unique name; "
                             "EINVAL with hugepages and no IOVA: run as root or use --iova-mode=va");
  rte_mempool_obj_iter(
      mp_,
      [](rte_mempool*, void* self, void* obj, unsigned) {
        auto* p = static_cast<ShmPktPool*>(self);
        auto* m = static_cast<rte_mbuf*>(obj);
        p->bufs_.emplace_back(p->offset_of(m->buf_addr, m->buf_len), m);
      },
      this);
  std::sort(bufs_.begin(), bufs_.end());
  if (bufs_.empty() || bufs_.back().first == kBadOff)
    throw std::runtime_error(who + "an mbuf's buffer lies outside the region: DPDK placed it elsewhere (a bug here)");
}

size_t ShmPktPool::free_bufs() const noexcept { return mp_ ? rte_mempool_avail_count(mp_) : 0; }

ShmPktPool::~ShmPktPool() {
  if (mp_) rte_mempool_free(mp_);
  if (heap_added_) rte_malloc_heap_memory_remove(name_.c_str(), base_, size_);
  if (heap_made_) rte_malloc_heap_destroy(name_.c_str());
  if (registered_) rte_extmem_unregister(base_, size_);
  if (base_) munmap(base_, size_);
  if (fd_ >= 0) close(fd_);
}

int ShmPktPool::readonly_fd() const {
  const std::string path = "/proc/self/fd/" + std::to_string(fd_);
  const int r = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (r < 0)
    throw std::runtime_error("ShmPktPool(\"" + name_ + "\"): cannot reopen the memfd read-only via " + path + ": " +
                             errno_text(errno) + ": mount /proc");
  return r;
}

bool ShmPktPool::to_desc(const rte_mbuf* m, PktDesc& d) const noexcept {
  if (m->nb_segs != 1 || m->next || uint32_t{m->data_off} + m->data_len > m->buf_len) return false;
  const uint64_t off = offset_of(m->buf_addr, m->buf_len);
  if (off == kBadOff) return false;
  const uint64_t ol = m->ol_flags;
  const bool csum_ok = (ol & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD &&
                       (ol & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_GOOD;
  d = PktDesc{off, m->data_len, m->data_off, static_cast<uint16_t>(csum_ok ? kDescRxCsumOk : 0), 0, 0};
  return true;
}

long ShmPktPool::index_of(uint64_t buf_off) const noexcept {
  auto it = std::lower_bound(bufs_.begin(), bufs_.end(), std::make_pair(buf_off, static_cast<rte_mbuf*>(nullptr)));
  if (it == bufs_.end() || it->first != buf_off) return -1;
  return it - bufs_.begin();
}

rte_mbuf* ShmPktPool::mbuf_of(uint64_t buf_off) const noexcept {
  const long i = index_of(buf_off);
  return i < 0 ? nullptr : bufs_[static_cast<size_t>(i)].second;
}

bool ShmPktPool::dma_map(uint16_t port_id) {
  const std::string who = "ShmPktPool(\"" + name_ + "\").dma_map(port " + std::to_string(port_id) + "): ";
  rte_eth_dev_info info;
  if (rte_eth_dev_info_get(port_id, &info) != 0 || !info.device)
    throw std::runtime_error(who + "no such port: pass a started port's id");
  if (!iova_known_)
    throw std::runtime_error(who + "the region's pages have no IOVA: run as root, or use --iova-mode=va with VFIO");
  const std::vector<Run> runs = iova_runs(iova_, page_sz_);
  for (size_t i = 0; i < runs.size(); i++) {
    if (rte_dev_dma_map(info.device, base_ + runs[i].off, runs[i].iova, runs[i].len) != 0) {
      const int e = rte_errno;
      for (size_t j = 0; j < i; j++) rte_dev_dma_unmap(info.device, base_ + runs[j].off, runs[j].iova, runs[j].len);
      if (e == ENOTSUP) return false;
      throw std::runtime_error(who + "rte_dev_dma_map failed: " + rte_strerror(e) + ": see the bus/driver log above");
    }
  }
  return true;
}

void ShmPktPool::dma_unmap(uint16_t port_id) noexcept {
  rte_eth_dev_info info;
  if (rte_eth_dev_info_get(port_id, &info) != 0 || !info.device || !iova_known_) return;
  for (const Run& r : iova_runs(iova_, page_sz_)) rte_dev_dma_unmap(info.device, base_ + r.off, r.iova, r.len);
}

}  // namespace slip::iok
