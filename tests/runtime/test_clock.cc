// The runtime clock: monotonic, on the CLOCK_MONOTONIC time line, sane TSC rate.
#include <time.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <thread>

#include "slip/runtime/time.h"

namespace {

uint64_t sys_mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

TEST_CASE("now_ns never goes backwards", "[clock]") {
  uint64_t prev = slip::now_ns();
  uint64_t backwards = 0;
  for (int i = 0; i < 1'000'000; i++) {
    const uint64_t t = slip::now_ns();
    backwards += t < prev;
    prev = t;
  }
  REQUIRE(backwards == 0);
}

TEST_CASE("now_ns stays on the CLOCK_MONOTONIC time line", "[clock]") {
  constexpr uint64_t kSlackNs = 100'000;
  (void)slip::now_ns();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const uint64_t before = sys_mono_ns();
  const uint64_t t = slip::now_ns();
  const uint64_t after = sys_mono_ns();
  INFO("before " << before << " now_ns " << t << " after " << after << " tsc " << slip::clock_uses_tsc());
  REQUIRE(t + kSlackNs >= before);
  REQUIRE(t <= after + kSlackNs);
}

TEST_CASE("calibrated TSC rate is plausible", "[clock]") {
  if (!slip::clock_uses_tsc()) {
    REQUIRE(slip::tsc_hz() == 0);
    return;
  }
  const uint64_t hz = slip::tsc_hz();
  INFO("tsc_hz " << hz);
  REQUIRE(hz > 100'000'000u);
  REQUIRE(hz < 10'000'000'000u);
}

TEST_CASE("mono_now_ns matches CLOCK_MONOTONIC", "[clock]") {
  const uint64_t before = sys_mono_ns();
  const uint64_t m = slip::detail::mono_now_ns();
  const uint64_t after = sys_mono_ns();
  REQUIRE(before <= m);
  REQUIRE(m <= after);
  uint64_t prev = m, backwards = 0;
  for (int i = 0; i < 10'000; i++) {
    const uint64_t t = slip::detail::mono_now_ns();
    backwards += t < prev;
    prev = t;
  }
  REQUIRE(backwards == 0);
}

TEST_CASE("now_ns is consistent across threads", "[clock]") {
  const uint64_t t0 = slip::now_ns();
  uint64_t seen = 0;
  std::thread th([&] { seen = slip::now_ns(); });
  th.join();
  REQUIRE(seen >= t0);
  REQUIRE(slip::now_ns() >= seen);
}
