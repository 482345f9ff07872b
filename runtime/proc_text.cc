// Whole-file reads and the number formats of /proc and cgroupfs.
#include "runtime/proc_text.h"

#include <charconv>
#include <fstream>
#include <sstream>

namespace slip::rt::detail {
namespace {
constexpr std::string_view kSpace = " \t\n\r";
}

std::optional<std::string> read_text_file(const std::string& path) {
  // procfs files report size 0, so read until the end rather than by size.
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return std::move(text).str();
}

std::string_view trim(std::string_view s) noexcept {
  const size_t first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kSpace) - first + 1);
}

std::vector<std::string_view> lines(std::string_view s) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    const size_t nl = std::min(s.find('\n'), s.size());
    out.push_back(s.substr(0, nl));
    s.remove_prefix(std::min(nl + 1, s.size()));
  }
  return out;
}

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  for (size_t i = s.find_first_not_of(kSpace); i != std::string_view::npos; i = s.find_first_not_of(kSpace, i)) {
    const size_t end = std::min(s.find_first_of(kSpace, i), s.size());
    out.push_back(s.substr(i, end - i));
    i = end;
  }
  return out;
}

std::optional<uint64_t> parse_u64(std::string_view s) noexcept {
  s = trim(s);
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<uint64_t> keyed_value(std::string_view text, std::string_view key) noexcept {
  for (std::string_view line : lines(text)) {
    if (!line.starts_with(key)) continue;
    line.remove_prefix(key.size());
    if (line.starts_with(':')) line.remove_prefix(1);
    else if (line.empty() || kSpace.find(line.front()) == std::string_view::npos) continue;  // a longer key
    return parse_u64(line);
  }
  return std::nullopt;
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s.substr(0, 40)) out += c >= 0x20 && c < 0x7f ? c : '?';
  return out + (s.size() > 40 ? "...\"" : "\"");
}

}  // namespace slip::rt::detail
