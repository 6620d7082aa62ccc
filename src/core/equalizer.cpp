// eqd's damped control law of one bus. See docs/control.md for the reasoning behind each stage.
#include "eqd/core/equalizer.hpp"

#include <algorithm>
#include <cmath>

namespace eqd::core {

namespace {

constexpr double kNsPerS = 1e9;

double seconds(std::int64_t ns) noexcept { return static_cast<double>(ns) / kNsPerS; }

}  // namespace

double deadband_stage(double desired_W, double step_s, bool force, const BusParams& p, EqualizerState& s) noexcept {
  // A change larger than deadband_W moves the reference at once; a smaller one only once its signed
  // time integral exceeds deadband_W * tau_s. Zero-mean jitter never accumulates that area, but a small
  // persistent offset (a CC-CV taper, a slow drift) is corrected within a few tau instead of being left
  // in the grid for hours.
  s.deadband_area_Ws += (desired_W - s.reference_W) * step_s;
  if (force || std::abs(desired_W - s.reference_W) > p.deadband_W ||
      std::abs(s.deadband_area_Ws) > p.deadband_W * p.tau_s) {
    s.reference_W = desired_W;
    s.deadband_area_Ws = 0.0;
  }
  return s.reference_W;
}

double dwell_stage(double reference_W, std::int64_t now_ns, double sign_eps_W, const BusParams& p,
                   EqualizerState& s) noexcept {
  // The direction is that of the last non-zero command, so resting at 0 W does not reset the dwell;
  // meanwhile the command may go to 0 W but not beyond.
  const int cmd_sign = s.direction;
  const int ref_sign = sign_of(reference_W, sign_eps_W);
  if (cmd_sign != 0 && ref_sign == -cmd_sign) {
    if (s.flip_request_since_ns < 0) s.flip_request_since_ns = now_ns;
    if (seconds(now_ns - s.flip_request_since_ns) < p.flip_dwell_s) return 0.0;
  } else if (ref_sign == cmd_sign || ref_sign == 0) {
    s.flip_request_since_ns = -1;
  }
  return reference_W;
}

double damping_stage(double reference_W, double step_s, double slew_W_per_s, int dwell_sign, Capacity cap,
                     const BusParams& p, EqualizerState& s) noexcept {
  // Two stages of tau_s/2 each: a response that starts with zero slope (gentle on the batteries), never
  // overshoots, and is within 2 % of an 80 % step after 3·tau_s. Each stage's gain per update is below 1.
  const double a = 1.0 - std::exp(-step_s / (0.5 * p.tau_s));
  s.stage1_W = cap.clamp(s.stage1_W + a * (reference_W - s.stage1_W));
  double next = s.command_W + a * (s.stage1_W - s.command_W);
  next = cap.clamp(slew(s.command_W, next, slew_W_per_s * step_s));
  // The dwell holds at zero even if stage 1 still carried the old direction.
  if (reference_W == 0.0 && sign_of(next, 0.0) == -dwell_sign && dwell_sign != 0) next = 0.0;
  s.command_W = next;
  return next;
}

void trim_stage(BusStatus mode, double eq_measured_W, double step_s, double rated_W, double slew_W_per_s,
                double sign_eps_W, Capacity cap, const BusParams& p, EqualizerState& s) noexcept {
  // Only once the response has settled and not at a limit, so that it cannot wind up.
  const double trim_max = p.trim_max_fraction * rated_W;
  const bool settled = std::abs(s.reference_W - s.command_W) <= std::max(p.deadband_W, sign_eps_W);
  if (p.trim_tau_s > 0.0 && mode == BusStatus::ok && settled) {
    const double sent = s.command_W + s.trim_W;
    const bool at_limit = sent >= cap.hi_W || sent <= cap.lo_W;
    if (!at_limit) {
      const double k = std::min(1.0, step_s / p.trim_tau_s);
      // Error of what the buffers deliver against what the law wants (not against what was sent:
      // that difference is the very loss the trim compensates, and would wind it up).
      s.trim_W = std::clamp(s.trim_W + k * (s.command_W - eq_measured_W), -trim_max, trim_max);
    }
  } else if (mode == BusStatus::ramp_down) {
    s.trim_W = slew(s.trim_W, 0.0, slew_W_per_s * step_s);
  }
}

void direction_stage(std::int64_t now_ns, double sign_eps_W, const BusParams& p, EqualizerState& s) noexcept {
  const int new_sign = sign_of(s.command_W, sign_eps_W);
  if (new_sign != 0) {
    if (s.direction != 0 && new_sign != s.direction) ++s.counters.direction_flips;
    s.direction = new_sign;
    s.direction_since_ns = now_ns;
  } else if (s.direction != 0 && seconds(now_ns - s.direction_since_ns) >= p.flip_dwell_s) {
    // Rested at 0 W for a whole dwell: either direction may start without a further wait.
    s.direction = 0;
  }
}

LawOutput equalizer_step(const LawInput& in, const BusParams& p, EqualizerState& s) noexcept {
  LawOutput out;
  out.desired_W = desired_eq_W(p, in.free_W);
  // With announced schedules the law steers toward the free power expected over the announced horizon:
  // its damped response (mean delay tau_s) then straddles an announced step instead of trailing it.
  out.aim_W = p.use_forecast && std::isfinite(in.free_forecast_W) ? desired_eq_W(p, in.free_forecast_W) : out.desired_W;
  const Capacity cap = capacity_of(in);
  // Below this magnitude a command or request has no direction: a few watts around zero are not a
  // "charge" that a later discharge would reverse, so they neither count as a flip nor start a dwell.
  const double sign_eps = std::max(1.0, p.deadband_W);

  if (cap.empty() || in.mode == BusStatus::idle) {
    // No usable buffer: nothing to command, and nothing may wind up meanwhile.
    s.stage1_W = s.command_W = s.reference_W = s.trim_W = 0.0;
    s.flip_request_since_ns = -1;
    s.direction = 0;
    s.last_update_ns = -1;  // the next step with capacity starts bumplessly from the measured power
    return out;
  }
  if (s.last_update_ns < 0) {
    // Bumpless start: begin from what the buffers do now (after a restart their controllers will have
    // gone to 0 W through lease/heartbeat, but a hot restart must not jerk them).
    s.stage1_W = s.command_W = s.reference_W = cap.clamp(in.eq_measured_W);
    s.last_update_ns = in.now_ns;
  }
  // Safety first: a capacity reduction (window limit, excluded buffer) applies at once, to the state too,
  // so the law never winds up beyond what the buffers can do (anti-windup).
  s.command_W = cap.clamp(s.command_W);
  s.stage1_W = cap.clamp(s.stage1_W);

  const double dt_s = seconds(in.now_ns - s.last_update_ns);
  const bool ramp_down = in.mode == BusStatus::ramp_down;
  // Ramping down needs no new samples: it is what we do when there are none.
  const bool due = dt_s + 1e-9 >= p.update_interval_s && (in.samples_newer_than_command || ramp_down);
  if (!due || in.mode == BusStatus::holding) {
    if (due) s.last_update_ns = in.now_ns;  // holding: time passes, the state does not move
    out.command_W = cap.clamp(s.command_W + s.trim_W);
    return out;
  }
  // A long gap (e.g. samples withheld) must not turn into one big step.
  const double step_s = std::min(dt_s, 4.0 * p.update_interval_s);
  s.last_update_ns = in.now_ns;

  const double desired = ramp_down ? 0.0 : cap.clamp(out.aim_W);
  const double deadbanded = deadband_stage(desired, step_s, ramp_down, p, s);
  const int dwell_sign = s.direction;
  const double reference = dwell_stage(deadbanded, in.now_ns, sign_eps, p, s);
  const double rated = std::max({in.rated_W, cap.hi_W, -cap.lo_W});
  const double slew_W_per_s = p.slew_W_per_s > 0.0 ? p.slew_W_per_s : rated / p.tau_s;
  const double previous = s.command_W;
  damping_stage(reference, step_s, slew_W_per_s, dwell_sign, cap, p, s);
  trim_stage(in.mode, in.eq_measured_W, step_s, rated, slew_W_per_s, sign_eps, cap, p, s);

  out.command_W = cap.clamp(s.command_W + s.trim_W);
  direction_stage(in.now_ns, sign_eps, p, s);
  s.counters.setpoint_travel_W += std::abs(s.command_W - previous);
  ++s.counters.updates;
  out.updated = true;
  return out;
}

}  // namespace eqd::core
