// The damped law's stages one by one (equalizer.hpp) and the bus mode every law honours (bus_law.hpp).
#include <catch2/catch.hpp>

#include <cmath>

#include "eqd/core/bus_law.hpp"
#include "eqd/core/equalizer.hpp"

using namespace eqd::core;

namespace {
constexpr std::int64_t kNs = 1'000'000'000;
}  // namespace

TEST_CASE("bus_mode: ramp down without fresh data, hold on stale test data for hold_max_s, ok resets", "[law_stages]") {
  BusParams p;
  p.hold_max_s = 30.0;
  std::int64_t hold = -1;
  CHECK(bus_mode(false, false, 0, p, hold) == BusStatus::ramp_down);
  CHECK(bus_mode(true, false, 1 * kNs, p, hold) == BusStatus::ok);
  CHECK(hold == -1);
  CHECK(bus_mode(true, true, 10 * kNs, p, hold) == BusStatus::holding);
  CHECK(hold == 10 * kNs);
  CHECK(bus_mode(true, true, 40 * kNs, p, hold) == BusStatus::holding);  // exactly hold_max_s: still holding
  CHECK(bus_mode(true, true, 41 * kNs, p, hold) == BusStatus::ramp_down);
  CHECK(bus_mode(true, false, 42 * kNs, p, hold) == BusStatus::ok);
  CHECK(hold == -1);
  CHECK(bus_mode(true, true, 43 * kNs, p, hold) == BusStatus::holding);  // a new hold starts afresh
}

TEST_CASE("deadband stage: a large change moves the reference at once, a small one by its area", "[law_stages]") {
  BusParams p;
  p.deadband_W = 100.0;
  p.tau_s = 10.0;
  EqualizerState s;
  CHECK(deadband_stage(500.0, 1.0, false, p, s) == 500.0);  // |500 - 0| > 100: at once
  CHECK(s.deadband_area_Ws == 0.0);
  // 50 W off for 1 s steps: area 50, 100, ... moves only once it exceeds 100 W * 10 s = 1000 W·s.
  int steps = 0;
  while (deadband_stage(550.0, 1.0, false, p, s) == 500.0 && steps < 100) ++steps;
  CHECK(steps == 20);  // the 21st step's area (1050 W·s) exceeds 1000 W·s
  CHECK(s.reference_W == 550.0);
  // Zero-mean jitter never moves it.
  for (int k = 0; k < 1000; ++k) deadband_stage(k % 2 == 0 ? 590.0 : 510.0, 1.0, false, p, s);
  CHECK(s.reference_W == 550.0);
  // force (ramp down) moves it whatever the size.
  CHECK(deadband_stage(560.0, 1.0, true, p, s) == 560.0);
}

TEST_CASE("dwell stage: a reversal is held at 0 W until it was requested for flip_dwell_s", "[law_stages]") {
  BusParams p;
  p.flip_dwell_s = 10.0;
  EqualizerState s;
  s.direction = 1;  // last command charged
  CHECK(dwell_stage(-500.0, 0, 1.0, p, s) == 0.0);
  CHECK(dwell_stage(-500.0, 9 * kNs, 1.0, p, s) == 0.0);
  CHECK(dwell_stage(-500.0, 10 * kNs, 1.0, p, s) == -500.0);
  // Back to the old direction: the request is forgotten and a new reversal waits again.
  CHECK(dwell_stage(300.0, 11 * kNs, 1.0, p, s) == 300.0);
  CHECK(s.flip_request_since_ns == -1);
  CHECK(dwell_stage(-500.0, 12 * kNs, 1.0, p, s) == 0.0);
  // Below sign_eps a value has no direction: it passes and cancels the request.
  CHECK(dwell_stage(-0.5, 13 * kNs, 1.0, p, s) == -0.5);
  CHECK(s.flip_request_since_ns == -1);
  // No direction yet: anything passes.
  EqualizerState fresh;
  CHECK(dwell_stage(-500.0, 0, 1.0, p, fresh) == -500.0);
}

