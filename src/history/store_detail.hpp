#pragma once
// The history store's private parts shared by its source files (store.cpp, store_backup.cpp).
// Thread-safety: the writer thread only (and the constructor before it starts).
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>

#include "eqd/history/store.hpp"
#include "backend.hpp"

namespace eqd::history {

struct HistoryStore::Db {
  explicit Db(std::unique_ptr<Backend> b) : backend(std::move(b)) {}
  std::unique_ptr<Backend> backend;
};

struct HistoryStore::Job {
  enum class Kind { record, query, barrier, prune, energy, report, backup } kind = Kind::record;
  AuditRecord record;
  AuditQuery q;
  std::function<void(AuditPage)> done;
  std::shared_ptr<std::promise<void>> barrier;
  EnergyMinute energy;
  bool journaled = false;  ///< the audit record went to the journal already (a held record is retried)
  ReportQuery report;
  std::function<void(ReportAnswer)> report_done;
  BackupJob backup;
  std::function<void(BackupResult)> backup_done;
};

}  // namespace eqd::history
