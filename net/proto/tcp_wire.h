// TCP wire format (RFC 9293): the header, options (MSS, window scale, SACK
// permitted, SACK blocks, timestamps) and segment validation and building.
// The state machine lives in the stack; this file knows only bytes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "net/proto/bytes.h"
#include "net/proto/ipv4.h"
#include "net/proto/result.h"
#include "slip/net/addr.h"
#include "slip/net/buf.h"

namespace slip::net::proto {

inline constexpr uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04, kTcpPsh = 0x08;
inline constexpr uint8_t kTcpAck = 0x10, kTcpUrg = 0x20, kTcpEce = 0x40, kTcpCwr = 0x80;
inline constexpr size_t kTcpHdrLen = 20;     // without options
inline constexpr size_t kTcpMaxOptLen = 40;  // data offset 15
inline constexpr uint8_t kTcpMaxWscale = 14; // RFC 7323 2.3
inline constexpr size_t kTcpMaxSackBlocks = 4;
inline constexpr uint8_t kTcpOptEol = 0, kTcpOptNop = 1, kTcpOptMss = 2, kTcpOptWscale = 3;
inline constexpr uint8_t kTcpOptSackPerm = 4, kTcpOptSack = 5, kTcpOptTs = 8;

struct TcpHdr {
  uint8_t sport_be[2];
  uint8_t dport_be[2];
  uint8_t seq_be[4];
  uint8_t ack_be[4];
  uint8_t off_rsvd;  // data offset in 32-bit words, high nibble
  uint8_t flags;     // kTcp* bits
  uint8_t win_be[2];
  uint8_t csum_be[2];
  uint8_t urg_be[2];

  uint16_t sport() const noexcept { return load_be16(sport_be); }
  uint16_t dport() const noexcept { return load_be16(dport_be); }
  uint32_t seq() const noexcept { return load_be32(seq_be); }
  uint32_t ack() const noexcept { return load_be32(ack_be); }
  size_t hdr_len() const noexcept { return static_cast<size_t>(off_rsvd >> 4) * 4; }
  uint16_t window() const noexcept { return load_be16(win_be); }
  uint16_t checksum() const noexcept { return load_be16(csum_be); }
  uint16_t urgent() const noexcept { return load_be16(urg_be); }
};
static_assert(sizeof(TcpHdr) == kTcpHdrLen && alignof(TcpHdr) == 1);

struct SackBlock {
  uint32_t left = 0, right = 0;  // [left, right) in sequence space
  friend bool operator==(const SackBlock&, const SackBlock&) = default;
};

// The options of one segment, decoded; also the input of the writers below.
struct TcpOptions {
  bool has_mss = false, has_wscale = false, sack_permitted = false, has_ts = false;
  uint16_t mss = 0;
  uint8_t wscale = 0;  // clamped to kTcpMaxWscale
  uint32_t ts_val = 0, ts_ecr = 0;
  uint8_t sack_count = 0;
  SackBlock sacks[kTcpMaxSackBlocks];
};

// Decodes options (len bytes after the fixed header); false when malformed:
// a length byte missing, below 2 or past the end, or a known option of the
// wrong length (MSS 4, WS 3, SACK-permitted 2, SACK 2 + 8n with n in 1..4,
// timestamps 10). Unknown options are skipped; a later duplicate wins.
bool parse_tcp_options(const uint8_t* p, size_t len, TcpOptions& out) noexcept;

struct TcpView {
  const TcpHdr* hdr = nullptr;
  const uint8_t* payload = nullptr;
  uint16_t hdr_len = 0;
  uint16_t payload_len = 0;
  TcpOptions opts;
};

// Validates a segment of len bytes (the IP payload): kTcpShort, kTcpHeaderLen
// (data offset < 5 or past the segment), kTcpChecksum (skipped when
// hw_csum_good), kTcpOptions.
Parsed<TcpView> parse_tcp(const uint8_t* p, size_t len, Ipv4Addr src, Ipv4Addr dst,
                          bool hw_csum_good = false) noexcept;
inline Parsed<TcpView> parse_tcp(const Ipv4View& ip, bool hw_csum_good = false) noexcept {
  return parse_tcp(ip.payload, ip.payload_len, ip.hdr->src(), ip.hdr->dst(), hw_csum_good);
}

// SYN and SYN-ACK options from o (has_mss, sack_permitted, has_ts, has_wscale)
// in Linux's order and NOP padding: MSS; SACK-permitted + TS (or NOP NOP + one
// of them); NOP + WS. Writes at most 20 bytes, a multiple of 4; returns the count.
size_t write_syn_options(uint8_t* p, const TcpOptions& o) noexcept;
// Options of a synchronized segment: NOP NOP TS when has_ts, then NOP NOP SACK
// with the first sack_count blocks (at most 3 with TS, 4 without). Writes at
// most 40 bytes, a multiple of 4; returns the count.
size_t write_data_options(uint8_t* p, const TcpOptions& o) noexcept;

struct TcpTx {
  Endpoint src, dst;
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;  // already scaled down
  const uint8_t* opts = nullptr;  // from a writer above
  size_t opts_len = 0;            // a multiple of 4, at most 40
};

// Prepends a TCP header (with options) to the payload chain in b. The
// checksum is computed here, or with csum_offload the field holds the
// pseudo-header sum for the NIC and kTxTcpCsum is set. l4_len is set either
// way. nullptr without headroom, with bad opts_len, or when too long.
// payload_sum, when given, is csum_partial() of the payload already (summed
// as it was copied in), so only the header is summed here.
TcpHdr* push_tcp(PacketBuf& b, const TcpTx& t, bool csum_offload, const uint32_t* payload_sum = nullptr) noexcept;

}  // namespace slip::net::proto
