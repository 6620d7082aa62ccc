#pragma once
/// @file stat_core_law.hpp
/// eqd's core with its statistical short-term forecasts as shipped (core::StatForecasts on the
/// "predictor thread", core::StatPath in the control cycle; issue #15), for bench_laws' columns
/// planned_stat_core and planned_learned_stat_core: law `planned` with stat_forecast on every bus,
/// nothing announced (the controllers' announcements are dropped on arrival). The harness only ticks
/// the fit and publishes; the core evaluates the path.
///
/// Timing as in the daemon: the predictor thread wakes just after a whole second, so the fit is ticked
/// after the cycle (on that cycle's snapshot) and its model reaches the control thread at the first
/// cycle of the next second, which evaluates it on its own newest free power. fit_first: ticked before
/// the first cycle of each second instead (the order of the harness prototype, removed; reproducible
/// at commit d8ecec9), for the comparison.

#include <limits>
#include <memory>

#include "eqd/core/control_core.hpp"
#include "eqd/core/plan_board.hpp"
#include "eqd/core/predictor.hpp"
#include "eqd/core/stat_forecasts.hpp"
#include "eqd/sim/harness.hpp"

namespace eqd::bench {

class StatCoreLaw final : public sim::RigLaw {
 public:
  /// learn: a core::Predictor as well (learned paths win over the statistical one, in the core).
  /// shadow_gate false: the skill gate alone.
  StatCoreLaw(const core::CoreConfig& cfg, bool learn, bool fit_first = false, bool shadow_gate = true)
      : core_(with_stat(cfg, learn)),
        stat_(cfg.buses.size(), core::StatFitParams{}, shadow_gate),
        plans_(cfg.buses.size()),
        fit_first_(fit_first) {
    if (learn) predictor_ = std::make_unique<core::Predictor>(cfg.channels.size());
  }
  void on_sample(std::size_t i, const core::Sample& s) noexcept override {
    core::Sample c = s;
    c.forecast_W = std::numeric_limits<float>::quiet_NaN();
    core_.sample_slot(static_cast<core::ChannelIndex>(i)).store(c);
  }
  void cycle(std::int64_t now_ns) noexcept override {
    if (fit_first_ && seen_cycle_) stat_.tick(now_ns, core_);
    core_.cycle(now_ns);
    seen_cycle_ = true;
    if (!fit_first_) stat_.tick(now_ns, core_);
    if (predictor_) predictor_->tick(now_ns, core_);
    if (core_.plans()) plans_.serve(core_.plan_board());
  }
  [[nodiscard]] core::Command command(std::size_t i) const noexcept override {
    return core_.command_slot(static_cast<core::ChannelIndex>(i)).load();
  }
  [[nodiscard]] const char* name() const noexcept override { return "eqd-core+stat"; }
  void set_schedule(std::size_t bus, const core::BusSchedule& s) noexcept override {
    core_.set_schedule(static_cast<core::BusIndex>(bus), s);
  }

 private:
  static core::CoreConfig with_stat(core::CoreConfig c, bool learn) {
    for (core::BusParams& p : c.buses) {
      p.law = core::LawKind::planned;
      p.use_forecast = true;
      p.learn_forecast = learn;
      p.stat_forecast = true;
    }
    return c;
  }
  core::ControlCore core_;
  core::StatForecasts stat_;
  core::PlanService plans_;
  std::unique_ptr<core::Predictor> predictor_;
  bool fit_first_;
  bool seen_cycle_ = false;
};

}  // namespace eqd::bench
