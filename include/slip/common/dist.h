// Seeded random durations for workloads: apps/synthetic's service times and
// slip-loadgen's inter-arrival gaps. One spec grammar for both:
//   const:10us            always 10 us
//   exp:10us              exponential with mean 10 us
//   bimodal:5us:100us:0.1 100 us with probability 0.1, else 5 us
//   uniform:5us:15us      uniform in [5 us, 15 us]
// Units: ns, us, ms, s (a bare number is ns). Sampling is our own arithmetic
// on mt19937_64 output, so a seed gives the same sequence on every platform
// (std:: distributions are implementation-defined).
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "slip/common/mix.h"

namespace slip {

// "250ns", "10us", "1.5ms", "2s", "1000" (ns); nullopt when malformed or negative.
inline std::optional<double> parse_duration_ns(std::string_view s) {
  struct Unit {
    const char* suffix;
    double mult;
  };
  static constexpr Unit kUnits[] = {{"ns", 1.0}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}};
  double mult = 1.0;
  for (const Unit& u : kUnits) {
    const std::string_view suf(u.suffix);
    if (s.size() > suf.size() && s.substr(s.size() - suf.size()) == suf) {
      mult = u.mult;
      s.remove_suffix(suf.size());
      break;
    }
  }
  if (s.empty() || s.size() > 40) return std::nullopt;
  const std::string num(s);
  char* end = nullptr;
  const double v = std::strtod(num.c_str(), &end);
  if (end != num.c_str() + num.size() || !std::isfinite(v) || v < 0) return std::nullopt;
  return v * mult;
}

class Distribution {
 public:
  enum class Kind { constant, exponential, bimodal, uniform };

  static Distribution constant(double ns) { return Distribution(Kind::constant, ns, ns, 0); }
  static Distribution exponential(double mean_ns) { return Distribution(Kind::exponential, mean_ns, mean_ns, 0); }
  static Distribution bimodal(double a_ns, double b_ns, double p_b) { return Distribution(Kind::bimodal, a_ns, b_ns, p_b); }
  static Distribution uniform(double lo_ns, double hi_ns) { return Distribution(Kind::uniform, lo_ns, hi_ns, 0); }

  // Parses a spec (grammar above); nullopt with *why set when malformed.
  static std::optional<Distribution> parse(std::string_view spec, std::string* why = nullptr) {
    auto fail = [&](const std::string& m) -> std::optional<Distribution> {
      if (why) *why = m;
      return std::nullopt;
    };
    std::string_view parts[4];
    size_t n = 0;
    while (n < 4) {
      const size_t c = spec.find(':');
      parts[n++] = spec.substr(0, c);
      if (c == std::string_view::npos) break;
      spec.remove_prefix(c + 1);
      if (n == 4) return fail("too many ':' fields");
    }
    const std::string_view kind = parts[0];
    auto dur = [&](size_t i) { return i < n ? parse_duration_ns(parts[i]) : std::nullopt; };
    if (kind == "const" || kind == "exp") {
      const auto v = dur(1);
      if (n != 2 || !v) return fail(std::string(kind) + " wants one duration, e.g. " + std::string(kind) + ":10us");
      return kind == "const" ? constant(*v) : exponential(*v);
    }
    if (kind == "uniform") {
      const auto lo = dur(1), hi = dur(2);
      if (n != 3 || !lo || !hi || *hi < *lo) return fail("uniform wants LO:HI with LO <= HI, e.g. uniform:5us:15us");
      return uniform(*lo, *hi);
    }
    if (kind == "bimodal") {
      const auto a = dur(1), b = dur(2);
      const std::string ps = n == 4 ? std::string(parts[3]) : std::string();
      char* end = nullptr;
      const double p = std::strtod(ps.c_str(), &end);
      if (n != 4 || !a || !b || ps.empty() || end != ps.c_str() + ps.size() || !(p >= 0 && p <= 1))
        return fail("bimodal wants A:B:P (B with probability P in [0,1]), e.g. bimodal:5us:100us:0.1");
      return bimodal(*a, *b, p);
    }
    return fail("unknown distribution '" + std::string(kind) + "' (const, exp, bimodal or uniform)");
  }

  double mean_ns() const noexcept {
    switch (kind_) {
      case Kind::bimodal: return a_ * (1 - p_) + b_ * p_;
      case Kind::uniform: return (a_ + b_) / 2;
      default: return a_;
    }
  }
  // The same shape scaled so that its mean is mean_ns (arrival gaps for a rate).
  Distribution with_mean(double mean_ns) const noexcept {
    const double m = this->mean_ns();
    const double k = m > 0 ? mean_ns / m : 0;
    Distribution d = *this;
    d.a_ = m > 0 ? a_ * k : mean_ns;
    d.b_ = m > 0 ? b_ * k : mean_ns;
    return d;
  }
  Kind kind() const noexcept { return kind_; }

  // One sample in ns (non-negative).
  double sample(std::mt19937_64& rng) const noexcept {
    switch (kind_) {
      case Kind::constant: return a_;
      case Kind::exponential: return -a_ * std::log1p(-unit(rng));  // unit() < 1, so finite
      case Kind::bimodal: return unit(rng) < p_ ? b_ : a_;
      case Kind::uniform: return a_ + (b_ - a_) * unit(rng);
    }
    return a_;
  }

  // "exp:10us"-style description (round-trips through parse).
  std::string str() const {
    auto d = [](double ns) { return std::to_string(ns) + "ns"; };
    switch (kind_) {
      case Kind::constant: return "const:" + d(a_);
      case Kind::exponential: return "exp:" + d(a_);
      case Kind::bimodal: return "bimodal:" + d(a_) + ":" + d(b_) + ":" + std::to_string(p_);
      case Kind::uniform: return "uniform:" + d(a_) + ":" + d(b_);
    }
    return {};
  }

 private:
  Distribution(Kind k, double a, double b, double p) : kind_(k), a_(a), b_(b), p_(p) {}
  // Uniform in [0, 1) from the top 53 bits.
  static double unit(std::mt19937_64& rng) noexcept {
    return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
  }

  Kind kind_;
  double a_, b_, p_;
};

}  // namespace slip
