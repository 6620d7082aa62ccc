#pragma once
/// @file stat_shadow_gate.hpp
/// The shadow-plan gate of the statistical path (issue #15; docs/control-benchmark.md, "What was tried
/// (2026-12-04, late)"): once a second, a shadow planner plans over the statistical path from its own
/// last command, as the real law `planned` would, and a shadow adaptive law steps on the same free power
/// (the laws are feed-forward: what it would have commanded does not depend on what the buffers did).
/// Both are scored at all times by what they would leave in the grid, |free(t) + command(t - 2 s)|,
/// plus a light travel weight (kTravelWeight_s) and the planner's reversal charge (EWMA over 300 s). The path is usable
/// while the shadow plan scores below 0.95 x the shadow adaptive law, until it is above 1.0 x (after 120 s). Why: on 8
/// s pulse trains the forecast has skill (0.35-0.50) but the planner chases pulses it cannot follow (pulses_short 0.225
/// -> 0.244 at 15 x the travel with the skill gate alone); no trial is needed, at one more plan a second.
///
/// Thread-safety: not thread-safe; one object per bus, on the thread that ticks the fits (the predictor
/// thread, StatForecasts). The planner is passed in so that the buses share one.

#include <array>
#include <cstdint>

#include "eqd/core/adaptive_law.hpp"
#include "eqd/core/horizon_planner.hpp"
#include "eqd/core/snapshot.hpp"

namespace eqd::core {

class StatShadowGate {
 public:
  static constexpr double kMemory_s = 300.0;  ///< the scores' EWMA
  static constexpr double kMin_s = 120.0;     ///< seconds scored before the gate may open
  static constexpr double kOnRatio = 0.95;    ///< open when plan < kOnRatio x adaptive
  static constexpr double kOffRatio = 1.0;    ///< shut when plan > kOffRatio x adaptive
  /// W·s of exchange per W of travel in both scores: a light weight that only breaks ties, whatever the
  /// bus's own plan_travel_weight_s. The gate asks whether planning on the forecast helps the grid more
  /// than the adaptive law; the lab's travel weight shapes the plan, not that answer. Scored with the bus's
  /// weight of 8 s, the calm plan won on its own objective on the drive labs while leaving more in the
  /// grid than the adaptive law (lab A 0.882 against 0.817); scored so, the labs keep the adaptive law
  /// (0.817) and the repeating loads the plan (bench_laws, 2026-12-04).
  static constexpr double kTravelWeight_s = 0.2;

  /// Once a second: bs, the bus's snapshot; delta_W[h], h = 1..n, the statistical path's changes from
  /// bs.free_W (whatever its skill gate says: it is scored at all times). Returns open().
  bool tick(std::int64_t now_ns, const BusSnapshot& bs, const double* delta_W, int n, HorizonPlanner& planner) noexcept;
  [[nodiscard]] bool open() const noexcept { return open_; }
  [[nodiscard]] double plan_score_W() const noexcept { return plan_score_W_; }
  [[nodiscard]] double adaptive_score_W() const noexcept { return adaptive_score_W_; }

  /// What a restart keeps (docs/control.md "Statistical forecasts"): the scores, how long they have
  /// been scored, the verdict and the rating. Not the shadows' commands: after a restart the real
  /// buffers start from 0 W, and so do both shadows, each paying its own way back.
  struct State {
    double plan_score_W = 0.0, adaptive_score_W = 0.0, rated_W = 0.0;
    std::int64_t scored = 0;
    bool open = false;
  };
  [[nodiscard]] State save() const noexcept { return {plan_score_W_, adaptive_score_W_, rated_W_, scored_, open_}; }
  /// False (nothing changed) on non-finite or negative values.
  bool restore(const State& s) noexcept;

 private:
  /// One second's score of a command history: exchange left, travel, reversal.
  double cost(const BusSnapshot& bs, double now_W, double prev_W, double two_ago_W, int& dir) const noexcept;
  double adaptive_step(std::int64_t now_ns, const BusSnapshot& bs) noexcept;
  double plan_step(const BusSnapshot& bs, const double* delta_W, int n, double prev_W,
                   HorizonPlanner& planner) noexcept;

  AdaptiveLaw adaptive_;
  double rated_W_ = 0.0;                 ///< the largest capacity seen (the flip cost's scale)
  std::array<double, 4> plan_W_{};       ///< the shadow plan's commands, by second % 4
  std::array<double, 4> adaptive_W_{};   ///< the shadow adaptive law's, by second % 4
  int plan_dir_ = 0, adaptive_dir_ = 0;  ///< their last non-zero directions
  double plan_score_W_ = 0.0, adaptive_score_W_ = 0.0;
  std::int64_t scored_ = 0;
  bool open_ = false;
  std::array<double, HorizonPlanner::kMaxSteps> path_W_{};
};

}  // namespace eqd::core
