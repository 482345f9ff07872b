// slip/proto/memcached.h: exact request bytes (text and binary), replies
// parsed with their fields, incomplete replies at every cut, and strict
// rejection of malformed bytes.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "slip/proto/memcached.h"

using namespace slip::proto::memcached;
using namespace std::string_literals;

namespace {

constexpr uint64_t kMaxItem = 1 << 20;

std::string be(uint64_t v, int bytes) {
  std::string s;
  for (int i = bytes - 1; i >= 0; i--) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

// A binary response header and body.
std::string bin_response(uint8_t op, uint16_t status, uint32_t opaque, const std::string& extras,
                         const std::string& key, const std::string& value) {
  return "\x81"s + static_cast<char>(op) + be(key.size(), 2) + static_cast<char>(extras.size()) + '\0' +
         be(status, 2) + be(extras.size() + key.size() + value.size(), 4) + be(opaque, 4) + be(7, 8) + extras + key +
         value;
}

const uint8_t* u8(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

// True when some prefix of bytes, or the whole, is rejected as malformed.
bool text_rejected(const std::string& bytes) {
  for (size_t n = 1; n <= bytes.size(); n++) {
    auto r = parse_text_reply(std::string_view(bytes).substr(0, n), kMaxItem);
    if (!r) return r.error() == EBADMSG;
    if (r->len > 0) return false;
  }
  return false;
}

}  // namespace

TEST_CASE("memcached text requests are exact", "[memcached]") {
  std::string out;
  append_text_get(out, "key:0001");
  append_text_set(out, "k", 4294967295u, 60, "abcde");
  append_text_set(out, "e", 0, 0, "");
  CHECK(out == "get key:0001\r\nset k 4294967295 60 5\r\nabcde\r\nset e 0 0 0\r\n\r\n");
}

TEST_CASE("memcached text replies with their fields", "[memcached]") {
  using Kind = TextReply::Kind;
  const struct {
    std::string bytes;
    Kind kind;
  } simple[] = {{"STORED\r\n", Kind::stored},     {"NOT_STORED\r\n", Kind::not_stored},
                {"EXISTS\r\n", Kind::exists},     {"NOT_FOUND\r\n", Kind::not_found},
                {"END\r\n", Kind::miss},          {"ERROR\r\n", Kind::error},
                {"CLIENT_ERROR\r\n", Kind::client_error}, {"SERVER_ERROR out of memory\r\n", Kind::server_error}};
  for (const auto& s : simple) {
    INFO(s.bytes);
    const std::string in = s.bytes + "STORED\r\n";
    auto r = parse_text_reply(in, kMaxItem);
    REQUIRE(r);
    CHECK(r->len == s.bytes.size());
    CHECK(r->kind == s.kind);
  }
  auto e = parse_text_reply("SERVER_ERROR out of memory\r\n", kMaxItem);
  REQUIRE(e);
  CHECK(e->message == "out of memory");
  // A value with a cas whose data holds \r\nEND\r\n itself.
  const std::string hit = "VALUE k 4294967295 7 99\r\n\r\nEND\r\n\r\nEND\r\n";
  const std::string two = hit + "END\r\n";  // the views point into it
  auto v = parse_text_reply(two, kMaxItem);
  REQUIRE(v);
  CHECK(v->len == hit.size());
  CHECK(v->kind == Kind::value);
  CHECK(v->key == "k");
  CHECK(v->flags == 4294967295u);
  CHECK(v->data == "\r\nEND\r\n");
  CHECK(v->cas == 99);
  // Every cut short of the whole reply is incomplete, not an error.
  for (size_t cut = 0; cut < hit.size(); cut++) {
    auto r = parse_text_reply(std::string_view(hit).substr(0, cut), kMaxItem);
    REQUIRE(r);
    CHECK(r->len == 0);
  }
}

TEST_CASE("malformed memcached text replies are rejected", "[memcached]") {
  const std::vector<std::string> bad = {
      "STORED\n",                                     // bare \n
      "\r\n",                                         // empty line
      "HELLO\r\n",                                    // unknown reply
      "stored\r\n",                                   // replies are upper case
      "STORED \r\n",                                  // trailing space
      "ERROR x\r\n",                                  // ERROR carries no message
      "VALUE\r\n",                                    // no fields
      "VALUE k 0\r\n",                                // no length
      "VALUE k 0 5 \r\nabcde\r\nEND\r\n",             // trailing space
      "VALUE k 0 5 1 2\r\nabcde\r\nEND\r\n",          // extra field
      "VALUE k x 5\r\nabcde\r\nEND\r\n",              // flags not a number
      "VALUE k 4294967296 5\r\nabcde\r\nEND\r\n",     // flags over 32 bits
      "VALUE k 0 -5\r\nabcde\r\nEND\r\n",             // negative length
      "VALUE k 0 +5\r\nabcde\r\nEND\r\n",             // signed length
      "VALUE k 0 99999999999\r\n",                    // length beyond the item limit
      "VALUE  k 0 5\r\nabcde\r\nEND\r\n",             // empty key
      "VALUE k\x01 0 5\r\nabcde\r\nEND\r\n",          // control byte in the key
      "VALUE " + std::string(251, 'k') + " 0 5\r\n",  // key over 250 bytes
      "VALUE k 0 5\r\nabcdef\r\nEND\r\n",             // data longer than said
      "VALUE k 0 5\r\nabcd\r\nEND\r\n",               // data shorter than said
      "VALUE k 0 5\r\nabcdeEND\r\n",                  // no \r\n after the data
      "VALUE k 0 5\r\nabcde\r\nVALUE k 0 5\r\n",      // no END (a multi-get answer)
      "VALUE k 0 5\r\nabcde\r\nEND\n",                // END without \r
      std::string(3000, 'S'),                         // a line that never ends
      "SERVER_ERROR " + std::string(2100, 'x') + "\r\n",
  };
  for (const std::string& b : bad) {
    INFO(b.substr(0, 60));
    CHECK(text_rejected(b));
  }
  CHECK_FALSE(parse_text_reply("VALUE k 0 5\r\nabcde\r\nEND\r\n", 4));  // over the caller's item limit
}

TEST_CASE("memcached keys: 1 to 250 bytes without spaces or control bytes", "[memcached]") {
  CHECK(valid_key("k"));
  CHECK(valid_key(std::string(250, 'k')));
  CHECK_FALSE(valid_key(""));
  CHECK_FALSE(valid_key(std::string(251, 'k')));
  CHECK_FALSE(valid_key("a b"));
  CHECK_FALSE(valid_key("a\x7f"));
}

TEST_CASE("memcached binary requests are exact", "[memcached]") {
  std::string out;
  append_binary_get(out, "key:0001", 3);
  CHECK(out == "\x80\x00"s + be(8, 2) + '\0' + '\0' + be(0, 2) + be(8, 4) + be(3, 4) + be(0, 8) + "key:0001");
  out.clear();
  append_binary_set(out, "k", 9, 60, "abcde", 0xfffffffe);
  CHECK(out == "\x80\x01"s + be(1, 2) + '\x08' + '\0' + be(0, 2) + be(8 + 1 + 5, 4) + be(0xfffffffe, 4) + be(0, 8) +
                   be(9, 4) + be(60, 4) + "kabcde");
}

TEST_CASE("memcached binary replies with their fields, complete or not", "[memcached]") {
  const std::string hit = bin_response(kOpGet, kStatusOk, 5, be(1, 4), "", "abcde");
  auto r = parse_binary_reply(u8(hit), hit.size(), kMaxItem);
  REQUIRE(r);
  CHECK(r->len == hit.size());
  CHECK(r->opcode == kOpGet);
  CHECK(r->status == kStatusOk);
  CHECK(r->opaque == 5);
  CHECK(r->cas == 7);
  CHECK(r->extras == be(1, 4));
  CHECK(r->key.empty());
  CHECK(r->value == "abcde");
  for (size_t cut = 0; cut < hit.size(); cut++) {
    auto p = parse_binary_reply(u8(hit), cut, kMaxItem);
    REQUIRE(p);
    CHECK(p->len == 0);
    if (cut >= kBinaryHeader) CHECK(p->opaque == 5);  // the header's fields come with the header
  }
  const std::string keyed = bin_response(kOpGet, kStatusKeyNotFound, 1, "", "k", "Not found");
  auto m = parse_binary_reply(u8(keyed), keyed.size(), kMaxItem);
  REQUIRE(m);
  CHECK(m->key == "k");
  CHECK(m->value == "Not found");
}

TEST_CASE("malformed memcached binary replies are rejected", "[memcached]") {
  std::string wrong_magic = bin_response(kOpSet, 0, 1, "", "", "");
  wrong_magic[0] = '\x80';
  std::string datatype = bin_response(kOpSet, 0, 1, "", "", "");
  datatype[5] = 1;
  std::string short_body = bin_response(kOpGet, 0, 1, be(0, 4), "", "");  // body 4, but extras 4 + key 2
  short_body[3] = 2;
  std::string huge = bin_response(kOpSet, 0, 1, "", "", "");
  huge.replace(8, 4, be(64u << 20, 4));
  const std::string no_flags = bin_response(kOpGet, kStatusOk, 1, "", "", "abc");
  for (const std::string& b : {datatype, short_body, huge, no_flags}) {
    auto r = parse_binary_reply(u8(b), b.size(), kMaxItem + 300);
    REQUIRE_FALSE(r);
    CHECK(r.error() == EBADMSG);
  }
  CHECK_FALSE(parse_binary_reply(u8(wrong_magic), 1, kMaxItem));  // seen from the first byte
  CHECK(parse_binary_reply(u8("\x81"s), 1, kMaxItem));
}
