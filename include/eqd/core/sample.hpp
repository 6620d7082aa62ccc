#pragma once
/// @file sample.hpp
/// What eqd knows of one channel at one instant, and what it asks of it.

#include <cstddef>
#include <cstdint>
#include <limits>

namespace eqd::core {

/// Working state of a channel as reported by its controller (or `offline` when eqd has no link).
enum class ChannelState : std::uint8_t {
  idle = 0,
  running = 1,  ///< running its own test schedule (test channel)
  paused = 2,
  fault = 3,
  equalizing = 4,  ///< running the working-condition-simulation step, following eqd's setpoint
  offline = 5,     ///< no link to the controller / never sampled
};

/// Human name of a state ("idle", "running", ...). Any thread.
const char* to_string(ChannelState s) noexcept;

/// One reading of a channel. Trivially copyable; published through a Seqlock.
/// Sign: positive power_W/current_A = energy from the bus into the battery (charging).
struct Sample {
  static constexpr std::uint32_t kNoIndex = 0xFFFF'FFFFu;  ///< cycle_index not reported
  static constexpr std::uint16_t kNoStep = 0xFFFFu;        ///< step_index not reported
  double voltage_V = 0.0;
  double current_A = 0.0;
  double power_W = 0.0;
  std::int64_t controller_time_ms = 0;  ///< controller's own clock (0 if it has none)
  std::int64_t receive_time_ns = 0;     ///< eqd monotonic clock when the reading arrived
  std::uint32_t sequence = 0;           ///< controller's sample counter (wraps)
  /// Test program position, where the controller reports it (cyclers number the steps of a program and
  /// count its passes): the learned predictor keys a channel's history by (cycle, step, time in step).
  /// kNoIndex = not reported. A channel whose controller reports them starts a new step when either
  /// value changes.
  std::uint32_t cycle_index = kNoIndex;
  // forecast_W and soc_pct share the aligned word at offset 48: the control cycle's pass 1 loads them
  // together from the sample it has just copied word by word (Seqlock::try_load), and a load that
  // straddles two of those word stores cannot be forwarded from them (with soc_pct at offset 56 and
  // forecast_W at 44, every test channel paid that stall: bench_core's cycle 1.6 -> 2.9 x the bare pass).
  /// Announced schedule: the battery-side power the controller expects this channel to draw
  /// forecast_horizon_s after this sample (from its test program). NaN = nothing announced; the law then
  /// assumes the present power persists. A float so that Sample fits one 64-byte cache line.
  float forecast_W = std::numeric_limits<float>::quiet_NaN();
  /// The battery's state of charge as its controller reports it, % (NaN: not reported). A buffer's
  /// headroom then also honours its soc_min_pct..soc_max_pct window (compute_headroom()).
  float soc_pct = std::numeric_limits<float>::quiet_NaN();
  std::uint16_t step_index = kNoStep;
  std::uint16_t fault_code = 0;  ///< controller-specific, 0 = none
  ChannelState state = ChannelState::offline;
  bool equalization_mode = false;  ///< controller says the channel is in equalization mode
  bool valid = false;              ///< false: link error, exception, NaN or out-of-range value
};
static_assert(sizeof(Sample) <= 64, "Sample is copied through a seqlock on every poll: keep it one cache line");
static_assert(offsetof(Sample, forecast_W) % 8 == 0 && offsetof(Sample, soc_pct) == offsetof(Sample, forecast_W) + 4,
              "forecast_W and soc_pct share one aligned word (see the comment at forecast_W)");

/// What eqd asks of one channel. Trivially copyable; published through a Seqlock (latest wins).
struct Command {
  double setpoint_W = 0.0;  ///< power to follow while in equalization mode
  /// When the control thread computed or last confirmed this command (its monotonic clock, ns). The
  /// control thread re-confirms a live command at a quarter of its liveness bound; a link sends or
  /// refreshes an equalize command only while it is younger than that bound and its lease, so that a
  /// command from before a stall of the control thread (or of the whole process) is never sent again.
  std::int64_t issued_ns = 0;
  std::uint32_t sequence = 0;  ///< incremented by the control thread on every new command
  std::uint32_t lease_ms = 0;  ///< validity at the controller; the I/O thread refreshes before expiry
  bool equalize = false;       ///< true: enter/stay in equalization mode; false: stop (leave it)
};

}  // namespace eqd::core
