// Config parsing: TOML file, command line, sizes, and the messages users see.
#include <sched.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "slip/runtime/config.h"

using Catch::Contains;
using slip::rt::Config;
using slip::rt::ConfigError;
using slip::rt::parse_config;

namespace {

// A TOML file on disk for --config, removed at scope exit.
class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    char tmpl[] = "/tmp/slip-config-XXXXXX";
    const int fd = mkstemp(tmpl);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    close(fd);
    path_ = tmpl;
  }
  ~TempFile() { unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

Config parse_args(std::vector<const char*> args, std::vector<std::string>* extra = nullptr) {
  args.insert(args.begin(), "/usr/bin/slipd");
  return slip::rt::parse_command_line(static_cast<int>(args.size()), args.data(), extra);
}

// Places `line` on line 3 of a file, so every error below must say ":3:".
std::string on_line3(const std::string& line) { return "[runtime]\n# comment\n" + line + "\n"; }

unsigned allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  REQUIRE(sched_getaffinity(0, sizeof(set), &set) == 0);
  return static_cast<unsigned>(CPU_COUNT(&set));
}

}  // namespace

TEST_CASE("defaults come from an empty file", "[config]") {
  const Config d;
  CHECK(d.kthreads == 1);
  CHECK(d.guaranteed_kthreads == 1);
  CHECK(d.spinning_kthreads == 0);
  CHECK(d.stack_size == 64 * 1024);
  CHECK(d.spin_before_park_ns == 2000);
  CHECK(d.pin_kthreads);
  CHECK(d.stack_cache == 256);
  CHECK(d.follow_cpu_quota);
  CHECK_NOTHROW(d.validate());
  for (const char* text : {"", "[runtime]\n", "# nothing\n"}) {
    const Config c = parse_config(text);
    CHECK(c.kthreads == d.kthreads);
    CHECK(c.stack_size == d.stack_size);
    CHECK(c.spin_before_park_ns == d.spin_before_park_ns);
    CHECK(c.pin_kthreads == d.pin_kthreads);
  }
}

TEST_CASE("a full valid file sets every key", "[config]") {
  const Config c = parse_config(R"(
[runtime]
kthreads = 4
guaranteed_kthreads = 2
spinning_kthreads = 1
stack_size = "128KiB"
spin_before_park_us = 2.5
pin_kthreads = false
stack_cache = 32
follow_cpu_quota = false
)");
  CHECK(c.kthreads == 4);
  CHECK(c.guaranteed_kthreads == 2);
  CHECK(c.spinning_kthreads == 1);
  CHECK(c.stack_size == 128 * 1024);
  CHECK(c.spin_before_park_ns == 2500);
  CHECK_FALSE(c.pin_kthreads);
  CHECK(c.stack_cache == 32);
  CHECK_FALSE(c.follow_cpu_quota);
}

TEST_CASE("integer stack sizes round up to whole pages", "[config]") {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const Config c = parse_config("[runtime]\nstack_size = 20000\nspin_before_park_us = 7\n");
  CHECK(c.stack_size % page == 0);
  CHECK(c.stack_size >= 20000);
  CHECK(c.stack_size < 20000 + page);
  CHECK(c.spin_before_park_ns == 7000);
}

TEST_CASE("the example config/runtime.toml parses", "[config]") {
  for (const char* path : {"config/runtime.toml", "../config/runtime.toml", "../../config/runtime.toml"}) {
    if (access(path, R_OK) != 0) continue;
    const Config c = slip::rt::load_config_file(path);
    CHECK_NOTHROW(c.validate());
    return;
  }
  WARN("config/runtime.toml not found from the working directory; skipped");
}

TEST_CASE("the exact message for a wrongly typed value", "[config]") {
  REQUIRE_THROWS_WITH(parse_config(on_line3("kthreads = \"two\""), "runtime.toml"),
                      Catch::StartsWith("runtime.toml:3:12: runtime.kthreads: expected an integer from 1 to 64") &&
                          Contains("got \"two\""));
}

