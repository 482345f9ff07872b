// Incremental HTTP/1.1 request parsing: lines are collected (bounded) and
// parsed whole; bodies are copied as they come.
#include "slip/proto/http/request_parser.h"

#include <algorithm>
#include <cstring>

namespace slip::proto::http {
namespace {

// Calls f on each comma-separated, trimmed, non-empty element of a list value.
template <class F>
void for_each_element(std::string_view v, F f) {
  while (!v.empty()) {
    const size_t c = v.find(',');
    const std::string_view e = trim_ows(v.substr(0, c));
    if (!e.empty()) f(e);
    if (c == std::string_view::npos) break;
    v.remove_prefix(c + 1);
  }
}

}  // namespace

const std::string* Request::header(std::string_view lower_name) const {
  for (const Field& f : headers)
    if (f.name == lower_name) return &f.value;
  return nullptr;
}

void RequestParser::reset() {
  state_ = State::request_line;
  req_ = Request{};
  line_.clear();
  head_bytes_ = fields_ = 0;
  remaining_ = 0;
  started_ = false;
  err_status_ = 0;
  err_msg_.clear();
}

size_t RequestParser::fail(int status, std::string msg) {
  if (state_ != State::failed) {
    state_ = State::failed;
    err_status_ = status;
    err_msg_ = std::move(msg);
  }
  return 0;
}

size_t RequestParser::line_limit() const {
  switch (state_) {
    case State::request_line: return lim_.max_request_line;
    case State::headers:
    case State::trailers: return lim_.max_header_bytes;
    default: return lim_.max_chunk_line;
  }
}

int RequestParser::line_limit_status() const {
  switch (state_) {
    case State::request_line: return 414;
    case State::headers:
    case State::trailers: return 431;
    default: return 400;
  }
}

size_t RequestParser::feed(const uint8_t* p, size_t n) {
  const char* s = reinterpret_cast<const char*>(p);
  size_t i = 0;
  while (i < n && state_ != State::done && state_ != State::failed) {
    started_ = true;
    if (state_ == State::body || state_ == State::chunk_data) {
      const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, n - i));
      req_.body.append(s + i, take);
      remaining_ -= take;
      i += take;
      if (remaining_ == 0) state_ = state_ == State::body ? State::done : State::chunk_crlf;
      continue;
    }
    const char* nl = static_cast<const char*>(std::memchr(s + i, '\n', n - i));
    const size_t seg = nl ? static_cast<size_t>(nl - (s + i)) : n - i;
    const bool head = state_ == State::request_line || state_ == State::headers || state_ == State::trailers;
    if (line_.size() + seg > line_limit()) {
      return i + fail(line_limit_status(), state_ == State::request_line ? "request line too long"
                                           : head ? "request header fields too large" : "chunk size line too long");
    }
    if (head && head_bytes_ + seg + 1 > lim_.max_header_bytes)
      return i + fail(431, "request header fields too large");
    line_.append(s + i, seg);
    i += seg;
    if (head) head_bytes_ += seg;
    if (!nl) break;
    i++;  // the LF
    if (head) head_bytes_++;
    if (line_.empty() || line_.back() != '\r') return i + fail(400, "line not ended by CRLF");
    line_.pop_back();
    if (line_.find('\r') != std::string::npos) return i + fail(400, "stray CR in a line");
    on_line(line_);
    line_.clear();
  }
  return i;
}

void RequestParser::on_line(std::string_view line) {
  switch (state_) {
    case State::request_line:
      if (!line.empty()) on_request_line(line);  // empty lines before a request are ignored (RFC 9112 §2.2)
      break;
    case State::headers:
      if (line.empty()) end_of_head();
      else on_field(line, false);
      break;
    case State::trailers:
      if (line.empty()) state_ = State::done;
      else on_field(line, true);
      break;
    case State::chunk_size:
      on_chunk_size(line);
      break;
    case State::chunk_crlf:
      if (!line.empty()) fail(400, "chunk data longer than its size");
      else state_ = State::chunk_size;
      break;
    default:
      break;
  }
}

void RequestParser::on_request_line(std::string_view line) {
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    fail(400, "malformed request line");
    return;
  }
  const std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                         version = line.substr(sp2 + 1);
  if (method.empty() || !std::all_of(method.begin(), method.end(), is_tchar)) {
    fail(400, "malformed method");
    return;
  }
  const bool target_ok = !target.empty() && (target[0] == '/' || target == "*") &&
                         std::none_of(target.begin(), target.end(), [](char c) {
                           const auto u = static_cast<unsigned char>(c);
                           return u <= 0x20 || u >= 0x7f;
                         });
  if (!target_ok) {
    fail(400, "malformed request target");
    return;
  }
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || !is_digit(version[5]) || version[6] != '.' ||
      !is_digit(version[7])) {
    fail(400, "malformed HTTP version");
    return;
  }
  if (version[5] != '1' || (version[7] != '0' && version[7] != '1')) {
    fail(505, "only HTTP/1.0 and HTTP/1.1 are supported");
    return;
  }
  req_.method.assign(method);
  req_.target.assign(target);
  const size_t q = target.find('?');
  req_.path.assign(target.substr(0, q));
  if (q != std::string_view::npos) req_.query.assign(target.substr(q + 1));
  req_.minor = version[7] - '0';
  state_ = State::headers;
}

