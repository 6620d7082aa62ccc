// Programs for the learned load predictor (issue #14): drive cycles looped until a voltage cutoff,
// capacity fade that shortens a cycle-life test's steps, one-off random programs and random start times.
#include <catch2/catch.hpp>

#include "../fakes/temp_files.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "eqd/sim/battery.hpp"
#include "eqd/sim/converter.hpp"
#include "eqd/sim/errors.hpp"
#include "eqd/sim/rig.hpp"
#include "eqd/sim/schedule.hpp"

using namespace eqd::sim;

namespace {
// One folder, so that a rig file finds its profile CSV beside it.
std::string write_temp(const std::string& name, const std::string& text) {
  static const eqd::test::ProcessTempDir dir("eqd_sim_program");
  return dir.write(name, text);
}

ConverterParams ideal_converter() {
  ConverterParams c;
  c.max_charge_A = c.max_discharge_A = 1000;
  c.max_charge_W = c.max_discharge_W = 1e6;
  c.v_max_V = 4.2;
  c.v_min_V = 2.8;
  c.tau_conv_s = 0;
  c.dead_time_s = 0;
  c.efficiency = 1.0;
  return c;
}

/// A one-cell NMC channel with an ideal converter, stepped at 0.1 s.
struct Channel {
  Battery battery;
  Converter conv{ideal_converter()};
  ConverterOutput last{};
  Channel(double capacity_Ah, double soc, double fade_per_cycle = 0.0)
      : battery(params(capacity_Ah, soc, fade_per_cycle), OcvTable::nmc(1)) {}
  static BatteryParams params(double capacity_Ah, double soc, double fade) {
    BatteryParams p;
    p.capacity_Ah = capacity_Ah;
    p.r0_ohm = 0.02;
    p.initial_soc = soc;
    p.fade_per_cycle = fade;
    return p;
  }
  void step(ScheduleRunner& r, double dt = 0.1) {
    last = conv.step(r.target(), battery, dt);
    r.advance(dt, last);
  }
};

/// Discharge-heavy drive-cycle stand-in in the traction sign (discharge positive), with a regen dip.
const char* kDriveCsv = "time_s,current_A\n0,1\n10,1.5\n20,-0.5\n30,1\n40,1\n";

Step drive_until(double until_V) {
  Step st;
  st.type = StepType::profile;
  st.pulse_kind = TargetKind::current;
  st.profile = load_profile(write_temp("drive.csv", kDriveCsv));
  st.scale = -1.0;  // eqd's sign: discharging
  st.loop = true;
  st.until_V = until_V;
  st.until_falling = true;
  return st;
}

Step cc_cv(double current_A, double cv_V, double cutoff_A) {
  Step st;
  st.type = StepType::cc_cv;
  st.value = current_A;
  st.cv_V = cv_V;
  st.cutoff_A = cutoff_A;
  return st;
}

Step rest(double s) {
  Step st;
  st.type = StepType::rest;
  st.duration_s = s;
  return st;
}

Step random_step(double lo, double hi, double hold_lo, double hold_hi, double duration_s) {
  Step st;
  st.type = StepType::random;
  st.pulse_kind = TargetKind::power;
  st.value = lo;
  st.value_max = hi;
  st.hold_min_s = hold_lo;
  st.hold_max_s = hold_hi;
  st.duration_s = duration_s;
  return st;
}

/// Length of each completed run of step `index`, in order (the runner stepped at 0.1 s).
std::vector<double> step_lengths(Channel& ch, ScheduleRunner& r, std::size_t index, double seconds) {
  std::vector<double> out;
  double t_in = 0.0;
  for (int i = 0; i < static_cast<int>(seconds * 10.0); ++i) {
    const std::size_t before = r.step_index();
    ch.step(r);
    if (before == index) t_in += 0.1;
    if (before == index && (r.step_index() != index || r.step_elapsed_s() == 0.0)) {
      out.push_back(t_in);
      t_in = 0.0;
    }
  }
  return out;
}
}  // namespace

