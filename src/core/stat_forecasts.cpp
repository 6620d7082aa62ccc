// The predictor thread's side of the statistical forecasts. See stat_forecasts.hpp.
#include "eqd/core/stat_forecasts.hpp"

#include <algorithm>
#include <cmath>

#include "eqd/core/control_core.hpp"

namespace eqd::core {

StatForecasts::StatForecasts(std::size_t buses, const StatFitParams& p, bool shadow_gate)
    : params_(p), shadow_gate_(shadow_gate), fitters_(buses), gates_(buses) {}

void StatForecasts::tick(std::int64_t now_ns, ControlCore& core) {
  if (now_ns < 0) return;
  const std::int64_t sec = now_ns / 1'000'000'000;
  if (sec == last_s_) return;
  last_s_ = sec;
  for (std::size_t b = 0; b < fitters_.size() && b < core.bus_count(); ++b) {
    const BusSnapshot bs = core.bus(static_cast<BusIndex>(b));
    const BusParams& p = bs.params;
    if (!(p.stat_forecast && p.use_forecast && p.law == LawKind::planned)) {
      fitters_[b].reset();  // off: forget it, a later opt-in starts afresh
      gates_[b].reset();
      continue;
    }
    const int horizon_s = static_cast<int>(std::lround(p.forecast_horizon_s));
    if (!fitters_[b] || fitters_[b]->params().horizon_s != horizon_s) {
      StatFitParams fp = params_;
      fp.horizon_s = horizon_s;
      fp.gate_h_s = std::min(params_.gate_h_s, horizon_s);
      fitters_[b] = std::make_unique<StatFitter>(fp);
      gates_[b] = std::make_unique<StatShadowGate>();
    }
    // The snapshot's free power is the last cycle's (with the meter trim), what the law works with.
    StatFitter& f = *fitters_[b];
    f.observe(sec, bs.free_W);
    StatModel m = f.model();
    if (shadow_gate_) {
      for (int h = 1; h <= horizon_s; ++h) delta_W_[static_cast<std::size_t>(h)] = f.delta_W(h);
      m.shadow_open = gates_[b]->tick(now_ns, bs, delta_W_.data(), horizon_s, planner_);
      m.usable = m.skill_open && m.shadow_open;
    }
    core.stat_model_slot(static_cast<BusIndex>(b)).store(m);
  }
}

}  // namespace eqd::core
