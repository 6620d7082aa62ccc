#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <memory>

#include "../fakes/core_fixture.hpp"
#include "eqd/core/forecast_path.hpp"

using namespace eqd::core;
using eqd::test::CoreFixture;

TEST_CASE("assigned buffers enter equalization mode and balance the bus", "[control_core]") {
  CoreFixture f(6);
  f.state[0] = f.state[1] = f.state[2] = ChannelState::running;
  f.power[0] = -1500.0;  // discharging tests feed the bus
  f.power[1] = -1200.0;
  f.power[2] = 300.0;
  CHECK(f.assign(4) == ResponseStatus::ok);
  CHECK(f.assign(5) == ResponseStatus::ok);
  f.run_s(120.0);
  const BusSnapshot b = f.core->bus(0);
  CHECK(b.buffers == 2);
  CHECK(b.free_W == Approx(-2400.0));
  CHECK(std::abs(b.net_W) < 60.0);
  CHECK(f.power[4] > 0.0);
  CHECK(f.power[5] > 0.0);
  CHECK(f.core->channel(4).role == Role::equalization);
  CHECK(f.core->channel(4).command_equalize);
  // Energy accounting: with equalization the grid saw far less than without.
  CHECK(b.energy.free_export_J > 2400.0 * 100.0);
  CHECK(b.energy.grid_export_J + b.energy.grid_import_J < 0.3 * b.energy.free_export_J);
  CHECK(b.energy.eq_absorbed_J > 0.0);
}

TEST_CASE("assign refuses a channel running a test or in fault and parks an unreachable one", "[control_core]") {
  CoreFixture f(4);
  f.state[0] = ChannelState::running;
  f.state[1] = ChannelState::fault;
  f.fresh[2] = false;  // controller offline: never sampled
  f.step();
  CHECK(f.assign(0) == ResponseStatus::refused_running);
  CHECK(f.assign(1) == ResponseStatus::refused_fault);
  CHECK(f.assign(2) == ResponseStatus::pending);
  CHECK(f.assign(9) == ResponseStatus::refused_invalid);
  BufferLimits bad = CoreFixture::limits();
  bad.v_min_V = 60.0;
  CHECK(f.assign(3, bad) == ResponseStatus::refused_invalid);
  CHECK(f.core->channel(2).role == Role::pending);
  CHECK(f.core->channel(0).role == Role::test);
  // The parked channel is taken when it comes back.
  f.fresh[2] = true;
  f.run_s(2.0);
  CHECK(f.core->channel(2).role == Role::equalization);
  CHECK(f.eq_mode[2]);
}

TEST_CASE("release sends stop and the channel leaves equalization mode", "[control_core]") {
  CoreFixture f(3);
  f.state[0] = ChannelState::running;
  f.power[0] = -1000.0;
  REQUIRE(f.assign(2) == ResponseStatus::ok);
  f.run_s(60.0);
  REQUIRE(f.power[2] > 500.0);
  CHECK(f.release(2) == ResponseStatus::ok);
  f.run_s(1.0);
  const Command c = f.core->command_slot(2).load();
  CHECK_FALSE(c.equalize);
  CHECK(c.setpoint_W == 0.0);
  CHECK_FALSE(f.eq_mode[2]);
  CHECK(f.core->channel(2).role == Role::test);
  CHECK(f.release(2) == ResponseStatus::already);
}

