// The request/response format of the synthetic service: apps/synthetic
// serves it, slip-loadgen drives it.
// Every message starts with this 32-byte little-endian header. A request may
// carry padding after it (len > header) to model request size; a response is
// the header alone, with the request's id and work_ns and the service time
// the server actually spent. Over UDP one message is one datagram; over TCP
// messages follow each other on the stream and are answered in order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace slip::proto::synthetic {

inline constexpr uint32_t kMagic = 0x53504c53;  // "SLPS"
inline constexpr uint32_t kMaxMessage = 65536;
// work_ns value asking the server to draw the service time from its own distribution.
inline constexpr uint64_t kServerChooses = UINT64_MAX;

struct Header {
  uint32_t magic;
  uint32_t len;        // whole message, header included: [sizeof(Header), kMaxMessage]
  uint64_t id;         // chosen by the client, echoed
  uint64_t work_ns;    // request: service time to spin, or kServerChooses; echoed
  uint64_t served_ns;  // response: service time spent; 0 in requests
};
static_assert(sizeof(Header) == 32);
static_assert(offsetof(Header, id) == 8 && offsetof(Header, work_ns) == 16 && offsetof(Header, served_ns) == 24);

// Reads a header from p (n bytes available); false when too short or invalid.
inline bool parse_header(const void* p, size_t n, Header& h) noexcept {
  if (n < sizeof(Header)) return false;
  std::memcpy(&h, p, sizeof h);
  return h.magic == kMagic && h.len >= sizeof(Header) && h.len <= kMaxMessage;
}

}  // namespace slip::proto::synthetic
