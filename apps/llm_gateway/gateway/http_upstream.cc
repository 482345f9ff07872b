#include "http_upstream.h"

#include <algorithm>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "slip/proto/http/request_writer.h"
#include "slip/proto/http/response_parser.h"
#include "slip/runtime/sync.h"
#include "slip/runtime/time.h"

namespace slip::gateway {
namespace {

using proto::http::HttpEvent;
using proto::http::HttpResponseReader;

std::string key_of(const Worker& w) { return w.cfg.name + "@" + w.cfg.ip.str() + ":" + std::to_string(w.cfg.port); }

Result<size_t> write_all(net::TcpConn& c, std::string_view a, std::string_view b, uint64_t deadline) {
  while (!a.empty() || !b.empty()) {
    iovec iov[2];
    int n = 0;
    if (!a.empty()) iov[n++] = {const_cast<char*>(a.data()), a.size()};
    if (!b.empty()) iov[n++] = {const_cast<char*>(b.data()), b.size()};
    auto r = c.writev(iov, n, deadline);
    if (!r) return r;
    size_t k = *r;
    const size_t from_a = std::min(k, a.size());
    a.remove_prefix(from_a);
    b.remove_prefix(std::min(k - from_a, b.size()));
  }
  return size_t{0};
}

class HttpTransport;

class HttpCall final : public UpstreamCall {
 public:
  HttpCall(HttpTransport& t, const Worker& w, std::string head, std::string_view body)
      : t_(t), w_(w), key_(key_of(w)), req_head_(std::move(head)), body_(body) {}
  ~HttpCall() override;
  Result<size_t> start(uint64_t deadline);
  Result<UpstreamHead> head(uint64_t deadline) override;
  Result<bool> read_body(BodySink& sink, uint64_t deadline) override;
  void abort() override {
    if (conn_) conn_->abort();
    conn_.reset();
  }

 private:
  // One in-place read: the response bytes go through the reader where the
  // stack received them, and on_event(ev) sees each event until it returns
  // false; what follows then stays in the connection.
  template <class OnEvent>
  Result<net::TcpConn::InplaceRead> read_events(uint64_t deadline, OnEvent on_event);

  HttpTransport& t_;
  const Worker& w_;
  const std::string key_, req_head_;
  const std::string_view body_;
  std::unique_ptr<net::TcpConn> conn_;
  bool reused_ = false, got_any_ = false, ended_ = false, close_ = false;
  bool event_stream_ = false;
  bool stray_ = false;  // bytes came after the response's end: the connection is not reusable
  int error_ = 0;       // the response was malformed or too large; sticks
  uint64_t body_bytes_ = 0;
  HttpResponseReader reader_;
};

class HttpTransport final : public Transport {
 public:
  HttpTransport(net::Stack& st, const HttpUpstreamOptions& o) : st_(st), o_(o) {}

  Result<std::unique_ptr<UpstreamCall>> call(const Worker& w, const UpstreamRequest& r, uint64_t deadline) override {
    using proto::http::append_field;
    // Unchecked writers: the path is the gateway's own; the address and the key are the operator's config.
    std::string head;
    head.reserve(256);
    proto::http::append_request_line(head, r.method, r.path);
    append_field(head, "Host", w.cfg.ip.str() + ":" + std::to_string(w.cfg.port));
    append_field(head, "User-Agent", "slip-gateway");
    if (r.method != "GET") {
      append_field(head, "Content-Type", "application/json");
      append_field(head, "Content-Length", std::to_string(r.body.size()));
    }
    append_field(head, "Accept", r.stream ? "text/event-stream" : "application/json");
    if (!r.request_id.empty()) append_field(head, "X-Request-Id", r.request_id);
    if (!w.cfg.api_key.empty()) append_field(head, "Authorization", "Bearer " + w.cfg.api_key);
    head.append("\r\n");
    auto c = std::make_unique<HttpCall>(*this, w, std::move(head), r.method == "GET" ? std::string_view{} : r.body);
    auto s = c->start(deadline);
    if (!s) return err(s.error());
    return std::unique_ptr<UpstreamCall>(std::move(c));
  }

  void forget(const Worker& w) override {
    std::lock_guard g(mu_);
    idle_.erase(key_of(w));
  }

  // A kept-alive connection (fresh enough), or nullptr.
  std::unique_ptr<net::TcpConn> take(const std::string& key) {
    std::lock_guard g(mu_);
    auto it = idle_.find(key);
    if (it == idle_.end()) return nullptr;
    const uint64_t now = now_ns();
    auto& list = it->second;
    while (!list.empty()) {
      Idle i = std::move(list.back());
      list.pop_back();
      if (now - i.since < o_.idle_conn_ns) return std::move(i.conn);
    }
    return nullptr;
  }

  void put_back(const std::string& key, std::unique_ptr<net::TcpConn> c) {
    std::lock_guard g(mu_);
    auto& list = idle_[key];
    if (list.size() >= o_.idle_conns) return;  // closes c
    list.push_back({std::move(c), now_ns()});
  }

