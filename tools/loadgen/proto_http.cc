// HTTP/1.1 GET with keep-alive, pipelined on each connection.
#include "protocol.h"
#include "slip/proto/http/request_writer.h"
#include "slip/proto/http/response_parser.h"

namespace slip::loadgen {

std::string loadgen_request_head(std::string_view method, std::string_view target, std::string_view host) {
  proto::http::check_request_target("--path", target);
  proto::http::check_host("--host", host);
  std::string head = proto::http::request_head(method, target, host);
  proto::http::append_field(head, "User-Agent", "slip-loadgen");
  return head;
}

namespace {

using proto::http::HttpEvent;
using proto::http::HttpResponseParser;

// Every request is the same GET; a response is ok when its status is 2xx or 3xx.
class Http final : public ClientProtocol {
 public:
  explicit Http(const ProtocolConfig& cfg)
      : request_(loadgen_request_head("GET", cfg.path, cfg.host) + "Accept: */*\r\n\r\n") {}

  void build_request(uint64_t, std::string& out) override { out += request_; }

  Result<size_t> parse(const uint8_t* p, size_t n, uint64_t now, ResponseSink& sink) override {
    size_t used = 0;
    for (;;) {
      HttpEvent ev;
      auto r = parser_.next(p + used, n - used, ev);
      if (!r) return r;
      used += *r;
      switch (ev.kind) {
        case HttpEvent::Kind::none:
          return used;
        case HttpEvent::Kind::head:
          status_ = ev.status;
          break;
        case HttpEvent::Kind::body:
          break;
        case HttpEvent::Kind::end:
          sink.complete(0, status_ < 400 ? Outcome::ok : Outcome::error, now);
          break;
      }
    }
  }

 private:
  std::string request_;
  HttpResponseParser parser_;
  int status_ = 0;
};

}  // namespace

std::unique_ptr<ClientProtocol> make_http(const ProtocolConfig& cfg, uint32_t) { return std::make_unique<Http>(cfg); }

}  // namespace slip::loadgen
