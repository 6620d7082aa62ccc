#pragma once
/// @file stat_forecast_law.hpp
/// Benchmark prototype: eqd's core with a statistical forecast of each bus's free power (StatForecaster)
/// fed to it as the bus's learned path, in place of core::Predictor (docs/control-benchmark.md, "What was
/// tried (2026-12-04, late)"). The controllers' announcements are dropped on arrival. Not shipped.
///
/// Once per second the forecaster observes the bus's free power (the core's bus snapshot) and, while its
/// skill gate is open, publishes x(t) + its forecast change for every second of the bus's horizon, with
/// every test channel of the bus marked in the path (so the core replaces the whole free power by the
/// path). fresh: the forecast is made before the first cycle of each second and read by that cycle (as
/// if the fit ran off the control thread and the control thread evaluated it on its newest value);
/// otherwise after it, and read a second later (as the learned predictor's path).
///
/// law_gate: besides the forecast's own skill gate, a gate on what the plan does with it. A shadow
/// adaptive law runs on the same free power (the laws are feed-forward: what it would have commanded
/// does not depend on what the buffers did), and while the path is used, both are scored each second
/// by what they leave in the grid, |free(t) + command(t - 2 s)|, plus the planner's own travel and
/// reversal weights. When the plan's score has been above the shadow's over the last law_memory_s
/// (after law_min_s seconds of use), the path is withheld for law_pause_s, then tried again.
/// shadow_plan (instead of trials): a shadow planner plans every second over the statistical path from
/// its own last command, as the real one would, and is scored against the shadow adaptive law at all
/// times; the path is used while the shadow plan's score is below 0.95 × the shadow adaptive law's
/// (off again above 1.0 ×). No trial is needed, at one more plan a second.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "eqd/core/adaptive_law.hpp"
#include "eqd/core/control_core.hpp"
#include "eqd/core/horizon_planner.hpp"
#include "eqd/core/predictor.hpp"
#include "eqd/core/plan_board.hpp"
#include "eqd/sim/harness.hpp"
#include "laws/stat_forecast.hpp"

namespace eqd::bench {

class StatForecastCoreLaw final : public sim::RigLaw {
 public:
  struct LawGate {
    bool on = false;
    double memory_s = 300.0;
    double min_s = 120.0;
    double pause_s = 600.0;
    double margin = 0.1;             ///< the plan is withheld when its score is above the shadow's by this share
    double backoff_reset_s = 600.0;  ///< a trial used this long without failing resets the backoff
    bool shadow_plan = false;        ///< score a shadow planner at all times instead of trials
  };
  StatForecastCoreLaw(const core::CoreConfig& cfg, const StatForecastParams& p, bool fresh = true)
      : StatForecastCoreLaw(cfg, p, fresh, LawGate{false, 300.0, 120.0, 600.0, 0.1, 600.0, false}) {}
  StatForecastCoreLaw(const core::CoreConfig& cfg, const StatForecastParams& p, bool fresh, LawGate lg)
      : core_(cfg), plans_(cfg.buses.size()), fresh_(fresh), lg_(lg) {
    for (const core::BusParams& bp : cfg.buses) {
      StatForecastParams q = p;
      q.horizon_s = static_cast<int>(std::lround(bp.forecast_horizon_s));
      fc_.emplace_back(q);
    }
    shadow_.resize(cfg.buses.size());
    gs_.resize(cfg.buses.size());
    sp_.resize(cfg.buses.size());
  }
  void on_sample(std::size_t i, const core::Sample& s) noexcept override {
    core::Sample c = s;
    c.forecast_W = std::numeric_limits<float>::quiet_NaN();
    core_.sample_slot(static_cast<core::ChannelIndex>(i)).store(c);
  }
  void cycle(std::int64_t now_ns) noexcept override {
    const std::int64_t sec = now_ns / 1'000'000'000;
    const bool tick = sec != last_s_ && seen_cycle_;
    if (fresh_ && tick) forecast(sec);
    core_.cycle(now_ns);
    seen_cycle_ = true;
    if (lg_.on) step_shadows(now_ns);
    if (!fresh_ && tick) forecast(sec);
    if (predictor_) predictor_->tick(now_ns, core_);
    if (tick) last_s_ = sec;
    if (core_.plans()) plans_.serve(core_.plan_board());
  }
  /// Learned forecasts as well (core::Predictor ticked after every cycle, as LearningCoreLaw): where
  /// the predictor's last path for a bus is in use, it wins and the statistical path is not published.
  void enable_learning() { predictor_ = std::make_unique<core::Predictor>(core_.channel_count()); }
  [[nodiscard]] core::Command command(std::size_t i) const noexcept override {
    return core_.command_slot(static_cast<core::ChannelIndex>(i)).load();
  }
  [[nodiscard]] const char* name() const noexcept override { return "eqd-core+stat-forecast"; }
  void set_schedule(std::size_t bus, const core::BusSchedule& s) noexcept override {
    core_.set_schedule(static_cast<core::BusIndex>(bus), s);
  }
  /// Share of seconds with the gate open, per bus (diagnostics).
  [[nodiscard]] double open_share(std::size_t b) const noexcept {
    return ticks_ > 0 ? static_cast<double>(open_[b]) / static_cast<double>(ticks_) : 0.0;
  }

