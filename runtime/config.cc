// Runtime configuration: the [runtime] table of a TOML file (toml++) and
// command-line overrides (CLI11). Every error says where, which key, and the fix.
#include "slip/runtime/config.h"

#include <sched.h>
#include <unistd.h>

#include "slip/common/cli11.h"
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <string_view>
#include <vector>

namespace slip::rt {
namespace {

constexpr size_t kMinStack = 16 * 1024;
constexpr size_t kMaxStack = 64 * 1024 * 1024;
constexpr unsigned kMaxKthreads = 64;    // the scheduler's idle mask is one uint64_t
constexpr unsigned kKthreadsPerCpu = 4;  // beyond this kthreads only time-share cores
constexpr double kMaxSpinUs = 1e6;
constexpr int64_t kMaxStackCache = 1 << 20;

constexpr std::string_view kRuntimeKeys[] = {"kthreads",    "guaranteed_kthreads", "spinning_kthreads",
                                             "stack_size",  "spin_before_park_us", "pin_kthreads",
                                             "stack_cache", "follow_cpu_quota"};
// Tables owned by modules that parse the same file later.
constexpr std::string_view kForeignTables[] = {"net", "iokernel", "gateway", "kvstore", "rdma", "loadgen"};

template <size_t N>
bool contains(const std::string_view (&list)[N], std::string_view s) {
  return std::find(std::begin(list), std::end(list), s) != std::end(list);
}

std::string join_keys() {
  std::string out;
  for (std::string_view k : kRuntimeKeys) out += (out.empty() ? "" : ", ") + std::string(k);
  return out;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); j++) row[j] = j;
  for (size_t i = 1; i <= a.size(); i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); j++) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

// The fix for a misspelt key: the nearest valid key, or the whole list.
std::string suggest_key(std::string_view key) {
  std::string_view best;
  size_t best_d = 3;
  for (std::string_view k : kRuntimeKeys) {
    const size_t d = edit_distance(key, k);
    if (d < best_d) best_d = d, best = k;
  }
  if (!best.empty()) return "; did you mean \"" + std::string(best) + "\"?";
  return "; valid keys are " + join_keys();
}

std::string show(const toml::node& n) {
  if (n.is_table()) return "a table";
  if (n.is_array()) return "an array";
  if (auto s = n.as_string()) return "\"" + s->get() + "\"";
  std::ostringstream os;
  n.visit([&](auto&& v) { os << v; });
  return os.str();
}

std::string where(const std::string& origin, const toml::source_region& r) {
  return origin + ":" + std::to_string(r.begin.line) + ":" + std::to_string(r.begin.column);
}

// Empty on success; otherwise why `text` is not a size.
std::string size_error(std::string_view text, size_t& out) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
  };
  text = trim(text);
  uint64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec == std::errc::result_out_of_range) return "too large";
  if (ec != std::errc{}) return "expected a non-negative whole number";
  std::string suffix(trim(std::string_view(end, text.data() + text.size() - end)));
  std::transform(suffix.begin(), suffix.end(), suffix.begin(), [](unsigned char c) { return std::tolower(c); });
  unsigned shift;
  if (suffix.empty() || suffix == "b") shift = 0;
  else if (suffix == "k" || suffix == "kib") shift = 10;
  else if (suffix == "m" || suffix == "mib") shift = 20;
  else if (suffix == "g" || suffix == "gib") shift = 30;
  else return "unknown suffix \"" + suffix + "\"";
  if (n > (SIZE_MAX >> shift)) return "too large";
  out = static_cast<size_t>(n << shift);
  return {};
}

size_t round_to_page(size_t n) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return (n + page - 1) / page * page;
}

unsigned allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
  return static_cast<unsigned>(CPU_COUNT(&set));
}

// One key of [runtime]: converts and range-checks its value, or throws with its location.
class Field {
 public:
  Field(const std::string& origin, std::string_view key, const toml::node& v)
      : origin_(origin), key_("runtime." + std::string(key)), v_(v) {}

  [[noreturn]] void fail(const std::string& expected) const {
    throw ConfigError(where(origin_, v_.source()) + ": " + key_ + ": expected " + expected + ", got " + show(v_));
  }

  int64_t integer(int64_t lo, int64_t hi, const char* note = "") const {
    auto i = v_.as_integer();
    if (!i || i->get() < lo || i->get() > hi)
      fail("an integer from " + std::to_string(lo) + " to " + std::to_string(hi) + note);
    return i->get();
  }

  size_t size() const {
    static const std::string kExpected = "a size from 16KiB to 64MiB, like 65536, \"64KiB\" or \"1MiB\"";
    size_t bytes = 0;
    if (auto i = v_.as_integer()) {
      if (i->get() < 0) fail(kExpected);
      bytes = static_cast<size_t>(i->get());
    } else if (auto s = v_.as_string()) {
      if (!size_error(s->get(), bytes).empty()) fail(kExpected);
    } else {
      fail(kExpected);
    }
    if (bytes < kMinStack || bytes > kMaxStack) fail(kExpected);
    return round_to_page(bytes);
  }