  Result<std::unique_ptr<net::TcpConn>> dial(const Worker& w, uint64_t deadline) {
    return st_.tcp_dial(net::Endpoint{w.cfg.ip, w.cfg.port}, deadline);
  }
  uint64_t max_response() const { return o_.max_response; }

 private:
  struct Idle {
    std::unique_ptr<net::TcpConn> conn;
    uint64_t since;
  };
  net::Stack& st_;
  const HttpUpstreamOptions o_;
  rt::Mutex mu_;
  std::unordered_map<std::string, std::vector<Idle>> idle_;
};

HttpCall::~HttpCall() {
  if (!conn_) return;
  if (ended_ && !close_ && !stray_) t_.put_back(key_, std::move(conn_));
  else conn_->abort();
}

Result<size_t> HttpCall::start(uint64_t deadline) {
  conn_ = t_.take(key_);
  reused_ = conn_ != nullptr;
  if (reused_) {
    auto r = write_all(*conn_, req_head_, body_, deadline);
    if (r) return r;
    conn_->abort();  // the worker closed it while idle: dial afresh
    reused_ = false;
  }
  auto c = t_.dial(w_, deadline);
  if (!c) return err(c.error());
  conn_ = std::move(*c);
  return write_all(*conn_, req_head_, body_, deadline);
}

template <class OnEvent>
Result<net::TcpConn::InplaceRead> HttpCall::read_events(uint64_t deadline, OnEvent on_event) {
  if (error_) return err(error_);
  if (!conn_) return err(ECONNABORTED);
  bool stop = false;
  auto r = conn_->read_inplace(
      [&](const uint8_t* p, size_t n) -> size_t {
        size_t used = 0;
        while (!stop && !error_) {
          HttpEvent ev;
          auto k = reader_.next(p + used, n - used, ev);
          if (!k) {
            error_ = k.error();
            break;
          }
          used += *k;
          if (ev.kind == HttpEvent::Kind::none) break;
          stop = !on_event(ev);
        }
        stray_ |= ended_ && used < n;
        return used;
      },
      deadline);
  if (r && r->taken > 0) got_any_ = true;
  if (error_) return err(error_);
  return r;
}

Result<UpstreamHead> HttpCall::head(uint64_t deadline) {
  for (;;) {
    bool got = false;
    UpstreamHead h;
    auto r = read_events(deadline, [&](const HttpEvent& ev) {
      if (ev.kind != HttpEvent::Kind::head) {
        error_ = EBADMSG;
        return false;
      }
      got = true;
      h.status = ev.status;
      h.content_type.assign(ev.content_type);  // ev's view dies with this read
      h.event_stream = proto::http::media_type_is(ev.content_type, "text/event-stream");
      close_ = ev.close;
      return false;  // the body stays in the connection for read_body
    });
    if (got) {
      event_stream_ = h.event_stream;
      return h;
    }
    if (r && !r->eof) continue;  // part of the head: wait for the rest
    if (r && !got_any_ && reused_) {
      // Closed idle before our request reached it: nothing was processed; resend once on a new connection.
      reused_ = false;
      conn_->abort();
      auto c = t_.dial(w_, deadline);
      if (!c) return err(c.error());
      conn_ = std::move(*c);
      auto s = write_all(*conn_, req_head_, body_, deadline);
      if (!s) return err(s.error());
      continue;
    }
    return err(r ? ECONNRESET : r.error());
  }
}

Result<bool> HttpCall::read_body(BodySink& sink, uint64_t deadline) {
  if (ended_) return false;
  bool gave = false;
  auto on_event = [&](const HttpEvent& ev) {
    if (ev.kind == HttpEvent::Kind::end) {
      ended_ = true;
      return false;
    }
    if (ev.kind != HttpEvent::Kind::body) {
      error_ = EBADMSG;  // a second response nobody asked for
      return false;
    }
    body_bytes_ += ev.size;
    if (!event_stream_ && body_bytes_ > t_.max_response()) {
      error_ = EMSGSIZE;
      return false;
    }
    sink.body(ev.data, ev.size);
    gave = true;
    return true;
  };
  // A body whose end needs no more bytes (Content-Length: 0) ends here.
  static constexpr uint8_t kNothing = 0;
  HttpEvent ev;
  if (auto k = reader_.next(&kNothing, 0, ev); k && ev.kind == HttpEvent::Kind::end) ended_ = true;
  while (!ended_) {
    auto r = read_events(deadline, on_event);
    if (!r) return err(r.error());
    if (r->eof) return err(ECONNRESET);  // EOF inside the body: the worker died
    if (gave) return true;  // the caller sees these bytes now, and the end (if it came) on the next call
  }
  return gave;
}

}  // namespace

std::unique_ptr<Transport> make_http_transport(net::Stack& st, const HttpUpstreamOptions& o) {
  return std::make_unique<HttpTransport>(st, o);
}

}  // namespace slip::gateway
