#pragma once
/// @file planned_law.hpp
/// Law `planned` (issue #15 item 2; docs/control.md, "The receding-horizon planner"): where the path
/// of the free power is known (announced or learned; LawInput::free_path_W), every update plans the
/// buffers' total over that path with HorizonPlanner — grid exchange + a travel weight + a charge per
/// reversal, under the slew limit, the capacity and the 2 s effect delay — and commands the plan's first
/// step (slew-limited again, clamped to the capacity); where no path is known, or the bus is not in
/// mode ok, it is the adaptive law (restarted bumplessly from the measured power each time it takes over).
///
/// Today the plan is computed inside step(), on the thread that steps the law: bounded (about 2·10^5
/// grid operations per update for a 30 s path) and allocation-free, but not yet off the control thread
/// as the issue asks; that is why the law is not in the config's registry yet and runs in the benchmark
/// only (CoreConfig::make_law).
/// Thread-safety: not thread-safe (BusLaw).

#include "eqd/core/adaptive_law.hpp"
#include "eqd/core/bus_law.hpp"
#include "eqd/core/horizon_planner.hpp"

namespace eqd::core {

class PlannedLaw final : public BusLaw {
 public:
  /// Delay between a command and its effect (link, dead time, converter response), as the adaptive law's.
  static constexpr int kEffectDelay_s = 2;
  /// Setpoint travel in the plan's objective: W·s of exchange per W of travel. Chosen on the benchmark
  /// (slow rig, drive cycle, pulses, demo, lab A; 2026-12-03): 0 → 0.2 costs at most 0.002 of exchange;
  /// it breaks ties between equal plans toward the calmer one.
  static constexpr double kTravelWeight_s = 0.2;
  /// A reversal in the plan costs this × tau_s seconds of the buffers' full rating (15 s, 6 kW: 1.8 kJ).
  /// Drive cycle: 0 → 189 flips/h at 0.108 of the exchange, 0.02 → 53 at 0.167, 0.05 → 43 at 0.195;
  /// the bound itself flips 178 times an hour there.
  static constexpr double kFlipCostTaus = 0.02;

  LawOutput step(const LawInput& in, const BusParams& p) noexcept override;
  [[nodiscard]] LawCounters counters() const noexcept override { return counters_; }
  [[nodiscard]] const char* name() const noexcept override { return "planned"; }
  /// Whether the last step followed a plan (false: the adaptive law), for tests and diagnostics.
  [[nodiscard]] bool planning() const noexcept { return planning_; }

 private:
  void account(const LawOutput& out) noexcept;

  AdaptiveLaw fallback_;
  HorizonPlanner planner_;
  bool planning_ = false;
  double command_W_ = 0.0;  ///< the last command, whoever computed it
  int direction_ = 0;
  std::int64_t last_update_ns_ = -1;
  LawCounters counters_{};
};

}  // namespace eqd::core
