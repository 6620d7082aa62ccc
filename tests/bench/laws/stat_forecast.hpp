#pragma once
/// @file stat_forecast.hpp
/// Benchmark prototype (issue #15, "statistical short-term forecasts"; docs/control-benchmark.md, "What
/// was tried (2026-12-04, late)"): a purely statistical forecast of one bus's free power over the
/// coming seconds, learned online from the bus's own 1 s history, with no announcement and no
/// repetition. Not shipped: the benchmark's harness feeds its path to the core as a learned path
/// (StatForecastCoreLaw) so that laws `planned` and `adaptive` can be measured with it.
///
/// Methods (StatForecastParams::method):
/// - persistence: the present value held (delta 0), for the baseline "a path that says nothing";
/// - iterated: an AR(p) model of the 1 s differences, d(t) = sum_i a_i d(t-i), fitted by exponentially
///   weighted least squares (recursive least squares with forgetting, solved afresh every second with a
///   small ridge so that it cannot blow up), iterated h steps ahead and summed onto the present value;
/// - direct: one linear model per horizon h of the change x(t+h) - x(t), on the last p differences and
///   the present deviation from a slow mean (mean reversion), fitted the same way on the pairs whose
///   x(t+h) is known.
/// - mean: no fit; every second ahead is the slow mean (level_tau_s), for the question "is it the fit
///   or only the mean reversion".
/// A skill gate (as the learned predictor's) scores the forecast at gate_h_s against persistence.
/// Thread-safety: not thread-safe; one object per bus, one thread.

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace eqd::bench {

struct StatForecastParams {
  enum class Method : std::uint8_t { persistence, iterated, direct, mean };
  // Defaults: chosen on lab_drive_a, lab_drive_b and learn_oneoff with law `planned` at tau 15 s
  // (docs/control-benchmark.md, "What was tried (2026-12-04, late)").
  Method method = Method::direct;  ///< iterated AR on differences never beat persistence on the labs
  int order = 2;                   ///< p: lagged 1 s differences used (1-4 within 0.02; 8-16 worse)
  /// Forgetting factor per second (memory ~ 1 / (1 - forget) = 100 s): the labs' statistics move; with
  /// 1000 s of memory the fit was worse than persistence at 2-10 s.
  double forget = 0.99;
  double ridge = 0.01;         ///< ridge, as a share of the weights' sum (features are ~unit size)
  double level_tau_s = 120.0;  ///< direct: the slow mean whose deviation is a regressor (0: not used)
  int horizon_s = 30;          ///< forecast h = 1..horizon_s
  /// The forecast change is multiplied by this. 1.25: a path pulled a little further toward the slow
  /// mean makes the planner hold through swings (lab B 120 -> 52 flips/h for +0.02 of exchange).
  double gain = 1.25;
  /// Skill gate: 1 - MAE(forecast) / MAE(persistence) at gate_h_s, EWMA over gate_memory_s; the path is
  /// used while the skill is above skill_on, until it falls below skill_off. skill_on <= -1: always.
  /// 20 s: the planner uses the path's far part most; at 5 s the gate stayed shut on learn_oneoff.
  int gate_h_s = 20;
  double gate_memory_s = 300.0;
  double skill_on = 0.05;
  double skill_off = 0.0;
  int warmup_s = 60;  ///< no path before this many seconds of history
};

class StatForecaster {
 public:
  static constexpr int kMaxOrder = 24;
  static constexpr int kMaxHorizon = 120;
  static constexpr int kMaxFeatures = kMaxOrder + 1;

  explicit StatForecaster(const StatForecastParams& p = {});

  /// One second's value x(t) (seconds must be consecutive; a gap restarts the history). Updates the
  /// fit and the gate, then forecasts.
  void observe(std::int64_t t_s, double x);
  /// Forecast change x(t+h) - x(t) for h = 1..horizon_s after the last observe (0 before warm-up).
  [[nodiscard]] double delta(int h) const noexcept { return delta_[static_cast<std::size_t>(h)]; }
  [[nodiscard]] bool gate_open() const noexcept { return gate_open_; }
  [[nodiscard]] double skill() const noexcept;  ///< NaN until scored
  [[nodiscard]] bool warm() const noexcept { return n_ >= p_.warmup_s; }
  [[nodiscard]] const StatForecastParams& params() const noexcept { return p_; }
  /// The fitted coefficients (on the scaled features: the last `order` differences, newest first, then
  /// the level's deviation from the slow mean) of horizon h (direct) or of the one-step model (iterated).
  [[nodiscard]] const std::array<double, kMaxFeatures>& coefficients(int h) const noexcept {
    return theta_[p_.method == StatForecastParams::Method::direct ? static_cast<std::size_t>(h) : 0];
  }

 private:
  [[nodiscard]] double x_at(std::int64_t t) const noexcept { return ring_[static_cast<std::size_t>(t % kRing)]; }
  void features(std::int64_t t, std::array<double, kMaxFeatures>& phi) const noexcept;
  /// Solves (R + ridge) theta = r by Cholesky (R: nf x nf, row-major). False: not positive definite.
  bool solve(const double* R, const double* r, double wsum, double* theta) const noexcept;
  void forecast() noexcept;

  static constexpr int kRing = 256;
  static constexpr std::int64_t kRangeS = 120;  ///< forecasts stay within the last 120 s's range
  StatForecastParams p_;
  int nf_ = 0;  ///< features in use
  std::array<double, kRing> ring_{};
  std::array<double, kRing> mean_ring_{};  ///< the slow mean at each second
  std::int64_t last_t_ = -1;
  std::int64_t n_ = 0;  ///< consecutive seconds seen
  double mean_ = 0.0;
  double scale_ = 0.0;  ///< EWMA |d|: features are divided by it (RLS conditioning)
  std::array<double, kRing> scale_ring_{};
  /// Weighted sums of phi phi^T: iterated, [0] only (now); direct, ring over the last horizon_s + 1
  /// seconds: the pairs of horizon h are those up to h seconds ago, whose sum is the one of h s ago.
  std::vector<std::vector<double>> R_;
  std::vector<double> wsum_;                             ///< sum of weights, per ring entry of R_
  std::vector<std::array<double, kMaxFeatures>> r_;      ///< sum of phi y per h (iterated: [0])
  std::vector<double> rw_;                               ///< sum of weights of r_, per h
  std::vector<std::array<double, kMaxFeatures>> theta_;  ///< direct: per h; iterated: [0] only
  std::array<double, kMaxHorizon + 1> delta_{};
  std::array<double, kRing> made_{};  ///< forecast of x(t + gate_h) made at t (NaN: none)
  double mae_f_ = 0.0, mae_p_ = 0.0;
  int scored_ = 0;
  bool gate_open_ = false;
};

}  // namespace eqd::bench
