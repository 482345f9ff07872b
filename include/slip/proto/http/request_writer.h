// Client-side HTTP/1.1 request writing: the request line and fields, with
// setup checks so that text a user gives (a path, a host, a key) cannot break
// the framing. What a request says about its sender (User-Agent and the
// like) is the caller's to add.
#pragma once

#include <string>
#include <string_view>

namespace slip::proto::http {

// Setup checks. Each throws std::invalid_argument whose message starts with
// `what`, the caller's name for the value (a flag, a config key).
void check_request_target(std::string_view what, std::string_view target);
void check_host(std::string_view what, std::string_view host);
void check_field_value(std::string_view what, std::string_view value);

// "METHOD target HTTP/1.1\r\n", unchecked: for values checked at setup or
// written by the program itself (data paths do not throw).
void append_request_line(std::string& out, std::string_view method, std::string_view target);
// "name: value\r\n", unchecked likewise.
void append_field(std::string& out, std::string_view name, std::string_view value);

// The request line then Host, each with its CRLF; the caller adds its own
// fields and the blank line. Setup: throws std::invalid_argument when target
// or host would break the framing.
std::string request_head(std::string_view method, std::string_view target, std::string_view host);

}  // namespace slip::proto::http
