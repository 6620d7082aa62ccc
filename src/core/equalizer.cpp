// The damped control law of one bus. See docs/control.md for the reasoning behind each element.
#include "eqd/core/equalizer.hpp"

#include <algorithm>
#include <cmath>

namespace eqd::core {

namespace {

constexpr double kNsPerS = 1e9;

int sign_of(double v, double eps) noexcept { return v > eps ? 1 : (v < -eps ? -1 : 0); }

// Move `from` toward `to` by at most `max_step` (>= 0).
double slew(double from, double to, double max_step) noexcept {
  return from + std::clamp(to - from, -max_step, max_step);
}

}  // namespace

EqualizerOutput equalizer_step(const EqualizerInput& in, const BusParams& p, EqualizerState& s) noexcept {
  EqualizerOutput out;
  out.desired_W = p.target_W - in.free_W;
  // With announced schedules the law steers toward the free power expected over the announced horizon:
  // its damped response (mean delay tau_s) then straddles an announced step instead of trailing it.
  out.aim_W = p.use_forecast && std::isfinite(in.free_forecast_W) ? p.target_W - in.free_forecast_W : out.desired_W;
  const double cap_hi = std::max(0.0, in.capacity_charge_W);
  const double cap_lo = -std::max(0.0, in.capacity_discharge_W);
  const auto clamp_cap = [&](double v) { return std::clamp(v, cap_lo, cap_hi); };
  // Below this magnitude a command or request has no direction: a few watts around zero are not a
  // "charge" that a later discharge would reverse, so they neither count as a flip nor start a dwell.
  const double sign_eps = std::max(1.0, p.deadband_W);

  if (cap_hi <= 0.0 && cap_lo >= 0.0) {
    // No usable buffer: nothing to command, and nothing may wind up meanwhile.
    s.stage1_W = s.command_W = s.reference_W = s.trim_W = 0.0;
    s.flip_request_since_ns = -1;
    s.direction = 0;
    s.last_update_ns = -1;  // the next step with capacity starts bumplessly from the measured power
    out.status = BusStatus::idle;
    return out;
  }

  // Mode: hold on unknown test data (for at most hold_max_s), ramp down when nothing is fresh.
  BusStatus mode = BusStatus::ok;
  if (!in.any_fresh) {
    mode = BusStatus::ramp_down;
  } else if (in.any_test_stale) {
    if (s.hold_since_ns < 0) s.hold_since_ns = in.now_ns;
    const double held_s = static_cast<double>(in.now_ns - s.hold_since_ns) / kNsPerS;
    mode = held_s > p.hold_max_s ? BusStatus::ramp_down : BusStatus::holding;
  } else {
    s.hold_since_ns = -1;
  }

  if (s.last_update_ns < 0) {
    // Bumpless start: begin from what the buffers do now (after a restart their controllers will have
    // gone to 0 W through lease/heartbeat, but a hot restart must not jerk them).
    s.stage1_W = s.command_W = s.reference_W = clamp_cap(in.eq_measured_W);
    s.last_update_ns = in.now_ns;
  }

  // Safety first: a capacity reduction (window limit, excluded buffer) applies at once, to the state too,
  // so the law never winds up beyond what the buffers can do (anti-windup).
  s.command_W = clamp_cap(s.command_W);
  s.stage1_W = clamp_cap(s.stage1_W);

  const double dt_s = static_cast<double>(in.now_ns - s.last_update_ns) / kNsPerS;
  // Ramping down needs no new samples: it is what we do when there are none.
  const bool due = dt_s + 1e-9 >= p.update_interval_s &&
                   (in.samples_newer_than_command || mode == BusStatus::ramp_down);
  if (!due || mode == BusStatus::holding) {
    if (due) s.last_update_ns = in.now_ns;  // holding: time passes, the state does not move
    out.command_W = clamp_cap(s.command_W + s.trim_W);
    out.status = mode;
    return out;
  }
  // A long gap (e.g. samples withheld) must not turn into one big step.
  const double step_s = std::min(dt_s, 4.0 * p.update_interval_s);
  s.last_update_ns = in.now_ns;

  // Reference: deadbanded desired total (ramp_down aims at 0 W).
  // Deadband by error area: a change larger than deadband_W moves the reference at once; a smaller one
  // moves it only once its signed time integral exceeds deadband_W * tau_s. Zero-mean jitter never
  // accumulates that area, but a small persistent offset (a CC-CV taper, a slow drift) is corrected
  // within a few tau instead of being left in the grid for hours.
  const double desired = mode == BusStatus::ramp_down ? 0.0 : clamp_cap(out.aim_W);
  s.deadband_area_Ws += (desired - s.reference_W) * step_s;
  if (mode == BusStatus::ramp_down || std::abs(desired - s.reference_W) > p.deadband_W ||
      std::abs(s.deadband_area_Ws) > p.deadband_W * p.tau_s) {
    s.reference_W = desired;
    s.deadband_area_Ws = 0.0;
  }
  double reference = s.reference_W;

  // Direction-flip dwell: a reversal of the command's sign must be requested for flip_dwell_s first;
  // meanwhile the command may go to 0 W but not beyond.
  // The direction is that of the last non-zero command, so resting at 0 W does not reset the dwell.
  const int cmd_sign = s.direction;
  const int ref_sign = sign_of(reference, sign_eps);
  if (cmd_sign != 0 && ref_sign == -cmd_sign) {
    if (s.flip_request_since_ns < 0) s.flip_request_since_ns = in.now_ns;
    const double requested_s = static_cast<double>(in.now_ns - s.flip_request_since_ns) / kNsPerS;
    if (requested_s < p.flip_dwell_s) reference = 0.0;
  } else if (ref_sign == cmd_sign || ref_sign == 0) {
    s.flip_request_since_ns = -1;
  }

  // Two cascaded first-order stages with time constant tau_s/2 each: a critically damped response that
  // starts with zero slope (gentle on the batteries), never overshoots, and is within 2 % of an 80 % step
  // after 3·tau_s. Each stage's gain per update is below 1.
  const double a = 1.0 - std::exp(-step_s / (0.5 * p.tau_s));
  const double rated = std::max({in.rated_W, cap_hi, -cap_lo});
  const double slew_W_per_s = p.slew_W_per_s > 0.0 ? p.slew_W_per_s : rated / p.tau_s;
  const double previous = s.command_W;
  s.stage1_W = clamp_cap(s.stage1_W + a * (reference - s.stage1_W));
  double next = s.command_W + a * (s.stage1_W - s.command_W);
  next = clamp_cap(slew(s.command_W, next, slew_W_per_s * step_s));
  // The dwell holds at zero even if stage 1 still carried the old direction.
  if (reference == 0.0 && sign_of(next, 0.0) == -cmd_sign && cmd_sign != 0) next = 0.0;
  s.command_W = next;

  // Slow trim of the buffers' tracking error (converter losses, a buffer that cannot follow), only once
  // the response has settled and not at a limit, so it cannot wind up.
  const double trim_max = p.trim_max_fraction * rated;
  const bool settled = std::abs(s.reference_W - s.command_W) <= std::max(p.deadband_W, sign_eps);
  if (p.trim_tau_s > 0.0 && mode == BusStatus::ok && settled) {
    const double sent = s.command_W + s.trim_W;
    const bool at_limit = sent >= cap_hi || sent <= cap_lo;
    if (!at_limit) {
      const double k = std::min(1.0, step_s / p.trim_tau_s);
      // Error of what the buffers deliver against what the law wants (not against what was sent:
      // that difference is the very loss the trim compensates, and would wind it up).
      s.trim_W = std::clamp(s.trim_W + k * (s.command_W - in.eq_measured_W), -trim_max, trim_max);
    }
  } else if (mode == BusStatus::ramp_down) {
    s.trim_W = slew(s.trim_W, 0.0, slew_W_per_s * step_s);
  }

  out.command_W = clamp_cap(s.command_W + s.trim_W);
  const int new_sign = sign_of(s.command_W, sign_eps);
  if (new_sign != 0) {
    if (s.direction != 0 && new_sign != s.direction) ++s.direction_flips;
    s.direction = new_sign;
    s.direction_since_ns = in.now_ns;
  } else if (s.direction != 0 &&
             static_cast<double>(in.now_ns - s.direction_since_ns) / kNsPerS >= p.flip_dwell_s) {
    // Rested at 0 W for a whole dwell: either direction may start without a further wait.
    s.direction = 0;
  }
  s.setpoint_travel_W += std::abs(s.command_W - previous);
  ++s.updates;
  out.updated = true;
  out.status = mode;
  if (mode == BusStatus::ok && (out.desired_W > cap_hi + p.deadband_W || out.desired_W < cap_lo - p.deadband_W))
    out.status = BusStatus::saturated;
  return out;
}

}  // namespace eqd::core