TEST_CASE("profile until_V: a drive cycle loops until the cutoff, then the program goes on",
          "[sim][schedule][program]") {
  Schedule s;
  s.repeat = 0;
  s.steps = {drive_until(3.5), cc_cv(0.5, 4.1, 0.02), rest(30)};
  ScheduleRunner r(&s);
  Channel ch(0.02, 0.9);
  int cutoffs = 0;
  double longest_profile_s = 0.0;
  for (int i = 0; i < 40000; ++i) {  // 4000 s
    const std::size_t before = r.step_index();
    const double elapsed = r.step_elapsed_s() + 0.1;
    ch.step(r);
    if (before == 0 && r.step_index() == 1) {
      ++cutoffs;
      // It ended because the terminal fell to the cutoff, within one step's change (R0 drop included).
      CHECK(ch.last.voltage_V <= 3.5);
      CHECK(ch.last.voltage_V > 3.5 - 0.1);
      longest_profile_s = std::max(longest_profile_s, elapsed);
    }
    if (before == 0) REQUIRE(ch.last.voltage_V > 3.5 - 0.1);  // never driven below it
  }
  CHECK(cutoffs >= 3);
  CHECK(r.pass() >= 3);                   // the passes the predictor keys by
  CHECK(longest_profile_s > 40.0 * 1.5);  // looped past the 40 s profile's end, not stopped there
}

TEST_CASE("profile until_V: a charging profile ends when the terminal rises to it", "[sim][schedule][program]") {
  Step st = drive_until(4.0);
  st.scale = 1.0;  // the same profile as a net charge
  st.until_falling = false;
  Schedule s;
  s.steps = {st};
  ScheduleRunner r(&s);
  Channel ch(0.02, 0.3);
  double vmax = 0.0;
  for (int i = 0; i < 40000 && !r.finished(); ++i) {
    ch.step(r);
    vmax = std::max(vmax, ch.last.voltage_V);
  }
  CHECK(r.finished());
  CHECK(vmax >= 4.0);
  CHECK(vmax < 4.0 + 0.1);
}

TEST_CASE("capacity fade: capacity falls by fade_per_cycle per equivalent full cycle", "[sim][battery][program]") {
  BatteryParams p;
  p.capacity_Ah = 1.0;
  p.initial_soc = 0.5;
  p.fade_per_cycle = 0.01;
  Battery b(p, OcvTable::nmc(1));
  CHECK(b.capacity_Ah() == 1.0);
  // 10 equivalent cycles: 20 Ah through the battery, alternating so that SOC stays inside 0..1.
  for (int k = 0; k < 20; ++k)
    for (int i = 0; i < 1800; ++i) b.step(k % 2 == 0 ? 2.0 * 0.25 : -2.0 * 0.25, 1.0);
  CHECK(b.equivalent_cycles() == Approx(2.5).epsilon(1e-9));
  CHECK(b.capacity_Ah() == Approx(1.0 - 0.01 * 2.5).epsilon(1e-9));
  BatteryParams none = p;
  none.fade_per_cycle = 0.0;
  Battery n(none, OcvTable::nmc(1));
  for (int i = 0; i < 3600; ++i) n.step(0.5, 1.0);
  CHECK(n.capacity_Ah() == 1.0);
  SECTION("the capacity has a floor") {
    BatteryParams fast = p;
    fast.fade_per_cycle = 1.0;
    Battery f(fast, OcvTable::nmc(1));
    for (int k = 0; k < 40; ++k)
      for (int i = 0; i < 360; ++i) f.step(k % 2 == 0 ? 1.0 : -1.0, 1.0);
    CHECK(f.capacity_Ah() == Approx(Battery::kMinCapacityFraction));
  }
}

