// A small HTTP/1.1 server on slip::net::Stack (either stack), shared by
// slip-gateway and slip-worker: one uthread per connection reads requests
// with the wire module's bounded parser, and runs the routed handler right
// there (it may park), then reads the next request (keep-alive, pipelining).
// Slow clients are bounded by Limits' deadlines.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "http_responder.h"
#include "slip/net/stack.h"
#include "slip/proto/http/request_parser.h"
#include "slip/runtime/runtime.h"

namespace slip::app::http {

// ServerOptions carries the parser's limits and the two deadlines.
using proto::http::Limits;

using Handler = std::function<void(const Request&, Responder&)>;

// Method + exact path -> handler. Unknown paths get 404, known paths with
// another method 405 (with Allow), both with OpenAI-style error bodies. HEAD
// is served by the GET handler with the body left out.
class Router {
 public:
  void add(std::string method, std::string path, Handler h);
  void dispatch(const Request& req, Responder& res) const;

 private:
  struct Route {
    std::string method, path;
    Handler handler;
  };
  std::vector<Route> routes_;
};

struct ServerOptions {
  uint16_t port = 8000;  // 0: ephemeral (see HttpServer::port)
  Limits limits;
  unsigned max_connections = 10000;  // beyond: 503 and close
  // Set from outside the runtime (a signal handler): connections stop as if finish() had been called.
  const std::atomic<bool>* stop_flag = nullptr;
};

// Counters, summed over connections; read at any time.
struct ServerStats {
  std::atomic<uint64_t> connections{0}, requests{0}, bad_requests{0}, timeouts{0};
};

class HttpServer {
 public:
  HttpServer(net::Stack& st, const Router& router, ServerOptions opt);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Listens and starts accepting. Throws std::runtime_error naming the port and the cause.
  void start();
  uint16_t port() const { return port_; }
  const ServerStats& stats() const { return stats_; }
  // Stops accepting, tells connections to end, waits for them until
  // deadline_ns; false when some did not end in time.
  bool finish(uint64_t deadline_ns);

 private:
  bool stopping() const {
    return stop_.load(std::memory_order_relaxed) || (opt_.stop_flag && opt_.stop_flag->load(std::memory_order_relaxed));
  }
  void accept_loop();
  void serve(net::TcpConn& c);
  // Reads one request into p; false when the connection should close.
  bool read_request(net::TcpConn& c, proto::http::RequestParser& p);
  void reply_error_and_close(net::TcpConn& c, const Request& req, int status, const std::string& message);

  net::Stack& st_;
  const Router& router_;
  const ServerOptions opt_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> stop_seen_{false};  // what Responder::stopping() reads
  uint16_t port_ = 0;
  std::unique_ptr<net::TcpListener> listener_;
  rt::JoinHandle accept_thread_;
  std::atomic<int> live_{0};
  ServerStats stats_;
};

}  // namespace slip::app::http
