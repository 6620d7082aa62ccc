#pragma once
/// @file allocator.hpp
/// Split a bus's total equalization command among its buffers by headroom and window position.
/// Pure, allocation-free; any thread.

#include <cstddef>
#include <cstdint>

#include "eqd/core/params.hpp"

namespace eqd::core {

/// Per-buffer window state that carries the hysteresis between cycles.
struct WindowState {
  bool charge_blocked = false;     ///< hit v_max; unblocks below v_max - hysteresis
  bool discharge_blocked = false;  ///< hit v_min; unblocks above v_min + hysteresis
};

/// Instantaneous headroom of one buffer (magnitudes, W).
struct Headroom {
  double charge_W = 0.0;
  double discharge_W = 0.0;
  double window_pos = 0.5;  ///< (V - v_min) / (v_max - v_min), clamped to [0, 1]
};

/// Update the window hysteresis from the measured voltage and compute headroom. Safety first: at or
/// beyond a limit the corresponding headroom is 0 at once.
Headroom compute_headroom(const BufferLimits& lim, double voltage_V, WindowState& w) noexcept;

/// Distribute `total_W` (positive = charge) over n buffers. out_W[i] gets each buffer's setpoint,
/// never beyond its headroom. Charging prefers the emptiest buffers, discharging the fullest, so that
/// windows drift toward their middle. Returns the total actually allocated (may be less than asked when
/// headroom is short). `scratch` must have room for n entries.
double allocate(double total_W, const Headroom* headroom, std::size_t n, double* out_W, double* scratch) noexcept;

}  // namespace eqd::core
