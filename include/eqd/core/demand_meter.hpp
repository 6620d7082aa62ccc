#pragma once
/// @file demand_meter.hpp
/// Per-bus demand figures (issue #17): the average grid import over each quarter hour of the wall
/// clock and its running maximum for the local day and month, the figure utilities bill as the demand
/// charge. The control thread measures; the calendar (quarter hours, local midnights, month starts) is
/// computed off it (ScheduleThread, calendar_marks()) and only compared here.

#include <array>
#include <cstdint>
#include <limits>

namespace eqd::core {

/// Demand maxima carried over a restart (DemandMeter::seed), NaN: none. Plain data.
struct DemandSeed {
  double max_day_W = std::numeric_limits<double>::quiet_NaN();
  double max_month_W = std::numeric_limits<double>::quiet_NaN();
};

/// The wall clock's calendar marks that per-bus demand figures need (issue #17, metrics), as instants
/// in the same clock as the occurrences: a quarter-hour boundary, the local midnights of the span and
/// the start of the next local month. Filled by expand_schedule(); calendar false: none yet.
struct CalendarMarks {
  bool calendar = false;
  std::int64_t quarter_origin_ns = 0;          ///< an instant at which the wall clock shows hh:00/15/30/45
  std::array<std::int64_t, 6> midnights_ns{};  ///< local midnights from the span's first day, ascending
  std::int64_t next_month_ns = 0;              ///< local midnight of the 1st of the month after from_ns
};

/// Demand figures of one bus (issue #17): the average import (net power > 0) over each completed
/// quarter hour of the wall clock, and its running maximum since local midnight and since the 1st of
/// the month (the utilities' demand charge bills the month's highest). Fed every cycle with the bus's
/// cumulative grid import; a quarter hour only partly seen (start, stall) is not counted.
/// Thread-safety: not thread-safe; the control thread's, one per bus.
class DemandMeter {
 public:
  /// now_ns: the core's clock; import_J: cumulative grid import of the bus. No allocation.
  void update(std::int64_t now_ns, double import_J, const CalendarMarks& m) noexcept;
  [[nodiscard]] double last_quarter_W() const noexcept { return last_W_; }  ///< NaN until one completed
  [[nodiscard]] double max_day_W() const noexcept { return max_day_W_; }    ///< NaN: none today yet
  [[nodiscard]] double max_month_W() const noexcept { return max_month_W_; }
  /// The maxima a restart saved for today and this month (NaN: none), so that a restart loses neither.
  /// Before the first update() only; the caller has checked that they belong to the present local day
  /// and month (daemon/demand_file.hpp). A later quarter hour above them replaces them as usual.
  void seed(double max_day_W, double max_month_W) noexcept {
    max_day_W_ = max_day_W;
    max_month_W_ = max_month_W;
  }

 private:
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  std::int64_t block_ = std::numeric_limits<std::int64_t>::min();  ///< quarter-hour index being measured
  double block_start_J_ = 0.0;
  bool block_whole_ = false;  ///< the block was entered at its start (not joined mid-way)
  std::int64_t day_start_ns_ = std::numeric_limits<std::int64_t>::min();
  std::int64_t month_end_ns_ = std::numeric_limits<std::int64_t>::min();
  double last_W_ = kNaN, max_day_W_ = kNaN, max_month_W_ = kNaN;
};

/// The calendar marks at UTC instant from_ns (s since the epoch x 1e9) in the local time zone given by
/// `offset` (local - UTC, s, at a UTC instant), in UTC. Off the control thread (offset may read the
/// time-zone database).
CalendarMarks calendar_marks(std::int64_t from_ns, std::int64_t (*offset)(std::int64_t utc_s));

/// Moves every instant by delta_ns (UTC into the core's clock). Any thread.
void shift_marks(CalendarMarks& m, std::int64_t delta_ns) noexcept;

}  // namespace eqd::core
