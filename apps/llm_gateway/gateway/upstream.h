// The gateway's upstream side behind one interface, so a transport other
// than HTTP/1.1 (RDMA to the workers, a later issue) slots in without
// touching routing, admission or the proxy.
#pragma once

#include <cstddef>
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

// Takes a response's body bytes where the transport received them, so the
// proxy copies each byte once at most. It runs inside the transport's
// receive (on Slipstream's stack with the connection locked): it must not
// block or use the call, and the bytes are gone when it returns.
class BodySink {
 public:
  virtual void body(const uint8_t* p, size_t n) = 0;

 protected:
  ~BodySink() = default;
};

// One request's response. Destroying a call that was not read to its end
// aborts it: the worker sees its connection reset and cancels the request.
class UpstreamCall {
 public:
  virtual ~UpstreamCall() = default;
  // Waits for the response head (ETIMEDOUT at the deadline; call again).
  virtual Result<UpstreamHead> head(uint64_t deadline) = 0;
  // Hands the body bytes that have arrived to sink (waiting for some until
  // the deadline: ETIMEDOUT); true when it gave some, false once the body
  // has ended and nothing more came with the end.
  virtual Result<bool> read_body(BodySink& sink, uint64_t deadline) = 0;
  // The same, appended to out.
  Result<bool> read_body_to(std::string& out, uint64_t deadline);
  // Cancels now.
  virtual void abort() = 0;
};

inline Result<bool> UpstreamCall::read_body_to(std::string& out, uint64_t deadline) {
  class Append final : public BodySink {
   public:
    explicit Append(std::string& s) : s_(s) {}
    void body(const uint8_t* p, size_t n) override { s_.append(reinterpret_cast<const char*>(p), n); }

   private:
    std::string& s_;
  } append(out);
  return read_body(append, deadline);
}

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
