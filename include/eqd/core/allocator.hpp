#pragma once
/// @file allocator.hpp
/// Split a bus's total equalization command among its buffers by headroom and window position.
/// Pure, allocation-free; any thread.

#include <cstddef>
#include <cstdint>
#include <limits>

#include "eqd/core/device_limits.hpp"
#include "eqd/core/params.hpp"

namespace eqd::core {

/// Per-buffer window state that carries the hysteresis between cycles.
struct WindowState {
  bool charge_blocked = false;         ///< hit v_max; unblocks below v_max - hysteresis
  bool discharge_blocked = false;      ///< hit v_min; unblocks above v_min + hysteresis
  bool soc_charge_blocked = false;     ///< hit soc_max_pct; unblocks below it - kSocHysteresis_pct
  bool soc_discharge_blocked = false;  ///< hit soc_min_pct; unblocks above it + kSocHysteresis_pct
};

/// Hysteresis of the state-of-charge window (percentage points): after a buffer reached soc_max_pct
/// (soc_min_pct) it charges (discharges) again only this far inside. SoC is reported in whole or tenth
/// percent steps; one point keeps a buffer resting at its limit from toggling.
inline constexpr double kSocHysteresis_pct = 1.0;

/// Instantaneous headroom of one buffer (magnitudes, W).
struct Headroom {
  double charge_W = 0.0;
  double discharge_W = 0.0;
  double window_pos = 0.5;  ///< (V - v_min) / (v_max - v_min), clamped to [0, 1]
};

/// Update the window hysteresis from the measured voltage and, where the controller reports it, the
/// state of charge (soc_pct, %; NaN: not reported), and compute headroom. Safety first: at or beyond a
/// limit of either window the corresponding headroom is 0 at once. With a state of charge the window
/// position is its place in [soc_min_pct, soc_max_pct] (a battery's voltage says little of its charge:
/// LFP is flat), else the voltage's place in [v_min_V, v_max_V].
Headroom compute_headroom(const BufferLimits& lim, double voltage_V, double soc_pct, WindowState& w) noexcept;
/// The same for a controller that reports no state of charge.
inline Headroom compute_headroom(const BufferLimits& lim, double voltage_V, WindowState& w) noexcept {
  return compute_headroom(lim, voltage_V, std::numeric_limits<double>::quiet_NaN(), w);
}

/// The limits a buffer's headroom honours: `lim` with max_charge_W and max_discharge_W lowered to what
/// its device reports of its own (DeviceLimits; NaN: not reported, the configured limit alone), so that
/// the allocator asks a buffer for no more than its device takes and gives the rest to the others.
/// Pure; any thread.
[[nodiscard]] BufferLimits effective_limits(const BufferLimits& lim, const DeviceLimits& dev) noexcept;

/// compute_headroom() within the device's own limits as well: each direction's power limit is
/// min(configured, device) (effective_limits()).
inline Headroom compute_headroom(const BufferLimits& lim, const DeviceLimits& dev, double voltage_V, double soc_pct,
                                 WindowState& w) noexcept {
  return compute_headroom(effective_limits(lim, dev), voltage_V, soc_pct, w);
}

/// Distribute `total_W` (positive = charge) over n buffers. out_W[i] gets each buffer's setpoint,
/// never beyond its headroom. Charging prefers the emptiest buffers, discharging the fullest, so that
/// windows drift toward their middle. Returns the total actually allocated (may be less than asked when
/// headroom is short). `scratch` must have room for n entries.
double allocate(double total_W, const Headroom* headroom, std::size_t n, double* out_W, double* scratch) noexcept;

}  // namespace eqd::core