TEST_CASE("capacity fade: a cycle-life test's CC-CV and CP steps shorten from cycle to cycle",
          "[sim][schedule][program]") {
  Step discharge;
  discharge.type = StepType::cp;
  discharge.value = -2.0;  // W, one cell
  discharge.until_V = 3.4;
  Schedule s;
  s.repeat = 0;
  s.steps = {cc_cv(0.5, 4.1, 0.03), rest(20), discharge, rest(20)};
  auto lengths = [&](double fade, std::size_t index) {
    ScheduleRunner r(&s);
    Channel ch(0.1, 0.3, fade);
    return step_lengths(ch, r, index, 20000.0);
  };
  for (const std::size_t index : {std::size_t{0}, std::size_t{2}}) {
    INFO("step " << index);
    const auto faded = lengths(0.02, index);
    const auto fresh = lengths(0.0, index);
    REQUIRE(faded.size() >= 6);
    REQUIRE(fresh.size() >= 6);
    // From the second cycle on (the first starts from the initial SOC), each is shorter than the last...
    for (std::size_t k = 2; k < 6; ++k) CHECK(faded[k] < faded[k - 1]);
    // ... by about the fade (2 % per equivalent cycle, somewhat under one per cycle here), while
    // without fade they stay put.
    CHECK(faded[5] / faded[1] < 0.97);
    CHECK(faded[5] / faded[1] > 0.88);
    CHECK(fresh[5] / fresh[1] == Approx(1.0).epsilon(0.01));
  }
}

TEST_CASE("random step: levels and holds from their ranges, deterministic, never the same pass twice",
          "[sim][schedule][program]") {
  Schedule s;
  s.repeat = 0;
  s.seed = 1234;
  s.steps = {random_step(-3000.0, 2000.0, 5.0, 60.0, 600.0)};
  auto levels = [](const Schedule& sched, double seconds) {
    ScheduleRunner r(&sched);
    Channel ch(1000.0, 0.5);                            // large: the converter never limits the levels
    std::vector<std::pair<std::uint64_t, double>> out;  // (pass, level) at every change
    double hold = 0.0;
    std::vector<double> holds;
    for (int i = 0; i < static_cast<int>(seconds * 10.0); ++i) {
      const Target t = r.target();
      if (out.empty() || out.back().second != t.value || out.back().first != r.pass()) {
        if (!out.empty() && out.back().first == r.pass()) holds.push_back(hold);
        out.emplace_back(r.pass(), t.value);
        hold = 0.0;
      }
      hold += 0.1;
      ch.step(r);
    }
    return std::pair{out, holds};
  };
  const auto [a, holds] = levels(s, 3000.0);
  REQUIRE(a.size() > 40);
  for (const auto& [pass, v] : a) {
    CHECK(v >= -3000.0);
    CHECK(v <= 2000.0);
  }
  for (const double h : holds) {
    CHECK(h >= 5.0 - 0.15);
    CHECK(h <= 60.0 + 0.15);
  }
  CHECK(levels(s, 3000.0).first == a);  // the same program from the same seed
  // Passes differ: the first levels of pass 0 and pass 1 are not the same sequence.
  std::vector<double> p0, p1;
  for (const auto& [pass, v] : a) {
    if (pass == 0) p0.push_back(v);
    if (pass == 1) p1.push_back(v);
  }
  REQUIRE_FALSE(p1.empty());
  CHECK(p0.front() != p1.front());
  Schedule other = s;
  other.seed = 1235;
  CHECK(levels(other, 3000.0).first != a);
  Schedule step_seed = s;
  step_seed.steps[0].seed = 7;  // the step's own seed moves its draws as well
  CHECK(levels(step_seed, 3000.0).first != a);

  SECTION("rest_fraction 1 gives only pauses") {
    Schedule quiet = s;
    quiet.steps[0].rest_fraction = 1.0;
    for (const auto& [pass, v] : levels(quiet, 1000.0).first) CHECK(v == 0.0);
  }
  SECTION("a duration range is drawn anew at each start") {
    Schedule varied = s;
    varied.steps[0].duration_s = 100.0;
    varied.steps[0].duration_max_s = 400.0;
    ScheduleRunner r(&varied);
    Channel ch(1000.0, 0.5);
    std::vector<double> lengths;
    for (int i = 0; i < 30000; ++i) {
      const std::uint64_t pass = r.pass();
      const double length = r.step_length_s();
      ch.step(r);
      if (r.pass() != pass) lengths.push_back(length);
    }
    REQUIRE(lengths.size() >= 8);
    for (const double l : lengths) {
      CHECK(l >= 100.0);
      CHECK(l <= 400.0);
    }
    CHECK(*std::max_element(lengths.begin(), lengths.end()) - *std::min_element(lengths.begin(), lengths.end()) > 50.0);
  }
  SECTION("a controller that runs its program ahead announces the level it will draw") {
    ScheduleRunner r(&s);
    Channel ch(1000.0, 0.5);
    for (int i = 0; i < 100; ++i) ch.step(r);
    const double announced = r.forecast_at_W(30.0, 0.1, 3.7, 0.0);
    for (int i = 0; i < 300; ++i) ch.step(r);
    CHECK(r.target().value == Approx(announced));
  }
}

