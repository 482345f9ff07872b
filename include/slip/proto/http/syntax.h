// HTTP/1.1 token classes and small helpers (RFC 9110 §5.6) shared by the
// parsers and writers of slip::proto::http, and by programs that read fields.
#pragma once

#include <algorithm>
#include <string_view>

namespace slip::proto::http {

constexpr char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }
constexpr bool is_ows(char c) { return c == ' ' || c == '\t'; }

constexpr int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  const char l = ascii_lower(c);
  return (l >= 'a' && l <= 'f') ? l - 'a' + 10 : -1;
}

// tchar: what methods and field names are made of.
constexpr bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c)) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Field values, reason phrases and chunk extensions: HTAB, SP, VCHAR, obs-text.
inline bool is_text(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u != 0x7f);
  });
}

bool iequals(std::string_view a, std::string_view b);
std::string_view trim_ows(std::string_view s);
// Whether a Content-Type value names the media type (case-insensitive, parameters allowed),
// e.g. media_type_is("Text/Event-Stream; charset=utf-8", "text/event-stream").
bool media_type_is(std::string_view content_type, std::string_view type);
// The standard reason phrase, or "Unknown".
const char* reason_phrase(int status);

}  // namespace slip::proto::http
