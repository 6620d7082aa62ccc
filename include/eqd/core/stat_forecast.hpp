#pragma once
/// @file stat_forecast.hpp
/// Statistical short-term forecast of one bus's free power (issue #15; docs/control.md "Statistical
/// forecasts"; the benchmark prototype and its figures: docs/control-benchmark.md, "What was tried
/// (2026-12-04, late)"). For law `planned` on buses with stat_forecast, where nothing is announced or
/// learned: the path it plans over.
///
/// Split by thread, so that the control cycle neither allocates nor fits:
/// - StatFitter (predictor thread, once a second): per bus, one linear model per horizon h of the change
///   x(t+h) - x(t) on the last two 1 s differences and the deviation of x(t) from a 120 s mean, all
///   divided by the mean |difference|; exponentially weighted least squares (forgetting 0.99/s, ridge
///   1 %) solved afresh each second by Cholesky; a skill gate (1 - MAE / MAE(persistence) at 20 s).
/// - StatModel (published through a Seqlock, ~1.5 KB): the coefficients, the mean, the scale, the range
///   of the last 120 s, the gate.
/// - StatPath (control thread, once a second): evaluates the newest model on the bus's newest free
///   power (3 multiply-adds per second ahead and a clamp): a path made a second earlier lost 0.04-0.09
///   of the exchange on the drive labs, so the fit is published and the evaluation done on fresh data.
///
/// A forecast never leaves the range the free power took over the last 120 s: a fit that extrapolated
/// after a step (learn_mixed, skill -2.2 at 10 s before this bound) cannot move the path further than
/// the load itself went.

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "eqd/core/seqlock.hpp"

namespace eqd::core {

/// One bus's fitted forecaster as the predictor thread published it. Trivially copyable (Seqlock).
struct StatModel {
  static constexpr int kFeatures = 3;         ///< two lagged 1 s differences, the deviation from the mean
  static constexpr std::size_t kSlots = 121;  ///< h = 0..ForecastPath::kMaxHorizon_s (0 unused)
  std::int64_t made_s = -1;                   ///< second of the core's clock of its last value (-1: none)
  std::uint32_t horizon_s = 0;                ///< h = 1..horizon_s are fitted
  bool usable = false;                        ///< the control thread may use it: every gate open
  bool skill_open = false;                    ///< warm, and the skill gate is open
  bool shadow_open = false;                   ///< the shadow-plan gate is open (StatShadowGate; diagnostics)
  double mean_W = 0.0;                        ///< the 120 s mean at made_s
  double scale_W = 0.0;                       ///< mean |1 s difference| at made_s (features are divided by it)
  double lo_W = 0.0, hi_W = 0.0;              ///< range of the last 120 s up to made_s
  double gain = 1.0;                          ///< the forecast change is multiplied by this
  double level_tau_s = 120.0;                 ///< the mean's time constant (StatPath steps it on)
  std::array<std::array<float, kFeatures>, kSlots> coef{};  ///< coef[h]: model of x(t+h) - x(t)
};

/// Settings of the fit; the defaults are those measured (docs/control-benchmark.md): not run-time
/// parameters, since only the opt-in (BusParams::stat_forecast) was shown to matter to a lab.
struct StatFitParams {
  /// Forgetting per second (memory ~100 s): the labs' statistics move within minutes; 1000 s was worse
  /// than persistence at 2-10 s.
  double forget = 0.99;
  double ridge = 0.01;         ///< as a share of the weights' sum (the features are ~unit size)
  double level_tau_s = 120.0;  ///< the slow mean whose deviation is a regressor (mean reversion)
  int horizon_s = 30;          ///< 1..120 (the bus's forecast_horizon_s)
  /// 1.25: a path pulled a little further toward the mean makes the planner hold through swings
  /// (lab B 100 -> 52 flips/h for +0.014 of exchange).
  double gain = 1.25;
  /// Skill at gate_h_s against persistence, EWMA over gate_memory_s; open above skill_on, shut below
  /// skill_off. 20 s: the planner weighs the path's far part most (at 5 s the gate stayed shut on
  /// learn_oneoff).
  int gate_h_s = 20;
  double gate_memory_s = 300.0;
  double skill_on = 0.05;
  double skill_off = 0.0;
  int warmup_s = 60;  ///< no usable model before this many consecutive seconds
};

/// A StatFitter's state as plain data, for keeping it across a restart (the daemon's
/// state_dir/stat_forecast.bin; docs/control.md "Statistical forecasts"). The 1 s rings are by age:
/// [k] is k seconds before the last second observed, so the state does not depend on the clock it was
/// made on. Allocates; never in the control cycle.
struct StatFitterState {
  std::int32_t horizon_s = 0;  ///< the fit's horizon (restore refuses another)
  std::int32_t gate_h_s = 0;
  std::int64_t n = 0;  ///< consecutive seconds seen (0: nothing observed, nothing to keep)
  std::int32_t scored = 0;
  bool gate_open = false;
  double mean_now_W = 0.0, scale_now_W = 0.0, mae_forecast_W = 0.0, mae_persistence_W = 0.0;
  std::vector<double> x_W, mean_W, scale_W, made_W;  ///< the 1 s rings, by age (made_W: NaN where none)
  std::vector<double> sums, weights;                 ///< the weighted sums of phi phi^T (9 a second), by age
  std::vector<double> r, theta;                      ///< per h = 0..horizon_s, 3 each
};

/// The forecast change delta_W[h] = x(t+h) - x(t), h = 1..m.horizon_s (delta_W[0] = 0), of a model on
/// the values x = x(t), x1 = x(t-1), x2 = x(t-2), the mean at t, and the range [lo_W, hi_W] (which must
/// contain x). All zero when the scale is 0. Any thread; no allocation.
void stat_evaluate(const StatModel& m, double x_W, double x1_W, double x2_W, double mean_W, double lo_W, double hi_W,
                   double* delta_W) noexcept;

/// The fit of one bus. Allocates in the constructor only; observe() is O(horizon) (31 Cholesky solves
/// of 3 x 3 at 30 s). Thread-safety: not thread-safe; one object per bus, on the predictor thread.
class StatFitter {
 public:
  explicit StatFitter(const StatFitParams& p = {});

