// libFuzzer target for every slip-loadgen response parser. The first byte
// picks the protocol; the rest arrives in chunks of data-derived sizes, and
// stream protocols keep what parse() left, as the engine does. Each parse sees
// an exact-size copy, so ASan catches any read past what has arrived.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "protocol.h"

using namespace slip::loadgen;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

struct CountingSink final : ResponseSink {
  uint64_t events = 0;
  void complete(uint64_t, Outcome o, uint64_t) noexcept override {
    check(o == Outcome::ok || o == Outcome::miss || o == Outcome::error);
    events++;
  }
  void token(uint64_t) noexcept override { events++; }
};

// Parses [p, p + n) from an exact-size heap copy; false when it was rejected.
bool parse_copy(ClientProtocol& proto, const char* p, size_t n, size_t& used, CountingSink& sink) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[n]);
  std::memcpy(copy.get(), p, n);
  const uint64_t before = sink.events;
  auto r = proto.parse(copy.get(), n, 0, sink);
  if (!r) return false;
  used = *r;
  check(used <= n);
  check(used > 0 || sink.events == before);  // nothing reported without consuming bytes
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const auto& all = protocols();
  const ProtocolInfo& info = all[data[0] % all.size()];
  ProtocolConfig cfg;
  cfg.keys = 100;
  std::unique_ptr<ClientProtocol> proto;
  try {
    proto = info.make(cfg, data[0]);
  } catch (...) {
    return 0;  // a protocol not built yet
  }
  std::string requests;
  for (uint64_t id = 1; id <= 8; id++) proto->build_request(id, requests);
  if (proto->preload_count() > 0) proto->build_preload(0, requests);

  CountingSink sink;
  std::string buf;
  uint32_t state = 0x9e3779b9u ^ data[0];
  const char* in = reinterpret_cast<const char*>(data + 1);
  size_t left = size - 1;
  while (left > 0) {
    state ^= state << 13, state ^= state >> 17, state ^= state << 5;  // xorshift32
    const size_t chunk = std::min<size_t>(left, 1 + state % ((state >> 28) < 4 ? 8 : 512));
    size_t used = 0;
    if (info.transport == Transport::udp) {
      if (!parse_copy(*proto, in, chunk, used, sink)) return 0;
    } else {
      buf.append(in, chunk);
      if (!parse_copy(*proto, buf.data(), buf.size(), used, sink)) return 0;
      buf.erase(0, used);
    }
    in += chunk;
    left -= chunk;
  }
  return 0;
}