TEST_CASE("a stale or faulted buffer is excluded and its share moves to the others", "[control_core]") {
  CoreFixture f(4);
  f.state[0] = ChannelState::running;
  f.power[0] = -2000.0;
  REQUIRE(f.assign(2) == ResponseStatus::ok);
  REQUIRE(f.assign(3) == ResponseStatus::ok);
  f.run_s(120.0);
  REQUIRE(f.power[2] + f.power[3] == Approx(2000.0).margin(60.0));
  f.fresh[3] = false;  // buffer 3 goes silent
  f.follow[3] = false;
  f.run_s(3.0);
  CHECK(f.core->channel(3).health == Health::stale);
  CHECK(f.core->command_slot(3).load().setpoint_W == 0.0);  // excluded at once
  CHECK(f.power[2] == Approx(2000.0).margin(60.0));         // the other took its share
  // A faulted buffer likewise.
  f.fresh[3] = true;
  f.follow[3] = true;
  f.run_s(60.0);
  f.state[2] = ChannelState::fault;
  f.follow[2] = false;
  f.run_s(3.0);
  CHECK(f.core->command_slot(2).load().setpoint_W == 0.0);
  CHECK(f.power[3] == Approx(2000.0).margin(100.0));
}

TEST_CASE("a whole bus without fresh data ramps its buffers to 0 W", "[control_core]") {
  CoreFixture f(3);
  f.state[0] = ChannelState::running;
  f.power[0] = -1500.0;
  REQUIRE(f.assign(2) == ResponseStatus::ok);
  f.run_s(120.0);
  REQUIRE(f.power[2] > 1400.0);
  // Samples stop arriving for every channel; the buffer's link still delivers commands.
  f.fresh.assign(3, false);
  f.run_s(120.0);
  CHECK(f.core->bus(0).status == BusStatus::ramp_down);
  CHECK(std::abs(f.core->command_slot(2).load().setpoint_W) < 60.0);
}

TEST_CASE("stop_all takes every buffer out of equalization", "[control_core]") {
  CoreFixture f(3);
  f.power[0] = -1000.0;
  REQUIRE(f.assign(1) == ResponseStatus::ok);
  REQUIRE(f.assign(2) == ResponseStatus::ok);
  f.run_s(30.0);
  Request r;
  r.kind = RequestKind::stop_all;
  CHECK(f.request(r) == ResponseStatus::ok);
  f.run_s(1.0);
  CHECK_FALSE(f.core->command_slot(1).load().equalize);
  CHECK_FALSE(f.core->command_slot(2).load().equalize);
  CHECK_FALSE(f.eq_mode[1]);
  CHECK_FALSE(f.eq_mode[2]);
}

TEST_CASE("set_params reaches the bus, invalid params are refused", "[control_core]") {
  CoreFixture f(2);
  Request r;
  r.kind = RequestKind::set_params;
  r.params.tau_s = 12.0;
  r.params.target_W = 500.0;
  CHECK(f.request(r) == ResponseStatus::ok);
  CHECK(f.core->bus(0).params.tau_s == 12.0);
  CHECK(f.core->bus(0).params.target_W == 500.0);
  r.params.tau_s = -1.0;
  CHECK(f.request(r) == ResponseStatus::refused_invalid);
  r.params.tau_s = 12.0;
  r.bus = 3;
  CHECK(f.request(r) == ResponseStatus::refused_invalid);
}

TEST_CASE("buses are balanced independently", "[control_core]") {
  CoreConfig cfg;
  cfg.buses.resize(2);
  cfg.channels.resize(4);
  cfg.channels[2].bus = 1;
  cfg.channels[3].bus = 1;
  cfg.channels[1].assigned = true;
  cfg.channels[1].limits = CoreFixture::limits();
  cfg.channels[3].assigned = true;
  cfg.channels[3].limits = CoreFixture::limits();
  CoreFixture f(4);
  f.core = std::make_unique<ControlCore>(cfg);
  f.state[0] = f.state[2] = ChannelState::running;
  f.power[0] = -1000.0;
  f.power[2] = 700.0;
  f.run_s(150.0);
  CHECK(f.power[1] == Approx(1000.0).margin(60.0));
  CHECK(f.power[3] == Approx(-700.0).margin(60.0));
}

