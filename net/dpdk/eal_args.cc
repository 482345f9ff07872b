// EAL arguments for a port and for tests, and the host's free hugepages. No
// DPDK calls: iokerneld's option parsing links this without DPDK.
#include "slip/net/eal_args.h"

#include <dirent.h>
#include <sched.h>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <stdexcept>

namespace slip::net {
namespace {

constexpr const char* kNoHugeMb = "256";  // -m without hugepages, as eal_args_for_test

// The first CPU this process may run on, for -l.
int first_allowed_cpu() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
  for (int c = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, &set)) return c;
  return 0;
}

uint64_t read_u64_file(const std::string& path) noexcept {
  std::ifstream f(path);
  uint64_t v = 0;
  if (!(f >> v)) return 0;
  return v;
}

// Whether arg is the option name: a short one ("-l") alone or with its value
// attached ("-l0-3"), a long one alone or as "--name=value".
bool is_opt(std::string_view arg, std::string_view name) {
  if (name.size() == 2) return arg.substr(0, 2) == name;
  return arg == name || (arg.size() > name.size() && arg.substr(0, name.size()) == name && arg[name.size()] == '=');
}

// The index of the first argument that is one of names, or -1.
long find_opt(const std::vector<std::string>& args, std::initializer_list<std::string_view> names) {
  for (size_t i = 0; i < args.size(); i++)
    for (std::string_view n : names)
      if (is_opt(args[i], n)) return static_cast<long>(i);
  return -1;
}

bool has_opt(const std::vector<std::string>& args, std::initializer_list<std::string_view> names) {
  return find_opt(args, names) >= 0;
}

// The value of the option args[i] (attached or the next argument).
std::string opt_value(const std::vector<std::string>& args, size_t i, std::string_view name) {
  const std::string& a = args[i];
  if (a.size() > name.size()) return a.substr(name.size() + (name.size() > 2 ? 1 : 0));
  return i + 1 < args.size() ? args[i + 1] : "";
}

// 1 to max_digits hex digits, at most max_value.
bool parse_hex(std::string_view s, size_t max_digits, unsigned max_value, unsigned* out) {
  if (s.empty() || s.size() > max_digits) return false;
  unsigned long v = 0;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
    v = v * 16 + static_cast<unsigned>(std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                                                                                    : std::tolower(c) - 'a' + 10);
  }
  if (v > max_value) return false;
  *out = static_cast<unsigned>(v);
  return true;
}

// [DOMAIN:]BUS:DEV.FN -> the four numbers, or false.
bool parse_pci(std::string_view t, unsigned* dom, unsigned* bus, unsigned* dev, unsigned* fn) {
  const size_t dot = t.rfind('.');
  if (dot == std::string_view::npos || !parse_hex(t.substr(dot + 1), 1, 7, fn)) return false;
  std::string_view head = t.substr(0, dot);  // [DOMAIN:]BUS:DEV
  const size_t c2 = head.rfind(':');
  if (c2 == std::string_view::npos || !parse_hex(head.substr(c2 + 1), 2, 0x1f, dev)) return false;
  head = head.substr(0, c2);  // [DOMAIN:]BUS
  const size_t c1 = head.rfind(':');
  *dom = 0;
  if (c1 != std::string_view::npos && !parse_hex(head.substr(0, c1), 8, 0xffffffffu, dom)) return false;
  return parse_hex(c1 == std::string_view::npos ? head : head.substr(c1 + 1), 2, 0xff, bus);
}

using Bad = std::invalid_argument;

// Refuses user EAL arguments that would break the port or the process.
void check_extra(const EalPortSpec& s) {
  const auto& x = s.extra;
  for (size_t i = 0; i < x.size(); i++) {
    const std::string& a = x[i];
    if (a == "--")
      throw Bad("--eal-args: \"--\" would end EAL's arguments and the rest would be ignored: pass EAL options only");
    if (a == "-h" || a == "--help")
      throw Bad("--eal-args: " + a + " makes EAL print its usage and exit the process: drop it "
                "(dpdk-testpmd --help lists the EAL options)");
    for (std::string_view dev : {"-a", "--allow", "-b", "--block", "--vdev"})
      if (is_opt(a, dev))
        throw Bad("--eal-args: " + a + " names a device, but the port's device comes from --pci or --vdev: drop it; "
                  "devargs go after a comma (--pci 3b:00.0,key=value or --vdev net_tap0,iface=NAME)");
    if (is_opt(a, "--no-pci") && !s.pci.empty())
      throw Bad("--eal-args: --no-pci contradicts --pci " + s.pci + ": drop --no-pci");
    if (is_opt(a, "--proc-type")) {
      const std::string v = opt_value(x, i, "--proc-type");
      if (v != "primary")
        throw Bad("--eal-args: --proc-type " + v +
                  ": this process owns its port, so it must be DPDK's primary process: drop --proc-type");
    }
  }
}

