#pragma once
/// @file scenario.hpp
/// Scenario files: a rig, harness timing, timed events and the expected outcomes, checked against the
/// harness metrics. Used by the `sim_scenarios` test and by anyone replaying a scenario by hand.

#include <cstddef>
#include <string>
#include <vector>

#include "eqd/sim/harness.hpp"
#include "eqd/sim/rig.hpp"

namespace eqd::sim {

/// A bound on one recorded signal over a time window (scenario YAML: `expect.checks[]`).
struct SignalCheck {
  std::string signal;           ///< free_W, eq_commanded_W, eq_measured_W, residual_W, grid_net_W, or per buffer:
                                ///< setpoint_W, buffer_power_W, buffer_voltage_V, buffer_equalizing
  std::string channel;          ///< per-buffer signals: "CONTROLLER/INDEX"
  std::size_t buffer_slot = 0;  ///< resolved position of `channel` in the bus trace
  double from_s = 0.0, to_s = 0.0;
  double min = -1e300, max = 1e300;  ///< bounds on the value (W, V or 0/1)
  double abs_max = 1e300;            ///< bound on |value|
  double span_max = 1e300;           ///< bound on max - min over the window (held / no oscillation)
  std::string where;                 ///< "file:line" of the check, for messages
};

/// Expected outcomes of a scenario (scenario YAML: `expect:`). Unset bounds are not checked.
struct Expectations {
  std::size_t bus = 0;
  double step_at_s = -1.0;               ///< step_at_s: enables the step-response checks
  double settle_within_s = -1.0;         ///< settle_within_s
  double settle_band_fraction = 0.02;    ///< settle_band_fraction (of the bus's rated equalization power)
  double overshoot_max_fraction = -1.0;  ///< overshoot_max_fraction (of the step)
  double flips_per_hour_max = -1.0;      ///< flips_per_hour_max
  double exchange_ratio_max = -1.0;      ///< exchange_ratio_max: grid exchange with / without equalization
  double window_margin_min_V = -1e300;   ///< window_margin_min_V: buffers stay this far inside their window
  double residual_rms_max_W = -1.0;      ///< residual_rms_max_W (from harness.metrics_from_s)
  /// peak_import_15min_max_W: the highest whole quarter hour's average import (from metrics_from_s)
  double peak_import_15min_max_W = -1.0;
  std::vector<SignalCheck> checks;
};

/// A loaded scenario. Plain data.
struct Scenario {
  std::string name;
  std::string source;
  RigSpec rig;
  HarnessConfig harness;
  std::vector<Event> events;
  Expectations expect;
};

/// Load a scenario YAML file (rig inline or as a path relative to the file). Throws InputError.
Scenario load_scenario(const std::string& path);

/// Outcome of running a scenario against a law.
struct ScenarioResult {
  BusMetrics metrics;                 ///< of expect.bus
  StepResponse step;                  ///< when expect.step_at_s >= 0
  std::vector<std::string> failures;  ///< one line per unmet expectation, with the measured number
  std::string summary;                ///< the measured figures, one line
  double wall_s = 0.0;                ///< wall-clock time of the harness run
};

/// Build the rig, run the harness with `law` (nullptr: the real ControlCore) and check the expectations.
ScenarioResult run_scenario(const Scenario& s, RigLaw* law = nullptr);

}  // namespace eqd::sim
