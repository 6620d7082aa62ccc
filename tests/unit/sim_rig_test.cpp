// Controller model (lease, heartbeat watchdog, faults), rig YAML errors, determinism, harness.
#include <catch2/catch.hpp>

#include "../fakes/temp_files.hpp"

#include <fstream>
#include <string>

#include "eqd/sim/errors.hpp"
#include "eqd/sim/harness.hpp"
#include "eqd/sim/rig.hpp"

using namespace eqd::sim;
using eqd::core::ChannelState;

namespace {
std::string write_temp(const std::string& name, const std::string& text) {
  static const eqd::test::ProcessTempDir dir("eqd_sim_rig");
  return dir.write(name, text);
}

const char* kRig = R"(name: t
seed: 9
buses:
  - {name: main, tau_s: 15}
templates:
  buf:
    battery: {chemistry: lfp, cells_in_series: 16, capacity_Ah: 100}
    converter: {max_charge_W: 2000, max_discharge_W: 2000, v_max_V: 58, v_min_V: 40, tau_conv_s: 0.2, dead_time_s: 0}
    buffer: {v_min_V: 48, v_max_V: 56}
controllers:
  - name: c1
    heartbeat_timeout_ms: 3000
    channels:
      - count: 2
        battery: {chemistry: nmc, cells_in_series: 14, capacity_Ah: 50}
        converter: {v_max_V: 58.8, v_min_V: 42}
        schedule: {repeat: 0, steps: [{type: cp, power_W: 500, duration_s: 30}, {type: rest, duration_s: 10}]}
      - {count: 2, template: buf}
)";

std::string rig_error(const std::string& name, const std::string& text) {
  try {
    load_rig_spec(write_temp(name, text));
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

void run(Rig& rig, double seconds) {
  const int n = static_cast<int>(seconds / 0.1 + 0.5);
  for (int i = 0; i < n; ++i) rig.step(0.1);
}
}  // namespace

TEST_CASE("rig YAML loads with templates and channel names", "[sim][rig]") {
  Rig rig = load_rig(write_temp("ok.yaml", kRig));
  REQUIRE(rig.channel_count() == 4);
  CHECK(rig.channel_ref(3).name == "c1/4");  // 1-based numbers, as eqd's config reads them
  CHECK(rig.channel_spec(2).buffer);
  CHECK(rig.channel_spec(2).limits.v_max_V == 56.0);
  CHECK(rig.channel_spec(2).limits.max_charge_W == 2000.0);  // from the converter
  CHECK(rig.rated_eq_W(0) == 4000.0);
  CHECK(rig.reading(0).state == ChannelState::running);
  CHECK(rig.reading(2).state == ChannelState::idle);
}

TEST_CASE("a channel reports its program position only while its program runs", "[sim][controller]") {
  const std::string rig_yaml = R"(name: t
buses:
  - {name: main, tau_s: 15}
controllers:
  - name: c1
    channels:
      - battery: {chemistry: nmc, cells_in_series: 14, capacity_Ah: 50}
        converter: {v_max_V: 58.8, v_min_V: 42}
        schedule: {repeat: 2, start_delay_s: 20, steps: [{type: cp, power_W: 500, duration_s: 30}, {type: rest, duration_s: 10}]}
)";
  Rig rig = load_rig(write_temp("program.yaml", rig_yaml));
  constexpr auto kNoStep = eqd::core::Sample::kNoStep;
  constexpr auto kNoIndex = eqd::core::Sample::kNoIndex;
  run(rig, 10.0);  // waiting for its start: no step yet (not step 0)
  CHECK(rig.reading(0).step_index == kNoStep);
  CHECK(rig.reading(0).cycle_index == kNoIndex);
  run(rig, 15.0);  // 25 s: first pass, CP
  CHECK(rig.reading(0).step_index == 0);
  CHECK(rig.reading(0).cycle_index == 0);
  run(rig, 40.0);  // 65 s: second pass (60-90 s), CP
  CHECK(rig.reading(0).step_index == 0);
  CHECK(rig.reading(0).cycle_index == 1);
  run(rig, 40.0);  // 105 s: both passes done (at 100 s)
  CHECK(rig.reading(0).step_index == kNoStep);
  CHECK(rig.reading(0).cycle_index == kNoIndex);
}

