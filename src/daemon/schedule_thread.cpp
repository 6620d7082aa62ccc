// The buses' target schedules, expanded off the control thread. See schedule_thread.hpp.
#include "eqd/daemon/schedule_thread.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>
#include <utility>

#include "eqd/daemon/clock.hpp"
#include "eqd/daemon/demand_file.hpp"
#include "eqd/daemon/window_needs_file.hpp"
#include "eqd/util/atomic_file.hpp"
#include "eqd/util/local_time.hpp"

namespace eqd::daemon {

namespace {

// Expansion covers 3 days ahead; a minute's refresh keeps it far from running out and takes a step of
// the wall clock within a minute.
constexpr std::chrono::seconds kRefreshPeriod{60};

std::int64_t utc_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

ScheduleThread::ScheduleThread(core::ControlCore& core, std::vector<std::vector<core::ScheduleWindow>> windows,
                               std::string needs_path, std::vector<std::string> names, std::string demand_path)
    : core_(core),
      windows_(std::move(windows)),
      needs_path_(std::move(needs_path)),
      names_(std::move(names)),
      demand_path_(std::move(demand_path)) {
  // What the core starts with (restored from the file) counts as saved.
  for (std::size_t b = 0; b < windows_.size() && b < core_.bus_count(); ++b)
    saved_records_.push_back(core_.window_needs(static_cast<core::BusIndex>(b)).records());
}

void ScheduleThread::save_needs(bool always) noexcept {
  if (needs_path_.empty() || names_.size() != saved_records_.size()) return;
  std::vector<core::WindowNeeds> needs;
  bool changed = false;
  for (std::size_t b = 0; b < saved_records_.size(); ++b) {
    needs.push_back(core_.window_needs(static_cast<core::BusIndex>(b)));
    changed = changed || needs.back().records() != saved_records_[b];
  }
  if (!changed && !always) return;
  try {
    util::write_atomically(needs_path_, window_needs_text(names_, windows_, needs));
    for (std::size_t b = 0; b < needs.size(); ++b) saved_records_[b] = needs[b].records();
  } catch (const std::exception& e) {
    // Kept in memory and retried at the next refresh: a full disk loses nothing of the core's.
    spdlog::warn("{}: not saved ({}); retried in a minute", needs_path_, e.what());
  }
}

void ScheduleThread::save_demand(std::int64_t utc_ns) noexcept {
  if (demand_path_.empty() || names_.empty()) return;
  try {
    const std::int64_t utc_s = utc_ns / 1'000'000'000;
    // One reading of the zone for all buses (each is a localtime_r).
    const std::string day = local_day(utc_s, &util::local_utc_offset_s);
    const std::string month = local_month(utc_s, &util::local_utc_offset_s);
    std::vector<SavedDemand> saved(names_.size());
    for (std::size_t b = 0; b < names_.size() && b < core_.bus_count(); ++b) {
      const core::BusSnapshot s = core_.bus(static_cast<core::BusIndex>(b));
      saved[b] = {day, month, {s.demand_max_day_W, s.demand_max_month_W}};
    }
    std::string text = demand_text(names_, saved);
    if (text == saved_demand_) return;
    util::write_atomically(demand_path_, text);
    saved_demand_ = std::move(text);
  } catch (const std::exception& e) {
    // Retried at the next refresh: the core keeps the figures meanwhile.
    spdlog::warn("{}: not saved ({}); retried in a minute", demand_path_, e.what());
  }
}

ScheduleThread::~ScheduleThread() { stop(); }

void ScheduleThread::refresh(std::int64_t utc_ns, std::int64_t mono_ns) {
  // Every bus: those without windows still need the calendar marks of their demand figures.
  for (std::size_t b = 0; b < windows_.size() && b < core_.bus_count(); ++b) {
    core::BusSchedule s =
        core::expand_schedule(windows_[b].data(), windows_[b].size(), utc_ns, &util::local_utc_offset_s);
    // From UTC into the core's clock: the control thread compares its own monotonic time.
    core::shift_schedule(s, mono_ns - utc_ns);
    core_.set_schedule(static_cast<core::BusIndex>(b), s);
  }
  save_needs(false);
  save_demand(utc_ns);
}

void ScheduleThread::start() {
  if (thread_.joinable()) return;
  if (windows_.empty()) return;
  refresh(utc_now_ns(), monotonic_ns());
  stop_.reset();
  thread_ = std::thread([this] { run(); });
}

void ScheduleThread::stop() {
  if (!thread_.joinable()) return;
  stop_.request();
  thread_.join();
  save_needs(false);
  save_demand(utc_now_ns());
}

void ScheduleThread::run() noexcept {
  while (!stop_.wait_for(kRefreshPeriod)) {
    try {
      refresh(utc_now_ns(), monotonic_ns());
    } catch (const std::exception& e) {
      // What the core holds stays valid for days: a failed refresh is retried in a minute.
      spdlog::error("target schedules: refresh failed ({}); the previous expansion stays in force", e.what());
    }
  }
}

}  // namespace eqd::daemon
