#pragma once
// The history store's database behind one small interface (private to src/history): SQLite
// (sqlite_backend.cpp, the embedded default) or PostgreSQL (pg_backend.cpp, `history.url`), so that
// the store — queue, writer thread, counters, rate-limited reports — does not care which.
// Thread-safety: a Backend belongs to the writer thread (and to the store's constructor before the
// writer starts).
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "eqd/history/audit.hpp"
#include "eqd/history/energy.hpp"
#include "eqd/history/report.hpp"

namespace eqd::history {

/// A failed database operation: the message, and what the store should do about it.
struct BackendError : std::runtime_error {
  enum class Kind {
    failed,       ///< this write failed (constraint, disk full...): its rows are lost, counted
    corrupt,      ///< SQLite: the file is damaged: moved aside and a fresh one started
    unreachable,  ///< PostgreSQL: no connection: the rows wait in the queue and the write is retried
  };
  BackendError(Kind k, const std::string& what) : std::runtime_error(what), kind(k) {}
  Kind kind;
};

/// One database. Every member may throw BackendError (and only that).
class Backend {
 public:
  virtual ~Backend() = default;
  /// Writes the audit records in one transaction.
  virtual void write_audit(const std::vector<AuditRecord>& batch) = 0;
  /// Writes (adds to) one minute of the energy history in one transaction.
  virtual void write_energy(const EnergyMinute& m) = 0;
  /// Answers an audit query (newest first; `more` when older rows match).
  virtual AuditPage query_audit(const AuditQuery& q) = 0;
  /// Answers a report query (report.hpp; its shape already checked by validate()): per interval and
  /// bus, the sums of the minute rows, stopped after kReportBudget (an error, then).
  virtual ReportAnswer report(const ReportQuery& q) = 0;
  /// Deletes rows older than `cutoff_ms` (UTC ms); returns how many.
  virtual std::int64_t prune(std::int64_t cutoff_ms) = 0;
  /// Copies the database consistently into the new file `path` (SQLite's online backup API) and
  /// returns its schema version. PostgreSQL refuses (its own tools back it up).
  virtual int backup_to(const std::string& path) = 0;
  /// "SQLite /var/lib/eqd/history.db", "PostgreSQL host=... dbname=..." (no password), for logs.
  [[nodiscard]] virtual std::string describe() const = 0;
};

/// Opens (creating, migrating) the SQLite database `path`. Throws BackendError: corrupt for a damaged
/// file, failed for anything else (a newer schema, a directory that cannot be written).
std::unique_ptr<Backend> open_sqlite(const std::string& path);

/// Connects to PostgreSQL at `url` (a libpq URI or key=value string) and creates or migrates the
/// schema; rows carry `instance`. Throws BackendError (unreachable: the store retries later).
std::unique_ptr<Backend> open_postgres(const std::string& url, const std::string& instance);

}  // namespace eqd::history
