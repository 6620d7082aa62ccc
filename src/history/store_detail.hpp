#pragma once
// The history store's private parts shared by its source files (store.cpp, store_energy.cpp).
// Thread-safety: the writer thread only (and the constructor before it starts).
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>

#include "eqd/history/store.hpp"
#include "sqlite_db.hpp"

namespace eqd::history {

struct HistoryStore::Db {
  explicit Db(const std::string& path) : conn(path) {}
  sqlite::Database conn;
  std::optional<sqlite::Statement> insert;
};

struct HistoryStore::Job {
  enum class Kind { record, query, barrier, prune, energy, report } kind = Kind::record;
  AuditRecord record;
  AuditQuery q;
  std::function<void(AuditPage)> done;
  std::shared_ptr<std::promise<void>> barrier;
  EnergyMinute energy;
  ReportQuery report;
  std::function<void(ReportAnswer)> report_done;
};

/// Adds up the minute rows of `q`'s intervals (report.cpp), within kReportBudget. Never throws for a
/// database problem: the answer's error says it.
ReportAnswer run_report(sqlite::Database& db, const ReportQuery& q);

}  // namespace eqd::history
