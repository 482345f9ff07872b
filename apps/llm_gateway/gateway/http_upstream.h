// HTTP/1.1 to OpenAI-compatible workers (vLLM, SGLang, TGI, llama.cpp's
// server, slip-worker) on either stack, with kept-alive connections per worker.
#pragma once

#include <memory>

#include "slip/net/stack.h"
#include "upstream.h"

namespace slip::gateway {

struct HttpUpstreamOptions {
  uint32_t idle_conns = 64;       // per worker
  uint64_t idle_conn_ns = 4'000'000'000;
  uint64_t max_response = 64u << 20;
};

std::unique_ptr<Transport> make_http_transport(net::Stack& st, const HttpUpstreamOptions& o);

}  // namespace slip::gateway