TEST_CASE("a channel found already equalizing is adopted at its power without a step to 0 W", "[control_core]") {
  // As after an eqd restart or a configuration handover: the buffer still follows the old setpoint.
  CoreFixture f(3);
  f.state[0] = ChannelState::running;
  f.power[0] = -1500.0;
  f.state[2] = ChannelState::equalizing;
  f.eq_mode[2] = true;
  f.power[2] = 1400.0;
  f.follow[2] = false;  // record what is commanded instead of following it
  f.step();
  REQUIRE(f.assign(2) == ResponseStatus::ok);
  double min_setpoint = 1e9;
  bool ever_stop = false;
  for (int k = 0; k < 30; ++k) {
    f.step();
    const Command c = f.core->command_slot(2).load();
    if (c.sequence != 0) {
      min_setpoint = std::min(min_setpoint, c.setpoint_W);
      ever_stop = ever_stop || !c.equalize;
    }
  }
  CHECK(f.core->channel(2).role == Role::equalization);
  CHECK_FALSE(ever_stop);
  CHECK(min_setpoint > 1300.0);
}

TEST_CASE("release stops a channel that is not ours but still in equalization mode", "[control_core]") {
  CoreFixture f(2);
  f.state[1] = ChannelState::equalizing;  // left over from an earlier run or configuration
  f.eq_mode[1] = true;
  f.power[1] = 800.0;
  f.step();
  CHECK(f.core->channel(1).role == Role::test);
  CHECK(f.release(1) == ResponseStatus::ok);
  f.run_s(1.0);
  CHECK_FALSE(f.core->command_slot(1).load().equalize);
  CHECK_FALSE(f.eq_mode[1]);
  CHECK(f.core->channel(1).role == Role::test);
  // A test channel that is not equalizing: nothing to do.
  CHECK(f.release(0) == ResponseStatus::already);
}

TEST_CASE("announced forecasts steer the law, none, NaN or infinite count as the present power",
          "[control_core][forecast]") {
  // A test channel discharging at 1000 W that announces it will charge at 1000 W over its horizon.
  // Both laws steer by it; the adaptive one may pick its slow tracker here (the announcement never comes
  // true, so the history favours lagging), hence 180 s.
  const LawKind law = GENERATE(LawKind::damped, LawKind::adaptive);
  INFO("law " << to_string(law));
  const auto setup = [law](BusParams p) {
    p.law = law;
    auto f = std::make_unique<CoreFixture>(3, p);
    f->state[0] = ChannelState::running;
    f->power[0] = -1000.0;
    f->forecast[0] = 1000.0F;
    REQUIRE(f->assign(1) == ResponseStatus::ok);
    REQUIRE(f->assign(2) == ResponseStatus::ok);
    return f;
  };
  SECTION("use_forecast on: the buffers go where the announced free power needs them") {
    auto f = setup(BusParams{});
    f->run_s(180.0);
    const BusSnapshot b = f->core->bus(0);
    CHECK(b.free_W == Approx(-1000.0));
    CHECK(b.free_forecast_W == Approx(1000.0));                        // the announced path, once it fills the window
    CHECK(f->power[1] + f->power[2] == Approx(-1000.0).margin(60.0));  // discharging ahead of the charge
  }
  SECTION("use_forecast off: the announcement is ignored") {
    BusParams p;
    p.use_forecast = false;
    auto f = setup(p);
    f->run_s(180.0);
    CHECK(f->core->bus(0).free_forecast_W == Approx(-1000.0));  // what the law steers by: the measured
    CHECK(f->power[1] + f->power[2] == Approx(1000.0).margin(60.0));
  }
  SECTION("NaN or an infinite announcement falls back to the present power") {
    for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity()}) {
      auto f = setup(BusParams{});
      f->forecast[0] = bad;
      f->run_s(180.0);
      CHECK(f->core->bus(0).free_forecast_W == Approx(-1000.0));
      CHECK(f->power[1] + f->power[2] == Approx(1000.0).margin(60.0));
    }
  }
}