// --no-huge and -m as needed; returns the log line.
std::string add_memory(const EalPortSpec& s, uint64_t free_pages, std::vector<std::string>& args) {
  const bool user_no_huge = has_opt(s.extra, {"--no-huge"});
  if (s.huge == true && user_no_huge)
    throw Bad("hugepages on (--hugepages on) contradicts --no-huge in --eal-args: drop one of them");
  if (s.huge == true && free_pages == 0)
    throw Bad("hugepages on (--hugepages on), but none are free: reserve some (as root: tools/setup --hugepages 512), "
              "or use --hugepages auto (or off) to run on 4 KiB pages");
  const bool huge = !user_no_huge && s.huge.value_or(free_pages > 0);
  if (huge) {
    return (s.huge ? "hugepages on: " : "hugepages: ") + std::to_string(free_pages) + " free, EAL uses them";
  }
  const std::string why = user_no_huge      ? "--no-huge is in --eal-args"
                          : s.huge == false ? "hugepages are off (--hugepages off)"
                                            : "no hugepages are free, so EAL runs with --no-huge";
  for (std::string_view o : {"--in-memory", "--socket-mem", "--socket-limit", "--huge-dir", "--huge-unlink"})
    if (has_opt(s.extra, {o}))
      throw Bad(why + ", but " + std::string(o) + " in --eal-args needs hugepages: drop " + std::string(o) +
                ", or reserve hugepages (as root: tools/setup --hugepages 512)");
  if (!user_no_huge) args.push_back("--no-huge");
  const bool our_m = !has_opt(s.extra, {"-m"});
  if (our_m) {
    args.push_back("-m");
    args.push_back(kNoHugeMb);
  }
  return std::string("hugepages: ") +
         (user_no_huge ? "off (--no-huge in --eal-args)" : s.huge == false ? "off (--hugepages off)" : "none free") +
         "; EAL runs with --no-huge" + (our_m ? std::string(" -m ") + kNoHugeMb : "") + " on 4 KiB pages" +
         (s.pci.empty() ? "" : " (slower for a NIC: tools/setup --hugepages 512 reserves 1 GiB)");
}

}  // namespace

std::vector<std::string> split_eal_args(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : text) {
    if (c == '\'' || c == '"')
      throw Bad(std::string("--eal-args: quotes are not interpreted (the arguments are split at whitespace, so none "
                            "may contain a space): remove the ") +
                c + " from \"" + std::string(text) + "\"");
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

bool is_pci_address(std::string_view text) noexcept {
  unsigned d, b, v, f;
  return parse_pci(text, &d, &b, &v, &f);
}

std::string normalize_pci(std::string_view text) {
  unsigned d, b, v, f;
  if (!parse_pci(text, &d, &b, &v, &f))
    throw Bad("\"" + std::string(text) + "\" is not a PCI address like 0000:3b:00.0 or 3b:00.0 (lspci -D lists them)");
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04x:%02x:%02x.%x", d, b, v, f);
  return buf;
}

EalPlan eal_args_for_port(const EalPortSpec& s, uint64_t free_huge_pages) {
  if (!s.vdev.empty() && !s.pci.empty())
    throw Bad("a port is a PCI NIC or a virtual device, not both: drop --pci " + s.pci + " or --vdev " + s.vdev);
  if (s.vdev.empty() && s.pci.empty())
    throw Bad("no device for the port: pass --pci ADDR for a NIC (e.g. 0000:3b:00.0) or --vdev DEV for a virtual "
              "device (e.g. net_tap0,iface=dtap0)");
  check_extra(s);
  EalPlan p;
  p.memory_note = add_memory(s, free_huge_pages, p.args);
  if (!has_opt(s.extra, {"-l", "--lcores", "-c", "--main-lcore"})) {
    p.args.push_back("-l");
    p.args.push_back(std::to_string(first_allowed_cpu()));
  }
  if (!has_opt(s.extra, {"--file-prefix"}) && !s.file_prefix.empty()) {
    p.args.push_back("--file-prefix");
    p.args.push_back(s.file_prefix);
  }
  p.args.push_back("--log-level=warning");  // before extra, whose --log-level then wins
  if (s.iova_va && !has_opt(s.extra, {"--iova-mode"})) p.args.push_back("--iova-mode=va");
  if (!s.pci.empty()) {
    const size_t comma = s.pci.find(',');
    try {
      p.port_name = normalize_pci(std::string_view(s.pci).substr(0, comma));
    } catch (const Bad& e) {
      throw Bad(std::string("--pci: ") + e.what());
    }
    p.args.push_back("-a");
    p.args.push_back(p.port_name + (comma == std::string::npos ? "" : s.pci.substr(comma)));
  } else {
    p.port_name = s.vdev.substr(0, s.vdev.find(','));
    if (p.port_name.empty())
      throw Bad("--vdev " + s.vdev + ": the device name comes first, as in net_tap0,iface=dtap0");
    if (!has_opt(s.extra, {"--no-pci"})) p.args.push_back("--no-pci");
    p.args.push_back("--vdev");
    p.args.push_back(s.vdev);
  }
  p.args.insert(p.args.end(), s.extra.begin(), s.extra.end());
  return p;
}

EalPlan eal_args_for_port(const EalPortSpec& spec) { return eal_args_for_port(spec, free_hugepages()); }

std::vector<std::string> eal_args_for_test(const std::string& vdev, const std::string& prefix) {
  std::vector<std::string> a = {"--no-huge", "-m", "256", "--no-pci", "--no-telemetry", "--no-shconf",
                                "-l", std::to_string(first_allowed_cpu()),
                                "--file-prefix", prefix, "--log-level=warning"};
  if (!vdev.empty()) {
    a.push_back("--vdev");
    a.push_back(vdev);
  }
  return a;
}

uint64_t free_hugepages() noexcept {
  // sysfs lists every page size; /proc/meminfo only the default one.
  const char* dir = "/sys/kernel/mm/hugepages";
  if (DIR* d = opendir(dir)) {
    uint64_t total = 0;
    while (dirent* e = readdir(d)) {
      if (std::string(e->d_name).rfind("hugepages-", 0) == 0)
        total += read_u64_file(std::string(dir) + "/" + e->d_name + "/free_hugepages");
    }
    closedir(d);
    return total;
  }
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t v = 0;
  while (meminfo >> key) {
    if (key == "HugePages_Free:" && meminfo >> v) return v;
    meminfo.ignore(256, '\n');
  }
  return 0;
}

}  // namespace slip::net
