#pragma once
/// @file forecast_path.hpp
/// The free power of one bus along time, measured behind and announced ahead, and the robust centred
/// estimate the law steers by when controllers announce their test programs (docs/control.md,
/// "Announced schedules").

#include <array>
#include <cstdint>
#include <vector>

namespace eqd::core {

/// The learned change of one bus's free power over the coming seconds, as the predictor thread last
/// published it (docs/control.md, "Learned forecasts"): delta_W[h] = the sum, over the bus's test
/// channels whose learned forecast is in use, of their forecast bus-side power at made_s + h minus
/// their power at made_s (h = 1..horizon_s; 0 = nothing learned for that second). A whole path per
/// second, rebuilt each time, so that a channel whose forecast starts or stops being used changes all
/// seconds at once. Channel i is in it when LearnedForecasts::in_path(i, made_s): the control core reads
/// those channels' power again when it uses the path, because a fast load moves a lot in the second
/// between the path being made and being used. Trivially copyable (published through a Seqlock).
struct LearnedAhead {
  static constexpr std::size_t kSlots = 121;  ///< ForecastPath::kMaxHorizon_s + 1
  std::int64_t made_s = -1;                   ///< second of the core's clock it was made in (-1: never)
  std::uint32_t channels = 0;                 ///< channels whose forecast is in it
  std::uint32_t horizon_s = 0;
  /// Their bus-side power at made_s: present_W + delta_W[h] is what they are expected to draw then.
  double present_W = 0.0;
  std::array<float, kSlots> delta_W{};
};

/// Per-bus path of the free power in 1 s bins: the measured free power of past seconds, and for the
/// coming seconds what the announcing channels said they will draw then (each announces the power it
/// expects `horizon_s` after its sample; the other channels are taken to keep their present power).
///
/// steer_W() is the median of that path over a window centred `lead_s` ahead of now: lead = min(tau_s,
/// horizon/2) offsets the damped response's mean delay, so the buffers' ramp straddles an announced step
/// instead of trailing it; the window reaches to the end of the announced horizon (half-width =
/// horizon − lead). A median, not a mean, because the exchange with the grid is an L1 cost: short
/// pulses within the window do not move a median (so the buffers do not chase them), while a step keeps
/// its edge and is followed in one damped move.
///
/// Fixed-size rings allocated in the constructor; update() never allocates, blocks or throws.
/// Thread-safety: not thread-safe; owned by the control thread.
class ForecastPath {
 public:
  /// Longest announced horizon supported (s). BusParams::forecast_horizon_s is validated against it.
  static constexpr int kMaxHorizon_s = 120;

  ForecastPath();

  /// Feed one control cycle. free_W: measured bus-side free power now; announcing_present_W: the part of
  /// it drawn by channels that announce; announced_W: what those channels announce for now + horizon_s
  /// (bus side); announcing: how many channels announce. Work is done once per new second.
  /// learned: the bus's learned path (nullptr, stale by more than 2 s, or without channels: none), and
  /// learned_present_W: the present bus-side power of the channels in it (part of free_W). For every
  /// coming second their present power is replaced by what the path expects them to draw then.
  /// stat_delta_W: the bus's statistical forecast (StatPath; index h = 1..horizon, the change of the
  /// whole free power h s ahead), used only when nothing is announced and no learned path counts:
  /// announced, then learned, then statistical (docs/control.md "Statistical forecasts").
  void update(std::int64_t now_ns, double free_W, double announcing_present_W, double announced_W,
              std::uint32_t announcing, double horizon_s, double tau_s, const LearnedAhead* learned = nullptr,
              double learned_present_W = 0.0, const double* stat_delta_W = nullptr) noexcept;

  /// What the law steers by: the centred median of the path (NaN while nothing is announced or learned,
  /// or before the first update).
  [[nodiscard]] double steer_W() const noexcept { return steer_W_; }

  /// The path of the coming seconds as update() last built it: ahead_W()[k] is the free power expected
  /// k + 1 seconds after the current second, for k < ahead_n() (0 while steer_W() is NaN). For laws that
  /// plan over the path (LawInput::free_path_W).
  [[nodiscard]] const double* ahead_W() const noexcept { return path_W_.data(); }
  [[nodiscard]] int ahead_n() const noexcept { return path_n_; }
  /// The path of the last update is the statistical forecast (nothing announced or learned).
  [[nodiscard]] bool statistical() const noexcept { return statistical_; }

  /// Forget everything (e.g. the horizon changed).
  void reset() noexcept;

 private:
  static constexpr std::int64_t kSlots = 512;  ///< ring length (s): >= past window + horizon + 1

  std::vector<double> past_W_;         ///< measured free power of second k at k % kSlots
  std::vector<std::int64_t> past_s_;   ///< which second each past slot holds (-1 = none)
  std::vector<double> ahead_W_;        ///< announced power of second k at k % kSlots
  std::vector<std::int64_t> ahead_s_;  ///< which second each ahead slot holds (-1 = none)
  std::vector<double> window_;         ///< scratch for the median
  std::vector<double> path_W_;         ///< the coming seconds' free power (ahead_W())
  int path_n_ = 0;
  bool statistical_ = false;
  std::int64_t last_s_ = -1;
  double horizon_s_ = 0.0;
  double steer_W_;
};

}  // namespace eqd::core