void RequestParser::on_field(std::string_view line, bool trailer) {
  if (++fields_ > lim_.max_headers) {
    fail(431, "too many header fields");
    return;
  }
  const size_t colon = line.find(':');
  if (colon == 0 || colon == std::string_view::npos) {
    fail(400, is_ows(line[0]) ? "obsolete line folding is not accepted" : "malformed header field");
    return;
  }
  const std::string_view name = line.substr(0, colon), value = trim_ows(line.substr(colon + 1));
  if (!std::all_of(name.begin(), name.end(), is_tchar) || !is_text(value)) {
    fail(400, "malformed header field");
    return;
  }
  if (trailer) return;  // trailers are checked and dropped
  Field f;
  f.name.resize(name.size());
  std::transform(name.begin(), name.end(), f.name.begin(), ascii_lower);
  f.value.assign(value);
  req_.headers.push_back(std::move(f));
}

void RequestParser::end_of_head() {
  Request& r = req_;
  int hosts = 0;
  bool has_te = false, has_length = false, bad_length = false, bad_te = false;
  uint64_t length = 0;
  std::string expect;
  r.keep_alive = r.minor == 1;
  for (const Field& f : r.headers) {
    if (f.name == "host") {
      hosts++;
    } else if (f.name == "connection") {
      for_each_element(f.value, [&](std::string_view e) {
        if (iequals(e, "close")) r.keep_alive = false;
        else if (iequals(e, "keep-alive") && r.minor == 0) r.keep_alive = true;
      });
    } else if (f.name == "transfer-encoding") {
      for_each_element(f.value, [&](std::string_view e) {
        bad_te |= has_te || !iequals(e, "chunked");  // chunked, once, and nothing else
        has_te = true;
      });
    } else if (f.name == "content-length") {
      for_each_element(f.value, [&](std::string_view e) {
        uint64_t v = 0;
        bool ok = e.size() <= 18 && std::all_of(e.begin(), e.end(), is_digit);
        for (char c : e) v = v * 10 + static_cast<uint64_t>(c - '0');
        bad_length |= !ok || (has_length && v != length);
        has_length = true;
        length = v;
      });
      if (f.value.empty()) bad_length = true;
    } else if (f.name == "expect") {
      expect = f.value;
    }
  }
  if (r.minor == 1 && hosts != 1) {
    fail(400, hosts == 0 ? "missing Host header" : "more than one Host header");
    return;
  }
  if (hosts > 1) {
    fail(400, "more than one Host header");
    return;
  }
  if (has_te && (has_length || r.minor == 0)) {
    fail(400, has_length ? "both Transfer-Encoding and Content-Length" : "Transfer-Encoding in an HTTP/1.0 request");
    return;
  }
  if (bad_te) {
    fail(501, "only the chunked transfer coding is supported");
    return;
  }
  if (bad_length) {
    fail(400, "invalid Content-Length");
    return;
  }
  if (has_length && length > lim_.max_body) {
    fail(413, "request body larger than " + std::to_string(lim_.max_body) + " bytes");
    return;
  }
  if (!expect.empty() && !iequals(expect, "100-continue")) {
    fail(417, "unsupported expectation");
    return;
  }
  const bool body = has_te || length > 0;
  r.expect_continue = body && !expect.empty() && r.minor == 1;
  r.chunked = has_te;
  if (has_te) {
    state_ = State::chunk_size;
  } else if (length > 0) {
    r.body.reserve(static_cast<size_t>(length));
    remaining_ = length;
    state_ = State::body;
  } else {
    state_ = State::done;
  }
}

void RequestParser::on_chunk_size(std::string_view line) {
  uint64_t size = 0;
  size_t i = 0;
  for (; i < line.size() && hex_value(line[i]) >= 0; i++) {
    if (i == 15) {
      fail(400, "chunk size too large");
      return;
    }
    size = size * 16 + static_cast<uint64_t>(hex_value(line[i]));
  }
  std::string_view ext = line.substr(i);
  while (!ext.empty() && is_ows(ext.front())) ext.remove_prefix(1);
  if (i == 0 || (!ext.empty() && (ext.front() != ';' || !is_text(ext))) || (ext.empty() && i != line.size())) {
    fail(400, "malformed chunk size line");
    return;
  }
  if (req_.body.size() + size > lim_.max_body) {
    fail(413, "request body larger than " + std::to_string(lim_.max_body) + " bytes");
    return;
  }
  if (size == 0) {
    state_ = State::trailers;
  } else {
    remaining_ = size;
    state_ = State::chunk_data;
  }
}

}  // namespace slip::proto::http
