// The history database's report query (include/eqd/history/report.hpp): sums per interval and bus of
// the minute rows, peak import with and without equalization, buffer throughput, the bus filter, the
// query's shape checked, and the schema 3 -> 4 migration (peak import columns) keeping older rows.
#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <chrono>
#include <future>
#include <string>

#include "../fakes/temp_files.hpp"
#include "eqd/history/report.hpp"
#include "eqd/history/store.hpp"

using eqd::history::EnergyMinute;
using eqd::history::HistoryStore;
using eqd::history::ReportAnswer;
using eqd::history::ReportQuery;
using namespace std::chrono_literals;

namespace {

eqd::test::ProcessTempDir& temp() {
  static eqd::test::ProcessTempDir dir("eqd-history-report");
  return dir;
}

eqd::history::HistoryOptions options(const std::string& name) {
  eqd::history::HistoryOptions o;
  o.path = (temp().path() / name).string();
  o.journal = false;
  o.retention_days = 0;  // keep the test's fixed old minutes
  return o;
}

ReportAnswer ask(HistoryStore& s, ReportQuery q) {
  std::promise<ReportAnswer> p;
  auto f = p.get_future();
  REQUIRE(s.report(q, [&p](ReportAnswer a) { p.set_value(std::move(a)); }));
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  return f.get();
}

constexpr std::int64_t kT0 = 1'796'320'800;  // a whole hour, UTC

// Minute `k` after kT0: bus main imports 60 J with and 120 J without equalization, exports 0 / 30 J;
// its buffer cab1/4 takes 40 J; bus aux imports 10 J. Peaks: main 1 W per minute index.
EnergyMinute minute(int k) {
  EnergyMinute m;
  m.minute_s = kT0 + 60 * k;
  eqd::history::BusMinute main;
  main.bus = "main";
  main.energy.grid_import_J = 60.0;
  main.energy.free_import_J = 120.0;
  main.energy.free_export_J = 30.0;
  main.energy.eq_absorbed_J = 40.0;
  main.peak_import_W = 1.0 * k;
  main.peak_free_import_W = 10.0 * k;
  main.samples = 300;
  eqd::history::BusMinute aux;
  aux.bus = "aux";
  aux.energy.grid_import_J = 10.0;
  aux.energy.free_import_J = 10.0;
  aux.samples = 300;
  m.buses = {main, aux};
  m.buffers.push_back({"cab1/4", "main", 40.0, 0.0, 0.5});
  if (k % 2 == 0) m.buffers.push_back({"cab1/5", "main", 0.0, 5.0, 0.5});
  return m;
}

}  // namespace

TEST_CASE("history report: sums per interval and bus, peaks, buffer throughput, the bus filter", "[history][report]") {
  HistoryStore s(options("report.db"));
  s.start();
  for (int k = 0; k < 120; ++k) REQUIRE(s.record_energy(minute(k)));
  // Two hours of minutes; the intervals: the first 30 minutes, the next 90, and an empty hour after.
  const ReportAnswer a = ask(s, ReportQuery{{kT0, kT0 + 1800, kT0 + 7200, kT0 + 10800}, ""});
  REQUIRE(a.error.empty());
  REQUIRE(a.intervals.size() == 3);
  CHECK(a.intervals[0].from_s == kT0);
  CHECK(a.intervals[2].buses.empty());
  REQUIRE(a.intervals[0].buses.size() == 2);
  CHECK(a.intervals[0].buses[0].bus == "aux");  // by name
  const eqd::history::ReportBus& m0 = a.intervals[0].buses[1];
  CHECK(m0.bus == "main");
  CHECK(m0.minutes == 30);
  CHECK(m0.energy.grid_import_J == 30 * 60.0);
  CHECK(m0.energy.free_import_J == 30 * 120.0);
  CHECK(m0.energy.free_export_J == 30 * 30.0);
  CHECK(m0.energy.eq_absorbed_J == 30 * 40.0);
  REQUIRE(m0.peak_import_W);
  CHECK(*m0.peak_import_W == 29.0);
  CHECK(*m0.peak_free_import_W == 290.0);
  CHECK(m0.charged_J == 30 * 40.0);
  CHECK(m0.discharged_J == 15 * 5.0);
  CHECK(m0.buffers == 2);
  const eqd::history::ReportBus& m1 = a.intervals[1].buses[1];
  CHECK(m1.minutes == 90);
  CHECK(*m1.peak_import_W == 119.0);

  const ReportAnswer only = ask(s, ReportQuery{{kT0, kT0 + 7200}, "aux"});
  REQUIRE(only.error.empty());
  REQUIRE(only.intervals.at(0).buses.size() == 1);
  CHECK(only.intervals[0].buses[0].bus == "aux");
  CHECK(only.intervals[0].buses[0].energy.grid_import_J == 120 * 10.0);
  CHECK(only.intervals[0].buses[0].buffers == 0);
  s.stop();
}