TEST_CASE("forecast path: the centred median follows an announced step and ignores a short pulse", "[forecast]") {
  constexpr std::int64_t kS = 1'000'000'000;
  ForecastPath path;
  // One test channel at -1000 W; from t = 100 s its program draws +1000 W (announced 30 s ahead).
  const auto power_at = [](std::int64_t t, std::int64_t pulse_from, std::int64_t pulse_to) {
    return t >= pulse_from && t < pulse_to ? 1000.0 : -1000.0;
  };
  SECTION("a step: the steer value switches half a window before it, not after") {
    double switched_at = -1;
    for (std::int64_t t = 0; t < 140; ++t) {
      const double now_W = power_at(t, 100, 1000);
      path.update(t * kS, now_W, now_W, power_at(t + 30, 100, 1000), 1, 30.0, 15.0);
      if (switched_at < 0 && path.steer_W() > 0.0) switched_at = static_cast<double>(t);
      if (t < 80) CHECK(path.steer_W() == Approx(-1000.0));
    }
    CHECK(switched_at == Approx(85.0).margin(1.0));  // step at 100 s minus the lead (tau 15 s)
    CHECK(path.steer_W() == Approx(1000.0));
  }
  SECTION("a 5 s pulse inside the 31 s window does not move the median") {
    for (std::int64_t t = 0; t < 140; ++t) {
      const double now_W = power_at(t, 100, 105);
      path.update(t * kS, now_W, now_W, power_at(t + 30, 100, 105), 1, 30.0, 15.0);
      CHECK(path.steer_W() == Approx(-1000.0));
    }
  }
  SECTION("channels that announce nothing count with their present power") {
    // 400 W of silent channels plus the announcing one.
    for (std::int64_t t = 0; t < 140; ++t) {
      const double own_W = power_at(t, 100, 1000);
      path.update(t * kS, 400.0 + own_W, own_W, power_at(t + 30, 100, 1000), 1, 30.0, 15.0);
    }
    CHECK(path.steer_W() == Approx(1400.0));
  }
  SECTION("nothing announced: NaN, so the law uses the measured free power") {
    path.update(5 * kS, 100.0, 0.0, 0.0, 0, 30.0, 15.0);
    CHECK(std::isnan(path.steer_W()));
  }
}

TEST_CASE("a re-assign with new limits changes headroom and capacity at once, the voltage unchanged",
          "[control_core]") {
  // The cycle recomputes a buffer's headroom only when its voltage or limits change: new limits at the
  // same voltage must still take effect in the very cycle that applies them.
  CoreFixture f(2);
  f.state[0] = ChannelState::running;
  f.power[0] = -1500.0;
  CHECK(f.assign(1) == ResponseStatus::ok);
  f.run_s(30.0);
  REQUIRE(f.core->channel(1).role == Role::equalization);
  CHECK(f.core->channel(1).headroom_charge_W == Approx(2000.0));
  CHECK(f.core->bus(0).capacity_charge_W == Approx(2000.0));
  BufferLimits smaller = CoreFixture::limits(800.0);
  smaller.efficiency = 0.8;
  CHECK(f.assign(1, smaller) == ResponseStatus::already);          // one cycle ran after the request
  CHECK(f.core->channel(1).limits.max_charge_W == Approx(800.0));  // published with the re-assign
  CHECK(f.core->channel(1).limits.efficiency == Approx(0.8));
  CHECK(f.core->channel(1).headroom_charge_W == Approx(800.0));
  CHECK(f.core->bus(0).capacity_charge_W == Approx(1000.0));  // bus side: 800 W / 0.8
  CHECK(f.core->channel(1).setpoint_W <= 800.0 + 1e-9);
  f.run_s(30.0);
  CHECK(f.power[1] <= 800.0 + 1e-9);
  CHECK(f.core->channel(1).headroom_discharge_W == Approx(800.0));
}

