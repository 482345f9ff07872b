// The protocol table behind --proto.
#include "protocol.h"

namespace slip::loadgen {

const std::vector<ProtocolInfo>& protocols() {
  static const std::vector<ProtocolInfo> kAll = {
      {"synthetic-udp", Transport::udp, false, "apps/synthetic over UDP (spin server; --work asks for a service time)",
       make_synthetic},
      {"synthetic-tcp", Transport::tcp, false, "apps/synthetic over TCP, pipelined on each connection", make_synthetic},
      {"echo-udp", Transport::udp, false, "any UDP echo server (--req-size bytes, an id in the first 8)", make_echo},
      {"echo-tcp", Transport::tcp, false, "any TCP echo server (--req-size bytes per request)", make_echo},
      {"memcached", Transport::tcp, false, "memcached text protocol: get/set (--keys, --value-size, --get-ratio)",
       make_memcached_text},
      {"memcached-binary", Transport::tcp, false, "memcached binary protocol: GET/SET", make_memcached_binary},
      {"http", Transport::tcp, false, "HTTP/1.1 GET --path with keep-alive", make_http},
      {"sse", Transport::tcp, true,
       "OpenAI-style streaming completions (POST /v1/chat/completions, stream=true): TTFT, ITL, TPOT", make_sse},
  };
  return kAll;
}

const ProtocolInfo* find_protocol(std::string_view name) {
  for (const ProtocolInfo& p : protocols())
    if (p.name == name) return &p;
  return nullptr;
}

}  // namespace slip::loadgen
