#pragma once
/// @file snapshot.hpp
/// What the control thread publishes for readers (metrics, control API, tests). All trivially copyable.

#include <array>
#include <cstdint>
#include <limits>

#include "eqd/core/allocator.hpp"
#include "eqd/core/bus_law.hpp"
#include "eqd/core/device_limits.hpp"
#include "eqd/core/params.hpp"
#include "eqd/core/sample.hpp"
#include "eqd/core/valley_fill.hpp"

namespace eqd::core {

/// Role of a channel as the control thread sees it.
enum class Role : std::uint8_t {
  test = 0,          ///< read only; counts in free power
  pending = 1,       ///< assigned, waiting for the channel to be reachable / to enter equalization mode
  equalization = 2,  ///< buffer following eqd's setpoint
  releasing = 3,     ///< stop sent; waiting for the channel to leave equalization mode
};
const char* to_string(Role r) noexcept;

/// Health of a channel's latest sample.
enum class Health : std::uint8_t { ok = 0, stale = 1, invalid = 2, fault = 3, offline = 4 };
const char* to_string(Health h) noexcept;

/// Energy exchanged by one bus since eqd started (J). Positive quantities.
struct EnergyCounters {
  double grid_import_J = 0.0;  ///< net power > 0: drawn from the grid
  double grid_export_J = 0.0;  ///< net power < 0: fed back to the grid
  double free_import_J = 0.0;  ///< what the grid would have seen without equalization
  double free_export_J = 0.0;
  double eq_absorbed_J = 0.0;   ///< buffers charging
  double eq_delivered_J = 0.0;  ///< buffers discharging
};

/// Per-channel view of what the control thread derives (role, health, setpoint, headroom). The sample
/// itself is read from ControlCore::sample_slot() by the reader: copying it again here would double the
/// cycle's memory traffic. Published every cycle for buffers, on change for test channels.
struct ChannelSnapshot {
  BufferLimits limits{};  ///< as configured or assigned
  /// The device's own power limits as the control thread last read them for this buffer (NaN: not
  /// reported); its headroom honours min(limits, device) (effective_limits()). Buffers only.
  DeviceLimits device{};
  double setpoint_W = 0.0;
  double headroom_charge_W = 0.0;
  double headroom_discharge_W = 0.0;
  /// 0 = at the bottom of its window, 1 = at the top (buffers only): of its SoC window where its
  /// controller reports a state of charge, else of its voltage window.
  double window_pos = 0.0;
  std::uint64_t command_sequence = 0;
  std::uint16_t bus = 0;  ///< kNoBus (0xFFFF): of no known bus, out of every balance
  Role role = Role::test;
  Health health = Health::offline;
  bool command_equalize = false;
};

/// Per-bus view, published every cycle.
struct BusSnapshot {
  BusParams params{};
  EnergyCounters energy{};
  double free_W = 0.0;
  double eq_commanded_W = 0.0;  ///< sum of setpoints sent to buffers
  double eq_measured_W = 0.0;   ///< sum of buffers' measured power
  double net_W = 0.0;           ///< free + measured equalization power (what the grid sees)
  /// How far net + meter_trim_W (what the law steers) is from the aim: minus the target, or outside the
  /// caps band.
  double residual_W = 0.0;
  /// The meter trim added to the free power this cycle (issue #19, meter_trim.hpp; 0: none). free_W
  /// and net_W stay the channels' own sums (what the grid meter check compares).
  double meter_trim_W = 0.0;
  double desired_W = 0.0;  ///< target - free
  /// Free power the law steers by with use_forecast: the centred median of the measured and announced
  /// free-power path (ForecastPath); free_W when nothing is announced or use_forecast is off.
  double free_forecast_W = 0.0;
  double capacity_charge_W = 0.0;
  double capacity_discharge_W = 0.0;
  std::uint64_t updates = 0;
  std::uint64_t direction_flips = 0;
  double setpoint_travel_W = 0.0;
  std::uint64_t plans_applied = 0;  ///< LawCounters::plans_applied
  std::uint32_t channels = 0, buffers = 0, pending = 0, stale = 0, faulted = 0, offline = 0;
  BusStatus status = BusStatus::idle;
  /// The law's path this cycle is the statistical forecast (stat_forecast: nothing announced or learned,
  /// both gates open). free_forecast_W is then free_W: the statistical path is for the planner only.
  bool stat_path = false;
  /// The aim in force (issue #17): the active window of the bus's target schedule (index into
  /// buses[].schedule, -1: none) and the mode, target and limits it gives (the bus's own outside windows).
  std::int16_t active_window = -1;
  BusMode active_mode = BusMode::balance;
  double active_target_W = 0.0;
  double active_import_limit_W = 0.0;
  double active_export_limit_W = 0.0;
  /// Demand (DemandMeter): average import over the last completed quarter hour of the wall clock and
  /// its maximum since local midnight and since the 1st of the month; NaN: none yet.
  double demand_quarter_W = std::numeric_limits<double>::quiet_NaN();
  double demand_max_day_W = std::numeric_limits<double>::quiet_NaN();
  double demand_max_month_W = std::numeric_limits<double>::quiet_NaN();
  /// Valley filling's plan (issue #17): the next caps window, its need, the buffers' stored energy and
  /// capacity, the charge asked for now and the expected shortfall.
  FillPlan fill{};
};

/// Fixed-bucket histogram (le bounds in seconds), trivially copyable.
struct Histogram {
  static constexpr std::array<double, 12> kBounds_s = {1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4,
                                                       1e-3, 5e-3, 1e-2, 5e-2, 1e-1, 1.0};
  std::array<std::uint64_t, kBounds_s.size() + 1> counts{};  ///< last = +Inf (non-cumulative)
  double sum_s = 0.0;
  std::uint64_t count = 0;
  void observe(double v_s) noexcept;
};

/// Control-thread statistics.
struct CycleStats {
  std::uint64_t cycles = 0;
  std::uint64_t torn_reads = 0;  ///< samples skipped because a writer was mid-store
  std::uint64_t requests = 0;
  std::uint64_t requests_refused = 0;
  std::uint64_t responses_dropped = 0;
  /// Gaps between two cycles longer than the liveness bound (the control thread or the process stalled);
  /// after each, buffers wait for a sample from after the stall before they are commanded again.
  std::uint64_t stalls = 0;
  std::int64_t longest_gap_ns = 0;  ///< longest time between two cycles' starts
  std::int64_t last_cycle_ns = 0;   ///< time of the last cycle (the core's clock)
  Histogram duration{};
  Histogram lateness{};
};

}  // namespace eqd::core
