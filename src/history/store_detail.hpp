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
  enum class Kind { record, query, barrier, prune, energy, backup } kind = Kind::record;
  AuditRecord record;
  AuditQuery q;
  std::function<void(AuditPage)> done;
  std::shared_ptr<std::promise<void>> barrier;
  EnergyMinute energy;
  BackupJob backup;
  std::function<void(BackupResult)> backup_done;
};

}  // namespace eqd::history