TEST_CASE("rig YAML errors name file, line, column and key path", "[sim][rig]") {
  std::string bad = kRig;
  bad.replace(bad.find("type: rest"), 10, "type: cc_cvv");
  CHECK_THAT(rig_error("bad_type.yaml", bad),
             Catch::Contains("bad_type.yaml:17:") &&
                 Catch::Contains("controllers[0].channels[0].schedule.steps[1].type: unknown step type 'cc_cvv' "
                                 "(expected rest, cc, cp, cc_cv, pulse, profile, random)"));
  std::string typo = kRig;
  typo.replace(typo.find("capacity_Ah: 50"), 11, "capacty_Ah");
  CHECK_THAT(rig_error("typo.yaml", typo),
             Catch::Contains("typo.yaml:15:") && Catch::Contains("unknown key 'capacty_Ah'"));
  std::string range = kRig;
  range.replace(range.find("seed: 9"), 7, "seed: x");
  CHECK_THAT(rig_error("range.yaml", range), Catch::Contains("range.yaml:2:7: seed: expected an integer"));
  std::string bus = kRig;
  bus.replace(bus.find("- {count: 2, template: buf}"), 27, "- {count: 2, template: buf, bus: nope}");
  CHECK_THAT(rig_error("bus.yaml", bus), Catch::Contains("bus.yaml:18:") && Catch::Contains("unknown bus 'nope'"));
  std::string window = kRig;
  window.replace(window.find("v_max_V: 58.8"), 13, "v_max_V: 48.0");
  CHECK_THAT(rig_error("cv.yaml", window), Catch::Contains("cv.yaml:16:") && Catch::Contains("outside the converter"));
  CHECK_THAT(rig_error("syntax.yaml", "buses: [\n"),
             Catch::Contains("syntax.yaml:") && Catch::Contains("YAML syntax error"));
  std::string win = kRig;
  win.replace(win.find("v_min_V: 48"), 11, "v_min_V: 57");
  CHECK_THAT(rig_error("win.yaml", win),
             Catch::Contains("templates.buf.buffer") && Catch::Contains("v_min_V must be below v_max_V"));
}

TEST_CASE("equalization step follows the setpoint, stop leaves equalization mode", "[sim][controller]") {
  Rig rig = load_rig(write_temp("eq.yaml", kRig));
  ControllerModel& c = rig.controller(0);
  CHECK(c.set_command(0, true, 100, 0, 0.0) == CommandResult::refused_running);
  c.heartbeat(1, 0.0);
  REQUIRE(c.set_command(2, true, -800, 0, 0.0) == CommandResult::accepted);
  run(rig, 2.0);
  c.heartbeat(2, 2.0);
  CHECK(rig.reading(2).state == ChannelState::equalizing);
  CHECK(rig.reading(2).equalization_mode);
  CHECK(rig.truth(2).power_W == Approx(-800).epsilon(0.01));
  REQUIRE(c.set_command(2, false, 0, 0, 2.0) == CommandResult::accepted);
  run(rig, 2.0);
  CHECK(rig.reading(2).state == ChannelState::idle);
  CHECK_FALSE(rig.reading(2).equalization_mode);
  CHECK(std::abs(rig.truth(2).power_W) < 1.0);
}

TEST_CASE("lease: the setpoint expires to 0 W without a refresh", "[sim][controller]") {
  Rig rig = load_rig(write_temp("lease.yaml", kRig));
  ControllerModel& c = rig.controller(0);
  REQUIRE(c.set_command(2, true, 1000, 1500, 0.0) == CommandResult::accepted);
  for (int i = 0; i < 7; ++i) {  // heartbeat alive throughout: only the lease acts
    c.heartbeat(static_cast<std::uint32_t>(i + 1), rig.now_s());
    run(rig, 0.2);
  }
  CHECK(rig.truth(2).power_W == Approx(1000).epsilon(0.01));  // t=1.4 s, lease still valid
  CHECK(c.effective_setpoint_W(2, 1.4) == 1000.0);
  CHECK(c.effective_setpoint_W(2, 1.6) == 0.0);
  for (int i = 0; i < 10; ++i) {
    c.heartbeat(static_cast<std::uint32_t>(100 + i), rig.now_s());
    run(rig, 0.2);
  }
  CHECK(std::abs(rig.truth(2).power_W) < 1.0);
  CHECK(rig.reading(2).state == ChannelState::equalizing);  // still in equalization mode, at 0 W
}

