// The predictor thread's side of the statistical forecasts. See stat_forecasts.hpp.
#include "eqd/core/stat_forecasts.hpp"

#include <algorithm>
#include <cmath>

#include "eqd/core/control_core.hpp"

namespace eqd::core {

StatForecasts::StatForecasts(std::size_t buses, const StatFitParams& p, bool shadow_gate)
    : params_(p), shadow_gate_(shadow_gate), fitters_(buses), gates_(buses), held_(buses) {}

std::optional<StatForecasts::BusState> StatForecasts::save(std::size_t b) const {
  if (b >= fitters_.size() || !fitters_[b] || !gates_[b]) return std::nullopt;
  BusState s{fitters_[b]->save(), gates_[b]->save()};
  if (s.fit.n == 0) return std::nullopt;
  return s;
}

StatFitParams StatForecasts::fit_params(int horizon_s) const noexcept {
  StatFitParams fp = params_;
  fp.horizon_s = horizon_s;
  fp.gate_h_s = std::min(params_.gate_h_s, horizon_s);
  return fp;
}

bool StatForecasts::restore(std::size_t b, BusState s) {
  if (b >= held_.size()) return false;
  StatFitter probe(fit_params(s.fit.horizon_s));
  StatShadowGate gate;
  // A second far from 0 for the probe: restore() cuts the history to the new clock's seconds.
  if (!probe.restore(s.fit, s.fit.n + 1) || !gate.restore(s.gate)) return false;
  held_[b] = std::move(s);
  return true;
}

void StatForecasts::tick(std::int64_t now_ns, ControlCore& core) {
  if (now_ns < 0) return;
  const std::int64_t sec = now_ns / 1'000'000'000;
  if (sec == last_s_) return;
  last_s_ = sec;
  for (std::size_t b = 0; b < fitters_.size() && b < core.bus_count(); ++b) {
    const BusSnapshot bs = core.bus(static_cast<BusIndex>(b));
    const BusParams& p = bs.params;
    if (!stat_forecast_acts(p)) {
      fitters_[b].reset();  // off: forget it, a later opt-in starts afresh
      gates_[b].reset();
      held_[b].reset();
      continue;
    }
    const int horizon_s = static_cast<int>(std::lround(p.forecast_horizon_s));
    if (!fitters_[b] || fitters_[b]->params().horizon_s != horizon_s) {
      fitters_[b] = std::make_unique<StatFitter>(fit_params(horizon_s));
      gates_[b] = std::make_unique<StatShadowGate>();
      // A state kept across a restart continues here (the gate only with its fit: its scores judged
      // that fit's path).
      if (held_[b] && fitters_[b]->restore(held_[b]->fit, sec) && gates_[b]->restore(held_[b]->gate)) ++restored_;
    }
    held_[b].reset();
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
