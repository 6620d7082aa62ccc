// Law `adaptive` (adaptive_law.hpp): which tracker it follows on which load, the reversal gate, and
// the slow-load properties every law keeps (settling, overshoot).
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>

#include "eqd/core/adaptive_law.hpp"
#include "eqd/core/planned_law.hpp"

using namespace eqd::core;

namespace {
constexpr std::int64_t kMs = 1'000'000;

struct Run {
  double last_W = 0.0, max_W = -1e300, min_W = 1e300;
};

// 10 Hz steps of an ideal buffer (measured = last command) from t0 to t1 (s); free(t) is the free power.
Run run(AdaptiveLaw& law, const BusParams& p, double t0_s, double t1_s, const std::function<double(double)>& free,
        double cap_W = 10000.0) {
  Run r;
  for (std::int64_t k = std::llround(t0_s * 10); k < std::llround(t1_s * 10); ++k) {
    LawInput in;
    in.now_ns = k * 100 * kMs;
    in.free_W = free(static_cast<double>(k) / 10.0);
    in.eq_measured_W = r.last_W;
    in.capacity_charge_W = in.capacity_discharge_W = in.rated_W = cap_W;
    in.any_fresh = true;
    r.last_W = law.step(in, p).command_W;
    r.max_W = std::max(r.max_W, r.last_W);
    r.min_W = std::min(r.min_W, r.last_W);
  }
  return r;
}
}  // namespace

TEST_CASE("adaptive: a 10 % to 90 % step settles within 2 % in 3 tau without overshoot", "[law][adaptive]") {
  for (double tau : {10.0, 15.0, 20.0}) {
    BusParams p;
    p.tau_s = tau;
    AdaptiveLaw law;
    run(law, p, 0.0, 300.0, [](double) { return -1000.0; });
    const Run r = run(law, p, 300.0, 300.0 + 3.0 * tau + 0.05, [](double) { return -9000.0; });
    INFO("tau_s = " << tau << ", command after 3 tau = " << r.last_W << ", tracker " << law.current_expert());
    CHECK(std::abs(r.last_W - 9000.0) <= 0.02 * 10000.0);
    CHECK(r.max_W <= 9000.0 + 0.10 * 8000.0);
  }
}

TEST_CASE("adaptive: follows its fastest tracker when the load changes slower than the dead time", "[law][adaptive]") {
  BusParams p;
  AdaptiveLaw law;
  REQUIRE(law.current_expert() == AdaptiveLaw::kStartExpert);
  // Levels held 40 s at a time: the fastest tracker would have left the least in the grid.
  run(law, p, 0.0, 1800.0, [](double t) { return std::fmod(t, 80.0) < 40.0 ? -6000.0 : -2000.0; });
  CHECK(law.current_expert() == 0);
}

TEST_CASE("adaptive: rides out pulses shorter than the dead time with its slowest tracker", "[law][adaptive]") {
  BusParams p;
  AdaptiveLaw law;
  // 2 s on, 2 s off: whatever follows it arrives in antiphase; the mean is what helps.
  const Run r = run(law, p, 0.0, 1800.0, [](double t) { return std::fmod(t, 4.0) < 2.0 ? -6000.0 : 0.0; });
  CHECK(law.current_expert() == AdaptiveLaw::kSlowestExpert);
  CHECK(std::abs(r.last_W - 3000.0) < 600.0);
}

TEST_CASE("adaptive: a small reversal waits at 0 W, a large or lasting one goes through", "[law][adaptive]") {
  BusParams p;
  p.tau_s = 15.0;
  AdaptiveLaw law;
  run(law, p, 0.0, 300.0, [](double) { return -3000.0; });  // buffers charge 3 kW
  // A reversal to -500 W (within 10 % of 10 kW): held at 0 W for up to 3 tau = 45 s ...
  const Run small = run(law, p, 300.0, 340.0, [](double) { return 500.0; });
  CHECK(small.min_W >= 0.0);
  CHECK(law.counters().direction_flips == 0);
  // ... then it goes through.
  const Run lasting = run(law, p, 340.0, 500.0, [](double) { return 500.0; });
  CHECK(lasting.last_W < -400.0);
  CHECK(law.counters().direction_flips == 1);
  // A large reversal does not wait.
  AdaptiveLaw fresh;
  run(fresh, p, 0.0, 300.0, [](double) { return -3000.0; });
  const Run large = run(fresh, p, 300.0, 320.0, [](double) { return 4000.0; });
  CHECK(large.last_W < -1500.0);
}

