#pragma once
/// @file schedule_thread.hpp
/// Keeps the buses' target schedules (buses[].schedule, docs/control.md "Target schedules") expanded in
/// the control core: it turns each bus's windows of local time into occurrences over the coming days in
/// the system's time zone, shifts them into the core's monotonic clock and hands them over
/// (ControlCore::set_schedule). At start and every minute, so that a change of the wall clock (NTP) or
/// of the date is taken within a minute. The control thread only looks instants up.

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "eqd/core/control_core.hpp"
#include "eqd/core/schedule.hpp"
#include "eqd/daemon/stop_signal.hpp"

namespace eqd::daemon {

/// Thread-safety: start()/stop() from the owner (main) thread; refresh() from one thread at a time
/// (the schedule thread once started).
class ScheduleThread {
 public:
  /// windows[b]: bus b's windows (empty: no schedule; the bus still gets its calendar marks).
  /// needs_path (empty: none): where valley filling's window needs are saved (window_needs_file.hpp),
  /// at the first refresh after one was recorded and at stop(); names[b]: bus b's name there.
  /// demand_path (empty: none): where the buses' demand maxima are saved (demand_file.hpp), at each
  /// refresh that finds them changed and at stop().
  ScheduleThread(core::ControlCore& core, std::vector<std::vector<core::ScheduleWindow>> windows,
                 std::string needs_path = {}, std::vector<std::string> names = {}, std::string demand_path = {});
  ~ScheduleThread();
  ScheduleThread(const ScheduleThread&) = delete;
  ScheduleThread& operator=(const ScheduleThread&) = delete;

  /// One refresh now, then the thread.
  void start();
  /// Stop and join. Idempotent.
  void stop();
  /// Expands every bus's schedule at UTC instant utc_ns, whose monotonic time is mono_ns.
  void refresh(std::int64_t utc_ns, std::int64_t mono_ns);

 private:
  void run() noexcept;
  /// Saves the window needs when one was recorded since the last save. Never throws (logs).
  void save_needs(bool always) noexcept;
  /// Saves the demand maxima when they (or their day or month) changed since the last save. Never
  /// throws (logs).
  void save_demand(std::int64_t utc_ns) noexcept;

  core::ControlCore& core_;
  std::vector<std::vector<core::ScheduleWindow>> windows_;
  std::string needs_path_;
  std::vector<std::string> names_;
  std::vector<std::uint32_t> saved_records_;  ///< per bus: records() at the last save
  std::string demand_path_;
  std::string saved_demand_;  ///< the text of the last save
  StopSignal stop_;
  std::thread thread_;
};

}  // namespace eqd::daemon
