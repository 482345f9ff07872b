// Writing HTTP/1.1 responses on a slip::net::TcpConn: whole responses with a
// Content-Length, and streamed (chunked) responses whose every chunk goes to
// the connection as soon as it is given, for server-sent events. Errors carry
// OpenAI's error body, {"error":{"message","type","param","code"}}, which
// both of the apps on this server (slip-gateway, slip-worker) answer with.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "slip/common/result.h"
#include "slip/net/stack.h"
#include "slip/proto/http/request_parser.h"
#include "slip/proto/http/response_writer.h"

namespace slip::app::http {

// Handlers see requests as the wire module parses them.
using proto::http::Request;

// OpenAI's error "type" for a status: invalid_request_error for most 4xx,
// authentication_error, permission_error, rate_limit_error, server_error.
std::string_view error_type_for(int status);
// {"error":{"message":..,"type":..,"param":..|null,"code":..|null}}; empty param or code is null.
std::string openai_error_body(std::string_view message, std::string_view type, std::string_view param = {},
                              std::string_view code = {});

// Extra response fields; the writer adds Date, Content-Length or
// Transfer-Encoding, and Connection itself.
using Headers = std::initializer_list<proto::http::FieldRef>;

// The response side of one request, handed to its handler. A handler sends
// exactly one response: respond()/error(), or start_stream() + send_chunk()*
// + end_stream(). Writes park the handler's uthread; a failed write means the
// client is gone (the connection is then closed).
class Responder {
 public:
  Responder(net::TcpConn& conn, const Request& req, const std::atomic<bool>& stopping)
      : conn_(conn), req_(req), stopping_(stopping), head_only_(req.method == "HEAD"), close_(!req.keep_alive) {}

  Result<size_t> respond(int status, std::string_view content_type, std::string_view body, Headers extra = {});
  // An OpenAI error body; type defaults to error_type_for(status).
  Result<size_t> error(int status, std::string_view message, std::string_view type = {}, std::string_view param = {},
                       std::string_view code = {});

  // Sends the head of a chunked response (HTTP/1.0: a close-delimited one),
  // and first_chunk with it in the same write when there is one: a proxy
  // that holds the head until the first token then costs its client one
  // segment and one wake-up instead of two.
  Result<size_t> start_stream(int status, std::string_view content_type, Headers extra = {},
                              std::string_view first_chunk = {});
  // One chunk, written now; an empty chunk is skipped (it would end the body).
  Result<size_t> send_chunk(std::string_view data);
  Result<size_t> end_stream();

  // The client closed its side or reset the connection: a non-blocking check
  // for cancelling work whose answer nobody will read.
  bool peer_gone();
  // The server is shutting down: long handlers should end.
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }
  const Request& request() const { return req_; }
  // Ask for Connection: close on the response (before it is sent).
  void set_close() { close_ = true; }

  // For the server: whether a response was started, finished, and whether
  // the connection must close after it.
  bool started() const { return started_; }
  bool finished() const { return finished_; }
  bool must_close() const { return close_ || failed_ || (started_ && !finished_); }

 private:
  std::string head(int status, std::string_view content_type, Headers extra, proto::http::BodyFraming framing,
                   size_t length) const;
  Result<size_t> write(std::string_view a, std::string_view b = {}, std::string_view c = {},
                       std::string_view d = {});

  net::TcpConn& conn_;
  const Request& req_;
  const std::atomic<bool>& stopping_;
  bool head_only_, close_;
  bool started_ = false, finished_ = false, failed_ = false, chunked_ = false;
};

}  // namespace slip::app::http
