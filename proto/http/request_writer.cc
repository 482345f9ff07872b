#include "slip/proto/http/request_writer.h"

#include <algorithm>
#include <stdexcept>

#include "slip/proto/http/syntax.h"

namespace slip::proto::http {

void check_request_target(std::string_view what, std::string_view target) {
  const bool ok = !target.empty() && std::none_of(target.begin(), target.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
  if (!ok)
    throw std::invalid_argument(std::string(what) +
                                " must be a request target without spaces or control characters, e.g. /index.html");
}

void check_field_value(std::string_view what, std::string_view value) {
  if (!is_text(value) || trim_ows(value).size() != value.size())
    throw std::invalid_argument(std::string(what) +
                                " must be printable text without control characters or surrounding spaces");
}

void check_host(std::string_view what, std::string_view host) {
  if (host.empty() || host.find_first_of(" \t") != std::string_view::npos)
    throw std::invalid_argument(std::string(what) + " must be a host name (or host:port) without spaces");
  check_field_value(what, host);
}

void append_request_line(std::string& out, std::string_view method, std::string_view target) {
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

std::string request_head(std::string_view method, std::string_view target, std::string_view host) {
  check_request_target("the request target", target);
  check_host("the Host field", host);
  std::string out;
  append_request_line(out, method, target);
  append_field(out, "Host", host);
  return out;
}

}  // namespace slip::proto::http