TEST_CASE("heartbeat watchdog takes buffers to 0 W and out of equalization", "[sim][controller]") {
  Rig rig = load_rig(write_temp("wd.yaml", kRig));
  ControllerModel& c = rig.controller(0);
  c.heartbeat(1, 0.0);
  REQUIRE(c.set_command(2, true, 500, 0, 0.0) == CommandResult::accepted);
  REQUIRE(c.set_command(3, true, 500, 0, 0.0) == CommandResult::accepted);
  run(rig, 2.9);
  CHECK_FALSE(c.watchdog_tripped());
  c.heartbeat(1, 2.9);  // same value: not life
  run(rig, 0.3);
  CHECK(c.watchdog_tripped());
  CHECK(c.watchdog_trips() == 1);
  run(rig, 2.0);
  CHECK(rig.reading(2).state == ChannelState::idle);
  CHECK(rig.reading(3).state == ChannelState::idle);
  CHECK(std::abs(rig.truth(3).power_W) < 1.0);
  CHECK(rig.reading(0).state == ChannelState::running);  // test channels are not touched
  CHECK(c.set_command(2, true, 500, 0, rig.now_s()) == CommandResult::refused_watchdog);
  c.heartbeat(2, rig.now_s());
  CHECK(c.set_command(2, true, 500, 0, rig.now_s()) == CommandResult::accepted);
}

TEST_CASE("fault injection, clear, stall and offline", "[sim][controller]") {
  Rig rig = load_rig(write_temp("fault.yaml", kRig));
  run(rig, 5);
  rig.inject_fault(0, 17);
  run(rig, 0.2);
  CHECK(rig.reading(0).state == ChannelState::fault);
  CHECK(rig.reading(0).fault_code == 17);
  CHECK(rig.truth(0).current_A == Approx(0.0).margin(1e-9));
  CHECK(rig.controller(0).set_command(0, true, 1, 0, rig.now_s()) == CommandResult::refused_fault);
  rig.clear_fault(0);
  run(rig, 2);
  CHECK(rig.reading(0).state == ChannelState::running);
  const std::uint32_t seq = rig.reading(1).sequence;
  rig.set_stalled(1, true);
  run(rig, 1);
  CHECK(rig.reading(1).sequence == seq);
  CHECK(rig.truth(1).power_W > 100);  // the plant keeps running
  rig.set_offline(0, true);
  CHECK(rig.controller(0).offline());
}

TEST_CASE("grid meter integrates bus-side import and export", "[sim][rig]") {
  Rig rig = load_rig(write_temp("meter.yaml", kRig));
  run(rig, 20);  // two test channels at 500 W (battery side), default efficiency 0.95
  const BusMeter& m = rig.bus_meter(0);
  CHECK(m.free_W == Approx(1000 / 0.95).epsilon(0.01));
  CHECK(m.grid_import_J == Approx(m.free_import_J));
  CHECK(m.grid_import_J > 0.9 * 1000 / 0.95 * 19);
  CHECK(m.grid_export_J == 0.0);
}

TEST_CASE("same seed gives the same trace, another seed differs", "[sim][determinism]") {
  auto trace = [](const std::string& text) {
    Rig rig = load_rig(write_temp("det.yaml", text));
    std::vector<double> v;
    for (int i = 0; i < 600; ++i) {
      rig.step(0.1);
      v.push_back(rig.reading(0).voltage_V);
      v.push_back(rig.reading(1).current_A);
    }
    return v;
  };
  const auto a = trace(kRig);
  const auto b = trace(kRig);
  CHECK(a == b);
  std::string other = kRig;
  other.replace(other.find("seed: 9"), 7, "seed: 10");
  CHECK(trace(other) != a);
}

