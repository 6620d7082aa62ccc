// Plant model: battery, converter, schedules, profile CSV.
#include <catch2/catch.hpp>

#include "../fakes/temp_files.hpp"

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "eqd/sim/battery.hpp"
#include "eqd/sim/converter.hpp"
#include "eqd/sim/errors.hpp"
#include "eqd/sim/schedule.hpp"

using namespace eqd::sim;

namespace {
std::string write_temp(const std::string& name, const std::string& text) {
  static const eqd::test::ProcessTempDir dir("eqd_sim_plant");
  return dir.write(name, text);
}
ConverterParams ideal_converter() {
  ConverterParams c;
  c.max_charge_A = c.max_discharge_A = 1000;
  c.max_charge_W = c.max_discharge_W = 1e6;
  c.v_max_V = 100;
  c.v_min_V = 1;
  c.tau_conv_s = 0;
  c.dead_time_s = 0;
  c.efficiency = 1.0;
  return c;
}
}  // namespace

TEST_CASE("OCV tables are monotone and interpolate", "[sim][battery]") {
  for (const OcvTable& t : {OcvTable::lfp(16), OcvTable::nmc(14)}) {
    double prev = 0;
    for (int i = 0; i <= 100; ++i) {
      const double v = t.voltage_V(i / 100.0);
      CHECK(v >= prev);
      prev = v;
    }
  }
  const OcvTable t({0.0, 1.0}, {3.0, 4.0});
  CHECK(t.voltage_V(0.25) == Approx(3.25));
  CHECK(t.voltage_V(-1) == Approx(3.0));
  CHECK_THROWS_AS(OcvTable({0.0, 0.5, 0.4}, {3, 3.5, 3.6}), std::invalid_argument);
  CHECK_THROWS_AS(OcvTable({0.0, 1.0}, {4.0, 3.0}), std::invalid_argument);
}

TEST_CASE("CC charge raises SOC by I*t/capacity and the terminal voltage by I*R0", "[sim][battery]") {
  BatteryParams p;
  p.capacity_Ah = 10;
  p.r0_ohm = 0.05;
  p.r1_ohm = 0;
  p.initial_soc = 0.2;
  Battery b(p, OcvTable({0.0, 1.0}, {3.0, 4.0}));
  CHECK(b.terminal_voltage_V(2.0) == Approx(3.2 + 0.1));
  for (int i = 0; i < 3600; ++i) b.step(2.0, 1.0);  // 2 A for 1 h = 2 Ah = 20 %
  CHECK(b.soc() == Approx(0.4).epsilon(1e-9));
  CHECK(b.charged_Ah() == Approx(2.0));
  for (int i = 0; i < 1800; ++i) b.step(-4.0, 1.0);
  CHECK(b.soc() == Approx(0.2).epsilon(1e-9));
  CHECK(b.discharged_Ah() == Approx(2.0));
}

TEST_CASE("RC pair relaxes with R1*C1", "[sim][battery]") {
  BatteryParams p;
  p.r1_ohm = 0.01;
  p.c1_F = 1000;  // tau 10 s
  Battery b(p, OcvTable::nmc(1));
  b.step(10.0, 10.0);
  CHECK(b.v_rc_V() == Approx(0.1 * (1 - std::exp(-1.0))));
}

TEST_CASE("converter: first-order response after the dead time", "[sim][converter]") {
  ConverterParams c = ideal_converter();
  c.tau_conv_s = 1.0;
  c.dead_time_s = 0.5;
  Converter conv(c);
  BatteryParams bp;
  bp.capacity_Ah = 1e6;
  Battery b(bp, OcvTable({0.0, 1.0}, {50.0, 50.0}));
  Target t{TargetKind::current, 10.0, 0, 0};
  ConverterOutput o;
  for (int i = 0; i < 5; ++i) {  // 0.5 s dead time = 5 steps of 0.1 s: nothing yet
    o = conv.step(t, b, 0.1);
    CHECK(o.current_A == 0.0);
  }
  for (int i = 0; i < 10; ++i) o = conv.step(t, b, 0.1);  // 1 s = one tau after the dead time
  CHECK(o.current_A == Approx(10.0 * (1 - std::exp(-1.0))).epsilon(1e-6));
  for (int i = 0; i < 100; ++i) o = conv.step(t, b, 0.1);
  CHECK(o.current_A == Approx(10.0).epsilon(1e-4));
}

