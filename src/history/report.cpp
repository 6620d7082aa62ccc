// The shape of a report query (report.hpp); each backend adds up the minute rows itself
// (sqlite_backend.cpp, pg_backend.cpp).
#include "eqd/history/report.hpp"

namespace eqd::history {

std::string validate(const ReportQuery& q) {
  if (q.edges_s.size() < 2) return "a report needs at least one interval (two edges)";
  if (q.edges_s.size() > kMaxReportIntervals + 1)
    return "at most " + std::to_string(kMaxReportIntervals) + " intervals per report query";
  for (std::size_t i = 1; i < q.edges_s.size(); ++i)
    if (q.edges_s[i] <= q.edges_s[i - 1]) return "interval edges must be strictly increasing";
  return {};
}

}  // namespace eqd::history
