// Receding-horizon plan of a bus's buffer power by dynamic programming. See horizon_planner.hpp.
#include "eqd/core/horizon_planner.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "eqd/core/median.hpp"

namespace eqd::core {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();

bool valid(const PlanRequest& r, int max_steps) noexcept {
  if (r.free_W == nullptr || r.n < 1 || r.n > max_steps || r.delay_s < 1 || r.delay_s > r.n) return false;
  if (!(r.lo_W <= 0.0) || !(r.hi_W >= 0.0) || !(r.hi_W - r.lo_W > 0.0) || !std::isfinite(r.lo_W) ||
      !std::isfinite(r.hi_W))
    return false;
  if (!(r.slew_W_per_s > 0.0) || !std::isfinite(r.start_W) || !std::isfinite(r.target_W) ||
      !(r.travel_weight_s >= 0.0) || !(r.flip_cost_Ws >= 0.0))
    return false;
  for (int t = 0; t < r.n; ++t)
    if (!std::isfinite(r.free_W[t])) return false;
  return true;
}

// Direction index of a power level: 1 charging, 0 discharging, -1 none (0 W).
int dir_of(double e_W) noexcept { return e_W > 0.0 ? 1 : (e_W < 0.0 ? 0 : -1); }
}  // namespace

HorizonPlanner::HorizonPlanner(int levels)
    : levels_requested_(std::max(levels, 3)),
      levels_(2 * levels_requested_ + 2),  // the step may shrink to half the base step (solve())
      cost_now_(2 * static_cast<std::size_t>(levels_), kInf),
      cost_next_(2 * static_cast<std::size_t>(levels_), kInf),
      back_(static_cast<std::size_t>(kMaxSteps) * 2 * static_cast<std::size_t>(levels_), -1),
      plan_(kMaxSteps, 0.0),
      cancel_(kMaxSteps, 0.0) {}

PlanResult HorizonPlanner::solve(const PlanRequest& r) noexcept {
  PlanResult res;
  plan_n_ = 0;
  if (!valid(r, kMaxSteps)) return res;
  // The grid: multiples of step_W within [lo, hi], 0 W among them. The step divides the slew limit, so
  // that a plan can move at exactly the limit (a grid move of 6 × 60 W for a 400 W/s limit left 8-10 %
  // more exchange than the linear program on random steps); step_W is then within (base/2, base].
  const double base_W = std::max((r.hi_W - r.lo_W) / static_cast<double>(levels_requested_ - 1), 1.0);
  int moves = 1;
  double step_W = base_W;
  if (r.slew_W_per_s >= base_W) {
    moves = static_cast<int>(std::ceil(r.slew_W_per_s / base_W - 1e-9));
    step_W = r.slew_W_per_s / static_cast<double>(moves);
  }
  const auto k_min = static_cast<int>(std::ceil(r.lo_W / step_W - 1e-9));
  const auto k_max = static_cast<int>(std::floor(r.hi_W / step_W + 1e-9));
  const int count = std::min(k_max - k_min + 1, levels_);
  const auto level_W = [&](int i) { return static_cast<double>(k_min + i) * step_W; };
  const int start = std::clamp(static_cast<int>(std::lround(r.start_W / step_W)) - k_min, 0, count - 1);

  // Seconds before the first decision: the buffers keep what they do now.
  double prefix = 0.0;
  for (int t = 1; t < r.delay_s; ++t) prefix += std::abs(r.free_W[t - 1] + r.start_W - r.target_W);
  std::fill(cost_now_.begin(), cost_now_.begin() + 2 * count, kInf);
  const int d0 = r.start_direction != 0 ? (r.start_direction > 0 ? 1 : 0) : dir_of(level_W(start));
  if (d0 < 0) {
    cost_now_[2 * start] = cost_now_[2 * start + 1] = prefix;  // no direction yet: no flip to charge
  } else {
    cost_now_[2 * start + d0] = prefix;
  }

  for (int t = r.delay_s; t <= r.n; ++t) {
    std::fill(cost_next_.begin(), cost_next_.begin() + 2 * count, kInf);
    std::int16_t* back = back_.data() + static_cast<std::size_t>(t - r.delay_s) * 2 * static_cast<std::size_t>(levels_);
    const double free_W = r.free_W[t - 1];
    for (int i = 0; i < count; ++i) {
      const double e_W = level_W(i);
      const int di = dir_of(e_W);
      const double stage = std::abs(free_W + e_W - r.target_W);
      for (int j = std::max(0, i - moves); j <= std::min(count - 1, i + moves); ++j) {
        const double travel = r.travel_weight_s * std::abs(e_W - level_W(j));
        for (int d = 0; d < 2; ++d) {
          const double before = cost_now_[2 * j + d];
          if (before == kInf) continue;
          const int nd = di < 0 ? d : di;
          const double c = before + travel + (nd != d ? r.flip_cost_Ws : 0.0) + stage;
          if (c < cost_next_[2 * i + nd]) {
            cost_next_[2 * i + nd] = c;
            back[2 * i + nd] = static_cast<std::int16_t>(2 * j + d);
          }
        }
      }
    }
    cost_now_.swap(cost_next_);
  }

  int best = -1;
  for (int s = 0; s < 2 * count; ++s)
    if (cost_now_[s] < kInf && (best < 0 || cost_now_[s] < cost_now_[best])) best = s;
  if (best < 0) return res;
  res.cost = cost_now_[best];
  for (int t = r.n; t >= r.delay_s; --t) {
    plan_[t - 1] = level_W(best / 2);
    best = back_[static_cast<std::size_t>(t - r.delay_s) * 2 * static_cast<std::size_t>(levels_) + best];
  }
  for (int t = 1; t < r.delay_s; ++t) plan_[t - 1] = r.start_W;
  plan_n_ = r.n;
  int dir = d0 < 0 ? 0 : (d0 == 1 ? 1 : -1);  // as the search charged it
  for (int t = 0; t < r.n; ++t) {
    const int s = plan_[t] > 0.0 ? 1 : (plan_[t] < 0.0 ? -1 : 0);
    if (s != 0 && dir != 0 && s != dir) ++res.flips;
    if (s != 0) dir = s;
  }
  res.ok = true;
  res.first_W = plan_[r.delay_s - 1];
  refine_first(r, res, step_W);
  res.step_W = step_W;
  return res;
}

