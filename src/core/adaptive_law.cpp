// Law `adaptive` (adaptive_law.hpp; reasoning and figures in docs/control.md, "The adaptive law").
#include "eqd/core/adaptive_law.hpp"

#include <algorithm>
#include <cmath>

namespace eqd::core {

namespace {
constexpr double kNsPerS = 1e9;

// Below 1 W a command has no direction.
int sign_of(double v) noexcept { return core::sign_of(v, 1.0); }
}  // namespace

void AdaptiveLaw::reset(double value_W) noexcept {
  for (Expert& e : experts_) {
    e.state_W = e.output_W = e.slow_W = value_W;
    e.direction = sign_of(value_W);
    e.reversal_since_ns = -1;
    e.score_W = 0.0;
    e.history_W.fill(value_W);
  }
  current_ = kStartExpert;
  updates_seen_ = 0;
  command_W_ = value_W;
  direction_ = sign_of(value_W);
  held_s_ = 0.0;
}

void AdaptiveLaw::update_expert(Expert& e, std::size_t k, double tau_s, const UpdateIn& u) noexcept {
  const double dwell_s = kDwellTaus[k] * tau_s;
  // Scored first, on what it commanded `delay` updates ago against what the bus needed now.
  const double acted_W = e.history_W[(updates_seen_ + kHistory - static_cast<std::uint64_t>(u.delay)) % kHistory];
  const double previous_W = e.output_W;
  // Anti-windup as in the damped law: a capacity reduction applies to the state too.
  e.state_W = std::clamp(e.state_W, u.lo_W, u.hi_W);
  e.state_W += (1.0 - std::exp(-u.step_s / (kTauFactor[k] * tau_s))) * (u.aim_W - e.state_W);
  double y = e.state_W;
  if (kFastShare[k] < 1.0) {
    e.slow_W = std::clamp(e.slow_W, u.lo_W, u.hi_W);
    e.slow_W += (1.0 - std::exp(-u.step_s / (kSlowTauFactor[k] * tau_s))) * (u.aim_W - e.slow_W);
    y = kFastShare[k] * e.state_W + (1.0 - kFastShare[k]) * e.slow_W;
  }
  const int s = sign_of(y);
  if (e.direction != 0 && s == -e.direction) {
    if (e.reversal_since_ns < 0) e.reversal_since_ns = u.now_ns;
    const double requested_s = static_cast<double>(u.now_ns - e.reversal_since_ns) / kNsPerS;
    if (std::abs(y) <= u.hysteresis_W && requested_s < dwell_s) y = 0.0;
  } else {
    e.reversal_since_ns = -1;
  }
  y = std::clamp(slew(std::clamp(previous_W, u.lo_W, u.hi_W), y, u.max_step_W), u.lo_W, u.hi_W);
  e.output_W = y;
  const int y_sign = sign_of(y);
  const bool reversed = y_sign != 0 && e.direction != 0 && y_sign != e.direction;
  if (y_sign != 0) e.direction = y_sign;
  e.history_W[updates_seen_ % kHistory] = y;
  if (updates_seen_ >= static_cast<std::uint64_t>(u.delay)) {
    const double w = 1.0 - std::exp(-u.step_s / kScoreWindow_s);
    const double cost = std::abs(u.desired_W - acted_W) + kTravelWeight_s * std::abs(y - previous_W) / u.step_s +
                        (reversed ? u.flip_cost_Ws / u.step_s : 0.0);
    e.score_W += w * (cost - e.score_W);
  }
}

LawOutput AdaptiveLaw::step(const LawInput& in, const BusParams& p) noexcept {
  LawOutput out;
  out.desired_W = desired_eq_W(p, in.free_W);
  out.aim_W = p.use_forecast && std::isfinite(in.free_forecast_W) ? desired_eq_W(p, in.free_forecast_W) : out.desired_W;
  const Capacity cap = capacity_of(in);
  const double hi = cap.hi_W;
  const double lo = cap.lo_W;
  if (cap.empty() || in.mode == BusStatus::idle) {
    reset(0.0);
    last_update_ns_ = -1;  // the next step with capacity starts bumplessly from the measured power
    return out;
  }
  if (last_update_ns_ < 0) {
    reset(std::clamp(in.eq_measured_W, lo, hi));
    last_update_ns_ = in.now_ns;
  }
  command_W_ = std::clamp(command_W_, lo, hi);
  const double dt_s = static_cast<double>(in.now_ns - last_update_ns_) / kNsPerS;
  const bool ramp_down = in.mode == BusStatus::ramp_down;
  // As the damped law: at most every update_interval_s, and only with samples newer than the last
  // command (a decision never uses the voltage or power from before the previous command).
  const bool due = dt_s + 1e-9 >= p.update_interval_s && (in.samples_newer_than_command || ramp_down);
  if (!due || in.mode == BusStatus::holding) {
    if (due) last_update_ns_ = in.now_ns;  // holding: time passes, nothing moves
    out.command_W = command_W_;
    return out;
  }
  const double step_s = std::min(dt_s, 4.0 * p.update_interval_s);
  last_update_ns_ = in.now_ns;
  const double rated = std::max({in.rated_W, hi, -lo});
  const double max_step_W = (p.slew_W_per_s > 0.0 ? p.slew_W_per_s : rated / p.tau_s) * step_s;
  const double previous = command_W_;

  if (ramp_down) {
    // Toward 0 W at the slew limit (within tau_s from full power); the trackers follow, so that
    // control resumes bumplessly.
    command_W_ = slew(previous, 0.0, max_step_W);
    reset(command_W_);
  } else {
    const double aim = std::clamp(out.aim_W, lo, hi);
    const int delay = std::clamp(static_cast<int>(std::lround(kEffectDelay_s / p.update_interval_s)), 1, kHistory - 1);
    const UpdateIn u{
        aim, out.desired_W, step_s, max_step_W, kHysteresisFraction * rated, kFlipCostTaus * p.tau_s * rated, lo,
        hi,  in.now_ns,     delay};
    for (std::size_t k = 0; k < kExperts; ++k) update_expert(experts_[k], k, p.tau_s, u);
    ++updates_seen_;
    int best = current_;
    for (int k = 0; k < kExperts; ++k)
      if (experts_[static_cast<std::size_t>(k)].score_W <
          experts_[static_cast<std::size_t>(best)].score_W * (1.0 - kSwitchMargin))
        best = k;
    current_ = best;
    // A switch between trackers is slew-limited like any other move.
    command_W_ = std::clamp(slew(previous, experts_[static_cast<std::size_t>(current_)].output_W, max_step_W), lo, hi);
    // previous is within [lo, hi] (clamped above), so holding it keeps every window. The slowest
    // tracker already rides out what is faster than tau_s: its moves are not jitter (see the header).
    const bool small = std::abs(command_W_ - previous) < kSmallMoveFraction * rated;
    if (hold_small_moves_ && current_ != kSlowestExpert && small && held_s_ + step_s < kSmallMoveHoldTaus * p.tau_s) {
      command_W_ = previous;
      held_s_ += step_s;
    } else {
      held_s_ = 0.0;
    }
  }

  const int s = sign_of(command_W_);
  if (s != 0) {
    if (direction_ != 0 && s != direction_) ++counters_.direction_flips;
    direction_ = s;
  }
  counters_.setpoint_travel_W += std::abs(command_W_ - previous);
  ++counters_.updates;
  out.command_W = command_W_;
  out.updated = true;
  return out;
}

}  // namespace eqd::core