 private:
  /// Per bus: the shadow's and the bus's last commands (1 s ring) and the paired scores.
  struct GateState {
    std::array<double, 4> shadow_W{}, real_W{};
    double shadow_score = 0.0, plan_score = 0.0, used_s = 0.0;
    int shadow_dir = 0, real_dir = 0;
    std::int64_t paused_until = -1;
    int failures = 0;
    double rated_W = 0.0;
    double shadow_now_W = 0.0;
  };
  /// Per bus: the shadow planner's own command history and score.
  struct ShadowPlan {
    std::array<double, 4> cmd_W{};
    int dir = 0;
    double score = 0.0, adaptive_score = 0.0;
    std::int64_t n = 0;
    bool open = false;
  };
  bool shadow_plan_gate(std::size_t b, std::int64_t sec, const core::BusSnapshot& bs, bool stat_open) noexcept {
    GateState& g = gs_[b];
    ShadowPlan& sp = sp_[b];
    StatForecaster& f = fc_[b];
    const std::size_t k = static_cast<std::size_t>(sec % 4), k1 = static_cast<std::size_t>((sec + 3) % 4),
                      k2 = static_cast<std::size_t>((sec + 2) % 4);
    const double rated = std::max(g.rated_W, 1.0);
    const double flip_Ws = 0.02 * bs.params.tau_s * rated;
    const auto cost = [&](double now_W, double prev_W, double cmd2_W, int& dir) {
      double c = std::abs(bs.free_W + cmd2_W) + 0.2 * std::abs(now_W - prev_W);
      const int d = core::sign_of(now_W, 0.01 * rated);
      if (d != 0) {
        if (dir != 0 && d != dir) c += flip_Ws;
        dir = d;
      }
      return c;
    };
    // The shadow plan over the statistical path (whatever its gate says: it is scored at all times).
    const int n = f.params().horizon_s;
    for (int h = 1; h <= n; ++h) path_[static_cast<std::size_t>(h - 1)] = bs.free_W + f.delta(h);
    core::PlanRequest r;
    r.free_W = path_.data();
    r.n = n;
    r.target_W = bs.params.target_W;
    r.start_W = sp.cmd_W[k1];
    r.start_direction = sp.dir;
    r.lo_W = -bs.capacity_discharge_W;
    r.hi_W = bs.capacity_charge_W;
    r.slew_W_per_s = bs.params.slew_W_per_s > 0.0 ? bs.params.slew_W_per_s : rated / bs.params.tau_s;
    r.delay_s = 2;
    r.travel_weight_s = 0.2;
    r.flip_cost_Ws = flip_Ws;
    double cmd = sp.cmd_W[k1];
    if (r.hi_W > r.lo_W) {
      const core::PlanResult res = planner_.solve(r);
      if (res.ok) cmd = std::clamp(core::slew(sp.cmd_W[k1], res.first_W, r.slew_W_per_s), r.lo_W, r.hi_W);
    }
    int adir = g.shadow_dir;
    const double cp = cost(cmd, sp.cmd_W[k1], sp.cmd_W[k2], sp.dir);
    const double ca = cost(g.shadow_now_W, g.shadow_W[k1], g.shadow_W[k2], adir);
    g.shadow_dir = adir;
    sp.cmd_W[k] = cmd;
    g.shadow_W[k] = g.shadow_now_W;
    const double a = 1.0 / lg_.memory_s;
    sp.score += a * (cp - sp.score);
    sp.adaptive_score += a * (ca - sp.adaptive_score);
    ++sp.n;
    if (sp.n < static_cast<std::int64_t>(lg_.min_s)) return false;
    if (sp.open && sp.score > sp.adaptive_score) sp.open = false;
    if (!sp.open && sp.score < 0.95 * sp.adaptive_score) sp.open = true;
    return sp.open && stat_open;
  }
  void step_shadows(std::int64_t now_ns) noexcept {
    for (std::size_t b = 0; b < shadow_.size(); ++b) {
      const core::BusSnapshot bs = core_.bus(static_cast<core::BusIndex>(b));
      GateState& g = gs_[b];
      g.rated_W = std::max({g.rated_W, bs.capacity_charge_W, bs.capacity_discharge_W});
      core::LawInput in;
      in.now_ns = now_ns;
      in.mode = bs.status == core::BusStatus::saturated ? core::BusStatus::ok : bs.status;
      in.free_W = bs.free_W;
      in.eq_measured_W = bs.eq_measured_W;
      in.capacity_charge_W = bs.capacity_charge_W;
      in.capacity_discharge_W = bs.capacity_discharge_W;
      in.rated_W = g.rated_W;
      in.any_fresh = true;
      core::BusParams p = bs.params;
      p.use_forecast = false;
      g.shadow_now_W = shadow_[b].step(in, p).command_W;
    }
  }
  bool law_gate(std::size_t b, std::int64_t sec, const core::BusSnapshot& bs, bool stat_open) noexcept {
    GateState& g = gs_[b];
    const std::size_t k = static_cast<std::size_t>(sec % 4), k2 = static_cast<std::size_t>((sec + 2) % 4);
    const double real_W = bs.eq_commanded_W;
    // Scored with the planner's weights: 0.2 s of exchange per W of travel, 0.02 tau of the rating per
    // reversal (PlannedLaw::kTravelWeight_s, kFlipCostTaus).
    const auto cost = [&](double now_W, double prev_W, double cmd2_W, int& dir) {
      double c = std::abs(bs.free_W + cmd2_W) + 0.2 * std::abs(now_W - prev_W);
      const int d = core::sign_of(now_W, 0.01 * g.rated_W);
      if (d != 0) {
        if (dir != 0 && d != dir) c += 0.02 * bs.params.tau_s * g.rated_W;
        dir = d;
      }
      return c;
    };
    const double prev_s = g.shadow_W[static_cast<std::size_t>((sec + 3) % 4)];
    const double prev_r = g.real_W[static_cast<std::size_t>((sec + 3) % 4)];
    const double cs = cost(g.shadow_now_W, prev_s, g.shadow_W[k2], g.shadow_dir);
    const double cr = cost(real_W, prev_r, g.real_W[k2], g.real_dir);
    g.shadow_W[k] = g.shadow_now_W;
    g.real_W[k] = real_W;
    if (g.paused_until >= 0 && sec < g.paused_until) return false;
    if (g.paused_until >= 0) {  // a new trial
      g.paused_until = -1;
      g.shadow_score = g.plan_score = g.used_s = 0.0;
    }
    if (!stat_open) return false;
    const double a = 1.0 / lg_.memory_s;
    g.shadow_score += a * (cs - g.shadow_score);
    g.plan_score += a * (cr - g.plan_score);
    g.used_s += 1.0;
    if (g.used_s >= lg_.backoff_reset_s) g.failures = 0;  // a trial that held: the next pause is short again
    if (g.used_s >= lg_.min_s && g.plan_score > (1.0 + lg_.margin) * g.shadow_score) {
      // Backoff: each failed trial in a row doubles the pause (up to 16 x): a load the plan does not suit
      // (fast pulses) is tried less and less often.
      g.paused_until = sec + static_cast<std::int64_t>(lg_.pause_s * static_cast<double>(1 << std::min(g.failures, 4)));
      ++g.failures;
      ++pauses_;
      return false;
    }
    return true;
  }

