// Wall-clock scenarios of the harness (issue #17): target schedules and tariffs in scenario files
// (errors with file:line:col and the key), quarter-hour demand, buffer throughput and tariff cost.
#include <catch2/catch.hpp>

#include "../fakes/temp_files.hpp"

#include <string>

#include "eqd/sim/errors.hpp"
#include "eqd/sim/scenario.hpp"

using namespace eqd::sim;

namespace {
std::string write_temp(const std::string& name, const std::string& text) {
  static const eqd::test::ProcessTempDir dir("eqd_sim_calendar");
  return dir.write(name, text);
}

// One 4 kW-capable lossless test channel: 1 kW for 10 min, 4 kW for 7.5 min, then nothing; a buffer
// that is never commanded (the law below does nothing). Starts Monday 16:50 local.
const char* kScenario = R"(name: cal
rig:
  name: cal
  buses:
    - name: main
      mode: caps
      import_limit_W: 10000
      schedule:
        - {days: weekdays, start: "17:00", end: "20:00", import_limit_W: 3000}
  controllers:
    - name: c1
      channels:
        - battery: {chemistry: nmc, cells_in_series: 14, capacity_Ah: 200, soc: 0.3}
          converter: {max_charge_W: 5000, max_discharge_W: 5000, v_max_V: 58.8, v_min_V: 42, tau_conv_s: 0.1,
                      dead_time_s: 0, efficiency: 1.0}
          schedule: {steps: [{type: cp, power_W: 1000, duration_s: 600}, {type: cp, power_W: 4000, duration_s: 450},
                             {type: rest, duration_s: 2000}]}
        - battery: {chemistry: lfp, cells_in_series: 16, capacity_Ah: 100, soc: 0.5}
          converter: {max_charge_W: 2000, max_discharge_W: 2000, v_max_V: 58, v_min_V: 40}
          buffer: {v_min_V: 48, v_max_V: 56}
harness: {start_local: "2026-12-07T16:50", duration_s: 2400, plant_dt_s: 0.1, sample_period_s: 1.0}
tariff:
  peak: {days: weekdays, start: "17:00", end: "18:00", price_per_kWh: 1.0}
  offpeak_price_per_kWh: 0.5
  demand_price_per_kW: 10
expect: {bus: main}
)";

