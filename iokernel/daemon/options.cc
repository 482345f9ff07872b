// iokerneld's settings. Every error names where (file:line:column for the
// config file, the flag otherwise) and how to fix it.
#include "iokernel/daemon/options.h"

#include <sched.h>

#include <grp.h>
#include <pwd.h>
#include <sys/un.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string_view>

namespace slip::iok {
namespace {

constexpr std::string_view kKeys[] = {"socket",       "socket_mode", "socket_group", "allow_uid",
                                      "allow_gid",    "stats_socket", "vdev",        "port_name",
                                      "file_prefix",  "no_port",     "idle_backoff", "stall_timeout",
                                      "cores",        "core_interval_us"};
// Tables of the shared config file that other programs read.
constexpr std::string_view kForeignTables[] = {"runtime", "net", "gateway", "kvstore", "rdma", "loadgen"};
constexpr double kMinStall = 0.01, kMaxStall = 3600;
constexpr double kMinInterval = 1, kMaxInterval = 1'000'000;  // core allocation pass, microseconds

template <size_t N>
bool contains(const std::string_view (&list)[N], std::string_view s) {
  return std::find(std::begin(list), std::end(list), s) != std::end(list);
}

std::string where(const std::string& origin, const toml::source_region& r) {
  return fmt::format("{}:{}:{}", origin, r.begin.line, r.begin.column);
}

std::string known_keys() {
  std::string out;
  for (std::string_view k : kKeys) out += (out.empty() ? "" : ", ") + std::string(k);
  return out;
}

// One value of [iokernel]: converted, or an OptionsError naming its position.
class Value {
 public:
  Value(const std::string& origin, std::string_view key, const toml::node& v)
      : origin_(origin), key_(key), v_(v) {}

  [[noreturn]] void fail(const std::string& expected) const {
    std::ostringstream got;
    if (v_.is_table()) got << "a table";
    else if (v_.is_array()) got << "an array";
    else v_.visit([&](auto&& x) { got << x; });
    throw OptionsError(fmt::format("{}: iokernel.{}: expected {}, got {}", where(origin_, v_.source()), key_, expected,
                                   got.str()));
  }
  std::string string() const {
    if (auto s = v_.as_string()) return s->get();
    fail("a string");
  }
  bool boolean() const {
    if (auto b = v_.as_boolean()) return b->get();
    fail("true or false");
  }
  // An integer or a float in [lo, hi]; what names the unit in the error.
  double number(double lo, double hi, const char* what) const {
    double s = -1;
    if (auto i = v_.as_integer()) s = static_cast<double>(i->get());
    else if (auto f = v_.as_floating_point()) s = f->get();
    if (!(s >= lo && s <= hi)) fail(what);
    return s;
  }
  double seconds() const { return number(kMinStall, kMaxStall, "a number of seconds from 0.01 to 3600"); }
  double micros() const { return number(kMinInterval, kMaxInterval, "a number of microseconds from 1 to 1000000"); }
  int64_t integer(int64_t lo, int64_t hi) const {
    auto i = v_.as_integer();
    if (!i || i->get() < lo || i->get() > hi) fail(fmt::format("an integer from {} to {}", lo, hi));
    return i->get();
  }
  // A permission mode: "0660" or 0o660.
  std::string mode() const {
    if (auto i = v_.as_integer()) {
      if (i->get() < 0 || i->get() > 0777) fail("a mode like \"0660\" or 0o660 (decimal 660 is not octal)");
      return fmt::format("0{:o}", i->get());
    }
    if (v_.is_string()) return string();
    fail("a mode like \"0660\" or 0o660");
  }
  // Users or groups: an array of names and numbers.
  std::vector<std::string> names() const {
    const auto* a = v_.as_array();
    if (!a) fail("an array of names or ids, like [\"alice\", 1001]");
    std::vector<std::string> out;
    for (const toml::node& e : *a) {
      if (auto s = e.as_string()) out.push_back(s->get());
      else if (auto i = e.as_integer(); i && i->get() >= 0) out.push_back(std::to_string(i->get()));
      else Value(origin_, key_, e).fail("a name or a non-negative id");
    }
    return out;
  }