TEST_CASE("damping stage: zero initial slope, no overshoot, slew limit, capacity and dwell sign", "[law_stages]") {
  BusParams p;
  p.tau_s = 10.0;
  const Capacity cap{-5000.0, 5000.0};
  EqualizerState s;
  // First update after a step: stage 1 moves, the command only by a fraction of that.
  const double first = damping_stage(4000.0, 1.0, 1e9, 0, cap, p, s);
  CHECK(s.stage1_W > 0.0);
  CHECK(first < 0.25 * s.stage1_W);
  double prev = first, peak = first;
  for (int k = 0; k < 100; ++k) {
    const double c = damping_stage(4000.0, 1.0, 1e9, 0, cap, p, s);
    CHECK(c >= prev - 1e-9);  // monotone
    peak = std::max(peak, c);
    prev = c;
  }
  CHECK(peak <= 4000.0 + 1e-6);  // never overshoots
  CHECK(prev == Approx(4000.0).margin(1.0));
  // Slew: at most 100 W/s over a 1 s step.
  EqualizerState t;
  for (int k = 0; k < 30; ++k) {
    const double before = t.command_W;
    damping_stage(4000.0, 1.0, 100.0, 0, cap, p, t);
    CHECK(std::abs(t.command_W - before) <= 100.0 + 1e-9);
  }
  // Capacity: the command and stage 1 stay within it.
  EqualizerState u;
  for (int k = 0; k < 100; ++k) damping_stage(9000.0, 1.0, 1e9, 0, cap, p, u);
  CHECK(u.command_W == Approx(5000.0).margin(1.0));
  CHECK(u.command_W <= 5000.0);
  CHECK(u.stage1_W == 5000.0);
  // Dwell: reference 0 W while the last direction was discharge: the command may reach 0, not cross it.
  EqualizerState v;
  v.stage1_W = 3000.0;  // stage 1 still carries a charge
  v.command_W = -10.0;
  CHECK(damping_stage(0.0, 1.0, 1e9, -1, cap, p, v) == 0.0);
}

TEST_CASE("trim stage: integrates the tracking error when settled, never at a limit, bounded, ramps to 0",
          "[law_stages]") {
  BusParams p;
  p.trim_tau_s = 10.0;
  p.trim_max_fraction = 0.1;
  p.deadband_W = 50.0;
  const Capacity cap{-5000.0, 5000.0};
  EqualizerState s;
  s.reference_W = s.command_W = 2000.0;
  trim_stage(BusStatus::ok, 1900.0, 1.0, 5000.0, 500.0, 50.0, cap, p, s);
  CHECK(s.trim_W == Approx(10.0));  // k = 0.1 of a 100 W shortfall
  for (int k = 0; k < 1000; ++k) trim_stage(BusStatus::ok, 1000.0, 1.0, 5000.0, 500.0, 50.0, cap, p, s);
  CHECK(s.trim_W == Approx(500.0));  // bounded by 10 % of 5 kW
  // Not settled (reference far from command): no change.
  EqualizerState t;
  t.reference_W = 3000.0;
  t.command_W = 2000.0;
  trim_stage(BusStatus::ok, 1000.0, 1.0, 5000.0, 500.0, 50.0, cap, p, t);
  CHECK(t.trim_W == 0.0);
  // At the charge limit: no change.
  EqualizerState u;
  u.reference_W = u.command_W = 5000.0;
  trim_stage(BusStatus::ok, 4000.0, 1.0, 5000.0, 500.0, 50.0, cap, p, u);
  CHECK(u.trim_W == 0.0);
  // Holding: no change; ramp down: slews toward 0 at the slew rate.
  trim_stage(BusStatus::holding, 0.0, 1.0, 5000.0, 500.0, 50.0, cap, p, s);
  CHECK(s.trim_W == Approx(500.0));
  s.reference_W = 0.0;
  trim_stage(BusStatus::ramp_down, 0.0, 1.0, 5000.0, 200.0, 50.0, cap, p, s);
  CHECK(s.trim_W == Approx(300.0));
}

TEST_CASE("direction stage: counts reversals and forgets the direction after a dwell at 0 W", "[law_stages]") {
  BusParams p;
  p.flip_dwell_s = 10.0;
  EqualizerState s;
  s.command_W = 500.0;
  direction_stage(0, 1.0, p, s);
  CHECK(s.direction == 1);
  s.command_W = -500.0;
  direction_stage(1 * kNs, 1.0, p, s);
  CHECK(s.direction == -1);
  CHECK(s.counters.direction_flips == 1);
  s.command_W = 0.5;  // below sign_eps: no direction
  direction_stage(5 * kNs, 1.0, p, s);
  CHECK(s.direction == -1);
  direction_stage(11 * kNs, 1.0, p, s);  // 10 s at 0 W since the last non-zero command
  CHECK(s.direction == 0);
  s.command_W = 500.0;
  direction_stage(12 * kNs, 1.0, p, s);
  CHECK(s.counters.direction_flips == 1);  // starting again after a rest is not a flip
}
