// libFuzzer target for the stateless receive chain: any bytes as an Ethernet
// frame go through ether -> arp | ipv4 -> icmp | udp | tcp (options
// included) without a crash or an out-of-bounds read, both with software
// checksums and as if the NIC had verified them (which lets mutations reach
// the deeper parsers). Frames that decode also satisfy a few invariants.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "net/proto/rx.h"

using namespace slip::net;
using namespace slip::net::proto;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

// A PacketBuf over static memory, holding a copy of the frame.
struct Scratch {
  uint8_t mem[BufPool::kHeadroom + 70000];
  PacketBuf b;
  void reset() {
    b.head = mem;
    b.data = mem + BufPool::kHeadroom;
    b.len = 0;
    b.capacity = sizeof(mem);
    b.offload_flags = 0;
  }
  bool load(const uint8_t* p, size_t n) {
    if (n == 0 || n > sizeof(mem) - BufPool::kHeadroom) return false;
    reset();
    std::memcpy(b.append(n), p, n);
    return true;
  }
};
Scratch scratch;

// The options we write for what we parsed parse back the same.
void check_option_writers(const TcpOptions& o) {
  uint8_t buf[kTcpMaxOptLen];
  TcpOptions back;
  const size_t n = write_data_options(buf, o);
  check(n % 4 == 0 && n <= kTcpMaxOptLen);
  check(parse_tcp_options(buf, n, back));
  check(back.has_ts == o.has_ts && back.ts_val == (o.has_ts ? o.ts_val : 0));
  const size_t m = write_syn_options(buf, o);
  check(m % 4 == 0 && m <= 20);
  check(parse_tcp_options(buf, m, back));
  check(back.has_mss == o.has_mss && back.mss == (o.has_mss ? o.mss : 0));
  check(back.wscale == (o.has_wscale ? o.wscale : 0));
}

void check_frame(const uint8_t* data, size_t size, const RxFrame& f) {
  if (f.tcp.hdr) {
    check(f.tcp.payload + f.tcp.payload_len <= data + size);
    check_option_writers(f.tcp.opts);
  }
  if (f.udp.hdr) check(f.udp.payload + f.udp.payload_len <= data + size);
  if (!f.icmp.hdr) return;
  check(f.icmp.body + f.icmp.body_len <= data + size);
  (void)parse_icmp_quote(f.icmp);
  if (f.icmp.hdr->type == kIcmpEchoRequest && scratch.load(data, size)) {
    // A valid request always gives a valid reply.
    check(icmp_echo_reply_in_place(scratch.b, MacAddr{}, Ipv4Addr::of(10, 0, 0, 1)));
    const auto r = decode_frame(scratch.b);
    check(r.ok() && r.view.icmp.hdr && r.view.icmp.hdr->type == kIcmpEchoReply);
  }
  if (f.ip.hdr) {
    scratch.reset();
    check(build_icmp_unreach(scratch.b, kIcmpCodePortUnreach, reinterpret_cast<const uint8_t*>(f.ip.hdr),
                             f.ip.hdr_len + f.ip.payload_len));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (uint32_t flags : {0u, PacketBuf::kRxIpCsumGood | PacketBuf::kRxL4CsumGood}) {
    const auto r = decode_frame(data, size, flags);
    if (r.ok()) {
      check_frame(data, size, r.view);
    } else {
      check(r.drop < Drop::kCount);
    }
  }
  // The option parser alone, on raw bytes.
  TcpOptions o;
  if (parse_tcp_options(data, size < kTcpMaxOptLen ? size : kTcpMaxOptLen, o))
    check(o.sack_count <= kTcpMaxSackBlocks && o.wscale <= kTcpMaxWscale);
  return 0;
}
