// The shadow-plan gate of the statistical path. See stat_shadow_gate.hpp.
#include "eqd/core/stat_shadow_gate.hpp"

#include <algorithm>
#include <cmath>

#include "eqd/core/planned_law.hpp"

namespace eqd::core {

double StatShadowGate::cost(const BusSnapshot& bs, double now_W, double prev_W, double two_ago_W,
                            int& dir) const noexcept {
  // A light travel weight (kTravelWeight_s per W of travel, whatever the bus's own: see there) and the
  // planner's reversal charge, 0.02 tau of the rating; the command acts after the planner's 2 s of delay.
  double c = std::abs(bs.free_W + two_ago_W) + kTravelWeight_s * std::abs(now_W - prev_W);
  const int d = sign_of(now_W, 0.01 * rated_W_);
  if (d != 0) {
    if (dir != 0 && d != dir) c += PlannedLaw::kFlipCostTaus * bs.params.tau_s * rated_W_;
    dir = d;
  }
  return c;
}

double StatShadowGate::adaptive_step(std::int64_t now_ns, const BusSnapshot& bs) noexcept {
  LawInput in;
  in.now_ns = now_ns;
  in.mode = bs.status == BusStatus::saturated ? BusStatus::ok : bs.status;
  in.free_W = bs.free_W;
  in.eq_measured_W = bs.eq_measured_W;
  in.capacity_charge_W = bs.capacity_charge_W;
  in.capacity_discharge_W = bs.capacity_discharge_W;
  in.rated_W = rated_W_;
  in.any_fresh = true;
  BusParams p = bs.params;
  p.use_forecast = false;  // the adaptive law as it runs where nothing is known: law planned's fallback
  adaptive_.hold_small_moves(PlannedLaw::holds_small_moves(p));
  return adaptive_.step(in, p).command_W;
}

double StatShadowGate::plan_step(const BusSnapshot& bs, const double* delta_W, int n, double prev_W,
                                 HorizonPlanner& planner) noexcept {
  n = std::min(n, HorizonPlanner::kMaxSteps);
  for (int h = 1; h <= n; ++h) path_W_[static_cast<std::size_t>(h - 1)] = bs.free_W + delta_W[h];
  PlanRequest r;
  r.free_W = path_W_.data();
  r.n = n;
  r.target_W = bs.params.target_W;
  r.start_W = prev_W;
  r.start_direction = plan_dir_;
  r.lo_W = -bs.capacity_discharge_W;
  r.hi_W = bs.capacity_charge_W;
  r.slew_W_per_s = bs.params.slew_W_per_s > 0.0 ? bs.params.slew_W_per_s : rated_W_ / bs.params.tau_s;
  r.delay_s = PlannedLaw::kEffectDelay_s;
  r.travel_weight_s = bs.params.plan_travel_weight_s;
  r.flip_cost_Ws = PlannedLaw::kFlipCostTaus * bs.params.tau_s * rated_W_;
  if (!(r.hi_W > r.lo_W) || n < 1 || !(r.slew_W_per_s > 0.0)) return prev_W;
  const PlanResult res = planner.solve(r);
  return res.ok ? std::clamp(slew(prev_W, res.first_W, r.slew_W_per_s), r.lo_W, r.hi_W) : prev_W;
}

bool StatShadowGate::restore(const State& s) noexcept {
  if (!(s.plan_score_W >= 0.0) || !(s.adaptive_score_W >= 0.0) || !(s.rated_W >= 0.0) || s.scored < 0 ||
      !std::isfinite(s.plan_score_W + s.adaptive_score_W + s.rated_W))
    return false;
  plan_score_W_ = s.plan_score_W;
  adaptive_score_W_ = s.adaptive_score_W;
  rated_W_ = s.rated_W;
  scored_ = s.scored;
  open_ = s.open;
  return true;
}

bool StatShadowGate::tick(std::int64_t now_ns, const BusSnapshot& bs, const double* delta_W, int n,
                          HorizonPlanner& planner) noexcept {
  rated_W_ = std::max({rated_W_, bs.capacity_charge_W, bs.capacity_discharge_W, 1.0});
  const std::int64_t sec = now_ns / 1'000'000'000;
  const auto at = [sec](int back) { return static_cast<std::size_t>((sec + 4 - back) % 4); };
  const double adaptive_W = adaptive_step(now_ns, bs);
  const double plan_W = plan_step(bs, delta_W, n, plan_W_[at(1)], planner);
  const double cp = cost(bs, plan_W, plan_W_[at(1)], plan_W_[at(2)], plan_dir_);
  const double ca = cost(bs, adaptive_W, adaptive_W_[at(1)], adaptive_W_[at(2)], adaptive_dir_);
  plan_W_[at(0)] = plan_W;
  adaptive_W_[at(0)] = adaptive_W;
  const double a = 1.0 / kMemory_s;
  plan_score_W_ += a * (cp - plan_score_W_);
  adaptive_score_W_ += a * (ca - adaptive_score_W_);
  ++scored_;
  if (static_cast<double>(scored_) < kMin_s) return open_ = false;
  if (open_ && plan_score_W_ > kOffRatio * adaptive_score_W_) open_ = false;
  if (!open_ && plan_score_W_ < kOnRatio * adaptive_score_W_) open_ = true;
  return open_;
}

}  // namespace eqd::core
