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

/// Import caps on the average over the wall clock's demand intervals (BusParams::import_limit_average_s,
/// docs/control.md "Quarter-hour average caps"): the cap in force holds the interval's energy at
/// cap x period rather than the net power at every instant. An interval is period_s long (a divisor of
/// 900 s, aligned with the quarter hours of the calendar marks). allowed_W() is the import allowed now:
/// the budget left (cap minus a margin, times the period, minus what was imported since the interval
/// began) spread over the time left, so that a quarter whose load dipped earlier may import above the
/// cap later, and one that spent its budget holds below it. Fed every cycle while the setting is on.
/// Thread-safety: not thread-safe; the control thread's, one per bus. No allocation.
class AverageCap {
 public:
  /// Share of the cap kept back from the budget: the law follows the aim with a delay of about tau_s,
  /// so a rise of the load late in an interval overshoots a little before the buffers catch up (an
  /// overshoot earlier in the interval is paid back from the budget). Each 0.1 % costs 0.1 % of the
  /// cap in every held quarter (docs/control-benchmark.md "Peak shaving": 0.5 % and 0.2 % measured).
  static constexpr double kMargin = 0.002;
  /// The interval of an instantaneous cap's guard (import_limit_average_s 0): the quarter hour, the
  /// demand charge's interval and that of the demand figures (ControlCore::average_cap).
  static constexpr double kGuardPeriod_s = 900.0;
  /// now_ns: the core's clock; import_J: the bus's cumulative grid import; period_s: the interval.
  void update(std::int64_t now_ns, double import_J, const CalendarMarks& m, double period_s) noexcept;
  /// The import (W, bus side) allowed now for an average cap of cap_W: never above ceiling_W (the
  /// connection's instantaneous rating, +inf: none) nor below 0: the cap less what the interval's import
  /// is ahead of the cap's pace, spread over the time left, as if at least guard_s were left (the law
  /// cannot act faster). NaN while the interval was not seen from its start (eqd started within it, the
  /// period just changed, no calendar yet): the cap applies to the instantaneous net power then.
  [[nodiscard]] double allowed_W(double cap_W, double ceiling_W, double guard_s) const noexcept;
  /// Seconds since the interval began (NaN: none).
  [[nodiscard]] double elapsed_s() const noexcept;

 private:
  std::int64_t block_ = std::numeric_limits<std::int64_t>::min();  ///< interval index being measured
  std::int64_t period_ns_ = 0, start_ns_ = 0, now_ns_ = 0;
  double start_J_ = 0.0, import_J_ = 0.0;
  bool whole_ = false;  ///< entered at its start, right after the previous one
};

/// The calendar marks at UTC instant from_ns (s since the epoch x 1e9) in the local time zone given by
/// `offset` (local - UTC, s, at a UTC instant), in UTC. Off the control thread (offset may read the
/// time-zone database).
CalendarMarks calendar_marks(std::int64_t from_ns, std::int64_t (*offset)(std::int64_t utc_s));

/// Moves every instant by delta_ns (UTC into the core's clock). Any thread.
void shift_marks(CalendarMarks& m, std::int64_t delta_ns) noexcept;

}  // namespace eqd::core