namespace {
const char* kRig = R"(name: learn
seed: 5
buses:
  - {name: main, use_forecast: false}
templates:
  cell:
    battery: {chemistry: nmc, capacity_Ah: 2, soc: 0.9, fade_per_cycle: 0.005}
    converter: {v_max_V: 4.2, v_min_V: 2.8}
controllers:
  - name: c1
    channels:
      - count: 3
        template: cell
        schedule:
          repeat: 0
          start_delay_s: [100, 200]
          steps:
            - {type: profile, file: drive.csv, mode: current, scale: -2, loop: true, until_V: 3.3}
            - {type: cc_cv, current_A: 1, cv_V: 4.1, cutoff_A: 0.05}
      - count: 2
        template: cell
        schedule:
          repeat: 0
          steps:
            - {type: random, mode: power, value: [-5, 3], hold_s: [2, 20], duration_s: [300, 900], rest_fraction: 0.2, seed: 3}
)";

std::string rig_error(const std::string& name, const std::string& text) {
  try {
    load_rig_spec(write_temp(name, text));
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}
}  // namespace

TEST_CASE("rig YAML: until_V on profiles, fade_per_cycle, random steps and start-delay ranges", "[sim][rig][program]") {
  write_temp("drive.csv", kDriveCsv);
  const RigSpec spec = load_rig_spec(write_temp("ok.yaml", kRig));
  const auto& ch = spec.controllers[0].channels;
  REQUIRE(ch.size() == 5);
  CHECK(ch[0].battery.fade_per_cycle == 0.005);
  const Step& drive = ch[0].schedule->steps[0];
  CHECK(drive.until_V == 3.3);
  CHECK(drive.until_falling);  // the profile is a discharge once scaled by -2
  std::vector<double> delays;
  for (std::size_t k = 0; k < 3; ++k) {
    delays.push_back(ch[k].schedule->start_delay_s);
    CHECK(delays.back() >= 100.0);
    CHECK(delays.back() <= 200.0);
  }
  CHECK(delays[0] != delays[1]);  // one draw per channel
  CHECK(delays[1] != delays[2]);
  const Step& rnd = ch[3].schedule->steps[0];
  CHECK(rnd.type == StepType::random);
  CHECK(rnd.pulse_kind == TargetKind::power);
  CHECK(rnd.value == -5.0);
  CHECK(rnd.value_max == 3.0);
  CHECK(rnd.hold_min_s == 2.0);
  CHECK(rnd.hold_max_s == 20.0);
  CHECK(rnd.duration_s == 300.0);
  CHECK(rnd.duration_max_s == 900.0);
  CHECK(rnd.rest_fraction == 0.2);
  CHECK(rnd.seed == 3);
  CHECK(ch[3].schedule->seed != ch[4].schedule->seed);  // same program, different draws

  // Deterministic given the rig's seed; another seed draws other delays.
  const RigSpec again = load_rig_spec(write_temp("ok.yaml", kRig));
  CHECK(again.controllers[0].channels[1].schedule->start_delay_s == delays[1]);
  const RigSpec reseeded = load_rig_spec(write_temp("reseeded.yaml", replaced(kRig, "seed: 5", "seed: 6")));
  CHECK(reseeded.controllers[0].channels[1].schedule->start_delay_s != delays[1]);

  // A charging profile reaches its cutoff by rising.
  const RigSpec charge = load_rig_spec(
      write_temp("charge.yaml", replaced(replaced(kRig, "scale: -2", "scale: 2"), "until_V: 3.3", "until_V: 4.1")));
  CHECK_FALSE(charge.controllers[0].channels[0].schedule->steps[0].until_falling);

  // The rig runs: the random channels draw levels within their range.
  Rig rig(spec);
  for (int i = 0; i < 3000; ++i) {
    rig.step(0.1);
    CHECK(rig.truth(3).power_W >= -5.0 - 0.2);
    CHECK(rig.truth(3).power_W <= 3.0 + 0.2);
  }
}