TEST_CASE("bad values name the line, the key and what was expected", "[config]") {
  auto [line, key, expected] = GENERATE(table<const char*, const char*, const char*>({
      {"kthreads = 0", "runtime.kthreads", "from 1 to 64"},
      {"kthreads = 65", "runtime.kthreads", "from 1 to 64"},
      {"kthreads = 1.5", "runtime.kthreads", "got 1.5"},
      {"guaranteed_kthreads = -1", "runtime.guaranteed_kthreads", "from 0 to 64"},
      {"spinning_kthreads = true", "runtime.spinning_kthreads", "got true"},
      {"stack_size = \"64 lbs\"", "runtime.stack_size", "like 65536, \"64KiB\""},
      {"stack_size = 1024", "runtime.stack_size", "from 16KiB to 64MiB"},
      {"stack_size = \"128MiB\"", "runtime.stack_size", "from 16KiB to 64MiB"},
      {"stack_size = -4096", "runtime.stack_size", "got -4096"},
      {"stack_size = [1]", "runtime.stack_size", "got an array"},
      {"spin_before_park_us = -1", "runtime.spin_before_park_us", "microseconds"},
      {"spin_before_park_us = \"fast\"", "runtime.spin_before_park_us", "got \"fast\""},
      {"spin_before_park_us = nan", "runtime.spin_before_park_us", "microseconds"},
      {"pin_kthreads = \"yes\"", "runtime.pin_kthreads", "true or false"},
      {"stack_cache = -1", "runtime.stack_cache", "from 0 to"},
  }));
  INFO(line);
  REQUIRE_THROWS_AS(parse_config(on_line3(line), "runtime.toml"), ConfigError);
  REQUIRE_THROWS_WITH(parse_config(on_line3(line), "runtime.toml"),
                      Contains("runtime.toml:3:") && Contains(key) && Contains(expected));
}

TEST_CASE("TOML syntax errors carry line and column", "[config]") {
  REQUIRE_THROWS_WITH(parse_config(on_line3("kthreads = = 2"), "bad.toml"),
                      Catch::StartsWith("bad.toml:3:") && Contains("TOML syntax"));
  REQUIRE_THROWS_WITH(parse_config("runtime = 5\n", "bad.toml"),
                      Contains("bad.toml:1:") && Contains("[runtime] table"));
}

TEST_CASE("unknown keys are errors with a suggestion", "[config]") {
  REQUIRE_THROWS_WITH(parse_config(on_line3("kthread = 2"), "r.toml"),
                      Contains("r.toml:3:1") && Contains("runtime.kthread") && Contains("unknown key") &&
                          Contains("did you mean \"kthreads\""));
  REQUIRE_THROWS_WITH(parse_config(on_line3("frobnicate = 1"), "r.toml"),
                      Contains("runtime.frobnicate") && Contains("valid keys are kthreads"));
  REQUIRE_THROWS_WITH(parse_config(on_line3("[runtime.extra]"), "r.toml"), Contains("runtime.extra"));
  REQUIRE_THROWS_WITH(parse_config("kthreads = 2\n", "r.toml"),
                      Contains("r.toml:1:1") && Contains("belong in the [runtime] table"));
  REQUIRE_THROWS_WITH(parse_config("[runtime]\n\n[bogus]\nx = 1\n", "r.toml"),
                      Contains("r.toml:3:") && Contains("bogus") && Contains("unknown table"));
}

TEST_CASE("tables owned by other modules are ignored", "[config]") {
  const Config c = parse_config(R"(
[net]
ip = "10.0.0.2"
[iokernel]
cores = [1, 2]
[gateway]
[kvstore]
shards = 4
[rdma.qp]
depth = 128
[loadgen]
rate = 1e6
[runtime]
kthreads = 2
)");
  CHECK(c.kthreads == 2);
}

TEST_CASE("parse_size accepts bytes and binary suffixes", "[config]") {
  auto [text, bytes] = GENERATE(table<const char*, size_t>({
      {"0", 0},
      {"4096", 4096},
      {"64KiB", 64 * 1024},
      {"64K", 64 * 1024},
      {"64k", 64 * 1024},
      {"64kib", 64 * 1024},
      {"1MiB", 1 << 20},
      {"1M", 1 << 20},
      {"2GiB", size_t{2} << 30},
      {"2g", size_t{2} << 30},
      {" 128 KiB ", 128 * 1024},
      {"512B", 512},
  }));
  INFO(text);
  CHECK(slip::rt::parse_size(text) == bytes);
}

TEST_CASE("parse_size rejects garbage, negatives and overflow", "[config]") {
  auto text = GENERATE("", "-1", "-64KiB", "+4", "abc", "12abc", "1.5MiB", "64KB", "KiB", "99999999999999999999",
                       "17179869184GiB");
  INFO(text);
  REQUIRE_THROWS_AS(slip::rt::parse_size(text), ConfigError);
  REQUIRE_THROWS_WITH(slip::rt::parse_size(text), Contains("invalid size") && Contains("64KiB"));
}

