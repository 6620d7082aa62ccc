#pragma once
/// @file stat_forecasts.hpp
/// The predictor thread's side of the statistical forecasts (stat_forecast.hpp): once a second, for each
/// bus with law `planned`, use_forecast and stat_forecast, feed the bus's free power (its snapshot) to
/// the bus's StatFitter and publish its model to ControlCore::stat_model_slot(). Buses without it are
/// left alone (their slot keeps its last model, which goes stale in 2 s: no path).

#include <cstdint>
#include <memory>
#include <vector>

#include "eqd/core/stat_forecast.hpp"

namespace eqd::core {

class ControlCore;

/// Thread-safety: not thread-safe; one object, on one thread (the daemon's predictor thread, or the
/// harness's law in the benchmark). tick() allocates a bus's fitter when the bus first asks for one
/// (and again when its horizon changes): off the control thread, so allowed.
class StatForecasts {
 public:
  explicit StatForecasts(std::size_t buses, const StatFitParams& p = {});
  /// Once per new second of now_ns (the core's clock); other calls return at once. Reads the buses'
  /// snapshots and stores into their model slots.
  void tick(std::int64_t now_ns, ControlCore& core);
  /// Bus b's fitter (nullptr: the bus has not asked for one). For metrics and tests.
  [[nodiscard]] const StatFitter* fitter(std::size_t b) const noexcept { return fitters_[b].get(); }

 private:
  StatFitParams params_;
  std::vector<std::unique_ptr<StatFitter>> fitters_;
  std::int64_t last_s_ = -1;
};

}  // namespace eqd::core
