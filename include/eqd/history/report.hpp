#pragma once
/// @file report.hpp
/// What `eqctl report` asks the history database (issue #16, "Reports"): per interval and bus, the
/// sums of the per-minute energy history (energy.hpp). The client cuts the time range into intervals
/// (its local calendar: hours, days, weeks, months, and the tariff's windows) and sends their edges;
/// the database only adds up whole UTC minutes, so the time zone and DST stay with the client.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "eqd/core/snapshot.hpp"

namespace eqd::history {

/// Most intervals one report query adds up (a client asks again for more): a year by hour is about
/// 8760, asked in chunks; the bound keeps one answer small and the writer thread's turn short.
inline constexpr std::size_t kMaxReportIntervals = 2000;
/// Longest a report query may keep the history writer busy; past it the query is interrupted and
/// answered with an error (other records wait meanwhile, they are not lost).
inline constexpr std::chrono::milliseconds kReportBudget{4000};

/// A report query. Plain data.
struct ReportQuery {
  /// Interval edges, UTC s since 1970, strictly increasing, 2 .. kMaxReportIntervals + 1 of them:
  /// interval i holds the minutes starting in [edges_s[i], edges_s[i+1]).
  std::vector<std::int64_t> edges_s;
  std::string bus;  ///< only this bus; empty: every bus in the history
};

/// One bus within one interval. Plain data.
struct ReportBus {
  std::string bus;
  core::EnergyCounters energy{};             ///< sums over the interval's minutes
  std::optional<double> peak_import_W;       ///< largest net import; none: no minute recorded it (schema < 4)
  std::optional<double> peak_free_import_W;  ///< largest free-power import (without equalization)
  double charged_J = 0.0;                    ///< the bus's buffers: energy into their batteries
  double discharged_J = 0.0;                 ///< and out of them
  std::int64_t buffers = 0;                  ///< distinct buffers with a row in the interval
  std::int64_t minutes = 0;                  ///< minutes recorded in the interval
};

/// One interval's rows (buses with at least one minute in it, by name). Plain data.
struct ReportInterval {
  std::int64_t from_s = 0;
  std::int64_t to_s = 0;
  std::vector<ReportBus> buses;
};

/// The answer to a ReportQuery. Plain data.
struct ReportAnswer {
  std::vector<ReportInterval> intervals;  ///< one per interval asked, in order
  std::string error;                      ///< non-empty: not answered (why)
};

/// Checks a query's shape; "" when fine, else what is wrong. Any thread.
[[nodiscard]] std::string validate(const ReportQuery& q);

}  // namespace eqd::history
