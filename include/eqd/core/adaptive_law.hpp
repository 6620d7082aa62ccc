#pragma once
/// @file adaptive_law.hpp
/// Law `adaptive`: for loads nobody announces that change faster than tau_s (drive cycles, short pulses),
/// where eqd's damped law gives back most of the benefit (docs/control.md, "The adaptive law").
/// A bank of first-order trackers of the bus's aim with time constants 0.65, 0.8 and 2 × tau_s that
/// refuse small direction reversals (sign hysteresis: |aim| within 10 % of the rating, for up to
/// 3 × tau_s), one at 0.65 × tau_s that does not, and a split tracker (0.3 of a tracker at tau_s / 3
/// plus 0.7 of one at 4 × tau_s, gated like the first three); each is scored on the bus's own recent
/// history by what it *would* have left in the grid (|desired − its output from the dead time before|, plus a
/// weight on its setpoint travel and a charge for each reversal), and the law follows the best one,
/// switching only on a clear margin. Like every law it runs inside the core's
/// mode, headroom, windows and clamp (bus_law.hpp); its own output is slew-limited to rated / tau_s.
/// No allocation, no I/O; state is fixed-size.

#include <array>
#include <cstdint>

#include "eqd/core/bus_law.hpp"
#include "eqd/core/params.hpp"

namespace eqd::core {

/// The adaptive law (see the file comment). Not thread-safe (BusLaw).
class AdaptiveLaw final : public BusLaw {
 public:
  static constexpr int kExperts = 5;
  /// Time constants of the trackers, × tau_s (of the fast part, for the split tracker). The second one
  /// alone settles an 80 % step to ±2 % in 3 tau_s (0.8 · ln(40) < 3), the law's starting choice; the
  /// first follows drive cycles, the third rides out pulses shorter than tau_s; the fourth is the first
  /// without the reversal gate; the fifth is the split tracker (kFastShare, kSlowTauFactor).
  static constexpr std::array<double, kExperts> kTauFactor{0.65, 0.8, 2.0, 0.65, 1.0 / 3.0};
  /// Share of the fast part in each tracker's output; the rest follows the aim with kSlowTauFactor ×
  /// tau_s. A sum of many drive-cycle channels swings within seconds around a level that moves over
  /// minutes: following the swings fully costs travel in proportion to what is left in the grid (a
  /// first-order tracker's rate is its error / tau), and 2 s of dead time make the late part of each
  /// swing useless or harmful; following a third of them quickly and the level slowly leaves less in
  /// the grid at less travel than any single time constant (lab_drive_a / _b, tau 15 s, measured only:
  /// alone 0.818 / 0.841 at 102 / 105 kW, in the bank 0.817 / 0.840 at 116 / 108 kW, against the plain
  /// tracker's 0.838 / 0.865 at 126 / 135 kW; held-out lab_drive_c 0.886 against 0.915). Share 0.3,
  /// tau_s / 3 and 4 tau_s are the middle of the sweep in docs/control-benchmark.md ("What was tried
  /// (2026-12-04)"): a faster fast part (2 s) would sit at the rigs' dead time. 1 = a plain tracker.
  static constexpr std::array<double, kExperts> kFastShare{1.0, 1.0, 1.0, 1.0, 0.3};
  static constexpr std::array<double, kExperts> kSlowTauFactor{1.0, 1.0, 1.0, 1.0, 4.0};
  static constexpr int kStartExpert = 1;
  static constexpr int kSlowestExpert = 2;
  static constexpr int kUngatedExpert = 3;
  static constexpr int kSplitExpert = 4;
  /// A reversal of a tracker's direction is held at 0 W while |aim| is within this share of the
  /// buffers' rating, for at most kDwellTaus × tau_s: drive-cycle flicker around zero does not flip the
  /// buffers, a small reversal that persists (a CC-CV taper against a CP discharge) still goes through.
  /// The ungated tracker (dwell 0) wins where a rig's whole load is small against its buffers and
  /// changes in clean steps: there every reversal is "small", and waiting 3 tau_s at each one left a
  /// third more in the grid (slow_cccv_cp: 0.048 against 0.036; docs/control-benchmark.md).
  static constexpr double kHysteresisFraction = 0.10;
  static constexpr std::array<double, kExperts> kDwellTaus{3.0, 3.0, 3.0, 0.0, 3.0};
  /// Each reversal of a tracker's output is charged in its score as kFlipCostTaus × tau_s seconds of
  /// the buffers' full rated power (15 s, 6 kW: 4.5 kJ), so that the ungated tracker takes over only where
  /// its reversals buy more than they cost, not on drive-cycle flicker.
  static constexpr double kFlipCostTaus = 0.05;
  /// Scoring: exponentially weighted over this window of the bus's history.
  static constexpr double kScoreWindow_s = 600.0;
  /// Weight of setpoint travel in the score (W of exchange per W/s of travel): 2 s.
  static constexpr double kTravelWeight_s = 2.0;
  /// A tracker takes over only when its score is this much (relative) below the current one's.
  static constexpr double kSwitchMargin = 0.05;
  /// Delay between a command and its effect on the grid in the counterfactual (link, dead time and
  /// response of a converter: about 2 s), in seconds; at most kHistory - 1 updates.
  static constexpr double kEffectDelay_s = 2.0;
  static constexpr int kHistory = 64;

