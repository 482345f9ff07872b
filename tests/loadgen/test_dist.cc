// Distributions behind arrival processes and service times: the parser, and
// the statistics of what they generate (mean and coefficient of variation).
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "slip/common/dist.h"

using slip::Distribution;

namespace {

struct Stats {
  double mean, cv;
};

Stats measure(const Distribution& d, uint64_t seed, size_t n = 400'000) {
  std::mt19937_64 rng(seed);
  double sum = 0, sq = 0;
  for (size_t i = 0; i < n; i++) {
    const double x = d.sample(rng);
    REQUIRE(x >= 0);
    sum += x;
    sq += x * x;
  }
  const double mean = sum / static_cast<double>(n);
  const double var = sq / static_cast<double>(n) - mean * mean;
  return {mean, std::sqrt(std::max(var, 0.0)) / mean};
}

}  // namespace

TEST_CASE("durations parse with units", "[dist]") {
  CHECK(*slip::parse_duration_ns("250ns") == 250);
  CHECK(*slip::parse_duration_ns("10us") == 10'000);
  CHECK(*slip::parse_duration_ns("1.5ms") == 1'500'000);
  CHECK(*slip::parse_duration_ns("2s") == 2e9);
  CHECK(*slip::parse_duration_ns("1000") == 1000);
  for (const char* bad : {"", "us", "-1us", "1x", "1 us", "nan", "inf", "1e400s"})
    CHECK_FALSE(slip::parse_duration_ns(bad));
}

TEST_CASE("specs parse, and malformed ones say why", "[dist]") {
  CHECK(Distribution::parse("exp:10us")->mean_ns() == 10'000);
  CHECK(Distribution::parse("const:5us")->mean_ns() == 5'000);
  CHECK(Distribution::parse("uniform:5us:15us")->mean_ns() == 10'000);
  CHECK(Distribution::parse("bimodal:10us:110us:0.1")->mean_ns() == Approx(20'000));
  for (const char* bad : {"", "exp", "exp:", "exp:10us:3", "bimodal:1us:2us", "bimodal:1us:2us:1.5",
                          "uniform:5us:1us", "zipf:3", "const:x", "a:b:c:d:e"}) {
    std::string why;
    CHECK_FALSE(Distribution::parse(bad, &why));
    CHECK_FALSE(why.empty());
  }
  // str() round-trips.
  const auto d = *Distribution::parse("bimodal:5us:100us:0.25");
  CHECK(Distribution::parse(d.str())->mean_ns() == Approx(d.mean_ns()));
}

TEST_CASE("poisson arrivals: exponential gaps with the rate's mean and CV 1", "[dist]") {
  const auto gaps = Distribution::exponential(1.0).with_mean(1e9 / 50'000);  // 50k req/s
  const Stats s = measure(gaps, 42);
  CHECK(s.mean == Approx(20'000).epsilon(0.01));
  CHECK(s.cv == Approx(1.0).epsilon(0.02));
}

TEST_CASE("constant arrivals have CV 0", "[dist]") {
  const Stats s = measure(Distribution::constant(1.0).with_mean(1e9 / 1000), 1, 1000);
  CHECK(s.mean == Approx(1e6));
  CHECK(s.cv == Approx(0.0).margin(1e-9));
}

TEST_CASE("bimodal keeps the mean when scaled to a rate and has the analytic CV", "[dist]") {
  // p = 0.1 of gaps are 10x longer: mean a(0.9 + 0.1 * 10) = 1.9a.
  const auto d = Distribution::bimodal(1, 10, 0.1).with_mean(1e9 / 10'000);
  const Stats s = measure(d, 7);
  const double a = 1e5 / 1.9, var = 0.9 * 0.1 * (9 * a) * (9 * a);
  CHECK(s.mean == Approx(1e5).epsilon(0.01));
  CHECK(s.cv == Approx(std::sqrt(var) / 1e5).epsilon(0.03));
}

TEST_CASE("a seed gives the same sequence; different seeds differ", "[dist]") {
  const auto d = *Distribution::parse("exp:10us");
  std::mt19937_64 a(5), b(5), c(6);
  bool differs = false;
  for (int i = 0; i < 100; i++) {
    const double x = d.sample(a);
    CHECK(x == d.sample(b));
    differs |= x != d.sample(c);
  }
  CHECK(differs);
}
