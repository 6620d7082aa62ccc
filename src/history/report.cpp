// The history writer's answer to a report query: per interval and bus, sums of the minute rows
// (report.hpp). Runs on the writer thread, bounded by kReportBudget.
#include "eqd/history/report.hpp"

#include <spdlog/spdlog.h>

#include <map>

#include "store_detail.hpp"

namespace eqd::history {

namespace {

constexpr const char* kSumBus =
    "SELECT bus, sum(grid_import_J), sum(grid_export_J), sum(free_import_J), sum(free_export_J),"
    " sum(eq_absorbed_J), sum(eq_delivered_J), max(peak_import_W), max(peak_free_import_W), count(*)"
    " FROM energy_bus WHERE minute_s >= ?1 AND minute_s < ?2 AND (?3 IS NULL OR bus = ?3) GROUP BY bus ORDER BY bus";
constexpr const char* kSumBuffer =
    "SELECT bus, sum(charged_J), sum(discharged_J), count(DISTINCT channel)"
    " FROM energy_buffer WHERE minute_s >= ?1 AND minute_s < ?2 AND (?3 IS NULL OR bus = ?3) GROUP BY bus";

// Interrupts a statement past its deadline (sqlite3_progress_handler calls it every kProgressSteps
// virtual-machine instructions; non-zero aborts with SQLITE_INTERRUPT).
constexpr int kProgressSteps = 10000;
extern "C" int past_deadline(void* arg) {
  const auto* deadline = static_cast<const std::chrono::steady_clock::time_point*>(arg);
  return std::chrono::steady_clock::now() > *deadline ? 1 : 0;
}

}  // namespace

std::string validate(const ReportQuery& q) {
  if (q.edges_s.size() < 2) return "a report needs at least one interval (two edges)";
  if (q.edges_s.size() > kMaxReportIntervals + 1)
    return "at most " + std::to_string(kMaxReportIntervals) + " intervals per report query";
  for (std::size_t i = 1; i < q.edges_s.size(); ++i)
    if (q.edges_s[i] <= q.edges_s[i - 1]) return "interval edges must be strictly increasing";
  return {};
}

ReportAnswer run_report(sqlite::Database& db, const ReportQuery& q) {
  ReportAnswer a;
  if (a.error = validate(q); !a.error.empty()) return a;
  const auto deadline = std::chrono::steady_clock::now() + kReportBudget;
  sqlite3_progress_handler(db.handle(), kProgressSteps, past_deadline,
                           const_cast<void*>(static_cast<const void*>(&deadline)));
  try {
    sqlite::Statement bus(db, kSumBus);
    sqlite::Statement buf(db, kSumBuffer);
    a.intervals.reserve(q.edges_s.size() - 1);
    for (std::size_t i = 0; i + 1 < q.edges_s.size(); ++i) {
      ReportInterval iv{q.edges_s[i], q.edges_s[i + 1], {}};
      std::map<std::string, std::size_t> index;
      for (sqlite::Statement* st : {&bus, &buf}) {
        st->bind(1, iv.from_s);
        st->bind(2, iv.to_s);
        if (q.bus.empty())
          st->bind_null(3);
        else
          st->bind(3, q.bus);
      }
      while (bus.step()) {
        ReportBus r;
        r.bus = bus.text(0);
        r.energy = core::EnergyCounters{bus.real(1), bus.real(2), bus.real(3), bus.real(4), bus.real(5), bus.real(6)};
        if (!bus.is_null(7)) r.peak_import_W = bus.real(7);
        if (!bus.is_null(8)) r.peak_free_import_W = bus.real(8);
        r.minutes = bus.int64(9);
        index[r.bus] = iv.buses.size();
        iv.buses.push_back(std::move(r));
      }
      bus.reset();
      while (buf.step()) {
        // Buffers of a bus without a bus row in the interval (cannot happen from one recorder) are left out.
        if (auto it = index.find(buf.text(0)); it != index.end()) {
          ReportBus& r = iv.buses[it->second];
          r.charged_J = buf.real(1);
          r.discharged_J = buf.real(2);
          r.buffers = buf.int64(3);
        }
      }
      buf.reset();
      a.intervals.push_back(std::move(iv));
    }
  } catch (const sqlite::Error& e) {
    a.intervals.clear();
    a.error = (e.code & 0xff) == SQLITE_INTERRUPT
                  ? "the report query took longer than " + std::to_string(kReportBudget.count()) +
                        " ms and was stopped; ask for a shorter range or coarser periods"
                  : std::string("report query failed: ") + e.what();
  }
  sqlite3_progress_handler(db.handle(), 0, nullptr, nullptr);
  return a;
}

}  // namespace eqd::history