 private:
  const std::string& origin_;
  std::string_view key_;
  const toml::node& v_;
};

// The CPUs this process may run on, less the one its loop spins on; at least 1.
unsigned default_cores() noexcept {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  const int n = CPU_COUNT(&set);
  return n > 1 ? static_cast<unsigned>(n - 1) : 1;
}

void apply_table(const toml::table& t, const std::string& origin, DaemonOptions& o) {
  for (auto&& [k, node] : t) {
    const std::string_view key = k.str();
    const Value v(origin, key, node);
    if (key == "socket") o.socket = v.string();
    else if (key == "socket_mode") o.socket_mode = v.mode();
    else if (key == "socket_group") o.socket_group = v.string();
    else if (key == "allow_uid") o.allow_uid = v.names();
    else if (key == "allow_gid") o.allow_gid = v.names();
    else if (key == "stats_socket") o.stats_socket = v.string();
    else if (key == "vdev") o.vdev = v.string();
    else if (key == "port_name") o.port_name = v.string();
    else if (key == "file_prefix") o.file_prefix = v.string();
    else if (key == "no_port") o.no_port = v.boolean();
    else if (key == "idle_backoff") o.idle_backoff = v.boolean();
    else if (key == "stall_timeout") o.stall_timeout_s = v.seconds();
    else if (key == "cores") o.cores = static_cast<unsigned>(v.integer(0, 1024));
    else if (key == "core_interval_us") o.core_interval_us = v.micros();
    else
      throw OptionsError(fmt::format("{}: iokernel.{}: unknown key; valid keys are {}", where(origin, k.source()), key,
                                     known_keys()));
  }
}

bool parse_id(const std::string& s, unsigned long* out) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return !s.empty() && ec == std::errc{} && end == s.data() + s.size();
}

uid_t resolve_uid(const std::string& s) {
  unsigned long id;
  if (parse_id(s, &id)) return static_cast<uid_t>(id);
  if (const passwd* p = getpwnam(s.c_str())) return p->pw_uid;
  throw OptionsError("--allow-uid " + s + ": no such user; give a user name or a numeric uid");
}

gid_t resolve_gid(const std::string& s, const char* flag) {
  unsigned long id;
  if (parse_id(s, &id)) return static_cast<gid_t>(id);
  if (const group* g = getgrnam(s.c_str())) return g->gr_gid;
  throw OptionsError(fmt::format("{} {}: no such group; give a group name or a numeric gid", flag, s));
}

void check_socket_path(const std::string& path, const char* flag) {
  if (path.empty()) throw OptionsError(fmt::format("{} is empty; give a path like /run/slip/iokernel.sock", flag));
  if (path.size() >= sizeof(sockaddr_un::sun_path))
    throw OptionsError(fmt::format("{} {} is {} bytes; Unix socket paths must be under {} bytes: pick a shorter path",
                                   flag, path, path.size(), sizeof(sockaddr_un::sun_path)));
}

void add_flags(CLI::App& app, DaemonOptions& o) {
  app.add_option("--config", o.config, "TOML file; its [iokernel] table is applied before these flags")
      ->check(CLI::ExistingFile);
  app.add_option("--socket", o.socket, "control socket runtimes register on (parent directory is created)");
  app.add_option("--socket-mode", o.socket_mode, "octal permissions of both sockets");
  app.add_option("--socket-group", o.socket_group, "group that owns both sockets (name or gid); its members may attach");
  app.add_option("--allow-uid", o.allow_uid, "users allowed to attach, checked with SO_PEERCRED (root always is)");
  app.add_option("--allow-gid", o.allow_gid, "groups allowed to attach (primary or supplementary group of the peer)");
  app.add_option("--stats-socket", o.stats_socket, "stats socket for iokernelctl (default: <socket>.stats)");
  app.add_option("--vdev", o.vdev, "DPDK device for the port, e.g. net_tap0,iface=dtap0 or net_ring0");
  app.add_option("--port-name", o.port_name, "ethdev name of the port (default: the --vdev name)");
  app.add_option("--file-prefix", o.file_prefix, "DPDK --file-prefix (unique per DPDK process on the host)");
  app.add_flag("--no-port", o.no_port, "run without a NIC: control plane only, for tests");
  app.add_flag("--idle-backoff", o.idle_backoff, "sleep up to 50 us when idle instead of busy-polling");
  app.add_option("--stall-timeout", o.stall_timeout_s, "seconds a runtime may leave waiting frames unconsumed")
      ->check(CLI::Range(kMinStall, kMaxStall));
  app.add_option("--cores", o.cores, "cores the daemon hands to runtimes (default 0: the CPUs it may use, less its own)")
      ->check(CLI::Range(0, 1024));
  app.add_option("--core-interval-us", o.core_interval_us, "microseconds between core allocation passes")
      ->check(CLI::Range(kMinInterval, kMaxInterval));
}

}  // namespace

