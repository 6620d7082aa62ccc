#pragma once
/// @file store.hpp
/// eqd's history database: PostgreSQL with `history.url` (rows carrying `history.instance`; an
/// unreachable server's rows wait in the queue and are retried, src/history/backend.hpp), else one
/// SQLite file in state_dir (`history.path`, default
/// `<state_dir>/history.db`), WAL mode with synchronous=NORMAL (a crash or power cut loses at most
/// the last transactions, never the file), schema versioned by `PRAGMA user_version` with numbered
/// migrations. It holds the audit log (table `audit`, audit.hpp) and the per-minute energy history
/// (energy_bus, energy_buffer; energy.hpp), and answers audit and report queries (report.hpp) on its
/// writer thread (docs/operations.md).
///
/// Every write happens on one writer thread of its own, fed by a bounded queue: whoever records
/// (the control API's io thread, the main thread) never waits for the disk. A full queue or a failing
/// database is counted (HistoryStats, exported as eqd_history_* metrics) and logged at most every
/// 10 s; it never blocks and never stops control. A database that cannot be used at all (a newer
/// schema, a directory that cannot be written) leaves the store running without one: audit records
/// still reach the journal, queries answer why there is no database. A corrupt file is moved aside
/// (`history.db.corrupt-<UTC stamp>`, util::move_aside) and a fresh one started, with a warning.

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "eqd/history/audit.hpp"
#include "eqd/history/backup.hpp"
#include "eqd/history/energy.hpp"

