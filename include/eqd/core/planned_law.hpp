#pragma once
/// @file planned_law.hpp
/// Law `planned` (issue #15 item 2; docs/control.md, "The receding-horizon planner"): where the path
/// of the free power is known (announced or learned; LawInput::free_path_W), every update asks the
/// planner (PlanBoard) for the buffers' plan over that path — grid exchange + a travel weight + a charge
/// per reversal, under the slew limit, the capacity and the 2 s effect delay — and commands the plan's
/// first step when the answer comes (slew-limited again, clamped to the capacity). The plan is solved
/// off the control thread (PlanService: eqd's planner thread). It is the adaptive law, restarted
/// bumplessly from the measured power, wherever no path is known, the bus is not in mode ok, there is no
/// board, or the planner has not answered the last two asks (late or stopped); at a travel weight above
/// its own it holds small moves back (holds_small_moves).
/// Thread-safety: not thread-safe (BusLaw).

#include <cstddef>

#include "eqd/core/adaptive_law.hpp"
#include "eqd/core/bus_law.hpp"
#include "eqd/core/plan_board.hpp"

namespace eqd::core {

class PlannedLaw final : public BusLaw {
 public:
  /// Delay between a command and its effect (link, dead time, converter response), as the adaptive law's.
  static constexpr int kEffectDelay_s = 2;
  // Setpoint travel in the plan's objective: the bus's BusParams::plan_travel_weight_s.
  /// A reversal in the plan costs this × tau_s seconds of the buffers' full rating (15 s, 6 kW: 1.8 kJ).
  /// Drive cycle: 0 → 189 flips/h at 0.108 of the exchange, 0.02 → 53 at 0.167, 0.05 → 43 at 0.195;
  /// the bound itself flips 178 times an hour there.
  static constexpr double kFlipCostTaus = 0.02;
  /// Asks in a row without an answer before the law falls back to the adaptive law.
  static constexpr int kMaxUnanswered = 2;

  /// Whether the fallback (and the statistical path's shadow of it) holds small moves back
  /// (AdaptiveLaw::hold_small_moves): in balance mode, where the bus weighs travel above the adaptive
  /// law's own score does, so the default 8 s does and the 0.2 s that a lab announcing its programs
  /// sets does not. Never in caps mode: there a held move would leave the net above a cap (a bill's
  /// quarter hour) for up to tau_s / 2.
  [[nodiscard]] static constexpr bool holds_small_moves(const BusParams& p) noexcept {
    return p.mode != BusMode::caps && p.plan_travel_weight_s > AdaptiveLaw::kTravelWeight_s;
  }

  /// board: where to ask (nullptr: never plans, i.e. the adaptive law); bus: this law's bus on it.
  explicit PlannedLaw(PlanBoard* board = nullptr, std::size_t bus = 0) noexcept : board_(board), bus_(bus) {}

  LawOutput step(const LawInput& in, const BusParams& p) noexcept override;
  [[nodiscard]] LawCounters counters() const noexcept override { return counters_; }
  [[nodiscard]] const char* name() const noexcept override { return "planned"; }
  /// Whether the last command came from a plan (false: the adaptive law), for tests and diagnostics.
  [[nodiscard]] bool planning() const noexcept { return planning_; }

 private:
  LawOutput fallback(const LawInput& in, const BusParams& p) noexcept;
  void ask(const LawInput& in, const BusParams& p, const Capacity& cap) noexcept;
  void account(const LawOutput& out) noexcept;

  PlanBoard* board_;
  std::size_t bus_;
  AdaptiveLaw fallback_;
  bool planning_ = false;   ///< the last command came from a plan (else fallback_ drives)
  double command_W_ = 0.0;  ///< the last command, whoever computed it
  int direction_ = 0;
  std::int64_t last_ask_ns_ = -1;
  std::int64_t pending_ns_ = -1;  ///< asked_ns of the ask not answered yet (-1: none)
  int unanswered_ = 0;
  double max_step_W_ = 0.0;  ///< slew allowance of the pending ask's update
  LawCounters counters_{};
};

}  // namespace eqd::core