void apply_config_text(const std::string& toml_text, const std::string& origin, DaemonOptions& o) {
  toml::table doc;
  try {
    doc = toml::parse(toml_text, std::string_view(origin));
  } catch (const toml::parse_error& e) {
    throw OptionsError(where(origin, e.source()) + ": " + std::string(e.description()) +
                       " (fix the TOML syntax at that position)");
  }
  for (auto&& [k, v] : doc) {
    const std::string_view name = k.str();
    if (name == "iokernel") {
      if (!v.is_table()) throw OptionsError(where(origin, v.source()) + ": iokernel: expected an [iokernel] table");
      apply_table(*v.as_table(), origin, o);
    } else if (contains(kForeignTables, name)) {
      continue;
    } else if (contains(kKeys, name)) {
      throw OptionsError(fmt::format("{}: {}: iokerneld keys belong in the [iokernel] table; move it below an "
                                     "[iokernel] line",
                                     where(origin, k.source()), name));
    } else {
      throw OptionsError(fmt::format("{}: {}: unknown table or key; iokerneld reads [iokernel] (and ignores [runtime], "
                                     "[net], [gateway], [kvstore], [rdma], [loadgen])",
                                     where(origin, k.source()), name));
    }
  }
}

void apply_config_file(const std::string& path, DaemonOptions& o) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw OptionsError(path + ": cannot open the config file; check the path and its permissions");
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  apply_config_text(text, path, o);
}

mode_t parse_mode(const std::string& text) {
  unsigned long m = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), m, 8);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || m > 0777)
    throw OptionsError("socket mode \"" + text + "\" is not an octal mode up to 0777; write it like 0660");
  return static_cast<mode_t>(m);
}

DaemonSettings resolve(const DaemonOptions& o) {
  DaemonSettings s;
  s.opts = o;
  s.socket_mode = parse_mode(o.socket_mode);
  check_socket_path(o.socket, "--socket");
  s.stats_socket = o.stats_socket.empty() ? o.socket + ".stats" : o.stats_socket;
  check_socket_path(s.stats_socket, "--stats-socket");
  if (s.stats_socket == o.socket) throw OptionsError("--stats-socket must differ from --socket");
  if (!o.socket_group.empty()) {
    s.socket_gid = resolve_gid(o.socket_group, "--socket-group");
    s.allow_gids.push_back(s.socket_gid);
  }
  for (const std::string& u : o.allow_uid) s.allow_uids.push_back(resolve_uid(u));
  for (const std::string& g : o.allow_gid) s.allow_gids.push_back(resolve_gid(g, "--allow-gid"));
  if (o.no_port && !o.vdev.empty()) throw OptionsError("--no-port and --vdev contradict each other; pick one");
  if (!o.no_port && o.vdev.empty())
    throw OptionsError("iokerneld needs a port: pass --vdev (e.g. --vdev net_tap0,iface=dtap0) or, to test the "
                       "control plane alone, --no-port");
  s.port_name = o.port_name.empty() ? o.vdev.substr(0, o.vdev.find(',')) : o.port_name;
  if (!(o.stall_timeout_s >= kMinStall && o.stall_timeout_s <= kMaxStall))
    throw OptionsError("--stall-timeout must be 0.01 to 3600 seconds");
  s.stall_timeout_ns = static_cast<uint64_t>(o.stall_timeout_s * 1e9);
  if (!(o.core_interval_us >= kMinInterval && o.core_interval_us <= kMaxInterval))
    throw OptionsError("--core-interval-us must be 1 to 1000000 microseconds");
  s.core_interval_ns = static_cast<uint64_t>(o.core_interval_us * 1e3);
  s.cores = o.cores != 0 ? o.cores : default_cores();
  return s;
}

int parse_options(int argc, const char* const* argv, DaemonSettings* out) {
  // Pass one finds --config (and answers --help); pass two applies the flags
  // over the file's values, so the command line wins.
  DaemonOptions first;
  CLI::App app{"iokerneld: the Slipstream IOKernel daemon (owns the NIC, serves runtimes over shared memory)",
               "iokerneld"};
  add_flags(app, first);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  DaemonOptions o = first;
  try {
    if (!first.config.empty()) {
      o = DaemonOptions{};
      apply_config_file(first.config, o);
      CLI::App again{"iokerneld", "iokerneld"};
      add_flags(again, o);
      again.parse(argc, argv);
    }
    *out = resolve(o);
  } catch (const std::exception& e) {
    fmt::print(stderr, "iokerneld: {}\n", e.what());
    return 2;
  }
  return -1;
}

}  // namespace slip::iok