  /// One second's free power x(t) (consecutive seconds; a gap restarts the history, the fit is kept).
  void observe(std::int64_t t_s, double x_W) noexcept;
  /// The model after the last observe (usable false before warm-up or while the gate is shut).
  [[nodiscard]] StatModel model() const noexcept;
  [[nodiscard]] double skill() const noexcept;  ///< NaN until scored
  [[nodiscard]] bool gate_open() const noexcept { return gate_open_; }
  [[nodiscard]] const StatFitParams& params() const noexcept { return p_; }
  /// The forecast change at h made by the last observe (0 before warm-up). For tests and the bench.
  [[nodiscard]] double delta_W(int h) const noexcept { return delta_[static_cast<std::size_t>(h)]; }
  /// The fitted coefficients of horizon h (scaled features: newest difference, older one, deviation).
  [[nodiscard]] const std::array<double, StatModel::kFeatures>& coefficients(int h) const noexcept {
    return theta_[static_cast<std::size_t>(h)];
  }
  /// Everything observe() carries from second to second (n == 0: nothing observed yet).
  [[nodiscard]] StatFitterState save() const;
  /// Continue from `s` as if its last second had been next_t_s - 1: the history is spliced onto the next
  /// observe(next_t_s, ...), so to the fit a restart is one step of the free power (the labs' loads have
  /// them by the hundred), and neither the warm-up nor the skill's scoring starts again. False (and the
  /// fitter left as it was) where s is not for these parameters (horizon, gate), is malformed or has a
  /// non-finite value. The restored history is cut to the seconds since 0 of the new clock.
  bool restore(const StatFitterState& s, std::int64_t next_t_s) noexcept;

 private:
  static constexpr int kNf = StatModel::kFeatures;
  static constexpr std::int64_t kRing = 256;    ///< s of history kept (>= range, horizon, gate)
  static constexpr std::int64_t kRangeS = 120;  ///< the range a forecast stays within
  using Vec = std::array<double, kNf>;
  using Mat = std::array<double, kNf * kNf>;
  [[nodiscard]] static std::size_t at(std::int64_t t) noexcept { return static_cast<std::size_t>(t % kRing); }
  [[nodiscard]] double x_at(std::int64_t t) const noexcept { return x_[at(t)]; }
  [[nodiscard]] Vec features(std::int64_t t) const noexcept;
  void fit(std::int64_t t, double x_W) noexcept;
  void score(std::int64_t t, double x_W) noexcept;
  void forecast() noexcept;
  void range(double& lo_W, double& hi_W) const noexcept;

  StatFitParams p_;
  std::vector<double> x_, mean_, scale_, made_;  ///< 1 s rings (kRing): value, mean, scale, forecast at gate_h
  std::vector<Mat> sums_;                        ///< weighted sums of phi phi^T, ring over horizon + 1 s
  std::vector<double> wsum_;                     ///< their weights' sums
  std::vector<Vec> r_;                           ///< per h: weighted sum of phi(t - h) (x(t) - x(t - h))
  std::vector<Vec> theta_;                       ///< per h
  std::vector<double> delta_;                    ///< per h, the last forecast
  std::int64_t last_t_ = -1;
  std::int64_t n_ = 0;  ///< consecutive seconds seen
  double mean_now_ = 0.0, scale_now_ = 0.0;
  double mae_f_ = 0.0, mae_p_ = 0.0;
  int scored_ = 0;
  bool gate_open_ = false;
};

/// The control thread's side, per bus: its own last three seconds' free power, and the path's deltas
/// of this second. No allocation. Thread-safety: the control thread only.
class StatPath {
 public:
  /// Once per new second of now_ns (else the last result): record x_W, read the model from `slot`
  /// (a few attempts; a slot mid-store keeps the last model read) and, when it is usable, made for
  /// `horizon_s`, at most 2 s old and the last two seconds were recorded, evaluate it on x_W.
  /// Returns the deltas (index h = 0..horizon_s) or nullptr: no statistical path this second.
  const double* update(std::int64_t now_ns, double x_W, const Seqlock<StatModel>& slot, int horizon_s) noexcept;
  /// The same with a model already read (tests).
  const double* update(std::int64_t now_ns, double x_W, const StatModel& m, int horizon_s) noexcept;
  void reset() noexcept;

 private:
  std::array<double, 3> x_W_{};  ///< by second % 3
  std::array<std::int64_t, 3> x_s_{-1, -1, -1};
  std::int64_t last_s_ = -1;
  bool have_ = false;
  std::array<double, StatModel::kSlots> delta_W_{};
  StatModel model_{};  ///< as last read
};

}  // namespace eqd::core
