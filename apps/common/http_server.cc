#include "http_server.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <stdexcept>

namespace slip::app::http {
namespace {

// How long a blocking read waits before looking at the stop flag again.
constexpr uint64_t kPollNs = 100'000'000;
// After an error response, unread request bytes are drained this long (and
// up to kLingerBytes) so the close does not turn into a RST that destroys
// the response before the client reads it (nginx's lingering close).
constexpr uint64_t kLingerNs = 1'000'000'000;
constexpr size_t kLingerBytes = 4 << 20;

}  // namespace

void Router::add(std::string method, std::string path, Handler h) {
  routes_.push_back(Route{std::move(method), std::move(path), std::move(h)});
}

void Router::dispatch(const Request& req, Responder& res) const {
  const std::string_view method = req.method == "HEAD" ? std::string_view("GET") : std::string_view(req.method);
  std::string allow;
  for (const Route& r : routes_) {
    if (r.path != req.path) continue;
    if (r.method == method) {
      r.handler(req, res);
      return;
    }
    allow.append(allow.empty() ? "" : ", ").append(r.method);
  }
  const std::string what = "Invalid URL (" + req.method + " " + req.path + ")";
  if (allow.empty()) {
    (void)res.error(404, what);
    return;
  }
  const std::string body = openai_error_body("Method " + req.method + " not allowed for " + req.path + "; use " + allow,
                                             "invalid_request_error");
  (void)res.respond(405, "application/json", body, {{"Allow", allow}});
}

HttpServer::HttpServer(net::Stack& st, const Router& router, ServerOptions opt)
    : st_(st), router_(router), opt_(std::move(opt)) {}

HttpServer::~HttpServer() {
  if (listener_ && !stop_.load()) (void)finish(now_ns() + 2 * kPollNs);
}

void HttpServer::start() {
  auto l = st_.tcp_listen(opt_.port, 1024);
  if (!l)
    throw std::runtime_error("tcp port " + std::to_string(opt_.port) + ": " + l.message() +
                             " (pick another --port, or --port 0 for an ephemeral one)");
  listener_ = std::move(*l);
  port_ = listener_->local().port;
  accept_thread_ = rt::spawn([this] { accept_loop(); });
}

void HttpServer::accept_loop() {
  while (!stopping()) {
    auto c = listener_->accept(now_ns() + kPollNs);
    if (!c) continue;
    stats_.connections.fetch_add(1, std::memory_order_relaxed);
    live_.fetch_add(1);
    rt::spawn_detached([this, conn = std::move(*c)]() mutable {
      serve(*conn);
      conn->close();
      conn.reset();  // nothing touches the stack after live_ drops
      live_.fetch_sub(1);
    });
  }
  stop_seen_.store(true);
}

bool HttpServer::read_request(net::TcpConn& c, proto::http::RequestParser& p) {
  const uint64_t idle_deadline = now_ns() + opt_.limits.idle_timeout_ns;
  uint64_t req_deadline = 0;
  bool continued = false;
  while (!p.done() && !p.failed()) {
    if (p.started() && req_deadline == 0) req_deadline = now_ns() + opt_.limits.request_timeout_ns;
    const uint64_t deadline = req_deadline ? req_deadline : idle_deadline;
    auto r = c.read_inplace([&p](const uint8_t* b, size_t n) { return p.feed(b, n); },
                            std::min(deadline, now_ns() + kPollNs));
    if (!r) {
      if (r.error() != ETIMEDOUT || stopping()) return false;
      if (now_ns() < deadline) continue;
      if (!p.started()) return false;  // idle keep-alive connection: close quietly
      stats_.timeouts.fetch_add(1, std::memory_order_relaxed);
      reply_error_and_close(c, p.request(), 408, "the request did not arrive within the time limit");
      return false;
    }
    if (r->eof) return false;  // a partial request is dropped with the connection
    if (p.awaiting_body() && p.request().expect_continue && !continued) {
      continued = true;
      if (!c.write_full(proto::http::kContinue.data(), proto::http::kContinue.size())) return false;
    }
  }
  if (p.failed()) {
    stats_.bad_requests.fetch_add(1, std::memory_order_relaxed);
    reply_error_and_close(c, p.request(), p.error_status(), p.error_message());
    return false;
  }
  return true;
}

void HttpServer::reply_error_and_close(net::TcpConn& c, const Request& req, int status, const std::string& message) {
  Request r;  // the failed request may be half-filled: answer as HTTP/1.1 unless it was 1.0
  r.minor = req.minor;
  r.keep_alive = false;
  Responder res(c, r, stop_seen_);
  if (!res.error(status, message)) return;
  c.shutdown();
  uint8_t sink[4096];
  const uint64_t until = now_ns() + kLingerNs;
  for (size_t drained = 0; drained < kLingerBytes && now_ns() < until && !stopping();) {
    auto n = c.read(sink, sizeof sink, std::min(until, now_ns() + kPollNs));
    if (!n) {
      if (n.error() == ETIMEDOUT) continue;
      break;
    }
    if (*n == 0) break;
    drained += *n;
  }
}

void HttpServer::serve(net::TcpConn& c) {
  if (live_.load() > static_cast<int>(opt_.max_connections)) {
    Request r;
    reply_error_and_close(c, r, 503, "too many connections");
    return;
  }
  proto::http::RequestParser p(opt_.limits);
  while (!stopping()) {
    p.reset();
    if (!read_request(c, p)) return;
    stats_.requests.fetch_add(1, std::memory_order_relaxed);
    Responder res(c, p.request(), stop_seen_);
    router_.dispatch(p.request(), res);
    if (!res.started()) (void)res.error(500, "the handler sent no response");
    if (res.must_close()) return;
  }
}

bool HttpServer::finish(uint64_t deadline_ns) {
  stop_.store(true);
  accept_thread_.join();
  stop_seen_.store(true);
  while (live_.load() > 0 && now_ns() < deadline_ns) rt::sleep_for(std::chrono::milliseconds(5));
  return live_.load() == 0;
}

}  // namespace slip::app::http
