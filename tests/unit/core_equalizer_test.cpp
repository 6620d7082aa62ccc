#include <catch2/catch.hpp>

#include <cmath>
#include <functional>

#include "eqd/core/equalizer.hpp"

using namespace eqd::core;

namespace {

constexpr std::int64_t kNs = 1'000'000'000;

// The damped law's state plus the bus mode's memory, which the core keeps (bus_mode()).
struct Law : EqualizerState {
  std::int64_t hold_since_ns = -1;
};

struct Trace {
  double max_command_W = -1e300;
  double min_command_W = 1e300;
  double last_command_W = 0.0;
  BusStatus last_status = BusStatus::idle;
};

// Closed loop with an ideal buffer (measured = last command) at 10 Hz from t0 to t1 (seconds).
// free(t) gives the free power, `mutate` may change the input (stale flags, capacity).
Trace run(Law& s, const BusParams& p, double t0_s, double t1_s, const std::function<double(double)>& free,
          const std::function<void(double, LawInput&)>& mutate = {}, double cap_W = 10000.0) {
  Trace tr;
  for (double t = t0_s; t < t1_s - 1e-9; t += 0.1) {
    LawInput in;
    in.now_ns = static_cast<std::int64_t>(std::llround(t * 1e9));
    in.free_W = free(t);
    in.eq_measured_W = tr.last_command_W;
    in.capacity_charge_W = cap_W;
    in.capacity_discharge_W = cap_W;
    in.rated_W = cap_W;
    in.any_fresh = true;
    if (mutate) mutate(t, in);
    // The mode as the core decides it.
    in.mode = cap_W <= 0.0 ? BusStatus::idle : bus_mode(in.any_fresh, in.any_test_stale, in.now_ns, p, s.hold_since_ns);
    const LawOutput out = equalizer_step(in, p, s);
    tr.last_command_W = out.command_W;
    tr.last_status = in.mode;
    tr.max_command_W = std::max(tr.max_command_W, out.command_W);
    tr.min_command_W = std::min(tr.min_command_W, out.command_W);
  }
  return tr;
}

}  // namespace

TEST_CASE("a step of free power from 10% to 90% of capacity settles within 2% in 3 tau without overshoot",
          "[equalizer]") {
  for (double tau : {10.0, 15.0, 20.0}) {
    BusParams p;
    p.tau_s = tau;
    p.trim_tau_s = 0.0;
    Law s;
    run(s, p, 0.0, 200.0, [](double) { return -1000.0; });  // settle at 10 %
    const Trace tr = run(s, p, 200.0, 200.0 + 3.0 * tau + 0.05, [](double) { return -9000.0; });
    INFO("tau_s = " << tau << ", command after 3 tau = " << tr.last_command_W);
    CHECK(std::abs(tr.last_command_W - 9000.0) <= 0.02 * 10000.0);
    CHECK(tr.max_command_W <= 9000.0 + 0.10 * 8000.0);
  }
}

TEST_CASE("the response is damped: nothing much happens in the first second after a step", "[equalizer]") {
  BusParams p;
  p.trim_tau_s = 0.0;
  Law s;
  run(s, p, 0.0, 100.0, [](double) { return 0.0; });
  const Trace tr = run(s, p, 100.0, 101.05, [](double) { return -8000.0; });
  // A critically damped second-order response starts with zero slope: after 1 s of tau 15 s it has
  // moved a small fraction of the step.
  CHECK(tr.last_command_W < 0.05 * 8000.0);
  CHECK(tr.last_command_W >= 0.0);
}

TEST_CASE("changes of the desired total within the deadband do not move the command", "[equalizer]") {
  BusParams p;
  p.deadband_W = 100.0;
  p.trim_tau_s = 0.0;
  Law s;
  const Trace a = run(s, p, 0.0, 300.0, [](double) { return -3000.0; });
  const double settled = a.last_command_W;
  const double travel_before = s.counters.setpoint_travel_W;
  run(s, p, 300.0, 600.0, [](double t) { return -3000.0 + 80.0 * std::sin(t); });
  CHECK(std::abs(s.counters.setpoint_travel_W - travel_before) < 1.0);
  const Trace c = run(s, p, 600.0, 900.0, [](double) { return -3500.0; });
  CHECK(c.last_command_W > settled + 400.0);
}

TEST_CASE("the slew limit bounds the rate of change of the command", "[equalizer]") {
  BusParams p;
  p.tau_s = 10.0;
  p.slew_W_per_s = 100.0;
  p.trim_tau_s = 0.0;
  p.deadband_W = 0.0;
  Law s;
  double prev = 0.0;
  double max_rate = 0.0;
  for (int k = 0; k < 600; ++k) {
    LawInput in;
    in.now_ns = k * kNs / 10;
    in.free_W = -10000.0;
    in.eq_measured_W = prev;
    in.capacity_charge_W = in.capacity_discharge_W = in.rated_W = 10000.0;
    in.any_fresh = true;
    const auto out = equalizer_step(in, p, s);
    if (out.updated) max_rate = std::max(max_rate, std::abs(out.command_W - prev));
    if (out.updated) prev = out.command_W;
  }
  CHECK(max_rate <= 100.0 * p.update_interval_s + 1e-6);
  CHECK(max_rate > 50.0);  // the limit is what binds here
}