TEST_CASE("history report: a query of the wrong shape is answered with why", "[history][report]") {
  CHECK_THAT(eqd::history::validate(ReportQuery{{kT0}, ""}), Catch::Contains("at least one interval"));
  CHECK_THAT(eqd::history::validate(ReportQuery{{kT0, kT0}, ""}), Catch::Contains("strictly increasing"));
  ReportQuery big;
  for (std::size_t i = 0; i <= eqd::history::kMaxReportIntervals + 1; ++i) big.edges_s.push_back(kT0 + 60 * i);
  CHECK_THAT(eqd::history::validate(big), Catch::Contains("at most"));
  big.edges_s.pop_back();
  CHECK(eqd::history::validate(big).empty());
  HistoryStore s(options("shape.db"));
  s.start();
  CHECK_THAT(ask(s, ReportQuery{{kT0 + 60, kT0}, ""}).error, Catch::Contains("strictly increasing"));
  s.stop();
}

TEST_CASE("history report: a version 3 database gets the peak import columns and keeps its rows", "[history][report]") {
  const std::string path = (temp().path() / "v3.db").string();
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    std::string sql;
    for (int v = 0; v < 3; ++v) sql += std::string(eqd::history::schema_migrations().at(v));
    sql +=
        "PRAGMA user_version = 3;"
        "INSERT INTO energy_bus (minute_s, bus, grid_import_J, grid_export_J, free_import_J, free_export_J,"
        " eq_absorbed_J, eq_delivered_J, peak_net_W, peak_free_W, flips, setpoint_travel_W, window_pos, samples)"
        " VALUES (" +
        std::to_string(kT0) + ", 'main', 100, 0, 300, 0, 0, 0, 5, 9, 0, 0, NULL, 300);";
    REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  HistoryStore s(options("v3.db"));
  REQUIRE(s.database_error().empty());
  s.start();
  // The old row has no peak import (NULL, not 0: unknown); a new minute of the same bus adds one.
  ReportAnswer a = ask(s, ReportQuery{{kT0, kT0 + 60}, ""});
  REQUIRE(a.error.empty());
  REQUIRE(a.intervals.at(0).buses.size() == 1);
  CHECK(a.intervals[0].buses[0].energy.free_import_J == 300.0);
  CHECK_FALSE(a.intervals[0].buses[0].peak_import_W);
  EnergyMinute m = minute(1);
  m.minute_s = kT0;  // the same minute, written again after the upgrade: it adds up
  REQUIRE(s.record_energy(m));
  a = ask(s, ReportQuery{{kT0, kT0 + 60}, "main"});
  REQUIRE(a.error.empty());
  CHECK(a.intervals.at(0).buses.at(0).energy.free_import_J == 420.0);
  REQUIRE(a.intervals[0].buses[0].peak_import_W);
  CHECK(*a.intervals[0].buses[0].peak_import_W == 1.0);
  s.stop();
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(sqlite3_column_int(st, 0) == eqd::history::kSchemaVersion);
  CHECK(eqd::history::kSchemaVersion == 4);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_CASE("history report: cost of a year of minutes of one bus by month", "[.][history][report][bench]") {
  const std::string path = (temp().path() / "year.db").string();
  { HistoryStore create(options("year.db")); }  // the schema
  constexpr int kMinutes = 365 * 24 * 60;
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db,
                               "INSERT INTO energy_bus VALUES (?1, 'main', 100, 50, 400, 300, 200, 150, 900, 2000, 1, "
                               "10, 0.5, 300, 800, 1900)",
                               -1, &st, nullptr) == SQLITE_OK);
    for (int k = 0; k < kMinutes; ++k) {
      sqlite3_bind_int64(st, 1, kT0 + 60LL * k);
      REQUIRE(sqlite3_step(st) == SQLITE_DONE);
      sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    REQUIRE(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  HistoryStore s(options("year.db"));
  s.start();
  ReportQuery q;
  for (int m = 0; m <= 12; ++m) q.edges_s.push_back(kT0 + m * 2'628'000LL);  // ~ months of 30.4 days
  for (int run = 0; run < 3; ++run) {
    const auto t0 = std::chrono::steady_clock::now();
    const ReportAnswer a = ask(s, q);
    const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    REQUIRE(a.error.empty());
    std::int64_t minutes = 0;
    for (const auto& iv : a.intervals) minutes += iv.buses.empty() ? 0 : iv.buses[0].minutes;
    CHECK(minutes == kMinutes);
    WARN("a year of minutes of one bus, 12 monthly intervals: " << ms << " ms (run " << run << ")");
  }
  q.edges_s.clear();
  for (int h = 0; h <= 2000; ++h) q.edges_s.push_back(kT0 + h * 3600LL);  // 2000 hourly intervals, one request
  const auto t0 = std::chrono::steady_clock::now();
  const ReportAnswer a = ask(s, q);
  REQUIRE(a.error.empty());
  const double hourly_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  WARN("2000 hourly intervals: " << hourly_ms << " ms");
  s.stop();
}