TEST_CASE("rig YAML: bad program keys name the file, line and key", "[sim][rig][program]") {
  write_temp("drive.csv", kDriveCsv);
  CHECK_THAT(
      rig_error("inverted.yaml", replaced(kRig, "start_delay_s: [100, 200]", "start_delay_s: [200, 100]")),
      Catch::Contains("inverted.yaml:16:") &&
          Catch::Contains("controllers[0].channels[0].schedule.start_delay_s: low end 200 is above high end 100"));
  CHECK_THAT(rig_error("one.yaml", replaced(kRig, "value: [-5, 3]", "value: [-5]")),
             Catch::Contains("one.yaml:25:") &&
                 Catch::Contains("channels[1].schedule.steps[0].value: expected a number or a list [low, high]"));
  CHECK_THAT(rig_error("hold.yaml", replaced(kRig, "hold_s: [2, 20]", "hold_s: [0, 20]")),
             Catch::Contains("hold.yaml:25:") && Catch::Contains("steps[0].hold_s[0]: value 0 out of range"));
  CHECK_THAT(rig_error("nohold.yaml", replaced(kRig, "hold_s: [2, 20], ", "")),
             Catch::Contains("nohold.yaml:25:") && Catch::Contains("random needs value, hold_s and duration_s"));
  CHECK_THAT(
      rig_error("window.yaml", replaced(kRig, "until_V: 3.3", "until_V: 2.5")),
      Catch::Contains("window.yaml:18:") &&
          Catch::Contains("channels[0].schedule.steps[0].until_V: cutoff 2.500000 V is outside the converter window"));
  CHECK_THAT(rig_error("endless.yaml", replaced(kRig, ", until_V: 3.3", "")),
             Catch::Contains("endless.yaml:18:") && Catch::Contains("a looping profile needs duration_s or until_V"));
  CHECK_THAT(rig_error("fade.yaml", replaced(kRig, "fade_per_cycle: 0.005", "fade_per_cycle: 2")),
             Catch::Contains("fade.yaml:7:") &&
                 Catch::Contains("templates.cell.battery.fade_per_cycle: value 2 out of range"));
  write_temp("flat.csv", "time_s,current_A\n0,1\n10,1\n20,-1\n30,-1\n");
  CHECK_THAT(rig_error("flat.yaml", replaced(kRig, "file: drive.csv", "file: flat.csv")),
             Catch::Contains("flat.yaml:18:") && Catch::Contains("until_V has no direction"));
  CHECK_THAT(rig_error("typo.yaml", replaced(kRig, "rest_fraction", "rest_fractoin")),
             Catch::Contains("typo.yaml:25:") && Catch::Contains("unknown key 'rest_fractoin'"));
}