std::string scenario_error(const std::string& name, const std::string& text) {
  try {
    load_scenario(write_temp(name, text));
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

std::string replaced(std::string s, const std::string& from, const std::string& to) {
  const auto at = s.find(from);
  REQUIRE(at != std::string::npos);
  return s.replace(at, from.size(), to);
}

class Idle final : public RigLaw {
 public:
  void on_sample(std::size_t, const eqd::core::Sample&) noexcept override {}
  void cycle(std::int64_t) noexcept override {}
  [[nodiscard]] eqd::core::Command command(std::size_t) const noexcept override { return {}; }
  [[nodiscard]] const char* name() const noexcept override { return "idle"; }
};
}  // namespace

TEST_CASE("scenario schedule and tariff errors name file, line, column and key", "[sim][calendar]") {
  REQUIRE(scenario_error("good.yaml", kScenario) == "no error");
  CHECK_THAT(scenario_error("start.yaml", replaced(kScenario, "start: \"17:00\", end: \"20:00\"",
                                                   "start: \"17:60\", end: \"20:00\"")),
             Catch::Contains("start.yaml:9:35: rig.buses[0].schedule[0].start: got '17:60' (expected HH:MM, "
                             "00:00..23:59)"));
  CHECK_THAT(scenario_error("days.yaml", replaced(kScenario, "{days: weekdays, start: \"17:00\", end: \"20:00\"",
                                                  "{days: [mon, tues], start: \"17:00\", end: \"20:00\"")),
             Catch::Contains("days.yaml:9:24: rig.buses[0].schedule[0].days[1]: got 'tues' (expected mon, tue"));
  CHECK_THAT(
      scenario_error("both.yaml", replaced(kScenario, "import_limit_W: 3000}", "import_limit_W: 3000, target_W: 0}")),
      Catch::Contains("both.yaml:9:11: rig.buses[0].schedule[0]: has both target_W and a limit"));
  CHECK_THAT(scenario_error("key.yaml", replaced(kScenario, "import_limit_W: 3000}", "import_cap_W: 3000}")),
             Catch::Contains("key.yaml:9:58: rig.buses[0].schedule[0].import_cap_W: unknown key 'import_cap_W'"));
  CHECK_THAT(scenario_error("when.yaml", replaced(kScenario, "start_local: \"2026-12-07T16:50\"",
                                                  "start_local: \"2026-12-07 16:50\"")),
             Catch::Contains("when.yaml:21:24: harness.start_local: got '2026-12-07 16:50' (expected local time "
                             "YYYY-MM-DDTHH:MM)"));
  const std::string no_clock = replaced(kScenario, "start_local: \"2026-12-07T16:50\", ", "");
  CHECK_THAT(scenario_error("noclock.yaml", no_clock),
             Catch::Contains("noclock.yaml:23:3: tariff: needs harness.start_local"));
  const std::string no_tariff = no_clock.substr(0, no_clock.find("tariff:")) + "expect: {bus: main}\n";
  CHECK_THAT(scenario_error("noclock2.yaml", no_tariff),
             Catch::Contains("noclock2.yaml:21:10: harness.start_local: bus 'main' has a schedule: give start_local"));
  CHECK_THAT(scenario_error("tariff.yaml", replaced(kScenario, "end: \"18:00\", price", "end: \"25:00\", price")),
             Catch::Contains("tariff.yaml:23:47: tariff.peak.end: got '25:00' (expected HH:MM, 00:01..24:00)"));
}

TEST_CASE("harness: quarter-hour demand of the wall clock, buffer throughput and tariff cost", "[sim][calendar]") {
  const Scenario s = load_scenario(write_temp("cal.yaml", kScenario));
  Idle idle;
  const ScenarioResult r = run_scenario(s, &idle);
  const BusMetrics& m = r.metrics;
  // 16:50-17:00 (1 kW) is a partial quarter: not counted. 17:00-17:15: 4 kW for 7.5 min = 2 kW average.
  CHECK(m.free_peak_import_15min_W == Approx(2000.0).margin(15.0));
  CHECK(m.peak_import_15min_W == Approx(m.free_peak_import_15min_W));
  CHECK(m.buffer_throughput_J == 0.0);
  CHECK(m.buffer_stored_change_J == 0.0);
  // 1/6 kWh off-peak at 0.5 + 0.5 kWh at the peak price 1.0; demand 2 kW x 10.
  CHECK(m.free_energy_cost == Approx(0.5 / 6.0 + 0.5).margin(0.005));
  CHECK(m.energy_cost == Approx(m.free_energy_cost));
  CHECK(m.free_demand_charge == Approx(20.0).margin(0.2));
}

TEST_CASE(
    "harness: the real core honours the window's cap, buffer throughput counts both ways, stored change "
    "its sign",
    "[sim][calendar]") {
  const Scenario s = load_scenario(write_temp("cal2.yaml", kScenario));
  const ScenarioResult r = run_scenario(s);
  // Window 17:00-20:00 caps the import at 3 kW: the 4 kW quarter now averages about (3 kW x 7.5 min) / 15.
  CHECK(r.metrics.free_peak_import_15min_W == Approx(2000.0).margin(15.0));
  CHECK(r.metrics.peak_import_15min_W < 1700.0);
  CHECK(r.metrics.buffer_throughput_J > 0.9 * 1000.0 * 450.0 * 0.8);
  // The buffers only gave energy (caps mode rests them outside the window): the stored energy fell by
  // about what went through them, so the balanced throughput (throughput - change) is twice that.
  CHECK(r.metrics.buffer_stored_change_J < -0.9 * r.metrics.buffer_throughput_J);
  CHECK(r.metrics.buffer_stored_change_J >= -r.metrics.buffer_throughput_J);
}