// Liveness (docs/faults.md): what a link may send depends on when the control thread computed it.
TEST_CASE("a live equalize command is re-confirmed at a quarter of the liveness bound, same sequence",
          "[control_core][liveness]") {
  CoreFixture f(2);
  f.state[0] = ChannelState::running;
  f.power[0] = -1000.0;
  REQUIRE(f.assign(1) == ResponseStatus::ok);
  f.run_s(90.0);  // settled: the setpoint no longer changes by more than the resolution
  const Command c0 = f.core->command_slot(1).load();
  REQUIRE(c0.equalize);
  std::int64_t max_age_ns = 0;
  std::uint32_t seq_changes = 0;
  Command prev = c0;
  for (int k = 0; k < 50; ++k) {
    f.step();
    const Command c = f.core->command_slot(1).load();
    // f.now_ns is the next cycle's time: the cycle just run was at now_ns - 100 ms.
    max_age_ns = std::max(max_age_ns, f.now_ns - 100 * CoreFixture::kMs - c.issued_ns);
    if (c.sequence != prev.sequence) ++seq_changes;
    prev = c;
  }
  CHECK(max_age_ns <= 250 * CoreFixture::kMs);  // default bound 1000 ms: confirmed every 250 ms
  CHECK(seq_changes <= 2);                      // confirmations are not new commands
  CHECK(f.core->stats().stalls == 0);
}

TEST_CASE("after a stall the core sends nothing from before it: a buffer is commanded again only from a new sample",
          "[control_core][liveness]") {
  CoreFixture f(2);
  f.state[0] = ChannelState::running;
  f.power[0] = -1500.0;  // a discharging test: the buffer charges
  REQUIRE(f.assign(1) == ResponseStatus::ok);
  f.run_s(90.0);
  const Command before = f.core->command_slot(1).load();
  REQUIRE(before.equalize);
  REQUIRE(before.setpoint_W > 1000.0);

  // 8 s without a cycle (the process was stopped): nothing was sampled either. During it the
  // controller's watchdog took the buffer to 0 W and out of equalization.
  f.now_ns += 8'000 * CoreFixture::kMs;
  f.eq_mode[1] = false;
  f.state[1] = ChannelState::idle;
  f.power[1] = 0.0;
  f.follow[1] = false;
  // First cycle after the stall, before any link has read the controllers again.
  f.core->cycle(f.now_ns);
  CHECK(f.core->stats().stalls == 1);
  const Command first = f.core->command_slot(1).load();
  CHECK(first.sequence == before.sequence);    // no new command ...
  CHECK(first.issued_ns == before.issued_ns);  // ... and no confirmation: its link holds it (too old)
  f.now_ns += 100 * CoreFixture::kMs;
  f.core->cycle(f.now_ns);
  CHECK(f.core->command_slot(1).load().issued_ns == before.issued_ns);

  // A new sample arrives: the buffer is out of equalization, so it is asked back in at 0 W.
  f.follow[1] = true;
  f.fresh[0] = f.fresh[1] = true;
  f.step();
  const Command after = f.core->command_slot(1).load();
  CHECK(after.sequence != before.sequence);
  CHECK(after.issued_ns > before.issued_ns);
  CHECK(after.equalize);
  CHECK(after.setpoint_W == 0.0);  // never the 1.5 kW from before the stall
  // From there it ramps up again, damped, and balances the bus as before.
  f.run_s(1.0);
  CHECK(f.core->command_slot(1).load().setpoint_W < 500.0);
  f.run_s(90.0);
  CHECK(std::abs(f.core->bus(0).net_W) < 100.0);
}

