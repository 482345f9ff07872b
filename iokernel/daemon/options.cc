// iokerneld's settings. Every error names where (file:line:column for the
// config file, the flag otherwise) and how to fix it.
#include "iokernel/daemon/options.h"

#include <sched.h>

#include <grp.h>
#include <pwd.h>
#include <sys/un.h>
#include <unistd.h>

#include "slip/common/cli11.h"
#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string_view>

#include "slip/net/eal_args.h"

namespace slip::iok {
namespace {

constexpr std::string_view kKeys[] = {"socket",       "socket_mode",   "socket_group", "allow_uid",
                                      "allow_gid",    "stats_socket",  "vdev",         "pci",
                                      "port_name",    "file_prefix",   "eal_args",     "hugepages",
                                      "no_port",      "idle_backoff",  "stall_timeout", "cores",
                                      "cpus",         "core_interval_us"};
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
  // auto, on or off; true and false mean on and off.
  std::string huge() const {
    if (auto b = v_.as_boolean()) return b->get() ? "on" : "off";
    if (auto t = v_.as_string(); t && (t->get() == "auto" || t->get() == "on" || t->get() == "off")) return t->get();
    fail("\"auto\", \"on\" or \"off\" (or true, false)");
  }
  // EAL arguments: one string split at whitespace, or an array of arguments.
  std::string eal_args() const {
    if (v_.is_string()) return string();
    const auto* a = v_.as_array();
    if (!a) fail("a string like \"-l 2-3 -n 4\" or an array like [\"-l\", \"2-3\"]");
    std::string out;
    for (const toml::node& e : *a) {
      auto s = e.as_string();
      if (!s || s->get().empty() || s->get().find_first_of(" \t\n\r'\"") != std::string::npos)
        Value(origin_, key_, e).fail("an EAL argument without spaces or quotes");
      out += (out.empty() ? "" : " ") + s->get();
    }
    return out;
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
    else if (key == "pci") o.pci = v.string();
    else if (key == "port_name") o.port_name = v.string();
    else if (key == "file_prefix") o.file_prefix = v.string();
    else if (key == "eal_args") o.eal_args = v.eal_args();
    else if (key == "hugepages") o.hugepages = v.huge();
    else if (key == "no_port") o.no_port = v.boolean();
    else if (key == "idle_backoff") o.idle_backoff = v.boolean();
    else if (key == "stall_timeout") o.stall_timeout_s = v.seconds();
    else if (key == "cores") o.cores = static_cast<unsigned>(v.integer(0, 1024));
    else if (key == "cpus") o.cpus = v.string();
    else if (key == "core_interval_us") o.core_interval_us = v.micros();
    else
      throw OptionsError(fmt::format("{}: iokernel.{}: unknown key; valid keys are {}", where(origin, k.source()), key,
                                     known_keys()));
  }
}

// --cpus: each CPU must be one this process may run on, and --cores, when
// given too, must agree with their number.
void resolve_cpus(const DaemonOptions& o, DaemonSettings& s) {
  s.cpus = parse_cpu_list(o.cpus);
  if (o.cores != 0 && o.cores != s.cpus.size())
    throw OptionsError(fmt::format("--cores {} and --cpus {} ({} CPUs) disagree: --cpus sets the number of cores, "
                                   "drop --cores",
                                   o.cores, o.cpus, s.cpus.size()));
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof allowed, &allowed) == 0)
    for (const int c : s.cpus)
      if (!CPU_ISSET(c, &allowed))
        throw OptionsError(fmt::format("--cpus {}: CPU {} is not one this process may run on (see taskset -p {} or "
                                       "the cgroup's cpuset): list only allowed CPUs",
                                       o.cpus, c, getpid()));
  s.cores = static_cast<unsigned>(s.cpus.size());
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
  app.add_option("--vdev", o.vdev, "DPDK virtual device for the port, e.g. net_tap0,iface=dtap0 or net_ring0");
  app.add_option("--pci", o.pci,
                 "PCI NIC for the port, e.g. 0000:3b:00.0 or 3b:00.0, devargs after a comma (mlx5: keep the kernel "
                 "driver; ice, ixgbe, ...: bind it to vfio-pci)");
  app.add_option("--port-name", o.port_name, "ethdev name of the port (default: the --vdev name or the PCI address)");
  app.add_option("--file-prefix", o.file_prefix, "DPDK --file-prefix (unique per DPDK process on the host)");
  app.add_option("--eal-args", o.eal_args,
                 "more EAL arguments, split at whitespace (no quoting), e.g. \"-l 2 -n 4\"; -l, --file-prefix, "
                 "--log-level and --iova-mode here replace the daemon's");
  app.add_option("--hugepages", o.hugepages, "auto: hugepages when some are free, else --no-huge -m 256; on; off")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  app.add_flag("--no-port", o.no_port, "run without a NIC: control plane only, for tests");
  app.add_flag("--idle-backoff", o.idle_backoff, "sleep up to 50 us when idle instead of busy-polling");
  app.add_option("--stall-timeout", o.stall_timeout_s, "seconds a runtime may leave waiting frames unconsumed")
      ->check(CLI::Range(kMinStall, kMaxStall));
  app.add_option("--cpus", o.cpus,
                 "CPUs to pin granted kthreads to, e.g. 2-7 or 1,3; their number is the cores runtimes share "
                 "(default: no pinning, the kernel places kthreads)");
  app.add_option("--cores", o.cores, "cores the daemon hands to runtimes (default 0: the CPUs it may use, less its own)")
      ->check(CLI::Range(0, 1024));
  app.add_option("--core-interval-us", o.core_interval_us, "microseconds between core allocation passes")
      ->check(CLI::Range(kMinInterval, kMaxInterval));
}

