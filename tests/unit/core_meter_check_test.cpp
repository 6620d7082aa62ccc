// The grid meter check (core::MeterCheck, issue #19): a difference beyond the tolerance becomes a
// disagreement only after it has lasted the persistence time, ends only after agreement has lasted as
// long, counts one episode each time, and judges nothing without a comparable reading.

#include <catch2/catch.hpp>

#include <limits>

#include "eqd/core/meter_check.hpp"

using eqd::core::MeterCheck;
using eqd::core::MeterCheckParams;
using eqd::core::MeterEvent;

namespace {
constexpr std::int64_t kS = 1'000'000'000;
}

TEST_CASE("meter check: a difference must persist before it is a disagreement", "[unit][meter]") {
  MeterCheck c(MeterCheckParams{500.0, 10.0});
  // Within the tolerance: nothing, whatever the time.
  for (int t = 0; t <= 20; ++t) CHECK(c.update(t * kS, true, 1400.0, 1000.0) == MeterEvent::none);
  CHECK_FALSE(c.disagreement());
  CHECK(c.difference_W() == Approx(400.0));
  // 600 W off for 9 s (sampling skew, a step the channels see first): still no disagreement.
  for (int t = 21; t <= 30; ++t) CHECK(c.update(t * kS, true, 1600.0, 1000.0) == MeterEvent::none);
  CHECK_FALSE(c.disagreement());
  // Back within for a moment: the persistence starts again.
  CHECK(c.update(31 * kS, true, 1000.0, 1000.0) == MeterEvent::none);
  for (int t = 32; t < 42; ++t) CHECK(c.update(t * kS, true, -2000.0, 1000.0) == MeterEvent::none);
  // 10 s of a difference (either sign): one episode, reported once.
  CHECK(c.update(42 * kS, true, -2000.0, 1000.0) == MeterEvent::disagreement_started);
  CHECK(c.disagreement());
  CHECK(c.episodes() == 1);
  CHECK(c.difference_W() == Approx(-3000.0));
  for (int t = 43; t < 60; ++t) CHECK(c.update(t * kS, true, -2000.0, 1000.0) == MeterEvent::none);
  CHECK(c.episodes() == 1);
}

TEST_CASE("meter check: an episode ends only after agreement persists, hovering gives one episode", "[unit][meter]") {
  MeterCheck c(MeterCheckParams{500.0, 5.0});
  for (int t = 0; t <= 5; ++t) (void)c.update(t * kS, true, 3000.0, 0.0);
  REQUIRE(c.disagreement());
  // Hovering around the tolerance: in and out every second never lasts 5 s either way.
  for (int t = 6; t < 40; ++t) CHECK(c.update(t * kS, true, t % 2 ? 550.0 : 450.0, 0.0) == MeterEvent::none);
  CHECK(c.disagreement());
  CHECK(c.episodes() == 1);
  for (int t = 40; t < 45; ++t) CHECK(c.update(t * kS, true, 100.0, 0.0) == MeterEvent::none);
  CHECK(c.update(45 * kS, true, 100.0, 0.0) == MeterEvent::disagreement_ended);
  CHECK_FALSE(c.disagreement());
  // A second episode counts again.
  for (int t = 46; t < 51; ++t) (void)c.update(t * kS, true, 900.0, 0.0);
  CHECK(c.update(51 * kS, true, 900.0, 0.0) == MeterEvent::disagreement_started);
  CHECK(c.episodes() == 2);
}

TEST_CASE("meter check: no comparable reading judges nothing and forgets a pending change", "[unit][meter]") {
  MeterCheck c(MeterCheckParams{100.0, 3.0});
  (void)c.update(0, true, 1000.0, 0.0);
  (void)c.update(2 * kS, true, 1000.0, 0.0);
  // The meter went offline: 2 s of difference are forgotten.
  CHECK(c.update(3 * kS, false, 0.0, 0.0) == MeterEvent::none);
  CHECK(c.update(4 * kS, true, 1000.0, 0.0) == MeterEvent::none);
  CHECK(c.update(6 * kS, true, 1000.0, 0.0) == MeterEvent::none);
  CHECK(c.update(7 * kS, true, 1000.0, 0.0) == MeterEvent::disagreement_started);
  // NaN is not a reading; an episode in progress stays while nothing can be compared.
  CHECK(c.update(8 * kS, true, std::numeric_limits<double>::quiet_NaN(), 0.0) == MeterEvent::none);
  CHECK(c.update(30 * kS, false, 0.0, 0.0) == MeterEvent::none);
  CHECK(c.disagreement());
  // Tolerance 0 and persistence 0: any difference at once.
  MeterCheck z(MeterCheckParams{0.0, 0.0});
  CHECK(z.update(0, true, 0.0, 0.0) == MeterEvent::none);
  CHECK(z.update(1, true, 0.5, 0.0) == MeterEvent::disagreement_started);
}