  uint64_t micros_as_nanos() const {
    double us;
    if (auto i = v_.as_integer()) us = static_cast<double>(i->get());
    else if (auto f = v_.as_floating_point()) us = f->get();
    else fail("a number of microseconds from 0 to 1000000");
    if (!(us >= 0 && us <= kMaxSpinUs))
      fail("a number of microseconds from 0 to 1000000 (use spinning_kthreads for kthreads that never park)");
    return static_cast<uint64_t>(std::llround(us * 1000.0));
  }

  bool boolean() const {
    auto b = v_.as_boolean();
    if (!b) fail("true or false");
    return b->get();
  }

 private:
  const std::string& origin_;
  std::string key_;
  const toml::node& v_;
};

void apply_runtime_table(const toml::table& t, const std::string& origin, Config& cfg) {
  for (auto&& [k, v] : t) {
    const std::string_view key = k.str();
    const Field f(origin, key, v);
    if (key == "kthreads") {
      cfg.kthreads = static_cast<unsigned>(f.integer(1, kMaxKthreads, " (one per core)"));
    } else if (key == "guaranteed_kthreads") {
      cfg.guaranteed_kthreads = static_cast<unsigned>(f.integer(0, kMaxKthreads));
    } else if (key == "spinning_kthreads") {
      cfg.spinning_kthreads = static_cast<unsigned>(f.integer(0, kMaxKthreads));
    } else if (key == "stack_size") {
      cfg.stack_size = f.size();
    } else if (key == "spin_before_park_us") {
      cfg.spin_before_park_ns = f.micros_as_nanos();
    } else if (key == "pin_kthreads") {
      cfg.pin_kthreads = f.boolean();
    } else if (key == "stack_cache") {
      cfg.stack_cache = static_cast<size_t>(f.integer(0, kMaxStackCache));
    } else if (key == "follow_cpu_quota") {
      cfg.follow_cpu_quota = f.boolean();
    } else {
      throw ConfigError(where(origin, k.source()) + ": runtime." + std::string(key) + ": unknown key" +
                        suggest_key(key));
    }
  }
}

}  // namespace

void Config::validate() const {
  auto fail = [](const std::string& msg) { throw ConfigError("runtime config: " + msg); };
  const std::string k = std::to_string(kthreads);
  if (kthreads < 1) fail("runtime.kthreads = 0: the runtime needs at least one kthread; set kthreads >= 1");
  if (kthreads > kMaxKthreads)
    fail("runtime.kthreads = " + k + " is more than 64: the scheduler tracks idle kthreads in a 64-bit mask; "
         "use at most 64");
  if (guaranteed_kthreads > kthreads)
    fail("runtime.guaranteed_kthreads = " + std::to_string(guaranteed_kthreads) + " exceeds kthreads = " + k +
         ": the runtime cannot be guaranteed more kthreads than it has; lower guaranteed_kthreads or raise kthreads");
  if (spinning_kthreads > kthreads)
    fail("runtime.spinning_kthreads = " + std::to_string(spinning_kthreads) + " exceeds kthreads = " + k +
         ": only existing kthreads can spin; lower spinning_kthreads or raise kthreads");
  const unsigned cpus = allowed_cpus();
  if (cpus != 0 && kthreads > kKthreadsPerCpu * cpus)
    fail("runtime.kthreads = " + k + " is more than 4x the " + std::to_string(cpus) +
         " CPUs this process may run on (sched_getaffinity): extra kthreads only time-share cores and add "
         "latency; lower kthreads or widen the CPU affinity (taskset)");
  if (stack_size < kMinStack || stack_size > kMaxStack)
    fail("runtime.stack_size = " + std::to_string(stack_size) +
         " bytes is outside 16KiB..64MiB: smaller stacks overflow in libc calls, larger ones waste memory per "
         "uthread; pick a size in that range");
}

Config parse_config(const std::string& toml_text, const std::string& origin) {
  toml::table doc;
  try {
    doc = toml::parse(toml_text, std::string_view(origin));
  } catch (const toml::parse_error& e) {
    throw ConfigError(where(origin, e.source()) + ": " + std::string(e.description()) +
                      " (fix the TOML syntax at that position)");
  }
  Config cfg;
  for (auto&& [k, v] : doc) {
    const std::string_view name = k.str();
    if (name == "runtime") {
      if (!v.is_table())
        throw ConfigError(where(origin, v.source()) + ": runtime: expected a [runtime] table, got " + show(v));
      apply_runtime_table(*v.as_table(), origin, cfg);
    } else if (contains(kForeignTables, name)) {
      continue;
    } else if (contains(kRuntimeKeys, name)) {
      throw ConfigError(where(origin, k.source()) + ": " + std::string(name) +
                        ": runtime keys belong in the [runtime] table; move it below a [runtime] line");
    } else {
      throw ConfigError(where(origin, k.source()) + ": " + std::string(name) +
                        ": unknown table or key; the runtime reads [runtime], and [net], [iokernel], [gateway], "
                        "[kvstore], [rdma] and [loadgen] belong to other modules");
    }
  }
  return cfg;
}

