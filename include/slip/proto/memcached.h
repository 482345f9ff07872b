// memcached's protocols, text (protocol.txt) and binary: building requests
// and parsing the responses to them. A client (slip-loadgen) uses both
// halves; a memcached-compatible server adds the other direction here. The
// parsers check every byte they consume, never read past what they are
// given, and tell an incomplete response (len 0: wait for more) from a
// malformed one (EBADMSG).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "slip/common/result.h"

namespace slip::proto::memcached {

inline constexpr size_t kMaxKey = 250;                   // memcached's key length limit
inline constexpr uint64_t kDefaultMaxItem = 1u << 20;    // memcached's default item size limit (-I 1m)

// 1 to 250 bytes with no space or control byte.
bool valid_key(std::string_view key);

// ---- text protocol -----------------------------------------------------------

inline constexpr size_t kMaxTextLine = 2048;  // a response line, CRLF included

// "get <key>\r\n"
void append_text_get(std::string& out, std::string_view key);
// "set <key> <flags> <exptime> <bytes>\r\n<value>\r\n"
void append_text_set(std::string& out, std::string_view key, uint32_t flags, uint32_t exptime,
                     std::string_view value);

// The answer to a get of one key or to a storage command.
struct TextReply {
  enum class Kind {
    stored,        // STORED
    not_stored,    // NOT_STORED
    exists,        // EXISTS
    not_found,     // NOT_FOUND
    miss,          // END alone: the get found nothing
    value,         // VALUE <key> <flags> <bytes> [<cas>], the data, END
    error,         // ERROR: an unknown command
    client_error,  // CLIENT_ERROR [message]
    server_error,  // SERVER_ERROR [message]
  };
  size_t len = 0;  // bytes of the whole response; 0: not all here yet
  Kind kind = Kind::miss;
  // value: views into the parsed bytes.
  std::string_view key, data;
  uint32_t flags = 0;
  uint64_t cas = 0;  // 0 when the server sent none
  std::string_view message;  // client_error, server_error: the text after the word
};

// The response at the front of `in`. EBADMSG when it is malformed or its
// item is larger than max_item bytes.
Result<TextReply> parse_text_reply(std::string_view in, uint64_t max_item);

// ---- binary protocol ---------------------------------------------------------

inline constexpr size_t kBinaryHeader = 24;
inline constexpr uint8_t kRequestMagic = 0x80;
inline constexpr uint8_t kResponseMagic = 0x81;
inline constexpr uint8_t kOpGet = 0x00;
inline constexpr uint8_t kOpSet = 0x01;
inline constexpr uint16_t kStatusOk = 0x0000;
inline constexpr uint16_t kStatusKeyNotFound = 0x0001;

// GET with the key; the response echoes opaque.
void append_binary_get(std::string& out, std::string_view key, uint32_t opaque);
// SET with flags and expiration as its extras.
void append_binary_set(std::string& out, std::string_view key, uint32_t flags, uint32_t exptime,
                       std::string_view value, uint32_t opaque);

struct BinaryReply {
  size_t len = 0;  // header and body; 0: not all here yet (the fields below are set once the header is)
  uint8_t opcode = 0;
  uint16_t status = 0;
  uint32_t opaque = 0;
  uint64_t cas = 0;
  // Views into the parsed bytes, once len > 0.
  std::string_view extras, key, value;
};

// The response at the front of [p, p + n). EBADMSG for a wrong magic (seen
// from the first byte) or data type, extras and key longer than the body, a
// body over max_body, or a GET hit without its 4 bytes of flags.
Result<BinaryReply> parse_binary_reply(const uint8_t* p, size_t n, uint64_t max_body);

}  // namespace slip::proto::memcached
