// HTTP/1.1 response framing (RFC 9112) for clients: strict, bounded, and it
// never looks past the bytes it is given.
#include "slip/proto/http/response_parser.h"

#include <algorithm>
#include <cstring>

namespace slip::proto::http {
namespace {

constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kBlankLine = "\r\n\r\n";

// "name: value" with no space before the colon; value without surrounding OWS.
bool parse_field(std::string_view line, std::string_view& name, std::string_view& value) {
  const size_t colon = line.find(':');
  if (colon == 0 || colon == std::string_view::npos) return false;
  name = line.substr(0, colon);
  if (!std::all_of(name.begin(), name.end(), is_tchar)) return false;
  value = trim_ows(line.substr(colon + 1));
  return is_text(value);
}

// "HTTP/1.x SP 3DIGIT [SP reason]"; the reason may be empty or missing.
bool parse_status_line(std::string_view line, int& status) {
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ')
    return false;
  if (!is_digit(line[9]) || !is_digit(line[10]) || !is_digit(line[11])) return false;
  status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  if (status < 100 || status > 599) return false;
  if (line.size() == 12) return true;
  return line[12] == ' ' && is_text(line.substr(13));
}

// Content-Length: 1*DIGIT, bounded well below overflow.
bool parse_length(std::string_view v, uint64_t& out) {
  if (v.empty() || v.size() > 18) return false;
  uint64_t x = 0;
  for (char c : v) {
    if (!is_digit(c)) return false;
    x = x * 10 + static_cast<uint64_t>(c - '0');
  }
  out = x;
  return true;
}

}  // namespace

Result<size_t> HttpResponseParser::fail() {
  state_ = State::failed;
  return err(EBADMSG);
}

size_t HttpResponseParser::find_terminator(const uint8_t* p, size_t n, std::string_view term) {
  const char* s = reinterpret_cast<const char*>(p);
  // Resume a little before where the last search stopped: the terminator may straddle it.
  const size_t from = std::min(scanned_, n) - std::min(std::min(scanned_, n), term.size() - 1);
  const size_t at = std::string_view(s, n).find(term, from);
  if (at == std::string_view::npos) {
    scanned_ = n;
    return n;
  }
  scanned_ = 0;
  return at;
}

Result<size_t> HttpResponseParser::parse_head(const uint8_t* p, size_t n, HttpEvent& ev) {
  constexpr std::string_view kPrefix = "HTTP/1.";
  if (std::memcmp(p, kPrefix.data(), std::min(n, kPrefix.size())) != 0) return fail();  // not a response: fail fast
  const size_t limit = std::min(n, kMaxHeader);
  const size_t end = find_terminator(p, limit, kBlankLine);
  if (end == limit) return limit == kMaxHeader ? fail() : Result<size_t>(size_t{0});

  std::string_view block(reinterpret_cast<const char*>(p), end + kCrlf.size());  // every line with its CRLF
  const size_t eol = block.find(kCrlf);
  int status = 0;
  if (!parse_status_line(block.substr(0, eol), status)) return fail();
  block.remove_prefix(eol + kCrlf.size());

  bool has_te = false, has_length = false;
  uint64_t length = 0;
  std::string_view content_type;
  bool close = false;
  while (!block.empty()) {
    const size_t le = block.find(kCrlf);
    std::string_view name, value;
    if (!parse_field(block.substr(0, le), name, value)) return fail();
    block.remove_prefix(le + kCrlf.size());
    if (iequals(name, "content-length")) {
      uint64_t v = 0;
      if (!parse_length(value, v) || (has_length && v != length)) return fail();
      has_length = true;
      length = v;
    } else if (iequals(name, "transfer-encoding")) {
      // We ask for no codings, so only plain chunked framing is acceptable.
      if (has_te || !iequals(value, "chunked")) return fail();
      has_te = true;
    } else if (iequals(name, "content-type")) {
      content_type = value;
    } else if (iequals(name, "connection")) {
      for (std::string_view v = value; !v.empty();) {
        const size_t comma = std::min(v.find(','), v.size());
        close |= iequals(trim_ows(v.substr(0, comma)), "close");
        v.remove_prefix(std::min(comma + 1, v.size()));
      }
    }
  }
  const size_t used = end + kBlankLine.size();
  if (status < 200) {
    if (status == 101) return fail();  // we never ask to switch protocols
    return used;                       // interim (100 Continue, 103 Early Hints): the real head follows
  }
  if (status == 204 || status == 304) {
    state_ = State::length_body;
    remaining_ = 0;
  } else if (has_te) {
    if (has_length) return fail();  // both: a smuggling pattern, never legitimate from a server we test
    state_ = State::chunk_size;
  } else if (has_length) {
    state_ = State::length_body;
    remaining_ = length;
  } else {
    return fail();  // delimited by close: unusable on a pipelined connection
  }
  ev.kind = HttpEvent::Kind::head;
  ev.status = status;
  ev.content_type = content_type;
  ev.close = close;
  return used;
}

Result<size_t> HttpResponseParser::parse_chunk_size(const uint8_t* p, size_t n) {
  if (n > 0 && hex_value(static_cast<char>(p[0])) < 0) return fail();
  const size_t limit = std::min(n, kMaxChunkLine);
  const size_t end = find_terminator(p, limit, kCrlf);
  if (end == limit) return limit == kMaxChunkLine ? fail() : Result<size_t>(size_t{0});
  std::string_view line(reinterpret_cast<const char*>(p), end);
  uint64_t size = 0;
  size_t i = 0;
  for (; i < line.size() && hex_value(line[i]) >= 0; i++) {
    if (i == 15) return fail();  // 60 bits is plenty
    size = size * 16 + static_cast<uint64_t>(hex_value(line[i]));
  }
  if (i == 0) return fail();
  // chunk-ext: BWS ";" ... up to the CRLF, checked only for stray controls.
  std::string_view rest = line.substr(i);
  while (!rest.empty() && is_ows(rest.front())) rest.remove_prefix(1);
  if (!rest.empty() && (rest.front() != ';' || !is_text(rest))) return fail();
  if (rest.empty() && i != line.size()) return fail();  // whitespace with no extension after it
  if (size == 0) {
    state_ = State::trailer;
    trailer_bytes_ = 0;
  } else {
    state_ = State::chunk_data;
    remaining_ = size;
  }
  return end + kCrlf.size();
}

Result<size_t> HttpResponseParser::parse_trailer(const uint8_t* p, size_t n, HttpEvent& ev) {
  const size_t budget = kMaxHeader - trailer_bytes_;
  const size_t limit = std::min(n, budget);
  const size_t end = find_terminator(p, limit, kCrlf);
  if (end == limit) return limit == budget ? fail() : Result<size_t>(size_t{0});
  if (end == 0) {
    state_ = State::head;
    ev.kind = HttpEvent::Kind::end;
    return kCrlf.size();
  }
  std::string_view name, value;
  if (!parse_field(std::string_view(reinterpret_cast<const char*>(p), end), name, value)) return fail();
  trailer_bytes_ += end + kCrlf.size();
  return end + kCrlf.size();
}

Result<size_t> HttpResponseParser::next(const uint8_t* p, size_t n, HttpEvent& ev) {
  ev = HttpEvent{};
  size_t used = 0;
  for (;;) {
    const uint8_t* q = p + used;
    const size_t left = n - used;
    switch (state_) {
      case State::failed:
        return err(EBADMSG);
      case State::head: {
        if (left == 0) return used;
        auto r = parse_head(q, left, ev);
        if (!r) return r;
        used += *r;
        if (ev.kind != HttpEvent::Kind::none || *r == 0) return used;
        break;  // an interim response went by
      }
      case State::length_body:
      case State::chunk_data: {
        if (state_ == State::length_body && remaining_ == 0) {
          state_ = State::head;
          ev.kind = HttpEvent::Kind::end;
          return used;
        }
        if (left == 0) return used;
        const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, left));
        remaining_ -= take;
        if (state_ == State::chunk_data && remaining_ == 0) state_ = State::chunk_end;
        ev.kind = HttpEvent::Kind::body;
        ev.data = q;
        ev.size = take;
        return used + take;
      }
      case State::chunk_end:
        if (left >= 1 && q[0] != '\r') return fail();
        if (left >= 2 && q[1] != '\n') return fail();
        if (left < 2) return used;
        used += kCrlf.size();
        state_ = State::chunk_size;
        break;
      case State::chunk_size: {
        if (left == 0) return used;
        auto r = parse_chunk_size(q, left);
        if (!r) return r;
        if (*r == 0) return used;
        used += *r;
        break;
      }
      case State::trailer: {
        if (left == 0) return used;
        auto r = parse_trailer(q, left, ev);
        if (!r) return r;
        used += *r;
        if (ev.kind != HttpEvent::Kind::none || *r == 0) return used;
        break;
      }
    }
  }
}

