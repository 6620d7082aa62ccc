#pragma once
/// @file equalizer.hpp
/// eqd's damped control law of one bus (law `damped`), as small pure stages composed by
/// equalizer_step() and wrapped as a BusLaw by DampedLaw. No I/O, no allocation, no exceptions:
/// callable from the control thread and from offline harnesses. docs/control.md explains each stage.

#include <cstdint>

#include "eqd/core/bus_law.hpp"
#include "eqd/core/params.hpp"

namespace eqd::core {

/// The damped law's memory for one bus. Trivially copyable; owned by its DampedLaw.
struct EqualizerState {
  double stage1_W = 0.0;          ///< first low-pass stage
  double command_W = 0.0;         ///< total equalization command (second stage, slew-limited)
  double reference_W = 0.0;       ///< deadbanded desired total
  double trim_W = 0.0;            ///< slow correction of buffers' tracking error
  double deadband_area_Ws = 0.0;  ///< signed integral of (desired - reference) since the last move
  std::int64_t last_update_ns = -1;
  std::int64_t flip_request_since_ns = -1;  ///< when a reversal was first requested (-1: none)
  int direction = 0;                        ///< sign of the last non-zero command (+1 charge, -1 discharge)
  std::int64_t direction_since_ns = -1;     ///< last time the command was non-zero in `direction`
  LawCounters counters{};
};

// ---- The stages, in the order equalizer_step() runs them. Each is pure apart from the state it is
// ---- given; any thread. Unit tests: tests/unit/core_law_stages_test.cpp.

/// Deadband by error area: move the reference to `desired_W` at once when the change exceeds
/// deadband_W (or `force`), else once the signed time integral of the difference exceeds
/// deadband_W * tau_s. Returns the (possibly unchanged) reference.
double deadband_stage(double desired_W, double step_s, bool force, const BusParams& p, EqualizerState& s) noexcept;

/// Direction-flip dwell: a reference whose sign reverses the last non-zero command's (s.direction)
/// is held at 0 W until the reversal has been requested for flip_dwell_s. Below sign_eps_W a value has
/// no direction. Returns the reference the damping stage may use.
double dwell_stage(double reference_W, std::int64_t now_ns, double sign_eps_W, const BusParams& p,
                   EqualizerState& s) noexcept;

/// Two cascaded first-order stages of tau_s / 2 each (critically damped, no overshoot), then the
/// slew limit (slew_W_per_s over step_s) and the capacity clamp. While the dwell holds (reference 0 W)
/// the command does not cross zero against `dwell_sign`. Updates s.stage1_W and s.command_W and
/// returns the new command.
double damping_stage(double reference_W, double step_s, double slew_W_per_s, int dwell_sign, Capacity cap,
                     const BusParams& p, EqualizerState& s) noexcept;

/// Slow trim of the buffers' tracking error (converter losses, a buffer that cannot follow): only in
/// mode ok, once settled and not at a limit, bounded by trim_max_fraction * rated_W; in ramp_down it
/// slews to 0 W. Updates s.trim_W.
void trim_stage(BusStatus mode, double eq_measured_W, double step_s, double rated_W, double slew_W_per_s,
                double sign_eps_W, Capacity cap, const BusParams& p, EqualizerState& s) noexcept;

/// Direction bookkeeping after an update: counts a flip when the command's sign reverses, and forgets
/// the direction after resting at 0 W for a whole flip_dwell_s. Updates s.direction, s.counters.
void direction_stage(std::int64_t now_ns, double sign_eps_W, const BusParams& p, EqualizerState& s) noexcept;

/// The damped law: one step of all the stages. Updates happen at most every p.update_interval_s and
/// only when in.samples_newer_than_command (or in ramp_down); otherwise the previous command is
/// returned (clamped to capacity). Pure apart from `state`. Any thread; not thread-safe on one state.
LawOutput equalizer_step(const LawInput& in, const BusParams& p, EqualizerState& state) noexcept;

/// equalizer_step() behind the BusLaw interface (law `damped`). Not thread-safe (see BusLaw).
class DampedLaw final : public BusLaw {
 public:
  LawOutput step(const LawInput& in, const BusParams& p) noexcept override { return equalizer_step(in, p, state_); }
  [[nodiscard]] LawCounters counters() const noexcept override { return state_.counters; }
  [[nodiscard]] const char* name() const noexcept override { return "damped"; }
  [[nodiscard]] const EqualizerState& state() const noexcept { return state_; }

 private:
  EqualizerState state_{};
};

}  // namespace eqd::core