namespace eqd::history {

/// The SQLite schema version this build writes (PRAGMA user_version after the migrations; PostgreSQL
/// has its own, pg_backend.cpp).
inline constexpr int kSchemaVersion = 4;
/// The SQL of each migration: entry i takes a database from version i to i + 1. Any thread.
[[nodiscard]] const std::vector<std::string_view>& schema_migrations();

/// Counters of the history writer. Thread-safety: relaxed atomics; written by the store (writer
/// thread, and record() on the caller's thread for drops), read by anyone (metrics scrapes).
struct HistoryStats {
  /// The tables whose rows are counted (eqd_history_rows_written_total{table}).
  static constexpr std::array<std::string_view, 3> kTables = {"audit", "energy_bus", "energy_buffer"};
  std::array<std::atomic<std::uint64_t>, kTables.size()> rows_written{};
  std::atomic<std::uint64_t> dropped_queue_full{0};  ///< records refused because the queue was full
  std::atomic<std::uint64_t> write_errors{0};        ///< records the database failed to take (lost)
  std::atomic<std::int64_t> last_write_ms{0};        ///< UTC ms of the last committed write; 0: none yet
  /// Tries that found PostgreSQL unreachable (its rows wait in the queue and are tried again).
  std::atomic<std::uint64_t> unreachable{0};
};

/// Settings of the store. Plain data (from config::HistoryConfig, or a test's own).
struct HistoryOptions {
  std::string path;                   ///< the SQLite file; empty (and no url): no database (journal only)
  int retention_days = 730;           ///< history.retention_days: older rows are deleted (at open, then hourly)
  std::size_t queue_capacity = 4096;  ///< records and queries waiting for the writer; more are dropped
  bool journal = true;                ///< also log each audit record (journal fields, or stderr)
  std::string url;                    ///< a PostgreSQL URI (history.url): used instead of `path`
  std::string instance;               ///< this eqd's name in rows of a shared (PostgreSQL) database
};

/// A file descriptor owned by whoever holds it (closed at destruction). Move-only.
class OwnedFd {
 public:
  OwnedFd() = default;
  explicit OwnedFd(int fd) noexcept : fd_(fd) {}
  ~OwnedFd();
  OwnedFd(OwnedFd&& o) noexcept : fd_(o.release()) {}
  OwnedFd& operator=(OwnedFd&& o) noexcept;
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  [[nodiscard]] int get() const noexcept { return fd_; }
  int release() noexcept {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

/// What a backup should hold besides the history database, and where to build it. Plain data.
struct BackupJob {
  std::vector<BackupMember> files;  ///< state.json, the connection cache, the configuration (missing ones skipped)
  BackupMeta meta;                  ///< eqd version, configuration path (schema and time are filled in)
  std::string temp_dir;             ///< where the (unlinked) archive file is made: state_dir
};

/// The outcome of a backup: an open, unlinked archive file (read from offset 0) or why there is none.
struct BackupResult {
  std::shared_ptr<OwnedFd> archive;  ///< null on failure; shared so that callbacks may be copied
  std::int64_t size_bytes = 0;
  nlohmann::json manifest;
  std::string error;  ///< non-empty: the backup failed (why)
};

/// The history store. Thread-safety: construct, start() and stop() from one thread (the main
/// thread); record(), query(), flush() and prune_now() from any thread; the database is touched
/// only by the writer thread (and by the constructor before it starts).
class HistoryStore final : public AuditSink {
 public:
  /// Opens (creating, migrating, or replacing a corrupt file as described above) the database of
  /// `opts.path` on the calling thread. Never throws for a database problem: database_error() says it.
  explicit HistoryStore(HistoryOptions opts);
  /// stop().
  ~HistoryStore() override;
  HistoryStore(const HistoryStore&) = delete;
  HistoryStore& operator=(const HistoryStore&) = delete;

  /// Starts the writer thread. Records queued before are written then. Idempotent.
  void start();
  /// Writes what is queued, then joins the writer and closes the database. Later records are refused
  /// (counted as dropped). Idempotent.
  void stop();

  bool record(AuditRecord r) noexcept override;
  bool query(const AuditQuery& q, std::function<void(AuditPage)> done) noexcept override;
  bool report(const ReportQuery& q, std::function<void(ReportAnswer)> done) noexcept override;
  /// Queues one finished minute of the energy history (EnergyRecorder). A minute already in the
  /// database (eqd restarted within it) is added to, so that no energy counts twice or goes missing.
  /// False (and counted) when the queue is full; never blocks. Any thread.
  bool record_energy(EnergyMinute m) noexcept;

  /// Queues a backup (backup.hpp): on the writer thread, the database is copied with SQLite's online
  /// backup API (no write can come between: the writer is the only one), then the archive is built
  /// in an unlinked file in job.temp_dir and `done` is called with it, on the writer thread. History
  /// records queue up meanwhile (the bounded queue). False when it cannot be queued. Any thread.
  bool backup(BackupJob job, std::function<void(BackupResult)> done) noexcept;

  /// Waits until everything queued before this call is written (or `timeout`); false on timeout or
  /// when the writer is not running. For tests and benchmarks. Any thread but the writer.
  bool flush(std::chrono::milliseconds timeout);
  /// Queues a retention pass now (deletes rows older than retention_days). Any thread.
  void prune_now() noexcept;

  /// The counters (also for the metrics exporter, which may outlive the store). Any thread.
  [[nodiscard]] std::shared_ptr<const HistoryStats> stats() const noexcept { return stats_; }
  /// Why there is no database ("" when there is one). Any thread (a copy under the lock).
  [[nodiscard]] std::string database_error() const;
  /// The database file ("" when none configured).
  [[nodiscard]] const std::string& path() const noexcept { return opts_.path; }

  struct Db;   ///< the open database (store.cpp)
  struct Job;  ///< one queued piece of work (store.cpp)

 private:
  bool push(Job job, bool bounded) noexcept;
  void run();
  void process(std::deque<Job>& batch, bool stopping);
  /// What became of a write: done, lost (counted), or held for an unreachable PostgreSQL.
  enum class Outcome { written, lost, held };
  bool write_records(std::deque<Job>& batch, std::size_t begin, std::size_t end);
  bool write_energy(const EnergyMinute& m);
  Outcome write_with(std::size_t rows, const std::function<void()>& write);
  void hold(std::deque<Job>& batch, std::size_t from);
  [[nodiscard]] std::string where() const;
  void run_query(const Job& job);
  void run_report_job(const Job& job);
  void run_backup(Job& job);
  void prune();
  void report_problems(std::chrono::steady_clock::time_point now);
  void open_database();
  void on_database_error(const std::string& what, bool corrupt, std::size_t lost);

  HistoryOptions opts_;
  std::shared_ptr<HistoryStats> stats_ = std::make_shared<HistoryStats>();
  std::unique_ptr<Db> db_;  ///< null: no database (see db_error_)

  mutable std::mutex m_;  ///< guards queue_, stopping_, db_error_ (never held during disk I/O)
  std::condition_variable cv_;
  std::deque<Job> queue_;
  /// Jobs a PostgreSQL that was unreachable did not take, in order; tried again at next_retry_ (writer
  /// thread; under m_ so that push() counts them against the queue's bound).
  std::deque<Job> held_;
  std::size_t held_count_ = 0;
  std::chrono::steady_clock::time_point next_retry_{};
  bool stopping_ = false;
  bool running_ = false;
  std::string db_error_;
  std::thread writer_;

  // Writer thread only: rate-limited problem reports.
  std::chrono::steady_clock::time_point last_report_{};
  std::uint64_t reported_drops_ = 0;
  std::uint64_t errors_since_report_ = 0;
  std::string last_error_;
  std::chrono::steady_clock::time_point next_prune_{};
};

}  // namespace eqd::history