TEST_CASE("converter: current and power limits, efficiency on the bus side", "[sim][converter]") {
  ConverterParams c = ideal_converter();
  c.max_charge_A = 20;
  c.max_discharge_W = 500;
  c.efficiency = 0.9;
  Converter conv(c);
  BatteryParams bp;
  bp.r0_ohm = 1e-6;
  bp.capacity_Ah = 1e6;
  Battery b(bp, OcvTable({0.0, 1.0}, {50.0, 50.0}));
  ConverterOutput o = conv.step({TargetKind::current, 50.0, 0, 0}, b, 0.1);
  CHECK(o.current_A == Approx(20.0));
  CHECK(o.bus_power_W == Approx(o.power_W / 0.9));
  for (int i = 0; i < 3; ++i) o = conv.step({TargetKind::power, -2000.0, 0, 0}, b, 0.1);
  CHECK(o.power_W == Approx(-500.0).epsilon(1e-4));
  CHECK(o.bus_power_W == Approx(-500.0 * 0.9).epsilon(1e-4));
}

TEST_CASE("converter: charging stops at v_max (CV), discharging at v_min", "[sim][converter]") {
  ConverterParams c = ideal_converter();
  c.v_max_V = 4.1;
  c.v_min_V = 3.2;
  Converter conv(c);
  BatteryParams bp;
  bp.capacity_Ah = 1;
  bp.r0_ohm = 0.05;
  bp.initial_soc = 0.5;
  Battery b(bp, OcvTable::nmc(1));
  ConverterOutput o;
  for (int i = 0; i < 36000; ++i) {
    o = conv.step({TargetKind::current, 2.0, 0, 0}, b, 0.1);
    REQUIRE(o.voltage_V <= 4.1 + 1e-9);
  }
  CHECK(o.voltage_limited);
  CHECK(o.current_A < 0.05);  // tapered in CV
  for (int i = 0; i < 36000; ++i) {
    o = conv.step({TargetKind::current, -2.0, 0, 0}, b, 0.1);
    REQUIRE(o.voltage_V >= 3.2 - 1e-9);
  }
  CHECK(o.voltage_limited);
}

namespace {
struct Plant {
  Battery battery;
  Converter conv;
  explicit Plant(double soc = 0.5) : battery(make(soc), OcvTable::nmc(1)), conv(ideal_converter()) {}
  static BatteryParams make(double soc) {
    BatteryParams p;
    p.capacity_Ah = 2;
    p.r0_ohm = 0.05;
    p.initial_soc = soc;
    return p;
  }
  // Run the schedule for t_s and return the last output.
  ConverterOutput run(ScheduleRunner& r, double t_s, double dt = 0.1) {
    ConverterOutput o;
    for (double t = 0; t < t_s - 1e-9; t += dt) {
      o = conv.step(r.target(), battery, dt);
      r.advance(dt, o);
    }
    return o;
  }
};
}  // namespace

TEST_CASE("schedule: rest, cc, cp steps and repeat", "[sim][schedule]") {
  Schedule s;
  s.repeat = 2;
  Step rest;
  rest.type = StepType::rest;
  rest.duration_s = 10;
  Step cc;
  cc.type = StepType::cc;
  cc.value = 1.5;
  cc.duration_s = 5;
  Step cp;
  cp.type = StepType::cp;
  cp.value = -4.0;
  cp.duration_s = 5;
  s.steps = {rest, cc, cp};
  ScheduleRunner r(&s);
  Plant p;
  ConverterOutput o = p.run(r, 5);
  CHECK(o.current_A == 0.0);
  o = p.run(r, 8);  // now 3 s into cc
  CHECK(r.step_index() == 1);
  CHECK(o.current_A == Approx(1.5));
  o = p.run(r, 4);  // 2 s into cp
  CHECK(r.step_index() == 2);
  CHECK(o.power_W == Approx(-4.0).epsilon(1e-3));
  p.run(r, 3 + 20);  // second pass done
  CHECK(r.pass() == 2);
  CHECK(r.finished());
  CHECK(r.target().kind == TargetKind::off);
}

TEST_CASE("schedule: cc_cv charges to cv_V then ends below cutoff", "[sim][schedule]") {
  Schedule s;
  Step st;
  st.type = StepType::cc_cv;
  st.value = 2.0;
  st.cv_V = 4.0;
  st.cutoff_A = 0.1;
  s.steps = {st};
  ScheduleRunner r(&s);
  Plant p(0.3);
  double vmax = 0;
  ConverterOutput o;
  for (int i = 0; i < 100000 && !r.finished(); ++i) {
    o = p.conv.step(r.target(), p.battery, 0.1);
    r.advance(0.1, o);
    vmax = std::max(vmax, o.voltage_V);
  }
  CHECK(r.finished());
  CHECK(vmax <= 4.0 + 1e-9);
  CHECK(vmax >= 4.0 - 1e-6);
  CHECK(std::abs(o.current_A) < 0.1);
}

