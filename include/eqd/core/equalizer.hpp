#pragma once
/// @file equalizer.hpp
/// The damped control law of one bus, as a pure function of (inputs, parameters, state).
/// No I/O, no allocation, no exceptions: callable from the control thread and from offline harnesses.

#include <cstdint>
#include <limits>

#include "eqd/core/params.hpp"

namespace eqd::core {

/// Why the law did what it did this step (also published per bus).
enum class BusStatus : std::uint8_t {
  ok = 0,          ///< tracking normally
  idle = 1,        ///< no usable equalization channel: total command is 0 W
  holding = 2,     ///< some test channel is stale: total held (no reaction to unknown data)
  ramp_down = 3,   ///< no fresh data (or held too long): ramping the total to 0 W
  saturated = 4,   ///< the desired total exceeds the buffers' headroom
};
const char* to_string(BusStatus s) noexcept;

/// What the law sees of one bus at one step.
struct EqualizerInput {
  std::int64_t now_ns = 0;
  double free_W = 0.0;                 ///< sum of fresh test-channel power
  /// Free power announced for the controllers' forecast horizon (free_W where nothing is announced);
  /// NaN: no forecast at all (the law uses free_W).
  double free_forecast_W = std::numeric_limits<double>::quiet_NaN();
  double eq_measured_W = 0.0;          ///< sum of measured power of usable equalization channels
  double capacity_charge_W = 0.0;      ///< sum of usable buffers' charge headroom (>= 0)
  double capacity_discharge_W = 0.0;   ///< sum of usable buffers' discharge headroom (>= 0, magnitude)
  double rated_W = 0.0;                ///< sum of usable buffers' max(charge, discharge) rating (for auto slew)
  bool any_test_stale = false;         ///< a test channel's sample is stale or invalid
  bool any_fresh = false;              ///< at least one channel of the bus has a fresh sample
  bool samples_newer_than_command = true;  ///< every usable buffer reported since the last command
};

/// The law's memory for one bus. Trivially copyable; owned by the control thread.
struct EqualizerState {
  double stage1_W = 0.0;         ///< first low-pass stage
  double command_W = 0.0;        ///< total equalization command (second stage, slew-limited)
  double reference_W = 0.0;      ///< deadbanded desired total
  double trim_W = 0.0;           ///< slow correction of buffers' tracking error
  double deadband_area_Ws = 0.0; ///< signed integral of (desired - reference) since the last move
  std::int64_t last_update_ns = -1;
  std::int64_t flip_request_since_ns = -1;  ///< when a reversal was first requested (-1: none)
  std::int64_t hold_since_ns = -1;          ///< when holding started (-1: not holding)
  int direction = 0;             ///< sign of the last non-zero command (+1 charge, -1 discharge)
  std::int64_t direction_since_ns = -1;     ///< last time the command was non-zero in `direction`
  std::uint64_t updates = 0;
  std::uint64_t direction_flips = 0;
  double setpoint_travel_W = 0.0;  ///< sum of |change of command| (actuation measure)
};

/// Result of one step.
struct EqualizerOutput {
  double command_W = 0.0;   ///< total equalization power to allocate (positive = buffers charge)
  double desired_W = 0.0;   ///< what full equalization would ask for now (target - free)
  double aim_W = 0.0;       ///< what the law steers toward (target - announced free power, if used)
  BusStatus status = BusStatus::ok;
  bool updated = false;     ///< a new command was computed this step
};

/// Advance the law. Updates happen at most every p.update_interval_s and only when
/// in.samples_newer_than_command; otherwise the previous command is returned (clamped to capacity).
/// Pure apart from `state`. Any thread; not thread-safe on the same state.
EqualizerOutput equalizer_step(const EqualizerInput& in, const BusParams& p, EqualizerState& state) noexcept;

}  // namespace eqd::core
