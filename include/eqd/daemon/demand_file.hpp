#pragma once
/// @file demand_file.hpp
/// The buses' demand maxima (issue #17: the highest quarter-hour average import of the local day and of
/// the month, what the utility bills) kept across restarts in state_dir/demand.json, so that restarting
/// eqd in the middle of a month does not forget the month's peak. Each bus's maxima are stored with the
/// local day ("2026-12-04") and month ("2026-12") they belong to; at start only those of the present day
/// and month are taken back. Thread-safety: free functions, reentrant; one writer per path.

#include <cstdint>
#include <string>
#include <vector>

#include "eqd/core/demand_meter.hpp"

namespace eqd::daemon {

/// One bus's maxima with the local day and month they were measured in (NaN: none).
struct SavedDemand {
  std::string day;    ///< "YYYY-MM-DD", local
  std::string month;  ///< "YYYY-MM", local
  core::DemandSeed max;
};

/// The local day and month at UTC instant utc_s in the zone of `offset` (local - UTC, s).
std::string local_day(std::int64_t utc_s, std::int64_t (*offset)(std::int64_t));
std::string local_month(std::int64_t utc_s, std::int64_t (*offset)(std::int64_t));

/// The file's text for the buses (names[b], saved[b]).
std::string demand_text(const std::vector<std::string>& names, const std::vector<SavedDemand>& saved);

/// Saved maxima per bus (by `names`; a bus not in the text gets none). Throws std::runtime_error
/// naming what is wrong in a malformed text.
std::vector<SavedDemand> parse_demand(const std::string& text, const std::vector<std::string>& names);

/// The seeds for the core at UTC instant utc_s: a bus's day maximum if it was saved today, its month
/// maximum if saved this month — neither within a minute of the local midnight that would end it (the
/// core's first calendar could then already be the next day's). No file: none; a corrupt one is moved
/// aside (util::move_aside, tag "corrupt") with a warning in the log. Never throws.
std::vector<core::DemandSeed> load_demand(const std::string& path, const std::vector<std::string>& names,
                                          std::int64_t utc_s, std::int64_t (*offset)(std::int64_t));

}  // namespace eqd::daemon