TEST_CASE("after a stall shorter than the controllers' watchdogs the buffer continues from its measured power",
          "[control_core][liveness]") {
  CoreFixture f(2);
  f.state[0] = ChannelState::running;
  f.power[0] = -1500.0;
  REQUIRE(f.assign(1) == ResponseStatus::ok);
  f.run_s(90.0);
  const double running_W = f.power[1];
  REQUIRE(running_W > 1000.0);
  f.now_ns += 1'500 * CoreFixture::kMs;  // a stall of 1.5 s: still in equalization at the controller
  f.step();                              // new samples with the cycle: the buffer is known again
  CHECK(f.core->stats().stalls == 1);
  f.step();
  CHECK(f.core->command_slot(1).load().setpoint_W == Approx(running_W).margin(150.0));
}

// Issue #19: the device's own limits (ControlCore::device_limits_slot(), written by a SunSpec link) bound
// a buffer's headroom; the other buffer carries the rest, and the bus still balances.
TEST_CASE("a buffer's device limit below its configured maximum: the other buffer carries the rest",
          "[control_core][device_limits]") {
  CoreFixture f(3);
  f.state[0] = ChannelState::running;
  f.power[0] = -3000.0;  // a discharging test feeds 3 kW into the bus
  CHECK(f.assign(1, CoreFixture::limits(3000.0)) == ResponseStatus::ok);
  CHECK(f.assign(2, CoreFixture::limits(3000.0)) == ResponseStatus::ok);
  f.core->device_limits_slot(1).store(DeviceLimits{600.0F, std::numeric_limits<float>::quiet_NaN()});
  // As its link would, the device itself never goes beyond its limit.
  double max_asked_W = 0.0;  // the largest setpoint the core ever had for channel 1
  auto run = [&](double seconds, double limit_W) {
    for (int k = 0; k < static_cast<int>(seconds * 10.0); ++k) {
      f.step();
      f.power[1] = std::min(f.power[1], limit_W);
      max_asked_W = std::max(max_asked_W, f.core->command_slot(1).load().setpoint_W);
    }
  };
  run(120.0, 600.0);
  CHECK(max_asked_W <= 600.0 + 1e-9);  // never asked beyond it
  const ChannelSnapshot s1 = f.core->channel(1);
  REQUIRE(s1.role == Role::equalization);
  CHECK(s1.device.max_charge_W == 600.0F);
  CHECK(std::isnan(s1.device.max_discharge_W));
  CHECK(s1.limits.max_charge_W == 3000.0);  // the configured limits are kept as they were
  CHECK(s1.headroom_charge_W == Approx(600.0));
  CHECK(s1.headroom_discharge_W == Approx(3000.0));
  // Shared by headroom (both mid-window): 3000 x 600 / 3600 = 500 W and 2500 W. Without the device
  // limit it would be 1500 W each, and A's 900 W beyond its limit lost.
  CHECK(s1.setpoint_W == Approx(500.0).margin(10.0));
  CHECK(f.core->channel(2).setpoint_W == Approx(2500.0).margin(60.0));
  const BusSnapshot b = f.core->bus(0);
  CHECK(b.capacity_charge_W == Approx(3600.0));
  CHECK(std::abs(b.net_W) < 60.0);
  // The device lowers its limit at run time: the setpoint follows in the next cycle, the other buffer
  // takes the difference.
  f.core->device_limits_slot(1).store(DeviceLimits{200.0F, 200.0F});
  f.step();
  CHECK(f.core->command_slot(1).load().setpoint_W <= 200.0 + 1e-9);
  CHECK(f.core->channel(1).headroom_discharge_W == Approx(200.0));
  max_asked_W = 0.0;
  run(60.0, 200.0);
  CHECK(max_asked_W <= 200.0 + 1e-9);
  CHECK(f.core->channel(2).setpoint_W == Approx(2812.5).margin(60.0));  // 3000 x 3000 / 3200
  CHECK(std::abs(f.core->bus(0).net_W) < 60.0);
  // Not reported any more: the configured limits alone.
  f.core->device_limits_slot(1).store(DeviceLimits{});
  f.step();
  CHECK(f.core->channel(1).headroom_charge_W == Approx(3000.0));
  CHECK(f.core->bus(0).capacity_charge_W == Approx(6000.0));
}