void HorizonPlanner::refine_first(const PlanRequest& r, PlanResult& res, double step_W) noexcept {
  // The grid's rounding. Where the plan holds one level for at least its first kRefineMin_s decisions
  // and that level is within one grid step of what cancels the path there, the continuous optimum cancels
  // the path (a travel weight below 1 s makes following a slow drift cheaper than leaving it in the grid);
  // the level itself left up to half a step in the grid (57 W on 6 kW of buffers, growing and snapping back
  // on every slow ramp). The command is the median of the cancelling values over all the seconds the plan
  // holds that level: the one constant power with the least exchange over them (an L1 cost), and robust to
  // the sample noise of a learned path, which replays noisy samples of earlier cycles (over 5 s only, the
  // command followed that noise: slow rig, learned, 0.4-0.6 kW more travel than the adaptive law; over the
  // whole run it is within 0.0 kW of it). Only on a held level: on swinging loads, where the plan moves
  // every second, refining cost the labs 0.005 of exchange. Never where the plan rests at 0 W, would
  // reverse its direction, or beyond the slew limit or the capacity: those are the plan's choices, not
  // rounding. Measured: docs/control.md, "The receding-horizon planner".
  constexpr int kRefineMin_s = 5;
  int m = 0;
  for (int t = r.delay_s - 1; t < r.n && plan_[t] == res.first_W; ++t)
    cancel_[static_cast<std::size_t>(m++)] = r.target_W - r.free_W[t];
  if (m < kRefineMin_s || res.first_W == 0.0) return;
  const double exact_W = median_in_place(cancel_.data(), static_cast<std::size_t>(m));
  if (std::abs(exact_W - res.first_W) < step_W && (exact_W > 0.0) == (res.first_W > 0.0) &&
      std::abs(exact_W - r.start_W) <= r.slew_W_per_s + 1e-9 && exact_W >= r.lo_W && exact_W <= r.hi_W)
    res.first_W = exact_W;
}

}  // namespace eqd::core
