#pragma once
/// @file schedule.hpp
/// Target schedules of a bus (issue #17): windows of local wall-clock time (days of the week, start,
/// end), each with a target or caps. They are expanded off the control thread into occurrences in UTC
/// (expand_schedule(), which asks a caller-given function for the local time zone's offset), and the
/// control thread only looks an instant up among them (active_window()): it never touches a time-zone
/// database in its cycle. docs/control.md, "Target schedules".

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "eqd/core/demand_meter.hpp"
#include "eqd/core/params.hpp"

namespace eqd::core {

/// One window of a bus's schedule as configured (`buses[].schedule[]`). Plain data.
struct ScheduleWindow {
  /// Bit d set: the window starts on weekday d of the local calendar (0 = Monday .. 6 = Sunday).
  std::uint8_t days = 0x7f;
  std::int32_t start_min = 0;  ///< local start, minutes after midnight (0..1439)
  /// Local end, minutes after midnight (1..1440). Not after start_min: the window ends the next day.
  std::int32_t end_min = 0;
  BusMode mode = BusMode::balance;  ///< balance: aim at target_W; caps: keep within the limits
  double target_W = 0.0;            ///< balance: the bus's target inside the window
  /// caps: the limits inside the window; NaN = the bus's own (import_limit_W / export_limit_W).
  double import_limit_W = std::numeric_limits<double>::quiet_NaN();
  double export_limit_W = std::numeric_limits<double>::quiet_NaN();
};

/// One occurrence of a window: [start_ns, end_ns) in UTC nanoseconds since the epoch.
struct WindowOccurrence {
  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;
  std::uint16_t window = 0;  ///< index into BusSchedule::windows
};

inline constexpr std::size_t kMaxScheduleWindows = 16;  ///< windows per bus (the configuration refuses more)
/// Occurrences held at once: 16 windows a day over expand_schedule()'s 4 days.
inline constexpr std::size_t kMaxWindowOccurrences = 64;

/// A bus's schedule as the control thread sees it: its windows and their occurrences, sorted by start,
/// over [valid_from_ns, valid_until_ns). Trivially copyable: it travels through a Seqlock.
struct BusSchedule {
  std::array<ScheduleWindow, kMaxScheduleWindows> windows{};
  std::uint16_t window_count = 0;
  std::array<WindowOccurrence, kMaxWindowOccurrences> occurrences{};
  std::uint16_t occurrence_count = 0;
  std::int64_t valid_from_ns = 0;
  std::int64_t valid_until_ns = 0;
  CalendarMarks marks{};  ///< quarter hours, local midnights and month start, for the bus's DemandMeter
};

/// The local time zone's offset (local - UTC, seconds) at a UTC instant (seconds since the epoch).
/// Tests pass a fixed rule; the daemon passes util::local_utc_offset_s (the system's time zone).
using UtcOffsetFn = std::int64_t (*)(std::int64_t utc_s);

/// The UTC instant (s) at which the local wall clock first shows `local_s` (seconds since the local
/// epoch, i.e. utc + offset). A wall time skipped by a change to summer time maps to the change itself
/// (the first instant after the gap); one that happens twice (back to winter time) to its first
/// occurrence. Any thread; calls `offset` a few times.
std::int64_t local_to_utc_s(std::int64_t local_s, UtcOffsetFn offset);

/// The windows' occurrences (and the calendar marks at from_ns) that overlap [from_ns - 1 day, from_ns + 3 days),
/// sorted by start, at most kMaxWindowOccurrences (the earliest kept). Occurrences emptied by a change to summer time
/// are dropped. Off the control thread (it calls `offset`, which may read the time-zone database); pure otherwise.
/// windows.size() <= kMaxScheduleWindows is the caller's (the configuration's) rule.
BusSchedule expand_schedule(const ScheduleWindow* windows, std::size_t count, std::int64_t from_ns, UtcOffsetFn offset);

/// Moves every occurrence and the span by delta_ns (from UTC into the core's monotonic clock: delta =
/// monotonic now - UTC now). Any thread.
void shift_schedule(BusSchedule& s, std::int64_t delta_ns) noexcept;

/// The window active at now_ns, or -1: among the occurrences that contain now_ns, the one of the
/// window listed first (an earlier window wins an overlap). A plain lookup; any thread, no allocation.
int active_window(const BusSchedule& s, std::int64_t now_ns) noexcept;
/// The occurrence active_window() finds (index into s.occurrences), or -1. Any thread, no allocation.
int active_occurrence(const BusSchedule& s, std::int64_t now_ns) noexcept;

/// `base` with the window's aim: its mode and target, or its mode and limits (NaN: base's limits).
/// Any thread.
BusParams apply_window(const BusParams& base, const ScheduleWindow& w) noexcept;

/// Returns nullptr when w is valid, else a static message naming the offending field. Any thread.
const char* validate(const ScheduleWindow& w) noexcept;

}  // namespace eqd::core
