// The history in SQLite, the embedded default: one file, WAL, schema versioned by PRAGMA
// user_version with numbered migrations (see backend.hpp, store.hpp).
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>

#include <spdlog/spdlog.h>

#include "backend.hpp"
#include "eqd/history/store.hpp"
#include "sqlite_db.hpp"

namespace eqd::history {

namespace {

using nlohmann::json;

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
    // 4: peak import with and without equalization (`eqctl report`, a demand price is per kW of peak
    // import): peak_net_W and peak_free_W are of |power|, export included. NULL in older rows.
    "ALTER TABLE energy_bus ADD COLUMN peak_import_W REAL;"
    "ALTER TABLE energy_bus ADD COLUMN peak_free_import_W REAL;",
};

constexpr const char* kInsertAudit =
    "INSERT INTO audit (time_ms, command, uid, user, pid, role, channel, bus, controller, request_json, ok,"
    " error_code, message, before_json, after_json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
constexpr const char* kSelectAudit =
    "SELECT id, time_ms, command, uid, user, pid, role, channel, bus, controller, request_json, ok, error_code,"
    " message, before_json, after_json FROM audit";

// A minute already there (eqd restarted within it, or stopped and started again) is added to: energy
// sums, peaks take the larger, the window position the weighted mean.
constexpr const char* kUpsertBus =
    "INSERT INTO energy_bus (minute_s, bus, grid_import_J, grid_export_J, free_import_J, free_export_J,"
    " eq_absorbed_J, eq_delivered_J, peak_net_W, peak_free_W, flips, setpoint_travel_W, window_pos, samples,"
    " peak_import_W, peak_free_import_W)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
    " ON CONFLICT (minute_s, bus) DO UPDATE SET"
    " grid_import_J = grid_import_J + excluded.grid_import_J, grid_export_J = grid_export_J + excluded.grid_export_J,"
    " free_import_J = free_import_J + excluded.free_import_J, free_export_J = free_export_J + excluded.free_export_J,"
    " eq_absorbed_J = eq_absorbed_J + excluded.eq_absorbed_J, eq_delivered_J = eq_delivered_J + "
    "excluded.eq_delivered_J,"
    " peak_net_W = max(peak_net_W, excluded.peak_net_W), peak_free_W = max(peak_free_W, excluded.peak_free_W),"
    " peak_import_W = max(coalesce(peak_import_W, 0), excluded.peak_import_W),"
    " peak_free_import_W = max(coalesce(peak_free_import_W, 0), excluded.peak_free_import_W),"
    " flips = flips + excluded.flips, setpoint_travel_W = setpoint_travel_W + excluded.setpoint_travel_W,"
    " window_pos = CASE WHEN excluded.window_pos IS NULL THEN window_pos WHEN window_pos IS NULL THEN "
    "excluded.window_pos"
    "   ELSE (window_pos * samples + excluded.window_pos * excluded.samples) / (samples + excluded.samples) END,"
    " samples = samples + excluded.samples";
constexpr const char* kUpsertBuffer =
    "INSERT INTO energy_buffer (minute_s, channel, bus, charged_J, discharged_J, window_pos)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    " ON CONFLICT (minute_s, channel) DO UPDATE SET"
    " charged_J = charged_J + excluded.charged_J, discharged_J = discharged_J + excluded.discharged_J,"
    " window_pos = coalesce((window_pos + excluded.window_pos) / 2, window_pos, excluded.window_pos)";

// `eqctl report`: per interval, the sums of the minute rows per bus and of its buffers.
constexpr const char* kSumBus =
    "SELECT bus, sum(grid_import_J), sum(grid_export_J), sum(free_import_J), sum(free_export_J),"
    " sum(eq_absorbed_J), sum(eq_delivered_J), max(peak_import_W), max(peak_free_import_W), count(*)"
    " FROM energy_bus WHERE minute_s >= ?1 AND minute_s < ?2 AND (?3 IS NULL OR bus = ?3) GROUP BY bus ORDER BY bus";
constexpr const char* kSumBuffer =
    "SELECT bus, sum(charged_J), sum(discharged_J), count(DISTINCT channel)"
    " FROM energy_buffer WHERE minute_s >= ?1 AND minute_s < ?2 AND (?3 IS NULL OR bus = ?3) GROUP BY bus";

// Interrupts a report statement past its deadline (sqlite3_progress_handler calls it every
// kProgressSteps virtual-machine instructions; non-zero aborts with SQLITE_INTERRUPT).
constexpr int kProgressSteps = 10000;
extern "C" int past_deadline(void* arg) {
  const auto* deadline = static_cast<const std::chrono::steady_clock::time_point*>(arg);
  return std::chrono::steady_clock::now() > *deadline ? 1 : 0;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json parse_or_null(const std::string& text) {
  if (text.empty()) return nullptr;
  json j = json::parse(text, nullptr, false);
  return j.is_discarded() ? json(text) : j;
}

void bind_optional(sqlite::Statement& st, int i, const std::optional<double>& v) {
  if (v)
    st.bind_real(i, *v);
  else
    st.bind_null(i);
}

BackendError translate(const sqlite::Error& e, const std::string& what) {
  return BackendError(e.corrupt() ? BackendError::Kind::corrupt : BackendError::Kind::failed, what + e.what());
}

class SqliteBackend final : public Backend {
 public:
  explicit SqliteBackend(const std::string& path) : path_(path), conn_(path) {
    if (const std::string mode = conn_.text("PRAGMA journal_mode=WAL"); mode != "wal")
      spdlog::warn("history database {}: journal mode is {}, not wal", path, mode);
    conn_.exec("PRAGMA synchronous=NORMAL", "synchronous=NORMAL");
    if (const std::string check = conn_.text("PRAGMA quick_check"); check != "ok")
      throw sqlite::Error(SQLITE_CORRUPT, "quick_check: " + check);
    const int version = std::stoi("0" + conn_.text("PRAGMA user_version"));
    if (version > kSchemaVersion)
      throw sqlite::NewerSchema("schema version " + std::to_string(version) + ", newer than this eqd's " +
                                std::to_string(kSchemaVersion) +
                                " (written by a newer eqd): left untouched; eqd runs without a history database "
                                "until eqd is upgraded or the file is moved away");
    for (int v = version; v < kSchemaVersion; ++v) {
      const std::string sql = "BEGIN IMMEDIATE;" + std::string(kMigrations[static_cast<std::size_t>(v)]) +
                              "PRAGMA user_version = " + std::to_string(v + 1) + ";COMMIT;";
      try {
        conn_.exec(sql, "migration");
      } catch (const sqlite::Error&) {
        rollback();
        throw;
      }
      if (v + 1 == kSchemaVersion && version > 0)
        spdlog::info("history database {}: schema migrated from version {} to {}", path, version, kSchemaVersion);
    }
    insert_.emplace(conn_, kInsertAudit);
  }

  void write_audit(const std::vector<AuditRecord>& batch) override {
    try {
      conn_.exec("BEGIN IMMEDIATE", "begin");
      sqlite::Statement& st = *insert_;
      const std::int64_t now = now_utc_ms();
      for (const AuditRecord& r : batch) {
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
      conn_.exec("COMMIT", "commit");
    } catch (const sqlite::Error& e) {
      insert_->reset();
      rollback();
      throw translate(e, "writing " + std::to_string(batch.size()) + " audit record(s): ");
    }
  }

  void write_energy(const EnergyMinute& m) override {
    try {
      conn_.exec("BEGIN IMMEDIATE", "begin");
      sqlite::Statement bus(conn_, kUpsertBus);
      for (const BusMinute& b : m.buses) {
        bus.bind(1, m.minute_s);
        bus.bind(2, b.bus);
        const core::EnergyCounters& e = b.energy;
        int i = 3;
        for (double v : {e.grid_import_J, e.grid_export_J, e.free_import_J, e.free_export_J, e.eq_absorbed_J,
                         e.eq_delivered_J, b.peak_net_W, b.peak_free_W})
          bus.bind_real(i++, v);
        bus.bind(11, static_cast<std::int64_t>(b.flips));
        bus.bind_real(12, b.setpoint_travel_W);
        bind_optional(bus, 13, b.window_pos);
        bus.bind(14, std::int64_t{b.samples});
        bus.bind_real(15, b.peak_import_W);
        bus.bind_real(16, b.peak_free_import_W);
        bus.step();
        bus.reset();
      }
      sqlite::Statement buf(conn_, kUpsertBuffer);
      for (const BufferMinute& b : m.buffers) {
        buf.bind(1, m.minute_s);
        buf.bind(2, b.channel);
        buf.bind(3, b.bus);
        buf.bind_real(4, b.charged_J);
        buf.bind_real(5, b.discharged_J);
        bind_optional(buf, 6, b.window_pos);
        buf.step();
        buf.reset();
      }
      conn_.exec("COMMIT", "commit");
    } catch (const sqlite::Error& e) {
      rollback();
      throw translate(e, "writing the energy minute " + std::to_string(m.minute_s) + ": ");
    }
  }

  AuditPage query_audit(const AuditQuery& q) override {
    AuditPage page;
    try {
      std::string sql = std::string(kSelectAudit) + " WHERE 1";
      if (q.since_ms) sql += " AND time_ms >= ?1";
      if (!q.user.empty()) sql += " AND user = ?2";
      if (!q.channel.empty()) sql += " AND channel = ?3";
      if (q.before_id) sql += " AND id < ?4";
      sql += " ORDER BY id DESC LIMIT ?5";
      sqlite::Statement st(conn_, sql);
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
    } catch (const sqlite::Error& e) {
      throw translate(e, "audit query: ");
    }
    return page;
  }

  ReportAnswer report(const ReportQuery& q) override {
    ReportAnswer a;
    const auto deadline = std::chrono::steady_clock::now() + kReportBudget;
    sqlite3_progress_handler(conn_.handle(), kProgressSteps, past_deadline,
                             const_cast<void*>(static_cast<const void*>(&deadline)));
    try {
      sqlite::Statement bus(conn_, kSumBus);
      sqlite::Statement buf(conn_, kSumBuffer);
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
    sqlite3_progress_handler(conn_.handle(), 0, nullptr, nullptr);
    return a;
  }

  std::int64_t prune(std::int64_t cutoff_ms) override {
    try {
      std::int64_t deleted = 0;
      for (const char* sql : {"DELETE FROM audit WHERE time_ms < ?", "DELETE FROM energy_bus WHERE minute_s * 1000 < ?",
                              "DELETE FROM energy_buffer WHERE minute_s * 1000 < ?"}) {
        sqlite::Statement st(conn_, sql);
        st.bind(1, cutoff_ms);
        st.step();
        deleted += sqlite3_changes(conn_.handle());
      }
      return deleted;
    } catch (const sqlite::Error& e) {
      throw translate(e, "retention: ");
    }
  }

  // One step of the online backup API: the copy is the database as of one transaction (no write can
  // come between: this writer thread is the only one).
  int backup_to(const std::string& dest) override {
    try {
      sqlite::Database out(dest);
      sqlite3_backup* b = sqlite3_backup_init(out.handle(), "main", conn_.handle(), "main");
      if (b == nullptr) sqlite::check(out.handle(), sqlite3_errcode(out.handle()), "backup_init");
      const int step = sqlite3_backup_step(b, -1);
      const int finish = sqlite3_backup_finish(b);
      if (step != SQLITE_DONE) sqlite::check(out.handle(), step == SQLITE_OK ? SQLITE_ERROR : step, "backup_step");
      sqlite::check(out.handle(), finish, "backup_finish");
      return std::stoi("0" + out.text("PRAGMA user_version"));
    } catch (const sqlite::Error& e) {
      throw BackendError(BackendError::Kind::failed, std::string("backup: ") + e.what());
    }
  }

  [[nodiscard]] std::string describe() const override { return "SQLite " + path_; }

 private:
  void rollback() noexcept {
    try {
      conn_.exec("ROLLBACK", "rollback");
    } catch (const sqlite::Error&) {  // the failed statement may have ended the transaction already
    }
  }

  std::string path_;
  sqlite::Database conn_;
  std::optional<sqlite::Statement> insert_;
};

}  // namespace

const std::vector<std::string_view>& schema_migrations() { return kMigrations; }

std::unique_ptr<Backend> open_sqlite(const std::string& path) {
  try {
    return std::make_unique<SqliteBackend>(path);
  } catch (const sqlite::Error& e) {
    throw BackendError(e.corrupt() ? BackendError::Kind::corrupt : BackendError::Kind::failed, e.what());
  } catch (const sqlite::NewerSchema& e) {
    throw BackendError(BackendError::Kind::failed, e.what());
  }
}

}  // namespace eqd::history