// Exactly one of --vdev, --pci and --no-port; with a port, the EAL arguments.
void resolve_port(const DaemonOptions& o, DaemonSettings& s) {
  std::string given;
  if (!o.vdev.empty()) given += "--vdev " + o.vdev;
  if (!o.pci.empty()) given += (given.empty() ? "" : ", ") + ("--pci " + o.pci);
  if (o.no_port) given += (given.empty() ? "" : ", ") + std::string("--no-port");
  const int picks = !o.vdev.empty() + !o.pci.empty() + o.no_port;
  if (picks == 0)
    throw OptionsError("iokerneld needs a port: pass --pci ADDR for a NIC (e.g. --pci 0000:3b:00.0), --vdev DEV for "
                       "a virtual device (e.g. --vdev net_tap0,iface=dtap0) or, to test the control plane alone, "
                       "--no-port");
  if (picks > 1) throw OptionsError("pick exactly one of --vdev, --pci and --no-port; given: " + given);
  if (o.no_port) {
    if (!o.eal_args.empty() || o.hugepages != "auto")
      throw OptionsError("--eal-args and --hugepages need a port, and --no-port starts no DPDK: drop them or "
                         "--no-port");
    return;
  }
  if (o.hugepages != "auto" && o.hugepages != "on" && o.hugepages != "off")
    throw OptionsError("--hugepages " + o.hugepages + ": expected auto, on or off");
  try {
    net::EalPortSpec spec;
    spec.vdev = o.vdev;
    spec.pci = o.pci;
    spec.file_prefix = o.file_prefix;
    spec.extra = net::split_eal_args(o.eal_args);
    spec.iova_va = true;  // the rx pool is a 4 KiB-page memfd: DMA into it needs IOVA-as-VA
    if (o.hugepages != "auto") spec.huge = o.hugepages == "on";
    net::EalPlan plan = net::eal_args_for_port(spec);
    s.eal_args = std::move(plan.args);
    s.eal_memory_note = std::move(plan.memory_note);
    s.port_name = o.port_name.empty() ? plan.port_name : o.port_name;
  } catch (const std::invalid_argument& e) {
    throw OptionsError(e.what());
  }
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

std::vector<int> parse_cpu_list(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return OptionsError(fmt::format("--cpus \"{}\": {}; write CPUs like 2-7 or 1,3,5", text, why));
  };
  std::vector<int> out;
  std::string_view rest = text;
  auto number = [&](std::string_view s) {
    int v = -1;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v < 0)
      throw bad(fmt::format("\"{}\" is not a CPU number", s));
    if (v >= CPU_SETSIZE) throw bad(fmt::format("CPU {} is past the largest, {}", v, CPU_SETSIZE - 1));
    return v;
  };
  while (!rest.empty() || out.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const size_t dash = item.find('-');
    const int lo = number(item.substr(0, dash));
    const int hi = dash == std::string_view::npos ? lo : number(item.substr(dash + 1));
    if (hi < lo) throw bad(fmt::format("the range {}-{} runs backwards", lo, hi));
    for (int c = lo; c <= hi; c++) {
      if (std::find(out.begin(), out.end(), c) != out.end()) throw bad(fmt::format("CPU {} is listed twice", c));
      out.push_back(c);
    }
    if (comma != std::string_view::npos && rest.empty()) throw bad("it ends with a comma");
  }
  return out;
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
  resolve_port(o, s);
  if (!(o.stall_timeout_s >= kMinStall && o.stall_timeout_s <= kMaxStall))
    throw OptionsError("--stall-timeout must be 0.01 to 3600 seconds");
  s.stall_timeout_ns = static_cast<uint64_t>(o.stall_timeout_s * 1e9);
  if (!(o.core_interval_us >= kMinInterval && o.core_interval_us <= kMaxInterval))
    throw OptionsError("--core-interval-us must be 1 to 1000000 microseconds");
  s.core_interval_ns = static_cast<uint64_t>(o.core_interval_us * 1e3);
  s.cores = o.cores != 0 ? o.cores : default_cores();
  if (!o.cpus.empty()) resolve_cpus(o, s);
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
      // A port named on the command line replaces the file's, whichever kind.
      if (app.count("--vdev") + app.count("--pci") + app.count("--no-port") > 0) {
        o.vdev.clear();
        o.pci.clear();
        o.no_port = false;
      }
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
