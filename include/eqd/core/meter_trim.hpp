#pragma once
/// @file meter_trim.hpp
/// The slow meter trim of one bus (issue #19, opt-in `meter.trim`): what the channels' samples do not
/// see (a load nobody configured or sampled, converter losses), estimated as a first-order low-pass of
/// the grid meter's difference measured - computed, and added to the bus's free power as a bias so that
/// the buffers cover it too. docs/control.md ("Meter trim") says why this is stable: the buffers'
/// response changes the measured and the computed net alike, so the difference (and the bias) does not
/// depend on what the buffers do, except through the skew between the meter's sampling and the
/// channels' (which the slow filter averages out).
///
/// Freeze rules, each for a reason:
/// - It integrates only while the meter's reading is fresh and comparable with a computed net (the same
///   `comparable` that MeterCheck judges on): a stale reading or net would integrate an old difference.
/// - While it is not comparable the bias holds for `hold_s` (a lost reading or two must not drop the
///   compensation and step the buffers), then decays to 0 W with `tau_s`: an unmeasured bias must not
///   stay forever, and a decay rather than a step moves the buffers as gently as the trim came in.
/// - |bias| never exceeds `max_W` (the filter's state itself is clamped, so it does not wind up): with a
///   meter of the wrong sign the difference grows with the bias (positive feedback) and only this bound
///   holds it; MeterCheck still reports the disagreement.
/// - No jump limiter: the filter is slow. One sample moves the bias by (1 - e^(-dt/tau_s)) of the gap
///   between the difference and the bias (at 1 Hz and tau_s 120 s: 0.8 %, a 10 kW jump moves it 83 W),
///   and dt is capped at kMaxStep_s so that a stalled thread's one late sample cannot move it more.
///
/// Thread-safety: MeterTrim is plain state, owned by one thread (the meter's I/O thread in eqd); no
/// I/O, no allocation. MeterTrimValue is the trivially copyable value it publishes to the control core
/// (ControlCore::meter_trim_slot(), a Seqlock).

#include <cstdint>

namespace eqd::core {

/// Settings of the trim. Plain data.
struct MeterTrimParams {
  double tau_s = 120.0;   ///< time constant of the filter and of the decay
  double max_W = 2000.0;  ///< bound on |bias| (> 0)
  double hold_s = 5.0;    ///< how long the bias holds once the meter is not comparable (eqd: max_age_ms)
};

/// Where the trim stands. The names are the control API's and eqctl's (to_string).
enum class MeterTrimState : std::uint8_t {
  off,       ///< meter.trim is false (the state of a bus without trim; MeterTrim itself never says it)
  waiting,   ///< no comparable reading yet, or decayed to 0 W
  tracking,  ///< integrating the difference
  clamped,   ///< integrating, at the bound max_W
  holding,   ///< not comparable for less than hold_s: the bias holds
  decaying,  ///< not comparable for longer: the bias decays to 0 W
};
[[nodiscard]] const char* to_string(MeterTrimState s) noexcept;

/// What the meter's thread publishes to the control thread. Trivially copyable (Seqlock payload).
struct MeterTrimValue {
  double bias_W = 0.0;        ///< added to the bus's free power (eqd's sign: + = drawn from the grid)
  double max_W = 0.0;         ///< the bound it was computed under (the control thread clamps again)
  std::int64_t stamp_ns = 0;  ///< monotonic time of the update (0: never published)
  std::int64_t valid_ns = 0;  ///< older than this (by the control thread's clock), the bias counts as 0 W
};

/// The bias the control thread applies at now_ns: v.bias_W clamped to +-v.max_W, or 0 W when v was
/// never published, is older than v.valid_ns (the meter's thread stalled) or is not finite. Any thread.
[[nodiscard]] double applied_trim_W(const MeterTrimValue& v, std::int64_t now_ns) noexcept;

class MeterTrim {
 public:
  /// Longest step the filter integrates or decays over at once (the longest poll period, poll_hz 0.1).
  static constexpr double kMaxStep_s = 10.0;

  explicit MeterTrim(MeterTrimParams p = {}) noexcept : p_(p) {}

  /// One update at now_ns (any monotonic clock, non-decreasing), every poll period whether the meter
  /// answered or not. `comparable`: the meter's reading is valid and fresh and a computed net is there
  /// (MeterCheck's `comparable`); difference_W = measured - computed (eqd's sign).
  void update(std::int64_t now_ns, bool comparable, double difference_W) noexcept;

  /// The bias (eqd's sign: + = power drawn from the grid that the channels do not see).
  [[nodiscard]] double bias_W() const noexcept { return bias_W_; }
  [[nodiscard]] MeterTrimState state() const noexcept { return state_; }
  [[nodiscard]] const MeterTrimParams& params() const noexcept { return p_; }

 private:
  MeterTrimParams p_;
  double bias_W_ = 0.0;
  std::int64_t last_ns_ = -1;             ///< time of the previous update (-1: none)
  std::int64_t last_comparable_ns_ = -1;  ///< time of the last comparable update (-1: none)
  MeterTrimState state_ = MeterTrimState::waiting;
};

}  // namespace eqd::core
