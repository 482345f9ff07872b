// TCP's send buffer, held in packet buffers. write() copies the application's
// bytes once, into buffers that keep headroom for the headers, and sums them
// for the checksum while they are in cache. A segment that is exactly one
// buffer's bytes then goes out by reference: the emitter takes a reference
// and prepends the headers in that buffer's headroom, and a retransmission
// does the same again. Only segments that do not match a buffer (cut by the
// window, or a buffer the NIC still holds) are copied.
//
// Buffers come from an allocator the socket layer supplies (a pool of the
// NIC's, apart from its receive pool); without one, from a heap pool of the
// queue's own, as in the frame-by-frame tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "slip/net/buf.h"

namespace slip::net::tcp {

class SendQueue {
 public:
  using AllocFn = PacketBuf* (*)(void* ctx);

  explicit SendQueue(size_t capacity);
  ~SendQueue();
  SendQueue(const SendQueue&) = delete;
  SendQueue& operator=(const SendQueue&) = delete;

  // Where buffers come from from now on; fn returns nullptr when none is free.
  void set_allocator(AllocFn fn, void* ctx) noexcept;
  // Whether push() sums the bytes (false when the NIC computes checksums).
  void set_summing(bool on) noexcept { summing_ = on; }

  size_t capacity() const noexcept { return cap_; }
  size_t size() const noexcept { return len_; }
  size_t space() const noexcept { return cap_ - len_; }

  // Appends up to n bytes, at most seg to a buffer; returns how many. Fewer
  // than min(n, space()) means no buffer could be had (short_of_buffers()).
  size_t push(const uint8_t* p, size_t n, uint32_t seg) noexcept;
  bool short_of_buffers() const noexcept { return starved_; }
  // Drops n bytes from the front (acknowledged), releasing emptied buffers.
  void consume(size_t n) noexcept;
  // Copies n bytes starting at offset off into out.
  void read_at(size_t off, uint8_t* out, size_t n) const noexcept;
  // The bytes up to offset end went out: a buffer they end in takes no more.
  void sent_up_to(size_t end) noexcept;

  // A buffer whose bytes are exactly [off, off + len): the segment can go by
  // reference. sum is their csum_partial() (valid when summing).
  struct Whole {
    PacketBuf* buf = nullptr;
    uint8_t* payload = nullptr;
    uint32_t sum = 0;
  };
  bool whole(size_t off, size_t len, Whole& w) const noexcept;
  // Bytes from offset off to the end of the buffer holding it (0 past the
  // end): a segment that stops there leaves the next one starting a buffer.
  size_t run_from(size_t off) const noexcept;

  size_t buffers() const noexcept { return n_; }

 private:
  struct Entry {
    PacketBuf* buf;
    uint8_t* payload;  // first unacknowledged byte
    uint64_t start;    // its position in the stream of bytes ever pushed
    uint32_t len;
    uint32_t sum;      // folded 16-bit sum of [payload, payload + len) as csum_partial sees it
    bool sealed;       // sent: later writes start a new buffer
  };
  Entry& at(size_t i) noexcept { return ring_[(head_ + i) & mask_]; }
  const Entry& at(size_t i) const noexcept { return ring_[(head_ + i) & mask_]; }
  // The entry holding byte off (n_ when none), and off made relative to it.
  // Lookups mostly walk forward one segment at a time far from the head, so
  // the last answer and the entry after it are tried before a binary search.
  size_t find(size_t& off) const noexcept;
  PacketBuf* fresh() noexcept;

  size_t cap_, len_ = 0;
  uint64_t head_pos_ = 0;    // stream position of the first byte held
  std::vector<Entry> ring_;  // a power of two in size; at most max_bufs_ buffers, oldest at head_
  size_t mask_, max_bufs_;
  size_t head_ = 0, n_ = 0;
  mutable size_t hint_ = 0;  // the entry find() returned last (its index from the head)
  AllocFn alloc_ = nullptr;
  void* alloc_ctx_ = nullptr;
  std::unique_ptr<BufPool> own_;  // the fallback pool, made on first use
  bool summing_ = true, starved_ = false;
};

}  // namespace slip::net::tcp