TEST_CASE("command line overrides are applied after --config", "[config]") {
  const TempFile f("[runtime]\nkthreads = 1\nguaranteed_kthreads = 1\nstack_cache = 8\n");
  const Config c = parse_args({"--kthreads", "2", "--config", f.path().c_str(), "--stack-size", "128KiB",
                               "--spin-before-park-us", "3", "--no-pin-kthreads", "--spinning-kthreads=1"});
  CHECK(c.kthreads == 2);
  CHECK(c.guaranteed_kthreads == 1);
  CHECK(c.stack_cache == 8);
  CHECK(c.stack_size == 128 * 1024);
  CHECK(c.spin_before_park_ns == 3000);
  CHECK_FALSE(c.pin_kthreads);
  CHECK(c.spinning_kthreads == 1);
  CHECK(parse_args({"--no-pin-kthreads", "--pin-kthreads"}).pin_kthreads);
  CHECK_FALSE(parse_args({"--ignore-cpu-quota"}).follow_cpu_quota);
  CHECK(parse_args({"--ignore-cpu-quota", "--follow-cpu-quota"}).follow_cpu_quota);
  CHECK(parse_args({}).kthreads == Config{}.kthreads);
}

TEST_CASE("command line errors are ConfigErrors", "[config]") {
  REQUIRE_THROWS_WITH(parse_args({"--bogus"}), Contains("--bogus") && Contains("--help"));
  REQUIRE_THROWS_AS(parse_args({"stray"}), ConfigError);
  REQUIRE_THROWS_AS(parse_args({"--kthreads", "two"}), ConfigError);
  REQUIRE_THROWS_AS(parse_args({"--kthreads", "0"}), ConfigError);
  REQUIRE_THROWS_WITH(parse_args({"--stack-size", "lots"}), Contains("--stack-size") && Contains("invalid size"));
  REQUIRE_THROWS_WITH(parse_args({"--stack-size", "1KiB"}), Contains("runtime.stack_size"));
  REQUIRE_THROWS_WITH(parse_args({"--config", "/nonexistent/slip.toml"}),
                      Contains("/nonexistent/slip.toml") && Contains("cannot open"));
  const TempFile f("[runtime]\nkthreads = \"x\"\n");
  REQUIRE_THROWS_WITH(parse_args({"--config", f.path().c_str()}), Contains(f.path() + ":2:12"));
  REQUIRE_THROWS_WITH(parse_args({"--kthreads", "2", "--guaranteed-kthreads", "3"}),
                      Contains("guaranteed_kthreads"));
}

TEST_CASE("arguments after -- go to extra", "[config]") {
  std::vector<std::string> extra{"stale"};
  const Config c = parse_args({"--kthreads", "2", "--", "--port", "8080", "--"}, &extra);
  CHECK(c.kthreads == 2);
  CHECK(extra == std::vector<std::string>{"--port", "8080", "--"});
  parse_args({"--kthreads", "2"}, &extra);
  CHECK(extra.empty());
  REQUIRE_THROWS_WITH(parse_args({"--", "x"}), Contains("after --"));
  CHECK_NOTHROW(parse_args({"--"}));
}

TEST_CASE("--help throws HelpRequested with usage", "[config]") {
  try {
    parse_args({"--help"});
    FAIL("no HelpRequested");
  } catch (const slip::rt::HelpRequested& h) {
    CHECK_THAT(h.text, Contains("slipd") && Contains("--kthreads") && Contains("--no-pin-kthreads") &&
                           Contains("--config"));
  }
}

TEST_CASE("validate rejects inconsistent configs and says why", "[config]") {
  Config c;
  c.kthreads = 2;
  c.guaranteed_kthreads = 3;
  REQUIRE_THROWS_WITH(c.validate(), Contains("guaranteed_kthreads = 3 exceeds kthreads = 2"));
  c.guaranteed_kthreads = 1;
  c.spinning_kthreads = 3;
  REQUIRE_THROWS_WITH(c.validate(), Contains("spinning_kthreads = 3 exceeds kthreads = 2"));
  c.spinning_kthreads = 0;
  c.kthreads = 0;
  REQUIRE_THROWS_WITH(c.validate(), Contains("at least one"));
  c.kthreads = 65;
  c.guaranteed_kthreads = 0;
  REQUIRE_THROWS_WITH(c.validate(), Contains("64-bit mask"));
  c.kthreads = 2;
  c.stack_size = 4096;
  REQUIRE_THROWS_WITH(c.validate(), Contains("stack_size"));
  c.stack_size = size_t{128} << 20;
  REQUIRE_THROWS_WITH(c.validate(), Contains("stack_size"));
}

TEST_CASE("validate caps kthreads at 4x the allowed CPUs", "[config]") {
  const unsigned cpus = allowed_cpus();
  Config c;
  c.kthreads = std::min(4 * cpus, 64u);
  CHECK_NOTHROW(c.validate());
  if (4 * cpus + 1 > 64) {
    WARN("more than 16 CPUs: the 64-kthread cap binds first; skipped");
    return;
  }
  c.kthreads = 4 * cpus + 1;
  REQUIRE_THROWS_WITH(c.validate(), Contains("4x the " + std::to_string(cpus) + " CPUs") &&
                                        Contains("sched_getaffinity"));
}
