// BufPool over an rte_mempool of mbufs: each mbuf's private area holds its
// PacketBuf, built once when the pool is made, so wrapping costs nothing on the
// data path. The pool's BufPoolOps (kDpdkOps) allocate and free mbufs.
#include <algorithm>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>

#include "net/dpdk/mbuf_buf.h"
#include "slip/net/buf.h"
#include "slip/net/dpdk.h"
#include "slip_rte.h"

namespace slip::net {
namespace {

static_assert(BufPool::kHeadroom == RTE_PKTMBUF_HEADROOM, "PacketBuf and mbuf headroom differ");
constexpr uint16_t kPrivSize = RTE_ALIGN_CEIL(sizeof(PacketBuf), RTE_MBUF_PRIV_ALIGN);
constexpr unsigned kMaxCache = 256;
constexpr uint64_t kAttachFlags = RTE_MBUF_F_INDIRECT | RTE_MBUF_F_EXTERNAL;

inline rte_mbuf* mb(void* p) noexcept { return static_cast<rte_mbuf*>(p); }

// Placement-constructs the PacketBuf of one mbuf (rte_mempool_obj_iter callback).
void init_packet_buf(rte_mempool*, void* pool, void* obj, unsigned) {
  rte_mbuf* m = mb(obj);
  auto* b = new (rte_mbuf_to_priv(m)) PacketBuf{};
  b->head = static_cast<uint8_t*>(m->buf_addr);
  b->data = b->head + m->data_off;
  b->capacity = m->buf_len;
  b->pool = static_cast<BufPool*>(pool);
  b->mbuf = m;
  b->refs.store(0, std::memory_order_relaxed);
}

// True when every segment is a direct mbuf of a make_dpdk_pool() pool held only
// by us, so its PacketBuf may be reset. net_ring hands the sender's mbufs to
// the receiver, which may still be referenced by the sender (refcnt > 1).
bool rx_exclusive(rte_mbuf* m) noexcept {
  for (; m; m = m->next) {
    const auto* b = static_cast<const PacketBuf*>(rte_mbuf_to_priv(m));
    if (b->mbuf != m || rte_mbuf_refcnt_read(m) != 1 || !RTE_MBUF_DIRECT(m)) return false;
  }
  return true;
}

bool ours(rte_mbuf* m) noexcept {
  return static_cast<const PacketBuf*>(rte_mbuf_to_priv(m))->mbuf == m;
}

uint32_t rx_flags(uint64_t ol) noexcept {
  uint32_t f = 0;
  switch (ol & RTE_MBUF_F_RX_IP_CKSUM_MASK) {
    case RTE_MBUF_F_RX_IP_CKSUM_GOOD: f |= PacketBuf::kRxIpCsumGood; break;
    case RTE_MBUF_F_RX_IP_CKSUM_BAD: f |= PacketBuf::kRxIpCsumBad; break;
    default: break;
  }
  switch (ol & RTE_MBUF_F_RX_L4_CKSUM_MASK) {
    case RTE_MBUF_F_RX_L4_CKSUM_GOOD: f |= PacketBuf::kRxL4CsumGood; break;
    case RTE_MBUF_F_RX_L4_CKSUM_BAD: f |= PacketBuf::kRxL4CsumBad; break;
    default: break;
  }
  return f;
}

uint64_t tx_flags(uint32_t f) noexcept {
  uint64_t ol = 0;
  if (f & PacketBuf::kTxIpCsum) ol |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
  if (f & PacketBuf::kTxTcpCsum) ol |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_TCP_CKSUM;
  if (f & PacketBuf::kTxUdpCsum) ol |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_UDP_CKSUM;
  return ol;
}

std::string pool_fix_hint(int err, size_t n, size_t data_room) {
  switch (err) {
    case ENOMEM:
      return "cannot allocate " + std::to_string(n) + " mbufs (about " +
             std::to_string(n * (data_room + kPrivSize + sizeof(rte_mbuf)) >> 20) +
             " MiB): raise EAL -m, add hugepages (tools/setup) or lower the count";
    case EEXIST: return "a mempool with this name exists: give each pool a unique name";
    case E_RTE_NO_CONFIG: return "EAL is not running: call slip::net::eal_init first";
    default: return "see the EAL log above";
  }
}

// The BufPoolOps of a DPDK pool; ctx is its rte_mempool.
PacketBuf* mbuf_alloc(void* mp) noexcept {
  rte_mbuf* m = rte_pktmbuf_alloc(static_cast<rte_mempool*>(mp));
  return m ? from_mbuf(m) : nullptr;
}
// The mbuf refcount is 1 unless a PMD also holds it (see DpdkPort::tx_burst);
// rte_pktmbuf_free_seg then only drops the PMD's share and leaves the chain's
// next links alone for the PMD, and resets them itself when it frees.
void mbuf_free(void*, PacketBuf* b) noexcept { rte_pktmbuf_free_seg(mb(b->mbuf)); }
size_t mbuf_available(const void* mp) noexcept {
  return rte_mempool_avail_count(static_cast<const rte_mempool*>(mp));
}
// Whether no PMD still holds b's mbuf: a NIC that transmits from the buffer
// may read it until it completes the send.
bool mbuf_idle(const PacketBuf* b) noexcept { return rte_mbuf_refcnt_read(mb(b->mbuf)) == 1; }
void mempool_destroy(void* mp) noexcept { rte_mempool_free(static_cast<rte_mempool*>(mp)); }

constexpr BufPoolOps kDpdkOps{.alloc = mbuf_alloc,
                              .free = mbuf_free,
                              .available = mbuf_available,
                              .idle = mbuf_idle,
                              .destroy = mempool_destroy};

}  // namespace

std::unique_ptr<BufPool> make_dpdk_pool(std::string name, size_t n, int socket, size_t data_bytes) {
  const std::string who = "make_dpdk_pool(\"" + name + "\"): ";
  if (rte_lcore_count() == 0) throw std::runtime_error(who + "EAL is not running: call slip::net::eal_init first");
  if (n == 0) throw std::invalid_argument(who + "zero buffers requested: pass n >= 1");
  if (n > std::numeric_limits<uint32_t>::max())
    throw std::invalid_argument(who + std::to_string(n) + " mbufs exceed a mempool's 2^32: lower the count");
  if (name.size() >= RTE_MEMPOOL_NAMESIZE)
    throw std::invalid_argument(who + "name longer than " + std::to_string(RTE_MEMPOOL_NAMESIZE - 1) +
                                " characters: shorten it");

  if (data_bytes == 0 || data_bytes > UINT16_MAX - RTE_PKTMBUF_HEADROOM)
    throw std::invalid_argument(who + std::to_string(data_bytes) + " bytes per buffer: pass 1.." +
                                std::to_string(UINT16_MAX - RTE_PKTMBUF_HEADROOM) + " (an mbuf's length is 16 bits)");
  const auto data_room = static_cast<uint16_t>(data_bytes + RTE_PKTMBUF_HEADROOM);

  // A per-lcore cache must stay under n / 1.5 (rte_mempool's flush threshold).
  const unsigned cache = static_cast<unsigned>(std::min<size_t>(kMaxCache, n / 8));
  rte_mempool* mp = rte_pktmbuf_pool_create(name.c_str(), static_cast<unsigned>(n), cache, kPrivSize, data_room,
                                            socket < 0 ? SOCKET_ID_ANY : socket);
  if (!mp) {
    const int err = rte_errno;
    throw std::runtime_error(who + "rte_pktmbuf_pool_create failed: " + rte_strerror(err) + ": " +
                             pool_fix_hint(err, n, data_room));
  }
  std::unique_ptr<BufPool> p;
  try {
    p = BufPool::with_ops(name, n, kDpdkOps, mp);
  } catch (...) {
    rte_mempool_free(mp);
    throw;
  }
  rte_mempool_obj_iter(mp, init_packet_buf, p.get());
  return p;
}

void* mempool_of(const BufPool& pool) noexcept { return pool.ops().alloc == kDpdkOps.alloc ? pool.ctx() : nullptr; }

void to_mbuf(PacketBuf* b) noexcept {
  rte_mbuf* head = mb(b->mbuf);
  uint32_t pkt_len = 0;
  uint16_t segs = 0;
  for (PacketBuf* s = b; s; s = s->next) {
    rte_mbuf* m = mb(s->mbuf);
    m->data_off = static_cast<uint16_t>(s->data - static_cast<uint8_t*>(m->buf_addr));
    m->data_len = static_cast<uint16_t>(s->len);
    m->next = s->next ? mb(s->next->mbuf) : nullptr;
    m->ol_flags &= kAttachFlags;
    pkt_len += s->len;
    segs++;
  }
  head->pkt_len = pkt_len;
  head->nb_segs = segs;
  head->ol_flags |= tx_flags(b->offload_flags);
  head->l2_len = b->l2_len;
  head->l3_len = b->l3_len;
  head->l4_len = b->l4_len;
}

PacketBuf* wrap_rx_mbuf(rte_mbuf* m, uint16_t queue) noexcept {
  if (!rx_exclusive(m)) [[unlikely]] {
    // Shared with a sender (net_ring): copy into the same pool. Foreign
    // mbufs (a pool without PacketBufs) cannot be wrapped: dropped.
    rte_mbuf* c = ours(m) ? rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX) : nullptr;
    rte_pktmbuf_free(m);
    if (!c) return nullptr;
    m = c;
  }
  for (rte_mbuf* s = m; s; s = s->next) {
    PacketBuf* b = from_mbuf(s);
    b->data = static_cast<uint8_t*>(s->buf_addr) + s->data_off;
    b->len = s->data_len;
    b->next = s->next ? from_mbuf(s->next) : nullptr;
    b->refs.store(1, std::memory_order_relaxed);
    b->rx_queue = queue;
    b->offload_flags = 0;
    b->l2_len = b->l3_len = b->l4_len = 0;
    b->user = 0;
  }
  PacketBuf* head = from_mbuf(m);
  head->offload_flags = rx_flags(m->ol_flags);
  return head;
}

}  // namespace slip::net