Result<size_t> HttpResponseReader::next_from_carry(const uint8_t* p, size_t n, HttpEvent& ev) {
  size_t used = 0;
  while (used < n) {
    // Every framing unit ends with CRLF, so a line at a time never takes a body byte.
    const auto* lf = static_cast<const uint8_t*>(std::memchr(p + used, '\n', n - used));
    const size_t take = lf ? static_cast<size_t>(lf - (p + used)) + 1 : n - used;
    carry_.append(reinterpret_cast<const char*>(p + used), take);
    carried_ += take;
    used += take;
    auto r = parser_.next(reinterpret_cast<const uint8_t*>(carry_.data()), carry_.size(), ev);
    if (!r) return r;
    if (ev.kind != HttpEvent::Kind::none) {
      spent_ = *r;  // ev may point into the carry: keep it until the next call
      return used;
    }
    carry_.erase(0, *r);
    if (carry_.empty()) return used;
  }
  return used;
}

Result<size_t> HttpResponseReader::next(const uint8_t* p, size_t n, HttpEvent& ev) {
  ev = HttpEvent{};
  carry_.erase(0, spent_);
  spent_ = 0;
  size_t used = 0;
  if (!carry_.empty()) {
    auto r = next_from_carry(p, n, ev);
    if (!r) return r;
    used = *r;
    if (ev.kind != HttpEvent::Kind::none || !carry_.empty()) return used;
  }
  auto r = parser_.next(p + used, n - used, ev);
  if (!r) return r;
  used += *r;
  if (ev.kind == HttpEvent::Kind::none && used < n) {  // a unit cut by the end of the piece
    carry_.assign(reinterpret_cast<const char*>(p + used), n - used);
    carried_ += n - used;
    used = n;
  }
  return used;
}

}  // namespace slip::proto::http
