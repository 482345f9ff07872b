// The gateway's upstream side behind one interface, so a transport other
// than HTTP/1.1 (RDMA to the workers, a later issue) slots in without
// touching routing, admission or the proxy.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "slip/common/result.h"
#include "worker.h"

namespace slip::gateway {

struct UpstreamRequest {
  std::string_view method = "POST";
  std::string_view path;        // "/v1/chat/completions"
  std::string_view body;        // the client's JSON, passed through unchanged
  bool stream = false;          // the client asked for server-sent events
  std::string_view request_id;  // sent as X-Request-Id
};

struct UpstreamHead {
  int status = 0;
  bool event_stream = false;  // Content-Type: text/event-stream
  std::string content_type;
};

// One request's response. Destroying a call that was not read to its end
// aborts it: the worker sees its connection reset and cancels the request.
class UpstreamCall {
 public:
  virtual ~UpstreamCall() = default;
  // Waits for the response head (ETIMEDOUT at the deadline; call again).
  virtual Result<UpstreamHead> head(uint64_t deadline) = 0;
  // Appends the next body bytes that have arrived to out (waiting for some
  // until the deadline: ETIMEDOUT); false once the body has ended.
  virtual Result<bool> read_body(std::string& out, uint64_t deadline) = 0;
  // Cancels now.
  virtual void abort() = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Sends the request (connecting, or reusing a kept-alive connection).
  virtual Result<std::unique_ptr<UpstreamCall>> call(const Worker& w, const UpstreamRequest& r,
                                                     uint64_t connect_deadline) = 0;
  // Drops w's idle connections (it was ejected or removed).
  virtual void forget(const Worker& w) = 0;
};

}  // namespace slip::gateway