  /// Small-move hold, off in law `adaptive` itself: a change of the command smaller than
  /// kSmallMoveFraction of the buffers' rating waits, for at most kSmallMoveHoldTaus × tau_s, until the
  /// trackers ask for a larger one. Law `planned` turns it on for its fallback where a bus in balance
  /// mode weighs travel above this law's own kTravelWeight_s (plan_travel_weight_s, default 8 s;
  /// PlannedLaw::holds_small_moves): a sum of many channels jitters by a few hundred W each second,
  /// and a tracker that follows each of it spends travel on moves that the next second takes back
  /// (demo rig, the planner's fallback: 257 -> 233 kW for 0.274 -> 0.275 of the exchange;
  /// docs/control.md, "The receding-horizon planner"). The time limit keeps a small standing error
  /// from lasting: held without it, the slow CC-CV/CP rig left 0.055 instead of 0.036 in the grid;
  /// held for at most tau_s / 2, 0.039. Nothing is held while the law follows its slowest tracker:
  /// that one already rides out pulses faster than tau_s, and holding its small steady moves only
  /// added error (8 s pulse trains, learning off: 0.225 -> 0.231).
  static constexpr double kSmallMoveFraction = 0.01;
  static constexpr double kSmallMoveHoldTaus = 0.5;
  void hold_small_moves(bool on) noexcept { hold_small_moves_ = on; }

  LawOutput step(const LawInput& in, const BusParams& p) noexcept override;
  [[nodiscard]] LawCounters counters() const noexcept override { return counters_; }
  [[nodiscard]] const char* name() const noexcept override { return "adaptive"; }
  /// The tracker the law follows now (0..kExperts-1), for tests and diagnostics.
  [[nodiscard]] int current_expert() const noexcept { return current_; }

 private:
  struct Expert {
    double state_W = 0.0;   ///< first-order tracker state (the fast part, for the split tracker)
    double slow_W = 0.0;    ///< the split tracker's slow part (others: unused)
    double output_W = 0.0;  ///< after the reversal gate and slew limit
    int direction = 0;      ///< sign of its last non-zero output
    std::int64_t reversal_since_ns = -1;
    double score_W = 0.0;                      ///< weighted counterfactual exchange + travel cost
    std::array<double, kHistory> history_W{};  ///< its outputs, one per update
  };
  void reset(double value_W) noexcept;
  /// What every tracker sees in one update.
  struct UpdateIn {
    double aim_W, desired_W, step_s, max_step_W, hysteresis_W, flip_cost_Ws, lo_W, hi_W;
    std::int64_t now_ns;
    int delay;
  };
  void update_expert(Expert& e, std::size_t k, double tau_s, const UpdateIn& u) noexcept;

  std::array<Expert, kExperts> experts_{};
  int current_ = kStartExpert;
  std::uint64_t updates_seen_ = 0;  ///< updates since the last reset (history fill)
  double command_W_ = 0.0;
  int direction_ = 0;
  std::int64_t last_update_ns_ = -1;
  LawCounters counters_{};
  bool hold_small_moves_ = false;
  double held_s_ = 0.0;  ///< how long a small move has been held back
};

}  // namespace eqd::core
