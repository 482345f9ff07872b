// memcached's text protocol (protocol.txt): requests, and the responses to a
// single-key get or a storage command.
#include <algorithm>
#include <charconv>
#include <cstring>

#include "slip/proto/memcached.h"

namespace slip::proto::memcached {
namespace {

// A decimal number with nothing else, no larger than max.
bool parse_u64(std::string_view s, uint64_t max, uint64_t& v) {
  if (s.empty() || s.size() > 20) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc{} && end == s.data() + s.size() && v <= max;
}

// Cuts the token before the next space (or the end) off the front of s.
std::string_view take_token(std::string_view& s) {
  const size_t sp = s.find(' ');
  std::string_view t = s.substr(0, sp);
  s = sp == std::string_view::npos ? std::string_view{} : s.substr(sp + 1);
  return t;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

void append_decimal(std::string& out, uint64_t v) {
  char buf[20];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

// A hit: `VALUE <key> <flags> <bytes> [<cas>]`, the data, \r\n, END\r\n.
// rest is what follows the VALUE line.
Result<TextReply> parse_value(std::string_view line, std::string_view rest, uint64_t max_item) {
  std::string_view f = line.substr(6);
  TextReply r;
  r.kind = TextReply::Kind::value;
  r.key = take_token(f);
  const std::string_view flags = take_token(f);
  const std::string_view bytes = take_token(f);
  uint64_t flags_v = 0, len = 0;
  if (!valid_key(r.key) || !parse_u64(flags, UINT32_MAX, flags_v) || !parse_u64(bytes, max_item, len))
    return err(EBADMSG);
  r.flags = static_cast<uint32_t>(flags_v);
  if (!f.empty() && !parse_u64(take_token(f), UINT64_MAX, r.cas)) return err(EBADMSG);
  if (!f.empty() || line.back() == ' ') return err(EBADMSG);
  // Check what has arrived of the trailer now, so garbage fails early.
  static constexpr std::string_view kTrailer = "\r\nEND\r\n";
  const size_t n = static_cast<size_t>(len);
  for (size_t i = 0; i < kTrailer.size() && n + i < rest.size(); i++)
    if (rest[n + i] != kTrailer[i]) return err(EBADMSG);
  if (rest.size() < n + kTrailer.size()) return TextReply{};
  r.data = rest.substr(0, n);
  r.len = line.size() + 2 + n + kTrailer.size();
  return r;
}

}  // namespace

bool valid_key(std::string_view k) {
  if (k.empty() || k.size() > kMaxKey) return false;
  return std::none_of(k.begin(), k.end(), [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; });
}

void append_text_get(std::string& out, std::string_view key) { out.append("get ").append(key).append("\r\n"); }

void append_text_set(std::string& out, std::string_view key, uint32_t flags, uint32_t exptime,
                     std::string_view value) {
  out.append("set ").append(key).append(" ");
  append_decimal(out, flags);
  out.append(" ");
  append_decimal(out, exptime);
  out.append(" ");
  append_decimal(out, value.size());
  out.append("\r\n").append(value).append("\r\n");
}

Result<TextReply> parse_text_reply(std::string_view in, uint64_t max_item) {
  using Kind = TextReply::Kind;
  const size_t scan = std::min(in.size(), kMaxTextLine);
  const auto* nl = static_cast<const char*>(std::memchr(in.data(), '\n', scan));
  if (nl == nullptr) return in.size() >= kMaxTextLine ? Result<TextReply>(err(EBADMSG)) : TextReply{};
  if (nl == in.data() || nl[-1] != '\r') return err(EBADMSG);
  const std::string_view line(in.data(), static_cast<size_t>(nl - in.data()) - 1);
  TextReply r;
  r.len = line.size() + 2;
  auto word = [&](std::string_view w, Kind k) {
    if (line == w) {
      r.kind = k;
      return true;
    }
    if (k != Kind::client_error && k != Kind::server_error) return false;
    if (!starts_with(line, w) || line.size() == w.size() || line[w.size()] != ' ') return false;
    r.kind = k;
    r.message = line.substr(w.size() + 1);
    return true;
  };
  if (word("STORED", Kind::stored) || word("NOT_STORED", Kind::not_stored) || word("EXISTS", Kind::exists) ||
      word("NOT_FOUND", Kind::not_found) || word("END", Kind::miss) || word("ERROR", Kind::error) ||
      word("CLIENT_ERROR", Kind::client_error) || word("SERVER_ERROR", Kind::server_error))
    return r;
  if (!starts_with(line, "VALUE ")) return err(EBADMSG);
  return parse_value(line, in.substr(r.len), max_item);
}

}  // namespace slip::proto::memcached