TEST_CASE("schedule: pulse train levels repeat", "[sim][schedule]") {
  Schedule s;
  Step st;
  st.type = StepType::pulse;
  st.pulse_kind = TargetKind::current;
  st.levels = {{3.0, 2.0}, {-1.0, 1.0}};
  st.duration_s = 100;
  s.steps = {st};
  ScheduleRunner r(&s);
  Plant p;
  CHECK(p.run(r, 1.0).current_A == Approx(3.0));
  CHECK(p.run(r, 1.5).current_A == Approx(-1.0));
  CHECK(p.run(r, 1.0).current_A == Approx(3.0));  // 3.5 s: second period
}

TEST_CASE("profile CSV: interpolation, loop and errors with file:line", "[sim][schedule][csv]") {
  const auto prof = load_profile(write_temp("ok.csv", "time_s,power_W\n0,0\n10,100\n20,-50\n"));
  CHECK(prof->at(5) == Approx(50));
  CHECK(prof->at(15) == Approx(25));
  Schedule s;
  Step st;
  st.type = StepType::profile;
  st.pulse_kind = TargetKind::power;
  st.profile = prof;
  st.loop = true;
  st.duration_s = 100;
  s.steps = {st};
  ScheduleRunner r(&s);
  Plant p;
  p.run(r, 25);  // looped: 25 s = 5 s into the second pass
  CHECK(r.target().value == Approx(50));

  auto err = [](const std::string& name, const std::string& text) {
    try {
      load_profile(write_temp(name, text));
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(err("bad1.csv", "time_s,value\n0,1\n5,abc\n"),
             Catch::Contains("bad1.csv:3:") && Catch::Contains("value is not a number"));
  CHECK_THAT(err("bad2.csv", "time_s,value\n0,1\n5,2\n5,3\n"),
             Catch::Contains("bad2.csv:4:") && Catch::Contains("increase"));
  CHECK_THAT(err("bad3.csv", "0,1\n5,2\n"), Catch::Contains("bad3.csv:1:") && Catch::Contains("header"));
  CHECK_THAT(err("bad4.csv", "time_s,value\n0,1,2\n"), Catch::Contains("bad4.csv:2:") && Catch::Contains("two fields"));
  CHECK_THAT(err("missing_nonexistent_dir/x.csv", ""), Catch::Contains("cannot open"));
}

TEST_CASE("schedule: the announced forecast is the program's power horizon_s ahead", "[sim][schedule][forecast]") {
  Step pulse;
  pulse.type = StepType::pulse;
  pulse.pulse_kind = TargetKind::power;
  pulse.levels = {{1000.0, 10.0}, {-500.0, 10.0}};
  pulse.duration_s = 100;
  Schedule s;
  s.steps = {pulse};
  ScheduleRunner r(&s);
  CHECK(r.forecast_at_W(5.5, 1.0, 50.0, 0.0) == Approx(1000.0));
  CHECK(r.forecast_at_W(15.5, 1.0, 50.0, 0.0) == Approx(-500.0));
  CHECK(r.forecast_at_W(25.5, 1.0, 50.0, 0.0) == Approx(1000.0));  // next period
  Plant p;
  p.run(r, 5.0);
  CHECK(r.forecast_at_W(7.5, 1.0, 50.0, 0.0) == Approx(-500.0));
  CHECK(r.forecast_at_W(7.5, 0.25, 50.0, 0.0) == Approx(-500.0));
  CHECK(r.step_elapsed_s() == Approx(5.0));  // the run-ahead works on a copy

  SECTION("a start delay and the end of the program are announced") {
    Step cp;
    cp.type = StepType::cp;
    cp.value = 2000.0;
    cp.duration_s = 5.0;
    Schedule d;
    d.start_delay_s = 10.0;
    d.steps = {cp};
    ScheduleRunner rd(&d);
    CHECK(rd.forecast_at_W(5.5, 1.0, 50.0, 0.0) == Approx(0.0));
    CHECK(rd.forecast_at_W(12.5, 1.0, 50.0, 0.0) == Approx(2000.0));
    CHECK(rd.forecast_at_W(20.5, 1.0, 50.0, 0.0) == Approx(0.0));  // finished
  }
  SECTION("a current is announced as power at the present voltage") {
    Step cc;
    cc.type = StepType::cc;
    cc.value = 2.0;
    cc.duration_s = 60.0;
    Schedule c;
    c.steps = {cc};
    ScheduleRunner rc(&c);
    CHECK(rc.forecast_at_W(30.0, 1.0, 50.0, 0.0) == Approx(100.0));
  }
  SECTION("a step ended by a voltage condition is assumed to go on") {
    Step cp;
    cp.type = StepType::cp;
    cp.value = -900.0;
    cp.until_V = 46.0;
    Step rest;
    rest.type = StepType::rest;
    rest.duration_s = 100.0;
    Schedule v;
    v.steps = {cp, rest};
    ScheduleRunner rv(&v);
    CHECK(rv.forecast_at_W(30.0, 1.0, 47.0, -900.0) == Approx(-900.0));
  }
}