TEST_CASE("adaptive: a load small against the buffers that reverses in clean steps is followed without waiting",
          "[law][adaptive]") {
  BusParams p;
  p.tau_s = 15.0;
  AdaptiveLaw law;
  // +600 W and -800 W, 5 minutes each, on 10 kW of buffers: every reversal is "small" (< 1 kW), and
  // waiting 3 tau at each leaves a third more in the grid than following it.
  const auto steps = [](double t) { return std::fmod(t, 600.0) < 300.0 ? 600.0 : -800.0; };
  run(law, p, 0.0, 3600.0, steps);
  CHECK(law.current_expert() == AdaptiveLaw::kUngatedExpert);
  // The next reversal (from charging 800 W to discharging 600 W) goes through within 1.5 tau, not 3 tau.
  const std::uint64_t flips = law.counters().direction_flips;
  const Run next = run(law, p, 3600.0, 3600.0 + 1.5 * p.tau_s, steps);
  CHECK(next.last_W < -400.0);
  CHECK(law.counters().direction_flips == flips + 1);
}

TEST_CASE("adaptive: swings around zero faster than a few tau are not followed at a flip per swing",
          "[law][adaptive]") {
  BusParams p;
  p.tau_s = 15.0;
  AdaptiveLaw law;
  // The free power swings ±500 W around 0 every 90 s on 10 kW of buffers. Following each swing would
  // leave 0.56 of it in the grid at 80 flips/h (the ungated tracker, were reversals free); the charge
  // per reversal keeps the law on a gated tracker: 0.78, no flips.
  run(law, p, 0.0, 3600.0, [](double t) { return 500.0 * std::sin(t * 2.0 * M_PI / 90.0); });
  CHECK(law.current_expert() != AdaptiveLaw::kUngatedExpert);
  CHECK(law.counters().direction_flips <= 4);
}

TEST_CASE("adaptive: follows a third of second-scale swings and their slow level in full (split tracker)",
          "[law][adaptive]") {
  BusParams p;
  p.tau_s = 15.0;
  AdaptiveLaw law;
  // A drive-cycle lab in miniature: a level that moves over 10 minutes (3 ± 1.5 kW) and swings of up to
  // ±4.5 kW over 20-100 s on 10 kW of buffers. Following the swings fully costs travel in proportion to
  // what is left in the grid, riding them out leaves them there; the split tracker follows a third of
  // them quickly and the level slowly. (With swings of ±1.5 kW or periods of 7-30 s a plain tracker
  // wins: the fast one or the slowest.)
  const auto swing = [](double t) {
    return 1500.0 * std::sin(t * 2.0 * M_PI / 21.9) + 1500.0 * std::sin(t * 2.0 * M_PI / 39.3 + 1.0) +
           1500.0 * std::sin(t * 2.0 * M_PI / 95.1 + 2.0);
  };
  const auto load = [&](double t) { return -(3000.0 + 1500.0 * std::sin(t * 2.0 * M_PI / 600.0)) + swing(t); };
  run(law, p, 0.0, 3600.0, load);
  CHECK(law.current_expert() == AdaptiveLaw::kSplitExpert);
  // Only a part of the swings is followed: a plain tracker at tau_s / 3 in its place travels 663 kW in
  // the hour, the split tracker 296 kW.
  CHECK(law.counters().setpoint_travel_W < 400e3);
}

TEST_CASE("adaptive: the command moves at most at the slew limit, also when it changes tracker", "[law][adaptive]") {
  BusParams p;
  p.tau_s = 10.0;
  p.slew_W_per_s = 150.0;
  AdaptiveLaw law;
  double prev = 0.0, worst = 0.0;
  for (std::int64_t k = 0; k < 20000; ++k) {
    LawInput in;
    in.now_ns = k * 100 * kMs;
    const double t = static_cast<double>(k) / 10.0;
    in.free_W =
        t < 1000.0 ? (std::fmod(t, 80.0) < 40.0 ? -6000.0 : -2000.0) : (std::fmod(t, 4.0) < 2.0 ? -6000.0 : 0.0);
    in.eq_measured_W = prev;
    in.capacity_charge_W = in.capacity_discharge_W = in.rated_W = 10000.0;
    in.any_fresh = true;
    const LawOutput out = law.step(in, p);
    worst = std::max(worst, std::abs(out.command_W - prev));
    prev = out.command_W;
  }
  CHECK(worst <= 150.0 * p.update_interval_s + 1e-6);
}