  void forecast(std::int64_t sec) noexcept {
    const std::size_t nb = core_.bus_count();
    if (open_.size() != nb) open_.assign(nb, 0);
    ++ticks_;
    for (std::size_t b = 0; b < nb; ++b) {
      const core::BusSnapshot bs = core_.bus(static_cast<core::BusIndex>(b));
      StatForecaster& f = fc_[b];
      f.observe(sec, bs.free_W);
      core::LearnedAhead a;
      a.made_s = sec;
      a.horizon_s = static_cast<std::uint32_t>(f.params().horizon_s);
      a.present_W = bs.free_W;
      bool use = f.gate_open();
      if (lg_.on) use = lg_.shadow_plan ? shadow_plan_gate(b, sec, bs, use) : law_gate(b, sec, bs, use);
      // A learned path in use wins: leave it (and its channels' marks) as the predictor published it.
      if (predictor_ && core_.learned().ahead(b).channels > 0) continue;
      open_[b] += use ? 1 : 0;
      std::uint32_t n = 0;
      for (std::size_t i = 0; i < core_.channel_count(); ++i) {
        const core::ChannelSnapshot cs = core_.channel(static_cast<core::ChannelIndex>(i));
        if (cs.bus != b || cs.role != core::Role::test) continue;
        core_.learned().mark_path(i, sec, use);
        ++n;
      }
      if (use) {
        a.channels = n;
        for (int h = 1; h <= f.params().horizon_s && h < static_cast<int>(core::LearnedAhead::kSlots); ++h)
          a.delta_W[static_cast<std::size_t>(h)] = static_cast<float>(f.delta(h));
      }
      core_.learned().publish_ahead(b, a);
    }
  }

  core::ControlCore core_;
  core::PlanService plans_;
  std::vector<StatForecaster> fc_;
  std::vector<std::uint64_t> open_;
  std::uint64_t ticks_ = 0;
  std::int64_t last_s_ = -1;
  bool seen_cycle_ = false;
  bool fresh_;
  LawGate lg_;
  std::vector<core::AdaptiveLaw> shadow_;
  std::vector<GateState> gs_;
  std::vector<ShadowPlan> sp_;
  std::unique_ptr<core::Predictor> predictor_;
  core::HorizonPlanner planner_;
  std::array<double, core::HorizonPlanner::kMaxSteps> path_{};
  std::uint64_t pauses_ = 0;
};

}  // namespace eqd::bench