TEST_CASE("a charge/discharge reversal waits for the request to persist", "[equalizer]") {
  BusParams p;
  p.flip_dwell_s = 20.0;
  p.trim_tau_s = 0.0;
  Law s;
  run(s, p, 0.0, 200.0, [](double) { return -5000.0; });  // buffers charge 5 kW
  REQUIRE(s.command_W > 4900.0);
  // Brief reversals (10 s on, 10 s off) shorter than the dwell never make the buffers discharge.
  const Trace brief = run(s, p, 200.0, 400.0, [](double t) { return std::fmod(t, 20.0) < 10.0 ? 5000.0 : -5000.0; });
  CHECK(brief.min_command_W >= 0.0);
  CHECK(s.counters.direction_flips == 0);
  // A persistent reversal does go through, once.
  const Trace lasting = run(s, p, 400.0, 700.0, [](double) { return 5000.0; });
  CHECK(lasting.last_command_W < -4800.0);
  CHECK(s.counters.direction_flips == 1);
}

TEST_CASE("stale test data holds the total and ramps it down after hold_max_s", "[equalizer]") {
  BusParams p;
  p.hold_max_s = 30.0;
  p.trim_tau_s = 0.0;
  Law s;
  run(s, p, 0.0, 200.0, [](double) { return -6000.0; });
  const double before = s.command_W;
  const auto stale = [](double, LawInput& in) { in.any_test_stale = true; };
  // The free power "changes" but is unknown: the command does not react for 30 s.
  const Trace held = run(
      s, p, 200.0, 229.0, [](double) { return 2000.0; }, stale);
  CHECK(held.last_status == BusStatus::holding);
  CHECK(held.last_command_W == Approx(before));
  const Trace ramp = run(
      s, p, 229.0, 400.0, [](double) { return 2000.0; }, stale);
  CHECK(ramp.last_status == BusStatus::ramp_down);
  CHECK(std::abs(ramp.last_command_W) < 60.0);
}

TEST_CASE("no fresh data at all ramps the total to zero", "[equalizer]") {
  BusParams p;
  p.trim_tau_s = 0.0;
  Law s;
  run(s, p, 0.0, 200.0, [](double) { return 7000.0; });
  REQUIRE(s.command_W < -6900.0);
  const Trace ramp = run(
      s, p, 200.0, 300.0, [](double) { return 7000.0; }, [](double, LawInput& in) { in.any_fresh = false; });
  CHECK(ramp.last_status == BusStatus::ramp_down);
  CHECK(std::abs(ramp.last_command_W) < 60.0);
  CHECK(ramp.max_command_W <= 0.0);  // ramps, never swings past zero
}

TEST_CASE("a capacity reduction applies at once and the law does not wind up beyond capacity", "[equalizer]") {
  BusParams p;
  p.trim_tau_s = 0.0;
  Law s;
  run(s, p, 0.0, 200.0, [](double) { return -8000.0; });
  REQUIRE(s.command_W > 7900.0);
  // Capacity drops to 2 kW: the very next output respects it.
  const Trace limited = run(
      s, p, 200.0, 200.15, [](double) { return -8000.0; }, {}, 2000.0);
  CHECK(limited.max_command_W <= 2000.0);
  // Saturated for a long time, then the demand falls to 1 kW: no wound-up excess delays the descent.
  run(
      s, p, 200.0, 800.0, [](double) { return -20000.0; }, {}, 2000.0);
  const Trace down = run(
      s, p, 800.0, 845.05, [](double) { return -1000.0; }, {}, 2000.0);
  CHECK(std::abs(down.last_command_W - 1000.0) < 100.0);
}

TEST_CASE("without capacity the law is idle and holds no state", "[equalizer]") {
  BusParams p;
  Law s;
  run(
      s, p, 0.0, 50.0, [](double) { return -3000.0; }, {}, 0.0);
  CHECK(s.command_W == 0.0);
  CHECK(s.stage1_W == 0.0);
}

TEST_CASE("the trim removes a steady tracking error of the buffers", "[equalizer]") {
  BusParams p;
  p.trim_tau_s = 30.0;
  p.deadband_W = 20.0;
  Law s;
  // The buffers deliver only 95 % of what they are asked (losses): without trim the net power would stay
  // 5 % off; the trim closes most of that within a few trim time constants.
  double measured = 0.0;
  double command = 0.0;
  for (int k = 0; k < 6000; ++k) {
    LawInput in;
    in.now_ns = k * kNs / 10;
    in.free_W = -4000.0;
    in.eq_measured_W = measured;
    in.capacity_charge_W = in.capacity_discharge_W = in.rated_W = 10000.0;
    in.any_fresh = true;
    command = equalizer_step(in, p, s).command_W;
    measured = 0.95 * command;
  }
  CHECK(std::abs(-4000.0 + measured) < 40.0);
  CHECK(s.trim_W > 150.0);
}

TEST_CASE("updates wait for samples newer than the last command", "[equalizer]") {
  BusParams p;
  p.trim_tau_s = 0.0;
  Law s;
  LawInput in;
  in.free_W = -5000.0;
  in.capacity_charge_W = in.capacity_discharge_W = in.rated_W = 10000.0;
  in.any_fresh = true;
  in.samples_newer_than_command = false;
  std::uint64_t updates = 0;
  for (int k = 0; k < 100; ++k) {
    in.now_ns = k * kNs / 10;
    updates += equalizer_step(in, p, s).updated ? 1 : 0;
  }
  CHECK(updates == 0);
  in.samples_newer_than_command = true;
  for (int k = 100; k < 200; ++k) {
    in.now_ns = k * kNs / 10;
    updates += equalizer_step(in, p, s).updated ? 1 : 0;
  }
  CHECK(updates >= 9);
  CHECK(updates <= 11);  // at most one per update_interval_s
}
