#include "laws/peer_laws.hpp"

#include <algorithm>
#include <cmath>

namespace eqd::bench {
namespace {
constexpr double kNsPerS = 1e9;
}  // namespace

core::LawOutput PeerLaw::step(const core::LawInput& in, const core::BusParams& p) noexcept {
  core::LawOutput out;
  out.desired_W = out.aim_W = p.target_W - in.free_W;
  const core::Capacity cap = core::capacity_of(in);
  const double hi = cap.hi_W;
  const double lo = cap.lo_W;
  const double previous = std::clamp(command_W_, lo, hi);
  const double step_s = last_step_ns_ < 0 ? 0.0 : static_cast<double>(in.now_ns - last_step_ns_) / kNsPerS;
  last_step_ns_ = in.now_ns;
  double next = previous;
  bool updated = false;
  if (in.mode == core::BusStatus::idle) {
    next = 0.0;
  } else if (in.mode == core::BusStatus::ramp_down) {
    // The peers' originals have no such rule; inside eqd they follow eqd's: toward 0 W at rated/tau.
    const double max_step = std::max(in.rated_W, std::max(hi, -lo)) / p.tau_s * step_s;
    next = core::slew(previous, 0.0, max_step);
    updated = true;
  } else if (in.mode != core::BusStatus::holding && in.now_ns >= next_update_ns_) {
    next_update_ns_ = in.now_ns + static_cast<std::int64_t>(std::llround(period_s_ * kNsPerS));
    BusView v;
    v.now_s = static_cast<double>(in.now_ns) / kNsPerS;
    v.target_W = p.target_W;
    v.free_W = in.free_W;
    v.eq_measured_W = in.eq_measured_W;
    v.capacity_charge_W = hi;
    v.capacity_discharge_W = -lo;
    v.rated_W = in.rated_W;
    next = std::clamp(decide(v, previous), lo, hi);
    updated = true;
  }
  if (updated) {
    ++counters_.updates;
    counters_.setpoint_travel_W += std::abs(next - command_W_);
    const int dir = next > 1.0 ? 1 : (next < -1.0 ? -1 : 0);
    if (dir != 0) {
      if (direction_ != 0 && dir != direction_) ++counters_.direction_flips;
      direction_ = dir;
    }
  }
  command_W_ = next;
  out.command_W = next;
  out.updated = updated;
  return out;
}

double EvccStepperLaw::decide(const BusView& v, double previous_W) noexcept {
  const double candidate =
      std::clamp(previous_W + (v.target_W - v.net_W()), -v.capacity_discharge_W, v.capacity_charge_W);
  const double min_W = p_.min_fraction * v.rated_W;
  const bool demand = min_W > 0.0 && std::abs(candidate) >= min_W;
  constexpr double kTol_s = 1e-6;
  if (!enabled_) {
    if (!demand) {
      demand_since_s_ = -1.0;
      return 0.0;
    }
    if (demand_since_s_ < 0.0) demand_since_s_ = v.now_s;
    if (v.now_s - demand_since_s_ + kTol_s < p_.enable_delay_s) return 0.0;
    enabled_ = true;
    no_demand_since_s_ = -1.0;
    return candidate;
  }
  if (demand) {
    no_demand_since_s_ = -1.0;
    return candidate;
  }
  if (no_demand_since_s_ < 0.0) no_demand_since_s_ = v.now_s;
  if (v.now_s - no_demand_since_s_ + kTol_s >= p_.disable_delay_s) {
    enabled_ = false;
    demand_since_s_ = -1.0;
    return 0.0;
  }
  // Waiting out the disable delay at the minimum power, in the direction still asked for.
  const double dir = candidate != 0.0 ? candidate : previous_W;
  return dir >= 0.0 ? min_W : -min_W;
}

double PidLaw::decide(const BusView& v, double /*previous_W*/) noexcept {
  const double measured = v.eq_measured_W;
  if (first_) {
    last_measured_W_ = measured;
    first_ = false;
  }
  const double error = v.target_W - v.net_W();
  // OpenEMS order: the output uses the sum before this cycle's error is added.
  const double out = p_.kp * error + p_.ki * error_sum_ - p_.kd * (measured - last_measured_W_);
  last_measured_W_ = measured;
  if (p_.ki > 0.0)
    error_sum_ = std::clamp(error_sum_ + error, -v.capacity_discharge_W / p_.ki, v.capacity_charge_W / p_.ki);
  if (p_.output_tau_s <= 0.0) return out;
  // The filter state is clamped like the command, so a saturated bus does not wind the filter up.
  filtered_W_ += (1.0 - std::exp(-p_.period_s / p_.output_tau_s)) * (out - filtered_W_);
  filtered_W_ = std::clamp(filtered_W_, -v.capacity_discharge_W, v.capacity_charge_W);
  return filtered_W_;
}

double PeakShaverLaw::decide(const BusView& v, double /*previous_W*/) noexcept {
  // Positive = into the buffers (eqd's sign; OpenEMS's ESS power is positive when discharging).
  if (v.free_W >= p_.peak_shaving_power_W) return p_.peak_shaving_power_W - v.free_W;
  if (v.free_W <= p_.recharge_power_W) return p_.recharge_power_W - v.free_W;
  return 0.0;
}

FeedForwardLaw::FeedForwardLaw(const Params& p)
    : PeerLaw(p.period_s), p_(p), stage_W_(static_cast<std::size_t>(std::max(p.stages, 1)), 0.0) {}

double FeedForwardLaw::decide(const BusView& v, double /*previous_W*/) noexcept {
  const double a = 1.0 - std::exp(-p_.period_s * static_cast<double>(stage_W_.size()) / p_.tau_s);
  double in = std::clamp(v.target_W - v.free_W, -v.capacity_discharge_W, v.capacity_charge_W);
  for (double& x : stage_W_) {
    x += a * (in - x);
    in = x;
  }
  return in;
}

}  // namespace eqd::bench
