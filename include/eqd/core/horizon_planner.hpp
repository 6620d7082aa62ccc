#pragma once
/// @file horizon_planner.hpp
/// Receding-horizon plan of one bus's buffer power over a known path of its free power (issue #15
/// item 2; docs/control.md, "The receding-horizon planner"). Given the free power for each of the
/// next n seconds, it finds the buffers' total power E_1..E_n that minimises
///
///     Σ_t |free_t + E_t − target|            (the grid exchange, W·s)
///   + travel_weight_s · Σ_t |E_t − E_{t−1}|  (setpoint travel)
///   + flip_cost_Ws · (number of direction reversals of E)
///
/// subject to the slew limit |E_t − E_{t−1}| ≤ slew · 1 s, the capacity lo ≤ E_t ≤ hi and the effect
/// delay (E_t for t < delay_s is what the buffers do already: a command sent now acts from then on).
/// The caller applies the first decision (E at delay_s) and plans again the next second. Where the plan
/// holds one level for at least its first 5 decisions, that decision is refined off the grid to the median
/// power that cancels the path over all the seconds it holds that level (if within one grid step, the slew
/// limit and the capacity, and without a reversal): the grid's rounding would otherwise stay in the grid on
/// slow loads.
///
/// Exact dynamic programming over a grid of power levels that contains 0 W and whose step divides the
/// slew limit (step ≈ (hi − lo) / (levels − 1), at least 1 W), with the last direction in the state, so
/// that the flip charge is exact on the grid. Cost O(n · levels · moves); backpointers for n ≤ kMaxSteps are allocated
/// once in the constructor. solve() never allocates, blocks or throws. Where one slew step is finer than the grid step,
/// the plan moves one level per second (faster than the slew limit): the law that applies the plan slew-limits its
/// command regardless. Thread-safety: not thread-safe; one planner per thread (it keeps its working arrays).

#include <cstdint>
#include <vector>

namespace eqd::core {

/// What one plan is asked for.
struct PlanRequest {
  const double* free_W = nullptr;  ///< free power (bus side) of the coming seconds: [0] = 1 s ahead
  int n = 0;                       ///< seconds in free_W (1 .. HorizonPlanner::kMaxSteps)
  double target_W = 0.0;           ///< net power the bus aims for
  double start_W = 0.0;            ///< the buffers' total now (bus side)
  int start_direction = 0;         ///< sign of their last non-zero total (0: none yet, no flip charged)
  double lo_W = 0.0;               ///< -(discharge capacity), <= 0
  double hi_W = 0.0;               ///< charge capacity, >= 0
  double slew_W_per_s = 0.0;       ///< > 0
  int delay_s = 1;                 ///< seconds before a command sent now takes effect (>= 1)
  double travel_weight_s = 0.0;    ///< W·s of exchange per W of setpoint travel
  double flip_cost_Ws = 0.0;       ///< charge per direction reversal
};

/// The answer.
struct PlanResult {
  bool ok = false;       ///< false: request out of range (no path, n too large, empty capacity)
  double first_W = 0.0;  ///< E at delay_s, what to command now: the plan's level, or, where the plan holds
                         ///< a level for >= 5 s, the median power that cancels the path while it holds it
                         ///< (off the grid)
  double cost = 0.0;     ///< the objective of the plan found (on the grid)
  double step_W = 0.0;   ///< the grid step used
  int flips = 0;         ///< direction reversals in the plan
};

class HorizonPlanner {
 public:
  static constexpr int kMaxSteps = 120;  ///< ForecastPath::kMaxHorizon_s
  static constexpr int kDefaultLevels = 201;

  /// Allocates the working arrays for `levels` power levels (at least 3). Never on the control thread.
  explicit HorizonPlanner(int levels = kDefaultLevels);

  /// Plans; the plan stays readable through plan_W() until the next call. Allocation-free.
  PlanResult solve(const PlanRequest& r) noexcept;

  /// E_1..E_n of the last successful plan ([0] = 1 s ahead). Empty after a failed one.
  [[nodiscard]] const double* plan_W() const noexcept { return plan_.data(); }
  [[nodiscard]] int plan_size() const noexcept { return plan_n_; }

 private:
  /// The first decision off the grid where the plan holds a level (see solve()). Allocation-free.
  void refine_first(const PlanRequest& r, PlanResult& res, double step_W) noexcept;

  int levels_requested_;
  int levels_;                                ///< room for the grid: up to twice the requested levels (see solve())
  std::vector<double> cost_now_, cost_next_;  ///< per (level, direction): best cost so far
  std::vector<std::int16_t> back_;            ///< per (step, level, direction): predecessor (level * 2 + dir)
  std::vector<double> plan_;
  std::vector<double> cancel_;  ///< refine_first()'s scratch: the cancelling power of the held seconds
  int plan_n_ = 0;
};

}  // namespace eqd::core
