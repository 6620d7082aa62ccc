// The history store: opening and migrating the database, and its writer thread (see store.hpp).
#include "eqd/history/store.hpp"

#include <filesystem>
#include <future>
#include <optional>
#include <system_error>

#include <spdlog/spdlog.h>

#include "eqd/daemon/logging.hpp"
#include "eqd/util/atomic_file.hpp"
#include "sqlite_db.hpp"
#include "store_detail.hpp"

namespace eqd::history {

namespace {

using nlohmann::json;

// Problems (drops, failed writes) are logged at most this often, with their counts.
constexpr std::chrono::seconds kReportPeriod{10};
// Old rows are deleted at open and then this often.
constexpr std::chrono::hours kPrunePeriod{1};

// Migration i takes the schema from version i to i + 1. Never edit a shipped entry: add one.
const std::vector<std::string_view> kMigrations = {
    // 1: the audit log.
    "CREATE TABLE audit ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " time_ms INTEGER NOT NULL,"
    " command TEXT NOT NULL,"
    " uid INTEGER, user TEXT, pid INTEGER, role TEXT,"
    " channel TEXT, bus TEXT, controller TEXT,"
    " request_json TEXT NOT NULL,"
    " ok INTEGER NOT NULL, error_code TEXT, message TEXT,"
    " before_json TEXT, after_json TEXT);"
    "CREATE INDEX audit_time ON audit(time_ms);",
    // 2: `eqctl audit --user/--channel` without a scan of the whole table.
    "CREATE INDEX audit_user ON audit(user, id);"
    "CREATE INDEX audit_channel ON audit(channel, id);",
    // 3: the per-minute energy history (energy.hpp), per bus and per buffer.
    "CREATE TABLE energy_bus ("
    " minute_s INTEGER NOT NULL, bus TEXT NOT NULL,"
    " grid_import_J REAL NOT NULL, grid_export_J REAL NOT NULL,"
    " free_import_J REAL NOT NULL, free_export_J REAL NOT NULL,"
    " eq_absorbed_J REAL NOT NULL, eq_delivered_J REAL NOT NULL,"
    " peak_net_W REAL NOT NULL, peak_free_W REAL NOT NULL,"
    " flips INTEGER NOT NULL, setpoint_travel_W REAL NOT NULL,"
    " window_pos REAL, samples INTEGER NOT NULL,"
    " PRIMARY KEY (minute_s, bus)) WITHOUT ROWID;"
    "CREATE TABLE energy_buffer ("
    " minute_s INTEGER NOT NULL, channel TEXT NOT NULL, bus TEXT,"
    " charged_J REAL NOT NULL, discharged_J REAL NOT NULL, window_pos REAL,"
    " PRIMARY KEY (minute_s, channel)) WITHOUT ROWID;",
};

constexpr const char* kInsertAudit =
    "INSERT INTO audit (time_ms, command, uid, user, pid, role, channel, bus, controller, request_json, ok,"
    " error_code, message, before_json, after_json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
constexpr const char* kSelectAudit =
    "SELECT id, time_ms, command, uid, user, pid, role, channel, bus, controller, request_json, ok, error_code,"
    " message, before_json, after_json FROM audit";

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json parse_or_null(const std::string& text) {
  if (text.empty()) return nullptr;
  json j = json::parse(text, nullptr, false);
  return j.is_discarded() ? json(text) : j;
}

// The audit record in the journal: MESSAGE_ID and EQD_AUDIT_* fields (docs/operations.md).
void journal(const AuditRecord& r) {
  const std::string uid = r.uid < 0 ? std::string() : std::to_string(r.uid);
  const std::string pid = r.pid < 0 ? std::string() : std::to_string(r.pid);
  const std::string result = r.ok ? std::string("ok") : r.error_code;
  const std::string request = dump(r.request);
  const std::string before = r.before.is_null() ? std::string() : dump(r.before);
  const std::string after = r.after.is_null() ? std::string() : dump(r.after);
  daemon::logging::log_with(r.ok ? spdlog::level::info : spdlog::level::warn,
                            {{"MESSAGE_ID", kAuditMessageId},
                             {"EQD_AUDIT_USER", r.user},
                             {"EQD_AUDIT_UID", uid},
                             {"EQD_AUDIT_PID", pid},
                             {"EQD_AUDIT_ROLE", r.role},
                             {"EQD_AUDIT_COMMAND", r.command},
                             {"EQD_AUDIT_CHANNEL", r.channel},
                             {"EQD_AUDIT_BUS", r.bus},
                             {"EQD_AUDIT_CONTROLLER", r.controller},
                             {"EQD_AUDIT_REQUEST", request},
                             {"EQD_AUDIT_RESULT", result},
                             {"EQD_AUDIT_BEFORE", before},
                             {"EQD_AUDIT_AFTER", after}},
                            "{}", summary(r));
}

}  // namespace

const std::vector<std::string_view>& schema_migrations() { return kMigrations; }

namespace {

// Opens `path`, WAL + synchronous=NORMAL, checks it, and migrates it to kSchemaVersion.
// Throws sqlite::Error (corrupt() for a damaged file) or sqlite::NewerSchema.
std::unique_ptr<HistoryStore::Db> open_and_migrate(const std::string& path) {
  auto db = std::make_unique<HistoryStore::Db>(path);
  sqlite::Database& c = db->conn;
  if (const std::string mode = c.text("PRAGMA journal_mode=WAL"); mode != "wal")
    spdlog::warn("history database {}: journal mode is {}, not wal", path, mode);
  c.exec("PRAGMA synchronous=NORMAL", "synchronous=NORMAL");
  if (const std::string check = c.text("PRAGMA quick_check"); check != "ok")
    throw sqlite::Error(SQLITE_CORRUPT, "quick_check: " + check);
  const int version = std::stoi("0" + c.text("PRAGMA user_version"));
  if (version > kSchemaVersion)
    throw sqlite::NewerSchema("schema version " + std::to_string(version) + ", newer than this eqd's " +
                              std::to_string(kSchemaVersion) +
                              " (written by a newer eqd): left untouched; eqd runs without a history database "
                              "until eqd is upgraded or the file is moved away");
  for (int v = version; v < kSchemaVersion; ++v) {
    const std::string sql = "BEGIN IMMEDIATE;" + std::string(kMigrations[static_cast<std::size_t>(v)]) +
                            "PRAGMA user_version = " + std::to_string(v + 1) + ";COMMIT;";
    try {
      c.exec(sql, "migration");
    } catch (const sqlite::Error&) {
      try {
        c.exec("ROLLBACK", "rollback");
      } catch (const sqlite::Error&) {  // no transaction left to roll back
      }
      throw;
    }
    if (v + 1 == kSchemaVersion && version > 0)
      spdlog::info("history database {}: schema migrated from version {} to {}", path, version, kSchemaVersion);
  }
  db->insert.emplace(c, kInsertAudit);
  return db;
}

// Moves `path` and its WAL and shared-memory files aside (a stale WAL must never meet a new file).
std::string move_database_aside(const std::string& path) {
  std::string moved = util::move_aside(path, "corrupt");
  for (const char* suffix : {"-wal", "-shm"}) {
    std::error_code ec;
    if (std::filesystem::exists(path + suffix, ec)) std::filesystem::rename(path + suffix, moved + suffix, ec);
  }
  return moved;
}

}  // namespace

HistoryStore::HistoryStore(HistoryOptions opts) : opts_(std::move(opts)) { open_database(); }

HistoryStore::~HistoryStore() { stop(); }

void HistoryStore::open_database() {
  db_.reset();
  if (opts_.path.empty()) return;
  std::string error;
  try {
    const std::filesystem::path parent = std::filesystem::path(opts_.path).parent_path();
    std::error_code ec;
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    try {
      db_ = open_and_migrate(opts_.path);
    } catch (const sqlite::Error& e) {
      if (!e.corrupt()) throw;
      db_.reset();
      const std::string moved = move_database_aside(opts_.path);
      spdlog::warn("history database {} is corrupt ({}); moved it aside to {} and started a fresh one", opts_.path,
                   e.what(), moved);
      db_ = open_and_migrate(opts_.path);
    }
  } catch (const std::exception& e) {
    db_.reset();
    error = e.what();
    spdlog::error("history database {}: {}; control goes on without it (audit records still reach the log)", opts_.path,
                  error);
  }
  std::lock_guard lock(m_);
  db_error_ = error;
}

std::string HistoryStore::database_error() const {
  std::lock_guard lock(m_);
  if (opts_.path.empty()) return "the history database is off (history.enabled: false)";
  return db_error_;
}

void HistoryStore::start() {
  std::lock_guard lock(m_);
  if (running_ || stopping_) return;
  running_ = true;
  writer_ = std::thread([this] { run(); });
}

void HistoryStore::stop() {
  {
    std::lock_guard lock(m_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  db_.reset();
}

bool HistoryStore::push(Job job, bool bounded) noexcept {
  try {
    {
      std::lock_guard lock(m_);
      if (stopping_ || (bounded && queue_.size() >= opts_.queue_capacity)) {
        stats_->dropped_queue_full.fetch_add(1, std::memory_order_relaxed);
        return false;
      }
      queue_.push_back(std::move(job));
    }
    cv_.notify_one();
    return true;
  } catch (...) {  // out of memory: a lost record, counted, never an exception into the caller
    stats_->dropped_queue_full.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
}

bool HistoryStore::record(AuditRecord r) noexcept {
  Job j;
  j.kind = Job::Kind::record;
  j.record = std::move(r);
  return push(std::move(j), true);
}

bool HistoryStore::query(const AuditQuery& q, std::function<void(AuditPage)> done) noexcept {
  try {
    Job j;
    j.kind = Job::Kind::query;
    j.q = q;
    j.done = std::move(done);
    return push(std::move(j), true);
  } catch (...) {
    return false;
  }
}

bool HistoryStore::record_energy(EnergyMinute m) noexcept {
  Job j;
  j.kind = Job::Kind::energy;
  j.energy = std::move(m);
  return push(std::move(j), true);
}

bool HistoryStore::flush(std::chrono::milliseconds timeout) {
  {
    std::lock_guard lock(m_);
    if (!running_) return false;
  }
  Job j;
  j.kind = Job::Kind::barrier;
  j.barrier = std::make_shared<std::promise<void>>();
  std::future<void> done = j.barrier->get_future();
  if (!push(std::move(j), false)) return false;
  return done.wait_for(timeout) == std::future_status::ready;
}

void HistoryStore::prune_now() noexcept {
  Job j;
  j.kind = Job::Kind::prune;
  (void)push(std::move(j), false);
}

void HistoryStore::run() {
  prune();  // at start, before anything queued is written
  next_prune_ = std::chrono::steady_clock::now() + kPrunePeriod;
  for (;;) {
    std::deque<Job> batch;
    bool stop = false;
    {
      std::unique_lock lock(m_);
      cv_.wait_until(lock, std::min(next_prune_, std::chrono::steady_clock::now() + kReportPeriod),
                     [this] { return stopping_ || !queue_.empty(); });
      batch.swap(queue_);
      stop = stopping_;
    }
    process(batch);
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_prune_) {
      prune();
      next_prune_ = now + kPrunePeriod;
    }
    report_problems(now);
    if (stop) {
      std::lock_guard lock(m_);
      if (queue_.empty()) break;  // what was queued while stopping is written on the next round
    }
  }
  report_problems(std::chrono::steady_clock::now() + kReportPeriod);
}

void HistoryStore::process(std::deque<Job>& batch) {
  std::vector<AuditRecord> records;
  for (Job& j : batch) {
    if (j.kind == Job::Kind::record) {
      records.push_back(std::move(j.record));
      continue;
    }
    // Everything queued before a query, barrier or prune is written first: queries see it.
    write_records(records);
    records.clear();
    if (j.kind == Job::Kind::query)
      run_query(j);
    else if (j.kind == Job::Kind::energy)
      write_energy(j.energy);
    else if (j.kind == Job::Kind::prune)
      prune();
    else if (j.kind == Job::Kind::backup)
      run_backup(j);
    else if (j.barrier)
      j.barrier->set_value();
  }
  write_records(records);
}

void HistoryStore::write_records(std::vector<AuditRecord>& batch) {
  if (batch.empty()) return;
  // The user name is looked up here, not by the caller: getpwuid_r may read files or ask NSS.
  for (AuditRecord& r : batch)
    if (r.user.empty() && r.uid >= 0) r.user = user_name(static_cast<uid_t>(r.uid));
  if (opts_.journal)
    for (const AuditRecord& r : batch) journal(r);
  if (opts_.path.empty()) return;  // no database configured: the journal is the audit log
  if (!db_) {
    on_database_error(database_error(), false, batch.size());
    return;
  }
  const std::int64_t now = now_utc_ms();
  try {
    db_->conn.exec("BEGIN IMMEDIATE", "begin");
    sqlite::Statement& st = *db_->insert;
    for (AuditRecord& r : batch) {
      st.bind(1, r.time_ms != 0 ? r.time_ms : now);
      st.bind(2, r.command);
      if (r.uid >= 0)
        st.bind(3, r.uid);
      else
        st.bind_null(3);
      st.bind(4, r.user);
      if (r.pid >= 0)
        st.bind(5, r.pid);
      else
        st.bind_null(5);
      st.bind(6, r.role);
      st.bind(7, r.channel);
      st.bind(8, r.bus);
      st.bind(9, r.controller);
      st.bind(10, dump(r.request));
      st.bind(11, std::int64_t{r.ok ? 1 : 0});
      st.bind(12, r.error_code);
      st.bind(13, r.message);
      st.bind(14, r.before.is_null() ? std::string() : dump(r.before));
      st.bind(15, r.after.is_null() ? std::string() : dump(r.after));
      st.step();
      st.reset();
    }
    db_->conn.exec("COMMIT", "commit");
    stats_->rows_written[0].fetch_add(batch.size(), std::memory_order_relaxed);
    stats_->last_write_ms.store(now_utc_ms(), std::memory_order_relaxed);
  } catch (const sqlite::Error& e) {
    db_->insert->reset();
    try {
      db_->conn.exec("ROLLBACK", "rollback");
    } catch (const sqlite::Error&) {  // the failed statement may have ended the transaction already
    }
    on_database_error(std::string("writing ") + std::to_string(batch.size()) + " audit record(s): " + e.what(),
                      e.corrupt(), batch.size());
  }
}

void HistoryStore::on_database_error(const std::string& what, bool corrupt, std::size_t lost) {
  stats_->write_errors.fetch_add(lost, std::memory_order_relaxed);
  ++errors_since_report_;
  last_error_ = what;
  if (corrupt) {
    spdlog::warn("history database {}: {}: the file is corrupt; replacing it", opts_.path, what);
    db_.reset();
    try {
      const std::string moved = move_database_aside(opts_.path);
      spdlog::warn("history database {}: corrupt file moved aside to {}", opts_.path, moved);
    } catch (const std::exception& e) {
      spdlog::error("history database {}: cannot move the corrupt file aside: {}", opts_.path, e.what());
      std::lock_guard lock(m_);
      db_error_ = std::string("corrupt and cannot be moved aside: ") + e.what();
      return;
    }
    open_database();
  }
}

void HistoryStore::report_problems(std::chrono::steady_clock::time_point now) {
  if (now - last_report_ < kReportPeriod) return;
  const std::uint64_t drops = stats_->dropped_queue_full.load(std::memory_order_relaxed);
  if (drops == reported_drops_ && errors_since_report_ == 0) return;
  last_report_ = now;
  if (drops != reported_drops_)
    spdlog::warn("history: {} record(s) dropped because the writer's queue was full ({} in all)",
                 drops - reported_drops_, drops);
  if (errors_since_report_ > 0)
    spdlog::error("history database {}: {} failed write(s) since the last report (last: {}); {} record(s) lost in all",
                  opts_.path, errors_since_report_, last_error_, stats_->write_errors.load(std::memory_order_relaxed));
  reported_drops_ = drops;
  errors_since_report_ = 0;
}

void HistoryStore::prune() {
  if (!db_ || opts_.retention_days <= 0) return;
  const std::int64_t cutoff = now_utc_ms() - static_cast<std::int64_t>(opts_.retention_days) * 86'400'000;
  try {
    int deleted = 0;
    for (const char* sql : {"DELETE FROM audit WHERE time_ms < ?", "DELETE FROM energy_bus WHERE minute_s * 1000 < ?",
                            "DELETE FROM energy_buffer WHERE minute_s * 1000 < ?"}) {
      sqlite::Statement st(db_->conn, sql);
      st.bind(1, cutoff);
      st.step();
      deleted += sqlite3_changes(db_->conn.handle());
    }
    if (deleted > 0)
      spdlog::info("history database {}: deleted {} row(s) older than {} days (history.retention_days)", opts_.path,
                   deleted, opts_.retention_days);
  } catch (const sqlite::Error& e) {
    on_database_error(std::string("retention: ") + e.what(), e.corrupt(), 0);
  }
}

void HistoryStore::run_query(const Job& job) {
  AuditPage page;
  if (!db_) {
    page.error = database_error();
    if (page.error.empty()) page.error = "the history database is not open";
  } else {
    try {
      const AuditQuery& q = job.q;
      std::string sql = std::string(kSelectAudit) + " WHERE 1";
      if (q.since_ms) sql += " AND time_ms >= ?1";
      if (!q.user.empty()) sql += " AND user = ?2";
      if (!q.channel.empty()) sql += " AND channel = ?3";
      if (q.before_id) sql += " AND id < ?4";
      sql += " ORDER BY id DESC LIMIT ?5";
      sqlite::Statement st(db_->conn, sql);
      if (q.since_ms) st.bind(1, *q.since_ms);
      if (!q.user.empty()) st.bind(2, q.user);
      if (!q.channel.empty()) st.bind(3, q.channel);
      if (q.before_id) st.bind(4, *q.before_id);
      const std::size_t limit = std::clamp<std::size_t>(q.limit, 1, kMaxAuditRows);
      st.bind(5, static_cast<std::int64_t>(limit + 1));  // one more tells whether there are more
      while (st.step()) {
        if (page.records.size() == limit) {
          page.more = true;
          break;
        }
        AuditRecord r;
        r.id = st.int64(0);
        r.time_ms = st.int64(1);
        r.command = st.text(2);
        r.uid = st.is_null(3) ? -1 : st.int64(3);
        r.user = st.text(4);
        r.pid = st.is_null(5) ? -1 : st.int64(5);
        r.role = st.text(6);
        r.channel = st.text(7);
        r.bus = st.text(8);
        r.controller = st.text(9);
        r.request = parse_or_null(st.text(10));
        r.ok = st.int64(11) != 0;
        r.error_code = st.text(12);
        r.message = st.text(13);
        r.before = parse_or_null(st.text(14));
        r.after = parse_or_null(st.text(15));
        page.records.push_back(std::move(r));
      }
    } catch (const std::exception& e) {
      page.records.clear();
      page.error = std::string("audit query failed: ") + e.what();
    }
  }
  try {
    if (job.done) job.done(std::move(page));
  } catch (const std::exception& e) {
    spdlog::error("history: an audit query's answer failed: {}", e.what());
  }
}

}  // namespace eqd::history
