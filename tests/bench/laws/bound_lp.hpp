#pragma once
/// @file bound_lp.hpp
/// Lower bound on the grid energy exchange of one bus: a linear program with perfect foresight of the
/// free-power trace, under the buffers' capacity, the same slew limit as eqd's auto slew and the
/// buffers' energy window. Solved with GLPK. Benchmark code; any thread, not reentrant on one problem.

#include <string>
#include <vector>

namespace eqd::bench {

/// The bus as the bound sees it (bus side, lossless buffers: a relaxation, so still a lower bound).
struct BoundInput {
  std::vector<double> free_W;       ///< free power per step (bus side)
  double dt_s = 1.0;                ///< step of free_W
  double charge_max_W = 0.0;        ///< sum of buffers' charge rating, bus side
  double discharge_max_W = 0.0;     ///< sum of buffers' discharge rating, bus side (magnitude)
  double slew_W_per_s = 0.0;        ///< max |change| of the total per second
  double energy_charge_J = 0.0;     ///< energy the buffers can still take before their window's top
  double energy_discharge_J = 0.0;  ///< energy they can give before their window's bottom
  double flip_threshold_W = 0.0;    ///< |total| below this does not count as a direction (as the harness)
};

/// The optimal schedule and its figures, computed on the same grid as the input.
struct BoundResult {
  bool ok = false;
  std::string message;           ///< solver status when !ok
  std::vector<double> eq_W;      ///< optimal total buffer power per step
  double exchange_J = 0.0;       ///< sum |free + eq| dt at the optimum
  double free_exchange_J = 0.0;  ///< sum |free| dt (no equalization, same grid)
  double residual_rms_W = 0.0, residual_peak_W = 0.0;
  double flips = 0.0;     ///< direction reversals of eq_W
  double travel_W = 0.0;  ///< sum |change| of eq_W
  double solve_s = 0.0;   ///< wall time of the solver
  [[nodiscard]] double exchange_ratio() const noexcept {
    return free_exchange_J > 0.0 ? exchange_J / free_exchange_J : 1.0;
  }
};

/// Minimise sum |free_t + E_t| dt (+ a tiny actuation tie-breaker) over the totals E_t, subject to
/// -discharge_max <= E_t <= charge_max, |E_t - E_{t-1}| <= slew dt (E_{-1} = 0) and the cumulative
/// energy staying within [-energy_discharge, energy_charge].
BoundResult solve_bound(const BoundInput& in);

}  // namespace eqd::bench
