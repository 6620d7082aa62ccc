#pragma once
/// @file stat_forecasts.hpp
/// The predictor thread's side of the statistical forecasts (stat_forecast.hpp): once a second, for each
/// bus with law `planned`, use_forecast and stat_forecast, feed the bus's free power (its snapshot) to
/// the bus's StatFitter, score the shadow-plan gate (StatShadowGate) and publish the model to
/// ControlCore::stat_model_slot(), usable while both the skill and the shadow-plan gates are open.
/// Buses without it are left alone (their slot keeps its last model, which goes stale in 2 s: no path).
/// The shadow plan runs here, not on the planner thread as first proposed: it needs the fit's path of
/// this second and one solve a second per bus, and this thread has both (docs/control.md).

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "eqd/core/horizon_planner.hpp"
#include "eqd/core/stat_forecast.hpp"
#include "eqd/core/stat_shadow_gate.hpp"

namespace eqd::core {

class ControlCore;

/// Thread-safety: not thread-safe; one object, on one thread (the daemon's predictor thread, or the
/// harness's law in the benchmark). tick() allocates a bus's fitter when the bus first asks for one
/// (and again when its horizon changes): off the control thread, so allowed.
class StatForecasts {
 public:
  /// shadow_gate false: the skill gate alone (bench comparison).
  explicit StatForecasts(std::size_t buses, const StatFitParams& p = {}, bool shadow_gate = true);
  /// Once per new second of now_ns (the core's clock); other calls return at once. Reads the buses'
  /// snapshots and stores into their model slots.
  void tick(std::int64_t now_ns, ControlCore& core);
  /// Bus b's fitter (nullptr: the bus has not asked for one). For metrics and tests.
  [[nodiscard]] const StatFitter* fitter(std::size_t b) const noexcept { return fitters_[b].get(); }
  [[nodiscard]] const StatShadowGate* gate(std::size_t b) const noexcept { return gates_[b].get(); }

  /// A bus's fit and shadow-plan gate, for keeping them across a restart (the daemon's
  /// stat_forecast.bin). Plain data.
  struct BusState {
    StatFitterState fit;
    StatShadowGate::State gate;
  };
  /// Bus b's state (nullopt: the bus has no fit, or it has observed nothing).
  [[nodiscard]] std::optional<BusState> save(std::size_t b) const;
  /// Held for bus b until its next tick: restored into the fit that tick creates (bus b has stat_forecast
  /// on, the horizon matches), else dropped. The daemon calls it before its thread starts. False (and
  /// nothing held) where s would not restore: checked now, on a fit of s's horizon.
  bool restore(std::size_t b, BusState s);
  /// The settings of a bus's fit at this horizon.
  [[nodiscard]] StatFitParams fit_params(int horizon_s) const noexcept;
  /// Buses whose held state was restored, since construction (diagnostics, tests).
  [[nodiscard]] std::size_t restored() const noexcept { return restored_; }

 private:
  StatFitParams params_;
  bool shadow_gate_;
  std::vector<std::unique_ptr<StatFitter>> fitters_;
  std::vector<std::unique_ptr<StatShadowGate>> gates_;
  std::vector<std::optional<BusState>> held_;  ///< restore() until the bus's next tick
  std::size_t restored_ = 0;
  HorizonPlanner planner_;  ///< the shadow plans' solver, shared by the buses
  std::array<double, StatModel::kSlots> delta_W_{};
  std::int64_t last_s_ = -1;
};

}  // namespace eqd::core