TEST_CASE(
    "adaptive: small moves held back (law planned's fallback) cut a jitter's travel, never for longer than "
    "tau / 2, and leave large moves and the windows alone",
    "[law][adaptive]") {
  BusParams p;
  p.tau_s = 15.0;
  // Off in law `adaptive`, on in law `planned`'s fallback where a bus in balance mode weighs travel
  // above 2 s.
  CHECK(PlannedLaw::holds_small_moves(p));  // the default 8 s
  p.plan_travel_weight_s = 0.2;
  CHECK_FALSE(PlannedLaw::holds_small_moves(p));
  p.plan_travel_weight_s = AdaptiveLaw::kTravelWeight_s;
  CHECK_FALSE(PlannedLaw::holds_small_moves(p));
  p.plan_travel_weight_s = 8.0;
  p.mode = BusMode::caps;  // a held move would leave the net above a cap
  CHECK_FALSE(PlannedLaw::holds_small_moves(p));
  p.mode = BusMode::balance;

  // A level of 3 kW with +-400 W of second-scale jitter (deterministic) on 10 kW of buffers.
  const auto jitter = [](double t) { return -3000.0 + 400.0 * std::sin(std::floor(t) * 7.31); };
  AdaptiveLaw plain;
  AdaptiveLaw held;
  held.hold_small_moves(true);
  const Run rp = run(plain, p, 0.0, 1800.0, jitter);
  const Run rh = run(held, p, 0.0, 1800.0, jitter);
  INFO("travel plain " << plain.counters().setpoint_travel_W << " W, held " << held.counters().setpoint_travel_W);
  CHECK(held.counters().setpoint_travel_W < 0.6 * plain.counters().setpoint_travel_W);
  CHECK(std::abs(rh.last_W - 3000.0) < 300.0);
  CHECK(std::abs(rp.last_W - 3000.0) < 400.0);

  // A standing error smaller than the hold's 1 % (100 W): the command never stays put longer than
  // tau / 2 (+ one update) while it is more than 5 W off, and ends on it.
  AdaptiveLaw settle;
  settle.hold_small_moves(true);
  run(settle, p, 0.0, 600.0, [](double) { return -3000.0; });
  double last = -1.0, since_s = 0.0, longest_s = 0.0;
  Run r;
  for (int k = 6000; k < 7200; ++k) {
    r = run(settle, p, k / 10.0, (k + 1) / 10.0, [](double) { return -3060.0; });
    if (r.last_W != last || std::abs(r.last_W - 3060.0) <= 5.0) {
      since_s = 0.0;
      last = r.last_W;
    } else {
      since_s += 0.1;
      longest_s = std::max(longest_s, since_s);
    }
  }
  CHECK(longest_s <= 0.5 * p.tau_s + p.update_interval_s + 0.05);
  CHECK(std::abs(r.last_W - 3060.0) <= 5.0);

  // A large move is not held: one update after a step of 3 kW the command has moved.
  const Run before = run(settle, p, 720.0, 721.0, [](double) { return -3060.0; });
  const Run after = run(settle, p, 721.0, 722.05, [](double) { return -6060.0; });
  CHECK(after.last_W > before.last_W + 100.0);

  // The window: capacity cut below the held command, the command follows it at once.
  const Run cut = run(held, p, 1800.0, 1800.15, jitter, 2000.0);
  CHECK(cut.max_W <= 2000.0);

  // Following its slowest tracker (pulses shorter than the dead time), nothing is held: the command is
  // the plain law's.
  const auto pulses = [](double t) { return std::fmod(t, 4.0) < 2.0 ? -6000.0 : 0.0; };
  AdaptiveLaw slow_plain;
  AdaptiveLaw slow_held;
  slow_held.hold_small_moves(true);
  const Run sp = run(slow_plain, p, 0.0, 1800.0, pulses);
  const Run sh = run(slow_held, p, 0.0, 1800.0, pulses);
  REQUIRE(slow_held.current_expert() == AdaptiveLaw::kSlowestExpert);
  CHECK(sh.last_W == Approx(sp.last_W).margin(1.0));
  const Run np = run(slow_plain, p, 1800.0, 1830.0, pulses);
  const Run nh = run(slow_held, p, 1800.0, 1830.0, pulses);
  CHECK(nh.last_W == Approx(np.last_W).margin(1.0));
}
