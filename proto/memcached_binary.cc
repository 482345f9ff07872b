// memcached's binary protocol: a 24-byte big-endian header, then extras,
// key and value.
#include "slip/proto/memcached.h"

namespace slip::proto::memcached {
namespace {

void put_be(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; i--) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t get_be(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v = v << 8 | p[i];
  return v;
}

void put_header(std::string& out, uint8_t op, size_t key_len, uint8_t extras, uint64_t body, uint32_t opaque) {
  out.push_back(static_cast<char>(kRequestMagic));
  out.push_back(static_cast<char>(op));
  put_be(out, key_len, 2);
  out.push_back(static_cast<char>(extras));
  out.push_back(0);   // data type: raw bytes
  put_be(out, 0, 2);  // vbucket
  put_be(out, body, 4);
  put_be(out, opaque, 4);  // the response echoes it
  put_be(out, 0, 8);       // cas
}

std::string_view view(const uint8_t* p, size_t n) { return {reinterpret_cast<const char*>(p), n}; }

}  // namespace

void append_binary_get(std::string& out, std::string_view key, uint32_t opaque) {
  put_header(out, kOpGet, key.size(), 0, key.size(), opaque);
  out.append(key);
}

void append_binary_set(std::string& out, std::string_view key, uint32_t flags, uint32_t exptime,
                       std::string_view value, uint32_t opaque) {
  put_header(out, kOpSet, key.size(), 8, 8 + key.size() + value.size(), opaque);
  put_be(out, flags, 4);
  put_be(out, exptime, 4);
  out.append(key).append(value);
}

Result<BinaryReply> parse_binary_reply(const uint8_t* p, size_t n, uint64_t max_body) {
  if (n == 0) return BinaryReply{};
  if (p[0] != kResponseMagic) return err(EBADMSG);
  if (n < kBinaryHeader) return BinaryReply{};
  BinaryReply r;
  r.opcode = p[1];
  const uint64_t key_len = get_be(p + 2, 2);
  const uint8_t extras = p[4];
  r.status = static_cast<uint16_t>(get_be(p + 6, 2));
  const uint64_t body = get_be(p + 8, 4);
  r.opaque = static_cast<uint32_t>(get_be(p + 12, 4));
  r.cas = get_be(p + 16, 8);
  if (p[5] != 0 || extras + key_len > body || body > max_body) return err(EBADMSG);
  if (r.opcode == kOpGet && r.status == kStatusOk && extras != 4) return err(EBADMSG);  // a hit carries its flags
  if (n - kBinaryHeader < body) return r;  // len 0, but the header's fields are there to check
  const uint8_t* b = p + kBinaryHeader;
  r.extras = view(b, extras);
  r.key = view(b + extras, static_cast<size_t>(key_len));
  r.value = view(b + extras + key_len, static_cast<size_t>(body - extras - key_len));
  r.len = kBinaryHeader + static_cast<size_t>(body);
  return r;
}

}  // namespace slip::proto::memcached
