// Law `planned`: the receding-horizon plan over a known path, solved off the control thread; the
// adaptive law otherwise. See planned_law.hpp.
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

LawOutput PlannedLaw::fallback(const LawInput& in, const BusParams& p) noexcept {
  if (planning_) {
    fallback_ = AdaptiveLaw{};  // takes over from a plan: its first step starts from the measured power
    planning_ = false;
  }
  fallback_.hold_small_moves(holds_small_moves(p));
  LawOutput out = fallback_.step(in, p);
  account(out);
  if (capacity_of(in).empty() || in.mode == BusStatus::idle) command_W_ = 0.0;
  return out;
}

void PlannedLaw::ask(const LawInput& in, const BusParams& p, const Capacity& cap) noexcept {
  const double rated = std::max({in.rated_W, cap.hi_W, -cap.lo_W});
  PlanAsk a;
  a.asked_ns = in.now_ns;
  a.n = std::min(in.free_path_n, HorizonPlanner::kMaxSteps);
  // Caps mode: the planner aims at 0 W over the path's excess beyond the band (free - its clamp into
  // the band), so that it plans the least exchange outside the band and rest inside it, with the same
  // objective as in balance mode.
  const bool caps = p.mode == BusMode::caps;
  for (int t = 0; t < a.n; ++t)
    a.free_W[static_cast<std::size_t>(t)] =
        static_cast<float>(caps ? -desired_eq_W(p, in.free_path_W[t]) : in.free_path_W[t]);
  a.delay_s = kEffectDelay_s;
  a.start_direction = direction_;
  a.target_W = caps ? 0.0 : p.target_W + p.fill_W;
  a.start_W = command_W_;
  a.lo_W = cap.lo_W;
  a.hi_W = cap.hi_W;
  a.slew_W_per_s = p.slew_W_per_s > 0.0 ? p.slew_W_per_s : rated / p.tau_s;
  a.travel_weight_s = p.plan_travel_weight_s;
  a.flip_cost_Ws = kFlipCostTaus * p.tau_s * rated;
  const double dt_s = last_ask_ns_ < 0 ? p.update_interval_s : static_cast<double>(in.now_ns - last_ask_ns_) / kNsPerS;
  max_step_W_ = a.slew_W_per_s * std::min(dt_s, 4.0 * p.update_interval_s);
  board_->ask(bus_, a);
  if (pending_ns_ >= 0) ++unanswered_;
  pending_ns_ = last_ask_ns_ = in.now_ns;
}

LawOutput PlannedLaw::step(const LawInput& in, const BusParams& p) noexcept {
  const Capacity cap = capacity_of(in);
  const bool path = in.free_path_W != nullptr && in.free_path_n > kEffectDelay_s;
  if (board_ == nullptr || !path || in.mode != BusStatus::ok || cap.empty()) {
    pending_ns_ = last_ask_ns_ = -1;
    unanswered_ = 0;
    return fallback(in, p);
  }
  // An answer to the pending ask: command its first step.
  PlanAnswer ans;
  if (pending_ns_ >= 0 && board_->answer(bus_, ans) && ans.asked_ns == pending_ns_) {
    pending_ns_ = -1;
    // A refused ask (a value the planner will not plan with) counts as no answer: after two in a row
    // the adaptive law drives, rather than the last command being held.
    unanswered_ = ans.ok ? 0 : unanswered_ + 1;
    if (ans.ok) {
      LawOutput out;
      out.desired_W = desired_eq_W(p, in.free_W);
      out.aim_W = ans.first_W;
      const double from = std::clamp(command_W_, cap.lo_W, cap.hi_W);
      out.command_W = std::clamp(slew(from, ans.first_W, max_step_W_), cap.lo_W, cap.hi_W);
      out.updated = true;
      planning_ = true;
      account(out);
      ++counters_.plans_applied;
      return out;
    }
  }
  // As the other laws: a new decision at most every update_interval_s, on samples newer than the last
  // command; the plan asked for now is commanded when it comes.
  const double since_s =
      last_ask_ns_ < 0 ? p.update_interval_s : static_cast<double>(in.now_ns - last_ask_ns_) / kNsPerS;
  if (since_s + 1e-9 >= p.update_interval_s && in.samples_newer_than_command) ask(in, p, cap);
  // The planner is late or stopped; or no plan has been applied yet since the adaptive law last drove:
  // it keeps driving meanwhile.
  if (unanswered_ >= kMaxUnanswered || !planning_) return fallback(in, p);
  LawOutput out;  // between a plan and the next: hold it
  out.desired_W = desired_eq_W(p, in.free_W);
  out.aim_W = std::isfinite(in.free_forecast_W) ? desired_eq_W(p, in.free_forecast_W) : out.desired_W;
  out.command_W = std::clamp(command_W_, cap.lo_W, cap.hi_W);
  return out;
}

}  // namespace eqd::core
