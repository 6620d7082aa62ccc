// Law `planned`: the receding-horizon plan over a known path, the adaptive law otherwise. See
// planned_law.hpp.
#include "eqd/core/planned_law.hpp"

#include <algorithm>
#include <cmath>

namespace eqd::core {

namespace {
constexpr double kNsPerS = 1e9;
}  // namespace

void PlannedLaw::account(const LawOutput& out) noexcept {
  if (!out.updated) return;
  counters_.setpoint_travel_W += std::abs(out.command_W - command_W_);
  ++counters_.updates;
  const int s = sign_of(out.command_W, 1.0);
  if (s != 0) {
    if (direction_ != 0 && s != direction_) ++counters_.direction_flips;
    direction_ = s;
  }
  command_W_ = out.command_W;
}

LawOutput PlannedLaw::step(const LawInput& in, const BusParams& p) noexcept {
  const Capacity cap = capacity_of(in);
  const bool path = in.free_path_W != nullptr && in.free_path_n > kEffectDelay_s;
  if (!path || in.mode != BusStatus::ok || cap.empty()) {
    if (planning_) {
      fallback_ = AdaptiveLaw{};  // its first step starts from the measured power: no bump
      planning_ = false;
    }
    LawOutput out = fallback_.step(in, p);
    account(out);
    if (cap.empty() || in.mode == BusStatus::idle) command_W_ = 0.0;
    return out;
  }
  LawOutput out;
  out.desired_W = p.target_W - in.free_W;
  out.aim_W = std::isfinite(in.free_forecast_W) ? p.target_W - in.free_forecast_W : out.desired_W;
  if (!planning_) {
    planning_ = true;
    last_update_ns_ = -1;
  }
  command_W_ = std::clamp(command_W_, cap.lo_W, cap.hi_W);
  const double dt_s = last_update_ns_ < 0 ? p.update_interval_s : static_cast<double>(in.now_ns - last_update_ns_) / kNsPerS;
  // As the other laws: at most every update_interval_s, on samples newer than the last command.
  if (dt_s + 1e-9 < p.update_interval_s || !in.samples_newer_than_command) {
    out.command_W = command_W_;
    return out;
  }
  last_update_ns_ = in.now_ns;
  const double rated = std::max({in.rated_W, cap.hi_W, -cap.lo_W});
  const double slew_W_per_s = p.slew_W_per_s > 0.0 ? p.slew_W_per_s : rated / p.tau_s;
  PlanRequest r;
  r.free_W = in.free_path_W;
  r.n = std::min(in.free_path_n, HorizonPlanner::kMaxSteps);
  r.target_W = p.target_W;
  r.start_W = command_W_;
  r.start_direction = direction_;
  r.lo_W = cap.lo_W;
  r.hi_W = cap.hi_W;
  r.slew_W_per_s = slew_W_per_s;
  r.delay_s = kEffectDelay_s;
  r.travel_weight_s = kTravelWeight_s;
  r.flip_cost_Ws = kFlipCostTaus * p.tau_s * rated;
  const PlanResult plan = planner_.solve(r);
  const double goal_W = plan.ok ? plan.first_W : out.aim_W;
  const double max_step_W = slew_W_per_s * std::min(dt_s, 4.0 * p.update_interval_s);
  out.command_W = std::clamp(slew(command_W_, goal_W, max_step_W), cap.lo_W, cap.hi_W);
  out.aim_W = goal_W;
  out.updated = true;
  account(out);
  return out;
}

}  // namespace eqd::core