Config load_config_file(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw ConfigError(path + ": cannot open config file: " + std::strerror(errno) + "; check the path");
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f.get())) > 0) text.append(buf, n);
  if (std::ferror(f.get()))
    throw ConfigError(path + ": cannot read config file: " + std::strerror(errno) + "; pass a regular file");
  return parse_config(text, path);
}

size_t parse_size(const std::string& text) {
  size_t bytes = 0;
  const std::string why = size_error(text, bytes);
  if (!why.empty())
    throw ConfigError("invalid size \"" + text + "\": " + why +
                      "; write bytes or a number with K/KiB, M/MiB or G/GiB, like 64KiB");
  return bytes;
}

Config parse_command_line(int argc, const char* const* argv, std::vector<std::string>* extra) {
  std::vector<const char*> own;
  own.push_back(argc > 0 && argv[0] ? argv[0] : "slip");
  int i = 1;
  for (; i < argc && std::strcmp(argv[i], "--") != 0; i++) own.push_back(argv[i]);
  std::vector<std::string> rest;
  if (i < argc) rest.assign(argv + i + 1, argv + argc);
  if (!extra && !rest.empty())
    throw ConfigError("unexpected arguments after --, starting at \"" + rest[0] + "\"; this program takes none");
  if (extra) *extra = std::move(rest);

  const std::string name = std::string(own[0]).substr(std::string(own[0]).find_last_of('/') + 1);
  CLI::App app{"Slipstream runtime options", name};
  std::string config_path, stack_size;
  unsigned kthreads = 0, guaranteed = 0, spinning = 0;
  double spin_us = 0;
  bool pin = true, follow_quota = true;
  auto* o_config = app.add_option("--config", config_path, "TOML file with a [runtime] table, applied first")
                      ->type_name("FILE");
  auto* o_kthreads = app.add_option("--kthreads", kthreads, "kthreads (cores) the runtime may use")
                         ->check(CLI::PositiveNumber);
  auto* o_guaranteed = app.add_option("--guaranteed-kthreads", guaranteed, "kthreads granted even under an iokernel");
  auto* o_spinning = app.add_option("--spinning-kthreads", spinning, "kthreads that busy-poll and never park");
  auto* o_stack = app.add_option("--stack-size", stack_size, "bytes per uthread stack, like 64KiB or 1MiB")
                     ->type_name("SIZE");
  auto* o_spin = app.add_option("--spin-before-park-us", spin_us, "microseconds an idle kthread polls before parking")
                     ->check(CLI::Range(0.0, kMaxSpinUs));
  auto* o_pin = app.add_flag("--pin-kthreads,!--no-pin-kthreads", pin, "pin kthread i to the i-th allowed CPU");
  auto* o_quota = app.add_flag("--follow-cpu-quota,!--ignore-cpu-quota", follow_quota,
                               "run no more kthreads than the container's CPU quota allows (the default)");
  try {
    app.parse(static_cast<int>(own.size()), own.data());
  } catch (const CLI::CallForHelp&) {
    throw HelpRequested{app.help()};
  } catch (const CLI::ParseError& e) {
    throw ConfigError(std::string(e.what()) + "; run " + name + " --help for the options");
  }

  Config cfg = o_config->count() ? load_config_file(config_path) : Config{};
  if (o_kthreads->count()) cfg.kthreads = kthreads;
  if (o_guaranteed->count()) cfg.guaranteed_kthreads = guaranteed;
  if (o_spinning->count()) cfg.spinning_kthreads = spinning;
  if (o_spin->count()) cfg.spin_before_park_ns = static_cast<uint64_t>(std::llround(spin_us * 1000.0));
  if (o_pin->count()) cfg.pin_kthreads = pin;
  if (o_quota->count()) cfg.follow_cpu_quota = follow_quota;
  if (o_stack->count()) {
    try {
      cfg.stack_size = parse_size(stack_size);
    } catch (const ConfigError& e) {
      throw ConfigError(std::string("--stack-size: ") + e.what());
    }
    if (cfg.stack_size >= kMinStack && cfg.stack_size <= kMaxStack) cfg.stack_size = round_to_page(cfg.stack_size);
  }
  cfg.validate();
  return cfg;
}

Config config_from_args_or_exit(int argc, const char* const* argv, std::vector<std::string>* extra) {
  try {
    return parse_command_line(argc, argv, extra);
  } catch (const HelpRequested& h) {
    std::fputs(h.text.c_str(), stdout);
    std::exit(0);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    std::exit(2);
  }
}

}  // namespace slip::rt