namespace {
/// A trivial proportional law of the test's own: every buffer takes -free/n, no damping.
class SplitLaw final : public RigLaw {
 public:
  explicit SplitLaw(const Rig& rig) : rig_(rig), latest_(rig.channel_count()), cmd_(rig.channel_count()) {}
  void on_sample(std::size_t i, const eqd::core::Sample& s) noexcept override { latest_[i] = s; }
  void cycle(std::int64_t) noexcept override {
    double free = 0;
    std::size_t n = 0;
    for (std::size_t i = 0; i < latest_.size(); ++i) {
      if (rig_.channel_spec(i).buffer)
        ++n;
      else
        free += latest_[i].power_W;
    }
    for (std::size_t i = 0; i < latest_.size(); ++i) {
      if (!rig_.channel_spec(i).buffer) continue;
      cmd_[i].equalize = true;
      cmd_[i].setpoint_W = -free / static_cast<double>(n);
      cmd_[i].lease_ms = 5000;
      ++cmd_[i].sequence;
    }
  }
  eqd::core::Command command(std::size_t i) const noexcept override { return cmd_[i]; }
  const char* name() const noexcept override { return "split"; }

 private:
  const Rig& rig_;
  std::vector<eqd::core::Sample> latest_;
  std::vector<eqd::core::Command> cmd_;
};
}  // namespace

TEST_CASE("harness runs a pluggable law with delays and records the bus", "[sim][harness]") {
  Rig rig = load_rig(write_temp("h.yaml", kRig));
  SplitLaw law(rig);
  HarnessConfig cfg;
  cfg.duration_s = 120;
  cfg.link_delay_s = 0.3;
  cfg.command_delay_s = 0.2;
  cfg.record_period_s = 0.5;
  Harness h(rig, law, cfg, {Event{100.0, Event::Kind::kill_eqd, 0, 0, 1}});
  const std::size_t capacity = h.trace(0).t_s.capacity();
  h.run(25);
  const BusTrace& t = h.trace(0);
  REQUIRE(!t.t_s.empty());
  // The trace is bus side (what the grid sees): the split law balances battery-side reports, so the
  // converters' losses remain as residual.
  const double eff_test = rig.channel_spec(0).converter.efficiency;
  const double eff_buffer = rig.channel_spec(2).converter.efficiency;
  REQUIRE(eff_test < 1.0);
  CHECK(t.free_W.back() == Approx(1000 / eff_test).epsilon(0.02));
  CHECK(t.eq_measured_W.back() == Approx(-1000 * eff_buffer).epsilon(0.03));
  CHECK(std::abs(t.residual_W.back() - (1000 / eff_test - 1000 * eff_buffer)) < 30);
  // Delays are real: the buffers did not react within the first 0.5 s of the run.
  CHECK(t.eq_measured_W.front() == Approx(0.0).margin(1e-6));
  h.run();
  CHECK_FALSE(h.eqd_alive());
  CHECK(rig.reading(2).state == ChannelState::idle);  // watchdog after kill at 100 s
  const BusMetrics m = h.metrics(0);
  CHECK(m.rated_eq_W == 4000);
  CHECK(m.free_import_J > m.grid_import_J);
  CHECK(m.window_margin_min_V > 0);
  CHECK(t.t_s.size() == 240);           // 120 s at 0.5 s
  CHECK(t.t_s.capacity() == capacity);  // preallocated; never grew
}

TEST_CASE("core config from the rig marks buffers as assigned", "[sim][harness]") {
  Rig rig = load_rig(write_temp("cc.yaml", kRig));
  const auto cfg = make_core_config(rig);
  REQUIRE(cfg.channels.size() == 4);
  CHECK_FALSE(cfg.channels[0].assigned);
  CHECK(cfg.channels[3].assigned);
  CHECK(cfg.channels[3].limits.v_min_V == 48.0);
  CHECK(cfg.buses.at(0).tau_s == 15.0);
}
