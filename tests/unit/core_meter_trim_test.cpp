// The meter trim (core::MeterTrim, issue #19): a slow first-order estimate of measured - computed,
// bounded, that integrates only on comparable readings, holds and then decays to 0 W without them; and
// the control core adding it to the bus's free power with the right sign, dropping it when it is old.

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "../fakes/core_fixture.hpp"
#include "eqd/core/meter_trim.hpp"

using namespace eqd::core;
using eqd::test::CoreFixture;

namespace {
constexpr std::int64_t kS = 1'000'000'000;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}  // namespace

TEST_CASE("meter trim: a first-order filter of the difference with time constant tau_s", "[unit][meter]") {
  MeterTrim t(MeterTrimParams{100.0, 5000.0, 5.0});
  CHECK(t.state() == MeterTrimState::waiting);
  CHECK(t.bias_W() == 0.0);
  // 1 Hz readings, 1500 W the channels do not see (measured - computed, eqd's sign: + = import).
  for (int s = 0; s <= 100; ++s) t.update(s * kS, true, 1500.0);
  CHECK(t.state() == MeterTrimState::tracking);
  // After one time constant: 1 - 1/e of the step; after five, within 1 %.
  CHECK(t.bias_W() == Approx(1500.0 * (1.0 - std::exp(-1.0))).epsilon(0.01));
  for (int s = 101; s <= 500; ++s) t.update(s * kS, true, 1500.0);
  CHECK(t.bias_W() == Approx(1500.0).margin(15.0));
  CHECK(t.bias_W() > 0.0);  // the sign of the difference: import the channels do not see is +
  // A negative difference (export the channels do not see) goes negative the same way.
  MeterTrim n(MeterTrimParams{100.0, 5000.0, 5.0});
  for (int s = 0; s <= 500; ++s) n.update(s * kS, true, -800.0);
  CHECK(n.bias_W() == Approx(-800.0).margin(8.0));
}

TEST_CASE("meter trim: one jump moves the slow filter only a little", "[unit][meter]") {
  MeterTrim t(MeterTrimParams{120.0, 20000.0, 5.0});
  for (int s = 0; s <= 1000; ++s) t.update(s * kS, true, 0.0);
  REQUIRE(t.bias_W() == 0.0);
  t.update(1001 * kS, true, 10000.0);  // a 10 kW spike in one reading
  CHECK(t.bias_W() == Approx(10000.0 * (1.0 - std::exp(-1.0 / 120.0))));
  CHECK(t.bias_W() < 100.0);
  // A late reading after a stall of the thread integrates at most kMaxStep_s.
  MeterTrim late(MeterTrimParams{120.0, 20000.0, 5.0});
  late.update(0, true, 0.0);
  late.update(600 * kS, true, 10000.0);
  CHECK(late.bias_W() == Approx(10000.0 * (1.0 - std::exp(-MeterTrim::kMaxStep_s / 120.0))));
}

TEST_CASE("meter trim: bounded by max_W without winding up", "[unit][meter]") {
  MeterTrim t(MeterTrimParams{10.0, 2000.0, 5.0});
  // A difference far beyond the bound (a meter of the wrong sign, a disagreement in progress).
  for (int s = 0; s <= 300; ++s) t.update(s * kS, true, 9000.0);
  CHECK(t.bias_W() == 2000.0);
  CHECK(t.state() == MeterTrimState::clamped);
  for (int s = 301; s <= 600; ++s) t.update(s * kS, true, -9000.0);
  CHECK(t.bias_W() == -2000.0);
  // Back within: it follows at once from the bound (the state was clamped, not wound up beyond it).
  t.update(601 * kS, true, 0.0);
  CHECK(t.state() == MeterTrimState::tracking);
  CHECK(t.bias_W() == Approx(-2000.0 * std::exp(-1.0 / 10.0)));
}

TEST_CASE("meter trim: holds while not comparable, then decays to 0 W with tau_s", "[unit][meter]") {
  MeterTrim t(MeterTrimParams{60.0, 5000.0, 5.0});
  for (int s = 0; s <= 600; ++s) t.update(s * kS, true, 1000.0);
  const double b0 = t.bias_W();
  REQUIRE(b0 == Approx(1000.0).margin(1.0));
  // The meter goes stale or down: the difference is not comparable (whatever value it carries). For
  // hold_s (5 s) after the last comparable reading the bias holds.
  for (int s = 601; s <= 604; ++s) {
    t.update(s * kS, false, kNaN);
    CHECK(t.state() == MeterTrimState::holding);
    CHECK(t.bias_W() == b0);
  }
  t.update(605 * kS, false, 99999.0);  // a value that is not comparable is never integrated
  CHECK(t.state() == MeterTrimState::decaying);
  CHECK(t.bias_W() == Approx(b0 * std::exp(-1.0 / 60.0)));
  for (int s = 606; s <= 605 + 60; ++s) t.update(s * kS, false, kNaN);
  CHECK(t.bias_W() == Approx(b0 * std::exp(-61.0 / 60.0)).epsilon(1e-6));
  // Never a stale bias for ever: it reaches 0 W.
  for (int s = 666; s <= 2000; ++s) t.update(s * kS, false, kNaN);
  CHECK(t.bias_W() == 0.0);
  CHECK(t.state() == MeterTrimState::waiting);
  // A non-finite difference said to be comparable counts as not comparable.
  t.update(2001 * kS, true, kNaN);
  CHECK(t.bias_W() == 0.0);
  // Readings again: it integrates from 0 W.
  t.update(2002 * kS, true, 600.0);
  CHECK(t.bias_W() == Approx(600.0 * (1.0 - std::exp(-1.0 / 60.0))));
}

TEST_CASE("meter trim: the control thread applies it only while it is recent", "[unit][meter]") {
  MeterTrimValue v;
  CHECK(applied_trim_W(v, 5 * kS) == 0.0);  // never published
  v = MeterTrimValue{1500.0, 2000.0, 10 * kS, 10 * kS};
  CHECK(applied_trim_W(v, 10 * kS) == 1500.0);
  CHECK(applied_trim_W(v, 20 * kS) == 1500.0);
  CHECK(applied_trim_W(v, 20 * kS + 1) == 0.0);  // the meter's thread stalled: 0 W
  v.bias_W = -9000.0;
  CHECK(applied_trim_W(v, 11 * kS) == -2000.0);  // clamped again
  v.bias_W = kNaN;
  CHECK(applied_trim_W(v, 11 * kS) == 0.0);
}

TEST_CASE("control core: the meter trim adds to the free power, so the buffers cover it",
          "[unit][meter][control_core]") {
  // Tests feed 2400 W into the bus; a load nobody sampled draws 1500 W (the meter sees it as import).
  auto run = [](bool trim, double bias_W) {
    CoreFixture f(4);
    f.state[0] = f.state[1] = ChannelState::running;
    f.power[0] = -1500.0;
    f.power[1] = -900.0;
    REQUIRE(f.assign(3, CoreFixture::limits(3000.0)) == ResponseStatus::ok);
    for (int k = 0; k < 1200; ++k) {  // 120 s
      // The meter's thread publishes every second, as MeterLink does: measured - computed = bias_W.
      if (trim && k % 10 == 0) f.core->meter_trim_slot(0).store(MeterTrimValue{bias_W, 2000.0, f.now_ns, 10 * kS});
      f.step();
    }
    return f;
  };
  const CoreFixture off = run(false, 0.0);
  const CoreFixture on = run(true, 1500.0);
  const BusSnapshot b0 = off.core->bus(0);
  const BusSnapshot b1 = on.core->bus(0);
  CHECK(b0.meter_trim_W == 0.0);
  CHECK(b0.net_W == Approx(0.0).margin(60.0));
  CHECK(off.power[3] == Approx(2400.0).margin(60.0));
  // Sign: +1500 W of import the channels do not see => the buffer charges 1500 W less, so that the
  // true grid power (computed net + the unseen load) is at the target.
  CHECK(b1.meter_trim_W == 1500.0);
  CHECK(on.power[3] == Approx(900.0).margin(60.0));
  CHECK(b1.free_W == Approx(-2400.0));              // the channels' own sum, unchanged
  CHECK(b1.net_W == Approx(-1500.0).margin(60.0));  // what the meter check compares
  CHECK(b1.net_W + b1.meter_trim_W == Approx(0.0).margin(60.0));
  CHECK(std::abs(b1.residual_W) < 60.0);  // against the trimmed net
}

TEST_CASE("control core: a meter trim not refreshed for its validity drops to 0 W", "[unit][meter][control_core]") {
  CoreFixture f(3);
  f.state[0] = ChannelState::running;
  f.power[0] = -2000.0;
  REQUIRE(f.assign(2) == ResponseStatus::ok);
  f.core->meter_trim_slot(0).store(MeterTrimValue{1000.0, 2000.0, f.now_ns, 5 * kS});
  f.run_s(4.0);
  CHECK(f.core->bus(0).meter_trim_W == 1000.0);
  f.run_s(2.0);  // the meter's thread stalled: 6 s > 5 s
  CHECK(f.core->bus(0).meter_trim_W == 0.0);
  f.run_s(120.0);
  CHECK(f.power[2] == Approx(2000.0).margin(60.0));
}
