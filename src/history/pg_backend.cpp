// The history in PostgreSQL (`history.url`, libpqxx): the same tables as SQLite, each row carrying the
// eqd instance, for a site whose several eqd write to one database (see backend.hpp).
#include <pqxx/pqxx>

#include <algorithm>
#include <optional>
#include <type_traits>

#include "backend.hpp"

namespace eqd::history {

namespace {

using nlohmann::json;

// The schema version this build writes in PostgreSQL (table eqd_schema), with its migrations: entry
// i takes it from version i to i + 1. Never edit a shipped entry: add one.
const char* const kPgMigrations[] = {
    // 1: the audit log and the per-minute energy history, per instance.
    "CREATE TABLE audit ("
    " id BIGSERIAL PRIMARY KEY, instance TEXT NOT NULL, time_ms BIGINT NOT NULL, command TEXT NOT NULL,"
    " uid BIGINT, \"user\" TEXT, pid BIGINT, role TEXT, channel TEXT, bus TEXT, controller TEXT,"
    " request_json TEXT NOT NULL, ok BOOLEAN NOT NULL, error_code TEXT, message TEXT,"
    " before_json TEXT, after_json TEXT);"
    "CREATE INDEX audit_time ON audit (instance, time_ms);"
    "CREATE INDEX audit_user ON audit (instance, \"user\", id);"
    "CREATE INDEX audit_channel ON audit (instance, channel, id);"
    "CREATE TABLE energy_bus ("
    " instance TEXT NOT NULL, minute_s BIGINT NOT NULL, bus TEXT NOT NULL,"
    " grid_import_J DOUBLE PRECISION NOT NULL, grid_export_J DOUBLE PRECISION NOT NULL,"
    " free_import_J DOUBLE PRECISION NOT NULL, free_export_J DOUBLE PRECISION NOT NULL,"
    " eq_absorbed_J DOUBLE PRECISION NOT NULL, eq_delivered_J DOUBLE PRECISION NOT NULL,"
    " peak_net_W DOUBLE PRECISION NOT NULL, peak_free_W DOUBLE PRECISION NOT NULL,"
    " flips BIGINT NOT NULL, setpoint_travel_W DOUBLE PRECISION NOT NULL,"
    " window_pos DOUBLE PRECISION, samples BIGINT NOT NULL,"
    " PRIMARY KEY (instance, bus, minute_s));"
    "CREATE TABLE energy_buffer ("
    " instance TEXT NOT NULL, minute_s BIGINT NOT NULL, channel TEXT NOT NULL, bus TEXT,"
    " charged_J DOUBLE PRECISION NOT NULL, discharged_J DOUBLE PRECISION NOT NULL, window_pos DOUBLE PRECISION,"
    " PRIMARY KEY (instance, channel, minute_s));",
    // 2: peak import with and without equalization (`eqctl report`; SQLite's migration 4). NULL in
    // older rows.
    "ALTER TABLE energy_bus ADD COLUMN peak_import_W DOUBLE PRECISION;"
    "ALTER TABLE energy_bus ADD COLUMN peak_free_import_W DOUBLE PRECISION;",
};
constexpr int kPgSchemaVersion = static_cast<int>(std::size(kPgMigrations));
// Several eqd may start at once against one database: the migration runs under this advisory lock.
constexpr long kMigrationLock = 0x6571640001;  // "eqd" 1

constexpr const char* kInsertAudit =
    "INSERT INTO audit (instance, time_ms, command, uid, \"user\", pid, role, channel, bus, controller,"
    " request_json, ok, error_code, message, before_json, after_json)"
    " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)";
// A minute already there is added to, as with SQLite (sqlite_backend.cpp).
constexpr const char* kUpsertBus =
    "INSERT INTO energy_bus AS e (instance, minute_s, bus, grid_import_J, grid_export_J, free_import_J,"
    " free_export_J, eq_absorbed_J, eq_delivered_J, peak_net_W, peak_free_W, flips, setpoint_travel_W,"
    " window_pos, samples, peak_import_W, peak_free_import_W)"
    " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)"
    " ON CONFLICT (instance, bus, minute_s) DO UPDATE SET"
    " grid_import_J = e.grid_import_J + excluded.grid_import_J, grid_export_J = e.grid_export_J + "
    "excluded.grid_export_J,"
    " free_import_J = e.free_import_J + excluded.free_import_J, free_export_J = e.free_export_J + "
    "excluded.free_export_J,"
    " eq_absorbed_J = e.eq_absorbed_J + excluded.eq_absorbed_J, eq_delivered_J = e.eq_delivered_J + "
    "excluded.eq_delivered_J,"
    " peak_net_W = greatest(e.peak_net_W, excluded.peak_net_W), peak_free_W = greatest(e.peak_free_W, "
    "excluded.peak_free_W),"
    " peak_import_W = greatest(coalesce(e.peak_import_W, 0), excluded.peak_import_W),"
    " peak_free_import_W = greatest(coalesce(e.peak_free_import_W, 0), excluded.peak_free_import_W),"
    " flips = e.flips + excluded.flips, setpoint_travel_W = e.setpoint_travel_W + excluded.setpoint_travel_W,"
    " window_pos = CASE WHEN excluded.window_pos IS NULL THEN e.window_pos WHEN e.window_pos IS NULL THEN "
    "excluded.window_pos"
    "   ELSE (e.window_pos * e.samples + excluded.window_pos * excluded.samples) / (e.samples + excluded.samples) "
    "END,"
    " samples = e.samples + excluded.samples";
constexpr const char* kUpsertBuffer =
    "INSERT INTO energy_buffer AS e (instance, minute_s, channel, bus, charged_J, discharged_J, window_pos)"
    " VALUES ($1,$2,$3,$4,$5,$6,$7)"
    " ON CONFLICT (instance, channel, minute_s) DO UPDATE SET"
    " charged_J = e.charged_J + excluded.charged_J, discharged_J = e.discharged_J + excluded.discharged_J,"
    " window_pos = coalesce((e.window_pos + excluded.window_pos) / 2, e.window_pos, excluded.window_pos)";

// `eqctl report`: all intervals in one statement (their edges as two arrays), this instance's rows
// only. The buffers' sums join on the same interval and bus.
constexpr const char* kReport =
    "WITH iv AS (SELECT * FROM unnest($2::bigint[], $3::bigint[]) WITH ORDINALITY AS i(from_s, to_s, n)),"
    " b AS (SELECT iv.n, e.bus, sum(e.grid_import_J) gi, sum(e.grid_export_J) ge, sum(e.free_import_J) fi,"
    "  sum(e.free_export_J) fe, sum(e.eq_absorbed_J) ea, sum(e.eq_delivered_J) ed, max(e.peak_import_W) pi,"
    "  max(e.peak_free_import_W) pf, count(*) mins FROM iv JOIN energy_bus e ON e.instance = $1"
    "  AND e.minute_s >= iv.from_s AND e.minute_s < iv.to_s AND ($4::text IS NULL OR e.bus = $4::text)"
    "  GROUP BY iv.n, e.bus),"
    " f AS (SELECT iv.n, e.bus, sum(e.charged_J) c, sum(e.discharged_J) d, count(DISTINCT e.channel) k"
    "  FROM iv JOIN energy_buffer e ON e.instance = $1 AND e.minute_s >= iv.from_s AND e.minute_s < iv.to_s"
    "  AND ($4::text IS NULL OR e.bus = $4::text) GROUP BY iv.n, e.bus)"
    " SELECT b.n, b.bus, gi, ge, fi, fe, ea, ed, pi, pf, mins, coalesce(c, 0), coalesce(d, 0), coalesce(k, 0)"
    " FROM b LEFT JOIN f ON f.n = b.n AND f.bus = b.bus ORDER BY b.n, b.bus";
// PostgreSQL's code for a statement cancelled by statement_timeout.
constexpr const char* kQueryCanceled = "57014";

// A PostgreSQL array literal of integers: {1,2,3}.
std::string array_literal(const std::vector<std::int64_t>& v, std::size_t begin, std::size_t end) {
  std::string out = "{";
  for (std::size_t i = begin; i < end; ++i) {
    if (i > begin) out += ',';
    out += std::to_string(v[i]);
  }
  return out + "}";
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json parse_or_null(const std::string& text) {
  if (text.empty()) return nullptr;
  json j = json::parse(text, nullptr, false);
  return j.is_discarded() ? json(text) : j;
}

// A parameter that is NULL when empty (libpqxx sends a null const char* as NULL).
const char* or_null(const std::string& s) { return s.empty() ? nullptr : s.c_str(); }

// The URL without its password, for logs and messages.
std::string redact(const std::string& url) {
  std::string out = url;
  // URI form: postgresql://user:password@host/...
  if (const auto scheme = out.find("://"); scheme != std::string::npos) {
    const auto at = out.find('@', scheme + 3);
    const auto colon = out.find(':', scheme + 3);
    if (at != std::string::npos && colon != std::string::npos && colon < at)
      out.replace(colon + 1, at - colon - 1, "***");
  }
  // key=value form and URI parameters: password=...
  for (std::size_t p = out.find("password="); p != std::string::npos; p = out.find("password=", p + 1)) {
    const std::size_t end = out.find_first_of(" &", p);
    out.replace(p + 9, (end == std::string::npos ? out.size() : end) - p - 9, "***");
  }
  return out;
}

class PgBackend final : public Backend {
 public:
  PgBackend(std::string url, std::string instance) : url_(std::move(url)), instance_(std::move(instance)) { migrate(); }

  void write_audit(const std::vector<AuditRecord>& batch) override {
    run("writing " + std::to_string(batch.size()) + " audit record(s)", [&](pqxx::work& t) {
      for (const AuditRecord& r : batch) {
        const std::string uid = r.uid >= 0 ? std::to_string(r.uid) : std::string();
        const std::string pid = r.pid >= 0 ? std::to_string(r.pid) : std::string();
        const std::string before = r.before.is_null() ? std::string() : dump(r.before);
        const std::string after = r.after.is_null() ? std::string() : dump(r.after);
        t.exec_params(kInsertAudit, instance_, r.time_ms != 0 ? r.time_ms : now_utc_ms(), r.command, or_null(uid),
                      or_null(r.user), or_null(pid), or_null(r.role), or_null(r.channel), or_null(r.bus),
                      or_null(r.controller), dump(r.request), r.ok, or_null(r.error_code), or_null(r.message),
                      or_null(before), or_null(after));
      }
      return 0;
    });
  }

  void write_energy(const EnergyMinute& m) override {
    run("writing the energy minute " + std::to_string(m.minute_s), [&](pqxx::work& t) {
      for (const BusMinute& b : m.buses) {
        const core::EnergyCounters& e = b.energy;
        const std::string window = b.window_pos ? pqxx::to_string(*b.window_pos) : std::string();
        t.exec_params(kUpsertBus, instance_, m.minute_s, b.bus, e.grid_import_J, e.grid_export_J, e.free_import_J,
                      e.free_export_J, e.eq_absorbed_J, e.eq_delivered_J, b.peak_net_W, b.peak_free_W,
                      static_cast<std::int64_t>(b.flips), b.setpoint_travel_W, or_null(window),
                      static_cast<std::int64_t>(b.samples), b.peak_import_W, b.peak_free_import_W);
      }
      for (const BufferMinute& b : m.buffers) {
        const std::string window = b.window_pos ? pqxx::to_string(*b.window_pos) : std::string();
        t.exec_params(kUpsertBuffer, instance_, m.minute_s, b.channel, or_null(b.bus), b.charged_J, b.discharged_J,
                      or_null(window));
      }
      return 0;
    });
  }

  AuditPage query_audit(const AuditQuery& q) override {
    return run("audit query", [&](pqxx::work& t) {
      // Unused filters compare with NULL: one statement for every combination.
      const std::string since = q.since_ms ? std::to_string(*q.since_ms) : std::string();
      const std::string before = q.before_id ? std::to_string(*q.before_id) : std::string();
      const std::size_t limit = std::clamp<std::size_t>(q.limit, 1, kMaxAuditRows);
      const pqxx::result rows = t.exec_params(
          "SELECT id, time_ms, command, uid, \"user\", pid, role, channel, bus, controller, request_json, ok,"
          " error_code, message, before_json, after_json FROM audit WHERE instance = $1"
          " AND ($2::bigint IS NULL OR time_ms >= $2::bigint) AND ($3::text IS NULL OR \"user\" = $3::text)"
          " AND ($4::text IS NULL OR channel = $4::text) AND ($5::bigint IS NULL OR id < $5::bigint)"
          " ORDER BY id DESC LIMIT $6",
          instance_, or_null(since), or_null(q.user), or_null(q.channel), or_null(before),
          static_cast<std::int64_t>(limit + 1));
      AuditPage page;
      for (const pqxx::row& row : rows) {
        if (page.records.size() == limit) {
          page.more = true;
          break;
        }
        auto text = [&](int i) { return row[i].is_null() ? std::string() : row[i].as<std::string>(); };
        AuditRecord r;
        r.id = row[0].as<std::int64_t>();
        r.time_ms = row[1].as<std::int64_t>();
        r.command = text(2);
        r.uid = row[3].is_null() ? -1 : row[3].as<std::int64_t>();
        r.user = text(4);
        r.pid = row[5].is_null() ? -1 : row[5].as<std::int64_t>();
        r.role = text(6);
        r.channel = text(7);
        r.bus = text(8);
        r.controller = text(9);
        r.request = parse_or_null(text(10));
        r.ok = row[11].as<bool>();
        r.error_code = text(12);
        r.message = text(13);
        r.before = parse_or_null(text(14));
        r.after = parse_or_null(text(15));
        page.records.push_back(std::move(r));
      }
      return page;
    });
  }

  ReportAnswer report(const ReportQuery& q) override {
    return run("report query", [&](pqxx::work& t) {
      t.exec("SET LOCAL statement_timeout = " + std::to_string(kReportBudget.count()));
      const std::size_t n = q.edges_s.size() - 1;
      pqxx::result rows;
      try {
        rows = t.exec_params(kReport, instance_, array_literal(q.edges_s, 0, n), array_literal(q.edges_s, 1, n + 1),
                             or_null(q.bus));
      } catch (const pqxx::sql_error& e) {
        if (e.sqlstate() != kQueryCanceled) throw;
        throw BackendError(BackendError::Kind::failed,
                           "the report query took longer than " + std::to_string(kReportBudget.count()) +
                               " ms and was stopped; ask for a shorter range or coarser periods");
      }
      ReportAnswer a;
      a.intervals.reserve(n);
      for (std::size_t i = 0; i < n; ++i) a.intervals.push_back({q.edges_s[i], q.edges_s[i + 1], {}});
      for (const pqxx::row& row : rows) {
        const auto i = row[0].as<std::size_t>() - 1;  // WITH ORDINALITY counts from 1
        ReportBus r;
        r.bus = row[1].as<std::string>();
        r.energy = core::EnergyCounters{row[2].as<double>(), row[3].as<double>(), row[4].as<double>(),
                                        row[5].as<double>(), row[6].as<double>(), row[7].as<double>()};
        if (!row[8].is_null()) r.peak_import_W = row[8].as<double>();
        if (!row[9].is_null()) r.peak_free_import_W = row[9].as<double>();
        r.minutes = row[10].as<std::int64_t>();
        r.charged_J = row[11].as<double>();
        r.discharged_J = row[12].as<double>();
        r.buffers = row[13].as<std::int64_t>();
        if (i < n) a.intervals[i].buses.push_back(std::move(r));
      }
      return a;
    });
  }

  std::int64_t prune(std::int64_t cutoff_ms) override {
    return run("retention", [&](pqxx::work& t) {
      std::int64_t n = 0;
      n +=
          t.exec_params("DELETE FROM audit WHERE instance = $1 AND time_ms < $2", instance_, cutoff_ms).affected_rows();
      n += t.exec_params("DELETE FROM energy_bus WHERE instance = $1 AND minute_s < $2", instance_, cutoff_ms / 1000)
               .affected_rows();
      n += t.exec_params("DELETE FROM energy_buffer WHERE instance = $1 AND minute_s < $2", instance_, cutoff_ms / 1000)
               .affected_rows();
      return n;
    });
  }

  int backup_to(const std::string&) override {
    throw BackendError(BackendError::Kind::failed,
                       "the history is in PostgreSQL (history.url): back it up with pg_dump; eqctl backup covers "
                       "the SQLite history only");
  }

  [[nodiscard]] std::string describe() const override { return "PostgreSQL " + redact(url_); }

 private:
  // Runs `f` in one transaction, connecting first if needed. A lost or refused connection is
  // `unreachable` (the store keeps the rows and retries); anything else `failed`.
  template <class F>
  std::invoke_result_t<F, pqxx::work&> run(const std::string& what, F&& f) {
    try {
      if (!conn_ || !conn_->is_open()) conn_ = std::make_unique<pqxx::connection>(url_);
      pqxx::work t(*conn_);
      auto out = f(t);
      t.commit();
      return out;
    } catch (const pqxx::broken_connection& e) {
      conn_.reset();
      throw BackendError(BackendError::Kind::unreachable, what + ": PostgreSQL unreachable: " + first_line(e.what()));
    } catch (const pqxx::in_doubt_error& e) {
      conn_.reset();
      throw BackendError(BackendError::Kind::unreachable,
                         what + ": connection lost during commit: " + first_line(e.what()));
    } catch (const BackendError&) {
      throw;
    } catch (const std::exception& e) {
      // A server that went away mid-statement shows as an SQL error on a dead connection.
      if (conn_ && !conn_->is_open()) {
        conn_.reset();
        throw BackendError(BackendError::Kind::unreachable,
                           what + ": PostgreSQL connection lost: " + first_line(e.what()));
      }
      throw BackendError(BackendError::Kind::failed, what + ": " + first_line(e.what()));
    }
  }

  static std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

  void migrate() {
    run("creating the schema", [&](pqxx::work& t) {
      t.exec_params("SELECT pg_advisory_xact_lock($1)", static_cast<std::int64_t>(kMigrationLock));
      t.exec("CREATE TABLE IF NOT EXISTS eqd_schema (version INTEGER NOT NULL)");
      const pqxx::result v = t.exec("SELECT max(version) FROM eqd_schema");
      const int version = v.empty() || v[0][0].is_null() ? 0 : v[0][0].as<int>();
      if (version > kPgSchemaVersion)
        throw BackendError(BackendError::Kind::failed,
                           "schema version " + std::to_string(version) + ", newer than this eqd's " +
                               std::to_string(kPgSchemaVersion) + " (written by a newer eqd): left untouched");
      for (int i = version; i < kPgSchemaVersion; ++i) t.exec(kPgMigrations[i]);
      if (version < kPgSchemaVersion) {
        t.exec("DELETE FROM eqd_schema");
        t.exec_params("INSERT INTO eqd_schema (version) VALUES ($1)", kPgSchemaVersion);
      }
      return 0;
    });
  }

  std::string url_;
  std::string instance_;
  std::unique_ptr<pqxx::connection> conn_;
};

}  // namespace

std::unique_ptr<Backend> open_postgres(const std::string& url, const std::string& instance) {
  return std::make_unique<PgBackend>(url, instance);
}

}  // namespace eqd::history
